// voxgate console: wires the page to the service's public API (REST + the streaming WebSocket protocol).
// page.js holds what the views share; live.js is the microphone, files.js the file upload.

import { health, keyStore, listModels } from "./api.js";
import { FORMATS, download } from "./formats.js";
import { bindFiles, fileDocument } from "./files.js";
import { abortLive, endTurn, isLive, liveDocument, liveStats, setLiveState, startLive, stopLive } from "./live.js";
import {
  $,
  clearErrors,
  currentView,
  openKeyPanel,
  saveSettings,
  settings,
  showError,
  switchView,
} from "./page.js";
import { h, languageName } from "./ui.js";

const MODES = {
  semantic: "A turn ends when you pause and the smart-turn model hears that you are done.",
  vad: "A turn ends after 700 ms of silence.",
  manual: "A turn ends only when you press End turn (or Enter).",
};

// -- models and settings -------------------------------------------------------------------------------------------

let models = [];

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
  for (const [selector, key] of [
    ["#profile-toggle", "profile"],
    ["#speakers-toggle", "speakers"],
  ]) {
    const toggle = $(selector);
    toggle.checked = settings[key];
    toggle.addEventListener("change", () => {
      settings[key] = toggle.checked;
      saveSettings();
    });
  }
  const words = $("#vocabulary");
  words.value = settings.vocabulary;
  words.addEventListener("input", () => {
    settings.vocabulary = words.value;
    saveSettings();
  });
}

// -- API key -------------------------------------------------------------------------------------------------------

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

// -- downloads -----------------------------------------------------------------------------------------------------

function currentDocument() {
  return currentView() === "live" ? liveDocument() : fileDocument();
}

function updateDownloads() {
  const doc = currentDocument();
  for (const button of document.querySelectorAll("[data-download]")) {
    button.disabled = !doc;
  }
}

function bindDownloads() {
  document.addEventListener("voxgate:transcript", updateDownloads);
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
        doc.source === "microphone"
          ? `voxgate-live-${doc.createdAt.slice(0, 19).replace(/[:T]/g, "-")}`
          : doc.source.replace(/\.[^.]+$/, "") || "transcript";
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
    if (e.key === "Enter" && currentView() === "live" && isLive() && !(e.target instanceof HTMLInputElement)) {
      e.preventDefault();
      endTurn();
    }
  });
  window.addEventListener("pagehide", abortLive);
  setLiveState("idle", "Idle");
  switchView("live");
  liveStats();
  setReady(false);
  loadServer();
}

main();
