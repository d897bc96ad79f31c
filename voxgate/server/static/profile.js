// The voice profile panel: one group of bars per dimension. Bars are kept and re-used between updates, so their
// widths animate (CSS transition) as the profile moves instead of being redrawn from scratch.

import { h, languageName, formatTime } from "./ui.js";

const DIMENSIONS = [
  ["language", "Language"],
  ["emotion", "Emotion"],
  ["gender", "Gender"],
  ["age", "Age"],
  ["pitch", "Pitch"],
  ["vocalStyle", "Vocal style"],
  ["accent", "Accent"],
];

const FEATURES = [
  ["f0MedianHz", "Median pitch", (v) => `${Math.round(v)} Hz`],
  ["speakingRateWpm", "Speaking rate", (v) => `${Math.round(v)} wpm`],
  ["hnrDb", "Harmonics-to-noise", (v) => `${v.toFixed(1)} dB`],
  ["loudnessDbfs", "Loudness", (v) => `${v.toFixed(1)} dBFS`],
  ["snrDb", "Signal-to-noise", (v) => `${v.toFixed(1)} dB`],
  ["pauseRatio", "Pauses", (v) => `${Math.round(v * 100)} %`],
];

function prettyLabel(dimension, label) {
  if (dimension === "language") {
    return languageName(label);
  }
  if (label === "unclear") {
    return "Unclear";
  }
  const spaced = label.replace(/([a-z])([A-Z])/g, "$1 $2").replace(/_/g, " ");
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}

export class ProfilePanel {
  /** @param {HTMLElement} root @param {HTMLElement} features @param {HTMLElement} meta */
  constructor(root, features, meta) {
    this.root = root;
    this.features = features;
    this.meta = meta;
    this.groups = new Map();
    this.updates = 0;
    this.reset();
  }

  reset() {
    this.root.replaceChildren();
    this.features.replaceChildren();
    this.groups.clear();
    this.updates = 0;
    this.latest = null;
    this.meta.textContent = "";
    this.root.append(
      h("p", { class: "empty", id: "profile-empty" }, "The profile appears after about a second of speech."),
    );
  }

  group(dimension, title) {
    let group = this.groups.get(dimension);
    if (!group) {
      const rows = h("div", { class: "bars" });
      const section = h("section", { class: "dimension", "data-dimension": dimension }, h("h3", {}, title), rows);
      this.root.append(section);
      group = { section, rows, slots: [] };
      this.groups.set(dimension, group);
    }
    return group;
  }

  /** Show a `voiceProfile` object (REST response or WebSocket update). */
  update(profile) {
    this.latest = profile;
    this.updates += 1;
    const empty = this.root.querySelector("#profile-empty");
    if (empty) {
      empty.remove();
    }
    for (const [dimension, title] of DIMENSIONS) {
      const items = profile[dimension] || [];
      const group = this.group(dimension, title);
      group.section.hidden = items.length === 0;
      while (group.slots.length < items.length) {
        const label = h("span", { class: "bar-label" });
        const value = h("span", { class: "bar-value" });
        const fill = h("span", { class: "bar-fill" });
        const row = h("div", { class: "bar" }, label, h("span", { class: "bar-track" }, fill), value);
        group.rows.append(row);
        group.slots.push({ row, label, value, fill });
      }
      group.slots.forEach((slot, i) => {
        const item = items[i];
        slot.row.hidden = !item;
        if (!item) {
          return;
        }
        const percent = Math.round(item.confidence * 100);
        slot.row.dataset.label = item.label;
        slot.row.classList.toggle("top", i === 0);
        slot.label.textContent = prettyLabel(dimension, item.label);
        slot.label.title = item.label;
        slot.value.textContent = `${percent}%`;
        slot.fill.style.width = `${Math.max(1, percent)}%`;
      });
    }
    this.showFeatures(profile.features || {});
    const parts = [];
    if (profile.speechSeconds) {
      parts.push(`${profile.speechSeconds.toFixed(1)} s of speech`);
    }
    if (typeof profile.timeSeconds === "number") {
      parts.push(`at ${formatTime(profile.timeSeconds)}`);
    }
    if (profile.scope === "turn") {
      parts.push(`turn ${profile.turnIndex + 1}`);
    }
    this.meta.textContent = parts.join(" · ");
    this.root.dataset.updates = String(this.updates);
  }

  showFeatures(values) {
    const rows = [];
    for (const [key, title, format] of FEATURES) {
      const value = values[key];
      if (typeof value === "number" && Number.isFinite(value)) {
        rows.push(h("div", { class: "feature" }, h("dt", {}, title), h("dd", {}, format(value))));
      }
    }
    this.features.replaceChildren(...rows);
  }
}
