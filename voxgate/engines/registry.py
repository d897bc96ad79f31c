"""Provider name → engine factory, imported on first use (fsspec-style), with an install hint when it can't be.

Third parties add providers with :func:`register`; a model id ``provider/model`` then reaches them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from voxgate.config import Settings
from voxgate.engines.base import Engine
from voxgate.errors import ModelUnavailable
from voxgate.models.catalog import ModelSpec

__all__ = ["PROVIDERS", "Provider", "load_engine", "register"]

EngineFactory = Callable[[ModelSpec, Settings], Engine]


@dataclass(frozen=True, slots=True)
class Provider:
    target: str
    """``"package.module:factory"``; the factory takes ``(ModelSpec, Settings)`` and returns an :class:`Engine`."""
    hint: str = ""
    """What to install when the module cannot be imported."""
    models: tuple[str, ...] = ()
    """Model names listed by ``GET /stt/v1/models``; other names are passed to the provider as they are."""
    remote: bool = False
    """A cloud API (needs a key; calls run on the I/O thread pool, not the inference scheduler)."""
    languages: tuple[str, ...] = ()
    """Languages the provider documents (empty: many, see the vendor's list)."""


PROVIDERS: dict[str, Provider] = {
    "whisper": Provider("voxgate.engines.whisper:load", "pip install faster-whisper"),
    "vosk": Provider("voxgate.engines.vosk:load", "pip install vosk", models=("ko",), languages=("ko",)),
    "openai": Provider(
        "voxgate.engines.openai:load_openai", models=("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"),
        remote=True,
    ),
    "groq": Provider(
        "voxgate.engines.openai:load_groq", models=("whisper-large-v3", "whisper-large-v3-turbo"), remote=True
    ),
    "deepgram": Provider("voxgate.engines.deepgram:load", models=("nova-3", "nova-2"), remote=True),
    "assemblyai": Provider(
        "voxgate.engines.assemblyai:load",
        models=("universal-3-pro", "universal-2", "universal-streaming-multilingual"),
        remote=True,
    ),
    "soniox": Provider("voxgate.engines.soniox:load", models=("stt-async-v5", "stt-rt-v4"), remote=True),
}  # fmt: skip


def register(provider: str, target: str | Provider, hint: str = "") -> None:
    """Make ``provider/...`` model ids load through ``target`` (``"package.module:factory"`` or a :class:`Provider`)."""
    PROVIDERS[provider] = target if isinstance(target, Provider) else Provider(target, hint)


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
