// Small DOM and formatting helpers shared by the console's modules.

/** Create an element: h("div", {class: "x", onclick: fn}, child, "text", ...). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      element.append(child instanceof Node ? child : String(child));
    }
  }
  return element;
}

/** A speaker's chip ("Speaker 2"), coloured by its tag; null when there is no tag. */
export function speakerChip(tag) {
  if (!tag) {
    return null;
  }
  return h("span", { class: `speaker speaker-${((tag - 1) % 8) + 1}`, "data-speaker": tag }, `Speaker ${tag}`);
}

/** 83.4 → "1:23.4" */
export function formatTime(seconds) {
  const tenths = Math.max(0, Math.round(seconds * 10));
  const minutes = Math.floor(tenths / 600);
  const rest = (tenths - minutes * 600) / 10;
  return `${minutes}:${rest.toFixed(1).padStart(4, "0")}`;
}

/** 0.4321 → "432 ms", 2.5 → "2.50 s" */
export function formatLatency(seconds) {
  return seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${seconds.toFixed(2)} s`;
}

let displayNames = null;
try {
  displayNames = new Intl.DisplayNames(["en"], { type: "language" });
} catch {
  displayNames = null;
}

/** "de" → "German" (the browser's own language names; the code itself where it has none). */
export function languageName(code) {
  if (!code) {
    return "";
  }
  try {
    const name = displayNames && displayNames.of(code);
    return name && name !== code ? name : code;
  } catch {
    return code;
  }
}

/** The value at quantile q (0..1) of a list of numbers, by linear interpolation. */
export function quantile(values, q) {
  if (values.length === 0) {
    return null;
  }
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}
