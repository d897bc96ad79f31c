// voxgate console: wires the page to the service's public API (REST + the streaming WebSocket protocol).

import { ApiError, LiveStream, health, keyStore, listModels, transcribeFile } from "./api.js";
import { CaptureError, startCapture } from "./capture.js";
import { FORMATS, download } from "./formats.js";
import { ProfilePanel } from "./profile.js";
import { Timeline } from "./timeline.js";
import { FileTranscript, LiveTranscript } from "./transcript.js";
import { formatLatency, formatTime, h, languageName, quantile } from "./ui.js";

const $ = (selector) => document.querySelector(selector);
const SETTINGS_KEY = "voxgate.console.settings";

const MODES = {
  semantic: "A turn ends when you pause and the smart-turn model hears that you are done.",
  vad: "A turn ends after 700 ms of silence.",
  manual: "A turn ends only when you press End turn (or Enter).",
};

// -- errors --------------------------------------------------------------------------------------------------------

const TITLES = {
  unauthenticated: "API key needed",
  microphone_denied: "Microphone blocked",
  microphone_missing: "No microphone",
  microphone_busy: "Microphone busy",
  microphone_unavailable: "Microphone unavailable",
  microphone_error: "Microphone failed",
  network_error: "Server unreachable",
  connection_lost: "Connection lost",
  resource_exhausted: "Server busy",
  payload_too_large: "File too large",
  audio_decode_error: "Not audio we can read",
  empty_audio: "No audio",
  model_not_found: "Unknown model",
  model_unavailable: "Model unavailable",
  idle_timeout: "Stream timed out",
  timeout: "Took too long",
  provider_unauthorized: "Provider refused the key",
  provider_rate_limited: "Provider rate limit",
  provider_timeout: "Provider timed out",
  provider_error: "Provider failed",
};

function showError(error, context = "") {
  const code = error.code || "error";
  const title = TITLES[code] || (context ? `${context} failed` : "Something went wrong");
  const alert = h(
    "div",
    { class: "alert", role: "alert", "data-code": code },
    h("div", { class: "alert-body" }, h("strong", {}, title), h("p", {}, error.message || String(error))),
    h("code", {}, code),
    h("button", { class: "alert-close", type: "button", title: "Dismiss", onclick: () => alert.remove() }, "×"),
  );
  const alerts = $("#alerts");
  alerts.append(alert);
  while (alerts.childElementCount > 3) {
    alerts.firstElementChild.remove();
  }
  if (code === "unauthenticated") {
    openKeyPanel("This server requires an API key.");
  }
}

function clearErrors() {
  $("#alerts").replaceChildren();
}

// -- settings ------------------------------------------------------------------------------------------------------

const settings = {
  model: "",
  language: "",
  mode: "semantic",
  profile: true,
  vocabulary: "",
  ...JSON.parse(localStorage.getItem(SETTINGS_KEY) || "{}"),
};

function saveSettings() {
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
}

let models = [];

function vocabulary() {
  return settings.vocabulary
    .split(/[,\n]/)
    .map((p) => p.trim())
    .filter(Boolean);
}

function baseConfig() {
  const config = {
    includeWordTimestamps: true,
    voiceProfileConfig: { enableVoiceProfile: settings.profile, topN: 3 },
  };
  if (settings.model) {
    config.modelId = settings.model;
  }
  if (settings.language) {
    config.language = settings.language;
  }
  const prompts = vocabulary();
  if (prompts.length) {
    config.prompts = prompts;
  }
  return config;
}

function fillLanguages() {
  const select = $("#language");
  const model = models.find((m) => m.id === settings.model) || models.find((m) => m.default);
  const codes = model ? model.languages : [];
  const options = codes
    .map((code) => ({ code, name: languageName(code) }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const auto = model && !model.multilingual && codes.length === 1 ? [] : [h("option", { value: "" }, "Detect automatically")];
  select.replaceChildren(...auto, ...options.map((o) => h("option", { value: o.code }, o.name)));
  if (![...select.options].some((o) => o.value === settings.language)) {
    settings.language = select.options.length ? select.options[0].value : "";
  }
  select.value = settings.language;
}

function fillModels() {
  const select = $("#model");
  const local = models.filter((m) => !m.remote);
  const remote = models.filter((m) => m.remote);
  const option = (m) =>
    h(
      "option",
      { value: m.id, disabled: m.remote && !m.configured },
      m.id + (m.default ? " (default)" : "") + (m.remote && !m.configured ? " — no API key" : ""),
    );
  select.replaceChildren(
    h("optgroup", { label: "On this machine" }, ...local.map(option)),
    ...(remote.length ? [h("optgroup", { label: "Cloud providers" }, ...remote.map(option))] : []),
  );
  const usable = (id) => models.some((m) => m.id === id && (!m.remote || m.configured));
  if (!usable(settings.model)) {
    const fallback = models.find((m) => m.default) || local[0];
    settings.model = fallback ? fallback.id : "";
  }
  select.value = settings.model;
  fillLanguages();
}

async function loadServer() {
  const pill = $("#server-status");
  try {
    const info = await health();
    pill.textContent = `voxgate ${info.version}`;
    pill.className = "pill ok";
  } catch (error) {
    pill.textContent = "server unreachable";
    pill.className = "pill bad";
    showError(error, "Connecting to the server");
    return;
  }
  try {
    models = await listModels();
    fillModels();
    setReady(true);
  } catch (error) {
    setReady(false);
    if (error.code === "unauthenticated") {
      pill.textContent = "API key required";
      pill.className = "pill warn";
      openKeyPanel(keyStore.get() ? "That key was refused. Enter a valid key." : "This server requires an API key.");
    } else {
      showError(error, "Loading models");
    }
  }
}

function setReady(ready) {
  document.body.classList.toggle("ready", ready);
  $("#mic-start").disabled = !ready;
  $("#file-go").disabled = !ready || !fileState.file;
}

function bindSettings() {
  $("#model").addEventListener("change", (e) => {
    settings.model = e.target.value;
    fillLanguages();
    saveSettings();
  });
  $("#language").addEventListener("change", (e) => {
    settings.language = e.target.value;
    saveSettings();
  });
  for (const radio of document.querySelectorAll("input[name=turn-mode]")) {
    radio.checked = radio.value === settings.mode;
    radio.addEventListener("change", () => {
      settings.mode = radio.value;
      $("#mode-help").textContent = MODES[settings.mode];
      saveSettings();
    });
  }
  $("#mode-help").textContent = MODES[settings.mode];
  const profile = $("#profile-toggle");
  profile.checked = settings.profile;
  profile.addEventListener("change", () => {
    settings.profile = profile.checked;
    saveSettings();
  });
  const words = $("#vocabulary");
  words.value = settings.vocabulary;
  words.addEventListener("input", () => {
    settings.vocabulary = words.value;
    saveSettings();
  });
}

// -- API key -------------------------------------------------------------------------------------------------------

function openKeyPanel(hint = "") {
  const panel = $("#key-panel");
  panel.hidden = false;
  $("#key-hint").textContent = hint;
  $("#key-input").value = keyStore.get();
  $("#key-remember").checked = keyStore.remembered();
  $("#key-input").focus();
}

function bindKey() {
  const button = $("#key-button");
  const refresh = () => button.classList.toggle("set", Boolean(keyStore.get()));
  refresh();
  button.addEventListener("click", () => {
    const panel = $("#key-panel");
    if (panel.hidden) {
      openKeyPanel("");
    } else {
      panel.hidden = true;
    }
  });
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    keyStore.set($("#key-input").value.trim(), $("#key-remember").checked);
    $("#key-panel").hidden = true;
    refresh();
    clearErrors();
    loadServer();
  });
  $("#key-clear").addEventListener("click", () => {
    keyStore.set("", false);
    $("#key-input").value = "";
    refresh();
  });
}

// -- views, profile and stats --------------------------------------------------------------------------------------

const profile = new ProfilePanel($("#profile"), $("#features"), $("#profile-meta"));
const views = { live: { profile: null, stats: [] }, file: { profile: null, stats: [] } };
let view = "live";

function renderStats(rows) {
  $("#stats").replaceChildren(
    ...rows.map(([name, value]) =>
      h("div", { class: name === "Model" ? "stat wide" : "stat" }, h("dt", {}, name), h("dd", {}, value)),
    ),
  );
}

/** Keep `which` view's numbers; show them if that view is on screen. */
function setStats(which, rows) {
  views[which].stats = rows;
  if (view === which) {
    renderStats(rows);
  }
}

/** Keep `which` view's voice profile (null: none yet); show it if that view is on screen. */
function setProfile(which, voiceProfile) {
  views[which].profile = voiceProfile;
  if (view !== which) {
    return;
  }
  if (voiceProfile) {
    profile.update(voiceProfile);
  } else {
    profile.reset();
  }
}

function switchView(next) {
  view = next;
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const selected = tab.dataset.view === next;
    tab.setAttribute("aria-selected", String(selected));
    $(`#view-${tab.dataset.view}`).hidden = !selected;
  }
  document.body.dataset.view = next;
  profile.reset();
  if (views[next].profile) {
    profile.update(views[next].profile);
  }
  renderStats(views[next].stats);
  $("#profile-note").textContent =
    next === "live" ? "Updates as you speak, smoothed over the stream." : "Over the whole file.";
}

// -- live microphone -----------------------------------------------------------------------------------------------

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

function setLiveState(state, label) {
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

function liveStats() {
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
  liveStats();
  updateDownloads();
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
    updateDownloads();
  },
  onVoiceProfile(p) {
    live.profiles += 1;
    setProfile("live", p);
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

async function startLive() {
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

async function stopLive() {
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

function endTurn() {
  if (live.state !== "live" || !live.stream) {
    return;
  }
  live.endTurnAt.set(live.openTurn, performance.now());
  live.stream.endTurn();
}

function liveDocument() {
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
      words: t.wordTimestamps || [],
    })),
    voiceProfile: views.live.profile,
  };
}

// -- files ---------------------------------------------------------------------------------------------------------

const fileState = { file: null, url: null, response: null, controller: null };
const fileTranscript = new FileTranscript($("#file-transcript"), $("#player"));

function chooseFile(file) {
  if (!file) {
    return;
  }
  if (fileState.url) {
    URL.revokeObjectURL(fileState.url);
  }
  fileState.file = file;
  fileState.url = URL.createObjectURL(file);
  fileState.response = null;
  $("#player").src = fileState.url;
  $("#file-name").textContent = file.name;
  $("#file-size").textContent = `${(file.size / 1024 / 1024).toFixed(2)} MB`;
  $("#file-card").hidden = false;
  fileTranscript.clear();
  setProfile("file", null);
  updateDownloads();
  transcribeChosen();
}

async function transcribeChosen() {
  if (!fileState.file || !document.body.classList.contains("ready")) {
    return;
  }
  clearErrors();
  if (fileState.controller) {
    fileState.controller.abort();
  }
  const controller = new AbortController();
  fileState.controller = controller;
  const started = performance.now();
  const ticker = setInterval(() => {
    $("#file-status").textContent = `Transcribing… ${((performance.now() - started) / 1000).toFixed(1)} s`;
  }, 100);
  $("#file-status").textContent = "Uploading…";
  document.body.classList.add("busy");
  $("#file-go").disabled = true;
  try {
    const response = await transcribeFile(fileState.file, baseConfig(), controller.signal);
    const seconds = (performance.now() - started) / 1000;
    fileState.response = response;
    fileTranscript.show(response);
    const audio = response.usage.transcribedAudioMs / 1000;
    const t = response.transcription;
    const spoken = [...new Set((response.segments || []).map((s) => s.language).filter(Boolean))];
    const language =
      spoken.length > 1
        ? spoken.map(languageName).join(", ")
        : t.language
          ? `${languageName(t.language)}${t.languageProbability != null ? ` (${Math.round(t.languageProbability * 100)}%)` : ""}`
          : "—";
    $("#file-status").textContent = `Done in ${seconds.toFixed(1)} s`;
    for (const warning of response.warnings || []) {
      showNotice(warning);
    }
    setStats("file", [
      ["Model", response.usage.modelId],
      ["Audio", formatTime(audio)],
      ["Language", language],
      ["Words", String((t.wordTimestamps || []).length)],
      ["Segments", String((response.segments || []).length)],
      ["Processing", `${seconds.toFixed(2)} s`],
      ["Speed", seconds > 0 ? `${(audio / seconds).toFixed(1)}× real time` : "—"],
    ]);
    setProfile("file", response.voiceProfile || null);
  } catch (error) {
    if (error.name !== "AbortError") {
      $("#file-status").textContent = "Failed";
      showError(error, "Transcription");
    }
  } finally {
    clearInterval(ticker);
    if (fileState.controller === controller) {
      fileState.controller = null;
      document.body.classList.remove("busy");
      $("#file-go").disabled = !fileState.file;
    }
    updateDownloads();
  }
}

function showNotice(message) {
  const notice = h(
    "div",
    { class: "alert notice" },
    h("div", { class: "alert-body" }, h("strong", {}, "Note"), h("p", {}, message)),
    h("button", { class: "alert-close", type: "button", title: "Dismiss", onclick: () => notice.remove() }, "×"),
  );
  $("#alerts").append(notice);
}

function fileDocument() {
  const r = fileState.response;
  const segments = (r.segments && r.segments.length ? r.segments : []).map((s) => ({
    start: s.startTimeSeconds,
    end: s.endTimeSeconds,
    text: s.text.trim(),
    language: s.language || null,
    words: s.wordTimestamps || [],
  }));
  if (!segments.length && r.transcription.transcript) {
    const words = r.transcription.wordTimestamps || [];
    segments.push({
      start: words.length ? words[0].startTimeSeconds : 0,
      end: words.length ? words[words.length - 1].endTimeSeconds : r.usage.transcribedAudioMs / 1000,
      text: r.transcription.transcript,
      language: r.transcription.language || null,
      words,
    });
  }
  return {
    source: fileState.file.name,
    modelId: r.usage.modelId,
    createdAt: new Date().toISOString(),
    durationSeconds: r.usage.transcribedAudioMs / 1000,
    language: r.transcription.language || null,
    segments,
    voiceProfile: r.voiceProfile || null,
    response: r,
  };
}

function bindFiles() {
  const input = $("#file-input");
  input.addEventListener("change", () => chooseFile(input.files[0]));
  const zone = $("#dropzone");
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    chooseFile(e.dataTransfer.files[0]);
  });
  $("#file-go").addEventListener("click", transcribeChosen);
}

// -- downloads -----------------------------------------------------------------------------------------------------

function currentDocument() {
  if (view === "live") {
    return live.finals.length ? liveDocument() : null;
  }
  return fileState.response ? fileDocument() : null;
}

function updateDownloads() {
  const doc = currentDocument();
  for (const button of document.querySelectorAll("[data-download]")) {
    button.disabled = !doc;
  }
}

function bindDownloads() {
  // one button group per view, each acting on the view on screen
  for (const group of document.querySelectorAll(".downloads")) {
    group.replaceChildren(
      h("span", {}, "Download"),
      ...Object.keys(FORMATS).map((format) =>
        h("button", { type: "button", "data-download": format, disabled: true }, format.toUpperCase()),
      ),
    );
  }
  for (const button of document.querySelectorAll("[data-download]")) {
    button.addEventListener("click", () => {
      const doc = currentDocument();
      if (!doc) {
        return;
      }
      const stem =
        view === "live"
          ? `voxgate-live-${live.started.slice(0, 19).replace(/[:T]/g, "-")}`
          : fileState.file.name.replace(/\.[^.]+$/, "") || "transcript";
      download(doc, button.dataset.download, stem);
    });
  }
}

// -- start ---------------------------------------------------------------------------------------------------------

function main() {
  bindSettings();
  bindKey();
  bindFiles();
  bindDownloads();
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => switchView(tab.dataset.view));
  }
  $("#mic-start").addEventListener("click", startLive);
  $("#mic-stop").addEventListener("click", stopLive);
  $("#end-turn").addEventListener("click", endTurn);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && view === "live" && live.state === "live" && !(e.target instanceof HTMLInputElement)) {
      e.preventDefault();
      endTurn();
    }
  });
  window.addEventListener("pagehide", () => live.stream && live.stream.abort());
  setLiveState("idle", "Idle");
  switchView("live");
  liveStats();
  setReady(false);
  loadServer();
}

main();
