"""Soniox: ``soniox/<model>`` (``stt-async-*`` for files, ``stt-rt-*`` for streams; each path maps the other's).

* :mod:`~voxgate.engines.soniox.wire`: what both APIs share (recognition fields, tokens joined into words);
* :mod:`~voxgate.engines.soniox.rest`: files, through the async API (:class:`SonioxEngine`);
* :mod:`~voxgate.engines.soniox.live`: streams, through the real-time socket (:class:`SonioxLiveConnector`).
"""

from __future__ import annotations

from voxgate.config import Settings
from voxgate.engines.soniox.live import SonioxLiveConnector
from voxgate.engines.soniox.rest import SonioxEngine
from voxgate.models.catalog import ModelSpec

__all__ = ["SonioxEngine", "SonioxLiveConnector", "load"]


def load(spec: ModelSpec, settings: Settings) -> SonioxEngine:
    """Registry factory (``soniox/<model>``); raises ModelUnavailable without ``VOXGATE_SONIOX_API_KEY``."""
    return SonioxEngine(spec, settings)
