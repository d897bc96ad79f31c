"""The engine pool (ids resolved, engines loaded once, adopted, listed, closed) and its lazy loader."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from voxgate.config import Settings
from voxgate.engines.pool import EnginePool, Lazy
from voxgate.errors import ModelNotFound, ModelUnavailable, ResourceExhausted
from voxgate.metrics import Metrics
from voxgate.models.catalog import resolve
from voxgate.models.materialize import materialize
from voxgate.service import Service


def test_lazy_builds_once_whoever_asks_first() -> None:
    built: list[int] = []

    def build() -> object:
        time.sleep(0.05)  # long enough for every thread to arrive while the first builds
        built.append(1)
        return object()

    lazy: Lazy[object] = Lazy(build)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(lazy())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == [1]
    assert len({id(v) for v in seen}) == 1
    assert lazy.loaded


def test_lazy_tries_again_after_a_failed_build() -> None:
    attempts: list[int] = []

    def build() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ModelUnavailable("the package is missing")
        return "model"

    lazy: Lazy[str] = Lazy(build)
    with pytest.raises(ModelUnavailable):
        lazy()
    assert not lazy.loaded
    assert lazy() == "model"
    assert lazy() == "model"
    assert len(attempts) == 2


def test_pool_loads_each_model_once_under_every_name(service: Service) -> None:
    pool = service.engines
    assert pool.get("whisper/tiny.en") is pool.get("whisper/tiny.en")
    assert pool.get(None) is pool.get("inworld/inworld-stt-1") is pool.get("whisper/base")
    assert pool.is_loaded("whisper/tiny.en")


def test_pool_adopts_an_engine_built_elsewhere(settings: Settings, service: Service) -> None:
    pool = EnginePool(settings, Metrics())
    tiny = service.engine("whisper/tiny.en")
    assert not pool.is_loaded("whisper/tiny.en")
    pool.adopt(tiny)
    assert pool.get("whisper/tiny.en") is tiny
    assert next(m for m in pool.models() if m.id == "whisper/tiny.en").loaded


async def test_load_chain_skips_what_cannot_open(service: Service) -> None:
    """A stream's fallback list: models that cannot be opened (no key here) are left out, in order."""
    engines = await service.engines.load_chain(["deepgram/nova-3", "whisper/tiny.en"])
    assert [e.model_id for e in engines] == ["whisper/tiny.en"]


async def test_load_chain_raises_when_nothing_opens(service: Service) -> None:
    with pytest.raises(ModelUnavailable):
        await service.engines.load_chain(["deepgram/nova-3", "assemblyai/universal-2"])


def test_unknown_model_is_not_found(service: Service) -> None:
    with pytest.raises(ModelNotFound):
        service.engines.get("whisper/nope")


def test_every_spelling_of_a_served_directory_loads_it_once(settings: Settings, tmp_path: Path) -> None:
    """A request may name a model directory under the configured roots, however it spells it: one engine, once."""
    tiny = materialize(resolve("whisper/tiny.en", settings.default_model), settings.home)
    mine = tmp_path / "models" / "tiny"
    mine.mkdir(parents=True)
    for f in tiny.iterdir():
        (mine / f.name).symlink_to(f)
    pool = EnginePool(settings.model_copy(update={"model_roots": [tmp_path / "models"]}), Metrics())
    try:
        spellings = [f"whisper/{mine}", f"whisper/{mine}/", f"whisper/{mine}/./", f"whisper/{mine}/../tiny"]
        spellings.append(f"whisper/{tmp_path}//models/tiny")
        engines = {id(pool.get(s)) for s in spellings}
        assert len(engines) == 1
        assert [m.id for m in pool.models() if m.loaded] == []  # a directory is served, not listed
        with pytest.raises(ModelNotFound):
            pool.get(f"whisper/{tiny}")  # the packaged files themselves are outside the roots
    finally:
        pool.close()


def test_loaded_engines_are_bounded(settings: Settings) -> None:
    pool = EnginePool(
        settings.model_copy(update={"max_loaded_models": 2, "deepgram_api_key": SecretStr("k")}), Metrics()
    )
    try:
        pool.get("deepgram/nova-3")
        pool.get("deepgram/nova-2")
        with pytest.raises(ResourceExhausted):
            pool.get("deepgram/nova-3-medical")
        assert pool.get("deepgram/nova-3") is pool.get("deepgram/nova-3")  # what is loaded is still served
    finally:
        pool.close()
