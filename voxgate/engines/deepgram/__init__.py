"""Deepgram: ``deepgram/<model>`` (``nova-3``, ``nova-2``, any other model name Deepgram knows).

* :mod:`~voxgate.engines.deepgram.wire`: what both APIs share (vocabulary parameters, language tags);
* :mod:`~voxgate.engines.deepgram.rest`: files, through the pre-recorded API (:class:`DeepgramEngine`);
* :mod:`~voxgate.engines.deepgram.live`: streams, through the live socket (:class:`DeepgramLiveConnector`).
"""

from __future__ import annotations

from voxgate.config import Settings
from voxgate.engines.deepgram.live import DeepgramLiveConnector
from voxgate.engines.deepgram.rest import DeepgramEngine
from voxgate.models.catalog import ModelSpec

__all__ = ["DeepgramEngine", "DeepgramLiveConnector", "load"]


def load(spec: ModelSpec, settings: Settings) -> DeepgramEngine:
    """Registry factory for ``deepgram/*`` (needs ``VOXGATE_DEEPGRAM_API_KEY``)."""
    return DeepgramEngine(spec, settings)
