"""The engines a process holds: model ids resolved, engines loaded once and shared, listed, closed.

Also the one lazy loader every other shared model uses (VAD, turn detector, speaker encoder, profile analyzer): built
on first use, once, under one lock, whichever thread asks first.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import anyio.to_thread

from voxgate.config import Settings
from voxgate.engines.base import Engine
from voxgate.engines.registry import load_engine
from voxgate.errors import EngineError, ModelNotFound, ModelUnavailable, ResourceExhausted
from voxgate.metrics import Metrics
from voxgate.models.catalog import ALIASES, PROVIDERS, ModelSpec, listed, resolve

__all__ = ["EnginePool", "Lazy", "ModelInfo"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Lazy(Generic[T]):
    """A value built by ``factory`` on first use, then shared (thread-safe; a failed build is tried again next time)."""

    def __init__(self, factory: Callable[[], T], lock: threading.Lock | None = None) -> None:
        self._factory = factory
        self._lock = lock or threading.Lock()
        self._value: T | None = None

    def __call__(self) -> T:
        value = self._value
        if value is not None:
            return value
        with self._lock:
            if self._value is None:
                self._value = self._factory()
            return self._value

    @property
    def loaded(self) -> bool:
        return self._value is not None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    languages: tuple[str, ...]
    multilingual: bool
    size_bytes: int
    source: str
    loaded: bool
    default: bool
    aliases: tuple[str, ...]
    remote: bool = False
    configured: bool = True
    """A cloud model's key is set (or a local engine's package is installed)."""


def _roots(settings: Settings) -> tuple[Path, ...]:
    roots = [Path(os.path.abspath(os.path.expanduser(r))).resolve() for r in settings.model_roots]
    for model_id in ("default", *settings.preload):
        try:
            spec = resolve(model_id, settings.default_model)
        except ModelNotFound:
            continue  # reported when it is loaded
        entry = PROVIDERS[spec.provider]
        if entry.directories and spec.packaged is None and spec.name not in entry.models:
            roots.append(Path(spec.name))
    return tuple(roots)


class EnginePool:
    """Model id → loaded :class:`Engine`, each loaded once (blocking loads; :meth:`load` runs them off the loop)."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()
        self.roots = _roots(settings)
        """Where a requested model directory may be: the configured model roots, and the default and preloaded
        models' own directories."""

    def resolve(self, model_id: str | None) -> ModelSpec:
        return resolve(model_id or "", self.settings.default_model, self.roots)

    def get(self, model_id: str | None) -> Engine:
        """The loaded engine for ``model_id``, loading it on first use (blocking)."""
        spec = self.resolve(model_id)
        engine = self._engines.get(spec.id)
        if engine is not None:
            return engine
        with self._lock:
            engine = self._engines.get(spec.id)
            if engine is None:
                if len(self._engines) >= self.settings.max_loaded_models:
                    raise ResourceExhausted(
                        f"{len(self._engines)} models are loaded, the most this server holds "
                        "(max_loaded_models): use one of them"
                    )
                started = time.perf_counter()
                engine = load_engine(spec, self.settings)
                elapsed = time.perf_counter() - started
                log.info("loaded %s in %.2f s", spec.id, elapsed)
                self.metrics.model_load_seconds.labels(spec.id).set(elapsed)
                self._engines[spec.id] = engine
                self.metrics.models_loaded.set(len(self._engines))
        return engine

    def adopt(self, engine: Engine) -> None:
        """Serve ``engine`` for its :attr:`~Engine.model_id` from now on (an engine built outside the registry: a
        plugin's own, or a test's double wrapping a real one), replacing any loaded before."""
        with self._lock:
            self._engines[engine.model_id] = engine
            self.metrics.models_loaded.set(len(self._engines))

    async def load(self, model_id: str | None) -> Engine:
        """:meth:`get` off the event loop."""
        return await anyio.to_thread.run_sync(self.get, model_id)

    async def load_chain(self, model_ids: Sequence[str | None]) -> list[Engine]:
        """The engines of an ordered fallback list that can be opened, in order (a stream's: the first serves it,
        the rest are its fallbacks). Raises the last model's error when none can."""
        candidates = list(model_ids) or [None]
        engines: list[Engine] = []
        for i, candidate in enumerate(candidates):
            try:
                engines.append(await self.load(candidate))
            except (ModelUnavailable, EngineError) as exc:
                if not engines and i == len(candidates) - 1:
                    raise
                log.warning("fallback: %s cannot be opened: %s", candidate, exc)
        return engines

    def is_loaded(self, model_id: str) -> bool:
        return self.resolve(model_id).id in self._engines

    def models(self) -> list[ModelInfo]:
        """Every model that can be served: the packaged ones, the default, and each provider's listed models."""
        default = self.resolve(None).id
        specs = listed(self.settings.default_model)
        return [
            ModelInfo(
                id=s.id,
                languages=s.languages,
                multilingual=s.multilingual,
                size_bytes=s.size_bytes,
                source=s.source,
                loaded=s.id in self._engines,
                default=s.id == default,
                aliases=tuple(a for a in ALIASES if s.id == default),
                remote=s.remote,
                configured=self._configured(s),
            )
            for s in specs
        ]

    def _configured(self, spec: ModelSpec) -> bool:
        return PROVIDERS[spec.provider].configured(self.settings, spec)

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.close()
            self._engines.clear()
            self.metrics.models_loaded.set(0)
