// The page's shared parts: its settings, the alerts, the API key prompt, and which view (live or file) is on screen
// with that view's numbers and voice profile.

import { keyStore } from "./api.js";
import { ProfilePanel } from "./profile.js";
import { h } from "./ui.js";

export const $ = (selector) => document.querySelector(selector);
const SETTINGS_KEY = "voxgate.console.settings";

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

export function showError(error, context = "") {
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

export function showNotice(message) {
  const notice = h(
    "div",
    { class: "alert notice" },
    h("div", { class: "alert-body" }, h("strong", {}, "Note"), h("p", {}, message)),
    h("button", { class: "alert-close", type: "button", title: "Dismiss", onclick: () => notice.remove() }, "×"),
  );
  $("#alerts").append(notice);
}

export function clearErrors() {
  $("#alerts").replaceChildren();
}

export function openKeyPanel(hint = "") {
  const panel = $("#key-panel");
  panel.hidden = false;
  $("#key-hint").textContent = hint;
  $("#key-input").value = keyStore.get();
  $("#key-remember").checked = keyStore.remembered();
  $("#key-input").focus();
}

// -- settings ------------------------------------------------------------------------------------------------------

function savedSettings() {
  try {
    const saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) || "{}");
    return saved && typeof saved === "object" ? saved : {};
  } catch {
    return {}; // written by another version, or by hand: start from the defaults
  }
}

export const settings = {
  model: "",
  language: "",
  mode: "semantic",
  profile: true,
  speakers: false,
  vocabulary: "",
  ...savedSettings(),
};

export function saveSettings() {
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
}

function vocabulary() {
  return settings.vocabulary
    .split(/[,\n]/)
    .map((p) => p.trim())
    .filter(Boolean);
}

export function baseConfig() {
  const config = {
    includeWordTimestamps: true,
    voiceProfileConfig: { enableVoiceProfile: settings.profile, topN: 3 },
  };
  if (settings.speakers) {
    config.diarizationConfig = { enableSpeakerDiarization: true };
  }
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

// -- views, profile and stats --------------------------------------------------------------------------------------

const profile = new ProfilePanel($("#profile"), $("#features"), $("#profile-meta"));
// Per view: the overall profile, each speaker's own (diarized: tag -> profile), which one is shown (0: overall).
const views = {
  live: { profile: null, voices: new Map(), selected: 0, stats: [] },
  file: { profile: null, voices: new Map(), selected: 0, stats: [] },
};
let view = "live";

function renderStats(rows) {
  $("#stats").replaceChildren(
    ...rows.map(([name, value]) =>
      h("div", { class: name === "Model" ? "stat wide" : "stat" }, h("dt", {}, name), h("dd", {}, value)),
    ),
  );
}

/** Keep `which` view's numbers; show them if that view is on screen. */
export function setStats(which, rows) {
  views[which].stats = rows;
  if (view === which) {
    renderStats(rows);
  }
}

function renderProfile() {
  const v = views[view];
  const shown = v.selected && v.voices.has(v.selected) ? v.voices.get(v.selected) : v.profile;
  if (shown) {
    profile.update(shown);
  } else {
    profile.reset();
  }
}

/** The speaker picker above the bars: the overall profile, then each speaker's own (only when there are speakers). */
function renderVoices() {
  const v = views[view];
  const box = $("#profile-voices");
  box.hidden = v.voices.size === 0;
  const choose = (tag) => () => {
    v.selected = tag;
    renderVoices();
    renderProfile();
  };
  const button = (tag, label, kind) =>
    h("button", { type: "button", class: kind, "aria-pressed": String(v.selected === tag), onclick: choose(tag) }, label);
  const tags = [...v.voices.keys()].sort((a, b) => a - b);
  box.replaceChildren(
    ...(tags.length ? [button(0, view === "live" ? "Everyone" : "Whole file", "voice")] : []),
    ...tags.map((tag) => button(tag, `Speaker ${tag}`, `voice speaker speaker-${((tag - 1) % 8) + 1}`)),
  );
}

/** Keep `which` view's overall voice profile (null: none yet); show it if that view is on screen. */
export function setProfile(which, voiceProfile) {
  views[which].profile = voiceProfile;
  if (view === which) {
    renderProfile();
  }
}

/** Keep one speaker's own profile for `which` view (diarized streams send them as they change). */
export function setVoice(which, tag, voiceProfile) {
  const v = views[which];
  v.voices.set(tag, voiceProfile);
  if (view === which) {
    renderVoices();
    if (v.selected === tag) {
      renderProfile();
    }
  }
}

/** Replace `which` view's speakers' profiles: `[{speakerTag, voiceProfile}]` (a diarized file's `speakers`). */
export function setVoices(which, speakers) {
  const v = views[which];
  v.voices = new Map(speakers.map((s) => [s.speakerTag, s.voiceProfile]));
  if (!v.voices.has(v.selected)) {
    v.selected = 0;
  }
  if (view === which) {
    renderVoices();
    renderProfile();
  }
}

export function switchView(next) {
  view = next;
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const selected = tab.dataset.view === next;
    tab.setAttribute("aria-selected", String(selected));
    $(`#view-${tab.dataset.view}`).hidden = !selected;
  }
  document.body.dataset.view = next;
  transcriptChanged(); // the download buttons now act on this view
  profile.reset();
  renderVoices();
  renderProfile();
  renderStats(views[next].stats);
  $("#profile-note").textContent =
    next === "live" ? "Updates as you speak, smoothed over the stream." : "Over the whole file.";
}

/** Say that a view's transcript changed (the download buttons listen). */
export function transcriptChanged() {
  document.dispatchEvent(new CustomEvent("voxgate:transcript"));
}

export function currentView() {
  return view;
}

export function profileOf(which) {
  return views[which].profile;
}
