"""What the tests compare transcripts with: text normalisation, word error rate and the reference transcripts."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import jiwer
import numpy as np
import numpy.typing as npt

from voxgate.audio.decode import decode
from voxgate.types import SAMPLE_RATE

DATA = Path(__file__).resolve().parent / "data"
"""The test audio carried in the repository (``tests/data``; sources and licences in its README)."""

__all__ = ["DATA", "Turn", "conversation", "normalise", "read_cuts", "reference", "speaker_accuracy", "wer"]


def normalise(text: str) -> str:
    """Lowercase, punctuation out, whitespace collapsed: what WER is computed on."""
    return " ".join(re.sub(r"[^\w\s']|_", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference``, both normalised (an empty hypothesis is all wrong)."""
    return float(jiwer.wer(normalise(reference), normalise(hypothesis) or "<empty>"))


def reference(data: Path, relpath: str) -> str:
    """The reference transcript of ``folder/file`` from ``data/folder/MANIFEST.tsv``."""
    folder, name = relpath.split("/")
    manifest = data / folder / "MANIFEST.tsv"
    with open(manifest, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["path"] == name:
                return row["reference"]
    raise KeyError(f"{name} is not listed in {manifest}")


Turn = tuple[float, float, str]
"""Where one clip sits in a conversation: start and end seconds, and the speaker (the clip's name up to ``_``)."""


def conversation(data: Path, clips: list[str], gap: float = 0.8) -> tuple[npt.NDArray[np.float32], list[Turn]]:
    """Real clips (``folder/file``) one after another with ``gap`` seconds of silence: a conversation whose turns are
    known. The speaker of ``en/spk1_snt2.wav`` is ``spk1``; of ``en/jfk.flac``, ``jfk``."""
    pieces: list[npt.NDArray[np.float32]] = []
    turns: list[Turn] = []
    at = 0
    silence = np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32)
    for clip in clips:
        audio = decode(data / clip)
        speaker = clip.split("/")[-1].split(".")[0].split("_")[0]
        turns.append((at / SAMPLE_RATE, (at + len(audio)) / SAMPLE_RATE, speaker))
        pieces += [audio, silence]
        at += len(audio) + len(silence)
    return np.concatenate(pieces), turns


def speaker_accuracy(turns: list[Turn], words: list[tuple[float, float, int]]) -> float:
    """Share of words (start, end, speaker tag) whose tag is their turn's speaker, under the best one-to-one mapping
    of tags to speakers (greedy by count, which is optimal for the few speakers here)."""
    votes: dict[tuple[int, str], int] = {}
    truth = []
    for start, end, tag in words:
        middle = (start + end) / 2
        speaker = min(turns, key=lambda t: 0 if t[0] <= middle <= t[1] else min(abs(middle - t[0]), abs(middle - t[1])))
        truth.append((tag, speaker[2]))
        votes[(tag, speaker[2])] = votes.get((tag, speaker[2]), 0) + 1
    mapping: dict[int, str] = {}
    for (tag, speaker), _ in sorted(votes.items(), key=lambda kv: -kv[1]):
        if tag not in mapping and speaker not in mapping.values():
            mapping[tag] = speaker
    right = sum(1 for tag, speaker in truth if mapping.get(tag) == speaker)
    return right / len(truth) if truth else 0.0


def read_cuts() -> dict[str, tuple[float, str]]:
    """``tests/data/harvard-cuts.tsv``: where each Harvard sentence is cut for its "incomplete" version, as clip name
    -> (seconds, the words before the cut). The file says how the cuts were chosen."""
    text = (Path(__file__).parent / "data" / "harvard-cuts.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader([line for line in text.splitlines() if line and not line.startswith("#")], delimiter="\t")
    return {row["clip"]: (float(row["cut_seconds"]), row["words_before_the_cut"]) for row in rows}
