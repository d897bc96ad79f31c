// Transcript downloads: plain text, JSON, SubRip (SRT) and WebVTT, from one document shape shared by the live
// session and file results:
//   {source, modelId, language, durationSeconds, createdAt,
//    segments: [{start, end, text, speaker, words: [{word, startTimeSeconds, endTimeSeconds, confidence}], ...}],
//    voiceProfile, ...}

const CUE_MAX_CHARS = 84; // two lines of 42, the common subtitle limit
const LINE_MAX_CHARS = 42;
const CUE_MAX_SECONDS = 6;

const EDGE_PUNCTUATION = /^[^\p{L}\p{N}_]+|[^\p{L}\p{N}_]+$/gu;

function bare(token) {
  return token.replace(EDGE_PUNCTUATION, "");
}

/**
 * Pair the transcript's tokens (with punctuation) with the API's bare timed words, so the page can show
 * "Americans," while timing "Americans". Falls back to the bare words when the two do not line up.
 */
export function alignWords(text, words) {
  const tokens = text.split(/\s+/).filter(Boolean);
  const speakable = tokens.filter((t) => bare(t));
  if (words.length === 0) {
    return tokens.map((token, i) => ({ token, word: null, space: i > 0 }));
  }
  if (speakable.length !== words.length) {
    // Languages written without spaces (Chinese, Japanese, Thai) have one token for many words.
    const spaced = /\s/.test(text.trim());
    return words.map((word, i) => ({ token: word.word, word, space: spaced && i > 0 }));
  }
  let j = 0;
  return tokens.map((token, i) => ({ token, word: bare(token) ? words[j++] : null, space: i > 0 }));
}

/** Seconds as HH:MM:SS<sep>mmm. */
export function clock(seconds, separator) {
  let ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3600000);
  ms -= h * 3600000;
  const m = Math.floor(ms / 60000);
  ms -= m * 60000;
  const s = Math.floor(ms / 1000);
  ms -= s * 1000;
  const two = (n) => String(n).padStart(2, "0");
  return `${two(h)}:${two(m)}:${two(s)}${separator}${String(ms).padStart(3, "0")}`;
}

/**
 * Break a cue's text into lines of at most LINE_MAX_CHARS at spaces: two balanced lines when that fits, more (filled
 * greedily) for the rare cue that cannot be split by time (a segment without word times).
 */
export function wrapLines(text) {
  if (text.length <= LINE_MAX_CHARS) {
    return [text];
  }
  const words = text.split(" ");
  let best = null;
  for (let i = 1; i < words.length; i++) {
    const lines = [words.slice(0, i).join(" "), words.slice(i).join(" ")];
    const worst = Math.max(lines[0].length, lines[1].length);
    if (best === null || worst < best.worst) {
      best = { worst, lines };
    }
  }
  if (best && best.worst <= LINE_MAX_CHARS) {
    return best.lines;
  }
  const lines = [];
  for (const word of words) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + word.length <= LINE_MAX_CHARS) {
      lines[last] += ` ${word}`;
    } else {
      lines.push(word);
    }
  }
  return lines;
}

/** Subtitle cues: each segment, split at word boundaries when it is too long to read at once. */
export function cues(doc) {
  const out = [];
  for (const segment of doc.segments) {
    const text = segment.text.trim();
    if (!text) {
      continue;
    }
    const words = segment.words || [];
    const speaker = segment.speaker || null;
    if (words.length === 0 || (text.length <= CUE_MAX_CHARS && segment.end - segment.start <= CUE_MAX_SECONDS)) {
      out.push({ start: segment.start, end: segment.end, text, speaker });
      continue;
    }
    let current = null;
    // cue text keeps the transcript's punctuation; its times come from the timed words
    for (const { token: word, word: w, space } of alignWords(text, words)) {
      if (!w) {
        if (current) {
          current.text += space ? ` ${word}` : word;
        }
        continue;
      }
      if (
        current &&
        (current.text.length + 1 + word.length > CUE_MAX_CHARS || w.endTimeSeconds - current.start > CUE_MAX_SECONDS)
      ) {
        out.push(current);
        current = null;
      }
      if (current) {
        current.text += space ? ` ${word}` : word;
        current.end = w.endTimeSeconds;
      } else {
        current = { start: w.startTimeSeconds, end: w.endTimeSeconds, text: word, speaker };
      }
    }
    if (current) {
      out.push(current);
    }
  }
  // Players drop a cue that ends before it starts and show overlapping cues together: keep them ordered.
  for (let i = 0; i < out.length; i++) {
    out[i].end = Math.max(out[i].end, out[i].start + 0.001);
    if (i + 1 < out.length && out[i].end > out[i + 1].start) {
      out[i].end = Math.max(out[i].start + 0.001, out[i + 1].start);
    }
  }
  return out;
}

/** "Speaker 2" for a tagged segment or cue, else null. */
function speakerName(part) {
  return part.speaker ? `Speaker ${part.speaker}` : null;
}

export function toText(doc) {
  return doc.segments
    .filter((s) => s.text.trim())
    .map((s) => (speakerName(s) ? `${speakerName(s)}: ${s.text.trim()}` : s.text.trim()))
    .join("\n") + "\n";
}

export function toSrt(doc) {
  return cues(doc)
    .map((c, i) => {
      const lines = wrapLines(speakerName(c) ? `${speakerName(c)}: ${c.text}` : c.text);
      return `${i + 1}\n${clock(c.start, ",")} --> ${clock(c.end, ",")}\n${lines.join("\n")}\n`;
    })
    .join("\n");
}

export function toVtt(doc) {
  // WebVTT names the speaker with a voice span: <v Speaker 2>text
  const body = cues(doc)
    .map((c) => {
      const lines = wrapLines(c.text);
      if (speakerName(c)) {
        lines[0] = `<v ${speakerName(c)}>${lines[0]}`;
      }
      return `${clock(c.start, ".")} --> ${clock(c.end, ".")}\n${lines.join("\n")}\n`;
    })
    .join("\n");
  return `WEBVTT\n\n${body}`;
}

export function toJson(doc) {
  return JSON.stringify(doc, null, 2) + "\n";
}

export const FORMATS = {
  txt: { render: toText, type: "text/plain;charset=utf-8" },
  json: { render: toJson, type: "application/json" },
  srt: { render: toSrt, type: "application/x-subrip;charset=utf-8" },
  vtt: { render: toVtt, type: "text/vtt;charset=utf-8" },
};

/** Offer `doc` as a file download in the given format. */
export function download(doc, format, basename) {
  const { render, type } = FORMATS[format];
  const blob = new Blob([render(doc)], { type });
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = `${basename}.${format}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
