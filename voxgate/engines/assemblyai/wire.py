"""What AssemblyAI's two APIs (async transcripts and Universal-Streaming) share: the vendor's model families, and
how a model id meant for one path maps to the closest model of the other.

Both adapters (:mod:`voxgate.engines.assemblyai.rest`, :mod:`voxgate.engines.assemblyai.live`) import this module
and nothing from each other.
"""

from __future__ import annotations

__all__ = ["batch_counterpart", "speech_model"]

_BATCH_COUNTERPARTS = (
    ("u3-rt-", "universal-3-pro"),
    ("u3-pro", "universal-3-pro"),
    ("universal-streaming", "universal-2"),
)
"""Streaming-only model names → the batch model closest to each."""
_STREAMING_MODELS = ("universal-streaming", "u3-rt", "whisper-rt")
_UNIVERSAL_3 = ("universal-3", "u3-pro")


def batch_counterpart(model: str) -> str | None:
    """The batch model to use in place of a streaming-only ``model``; None when ``model`` has a batch form."""
    for prefix, batch in _BATCH_COUNTERPARTS:
        if model.startswith(prefix):
            return batch
    return None


def speech_model(model: str, language: str | None) -> str:
    """The streaming speech model for voxgate's model name (a streaming model as is; a batch model's counterpart)."""
    if model.startswith(_STREAMING_MODELS):
        return model
    if model.startswith(_UNIVERSAL_3):
        return "u3-rt-pro"
    return "universal-streaming-english" if language == "en" else "universal-streaming-multilingual"
