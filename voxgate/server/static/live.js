// The microphone session: capture → stream → partials, finals, speech events and the voice profile on screen.

import { ApiError, LiveStream } from "./api.js";
import { CaptureError, startCapture } from "./capture.js";
import {
  $,
  baseConfig,
  clearErrors,
  profileOf,
  setProfile,
  setVoice,
  setVoices,
  setStats,
  settings,
  showError,
  transcriptChanged,
} from "./page.js";
import { Timeline } from "./timeline.js";
import { LiveTranscript } from "./transcript.js";
import { formatLatency, formatTime, quantile } from "./ui.js";

const timeline = new Timeline($("#timeline"));
const liveTranscript = new LiveTranscript($("#turns"), $("#turns-empty"));

/** What one microphone session measures; reset at every Start. */
function freshSession() {
  return {
    clock: [], // [{end: stream seconds, wall: performance.now()}] per chunk sent
    finals: [],
    latencies: [],
    endTurnAt: new Map(), // turn → performance.now() of its End turn press
    bytes: 0,
    partials: 0,
    profiles: 0,
    errored: false,
    openTurn: 0, // the turn an End turn press would end
  };
}

const live = { stream: null, capture: null, state: "idle", model: "", started: "", ...freshSession() };

export function setLiveState(state, label) {
  live.state = state;
  document.body.dataset.live = state;
  $("#live-state").textContent = label;
  $("#mic-start").hidden = state !== "idle";
  $("#mic-stop").hidden = state === "idle";
  $("#mic-stop").disabled = state !== "live";
  $("#end-turn").disabled = state !== "live";
  for (const control of document.querySelectorAll(".settings select, .settings input")) {
    control.disabled = state !== "idle";
  }
}

/** performance.now() at which the sample at stream time `t` was captured. */
function wallAt(t) {
  const clock = live.clock;
  if (clock.length === 0) {
    return null;
  }
  // the first chunk that ends at or after t (chunks are in time order)
  let low = 0;
  let high = clock.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (clock[middle].end >= t) {
      high = middle;
    } else {
      low = middle + 1;
    }
  }
  const entry = clock[low];
  return entry.end >= t ? entry.wall - (entry.end - t) * 1000 : entry.wall;
}

export function liveStats() {
  const p50 = quantile(live.latencies, 0.5);
  const p95 = quantile(live.latencies, 0.95);
  const seconds = live.clock.length ? live.clock[live.clock.length - 1].end : 0;
  setStats("live", [
    ["Model", live.model || settings.model || "default"],
    ["Stream time", formatTime(seconds)],
    ["Audio sent", `${(live.bytes / 1024).toFixed(0)} KiB`],
    ["Turns", String(live.finals.length)],
    ["Final latency p50", p50 == null ? "—" : formatLatency(p50)],
    ["Final latency p95", p95 == null ? "—" : formatLatency(p95)],
    ["Partials", String(live.partials)],
    ["Profile updates", String(live.profiles)],
  ]);
}

function resetLive() {
  Object.assign(live, freshSession());
  liveTranscript.reset();
  timeline.reset();
  setProfile("live", null);
  setVoices("live", []);
  liveStats();
  transcriptChanged();
}

function onChunk(chunk) {
  const now = performance.now();
  live.clock.push({ end: chunk.endSeconds, wall: now });
  live.bytes += chunk.pcm.byteLength;
  timeline.level(chunk.endSeconds, chunk.rms);
  $("#level").style.transform = `scaleX(${Math.min(1, chunk.peak * 1.4).toFixed(3)})`;
  $("#live-clock").textContent = formatTime(chunk.endSeconds);
  if (live.stream) {
    live.stream.sendAudio(chunk.pcm);
  }
}

const liveHandlers = {
  onOpen() {
    setLiveState("live", "Listening");
  },
  onTranscription(t) {
    timeline.turn(t.turnIndex, t.startTimeSeconds, t.endTimeSeconds, t.isFinal);
    if (!t.isFinal) {
      live.openTurn = t.turnIndex;
      live.partials += 1;
      liveTranscript.partial(t);
      return;
    }
    const now = performance.now();
    const spoken = wallAt(t.endTimeSeconds);
    const pressed = live.endTurnAt.get(t.turnIndex);
    const latency = {
      afterSpeech: spoken == null || !t.transcript ? null : Math.max(0, now - spoken) / 1000,
      afterEndTurn: pressed == null ? null : Math.max(0, now - pressed) / 1000,
    };
    if (t.transcript.trim()) {
      live.finals.push(t);
      if (latency.afterSpeech != null) {
        live.latencies.push(latency.afterSpeech);
      }
    }
    liveTranscript.final(t, latency);
    liveStats();
    transcriptChanged();
  },
  onVoiceProfile(p) {
    live.profiles += 1;
    if (p.scope === "speaker") {
      setVoice("live", p.speakerTag, p); // that speaker's own, across their turns
    } else {
      setProfile("live", p);
    }
    liveStats();
  },
  onSpeechStarted(e) {
    timeline.speechStarted(e.timeSeconds);
    live.openTurn = e.turnIndex;
    if (live.state === "live") {
      $("#live-state").textContent = "Hearing speech";
    }
  },
  onSpeechEnded(e) {
    timeline.speechEnded(e.timeSeconds);
    if (live.state === "live") {
      $("#live-state").textContent = "Listening";
    }
  },
  onEndOfTurn(e) {
    timeline.endOfTurn(e.timeSeconds, e.reason, e.probability, e.turnIndex);
    liveTranscript.ending(e);
  },
  onError(error) {
    live.errored = true;
    showError(error, "Streaming");
  },
  onClose({ code, reason }) {
    if (code !== 1000 && !live.errored) {
      showError(
        new ApiError("connection_lost", `The stream closed with code ${code}${reason ? `: ${reason}` : ""}.`),
        "Streaming",
      );
    }
    finishLive();
  },
};

export async function startLive() {
  if (live.state !== "idle") {
    return;
  }
  clearErrors();
  resetLive();
  live.model = settings.model;
  live.started = new Date().toISOString();
  setLiveState("starting", "Opening the microphone…");
  const early = [];
  try {
    live.capture = await startCapture({
      onChunk: (chunk) => (live.stream ? onChunk(chunk) : early.push(chunk)),
    });
  } catch (error) {
    setLiveState("idle", "Idle");
    showError(error instanceof CaptureError ? error : new CaptureError("microphone_error", String(error)), "Microphone");
    return;
  }
  setLiveState("starting", "Connecting…");
  const config = {
    ...baseConfig(),
    audioEncoding: "LINEAR16",
    sampleRateHertz: live.capture.sampleRate,
    numberOfChannels: 1,
    turnDetection: { mode: settings.mode },
  };
  live.stream = new LiveStream(config, liveHandlers);
  early.forEach(onChunk);
  timeline.start();
}

export async function stopLive() {
  if (live.state !== "live" && live.state !== "starting") {
    return;
  }
  setLiveState("finishing", "Finishing the last turn…");
  if (live.capture) {
    await live.capture.stop();
    live.capture = null;
  }
  if (live.stream) {
    const stream = live.stream;
    stream.close();
    // The server closes the socket once the last final is out; never leave the page waiting on a silent one.
    setTimeout(() => {
      if (live.stream === stream) {
        live.errored = true;
        showError(new ApiError("connection_lost", "The server did not finish the stream within 30 s."), "Streaming");
        stream.abort();
      }
    }, 30000);
  }
}

function finishLive() {
  if (live.capture) {
    live.capture.stop();
    live.capture = null;
  }
  live.stream = null;
  timeline.stop();
  liveStats();
  $("#level").style.transform = "scaleX(0)";
  setLiveState("idle", live.finals.length ? "Done" : "Idle");
}

export function endTurn() {
  if (live.state !== "live" || !live.stream) {
    return;
  }
  live.endTurnAt.set(live.openTurn, performance.now());
  live.stream.endTurn();
}

/** The session's transcript for downloads (null before the first final). */
export function liveDocument() {
  if (!live.finals.length) {
    return null;
  }
  const end = live.clock.length ? live.clock[live.clock.length - 1].end : 0;
  return {
    source: "microphone",
    modelId: live.model || null,
    createdAt: live.started,
    durationSeconds: Number(end.toFixed(3)),
    language: live.finals.length ? live.finals[live.finals.length - 1].language || null : null,
    segments: live.finals.map((t) => ({
      turnIndex: t.turnIndex,
      start: t.startTimeSeconds,
      end: t.endTimeSeconds,
      text: t.transcript,
      language: t.language || null,
      speaker: t.speakerTag || null,
      words: t.wordTimestamps || [],
    })),
    voiceProfile: profileOf("live"),
  };
}


/** Whether a session is streaming (End turn and Enter apply). */
export function isLive() {
  return live.state === "live";
}

/** Leaving the page: drop the stream at once. */
export function abortLive() {
  if (live.stream) {
    live.stream.abort();
  }
}
