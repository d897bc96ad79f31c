// Transcript views: the live turn list (partials settling into finals) and a file's transcript that follows the
// audio player word by word.

import { alignWords } from "./formats.js";
import { h, formatTime, formatLatency, languageName, speakerChip } from "./ui.js";

function wordTitle(word) {
  const confidence = Math.round(word.confidence * 100);
  return `${formatTime(word.startTimeSeconds)} – ${formatTime(word.endTimeSeconds)} · confidence ${confidence}%`;
}

function wordSpans(text, words) {
  const out = [];
  for (const { token, word, space } of alignWords(text, words)) {
    if (space) {
      out.push(" ");
    }
    if (!word) {
      out.push(token);
      continue;
    }
    out.push(
      h(
        "span",
        {
          class: word.confidence < 0.5 ? "word low" : "word",
          title: wordTitle(word),
          "data-start": word.startTimeSeconds,
          "data-end": word.endTimeSeconds,
        },
        token,
      ),
    );
  }
  return out;
}

export class LiveTranscript {
  /** @param {HTMLOListElement} list @param {HTMLElement} empty */
  constructor(list, empty) {
    this.list = list;
    this.empty = empty;
    this.reset();
  }

  reset() {
    this.list.replaceChildren();
    this.items = new Map();
    this.empty.hidden = false;
  }

  item(turn) {
    let item = this.items.get(turn);
    if (!item) {
      const meta = h("div", { class: "turn-meta" }, h("span", { class: "turn-index" }, `Turn ${turn + 1}`));
      const badges = h("div", { class: "turn-badges" });
      const text = h("p", { class: "turn-text" });
      const element = h("li", { class: "turn partial", "data-turn": turn }, h("header", {}, meta, badges), text);
      item = { element, meta, badges, text, final: false };
      this.items.set(turn, item);
      // keep turns in order even if a late final arrives after the next turn's first partial
      const next = [...this.items.keys()].filter((k) => k > turn).sort((a, b) => a - b)[0];
      const before = next === undefined ? null : this.items.get(next).element;
      this.list.insertBefore(element, before);
      this.empty.hidden = true;
    }
    return item;
  }

  partial(t) {
    const item = this.item(t.turnIndex);
    if (item.final) {
      return;
    }
    const words = t.transcript.split(/\s+/).filter(Boolean);
    const stable = Math.min(words.length, t.stableWordCount ?? 0);
    item.text.replaceChildren(
      h("span", { class: "stable" }, words.slice(0, stable).join(" ")),
      stable && stable < words.length ? " " : "",
      h("span", { class: "unstable" }, words.slice(stable).join(" ")),
    );
    this.follow();
  }

  ending(event) {
    const item = this.item(event.turnIndex);
    if (item.final) {
      return;
    }
    const how =
      event.reason === "semantic" && event.probability != null
        ? `end of turn · ${Math.round(event.probability * 100)}%`
        : `end of turn · ${event.reason}`;
    item.badges.replaceChildren(h("span", { class: "badge pending" }, how));
    item.element.classList.add("ending");
  }

  /**
   * @param {object} t the final transcription
   * @param {{afterSpeech: number|null, afterEndTurn: number|null}} latency seconds
   */
  final(t, latency) {
    if (!t.transcript.trim()) {
      const item = this.items.get(t.turnIndex);
      if (item) {
        item.element.remove();
        this.items.delete(t.turnIndex);
      }
      this.empty.hidden = this.items.size > 0;
      return;
    }
    const item = this.item(t.turnIndex);
    item.final = true;
    item.element.classList.remove("partial", "ending");
    item.element.classList.add("final");
    item.element.dataset.final = "true";
    item.text.replaceChildren(...wordSpans(t.transcript, t.wordTimestamps || []));
    const meta = [speakerChip(t.speakerTag), h("span", { class: "turn-index" }, `Turn ${t.turnIndex + 1}`)];
    meta.push(h("span", {}, `${formatTime(t.startTimeSeconds)} – ${formatTime(t.endTimeSeconds)}`));
    if (t.language) {
      const p = t.languageProbability != null ? ` ${Math.round(t.languageProbability * 100)}%` : "";
      meta.push(h("span", {}, `${languageName(t.language)}${p}`));
    }
    item.meta.replaceChildren(...meta);
    const badges = [];
    if (latency.afterSpeech != null) {
      badges.push(
        h(
          "span",
          {
            class: "badge latency",
            title: "From the end of the turn's last word to this final on screen (includes the end-of-turn wait)",
          },
          `final ${formatLatency(latency.afterSpeech)} after speech`,
        ),
      );
    }
    if (latency.afterEndTurn != null) {
      badges.push(
        h(
          "span",
          { class: "badge latency", title: "From pressing End turn to this final on screen" },
          `${formatLatency(latency.afterEndTurn)} after End turn`,
        ),
      );
    }
    item.badges.replaceChildren(...badges);
    this.follow();
  }

  follow() {
    const box = this.list.parentElement;
    if (box) {
      box.scrollTop = box.scrollHeight;
    }
  }
}

/** A diarized response's utterances as segments: each with its own words (those of its speaker inside its span). */
export function speakerTurns(response) {
  const words = response.transcription.wordTimestamps || [];
  return response.utterances.map((u) => ({
    text: u.transcript,
    speakerTag: u.speakerTag,
    startTimeSeconds: u.startTimeSeconds,
    endTimeSeconds: u.endTimeSeconds,
    wordTimestamps: words.filter(
      (w) =>
        w.speakerTag === u.speakerTag &&
        w.startTimeSeconds >= u.startTimeSeconds - 1e-6 &&
        w.endTimeSeconds <= u.endTimeSeconds + 1e-6,
    ),
  }));
}

export class FileTranscript {
  /** @param {HTMLElement} root @param {HTMLAudioElement} player */
  constructor(root, player) {
    this.root = root;
    this.player = player;
    this.words = [];
    this.current = -1;
    this.playing = false;
    player.addEventListener("play", () => {
      this.playing = true;
      this.follow();
    });
    player.addEventListener("pause", () => (this.playing = false));
    player.addEventListener("ended", () => (this.playing = false));
    player.addEventListener("seeked", () => this.highlight(player.currentTime));
    player.addEventListener("timeupdate", () => this.highlight(player.currentTime));
  }

  clear() {
    this.root.replaceChildren();
    this.words = [];
    this.current = -1;
  }

  /** Show a POST /stt/v1/transcribe response: by speaker turn when it was diarized, else by segment. */
  show(response) {
    this.clear();
    const segments = response.utterances
      ? speakerTurns(response)
      : response.segments && response.segments.length
      ? response.segments
      : [
          {
            text: response.transcription.transcript,
            startTimeSeconds: 0,
            endTimeSeconds: response.usage.transcribedAudioMs / 1000,
            wordTimestamps: response.transcription.wordTimestamps || [],
          },
        ];
    for (const segment of segments) {
      if (!segment.text.trim()) {
        continue;
      }
      const stamp = h(
        "button",
        { class: "stamp", type: "button", title: "Play from here", onclick: () => this.seek(segment.startTimeSeconds) },
        formatTime(segment.startTimeSeconds),
      );
      const spans = wordSpans(segment.text.trim(), segment.wordTimestamps || []);
      const paragraph = h(
        "p",
        { class: "segment" },
        h("span", { class: "segment-head" }, stamp, speakerChip(segment.speakerTag)),
        h("span", { class: "segment-text" }, ...spans),
      );
      if (segment.language && response.transcription.language && segment.language !== response.transcription.language) {
        paragraph.append(h("span", { class: "badge segment-language" }, languageName(segment.language)));
      }
      this.root.append(paragraph);
    }
    this.words = [...this.root.querySelectorAll(".word")].map((element) => ({
      element,
      start: Number(element.dataset.start),
      end: Number(element.dataset.end),
    }));
    for (const w of this.words) {
      w.element.addEventListener("click", () => this.seek(w.start));
    }
    if (this.words.length === 0 && !this.root.childElementCount) {
      this.root.append(h("p", { class: "empty" }, "No speech was found in this file."));
    }
  }

  seek(seconds) {
    this.player.currentTime = seconds;
    this.player.play().catch(() => {});
  }

  /** Follow playback every frame (timeupdate alone fires only about four times a second). */
  follow() {
    if (!this.playing) {
      return;
    }
    this.highlight(this.player.currentTime);
    requestAnimationFrame(() => this.follow());
  }

  /** Mark the word being spoken at `time` and those already spoken. */
  highlight(time) {
    // the last word that started at or before `time`
    let low = 0;
    let high = this.words.length - 1;
    let index = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (this.words[middle].start <= time) {
        index = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    if (index === this.current) {
      return;
    }
    const from = Math.min(index, this.current);
    const to = Math.max(index, this.current);
    for (let i = Math.max(0, from); i <= to && i < this.words.length; i++) {
      this.words[i].element.classList.toggle("spoken", i < index);
      this.words[i].element.classList.toggle("current", i === index);
    }
    this.current = index;
    if (index >= 0 && this.playing) {
      const element = this.words[index].element;
      const box = this.root.getBoundingClientRect();
      const rect = element.getBoundingClientRect();
      if (rect.top < box.top || rect.bottom > box.bottom) {
        element.scrollIntoView({ block: "center", behavior: "smooth" });
      }
    }
  }
}
