"""A model replica (no Ray needed): the packaged model behind the single process's scheduler, its drafts from several
ingress replicas batched into one decode, its finals as the engine gives them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from voxgate.audio.decode import decode
from voxgate.cluster.model import ModelServer
from voxgate.config import Settings
from voxgate.engines.base import Engine
from voxgate.types import Audio, Transcript, TranscriptionOptions

TINY = "whisper/tiny.en"


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[ModelServer]:
    s = ModelServer(TINY, settings)
    yield s
    s.close()


class Counting:
    """The engine, its batch calls counted."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.engine, name)

    def transcribe_batch(self, items: Sequence[tuple[Audio, TranscriptionOptions]]) -> list[Transcript]:
        self.batches.append(len(items))
        return self.engine.transcribe_batch(items)


def test_finals_and_files_are_the_engines(server: ModelServer, data: Path) -> None:
    audio = decode(data / "en" / "jfk.flac")
    options = TranscriptionOptions(language="en")
    assert server.model_id() == TINY
    assert server.capabilities().max_batch > 1
    final = asyncio.run(server.utterance(audio, options))
    assert final == server.engine.transcribe_utterance(audio, options)
    assert "fellow Americans" in asyncio.run(server.transcribe(audio, options)).text


def test_drafts_from_several_callers_share_one_decode(server: ModelServer, data: Path) -> None:
    audio = decode(data / "en" / "jfk.flac")[: 16000 * 3]
    options = TranscriptionOptions(language="en")
    counting = Counting(server.engine)
    real, server.engine = server.engine, counting  # type: ignore[assignment]
    try:

        async def three_ingresses() -> list[list[Transcript | None]]:
            server.scheduler.submit(lambda: time.sleep(0.5))  # the worker busy: the drafts queue up together
            return await asyncio.gather(*(server.drafts([(audio, options)]) for _ in range(3)))

        results = asyncio.run(three_ingresses())
    finally:
        server.engine = real
    assert counting.batches == [3]
    texts = [r[0].text for r in results if r[0] is not None]
    assert len(texts) == 3
    assert len(set(texts)) == 1
