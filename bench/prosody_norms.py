"""Where real speech falls on voxgate's prosody measurements, and what they cost (voxgate.analysis.prosody).

For every clip of the shared speech (15 in all): the 13 of ``en/`` (12 Harvard sentences by two speakers, JFK), the
``vocabulary/`` clip, the two channels of ``two-speakers/`` (decoded separately) and the English and German halves
of ``multilingual/`` (split at 29.8 s, in the silence between the two readings), it

* transcribes the clip with a packaged Whisper model (``whisper/base`` by default, word timestamps on, the language
  forced to the clip's own) to get the words the rate and pause measures need (``--no-words`` skips this);
* computes Silero VAD probabilities (the model faster-whisper ships);
* runs :func:`voxgate.analysis.prosody.extract_features` twice, with the intensity-only speech criterion (the
  default) and with the VAD probabilities, and times the default run (CPU time of this thread, best of
  ``--repeat``, in ms per second of audio);
* prints one table per mode, the pitch and vocal style labels, the spread of each speaker's sentence medians, and
  writes everything to ``bench/results/prosody_norms.json``.

    python bench/prosody_norms.py                 # ~30 s on 2 cores with whisper/base
    python bench/prosody_norms.py --no-words --repeat 5
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import DATA, report_head, version, write_report
from rich.console import Console
from rich.table import Table

from voxgate.analysis.prosody import (
    PITCH_BINS,
    VoiceFeatures,
    extract_features,
    pitch_labels,
    vocal_style_labels,
)
from voxgate.analysis.vad import SileroVad
from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.protocol.http import features_to_wire
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, Audio, TranscriptionOptions, Word

OUT = Path(__file__).resolve().parent / "results" / "prosody_norms.json"
MULTILINGUAL_SPLIT_S = 29.8
"""The English reading ends at ~28.9 s and the German one starts at ~30.6 s (whisper/base segments)."""

console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


@dataclass(frozen=True, slots=True)
class Clip:
    name: str
    audio: Audio
    language: str
    speaker: str | None = None


def load_clips(data: Path) -> list[Clip]:
    clips: list[Clip] = []
    for line in (data / "en" / "MANIFEST.tsv").read_text().splitlines()[1:]:
        path = line.split("\t", 1)[0]
        speaker = path.split("_", 1)[0] if path.startswith("spk") else "jfk"
        clips.append(Clip(f"en/{path}", decode(data / "en" / path), "en", speaker))
    clips.append(Clip("vocabulary/comfyui.mp3", decode(data / "vocabulary" / "comfyui.mp3"), "en"))
    with wave.open(str(data / "two-speakers" / "stereo-two-speakers.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, SAMPLE_RATE)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).reshape(-1, 2)
    for channel, side in enumerate(("left", "right")):
        audio = (pcm[:, channel].astype(np.float32) / 32768.0).astype(np.float32)
        clips.append(Clip(f"two-speakers/{side}", audio, "en", f"two-speakers-{side}"))
    multi = decode(data / "multilingual" / "en-de-license.mp3")
    cut = round(MULTILINGUAL_SPLIT_S * SAMPLE_RATE)
    clips.append(Clip("multilingual/en-half", multi[:cut], "en", "multilingual"))
    clips.append(Clip("multilingual/de-half", multi[cut:], "de", "multilingual"))
    return clips


def transcribe_words(service: Service, model_id: str, clip: Clip) -> tuple[tuple[Word, ...], str]:
    engine = service.engine(model_id)
    transcript = engine.transcribe(clip.audio, TranscriptionOptions(language=clip.language, vad_filter=False))
    return transcript.words, transcript.text


def cost_ms_per_s(audio: Audio, words: tuple[Word, ...], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.thread_time()
        extract_features(audio, words)
        best = min(best, time.thread_time() - start)
    return best * 1000.0 / (len(audio) / SAMPLE_RATE)


def fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def rounded(labels: list[tuple[str, float]]) -> list[list[Any]]:
    return [[label, round(confidence, 3)] for label, confidence in labels]


def labels_text(labels: list[tuple[str, float]], top: int = 3) -> str:
    return " ".join(f"{label}:{conf:.2f}" for label, conf in labels[:top])


def feature_table(title: str, rows: list[dict[str, Any]], key: str) -> Table:
    table = Table(title=title)
    columns = (
        ("clip", None),
        ("dur s", ("duration_s", 2)),
        ("speech s", ("speech_s", 2)),
        ("voiced", ("voiced_ratio", 2)),
        ("F0 med", ("f0_median_hz", 1)),
        ("F0 p10", ("f0_p10_hz", 1)),
        ("F0 p90", ("f0_p90_hz", 1)),
        ("range st", ("f0_range_semitones", 1)),
        ("sd st", ("f0_std_semitones", 2)),
        ("dBFS", ("loudness_dbfs", 1)),
        ("LRA dB", ("loudness_range_db", 1)),
        ("SNR dB", ("snr_db", 1)),
        ("HNR dB", ("hnr_db", 1)),
        ("jit %", ("jitter_local", 2)),
        ("shim %", ("shimmer_local", 1)),
        ("words", ("word_count", 0)),
        ("wpm", ("speaking_rate_wpm", 0)),
        ("artic wpm", ("articulation_rate_wpm", 0)),
        ("pause", ("pause_ratio", 2)),
        ("mean pause s", ("mean_pause_s", 2)),
    )
    for name, _ in columns:
        table.add_column(name, justify="left" if name == "clip" else "right")
    for row in rows:
        feats: dict[str, Any] = row[key]
        cells = [row["clip"]]
        for _, spec in columns[1:]:
            assert spec is not None
            field, digits = spec
            value = feats[field]
            if field in ("jitter_local", "shimmer_local") and value is not None:
                value = value * 100.0
            cells.append(fmt(value, digits))
        table.add_row(*cells)
    return table


def summarise(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, float]]:
    """Min / median / max of each numeric feature over the clips (English clips only for word rates)."""
    out: dict[str, dict[str, float]] = {}
    for field in rows[0][key]:
        values = [
            float(r[key][field])
            for r in rows
            if r[key][field] is not None and not (field.endswith("wpm") and r["language"] != "en")
        ]
        if values and field != "word_count":
            out[field] = {
                "min": round(min(values), 4),
                "median": round(statistics.median(values), 4),
                "max": round(max(values), 4),
                "n": len(values),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="shared data folder (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON results file (default: %(default)s)")
    parser.add_argument("--model", default="whisper/base", help="model for word timestamps (default: %(default)s)")
    parser.add_argument("--words", action=argparse.BooleanOptionalAction, default=True, help="transcribe for words")
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats, best counts (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ASR cpu_threads")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    clips = load_clips(args.data)
    vad = SileroVad.load()
    service = Service(Settings(preload=[], cpu_threads=args.threads)) if args.words else None
    rows: list[dict[str, Any]] = []
    try:
        for clip in clips:
            words: tuple[Word, ...] = ()
            text = ""
            if service is not None:
                words, text = transcribe_words(service, args.model, clip)
            probs = vad.probabilities(clip.audio)
            plain = extract_features(clip.audio, words)
            with_vad = extract_features(clip.audio, words, speech_probabilities=probs)
            rows.append(
                {
                    "clip": clip.name,
                    "speaker": clip.speaker,
                    "language": clip.language,
                    "transcript": text,
                    "vad_speech_s": round(float(np.count_nonzero(probs >= 0.5)) * 512 / SAMPLE_RATE, 2),
                    "ms_per_audio_s": round(cost_ms_per_s(clip.audio, words, args.repeat), 2),
                    "features": _raw(plain),
                    "features_vad": _raw(with_vad),
                    "wire": features_to_wire(plain),
                    "pitch": rounded(pitch_labels(plain)),
                    "vocal_style": rounded(vocal_style_labels(plain, language=clip.language)),
                    "pitch_vad": rounded(pitch_labels(with_vad)),
                    "vocal_style_vad": rounded(vocal_style_labels(with_vad, language=clip.language)),
                }
            )
    finally:
        if service is not None:
            service.close()

    console.print(feature_table("Prosody features (intensity speech criterion, the default)", rows, "features"))
    console.print(feature_table("Prosody features with Silero VAD probabilities", rows, "features_vad"))

    labels = Table(title="Labels (default features) and cost")
    for col in ("clip", "pitch", "vocal style", "ms / audio s"):
        labels.add_column(col, overflow="fold")
    for row in rows:
        labels.add_row(
            row["clip"],
            labels_text([(a, b) for a, b in row["pitch"]]),
            labels_text([(a, b) for a, b in row["vocal_style"]], top=5),
            f"{row['ms_per_audio_s']:.1f}",
        )
    console.print(labels)

    bins = ", ".join(f"{label} {low:.1f}-{high:.1f}" for label, low, high in PITCH_BINS)
    console.print(f"Pitch bins (Hz): {bins}")
    speakers: dict[str, Any] = {}
    for speaker in ("spk1", "spk2"):
        medians = [r["features"]["f0_median_hz"] for r in rows if r["speaker"] == speaker]
        semis = [12 * math.log2(m / statistics.median(medians)) for m in medians]
        speakers[speaker] = {
            "medians_hz": [round(m, 1) for m in medians],
            "min_hz": round(min(medians), 1),
            "max_hz": round(max(medians), 1),
            "median_of_medians_hz": round(statistics.median(medians), 1),
            "sd_semitones": round(statistics.stdev(semis), 2),
        }
        console.print(
            f"{speaker}: sentence F0 medians {', '.join(f'{m:.0f}' for m in medians)} Hz "
            f"(sd {speakers[speaker]['sd_semitones']:.2f} st)"
        )
    total_audio = sum(len(c.audio) for c in clips) / SAMPLE_RATE
    costs = [r["ms_per_audio_s"] for r in rows]
    weighted = sum(r["ms_per_audio_s"] * r["features"]["duration_s"] for r in rows) / total_audio
    console.print(
        f"Cost: {weighted:.1f} ms per audio second over {total_audio:.0f} s (per clip {min(costs):.1f}-"
        f"{max(costs):.1f}; CPU time of one thread, best of {args.repeat})"
    )

    report = {
        **report_head("prosody_norms", time.perf_counter() - started, args.data),
        "words_model": args.model if args.words else None,
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpu_count": os.cpu_count(),
            "versions": {d: version(d) for d in ("praat-parselmouth", "numpy", "onnxruntime", "faster-whisper")},
        },
        "pitch_bins_hz": [[label, round(low, 1), round(high, 1)] for label, low, high in PITCH_BINS],
        "cost_ms_per_audio_s": round(weighted, 2),
        "speakers": speakers,
        "summary": summarise(rows, "features"),
        "summary_vad": summarise(rows, "features_vad"),
        "clips": rows,
    }
    write_report(args.out, report)
    console.print(f"wrote {args.out}")
    return 0


def _raw(features: VoiceFeatures) -> dict[str, Any]:
    return {name: getattr(features, name) for name in features.__dataclass_fields__}


if __name__ == "__main__":
    raise SystemExit(main())
