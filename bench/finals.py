"""A stream's final decode, which sits on the critical path once a turn ends: what beam search and word timestamps
cost there, and what they buy.

A final is ``engine.transcribe_utterance`` on the turn's audio (the shortened encoder window, language detected when
the stream does not give one): this script calls exactly that, in this process, on every clip of the English sets
(``en/``, RAVDESS, the Common Voice English clips) and of ``multilingual-cv/`` (29 languages x 10), once per setting
of ``--beams`` x ``--words``, the order of the settings rotating from clip to clip so that load hits all alike. Per
setting:

* decode time per clip (wall, warm; p50 / p95) and its ratio to the first setting's, clip by clip;
* English corpus WER (Whisper's English normaliser, as ``wer.py``), and over the 29 languages the median of the
  per-language error (WER, CER for unspaced scripts; the normaliser of ``languages.py``), and language ID of the
  final against each clip's language.

    python bench/finals.py                               # beam 5 and 1, word timestamps on -> bench/results/finals.json
    python bench/finals.py --beams 5 1 --words on off --limit 3   # a quicker look: 3 clips per language and set
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from common import DATA, loadavg, machine_info, report_head, write_report
from languages import clips_of, error_counts, lid_correct, normalise
from rich.console import Console
from rich.table import Table

from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.service import Service
from voxgate.types import TranscriptionOptions

OUT = Path(__file__).resolve().parent / "results" / "finals.json"
SETS = ("en", "emotion-ravdess", "age-gender-accent", "multilingual-cv")
console = Console(highlight=False)


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def label(beam: int, words: bool) -> str:
    return f"beam {beam}, words {'on' if words else 'off'}"


def summarise(clips: list[dict[str, Any]], key: str, first: str, languages: tuple[str, ...]) -> dict[str, Any]:
    ms = [c["runs"][key]["ms"] for c in clips]
    ratios = [c["runs"][key]["ms"] / c["runs"][first]["ms"] for c in clips]
    english = defaultdict(int)
    per_language: dict[str, dict[str, int]] = defaultdict(lambda: {"units": 0, "errors": 0})
    lid = []
    for c in clips:
        run = c["runs"][key]
        counts = error_counts(
            normalise(c["reference"], c["language"]), normalise(run["text"], c["language"]), c["language"]
        )
        if c["set"] == "multilingual-cv":
            per_language[c["language"]]["units"] += counts["units"]
            per_language[c["language"]]["errors"] += counts["errors"]
            lid.append(lid_correct(run["language"], c["language"], languages))
        else:
            english["units"] += counts["units"]
            english["errors"] += counts["errors"]
    rates = {lang: v["errors"] / v["units"] for lang, v in per_language.items() if v["units"]}
    return {
        "clips": len(clips),
        "decode_ms": {"p50": round(float(np.percentile(ms, 50))), "p95": round(float(np.percentile(ms, 95)))},
        "time_ratio_to_first_median": round(statistics.median(ratios), 3),
        "english_wer": round(english["errors"] / english["units"], 4) if english["units"] else None,
        "english_errors": english["errors"],
        "english_words": english["units"],
        "multilingual_median_error": round(statistics.median(rates.values()), 4) if rates else None,
        "multilingual_per_language": {k: round(v, 4) for k, v in sorted(rates.items())},
        "multilingual_lid": round(sum(lid) / len(lid), 4) if lid else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="whisper/base")
    parser.add_argument("--beams", type=int, nargs="+", default=[5, 1])
    parser.add_argument("--words", nargs="+", choices=("on", "off"), default=["on"])
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--limit", type=int, default=None, help="at most N clips per language and set")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    settings = [(b, w == "on") for b in args.beams for w in args.words]
    keys = [label(b, w) for b, w in settings]
    clips = clips_of(args.data, args.sets, args.limit)
    started = time.perf_counter()
    service = Service(Settings(preload=[], cpu_threads=args.threads))
    try:
        engine = service.engine(args.model)
        machine = machine_info(["faster-whisper", "ctranslate2"])
        warm = decode(args.data / clips[0]["path"])
        for beam, words in settings:
            engine.transcribe_utterance(warm, TranscriptionOptions(beam_size=beam, word_timestamps=words))
        for i, clip in enumerate(clips):
            audio = decode(args.data / clip["path"])
            clip["runs"] = {}
            k = i % len(settings)
            for beam, words in settings[k:] + settings[:k]:
                options = TranscriptionOptions(beam_size=beam, word_timestamps=words)
                t0 = time.perf_counter()
                result = engine.transcribe_utterance(audio, options)
                clip["runs"][label(beam, words)] = {
                    "ms": 1000 * (time.perf_counter() - t0),
                    "text": result.text,
                    "language": result.language,
                }
            if (i + 1) % 50 == 0:
                console.print(f"[dim]{i + 1}/{len(clips)} load {loadavg()}[/dim]")
        languages = engine.capabilities.languages
    finally:
        service.close()

    summaries = {key: summarise(clips, key, keys[0], languages) for key in keys}
    table = Table(title=f"{args.model}: stream finals (transcribe_utterance), {len(clips)} clips")
    for col in ("setting", "decode p50 / p95 ms", "time vs first", "English WER", "29-language median", "LID"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    for key, s in summaries.items():
        table.add_row(
            key,
            f"{s['decode_ms']['p50']} / {s['decode_ms']['p95']}",
            f"{s['time_ratio_to_first_median']:.2f}x",
            f"{pct(s['english_wer'])} ({s['english_errors']}/{s['english_words']})",
            pct(s["multilingual_median_error"]),
            pct(s["multilingual_lid"]),
        )
    console.print(table)
    console.print(f"load average at the end {loadavg()}; machine at the start: {machine.get('load_average_at_start')}")
    write_report(
        args.out,
        {
            **report_head("finals", time.perf_counter() - started, args.data),
            "model": args.model,
            "machine": machine,
            "sets": args.sets,
            "limit_per_language": args.limit,
            "summaries": summaries,
            "clips": clips,
        },
    )
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
