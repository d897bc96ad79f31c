"""Long-file benchmark: a file of N minutes (default 60) in bounded memory, with timestamps right across windows.

The file is built from the real clips in ``shared/data/en`` (each followed by a gap of silence, cycling until the
length is reached) and encoded as Ogg/Opus, so decoding is a real stream decode. voxgate transcribes it through
``Service.transcribe_sync`` (the CLI's path): stream-decode → windows cut at quiet points → VAD chunks → batched
decoding. We report wall time, real-time factor, peak resident memory (compared with what holding the decoded audio
alone would take), and how far each clip's first recognised word lands from where the clip was placed.

``--diarize`` also tells the speakers apart (three voices: the two Harvard speakers and JFK) and scores each word's
speaker against the clip it falls in (best one-to-one mapping of tags to voices).

    python bench/longfile.py                 # 60 minutes, whisper/tiny.en
    python bench/longfile.py --minutes 10 --model whisper/base
    python bench/longfile.py --diarize --out bench/results/longfile-diarized.json
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
from common import DATA, mapped_accuracy, write_report

from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, DiarizationOptions, Speakers, Transcript, TranscriptionOptions

RESULTS = Path(__file__).resolve().parent / "results"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(path: Path, minutes: float, gap: float, data: Path) -> list[tuple[float, str, str]]:
    """Write the long file; return (start second, reference, speaker) of every clip placed in it."""
    with open(data / "en" / "MANIFEST.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    clips = [(decode(data / "en" / r["path"]), r["reference"], r["path"].split("_")[0].split(".")[0]) for r in rows]
    silence = np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32)
    total = int(minutes * 60 * SAMPLE_RATE)
    placed: list[tuple[float, str, str]] = []
    written = 0
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48_000, layout="mono")
        stream.bit_rate = 32_000
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)

        def encode(samples: np.ndarray | None) -> None:
            if samples is None:
                frames = resampler.resample(None)
            else:
                pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
                frame.sample_rate = SAMPLE_RATE
                frames = resampler.resample(frame)
            for fr in frames:
                for packet in stream.encode(fr):
                    out.mux(packet)

        i = 0
        while written < total:
            audio, reference, speaker = clips[i % len(clips)]
            placed.append((written / SAMPLE_RATE, reference, speaker))
            for piece in (audio, silence):
                encode(piece)
                written += len(piece)
            i += 1
        encode(None)
        for packet in stream.encode(None):
            out.mux(packet)
    return placed


def speaker_scores(placed: list[tuple[float, str, str]], transcript: Transcript, speakers: Speakers) -> dict[str, Any]:
    """Each word's speaker tag against the voice of the clip it starts in, under the best one-to-one mapping."""
    starts = np.array([p[0] for p in placed])
    pairs = []
    for w, tag in zip(transcript.words, speakers.words, strict=True):
        clip = max(0, int(np.searchsorted(starts, (w.start + w.end) / 2, side="right")) - 1)
        pairs.append((tag, placed[clip][2]))
    return {
        "voices": len({p[2] for p in placed}),
        "speakers_found": speakers.count,
        "word_accuracy": round(mapped_accuracy(pairs), 4),
        "words_per_tag": {str(t): n for t, n in sorted(Counter(tag for tag, _ in pairs).items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--model", default="whisper/tiny.en")
    parser.add_argument("--gap", type=float, default=1.5, help="seconds of silence after each clip")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=RESULTS / "longfile.json")
    parser.add_argument("--diarize", action="store_true", help="tell the speakers apart too, and score it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.ogg"
        started = time.perf_counter()
        placed = build(path, args.minutes, args.gap, args.data)
        print(
            f"built {args.minutes:g} min Ogg/Opus ({path.stat().st_size / 1e6:.1f} MB, {len(placed)} clips) "
            f"in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        service = Service(Settings(home=Path(tmp) / "home", preload=[]))
        service.engine(args.model)
        rss_before = _peak_rss_mb()
        progress: list[float] = []
        started = time.perf_counter()
        result_ = service.transcribe_file_sync(
            path,
            TranscriptionOptions(language="en"),
            args.model,
            progress=lambda done, total: progress.append(done),
            diarize=DiarizationOptions() if args.diarize else None,
        )
        transcript = result_.transcript
        wall = time.perf_counter() - started
        rss_after = _peak_rss_mb()
        service.close()

    words = transcript.words
    starts = np.array([w.start for w in words])
    offsets = []
    for clip_start, _, _ in placed:
        i = int(np.searchsorted(starts, clip_start - 0.5))
        if i < len(words) and words[i].start < clip_start + 3.0:
            offsets.append(words[i].start - clip_start)
    offsets_arr = np.abs(np.array(offsets))
    monotonic = bool(np.all(np.diff(starts) >= 0))
    decoded_mb = args.minutes * 60 * SAMPLE_RATE * 4 / 1e6
    result = {
        "benchmark": "longfile",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": args.model,
        "minutes": args.minutes,
        "clips_placed": len(placed),
        "clips_found": len(offsets),
        "audio_seconds": round(transcript.duration, 2),
        "wall_seconds": round(wall, 1),
        "real_time_factor": round(wall / transcript.duration, 4),
        "progress_reports": len(progress),
        "peak_rss_mb_after_model_load": round(rss_before, 1),
        "peak_rss_mb_after_transcription": round(rss_after, 1),
        "decoded_audio_mb_if_held_whole": round(decoded_mb, 1),
        "first_word_offset_seconds": {
            "median": round(float(np.median(offsets_arr)), 3) if len(offsets) else None,
            "p95": round(float(np.percentile(offsets_arr, 95)), 3) if len(offsets) else None,
            "max": round(float(offsets_arr.max()), 3) if len(offsets) else None,
        },
        "word_starts_monotonic": monotonic,
        "diarization": speaker_scores(placed, transcript, result_.speakers) if result_.speakers else None,
        "words": len(words),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "loadavg": os.getloadavg(),
        },
    }
    print(
        f"{args.model}: {transcript.duration / 60:.1f} min of audio in {wall:.0f} s "
        f"(real-time factor {wall / transcript.duration:.3f}), {result['progress_reports']} windows"
    )
    print(
        f"peak RSS {rss_after:.0f} MB (after loading the model: {rss_before:.0f} MB); "
        f"the decoded audio alone would be {decoded_mb:.0f} MB"
    )
    print(
        f"clips found {len(offsets)}/{len(placed)}; first-word offset from clip start: median "
        f"{result['first_word_offset_seconds']['median']} s, p95 {result['first_word_offset_seconds']['p95']} s; "
        f"word starts monotonic: {monotonic}"
    )
    if result["diarization"] is not None:
        d = result["diarization"]
        print(
            f"diarization: {d['speakers_found']} speakers found for {d['voices']} voices; "
            f"{100 * d['word_accuracy']:.1f} % of words to the right voice"
        )
    write_report(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
