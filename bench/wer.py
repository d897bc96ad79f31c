"""Word error rate of voxgate's packaged Whisper models on the shared English clips.

Every clip goes through ``Service.transcribe_sync`` (the product path the CLI uses: voxgate's decoder, windows,
WhisperEngine, vocabulary pass), with the options a request that sets nothing gets. Reference and hypothesis are
normalised with Whisper's ``EnglishTextNormalizer``; the corpus WER is total errors over total reference words.

    python bench/wer.py                          # both packaged models, writes bench/results/wer.json
    python bench/wer.py --models whisper/base --language en --no-vocabulary
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jiwer
from common import DATA, CpuMeter, machine_info, read_manifest, report_head, word_counts, write_report
from rich.console import Console
from rich.table import Table
from whisper_normalizer.english import EnglishTextNormalizer

from voxgate.config import Settings
from voxgate.service import Service
from voxgate.types import Transcript, TranscriptionOptions

MACHINE_DISTS = ("voxgate", "faster-whisper", "ctranslate2", "onnxruntime", "av", "jiwer", "whisper-normalizer")
MACHINE_KEYS = ("hostname", "platform", "python", "cpu_count", "cpu_affinity", "cpu_model", "git_commit", "versions")
OUT = Path(__file__).resolve().parent / "results" / "wer.json"
MODELS = ("whisper/tiny.en", "whisper/base")

# Whisper paper (Radford et al. 2022), Appendix D.1.1, LibriSpeech test-clean WER in percent.
PUBLISHED = {"whisper/tiny.en": 5.6, "whisper/tiny": 7.6, "whisper/base.en": 4.3, "whisper/base": 5.0}
PUBLISHED_SOURCE = "Whisper paper (Radford et al. 2022), Appendix D.1.1, LibriSpeech test-clean"

VOCABULARY_CLIP = "vocabulary/comfyui.mp3"
VOCABULARY_TERM = "ComfyUI"

console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def alignment_text(out: jiwer.WordOutput) -> str:
    """The word alignment of the first (only) pair in ``out``, as jiwer draws it."""
    text = jiwer.visualize_alignment(out, show_measures=False, skip_correct=False)
    return text.split("\n", 1)[-1].strip("\n")


def evaluate(service: Service, model_id: str, data: Path, options: TranscriptionOptions) -> dict[str, Any]:
    normalizer = EnglishTextNormalizer()
    rows = read_manifest(data / "en" / "MANIFEST.tsv")
    started = time.perf_counter()
    service.engine(model_id)
    load_seconds = time.perf_counter() - started

    clips = []
    for row in rows:
        path = data / "en" / row["path"]
        started = time.perf_counter()
        transcript = service.transcribe_sync(path, options, model_id)
        seconds = time.perf_counter() - started
        reference, hypothesis = normalizer(row["reference"]), normalizer(transcript.text)
        out = jiwer.process_words(reference, hypothesis)
        clips.append(
            {
                "path": f"en/{row['path']}",
                "duration_s": float(row["duration_s"]),
                "reference": row["reference"],
                "hypothesis": transcript.text,
                "reference_normalized": reference,
                "hypothesis_normalized": hypothesis,
                "language": transcript.language,
                "language_probability": transcript.language_probability,
                "seconds": round(seconds, 3),
                **word_counts(out),
                "alignment": alignment_text(out) if out.substitutions + out.deletions + out.insertions else "",
            }
        )
    corpus = word_counts(
        jiwer.process_words([c["reference_normalized"] for c in clips], [c["hypothesis_normalized"] for c in clips])
    )
    return {
        "model": model_id,
        "load_seconds": round(load_seconds, 3),
        "transcribe_seconds": round(sum(c["seconds"] for c in clips), 3),
        "audio_seconds": round(sum(c["duration_s"] for c in clips), 2),
        "corpus": corpus,
        "mean_clip_wer": sum(c["wer"] for c in clips) / len(clips),
        "published_wer_percent": PUBLISHED.get(model_id),
        "clips": clips,
    }


def vocabulary_check(service: Service, model_id: str, data: Path, base: TranscriptionOptions) -> dict[str, Any]:
    path = data / VOCABULARY_CLIP
    runs = {}
    for name, prompts in (("without", ()), ("with", (VOCABULARY_TERM,))):
        options = TranscriptionOptions(**{**asdict(base), "prompts": prompts})
        transcript: Transcript = service.transcribe_sync(path, options, model_id)
        runs[name] = {
            "prompts": list(prompts),
            "text": transcript.text,
            "contains_term": VOCABULARY_TERM in transcript.text,
        }
    return {"clip": VOCABULARY_CLIP, "term": VOCABULARY_TERM, **runs}


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def print_model(result: dict[str, Any]) -> None:
    table = Table(title=f"{result['model']}: per clip (normalised, Whisper EnglishTextNormalizer)")
    for col, justify in (("clip", "left"), ("WER %", "right"), ("S", "right"), ("D", "right"), ("I", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    table.add_column("lang", justify="left")
    table.add_column("hypothesis (normalised) / reference where they differ", justify="left", overflow="fold")
    for c in result["clips"]:
        differs = c["errors"] > 0
        text = c["hypothesis_normalized"]
        if differs:
            text = f"[red]{text}[/red]\n[dim]ref: {c['reference_normalized']}[/dim]"
        table.add_row(
            c["path"].removeprefix("en/"),
            pct(c["wer"]),
            str(c["substitutions"]),
            str(c["deletions"]),
            str(c["insertions"]),
            c["language"] or "",
            text,
        )
    console.print(table)


def print_summary(results: list[dict[str, Any]]) -> None:
    table = Table(title="Corpus WER (total errors / total reference words), 13 English clips")
    for col in ("model", "words", "S", "D", "I", "corpus WER %", "mean clip WER %", "paper WER % *", "RTF"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in results:
        c = r["corpus"]
        published = r["published_wer_percent"]
        table.add_row(
            r["model"],
            str(c["reference_words"]),
            str(c["substitutions"]),
            str(c["deletions"]),
            str(c["insertions"]),
            pct(c["wer"]),
            pct(r["mean_clip_wer"]),
            f"{published:.1f}" if published is not None else "-",
            f"{r['transcribe_seconds'] / r['audio_seconds']:.3f}",
        )
    console.print(table)
    console.print(f"* {PUBLISHED_SOURCE}: a different, much larger test set (see bench/README.md).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="model ids (default: %(default)s)")
    parser.add_argument("--data", type=Path, default=DATA, help="shared data folder (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON results file (default: %(default)s)")
    parser.add_argument("--home", type=Path, default=None, help="voxgate home (default: VOXGATE_HOME or user cache)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cpu_threads (default: %(default)s)")
    parser.add_argument("--language", default=None, help="force a language (default: none, as a bare request)")
    parser.add_argument(
        "--vocabulary",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"also transcribe {VOCABULARY_CLIP} with and without the term {VOCABULARY_TERM!r} (default: on)",
    )
    args = parser.parse_args(argv)

    overrides: dict[str, Any] = {"preload": [], "cpu_threads": args.threads}
    if args.home is not None:
        overrides["home"] = args.home
    settings = Settings(**overrides)
    options = TranscriptionOptions(language=args.language)
    service = Service(settings)
    results = []
    vocabulary = {}
    started = time.perf_counter()
    cpu = CpuMeter()
    try:
        for model_id in args.models:
            result = evaluate(service, model_id, args.data, options)
            results.append(result)
            print_model(result)
            if args.vocabulary:
                vocabulary[model_id] = vocabulary_check(service, model_id, args.data, options)
    finally:
        service.close()

    print_summary(results)
    if args.vocabulary:
        table = Table(title=f"Custom vocabulary: {VOCABULARY_CLIP}, term {VOCABULARY_TERM!r}")
        for col in ("model", "without the term", "with the term", "term in output (without / with)"):
            table.add_column(col, overflow="fold")
        for model_id, v in vocabulary.items():
            table.add_row(
                model_id,
                v["without"]["text"],
                v["with"]["text"],
                f"{v['without']['contains_term']} / {v['with']['contains_term']}",
            )
        console.print(table)

    load = cpu.result()
    if "other_processes_cores" in load:
        console.print(
            f"CPU: other processes on the machine used {load['other_processes_cores']:.2f} of {os.cpu_count()} cores "
            "on average during this run (RTF is only indicative; bench/speed.py measures speed)."
        )

    report = {
        **report_head("wer", time.perf_counter() - started, args.data),
        "manifest": "en/MANIFEST.tsv",
        "path": "voxgate.service.Service.transcribe_sync",
        "normalizer": "whisper_normalizer.english.EnglishTextNormalizer",
        "settings": {
            "device": settings.device,
            "compute_type": settings.compute_type,
            "cpu_threads": settings.cpu_threads,
            "batch_size": settings.batch_size,
            "window_seconds": settings.window_seconds,
            "options": asdict(options),
        },
        "published_source": PUBLISHED_SOURCE,
        "machine": machine_info(MACHINE_DISTS, MACHINE_KEYS),
        "cpu": load,
        "models": results,
        "vocabulary": vocabulary if args.vocabulary else None,
    }
    write_report(args.out, report)
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
