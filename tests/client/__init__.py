"""Tests for :mod:`voxgate.client` against the real live server, and shared helpers for them (and the CLI's)."""

from __future__ import annotations

import csv
import re
import socket
from pathlib import Path

import jiwer

TINY = "whisper/tiny.en"


def normalise(text: str) -> str:
    """Lowercase, punctuation out, whitespace collapsed: what WER is computed on."""
    return " ".join(re.sub(r"[^\w\s']|_", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference``, both normalised."""
    return float(jiwer.wer(normalise(reference), normalise(hypothesis) or "<empty>"))


def reference(data: Path, relpath: str) -> str:
    """The reference transcript of ``folder/file`` from its folder's MANIFEST.tsv."""
    folder, name = relpath.split("/")
    with open(data / folder / "MANIFEST.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["path"] == name:
                return row["reference"]
    raise KeyError(relpath)


def closed_port_url() -> str:
    """An http:// URL on loopback where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
