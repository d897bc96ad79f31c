"""AssemblyAI: ``assemblyai/<speech model>`` (``universal-3-pro``, ``universal-2``, the streaming models…).

* :mod:`~voxgate.engines.assemblyai.wire`: what both APIs share (model families and their counterparts);
* :mod:`~voxgate.engines.assemblyai.rest`: files, through the async transcript API (:class:`AssemblyAIEngine`);
* :mod:`~voxgate.engines.assemblyai.live`: streams, through Universal-Streaming (:class:`AssemblyAILiveConnector`).
"""

from __future__ import annotations

from voxgate.config import Settings
from voxgate.engines.assemblyai.live import AssemblyAILiveConnector
from voxgate.engines.assemblyai.rest import AssemblyAIEngine
from voxgate.models.catalog import ModelSpec

__all__ = ["AssemblyAIEngine", "AssemblyAILiveConnector", "load"]


def load(spec: ModelSpec, settings: Settings) -> AssemblyAIEngine:
    """Registry factory (``assemblyai/<model>``); raises ModelUnavailable without ``VOXGATE_ASSEMBLYAI_API_KEY``."""
    return AssemblyAIEngine(spec, settings)
