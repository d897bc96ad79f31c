"""Per-language accuracy, language ID, speed and memory of Whisper models on the shared multilingual clips.

Every clip of ``multilingual-cv/`` (Common Voice, 29 languages x 10) and of the English sets goes through
``Service.transcribe_sync`` with the options of a request that sets nothing (language detected, beam 5, word
timestamps, VAD): the product path of ``POST /stt/v1/transcribe``. The models are alternated clip by clip (the first
model of each clip rotates), so a change in the machine's load hits all of them alike. Per clip it records:

* the transcript, scored per language with a normaliser chosen by script (see ``normalise``): WER for spaced
  scripts, CER for Chinese, Cantonese, Japanese and Thai (scripts written without spaces between words);
* the language the transcript reports (faster-whisper's detection on the first 30 s window: what a file request
  answers) and the language of voxgate's short-window LID (``engine.detect_language``: what streams and voice
  profiles use) on the same audio, both scored against the clip's language;
* wall and process-CPU seconds of the transcription, and the 1-minute load average at that moment.

Memory: the process's resident set before and after each model loads (models load one after another before any
clip runs, so each delta is that model's own weights and runtime), and the peak resident set at the end.

    nice -n 5 python bench/languages.py                        # whisper/base, writes bench/results/languages.json
    nice -n 5 python bench/languages.py --models whisper/base whisper//path/to/ct2-dir --forced
    python bench/languages.py --limit 2 --sets multilingual-cv  # a quick look: 2 clips per language

``--given`` transcribes each clip with its language given instead of detected (the short-window LID is still
measured; the file LID is not), and ``--forced`` does both, to separate recognition errors from language-ID
errors. This is evaluation only: nothing is trained or tuned on these clips.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faster_whisper  # noqa: F401  (imported before the memory baseline: its import is not a model's cost)
import jiwer
from common import DATA, CpuMeter, describe_load, loadavg, machine_info, read_manifest, report_head, write_report
from rich.console import Console
from rich.table import Table
from whisper_normalizer.english import EnglishTextNormalizer

from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.engines.base import LanguageIdentifier
from voxgate.service import Service
from voxgate.types import TranscriptionOptions

MACHINE_DISTS = (
    "voxgate",
    "faster-whisper",
    "ctranslate2",
    "jiwer",
    "whisper-normalizer",
    "opencc-python-reimplemented",
)
OUT = Path(__file__).resolve().parent / "results" / "languages.json"
MODELS = ("whisper/base",)
SETS = ("multilingual-cv", "en")

UNSPACED = frozenset({"zh", "yue", "ja", "th"})
"""Languages written without spaces between words: scored by character error rate."""
CHINESE = frozenset({"zh", "yue"})
ARABIC_SCRIPT = frozenset({"ar", "fa", "ur", "ps"})
_ARABIC_MARKS = {c: None for c in (*range(0x064B, 0x0653), 0x0670, 0x0640)}  # harakat, superscript alef, tatweel
# Arabic yeh, alef maksura, Arabic kaf and Urdu's heh doachashmee, as Persian writes them (yeh, yeh, keheh, heh).
_PERSIAN_LETTERS = str.maketrans({"\u064a": "\u06cc", "\u0649": "\u06cc", "\u0643": "\u06a9", "\u06be": "\u0647"})

GOAL_LID = 0.90
GOAL_MEDIAN_ERROR = 0.25

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)


def _simplified() -> Callable[[str], str] | None:
    """Traditional → Simplified Chinese (OpenCC's t2s table), or None when opencc is not installed."""
    try:
        from opencc import OpenCC  # type: ignore[import-not-found]
    except ImportError:
        return None
    return OpenCC("t2s").convert  # type: ignore[no-any-return]


_T2S = _simplified()
_ENGLISH = EnglishTextNormalizer()


def normalise(text: str, language: str) -> str:
    """The text as it is scored, per script.

    * English: Whisper's ``EnglishTextNormalizer`` (as ``bench/wer.py``; numbers as digits, spellings unified).
    * Every other language: NFKC, case folded, punctuation and symbols (Unicode categories P*, S*) replaced by a
      space, whitespace collapsed. Combining marks are kept: in Tamil, Thai and many others they are letters (vowel
      signs), and Whisper's ``BasicTextNormalizer`` turns them into spaces, which splits such words into pieces.
    * Arabic script: the optional short-vowel marks (harakat), superscript alef and tatweel are dropped (references
      write them now and then, Whisper rarely does); Persian also unifies the Arabic forms of yeh and kaf.
    * Chinese and Cantonese: Traditional characters mapped to Simplified (OpenCC t2s) on both sides, since Whisper
      writes either script for either language and a right character in the other script is not an error.
    * Unspaced scripts (zh, yue, ja, th): spaces removed, for character error rate.
    """
    if language == "en":
        return _ENGLISH(text)
    text = unicodedata.normalize("NFKC", text).casefold()
    if language in ARABIC_SCRIPT:
        text = text.translate(_ARABIC_MARKS)
        if language == "fa":
            text = text.translate(_PERSIAN_LETTERS)
    if language in CHINESE and _T2S is not None:
        text = _T2S(text)
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    if language in UNSPACED:
        return "".join(text.split())
    return " ".join(text.split())


def error_counts(reference: str, hypothesis: str, language: str) -> dict[str, int]:
    """Edit operations between the normalised texts: over characters for unspaced scripts, else over words."""
    if language in UNSPACED:
        if not reference:
            return {"units": 0, "errors": len(hypothesis)}
        c = jiwer.process_characters(reference, hypothesis or " ")
        hypothesis_chars = len(hypothesis)
        errors = c.substitutions + c.deletions + c.insertions if hypothesis_chars else len(reference)
        return {"units": c.hits + c.substitutions + c.deletions, "errors": errors}
    words = reference.split()
    if not words:
        return {"units": 0, "errors": len(hypothesis.split())}
    if not hypothesis.strip():
        return {"units": len(words), "errors": len(words)}
    w = jiwer.process_words(reference, hypothesis)
    return {"units": w.hits + w.substitutions + w.deletions, "errors": w.substitutions + w.deletions + w.insertions}


def lid_correct(answer: str | None, language: str, model_languages: Sequence[str]) -> bool:
    """Whether a detected language is right. Cantonese (``yue``) clips accept ``zh`` from a model without ``yue``
    (Whisper before large-v3 has no Cantonese token, so ``zh`` is the best it can say)."""
    if answer == language:
        return True
    return language == "yue" and "yue" not in model_languages and answer == "zh"


def rss_kib() -> dict[str, int]:
    """Resident set now and at its peak (``VmRSS``, ``VmHWM`` from /proc/self/status), in KiB."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def clips_of(data: Path, sets: Sequence[str], limit: int | None) -> list[dict[str, Any]]:
    """The clips of ``sets``, at most ``limit`` per language and set, in round-robin order over (set, language):
    the first clip of every language, then the second, ... so that a run stopped early is still balanced."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for name in sets:
        for row in read_manifest(data / name / "MANIFEST.tsv"):
            group = groups[(name, row["language"])]
            if limit is None or len(group) < limit:
                group.append(
                    {
                        "set": name,
                        "path": f"{name}/{row['path']}",
                        "language": row["language"],
                        "duration_s": float(row["duration_s"]),
                        "reference": row["reference"],
                    }
                )
    rounds = max((len(g) for g in groups.values()), default=0)
    return [g[i] for i in range(rounds) for g in groups.values() if i < len(g)]


def run_clip(
    service: Service,
    model_id: str,
    clip: dict[str, Any],
    data: Path,
    forced: bool,
    languages: Sequence[str],
    given: bool = False,
) -> dict[str, Any]:
    path = data / clip["path"]
    language = clip["language"]
    load = loadavg()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    known = language if language in languages else ("zh" if language == "yue" else language)
    options = TranscriptionOptions(language=known if given else None)
    transcript = service.transcribe_sync(path, options, model_id)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    engine = service.engine(model_id)
    short: str | None = None
    short_p: float | None = None
    if isinstance(engine, LanguageIdentifier):
        scores = engine.detect_language(decode(path))
        short, short_p = scores[0].code, scores[0].probability
    reference = normalise(clip["reference"], language)
    hypothesis = normalise(transcript.text, language)
    result: dict[str, Any] = {
        "hypothesis": transcript.text,
        "reference_normalized": reference,
        "hypothesis_normalized": hypothesis,
        **error_counts(reference, hypothesis, language),
        "language_given": known if given else None,
        "lid": None if given else transcript.language,
        "lid_probability": None if given else round(transcript.language_probability, 4),
        "lid_correct": None if given else lid_correct(transcript.language, language, languages),
        "lid_short": short,
        "lid_short_probability": short_p,
        "lid_short_correct": lid_correct(short, language, languages),
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "load_1min": load[0] if load else None,
    }
    if forced:
        forced_text = service.transcribe_sync(path, TranscriptionOptions(language=known), model_id).text
        result["forced_language"] = known
        result["forced_hypothesis"] = forced_text
        result["forced"] = error_counts(reference, normalise(forced_text, language), language)
    return result


def summarise(model_id: str, clips: list[dict[str, Any]], forced: bool) -> dict[str, Any]:
    by_language: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for clip in clips:
        if clip["set"] == "multilingual-cv":
            by_language[clip["language"]].append(clip)
    languages = {}
    for language, rows in sorted(by_language.items()):
        runs = [r["models"][model_id] for r in rows]
        units = sum(r["units"] for r in runs)
        entry: dict[str, Any] = {
            "clips": len(rows),
            "metric": "CER" if language in UNSPACED else "WER",
            "units": units,
            "errors": sum(r["errors"] for r in runs),
            "error_rate": sum(r["errors"] for r in runs) / units if units else 0.0,
            "lid_accuracy": share([r["lid_correct"] for r in runs]),
            "lid_short_accuracy": share([r["lid_short_correct"] for r in runs]),
            # the wrong answers of the file LID, or of the short-window LID where the language was given
            "lid_answers": sorted(
                {r["lid"] for r in runs if r["lid_correct"] is False}
                | {r["lid_short"] for r in runs if r["lid_correct"] is None and not r["lid_short_correct"]}
            ),
        }
        if forced:
            errors = sum(r["forced"]["errors"] for r in runs)
            entry["forced_error_rate"] = errors / units if units else 0.0
        languages[language] = entry
    cv = [c for c in clips if c["set"] == "multilingual-cv"]
    out: dict[str, Any] = {"model": model_id, "languages": languages}
    if languages:
        rates = [v["error_rate"] for v in languages.values()]
        runs = [c["models"][model_id] for c in cv]
        out["median_error_rate"] = statistics.median(rates)
        out["languages_within_goal"] = sum(r <= GOAL_MEDIAN_ERROR for r in rates)
        out["lid_accuracy"] = share([r["lid_correct"] for r in runs])
        out["lid_short_accuracy"] = share([r["lid_short_correct"] for r in runs])
        out["lid_by_length"] = lid_by_length(cv, model_id)
        if forced:
            out["median_forced_error_rate"] = statistics.median(v["forced_error_rate"] for v in languages.values())
    english = [c for c in clips if c["set"] == "en"]
    if english:
        runs = [c["models"][model_id] for c in english]
        out["en_wer"] = sum(r["errors"] for r in runs) / sum(r["units"] for r in runs)
        out["en_words"] = sum(r["units"] for r in runs)
    runs = [c["models"][model_id] for c in clips]
    audio = sum(c["duration_s"] for c in clips)
    out["audio_seconds"] = round(audio, 2)
    out["rtf"] = sum(r["seconds"] for r in runs) / audio
    out["cpu_per_audio_second"] = sum(r["cpu_seconds"] for r in runs) / audio
    out["median_clip_seconds"] = statistics.median(r["seconds"] for r in runs)
    loads = [r["load_1min"] for r in runs if r["load_1min"] is not None]
    if loads:
        out["load_1min"] = {"mean": round(statistics.mean(loads), 2), "min": min(loads), "max": max(loads)}
    return out


def share(flags: Sequence[bool | None]) -> float | None:
    """The share of true flags; None when any is unknown (the file LID of a run with the language given)."""
    if not flags or any(f is None for f in flags):
        return None
    return sum(bool(f) for f in flags) / len(flags)


LENGTH_BINS = ((0.0, 3.0), (3.0, 5.0), (5.0, 8.0), (8.0, 1e9))


def lid_by_length(clips: list[dict[str, Any]], model_id: str) -> list[dict[str, Any]]:
    bins = []
    for low, high in LENGTH_BINS:
        rows = [c["models"][model_id] for c in clips if low <= c["duration_s"] < high]
        if rows:
            bins.append(
                {
                    "from_s": low,
                    "to_s": None if high > 1e8 else high,
                    "clips": len(rows),
                    "lid_accuracy": share([r["lid_correct"] for r in rows]),
                    "lid_short_accuracy": share([r["lid_short_correct"] for r in rows]),
                }
            )
    return bins


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}"


def print_tables(summaries: list[dict[str, Any]], forced: bool) -> None:
    if not summaries or not summaries[0]["languages"]:
        return
    table = Table(title="multilingual-cv: error rate % (WER, or CER for zh/yue/ja/th) and LID % per language")
    table.add_column("lang")
    table.add_column("metric")
    for s in summaries:
        name = s["model"].removeprefix("whisper/")
        table.add_column(f"{name} err", justify="right")
        if forced:
            table.add_column(f"{name} forced", justify="right")
        table.add_column(f"{name} LID", justify="right")
        table.add_column(f"{name} LID short", justify="right")
        table.add_column(f"{name} wrong LID", overflow="fold")
    for language, entry in summaries[0]["languages"].items():
        row = [language, entry["metric"]]
        for s in summaries:
            e = s["languages"][language]
            row.append(pct(e["error_rate"]))
            if forced:
                row.append(pct(e["forced_error_rate"]))
            row += [pct(e["lid_accuracy"]), pct(e["lid_short_accuracy"]), ",".join(e["lid_answers"])]
        table.add_row(*row)
    console.print(table)


def print_summary(summaries: list[dict[str, Any]], memory: dict[str, Any], forced: bool) -> None:
    table = Table(title="Summary (goal: LID >= 90 %, median per-language error <= 25 %)")
    columns = ["model", "median err %", "langs <= 25 %", "LID file %", "LID short %", "en WER %"]
    if forced:
        columns.insert(2, "median forced %")
    columns += ["RTF", "CPU s / audio s", "load 1-min (mean, min-max)", "RSS + MiB"]
    for col in columns:
        table.add_column(col, justify="left" if col == "model" else "right")
    for s in summaries:
        load = s.get("load_1min", {})
        row = [
            s["model"],
            pct(s.get("median_error_rate")),
            f"{s.get('languages_within_goal', '-')}/{len(s['languages'])}",
            pct(s.get("lid_accuracy")),
            pct(s.get("lid_short_accuracy")),
            f"{100 * s['en_wer']:.1f}" if "en_wer" in s else "-",
            f"{s['rtf']:.3f}",
            f"{s['cpu_per_audio_second']:.3f}",
            f"{load.get('mean', '-')}, {load.get('min', '-')}-{load.get('max', '-')}",
            f"{memory[s['model']]['rss_delta_mib']:.0f}",
        ]
        if forced:
            row.insert(2, pct(s.get("median_forced_error_rate")))
        table.add_row(*row)
    console.print(table)
    if len(summaries) > 1:
        first = summaries[0]
        for s in summaries[1:]:
            console.print(
                f"{s['model']} / {first['model']}: RTF x{s['rtf'] / first['rtf']:.2f}, CPU per audio second "
                f"x{s['cpu_per_audio_second'] / first['cpu_per_audio_second']:.2f}, resident memory x"
                f"{memory[s['model']]['rss_delta_mib'] / memory[first['model']]['rss_delta_mib']:.2f} "
                "(measured in this run, clips alternated)"
            )
    for s in summaries:
        bins = ", ".join(
            f"{b['from_s']:.0f}-{'' if b['to_s'] is None else format(b['to_s'], '.0f')} s: {pct(b['lid_accuracy'])} % "
            f"(short {pct(b['lid_short_accuracy'])} %, n={b['clips']})"
            for b in s.get("lid_by_length", [])
        )
        if bins:
            console.print(f"{s['model']} LID by clip length: {bins}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="model ids (default: %(default)s)")
    parser.add_argument("--sets", nargs="+", default=list(SETS), help="data folders (default: %(default)s)")
    parser.add_argument("--data", type=Path, default=DATA, help="shared data folder (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON results file (default: %(default)s)")
    parser.add_argument("--home", type=Path, default=None, help="voxgate home (default: VOXGATE_HOME or user cache)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cpu_threads (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="at most N clips per language and set")
    parser.add_argument("--forced", action="store_true", help="also transcribe each clip with its language given")
    parser.add_argument("--given", action="store_true", help="transcribe with each clip's language given, only")
    args = parser.parse_args(argv)

    overrides: dict[str, Any] = {"preload": [], "cpu_threads": args.threads}
    if args.home is not None:
        overrides["home"] = args.home
    settings = Settings(**overrides)
    clips = clips_of(args.data, args.sets, args.limit)
    started = time.perf_counter()
    service = Service(settings)
    memory: dict[str, Any] = {}
    model_languages: dict[str, tuple[str, ...]] = {}
    try:
        memory["before_models_kib"] = rss_kib().get("VmRSS")
        for model_id in args.models:
            before = rss_kib().get("VmRSS", 0)
            t0 = time.perf_counter()
            engine = service.engine(model_id)
            after = rss_kib().get("VmRSS", 0)
            memory[model_id] = {
                "load_seconds": round(time.perf_counter() - t0, 2),
                "rss_delta_mib": (after - before) / 1024,
            }
            model_languages[model_id] = engine.capabilities.languages
        machine = machine_info(MACHINE_DISTS)  # at the start: its load average is the run's starting load
        cpu = CpuMeter(end_load=True)
        done: list[dict[str, Any]] = []
        for i, clip in enumerate(clips):
            order = args.models[i % len(args.models) :] + args.models[: i % len(args.models)]
            clip["models"] = {}
            for model_id in order:
                clip["models"][model_id] = run_clip(
                    service, model_id, clip, args.data, args.forced, model_languages[model_id], args.given
                )
            done.append(clip)
            if (i + 1) % 10 == 0 or i + 1 == len(clips):
                progress = ", ".join(
                    f"{m.removeprefix('whisper/')} {clip['models'][m]['lid']}/{clip['models'][m]['seconds']:.1f}s"
                    for m in args.models
                )
                console.print(f"[dim]{i + 1}/{len(clips)} {clip['path']} {progress} load {loadavg()}[/dim]")
                # a checkpoint: the report over the clips done so far (balanced across languages by their order)
                memory["peak_kib"] = rss_kib().get("VmHWM")
                report = {
                    **report_head("languages", time.perf_counter() - started, args.data),
                    "complete": i + 1 == len(clips),
                    "clips_done": len(done),
                    "clips_planned": len(clips),
                    "sets": args.sets,
                    "limit_per_language": args.limit,
                    "language_given": args.given,
                    "path": "voxgate.service.Service.transcribe_sync (options of a bare request) + "
                    "engine.detect_language",
                    "normaliser": normalise.__doc__,
                    "chinese_script_mapping": "opencc t2s" if _T2S is not None else None,
                    "settings": {"compute_type": settings.compute_type, "cpu_threads": settings.cpu_threads},
                    "machine": machine,
                    "cpu": cpu.result(),
                    "memory": memory,
                    "summaries": [summarise(m, done, args.forced) for m in args.models],
                    "clips": done,
                }
                write_report(args.out, report)
    finally:
        service.close()

    summaries = report["summaries"]
    print_tables(summaries, args.forced)
    print_summary(summaries, memory, args.forced)
    line = describe_load(report["cpu"])
    if line:
        console.print(line + f" Load average at the end: {report['cpu'].get('load_average_at_end')}.")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
