"""Provider name → engine factory, imported on first use (fsspec-style), with an install hint when it can't be."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from voxgate.config import Settings
from voxgate.engines.base import Engine
from voxgate.errors import ModelUnavailable
from voxgate.models.catalog import ModelSpec

__all__ = ["PROVIDERS", "load_engine", "register"]

EngineFactory = Callable[[ModelSpec, Settings], Engine]

PROVIDERS: dict[str, tuple[str, str]] = {
    # provider: ("module:factory", pip install hint)
    "whisper": ("voxgate.engines.whisper:load", "pip install faster-whisper"),
}


def register(provider: str, target: str, hint: str = "") -> None:
    """Make ``provider/...`` model ids load through ``target`` (``"package.module:factory"``)."""
    PROVIDERS[provider] = (target, hint)


def _factory(provider: str) -> EngineFactory:
    try:
        target, hint = PROVIDERS[provider]
    except KeyError:
        raise ModelUnavailable(f"no engine registered for provider {provider!r}") from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelUnavailable(f"provider {provider!r} is not installed ({exc.name}): {hint}") from exc
    return cast(EngineFactory, getattr(module, attr))


def load_engine(spec: ModelSpec, settings: Settings) -> Engine:
    """Create the engine for a resolved model (blocking: may read hundreds of MB)."""
    return _factory(spec.provider)(spec, settings)
