"""Provider name → engine, the factory imported on first use (fsspec-style), with an install hint when it can't be.

The provider entries themselves (:class:`~voxgate.models.catalog.Provider`, :data:`PROVIDERS`, :func:`register`)
live in :mod:`voxgate.models.catalog`, which imports no engine; they are re-exported here, so third parties keep
adding providers with ``voxgate.engines.registry.register``; a model id ``provider/model`` then reaches them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from voxgate.config import Settings
from voxgate.engines.base import Engine
from voxgate.errors import ModelUnavailable
from voxgate.models.catalog import PROVIDERS, ModelSpec, Provider, register

__all__ = ["PROVIDERS", "Provider", "load_engine", "register"]

EngineFactory = Callable[[ModelSpec, Settings], Engine]


def _factory(provider: str) -> EngineFactory:
    try:
        entry = PROVIDERS[provider]
    except KeyError:
        raise ModelUnavailable(f"no engine registered for provider {provider!r}") from None
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelUnavailable(f"provider {provider!r} is not installed ({exc.name}): {entry.hint}") from exc
    return cast(EngineFactory, getattr(module, attr))


def load_engine(spec: ModelSpec, settings: Settings) -> Engine:
    """Create the engine for a resolved model (blocking: may read hundreds of MB, or check a cloud key)."""
    return _factory(spec.provider)(spec, settings)
