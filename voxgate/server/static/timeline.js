// The live timeline: input level, speech (from the server's speechStarted/speechStopped), turns (from finals) and
// end-of-turn markers, on one scrolling time axis of the last `span` seconds of the stream.

const FLOOR_DB = -60;

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export class Timeline {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas, { span = 20 } = {}) {
    this.canvas = canvas;
    this.span = span;
    this.running = false;
    this.colors = null;
    this.reset();
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  reset() {
    this.levels = []; // {t, rms}
    this.speech = []; // {start, end|null}
    this.turns = new Map(); // turn → {start, end, final}
    this.markers = []; // {t, reason, probability, turn}
    this.now = 0;
    this.draw();
  }

  level(t, rms) {
    this.levels.push({ t, rms });
    this.now = Math.max(this.now, t);
    if (this.levels.length > 4096) {
      // an hour-long session would otherwise redraw 36,000 bars a frame, nearly all off screen
      const from = this.now - this.span - 1;
      this.levels = this.levels.filter((l) => l.t >= from);
    }
  }

  speechStarted(t) {
    this.speech.push({ start: t, end: null });
  }

  speechEnded(t) {
    const open = this.speech.findLast((s) => s.end === null);
    if (open) {
      open.end = t;
    } else {
      this.speech.push({ start: t, end: t });
    }
  }

  turn(index, start, end, final) {
    const known = this.turns.get(index);
    if (known && known.final && !final) {
      return;
    }
    this.turns.set(index, { start, end, final });
  }

  endOfTurn(t, reason, probability, turn) {
    this.markers.push({ t, reason, probability, turn });
  }

  start() {
    this.running = true;
    const frame = () => {
      if (!this.running) {
        return;
      }
      this.draw();
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  stop() {
    this.running = false;
    this.draw();
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) {
      return;
    }
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);

    // the stylesheet's colours, read once: getComputedStyle on every frame would restyle for nothing
    this.colors ??= {
      grid: css("--line") || "#2a313b",
      muted: css("--muted") || "#8b95a3",
      level: css("--level") || "#5b6b80",
      speech: css("--speech") || "rgba(52, 211, 153, 0.18)",
      speechEdge: css("--accent") || "#34d399",
      turn: css("--turn") || "#7c9cff",
      marker: css("--marker") || "#fbbf24",
    };
    const colors = this.colors;
    const end = Math.max(this.now, this.span);
    const begin = end - this.span;
    const axis = 18;
    const turnLane = 22;
    const top = 16;
    const waveBottom = height - axis - turnLane - 6;
    const mid = (top + waveBottom) / 2;
    const x = (t) => ((t - begin) / this.span) * width;

    // speech regions
    for (const s of this.speech) {
      const a = x(s.start);
      const b = x(s.end === null ? this.now : s.end);
      if (b < 0 || a > width) {
        continue;
      }
      g.fillStyle = colors.speech;
      g.fillRect(a, top, Math.max(1, b - a), waveBottom - top);
      g.fillStyle = colors.speechEdge;
      g.fillRect(a, top, 2, waveBottom - top);
    }

    // input level, mirrored around the middle
    const barWidth = Math.max(1, (0.1 / this.span) * width - 1);
    g.fillStyle = colors.level;
    for (const { t, rms } of this.levels) {
      const right = x(t);
      if (right < 0) {
        continue;
      }
      const db = rms > 0 ? 20 * Math.log10(rms) : FLOOR_DB;
      const amount = Math.min(1, Math.max(0.02, (db - FLOOR_DB) / -FLOOR_DB));
      const half = ((waveBottom - top) / 2) * amount;
      g.fillRect(right - barWidth, mid - half, barWidth, half * 2);
    }

    // turns
    g.font = "11px ui-sans-serif, system-ui, sans-serif";
    g.textBaseline = "middle";
    const laneTop = waveBottom + 6;
    for (const [index, turn] of this.turns) {
      const a = Math.max(0, x(turn.start));
      const b = Math.min(width, x(turn.end));
      if (b <= 0 || a >= width) {
        continue;
      }
      g.globalAlpha = turn.final ? 0.9 : 0.45;
      g.fillStyle = colors.turn;
      roundRect(g, a, laneTop, Math.max(4, b - a), turnLane - 6, 4);
      g.fill();
      g.globalAlpha = 1;
      if (b - a > 40) {
        g.fillStyle = "#0b0e12";
        g.fillText(`Turn ${index + 1}`, a + 6, laneTop + (turnLane - 6) / 2);
      }
    }

    // end-of-turn markers
    for (const m of this.markers) {
      const at = x(m.t);
      if (at < 0 || at > width) {
        continue;
      }
      g.strokeStyle = colors.marker;
      g.lineWidth = 2;
      g.beginPath();
      g.moveTo(at, top - 4);
      g.lineTo(at, laneTop + turnLane - 6);
      g.stroke();
      const label = m.reason === "semantic" && m.probability != null ? `end · ${Math.round(m.probability * 100)}%` : `end · ${m.reason}`;
      g.fillStyle = colors.marker;
      const w = g.measureText(label).width;
      g.fillText(label, Math.min(at + 4, width - w - 2), top - 6 + 4);
    }

    // time axis
    g.strokeStyle = colors.grid;
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(0, height - axis + 0.5);
    g.lineTo(width, height - axis + 0.5);
    g.stroke();
    g.fillStyle = colors.muted;
    g.textBaseline = "top";
    const step = this.span <= 10 ? 1 : this.span <= 30 ? 2 : 5;
    for (let t = Math.ceil(Math.max(0, begin) / step) * step; t <= end; t += step) {
      const at = x(t);
      g.fillRect(at, height - axis, 1, 4);
      if (at + 28 < width) {
        g.fillText(`${t}s`, at + 3, height - axis + 4);
      }
    }
    if (this.running) {
      g.fillStyle = colors.speechEdge;
      g.fillRect(x(this.now) - 1, top - 6, 2, waveBottom - top + 12);
    }
  }
}

function roundRect(g, x, y, w, h, r) {
  g.beginPath();
  g.moveTo(x + r, y);
  g.arcTo(x + w, y, x + w, y + h, r);
  g.arcTo(x + w, y + h, x, y + h, r);
  g.arcTo(x, y + h, x, y, r);
  g.arcTo(x, y, x + w, y, r);
  g.closePath();
}
