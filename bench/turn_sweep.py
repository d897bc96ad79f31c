"""Semantic turn detection on ~870 real one-sentence utterances: how soon a turn ends after the speaker stops, and
how often it ends while the speaker is still in the sentence, for each setting of the knobs that decide it.

Every clip of ``../shared/data`` that holds one sentence (the Harvard sentences of ``en/``, RAVDESS, the two Common
Voice sets: read speech with its natural hesitations and mid-sentence pauses) is streamed through voxgate's own
stream session (``voxgate.streaming.session``) in 100 ms chunks, as a client sends them, followed by 2.5 s of
silence. The VAD (Silero) and the turn model (smart-turn v3.2) are the real ones and answer every check the session
asks for; nothing is decoded: the session's transcripts play no part in when a turn ends (each final's decode is
answered with an empty transcript and speculation is off).

Per setting:

* **cut-offs**: clips where a turn ended and the same sentence then went on (speech started again before the clip's
  end): the speaker was interrupted mid-sentence.
* **end of speech -> end of turn** (audio time, p50 / p95): from the VAD's end of the clip's last speech to the
  turn's end, chunk boundaries included. Wall-clock latency adds the turn model's run (``timing_ms``) and, when the
  speculative decode misses, a decode.
* turns left to the 2 s silence cap, and turn-model calls per clip (CPU).

    python bench/turn_sweep.py                          # pause_ms 200 160 128 96 64 at threshold 0.5
    python bench/turn_sweep.py --pause 200 96 --threshold 0.5 0.7 --limit 200
    python bench/turn_sweep.py --pause 200 --early 0 96 128 --early-threshold 0.95 0.98 0.99   # the early check
"""

from __future__ import annotations

import argparse
import csv
import itertools
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from common import DATA, loadavg, machine_info, write_report
from rich.console import Console
from rich.table import Table

from voxgate.analysis.turn import TurnDetector
from voxgate.analysis.vad import SileroVad
from voxgate.audio.decode import decode
from voxgate.streaming.events import (
    DecodeJob,
    EagerEndOfTurn,
    SpeechEnded,
    SpeechStarted,
    TurnCheckJob,
    TurnEnded,
    TurnResumed,
)
from voxgate.streaming.policy import EndTurnReason, TurnPolicy
from voxgate.streaming.session import SessionConfig, StreamSession
from voxgate.types import SAMPLE_RATE, Transcript, TranscriptionOptions

OUT = Path(__file__).resolve().parent / "results" / "turn_sweep.json"
CORPORA = ("en", "emotion-ravdess", "age-gender-accent", "multilingual-cv")
NOT_ONE_SENTENCE = {"jfk.flac"}
"""Clips holding several sentences: a turn may rightly end inside them."""
CHUNK = SAMPLE_RATE // 10
TAIL_S = 2.5


def clips(limit: int | None, corpora: tuple[str, ...] = CORPORA) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, audio with its tail of silence, its VAD probabilities), every corpus interleaved so that ``limit``
    keeps a mix. The probabilities depend on the audio only, so every setting reuses them."""
    lists = []
    for corpus in corpora:
        with open(DATA / corpus / "MANIFEST.tsv", encoding="utf-8") as f:
            names = [row["path"] for row in csv.DictReader(f, delimiter="\t") if row["path"] not in NOT_ONE_SENTENCE]
        lists.append([f"{corpus}/{name}" for name in names])
    order = [n for group in itertools.zip_longest(*lists) for n in group if n is not None][:limit]
    vad = SileroVad.load()
    tail = np.zeros(int(TAIL_S * SAMPLE_RATE), dtype=np.float32)
    out = []
    for name in order:
        audio = np.concatenate([decode(DATA / name), tail])
        out.append((name, audio, vad.probabilities(audio)))
    return out


def run(policy: TurnPolicy, audio: np.ndarray, probs: np.ndarray, detector: TurnDetector) -> dict[str, Any]:
    """One clip through a session: its turn ends (time, reason), speech starts and ends, turn-model calls, eager
    ends of turn and those taken back. Decodes are answered at once with no words (speculation is on only for eager
    runs: an eager event waits for its speculative decode)."""
    eager_on = policy.eager_threshold is not None
    session = StreamSession(
        SessionConfig(TranscriptionOptions(), turn=policy, partials=False, speculative=eager_on, profile=False)
    )
    eager = resumed = 0
    ends: list[tuple[float, str]] = []
    starts: list[float] = []
    stops: list[float] = []
    calls = 0
    pending = []
    for k in range(0, len(audio) // CHUNK):
        # The frames a chunk completes: chunks of 1600 samples do not fall on 512-sample frames.
        done_before, done_after = (k * CHUNK) // 512, ((k + 1) * CHUNK) // 512
        pending.extend(session.feed(audio[k * CHUNK : (k + 1) * CHUNK], probs[done_before:done_after]))
        while pending:
            output = pending.pop(0)
            if isinstance(output, TurnCheckJob):
                calls += 1
                pending.extend(session.turn_checked(output, detector.predict(output.audio)))
            elif isinstance(output, DecodeJob):
                pending.extend(session.decoded(output, Transcript(segments=(), duration=len(output.audio) / 16e3)))
            elif isinstance(output, TurnEnded):
                ends.append((output.time, output.reason.value))
            elif isinstance(output, SpeechStarted):
                starts.append(output.time)
            elif isinstance(output, SpeechEnded):
                stops.append(output.time)
            elif isinstance(output, EagerEndOfTurn):
                eager += 1
            elif isinstance(output, TurnResumed):
                resumed += 1
    return {"ends": ends, "starts": starts, "stops": stops, "calls": calls, "eager": eager, "resumed": resumed}


def summarise(results: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    cutoffs, latencies, capped, unended, calls = [], [], 0, 0, []
    for name, r in zip(names, results, strict=True):
        calls.append(r["calls"])
        if not r["ends"] or not r["stops"]:
            unended += 1
            continue
        last_stop = r["stops"][-1]
        # More than one turn in one sentence: a turn ended and the speaker went on.
        if len(r["ends"]) > 1:
            cutoffs.append(name)
        end, reason = r["ends"][-1]
        latencies.append(1000 * (end - last_stop))
        capped += reason == EndTurnReason.SILENCE.value
    lat = sorted(latencies)
    return {
        "clips": len(results),
        "cutoffs": len(cutoffs),
        "cutoff_rate": round(len(cutoffs) / max(1, len(results)), 4),
        "cutoff_clips": cutoffs,
        "cutoffs_by_corpus": {
            corpus: f"{sum(_in(corpus, c) for c in cutoffs)}/{sum(_in(corpus, n) for n in names)}" for corpus in CORPORA
        },
        "end_of_speech_to_turn_end_ms": {
            "p50": round(statistics.median(lat)),
            "p90": round(lat[int(0.9 * (len(lat) - 1))]),
            "p95": round(lat[int(0.95 * (len(lat) - 1))]),
            "mean": round(statistics.fmean(lat)),
        },
        "ended_by_silence_cap": capped,
        "never_ended": unended,
        "turn_model_calls_per_clip": round(statistics.fmean(calls), 2),
        **eager_counts(results),
    }


def _in(corpus: str, name: str) -> bool:
    return name.startswith(corpus + "/")


def eager_counts(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Eager ends of turn sent and taken back (``turnResumed``: the speaker went on)."""
    sent, back = sum(r["eager"] for r in results), sum(r["resumed"] for r in results)
    rate = round(back / sent, 4) if sent else None
    return {"eager_sent": sent, "eager_taken_back": back, "eager_takeback_rate": rate}


def summarise_meetings(results: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Conversations hold many turns: no cut-off count (a turn may end at any sentence end), only how many turns
    ended and what eager ends of turn did."""
    return {
        "files": len(results),
        "audio_seconds": round(seconds, 1),
        "turns": sum(len(r["ends"]) for r in results),
        "turn_model_calls": sum(r["calls"] for r in results),
        **eager_counts(results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pause", type=int, nargs="+", default=[200, 160, 128, 96, 64], help="pause_ms values")
    parser.add_argument("--threshold", type=float, nargs="+", default=[0.5])
    parser.add_argument("--early", type=int, nargs="+", default=[0], help="early_ms values (0: no early check)")
    parser.add_argument("--early-threshold", type=float, nargs="+", default=[TurnPolicy().early_threshold])
    parser.add_argument("--eager", type=float, nargs="+", default=None, help="eager_threshold values (default: off)")
    parser.add_argument("--meetings", action="store_true", help="also stream the diarization/ conversations")
    parser.add_argument("--limit", type=int, default=None, help="at most this many clips")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    started = time.perf_counter()
    load_before = loadavg()
    data = clips(args.limit)
    names = [n for n, _, _ in data]
    detector = TurnDetector.load()
    window = data[0][1][-8 * SAMPLE_RATE :]
    detector.predict(window)
    t0 = time.perf_counter()
    for _ in range(20):
        detector.predict(window)
    predict_ms = (time.perf_counter() - t0) / 20 * 1000
    print(f"{len(data)} clips read in {time.perf_counter() - started:.0f} s; turn model {predict_ms:.1f} ms/call")

    settings: dict[str, Any] = {}
    meetings = clips(None, ("diarization",)) if args.meetings else []
    meeting_seconds = sum(len(audio) for _, audio, _ in meetings) / SAMPLE_RATE
    grid = itertools.product(args.pause, args.threshold, args.early, args.early_threshold, args.eager or [None])
    for pause, threshold, early, early_threshold, eager in grid:
        if not early and early_threshold != args.early_threshold[0]:
            continue  # without an early check its threshold changes nothing
        policy = replace(
            TurnPolicy(),
            pause_ms=pause,
            threshold=threshold,
            early_ms=early,
            early_threshold=early_threshold,
            eager_threshold=eager,
        )
        t = time.perf_counter()
        results = [run(policy, audio, probs, detector) for _, audio, probs in data]
        summary = summarise(results, names)
        if meetings:
            summary["meetings"] = summarise_meetings(
                [run(policy, audio, probs, detector) for _, audio, probs in meetings], meeting_seconds
            )
        summary["seconds"] = round(time.perf_counter() - t, 1)
        summary["load_average"] = loadavg()
        early_key = f" early_ms={early} early_threshold={early_threshold}" if early else ""
        eager_key = f" eager_threshold={eager}" if eager is not None else ""
        settings[f"pause_ms={pause} threshold={threshold}{early_key}{eager_key}"] = {
            "pause_ms": pause,
            "threshold": threshold,
            "early_ms": early,
            "early_threshold": early_threshold if early else None,
            "eager_threshold": eager,
            **summary,
        }
        lat = summary["end_of_speech_to_turn_end_ms"]
        meet = summary.get("meetings")
        print(f"pause {pause} ms, threshold {threshold}, early {early or '-'} ms at {early_threshold}, eager {eager}: "
              f"cut-offs {summary['cutoffs']}/{summary['clips']}, "
              f"end of speech -> turn end p50 {lat['p50']} p95 {lat['p95']} ms, "
              f"capped {summary['ended_by_silence_cap']}, {summary['turn_model_calls_per_clip']} calls/clip, "
              f"eager {summary['eager_sent']} sent {summary['eager_taken_back']} taken back"
              + (f"; meetings {meet['turns']} turns, eager {meet['eager_sent']} sent "
                 f"{meet['eager_taken_back']} taken back" if meet else "")
              + f", {summary['seconds']} s")  # fmt: skip

    table = Table(title=f"Semantic turns on {len(data)} one-sentence clips (audio time, 100 ms chunks)")
    columns = ("pause_ms", "threshold", "early", "cut-offs", "rate", "p50 ms", "p90 ms", "p95 ms", "silence cap",
               "calls/clip", "eager sent/back", "meetings: turns, eager sent/back")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="right")
    for s in settings.values():
        lat = s["end_of_speech_to_turn_end_ms"]
        early_cell = f"{s['early_ms']} ms @ {s['early_threshold']:g}" if s["early_ms"] else "-"
        eager_cell = f"{s['eager_sent']}/{s['eager_taken_back']}" if s["eager_threshold"] is not None else "-"
        meet = s.get("meetings")
        meet_cell = f"{meet['turns']}, {meet['eager_sent']}/{meet['eager_taken_back']}" if meet else "-"
        table.add_row(str(s["pause_ms"]), f"{s['threshold']:g}", early_cell, f"{s['cutoffs']}/{s['clips']}",
                      f"{100 * s['cutoff_rate']:.1f} %", str(lat["p50"]), str(lat["p90"]), str(lat["p95"]),
                      str(s["ended_by_silence_cap"]), f"{s['turn_model_calls_per_clip']:.2f}", eager_cell,
                      meet_cell)  # fmt: skip
    Console().print(table)
    print(f"load average before {load_before}, after {loadavg()}; turn model {predict_ms:.1f} ms per call (add it to "
          f"every figure for wall-clock time)")  # fmt: skip
    write_report(
        args.out,
        {
            "benchmark": "turn_sweep",
            "machine": machine_info(["onnxruntime", "pipecat-ai", "faster-whisper"]),
            "clips": len(data),
            "corpora": list(CORPORA),
            "chunk_ms": 100,
            "tail_s": TAIL_S,
            "turn_model_ms_per_call": round(predict_ms, 1),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "settings": settings,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
