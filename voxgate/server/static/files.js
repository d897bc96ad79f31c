// Files: upload through POST /stt/v1/transcribe, then play back with the words highlighted as they are spoken.

import { transcribeFile } from "./api.js";
import {
  $,
  baseConfig,
  clearErrors,
  setProfile,
  setStats,
  setVoices,
  showError,
  showNotice,
  transcriptChanged,
} from "./page.js";
import { FileTranscript, speakerTurns } from "./transcript.js";
import { formatTime, languageName } from "./ui.js";

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
  setVoices("file", []);
  transcriptChanged();
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
      ...(response.utterances
        ? [["Speakers", String(new Set(response.utterances.map((u) => u.speakerTag)).size)]]
        : []),
      ["Processing", `${seconds.toFixed(2)} s`],
      ["Speed", seconds > 0 ? `${(audio / seconds).toFixed(1)}× real time` : "—"],
    ]);
    setProfile("file", response.voiceProfile || null);
    setVoices("file", response.speakers || []);
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
    transcriptChanged();
  }
}

/** The file's transcript for downloads (null until one is transcribed). */
export function fileDocument() {
  const r = fileState.response;
  if (!r) {
    return null;
  }
  const parts = r.utterances ? speakerTurns(r) : r.segments && r.segments.length ? r.segments : [];
  const segments = parts.map((s) => ({
    start: s.startTimeSeconds,
    end: s.endTimeSeconds,
    text: s.text.trim(),
    language: s.language || null,
    speaker: s.speakerTag || null,
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

export function bindFiles() {
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

