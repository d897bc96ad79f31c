"""How well voxgate's diarization tells real voices apart, and what it costs.

The shared speech holds five distinct English voices with no overlap: the two Harvard speakers of ``en/`` (six
sentences each), JFK (``en/jfk.flac``, 11 s) and the two channels of ``two-speakers/`` (one sentence each). No
recorded conversation with speaker labels exists there, so this script builds conversations from those clips: for
each number of speakers k = 1..4, ``--per-k`` conversations of ``--turns`` turns (seeded), each turn a clip of a voice
other than the previous turn's, separated by a random gap of ``--gap-min``..``--gap-max`` seconds of silence (gaps
under the chunker's 0.3 s pause put two voices in one chunk: that is deliberate, real turn-taking has such gaps).
Clips repeat across conversations (k = 1 uses a Harvard speaker's six sentences).

Each conversation is transcribed once through ``Service.transcribe_file`` (what the REST endpoint runs) with
``--model`` (English given), three ways, back to back: without diarization, with diarization (speaker count free,
1..8) and with the true count given (min = max = k). Scores, on the words (a word's truth is the clip its middle
falls in):

* **word accuracy**: share of words whose speaker tag maps to their true speaker under the best one-to-one mapping
  of tags to speakers (Hungarian assignment; surplus tags count as wrong). 1 - this is a word-level diarization
  error rate (no overlap, no missed speech to count here).
* **count**: how often the number of speakers found equals k, and the found-minus-true histogram.
* **cost**: the speaker encoder's own time per second of audio (wall and process CPU around each ``embed`` call;
  clustering is milliseconds and not counted), and process CPU seconds (all threads) of the diarized run over the
  plain one (noisy: the two transcriptions of one file can differ, e.g. when ``tiny.en`` loops on a clip).

    python bench/diarization.py                # ~4 min on 2 cores -> bench/results/diarization.json
    python bench/diarization.py --per-k 3      # a quicker look
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from common import (
    DATA,
    CpuMeter,
    describe_load,
    machine_info,
    mapped_accuracy,
    own_cpu_seconds,
    report_head,
    stereo_channels,
    write_report,
)
from rich.console import Console
from rich.table import Table

from voxgate.audio.decode import decode
from voxgate.audio.pcm import PcmEncoding, encode_linear16
from voxgate.config import Settings
from voxgate.files import FileResult, RawAudio
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, Audio, DiarizationOptions, TranscriptionOptions

HERE = Path(__file__).resolve().parent


def voices(data: Path) -> dict[str, list[Audio]]:
    out: dict[str, list[Audio]] = {
        "spk1": [decode(data / "en" / f"spk1_snt{i}.wav") for i in range(1, 7)],
        "spk2": [decode(data / "en" / f"spk2_snt{i}.wav") for i in range(1, 7)],
        "jfk": [decode(data / "en" / "jfk.flac")],
    }
    left, right = stereo_channels(data / "two-speakers" / "stereo-two-speakers.wav")
    out["left"], out["right"] = [left], [right]
    return out


def build(
    rng: random.Random, pool: dict[str, list[Audio]], k: int, turns: int, gaps: tuple[float, float]
) -> tuple[Audio, list[tuple[float, float, str]]]:
    names = [rng.choice(["spk1", "spk2"])] if k == 1 else rng.sample(sorted(pool), k)
    order = list(names)  # every voice speaks once first, then any voice but the previous one
    while len(order) < turns:
        order.append(rng.choice([n for n in names if n != order[-1]] or names))
    used = Counter[str]()
    pieces: list[Audio] = []
    truth: list[tuple[float, float, str]] = []
    at = 0
    for name in order:
        clip = pool[name][used[name] % len(pool[name])]
        used[name] += 1
        truth.append((at / SAMPLE_RATE, (at + len(clip)) / SAMPLE_RATE, name))
        gap = np.zeros(int(rng.uniform(*gaps) * SAMPLE_RATE), dtype=np.float32)
        pieces += [clip, gap]
        at += len(clip) + len(gap)
    return np.concatenate(pieces), truth


def score(result: FileResult, truth: list[tuple[float, float, str]]) -> dict[str, Any]:
    assert result.speakers is not None
    words = result.transcript.words
    pairs = []
    for w, tag in zip(words, result.speakers.words, strict=True):
        middle = (w.start + w.end) / 2
        turn = min(truth, key=lambda t: 0 if t[0] <= middle <= t[1] else min(abs(middle - t[0]), abs(middle - t[1])))
        pairs.append((tag, turn[2]))
    return {
        "words": len(words),
        "word_accuracy": round(mapped_accuracy(pairs), 4),
        "speakers_found": result.speakers.count,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    pool = voices(args.data)
    service = Service(Settings(preload=[], cpu_threads=args.threads, **({"home": args.home} if args.home else {})))
    options = TranscriptionOptions(language="en")
    await service.load(args.model)
    encoder = service.speaker_encoder()
    embed = encoder.embed
    spent = {"wall": 0.0, "cpu": 0.0}

    def timed_embed(clips: Any) -> Any:  # the instance's method, wrapped: the service's code is unchanged
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return embed(clips)
        finally:
            spent["wall"] += time.perf_counter() - wall
            spent["cpu"] += time.process_time() - cpu

    encoder.embed = timed_embed  # type: ignore[method-assign]
    rng = random.Random(args.seed)
    rows: list[dict[str, Any]] = []
    try:
        for k in range(1, 5):
            for i in range(args.per_k):
                audio, truth = build(rng, pool, k, args.turns, (args.gap_min, args.gap_max))
                source = RawAudio(encode_linear16(audio), PcmEncoding.LINEAR16, SAMPLE_RATE)
                cpu = []
                encoder_cost = []
                results = []
                for diarize in (None, DiarizationOptions(), DiarizationOptions(min_speakers=k, max_speakers=k)):
                    before = own_cpu_seconds()
                    encoder_before = dict(spent)
                    results.append(await service.transcribe_file(source, options, args.model, diarize=diarize))
                    cpu.append(own_cpu_seconds() - before)
                    encoder_cost.append({key: spent[key] - encoder_before[key] for key in spent})
                free, given = score(results[1], truth), score(results[2], truth)
                row = {
                    "k": k,
                    "conversation": i,
                    "audio_s": round(len(audio) / SAMPLE_RATE, 2),
                    "turns": [t[2] for t in truth],
                    "free": free,
                    "count_given": given,
                    "cpu_plain_s": round(cpu[0], 3),
                    "cpu_diarized_s": round(cpu[1], 3),
                    "encoder_wall_s": round(encoder_cost[1]["wall"], 4),  # the run with the count free
                    "encoder_cpu_s": round(encoder_cost[1]["cpu"], 4),
                }
                rows.append(row)
                print(
                    f"k={k} #{i}: {row['audio_s']:5.1f} s, found {free['speakers_found']}, "
                    f"accuracy {free['word_accuracy']:.3f} (count given: {given['word_accuracy']:.3f}), "
                    f"cpu {cpu[0]:.2f} -> {cpu[1]:.2f} s",
                    file=sys.stderr,
                )
    finally:
        service.close()
    return {"conversations": rows}


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for k in [*sorted({r["k"] for r in rows}), None]:
        group = [r for r in rows if k is None or r["k"] == k]
        words = sum(r["free"]["words"] for r in group)

        def pooled(mode: str, group: list[dict[str, Any]] = group, words: int = words) -> float:
            return sum(r[mode]["word_accuracy"] * r[mode]["words"] for r in group) / max(1, words)

        audio = sum(r["audio_s"] for r in group)
        out.append(
            {
                "k": k if k is not None else "all",
                "conversations": len(group),
                "audio_s": round(audio, 1),
                "words": words,
                "word_accuracy_free": round(pooled("free"), 4),
                "word_accuracy_count_given": round(pooled("count_given"), 4),
                "median_conversation_accuracy_free": round(
                    statistics.median(r["free"]["word_accuracy"] for r in group), 4
                ),
                "count_exact": f"{sum(r['free']['speakers_found'] == r['k'] for r in group)}/{len(group)}",
                "count_error_histogram": dict(
                    sorted(Counter(r["free"]["speakers_found"] - r["k"] for r in group).items())
                ),
                "cpu_ratio_diarized_over_plain": round(
                    sum(r["cpu_diarized_s"] for r in group) / max(1e-9, sum(r["cpu_plain_s"] for r in group)), 3
                ),
                "encoder_wall_ms_per_audio_s": round(1000 * sum(r["encoder_wall_s"] for r in group) / audio, 1),
                "encoder_cpu_ms_per_audio_s": round(1000 * sum(r["encoder_cpu_s"] for r in group) / audio, 1),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", default="whisper/tiny.en")
    parser.add_argument("--per-k", type=int, default=6, help="conversations per number of speakers (1..4)")
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--gap-min", type=float, default=0.2)
    parser.add_argument("--gap-max", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "diarization.json")
    args = parser.parse_args()

    meter = CpuMeter()
    started = time.monotonic()
    result = anyio.run(run, args)
    load = meter.result()
    summary = summarize(result["conversations"])

    table = Table(title=f"diarization, {args.model}, built conversations (word accuracy = 1 - word-level DER)")
    for column in ("k", "conv.", "audio s", "words", "acc. free", "acc. k given", "count exact", "found-true", "CPU x"):
        table.add_column(column, justify="right")
    for s in summary:
        table.add_row(
            str(s["k"]),
            str(s["conversations"]),
            f"{s['audio_s']:.0f}",
            str(s["words"]),
            f"{s['word_accuracy_free']:.1%}",
            f"{s['word_accuracy_count_given']:.1%}",
            s["count_exact"],
            " ".join(f"{d:+d}:{n}" for d, n in s["count_error_histogram"].items()),
            f"{s['cpu_ratio_diarized_over_plain']:.3f}",
        )
    console = Console()
    console.print(table)
    every = summary[-1]
    console.print(
        f"speaker encoder: {every['encoder_wall_ms_per_audio_s']:.1f} ms wall, "
        f"{every['encoder_cpu_ms_per_audio_s']:.1f} ms CPU per second of audio"
    )
    if (line := describe_load(load)) is not None:
        console.print(line)
    report = {
        **report_head("diarization", time.monotonic() - started, args.data),
        "machine": machine_info(["voxgate", "numpy", "scipy", "faster-whisper"]),
        "cpu": load,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": summary,
        **result,
    }
    write_report(args.out, report)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
