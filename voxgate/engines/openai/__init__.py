"""OpenAI's speech-to-text API, and Groq's copy of it: ``openai/<model>`` and ``groq/<model>``.

* :mod:`~voxgate.engines.openai.wire`: what both APIs share (the ``prompt``, language names);
* :mod:`~voxgate.engines.openai.rest`: files, through ``/audio/transcriptions`` (:class:`OpenAIEngine`,
  :class:`GroqEngine`);
* :mod:`~voxgate.engines.openai.live`: OpenAI's streams, through the Realtime transcription socket
  (:class:`OpenAILiveConnector`; Groq has none).
"""

from __future__ import annotations

from voxgate.config import Settings
from voxgate.engines.openai.live import OpenAILiveConnector
from voxgate.engines.openai.rest import GroqEngine, OpenAIEngine
from voxgate.models.catalog import ModelSpec

__all__ = ["GroqEngine", "OpenAIEngine", "OpenAILiveConnector", "load_groq", "load_openai"]


def load_openai(spec: ModelSpec, settings: Settings) -> OpenAIEngine:
    """Registry factory for ``openai/*`` (needs ``VOXGATE_OPENAI_API_KEY``)."""
    return OpenAIEngine(spec, settings)


def load_groq(spec: ModelSpec, settings: Settings) -> GroqEngine:
    """Registry factory for ``groq/*`` (needs ``VOXGATE_GROQ_API_KEY``)."""
    return GroqEngine(spec, settings)
