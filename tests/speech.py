"""What the tests compare transcripts with: text normalisation, word error rate and the reference transcripts."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import jiwer

__all__ = ["normalise", "reference", "wer"]


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
