"""How well smart-turn v3.2 (voxgate.analysis.turn) tells a finished sentence from one cut mid-way, and what the
turn and VAD analyzers cost per call (CPU, one thread each).

Data: the 12 Harvard sentences in ../shared/data/en. "Complete" is the whole clip; "truncated" is the clip cut after
a word near 55% of its speech (table below, same as tests/analysis/test_turn.py). Each is followed by 0.2 s of
silence, what pipecat's recommended setup (VAD stop_secs=0.2) leaves before it asks the model. A clip counts as
right when complete > 0.5 or truncated <= 0.5.

Timing: ``TurnDetector.predict`` on an 8 s window (features + ONNX, also split), and ``VadStream.process`` per
32 ms frame and per 100 ms chunk, each the median of ``--repeat`` calls after a warm-up.

    python bench/turn_eval.py                    # writes bench/results/turn_eval.json
    python bench/turn_eval.py --repeat 50 --pause 0.3
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import statistics
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from common import DATA, machine_info, write_report

from voxgate.analysis.turn import TurnDetector, log_mel_features, model_window
from voxgate.analysis.vad import FRAME_SAMPLES, SileroVad
from voxgate.types import SAMPLE_RATE

MACHINE_DISTS = ("voxgate", "onnxruntime", "numpy", "faster-whisper", "pipecat-ai")
MACHINE_KEYS = ("platform", "python", "cpu_count", "cpu_model", "versions")
OUT = Path(__file__).resolve().parent / "results" / "turn_eval.json"

CUTS = Path(__file__).resolve().parent.parent / "tests" / "data" / "harvard-cuts.tsv"
"""Where each Harvard sentence is cut for its "incomplete" version (the tests' annotation; the file says how)."""


_LINES = [line for line in CUTS.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
_ROWS = csv.DictReader(_LINES, delimiter="\t")
TRUNCATIONS = {row["clip"]: (float(row["cut_seconds"]), row["words_before_the_cut"]) for row in _ROWS}


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, SAMPLE_RATE):
            raise SystemExit(f"{path}: expected 16-bit mono {SAMPLE_RATE} Hz")
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pause", type=float, default=0.2, help="seconds of silence after each clip (%(default)s)")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per measurement (%(default)s)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    detector = TurnDetector.load()
    vad = SileroVad.load()
    pause = np.zeros(round(args.pause * SAMPLE_RATE), dtype=np.float32)

    clips = []
    for name, (cut, words) in TRUNCATIONS.items():
        audio = read_wav(DATA / "en" / f"{name}.wav")
        complete = detector.predict(np.concatenate((audio, pause)))
        truncated = detector.predict(np.concatenate((audio[: round(cut * SAMPLE_RATE)], pause)))
        clips.append(
            {
                "clip": name,
                "truncated_after": words,
                "cut_s": cut,
                "duration_s": round(len(audio) / SAMPLE_RATE, 3),
                "p_complete": round(complete, 4),
                "p_truncated": round(truncated, 4),
            }
        )
    p_complete = np.array([c["p_complete"] for c in clips])
    p_truncated = np.array([c["p_truncated"] for c in clips])
    n = len(clips)

    longest = read_wav(DATA / "en" / "spk1_snt2.wav")
    window = model_window(longest)
    features = log_mel_features(window)[None]
    session = detector._session
    second = np.concatenate([read_wav(DATA / "en" / f"{name}.wav") for name in TRUNCATIONS])[:SAMPLE_RATE]
    frame = second[:FRAME_SAMPLES]
    chunk = second[: SAMPLE_RATE // 10]
    stream = vad.stream()
    vad_frame_ms = median_ms(lambda: stream.process(frame), args.repeat * 20)
    vad_chunk_ms = median_ms(lambda: stream.process(chunk), args.repeat * 20)

    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(MACHINE_DISTS, MACHINE_KEYS),
        "setup": {"trailing_silence_s": args.pause, "threshold": 0.5, "repeat": args.repeat},
        "turn": {
            "accuracy": round((int(np.sum(p_complete > 0.5)) + int(np.sum(p_truncated <= 0.5))) / (2 * n), 4),
            "complete_recall": round(float(np.mean(p_complete > 0.5)), 4),
            "truncated_recall": round(float(np.mean(p_truncated <= 0.5)), 4),
            "mean_p_complete": round(float(p_complete.mean()), 4),
            "mean_p_truncated": round(float(p_truncated.mean()), 4),
            "pairs_ordered": round(float(np.mean(p_complete > p_truncated)), 4),
            "clips": clips,
        },
        "timing_ms": {
            "turn_predict": round(median_ms(lambda: detector.predict(longest), args.repeat), 2),
            "turn_features": round(median_ms(lambda: log_mel_features(window), args.repeat), 2),
            "turn_onnx": round(median_ms(lambda: session.run(None, {"input_features": features}), args.repeat), 2),
            "vad_per_32ms_frame": round(vad_frame_ms, 4),
            "vad_per_100ms_chunk": round(vad_chunk_ms, 4),
        },
    }

    turn, timing = results["turn"], results["timing_ms"]
    print(f"{'clip':<10} {'p(complete)':>11} {'p(truncated)':>12}  truncated after")
    for c in clips:
        print(f"{c['clip']:<10} {c['p_complete']:>11.3f} {c['p_truncated']:>12.3f}  {c['truncated_after']!r}")
    print(
        f"\naccuracy at 0.5: {turn['accuracy']:.3f} (complete {turn['complete_recall']:.3f}, truncated "
        f"{turn['truncated_recall']:.3f}); mean p complete {turn['mean_p_complete']:.3f} vs truncated "
        f"{turn['mean_p_truncated']:.3f}; pairs ordered {turn['pairs_ordered']:.3f}"
    )
    print(
        f"turn predict {timing['turn_predict']:.1f} ms/call (features {timing['turn_features']:.1f} + onnx "
        f"{timing['turn_onnx']:.1f}); VAD {timing['vad_per_32ms_frame']:.3f} ms per 32 ms frame, "
        f"{timing['vad_per_100ms_chunk']:.3f} ms per 100 ms chunk"
    )
    write_report(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
