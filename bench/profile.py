"""What voxgate's voice profile gets right on the labeled real speech there is, and what it costs.

The shared speech carries labels a profile can be checked against: the spoken language (every clip, and the English /
German halves of ``multilingual/``), the speaker (``spk1`` / ``spk2`` of the 12 Harvard sentences in ``en/``), and
emotion (RAVDESS), gender (RAVDESS, Common Voice) and age band (Common Voice) for the trained heads.

0. **Trained heads** (emotion, gender, age): speaker-independent cross-validation of the shipped configuration (its
   inputs and regularisation, read from each head's npz) with ``tools/train_profile.py``'s folds (needs the
   ``train`` extra): UAR, accuracy, ECE before / after temperature scaling, confusion, per fold, against chance and
   the majority class. Accent has no trained head (no accent but US English has enough speakers), so no score.

1. **Language ID**: ``Service.profile(window)``'s language top-1 and top-3 against the truth, on non-overlapping
   windows of 2, 4 and 8 s of ``multilingual/en-de-license.mp3`` (English, then German; the switch point is found by
   transcribing the file and taking the gap between the last English and the first German segment, and windows
   stay ``--margin`` seconds clear of it), on each whole half, and on every other clip (13 ``en/``, the vocabulary
   clip, each channel of the two-speaker file: all English). Baselines: chance (1 / number of languages the LID
   model knows) and the majority class of each evaluation set. Beside voxgate's LID (a shortened encoder window:
   the audio plus 5 s of padding) it also runs faster-whisper's standard ``detect_language`` (one 30 s window),
   to tell what the shortened window costs in accuracy.
2. **Pitch and the speakers**: the fraction of the 12 Harvard clips whose pitch top label is their speaker's
   majority label, each speaker's median F0 (mean +- sd over the sentences) and the accuracy of telling the speakers
   apart by a median-F0 threshold chosen leave-one-out.
3. **Cost**: wall and process CPU time (``time.process_time``: all threads) of ``Service.profile`` per second of
   audio, split into LID and the analyzer without its heads (prosody + rules), per clip length; and
   ``Service.transcribe_file`` (what the REST endpoint runs) with ``profile=True`` against ``profile=False`` on the
   same files, back to back; and a stream (``Service.open_stream``, VAD turns, fed at ``--stream-speed`` x real
   time) with and without ``profile``, process CPU per audio second.

It also checks each served segment profile: its word times re-measured relative to the segment, and the language it
assumed against the segment's own (see bench/README.md).

    python bench/profile.py                 # ~4.5 min on a busy 2-core VM, writes bench/results/profile.json
    python bench/profile.py --repeat 3 --no-reference-lid   # steadier REST ratios
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import math
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from common import DATA, busy_seconds, machine_info, own_cpu_seconds, read_manifest, stereo_channels, write_report
from rich.console import Console
from rich.table import Table

from voxgate.analysis import profile as profile_module
from voxgate.analysis.profile import VoiceProfile
from voxgate.analysis.prosody import extract_features, vocal_style_labels
from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.files import FileResult
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, Audio, TranscriptionOptions, Word

MACHINE_DISTS = ("voxgate", "faster-whisper", "ctranslate2", "praat-parselmouth", "scikit-learn", "numpy")
MACHINE_KEYS = ("platform", "python", "cpu_count", "cpu_model", "git_commit", "versions")
OUT = Path(__file__).resolve().parent / "results" / "profile.json"
MULTILINGUAL = "multilingual/en-de-license.mp3"
STEREO = "two-speakers/stereo-two-speakers.wav"
VOCABULARY = "vocabulary/comfyui.mp3"
FALLBACK_SWITCH_S = 29.8
"""Used only when the transcript does not show an English then a German segment."""
LANGUAGE_NAMES: dict[str, str] = getattr(profile_module, "_LANGUAGE_NAMES", {"en": "English", "de": "German"})
DIMS = ("emotion", "gender", "age", "accent", "pitch")
WORD_FIELDS = ("word_count", "speaking_rate_wpm", "articulation_rate_wpm", "pause_ratio", "mean_pause_s")

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)


# -- data ------------------------------------------------------------------------------------------------------------


@dataclass
class Item:
    """One piece of audio with its true language, and what profiling it gave."""

    name: str
    group: str
    truth: str
    audio: Audio = field(repr=False)
    speaker: str | None = None
    start_s: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def clip_items(data: Path) -> list[Item]:
    """Every labeled clip other than the multilingual file: 13 en, the vocabulary clip, two stereo channels."""
    items = []
    for row in read_manifest(data / "en" / "MANIFEST.tsv"):
        path = row["path"]
        speaker = path.split("_", 1)[0] if path.startswith("spk") else None
        group = "harvard" if speaker else "clip"
        items.append(Item(f"en/{path}", group, row["language"], decode(data / "en" / path), speaker))
    vocab_lang = read_manifest(data / "vocabulary" / "MANIFEST.tsv")[0]["language"]
    items.append(Item(VOCABULARY, "clip", vocab_lang, decode(data / VOCABULARY)))
    stereo_lang = read_manifest(data / "two-speakers" / "MANIFEST.tsv")[0]["language"]
    for side, audio in zip(("left", "right"), stereo_channels(data / STEREO), strict=True):
        items.append(Item(f"two-speakers/{side}", "clip", stereo_lang, audio))
    return items


def switch_point(service: Service, model_id: str, path: Path) -> tuple[float, list[dict[str, Any]]]:
    """Where the English reading ends and the German one starts: the middle of the gap between the two segments."""
    transcript = service.transcribe_sync(path, TranscriptionOptions(), model_id)
    segments = [
        {"start": s.start, "end": s.end, "language": s.language, "text": s.text[:60]} for s in transcript.segments
    ]
    for a, b in itertools.pairwise(segments):
        if a["language"] == "en" and b["language"] == "de":
            return (a["end"] + b["start"]) / 2, segments
    return FALLBACK_SWITCH_S, segments


def window_items(audio: Audio, switch_s: float, margin_s: float, lengths: Sequence[float]) -> list[Item]:
    """Non-overlapping windows of each length in the English part [0, switch - margin) and the German part
    [switch + margin, end), plus each part whole."""
    total = len(audio) / SAMPLE_RATE
    regions = (("en", 0.0, switch_s - margin_s), ("de", switch_s + margin_s, total))
    items = []
    for length in lengths:
        for language, begin, end in regions:
            k = 0
            while begin + (k + 1) * length <= end + 1e-9:
                start = begin + k * length
                clip = audio[round(start * SAMPLE_RATE) : round((start + length) * SAMPLE_RATE)]
                items.append(Item(f"{language}@{start:.0f}s", f"{length:g}s", language, clip, start_s=start))
                k += 1
    for language, begin, end in regions:
        clip = audio[round(begin * SAMPLE_RATE) : round(end * SAMPLE_RATE)]
        items.append(Item(f"{language}-half", "half", language, clip, start_s=begin))
    return items


# -- measuring -------------------------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, process CPU seconds)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def top(labels: Sequence[Any]) -> tuple[str | None, float | None]:
    return (labels[0].label, labels[0].confidence) if labels else (None, None)


def profile_item(service: Service, item: Item, reference_lid: bool) -> None:
    lid = service.engine(service.settings.language_id_model)
    analyzer = service.profile_analyzer()
    profile, wall, cpu = timed(lambda: service.profile(item.audio))
    scores, lid_wall, lid_cpu = timed(lambda: lid.detect_language(item.audio))
    _, an_wall, an_cpu = timed(lambda: analyzer.analyze(item.audio, language=scores))
    codes = [s.label for s in profile.language]
    r: dict[str, Any] = {
        "seconds": round(item.seconds, 3),
        "language_top5": [[s.label, s.confidence] for s in profile.language],
        "top1": codes[0] if codes else None,
        "top1_correct": bool(codes) and codes[0] == item.truth,
        "top3_hit": item.truth in codes[:3],
        "truth_rank": codes.index(item.truth) + 1 if item.truth in codes else None,
        "lid_repeat_agrees": [s.code for s in scores] == codes,
        "profile_wall_s": wall,
        "profile_cpu_s": cpu,
        "lid_wall_s": lid_wall,
        "lid_cpu_s": lid_cpu,
        "analyze_wall_s": an_wall,
        "analyze_cpu_s": an_cpu,
        **summarize_profile(profile),
    }
    if reference_lid:
        model = lid.model  # type: ignore[attr-defined]
        (code, probability, ranked), ref_wall, ref_cpu = timed(lambda: model.detect_language(item.audio))
        ref_codes = [c for c, _ in ranked]
        r.update(
            reference_top1=code,
            reference_probability=round(float(probability), 4),
            reference_top1_correct=code == item.truth,
            reference_top3_hit=item.truth in ref_codes[:3],
            reference_wall_s=ref_wall,
            reference_cpu_s=ref_cpu,
        )
    item.result = r


def summarize_profile(profile: VoiceProfile) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, labels in (
        ("pitch", profile.pitch),
        ("emotion", profile.emotion),
        ("gender", profile.gender),
        ("age", profile.age),
        ("accent", profile.accent),
    ):
        out[f"{key}_top"], out[f"{key}_confidence"] = top(labels)
    out["vocal_style"] = [[s.label, s.confidence] for s in profile.vocal_style]
    out["f0_median_hz"] = profile.features.f0_median_hz
    out["voiced_s"] = profile.features.voiced_s
    out["speech_seconds"] = profile.speech_seconds
    return out


# -- statistics ------------------------------------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k / n."""
    if n == 0:
        return 0.0, 0.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_row(name: str, items: Sequence[Item], n_languages: int) -> dict[str, Any]:
    n = len(items)
    k1 = sum(i.result["top1_correct"] for i in items)
    k3 = sum(i.result["top3_hit"] for i in items)
    truths = Counter(i.truth for i in items)
    majority_label, majority_n = truths.most_common(1)[0] if truths else ("", 0)
    row: dict[str, Any] = {
        "set": name,
        "n": n,
        "truth_counts": dict(truths),
        "top1_accuracy": k1 / n if n else None,
        "top1_correct": k1,
        "top1_ci95": wilson(k1, n),
        "top3_accuracy": k3 / n if n else None,
        "top3_hit": k3,
        "chance_top1": 1 / n_languages,
        "chance_top3": 3 / n_languages,
        "majority_label": majority_label,
        "majority_accuracy": majority_n / n if n else None,
        "mean_top1_confidence": statistics.fmean(i.result["language_top5"][0][1] for i in items) if n else None,
        "errors": [f"{i.name}: {i.result['top1']}" for i in items if not i.result["top1_correct"]],
    }
    if n and "reference_top1_correct" in items[0].result:
        row["reference_top1_accuracy"] = sum(i.result["reference_top1_correct"] for i in items) / n
        row["reference_top3_accuracy"] = sum(i.result["reference_top3_hit"] for i in items) / n
        row["reference_errors"] = [
            f"{i.name}: {i.result['reference_top1']}" for i in items if not i.result["reference_top1_correct"]
        ]
    return row


def loo_threshold_accuracy(values: Sequence[float], labels: Sequence[str]) -> dict[str, Any]:
    """Speaker by median F0: for each clip, a threshold chosen on the other clips (the midpoint that classifies them
    best, ties to the one nearest the midpoint of the two speakers' means) decides the held-out clip."""
    predictions = []
    for held in range(len(values)):
        train = [(v, y) for j, (v, y) in enumerate(zip(values, labels, strict=True)) if j != held]
        classes = sorted({y for _, y in train})
        means = {c: statistics.fmean(v for v, y in train if y == c) for c in classes}
        high, low = (classes[0], classes[-1]) if means[classes[0]] >= means[classes[-1]] else (classes[-1], classes[0])
        xs = sorted(v for v, _ in train)
        candidates = [(a + b) / 2 for a, b in itertools.pairwise(xs)] or [xs[0]]
        centre = (means[high] + means[low]) / 2

        def score(t: float, train: list[tuple[float, str]] = train, high: str = high, low: str = low) -> int:
            return sum((high if v > t else low) == y for v, y in train)

        best = max(candidates, key=lambda t, centre=centre: (score(t), -abs(t - centre)))
        predictions.append({"threshold_hz": best, "predicted": high if values[held] > best else low})
    correct = sum(p["predicted"] == y for p, y in zip(predictions, labels, strict=True))
    majority = Counter(labels).most_common(1)[0][1] / len(labels)
    return {
        "accuracy": correct / len(labels),
        "correct": correct,
        "n": len(labels),
        "ci95": wilson(correct, len(labels)),
        "chance": 0.5,
        "majority_accuracy": majority,
        "thresholds_hz": [round(p["threshold_hz"], 1) for p in predictions],
    }


def distribution(results: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    tops = [r[f"{key}_top"] for r in results if r.get(f"{key}_top") is not None]
    confidences = [r[f"{key}_confidence"] for r in results if r.get(f"{key}_confidence") is not None]
    counts = Counter(tops)
    return {
        "n": len(tops),
        "top_label_counts": dict(counts.most_common()),
        "mean_top_confidence": statistics.fmean(confidences) if confidences else None,
        "fraction_unclear": counts.get("unclear", 0) / len(tops) if tops else None,
        "mean_confidence_by_label": {
            label: statistics.fmean(r[f"{key}_confidence"] for r in results if r.get(f"{key}_top") == label)
            for label in counts
        },
    }


def cost_row(name: str, items: Sequence[Item]) -> dict[str, Any]:
    audio = sum(i.seconds for i in items)

    def per_s(key: str) -> float:
        return 1000 * sum(i.result[key] for i in items) / audio

    return {
        "set": name,
        "n": len(items),
        "audio_s": round(audio, 2),
        "mean_clip_s": round(audio / len(items), 2),
        "profile_median_ms": 1000 * statistics.median(i.result["profile_wall_s"] for i in items),
        "profile_wall_ms_per_audio_s": per_s("profile_wall_s"),
        "profile_cpu_ms_per_audio_s": per_s("profile_cpu_s"),
        "lid_wall_ms_per_audio_s": per_s("lid_wall_s"),
        "lid_cpu_ms_per_audio_s": per_s("lid_cpu_s"),
        "analyze_wall_ms_per_audio_s": per_s("analyze_wall_s"),
        "analyze_cpu_ms_per_audio_s": per_s("analyze_cpu_s"),
    }


# -- the REST path ----------------------------------------------------------------------------------------------------


async def rest_runs(
    service: Service, files: Sequence[tuple[str, Path, float]], model_id: str, repeat: int
) -> tuple[list[dict[str, Any]], dict[str, FileResult]]:
    """``transcribe_file`` with and without profiles on every file, back to back, alternating which goes first."""
    options = TranscriptionOptions()
    runs = []
    served: dict[str, FileResult] = {}
    warm = files[0][1]
    for flag in (False, True):
        await service.transcribe_file(warm, options, model_id, profile=flag)
    for r in range(repeat):
        for i, (name, path, seconds) in enumerate(files):
            for flag in (False, True) if (r + i) % 2 == 0 else (True, False):
                w0, c0 = time.perf_counter(), time.process_time()
                result = await service.transcribe_file(path, options, model_id, profile=flag)
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                runs.append(
                    {
                        "file": name,
                        "repeat": r,
                        "profile": flag,
                        "audio_s": seconds,
                        "wall_s": wall,
                        "cpu_s": cpu,
                        "segments": len(result.transcript.segments),
                        "profiled_segments": sum(p is not None for p in result.segment_profiles),
                        "text": result.transcript.text,
                    }
                )
                if flag and name not in served:
                    served[name] = result
    return runs, served


def rest_summary(name: str, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    on = [r for r in runs if r["profile"]]
    off = [r for r in runs if not r["profile"]]
    audio = sum(r["audio_s"] for r in off)
    pairs: dict[tuple[str, int], dict[bool, dict[str, Any]]] = {}
    for r in runs:
        pairs.setdefault((r["file"], r["repeat"]), {})[r["profile"]] = r
    paired = [p[True]["wall_s"] / p[False]["wall_s"] for p in pairs.values() if len(p) == 2]
    wall_on, wall_off = sum(r["wall_s"] for r in on), sum(r["wall_s"] for r in off)
    cpu_on, cpu_off = sum(r["cpu_s"] for r in on), sum(r["cpu_s"] for r in off)
    return {
        "set": name,
        "runs_per_mode": len(off),
        "audio_s": round(audio, 2),
        "wall_ratio": wall_on / wall_off,
        "cpu_ratio": cpu_on / cpu_off,
        "paired_median_ratio": statistics.median(paired),
        "added_wall_ms_per_audio_s": 1000 * (wall_on - wall_off) / audio,
        "added_cpu_ms_per_audio_s": 1000 * (cpu_on - cpu_off) / audio,
        "rtf_off": wall_off / audio,
        "rtf_on": wall_on / audio,
        "profiled_segments_per_run": sum(r["profiled_segments"] for r in on) / max(1, len(on)),
        "identical_transcripts": all(p[True]["text"] == p[False]["text"] for p in pairs.values() if len(p) == 2),
    }


def assumed_language(profile: VoiceProfile) -> str | None:
    """The language the accent labels were made for ("German-influenced English" -> "English"), if they name one."""
    for s in profile.accent:
        for marker in ("-influenced ", "native-like "):
            if marker in s.label:
                return s.label.split(marker, 1)[1]
    return None


def spoken_language_check(
    service: Service, served: dict[str, FileResult], paths: dict[str, Path]
) -> list[dict[str, Any]]:
    """Each served segment profile: the segment's own language against the language its accent (and, for English,
    its text sentiment and rate labels) assumed; where they differ, the segment profiled again with its own language."""
    out = []
    for name, result in served.items():
        audio: Audio | None = None
        for segment, profile in zip(result.transcript.segments, result.segment_profiles, strict=True):
            if profile is None:
                continue
            own = LANGUAGE_NAMES.get(segment.language, segment.language)
            assumed = assumed_language(profile)
            row: dict[str, Any] = {
                "file": name,
                "segment_s": [segment.start, segment.end],
                "segment_language": segment.language,
                "transcript_language": result.transcript.language,
                "lid_top1": profile.language[0].label if profile.language else None,
                "accent_language": assumed,
                "mismatch": assumed is not None and assumed != own,
                "served": {"accent": top(profile.accent), "emotion": top(profile.emotion)},
            }
            if row["mismatch"]:
                audio = decode(paths[name]) if audio is None else audio
                clip = audio[int(segment.start * SAMPLE_RATE) : int(segment.end * SAMPLE_RATE)]
                again = service.profile(clip, text=segment.text, words=segment.words, language=segment.language)
                row["own_language"] = {"accent": top(again.accent), "emotion": top(again.emotion)}
            out.append(row)
    return out


def word_time_check(served: dict[str, FileResult], paths: dict[str, Path]) -> list[dict[str, Any]]:
    """Each served segment profile against the same segment measured with word times relative to the segment."""
    out = []
    for name, result in served.items():
        audio = decode(paths[name])
        for segment, profile in zip(result.transcript.segments, result.segment_profiles, strict=True):
            if profile is None or not segment.words or segment.start <= 0:
                continue
            clip = audio[int(segment.start * SAMPLE_RATE) : int(segment.end * SAMPLE_RATE)]
            shifted = [
                Word(w.word, w.start - segment.start, w.end - segment.start, w.confidence) for w in segment.words
            ]
            fixed = extract_features(clip, shifted)
            served_words = {f: getattr(profile.features, f) for f in WORD_FIELDS}
            fixed_words = {f: getattr(fixed, f) for f in WORD_FIELDS}
            out.append(
                {
                    "file": name,
                    "segment_s": [segment.start, segment.end],
                    "first_word_s": segment.words[0].start,
                    "served": served_words,
                    "relative_word_times": fixed_words,
                    "differs": any(
                        (a is None) != (b is None) or (a is not None and b is not None and abs(a - b) > 1e-6)
                        for a, b in zip(served_words.values(), fixed_words.values(), strict=True)
                    ),
                    "served_vocal_style": [[s.label, s.confidence] for s in profile.vocal_style],
                    "relative_vocal_style": [
                        [label, round(c, 4)] for label, c in vocal_style_labels(fixed, language=segment.language)
                    ],
                }
            )
    return out


# -- report ----------------------------------------------------------------------------------------------------------


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def print_lid(rows: Sequence[dict[str, Any]], reference: bool) -> None:
    table = Table(title="Language ID: Service.profile(audio).language vs the truth (top-1 / top-3, %)")
    columns = ["set", "n", "truth", "top-1 %", "95 % CI", "top-3 %", "chance top-1/3 %", "majority %", "mean conf."]
    if reference:
        columns += ["std LID top-1/3 %"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("set", "truth") else "right")
    for r in rows:
        lo, hi = r["top1_ci95"]
        cells = [
            r["set"],
            str(r["n"]),
            " ".join(f"{k}:{v}" for k, v in r["truth_counts"].items()),
            pct(r["top1_accuracy"]),
            f"{pct(lo)}-{pct(hi)}",
            pct(r["top3_accuracy"]),
            f"{pct(r['chance_top1'])}/{pct(r['chance_top3'])}",
            f"{pct(r['majority_accuracy'])} ({r['majority_label']})",
            f"{r['mean_top1_confidence']:.3f}",
        ]
        if reference:
            cells.append(f"{pct(r.get('reference_top1_accuracy'))}/{pct(r.get('reference_top3_accuracy'))}")
        table.add_row(*cells)
    console.print(table)
    for r in rows:
        if r["errors"] and r["set"] != "all":
            console.print(f"  {r['set']} errors (voxgate LID): {', '.join(r['errors'])}")
        if r.get("reference_errors") and r["set"] != "all":
            console.print(f"  {r['set']} errors (standard LID): {', '.join(r['reference_errors'])}")


# -- the trained heads ------------------------------------------------------------------------------------------------


def heads_cross_validation(data: Path, cache: Path, folds: int) -> dict[str, Any]:
    """Each shipped head's configuration cross-validated by speaker (``tools/train_profile.py``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    import train_profile as tp

    from voxgate.analysis.heads import load_heads

    clips = tp.read_clips(data)
    features = tp.extract(clips, cache)
    sets = tp.feature_sets(features)
    shipped = load_heads()
    tasks = tp.make_tasks(clips, folds)
    noisy: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {}
    for task in tasks:
        head = shipped[task.name]
        with np.load(head.path, allow_pickle=False) as z:
            feature_set, c = str(z["feature_set"]), float(z["c"])
            multi_condition = bool(z["multi_condition"]) if "multi_condition" in z.files else False
        inputs, matrix = sets[feature_set]
        assert inputs == head.inputs, (inputs, head.inputs)
        extra = []
        if multi_condition:  # trained on clean + noisy clips: score it trained the same way
            if not noisy:
                rows = sorted({int(i) for t in tasks for i in t.rows})
                noisy = tp.extract_noisy(clips, rows, {int(i) for i in tasks[0].rows}, data, cache)
            extra = [np.hstack([f[i] for i in inputs])[task.rows] for key, f in noisy.items() if tp.trains_on(key)]
        run = tp.cross_validate(task, matrix[task.rows], c, extra)
        counts = np.bincount(task.y, minlength=len(task.labels))
        out[task.name] = {
            "labels": list(task.labels),
            "inputs": list(inputs),
            "c": c,
            "clips": len(task.y),
            "majority_uar": 1.0 / len(task.labels),
            "majority_label": task.labels[int(counts.argmax())],
            "multi_condition": multi_condition,
            **run,
        }
    return out


def print_heads(heads: dict[str, Any]) -> None:
    table = Table(
        title="Trained heads as shipped (clean + noisy training where they are), speaker-independent "
        "cross-validation on clean clips (calibrated on held-out folds)"
    )
    for col in ("head", "inputs", "clips", "speakers", "UAR", "chance UAR", "accuracy", "majority acc.", "ECE raw",
                "ECE cal.", "per-fold UAR"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("head", "inputs") else "right")
    for name, h in heads.items():
        o = h["overall"]
        table.add_row(
            name,
            " + ".join(h["inputs"]),
            str(h["clips"]),
            str(h["speakers"]),
            f"{pct(o['uar'])} %",
            f"{pct(h['chance_uar'])} %",
            f"{pct(o['accuracy'])} %",
            f"{pct(h['majority_accuracy'])} %",
            f"{o['ece_uncalibrated']:.3f}",
            f"{o['ece']:.3f}",
            " ".join(f"{pct(f['uar'])}" for f in h["folds"]),
        )
    console.print(table)
    for name, h in heads.items():
        console.print(
            f"{name} confusion (rows true, columns predicted: {', '.join(h['labels'])}); counts {h['class_counts']}"
        )
        for label, row in zip(h["labels"], h["overall"]["confusion"], strict=True):
            console.print(f"  {label:>10s} " + " ".join(f"{v:4d}" for v in row))


# -- the stream path --------------------------------------------------------------------------------------------------


async def count_events(runner: Any, counts: Counter[str]) -> None:
    """Drain a stream's events until it closes, counting finals and profile updates."""
    from voxgate.streaming.events import ProfileEvent, StreamClosed, TranscriptEvent

    while True:
        event = await runner.events.get()
        if isinstance(event, TranscriptEvent) and event.is_final:
            counts["finals"] += 1
        elif isinstance(event, ProfileEvent):
            counts["profiles"] += 1
        elif isinstance(event, StreamClosed | Exception):
            return


async def stream_runs(service: Service, audio: Audio, model_id: str, speed: float, repeat: int) -> list[dict[str, Any]]:
    """One stream of ``audio`` per mode and repeat (alternating which goes first), process CPU per mode."""
    from voxgate.audio.pcm import PcmEncoding
    from voxgate.streaming.policy import TurnMode, TurnPolicy
    from voxgate.streaming.session import SessionConfig

    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    runs = []
    for r in range(repeat):
        for flag in (False, True) if r % 2 == 0 else (True, False):
            config = SessionConfig(TranscriptionOptions(), turn=TurnPolicy(mode=TurnMode.VAD), profile=flag)
            c0 = time.process_time()
            runner = await service.open_stream(
                model_id, config, encoding=PcmEncoding.LINEAR16, sample_rate=SAMPLE_RATE, channels=1
            )
            counts = Counter[str]()

            async with anyio.create_task_group() as tg:
                tg.start_soon(count_events, runner, counts)
                step = SAMPLE_RATE // 10 * 2
                for i in range(0, len(pcm), step):
                    await runner.feed(pcm[i : i + step])
                    await anyio.sleep(0.1 / speed)
                runner.close()
            await runner.aclose()
            cpu = time.process_time() - c0
            seconds = len(audio) / SAMPLE_RATE
            runs.append({"profile": flag, "repeat": r, "audio_s": seconds, "cpu_s": cpu, **counts})
    return runs


def stream_summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    on = [r for r in runs if r["profile"]]
    off = [r for r in runs if not r["profile"]]
    audio = sum(r["audio_s"] for r in off)
    cpu_on, cpu_off = sum(r["cpu_s"] for r in on), sum(r["cpu_s"] for r in off)
    return {
        "runs_per_mode": len(off),
        "audio_s": round(audio, 2),
        "cpu_ratio": cpu_on / cpu_off,
        "cpu_ms_per_audio_s_off": 1000 * cpu_off / audio,
        "cpu_ms_per_audio_s_on": 1000 * cpu_on / audio,
        "added_cpu_ms_per_audio_s": 1000 * (cpu_on - cpu_off) / audio,
        "profile_events_per_run": sum(r.get("profiles", 0) for r in on) / max(1, len(on)),
        "finals_per_run": {"off": [r.get("finals", 0) for r in off], "on": [r.get("finals", 0) for r in on]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="shared data folder (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON results file (default: %(default)s)")
    parser.add_argument("--home", type=Path, default=None, help="voxgate home (default: VOXGATE_HOME or user cache)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cpu_threads (default: %(default)s)")
    parser.add_argument(
        "--model", default="whisper/base", help="transcription model for the switch point and the REST path"
    )
    parser.add_argument("--windows", type=float, nargs="+", default=[2.0, 4.0, 8.0], help="window lengths, seconds")
    parser.add_argument("--margin", type=float, default=2.0, help="seconds kept clear of the language switch")
    parser.add_argument("--repeat", type=int, default=1, help="REST runs per file and mode (default: %(default)s)")
    parser.add_argument(
        "--reference-lid",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run faster-whisper's standard 30 s-window detect_language (default: on)",
    )
    parser.add_argument("--rest", action=argparse.BooleanOptionalAction, default=True, help="time transcribe_file")
    parser.add_argument(
        "--heads", action=argparse.BooleanOptionalAction, default=True, help="cross-validate the trained heads"
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/voxgate-profile"), help="heads' feature cache")
    parser.add_argument("--folds", type=int, default=6, help="speaker folds for gender and age (default: 6)")
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True, help="time a stream")
    parser.add_argument("--stream-speed", type=float, default=2.0, help="stream feed, x real time (default: 2)")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    phases: dict[str, float] = {}
    started, busy0, own0 = time.perf_counter(), busy_seconds(), own_cpu_seconds()
    heads: dict[str, Any] = {}
    if args.heads:
        heads = heads_cross_validation(args.data, args.cache, args.folds)
        phases["heads_cross_validation"] = time.perf_counter() - started
    overrides: dict[str, Any] = {"preload": [], "cpu_threads": args.threads}
    if args.home is not None:
        overrides["home"] = args.home
    settings = Settings(**overrides)
    service = Service(settings)
    data: Path = args.data
    try:
        lid_engine = service.engine(settings.language_id_model)
        service.engine(args.model)
        service.profile_analyzer()
        n_languages = len(lid_engine.capabilities.languages)
        warm = decode(data / "en" / "jfk.flac")
        for seconds in (1, 4, 11):
            service.profile(warm[: seconds * SAMPLE_RATE])

        multi_audio = decode(data / MULTILINGUAL)
        switch_s, segments = switch_point(service, args.model, data / MULTILINGUAL)
        windows = window_items(multi_audio, switch_s, args.margin, args.windows)
        clips = clip_items(data)
        items = windows + clips
        phases["setup_and_switch_point"] = time.perf_counter() - started
        phase_start = time.perf_counter()
        for item in items:
            profile_item(service, item, args.reference_lid)
        phases["profile_items"] = time.perf_counter() - phase_start

        # 1. language ID
        groups = [f"{w:g}s" for w in args.windows]
        lid_rows = [
            accuracy_row(f"multilingual {g}", [i for i in windows if i.group == g], n_languages) for g in groups
        ]
        lid_rows.append(accuracy_row("multilingual halves", [i for i in windows if i.group == "half"], n_languages))
        lid_rows.append(accuracy_row("clips (all English)", clips, n_languages))
        lid_rows.append(accuracy_row("all", items, n_languages))

        # 2. pitch and speakers
        harvard = [i for i in clips if i.speaker]
        speakers = sorted({i.speaker for i in harvard if i.speaker})
        majority_pitch = {
            s: Counter(i.result["pitch_top"] for i in harvard if i.speaker == s).most_common(1)[0][0] for s in speakers
        }
        consistent = sum(i.result["pitch_top"] == majority_pitch[i.speaker or ""] for i in harvard)
        f0 = {s: [i.result["f0_median_hz"] for i in harvard if i.speaker == s] for s in speakers}
        measured = [i for i in harvard if i.result["f0_median_hz"] is not None]
        pitch_report = {
            "clips": len(harvard),
            "majority_pitch_label": majority_pitch,
            "consistent": consistent,
            "consistency": consistent / len(harvard),
            "per_clip": {i.name: [i.result["pitch_top"], i.result["pitch_confidence"]] for i in harvard},
            "f0_median_hz": {
                s: {
                    "mean": statistics.fmean(v for v in vals if v is not None),
                    "sd": statistics.stdev(v for v in vals if v is not None),
                    "min": min(v for v in vals if v is not None),
                    "max": max(v for v in vals if v is not None),
                    "values": [None if v is None else round(v, 1) for v in vals],
                }
                for s, vals in f0.items()
            },
            "speaker_by_f0_threshold_loo": loo_threshold_accuracy(
                [i.result["f0_median_hz"] for i in measured], [i.speaker or "" for i in measured]
            ),
        }

        # 3. cost
        cost_sets = [(f"windows {g}", [i for i in windows if i.group == g]) for g in groups]
        cost_sets += [
            ("Harvard clips", harvard),
            ("other clips", [i for i in clips if not i.speaker]),
            ("multilingual halves", [i for i in windows if i.group == "half"]),
            ("all", items),
        ]
        cost_rows = [cost_row(name, subset) for name, subset in cost_sets if subset]

        rest_rows: list[dict[str, Any]] = []
        rest_raw: list[dict[str, Any]] = []
        words_check: list[dict[str, Any]] = []
        language_check: list[dict[str, Any]] = []
        phase_start = time.perf_counter()
        segment_results: list[dict[str, Any]] = []
        if args.rest:
            paths = {f"en/{row['path']}": data / "en" / row["path"] for row in read_manifest(data / "en/MANIFEST.tsv")}
            paths |= {VOCABULARY: data / VOCABULARY, STEREO: data / STEREO, MULTILINGUAL: data / MULTILINGUAL}
            files = [(name, path, len(decode(path)) / SAMPLE_RATE) for name, path in paths.items()]
            rest_raw, served = anyio.run(rest_runs, service, files, args.model, args.repeat)
            short = [r for r in rest_raw if r["file"] != MULTILINGUAL]
            long = [r for r in rest_raw if r["file"] == MULTILINGUAL]
            rest_rows = [rest_summary("short (15 files)", short), rest_summary("long (60 s)", long)]
            rest_rows.append(rest_summary("all", rest_raw))
            words_check = word_time_check(served, paths)
            language_check = spoken_language_check(service, served, paths)
            phases["transcribe_file"] = time.perf_counter() - phase_start
        stream_raw: list[dict[str, Any]] = []
        stream_row: dict[str, Any] = {}
        if args.stream:
            phase_start = time.perf_counter()
            names = ["en/spk1_snt1.wav", "en/spk2_snt2.wav", "en/jfk.flac", "en/spk1_snt3.wav", "en/spk2_snt4.wav"]
            gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
            conversation = np.concatenate([part for n in names for part in (decode(data / n), gap)])
            stream_raw = anyio.run(stream_runs, service, conversation, args.model, args.stream_speed, args.repeat)
            stream_row = stream_summary(stream_raw)
            phases["stream"] = time.perf_counter() - phase_start
            for name, result in served.items():
                for segment, p in zip(result.transcript.segments, result.segment_profiles, strict=True):
                    if p is not None:
                        segment_results.append(
                            {"file": name, "start": segment.start, "language": segment.language, **summarize_profile(p)}
                        )
    finally:
        service.close()

    profiled = [i.result for i in items]
    distributions = {
        "clips (service.profile, no text)": {k: distribution([i.result for i in clips], k) for k in DIMS},
        "multilingual windows and halves (no text)": {k: distribution([i.result for i in windows], k) for k in DIMS},
    }
    if segment_results:
        distributions["transcribe_file segments (with text and words)"] = {
            k: distribution(segment_results, k) for k in DIMS
        }

    # -- print ---------------------------------------------------------------------------------------------------
    if heads:
        print_heads(heads)
    segment_list = ", ".join(f"{s['start']:.1f}-{s['end']:.1f} {s['language']}" for s in segments)
    console.print(
        f"LID model {settings.language_id_model} ({n_languages} languages: chance top-1 {pct(1 / n_languages)} %); "
        f"language switch of {MULTILINGUAL} at {switch_s:.2f} s "
        f"(segments: {segment_list}); "
        f"windows keep {args.margin:g} s clear of it."
    )
    print_lid(lid_rows, args.reference_lid)

    table = Table(title="Pitch: consistency within speaker and median F0 (12 Harvard clips)")
    for col in ("speaker", "clips", "majority pitch label", "consistent", "median F0 Hz mean +- sd", "range Hz"):
        table.add_column(col, justify="left" if col in ("speaker", "majority pitch label") else "right")
    for s in speakers:
        st = pitch_report["f0_median_hz"][s]
        n_s = sum(i.speaker == s for i in harvard)
        k_s = sum(i.speaker == s and i.result["pitch_top"] == majority_pitch[s] for i in harvard)
        table.add_row(
            s,
            str(n_s),
            majority_pitch[s],
            f"{k_s}/{n_s}",
            f"{st['mean']:.1f} +- {st['sd']:.1f}",
            f"{st['min']:.1f}-{st['max']:.1f}",
        )
    console.print(table)
    loo = pitch_report["speaker_by_f0_threshold_loo"]
    console.print(
        f"pitch top label = speaker's majority label: {consistent}/{len(harvard)} = "
        f"{pct(pitch_report['consistency'])} % (a constant labeller would score 100 %: read it with the F0 figures). "
        f"Speaker from median F0, leave-one-out threshold: {loo['correct']}/{loo['n']} = {pct(loo['accuracy'])} % "
        f"(95 % CI {pct(loo['ci95'][0])}-{pct(loo['ci95'][1])}; chance 50.0 %, majority "
        f"{pct(loo['majority_accuracy'])} %); thresholds {min(loo['thresholds_hz'])}-{max(loo['thresholds_hz'])} Hz."
    )

    console.print(
        "The heads' accuracy is the cross-validation above; below are the labels the profile produces on the other "
        "clips (no emotion, gender, age or accent labels there)."
    )
    table = Table(
        title="Emotion / gender / age / accent / pitch: top labels produced (count, mean confidence of that top)"
    )
    table.add_column("profiles")
    for k in DIMS:
        table.add_column(k, overflow="fold")
    for name, dims in distributions.items():
        cells = []
        for k in DIMS:
            d = dims[k]
            labels = ", ".join(
                f"{label} {n} ({d['mean_confidence_by_label'][label]:.2f})"
                for label, n in d["top_label_counts"].items()
            )
            extra = f"; unclear {pct(d['fraction_unclear'])} %" if k in ("age", "accent", "gender") else ""
            cells.append(f"{labels}{extra}")
        table.add_row(f"{name}, n={dims['emotion']['n']}", *cells)
    console.print(table)

    table = Table(title="Cost of Service.profile (LID + prosody + fusion), ms per audio second (wall / process CPU)")
    for col in ("set", "n", "mean s", "median ms/call", "profile wall", "profile CPU", "LID wall", "LID CPU"):
        table.add_column(col, justify="left" if col == "set" else "right")
    table.add_column("analyzer wall", justify="right")
    table.add_column("analyzer CPU", justify="right")
    for r in cost_rows:
        table.add_row(
            r["set"],
            str(r["n"]),
            f"{r['mean_clip_s']:.2f}",
            f"{r['profile_median_ms']:.0f}",
            f"{r['profile_wall_ms_per_audio_s']:.1f}",
            f"{r['profile_cpu_ms_per_audio_s']:.1f}",
            f"{r['lid_wall_ms_per_audio_s']:.1f}",
            f"{r['lid_cpu_ms_per_audio_s']:.1f}",
            f"{r['analyze_wall_ms_per_audio_s']:.1f}",
            f"{r['analyze_cpu_ms_per_audio_s']:.1f}",
        )
    console.print(table)

    if rest_rows:
        table = Table(title=f"transcribe_file (the REST path), {args.model}: profile=True vs profile=False")
        for col in (
            "files",
            "runs/mode",
            "audio s",
            "wall ratio",
            "paired med.",
            "CPU ratio",
            "added wall ms/audio s",
            "added CPU ms/audio s",
            "RTF off / on",
            "same text",
        ):
            table.add_column(col, justify="left" if col == "files" else "right")
        for r in rest_rows:
            table.add_row(
                r["set"],
                str(r["runs_per_mode"]),
                f"{r['audio_s']:.1f}",
                f"{r['wall_ratio']:.3f}",
                f"{r['paired_median_ratio']:.3f}",
                f"{r['cpu_ratio']:.3f}",
                f"{r['added_wall_ms_per_audio_s']:.1f}",
                f"{r['added_cpu_ms_per_audio_s']:.1f}",
                f"{r['rtf_off']:.3f} / {r['rtf_on']:.3f}",
                str(r["identical_transcripts"]),
            )
        console.print(table)
    if stream_row:
        console.print(
            f"Stream ({stream_row['audio_s']:.0f} s, VAD turns, {args.stream_speed:g}x real time, "
            f"{stream_row['runs_per_mode']} run(s) per mode): process CPU {stream_row['cpu_ms_per_audio_s_off']:.0f} "
            f"ms per audio s plain, {stream_row['cpu_ms_per_audio_s_on']:.0f} profiled: ratio "
            f"{stream_row['cpu_ratio']:.3f}, added {stream_row['added_cpu_ms_per_audio_s']:.1f} ms per audio s "
            f"({stream_row['profile_events_per_run']:.0f} profile events per run; "
            f"finals {stream_row['finals_per_run']})."
        )
    if words_check:
        differ = sum(c["differs"] for c in words_check)
        console.print(
            f"Word times: {differ} of {len(words_check)} served segment profiles that start after 0 s change their "
            "rate/pause measures when the words are made relative to the segment:"
        )
        for c in words_check:
            s, f = c["served"], c["relative_word_times"]
            console.print(
                f"  {c['file']} {c['segment_s'][0]:.2f}-{c['segment_s'][1]:.2f} s: "
                + ", ".join(f"{k} {fmt(s[k])} -> {fmt(f[k])}" for k in WORD_FIELDS[1:])
            )

    if language_check:
        wrong = [c for c in language_check if c["mismatch"]]
        console.print(
            f"Spoken language: {len(wrong)} of {len(language_check)} served segment profiles made their accent (and "
            "English-only sentiment/rate labels) for a language other than the segment's own:"
        )
        for c in wrong:
            served_acc, served_emo = c["served"]["accent"], c["served"]["emotion"]
            own_acc, own_emo = c["own_language"]["accent"], c["own_language"]["emotion"]
            console.print(
                f"  {c['file']} {c['segment_s'][0]:.2f}-{c['segment_s'][1]:.2f} s, segment language "
                f"{c['segment_language']} (file {c['transcript_language']}, LID {c['lid_top1']}): accent "
                f"{served_acc[0]} {served_acc[1]}, emotion {served_emo[0]} {served_emo[1]}; profiled as "
                f"{c['segment_language']}: accent {own_acc[0]} {own_acc[1]}, emotion {own_emo[0]} {own_emo[1]}"
            )

    load_after = os.getloadavg()
    wall = time.perf_counter() - started
    busy1, own1 = busy_seconds(), own_cpu_seconds()
    cpu: dict[str, Any] = {"wall_s": round(wall, 1), "own_cpu_s": round(own1 - own0, 1)}
    if busy0 is not None and busy1 is not None:
        cpu["other_processes_cores"] = round(max(0.0, (busy1 - busy0) - (own1 - own0)) / wall, 2)
    console.print(
        f"load average before {tuple(round(x, 2) for x in load_before)}, after "
        f"{tuple(round(x, 2) for x in load_after)}; other processes used "
        f"{cpu.get('other_processes_cores', '?')} of {os.cpu_count()} cores on average; run took {wall:.0f} s "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in phases.items())})."
    )

    report = {
        "benchmark": "profile",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 1),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "cpu": cpu,
        "machine": machine_info(MACHINE_DISTS, MACHINE_KEYS),
        "data": str(data),
        "settings": {
            "language_id_model": settings.language_id_model,
            "transcription_model": args.model,
            "cpu_threads": settings.cpu_threads,
            "compute_type": settings.compute_type,
            "windows_s": args.windows,
            "margin_s": args.margin,
            "repeat": args.repeat,
            "reference_lid": args.reference_lid,
            "options": asdict(TranscriptionOptions()),
        },
        "labels_available": {
            "language": "every clip; en/de halves of the multilingual file",
            "speaker": "spk1/spk2 of the 12 Harvard clips",
            "emotion": "emotion-ravdess (cross-validated by actor)",
            "gender": "emotion-ravdess, age-gender-accent, multilingual-cv (cross-validated by speaker)",
            "age": "age-gender-accent, multilingual-cv: young / adult (cross-validated by speaker)",
            "accent": None,
        },
        "heads": heads,
        "cost_stream": stream_row,
        "stream_runs": stream_raw,
        "n_languages": n_languages,
        "multilingual_switch_s": switch_s,
        "multilingual_segments": segments,
        "language_id": lid_rows,
        "pitch": pitch_report,
        "distributions": distributions,
        "cost_profile": cost_rows,
        "cost_transcribe_file": rest_rows,
        "transcribe_file_runs": [{k: v for k, v in r.items() if k != "text"} for r in rest_raw],
        "word_time_check": words_check,
        "spoken_language_check": language_check,
        "phase_seconds": {k: round(v, 1) for k, v in phases.items()},
        "items": [
            {"name": i.name, "group": i.group, "truth": i.truth, **r} for i, r in zip(items, profiled, strict=True)
        ],
        "segment_profiles": segment_results,
    }
    write_report(args.out, report, default=float)
    console.print(f"wrote {args.out}")
    return 0


def fmt(x: Any) -> str:
    return "None" if x is None else f"{x:.3g}" if isinstance(x, float) else str(x)


if __name__ == "__main__":
    sys.exit(main())
