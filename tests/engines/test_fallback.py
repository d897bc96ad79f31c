"""The one fallback rule shared by files and streams."""

from __future__ import annotations

import pytest

from voxgate.engines.fallback import Fallback, with_fallback
from voxgate.errors import EngineError, InvalidRequest, ModelUnavailable, ProviderTimeout, VoxgateError


async def test_moves_along_on_provider_failures_and_notes_each_move() -> None:
    chain = Fallback(["deepgram/nova-3", "soniox/stt-async-v5", "whisper/base"])
    tried: list[str] = []

    async def attempt(model: str) -> str:
        tried.append(model)
        if model == "deepgram/nova-3":
            raise ModelUnavailable("set VOXGATE_DEEPGRAM_API_KEY")
        if model == "soniox/stt-async-v5":
            raise ProviderTimeout("no answer in 5 s")
        return f"done by {model}"

    assert await with_fallback(chain, attempt) == "done by whisper/base"
    assert tried == ["deepgram/nova-3", "soniox/stt-async-v5", "whisper/base"]
    assert chain.current == "whisper/base"
    assert chain.remaining == 0
    assert chain.notes == [
        "deepgram/nova-3: model_unavailable: set VOXGATE_DEEPGRAM_API_KEY; fell back to soniox/stt-async-v5",
        "soniox/stt-async-v5: provider_timeout: no answer in 5 s; fell back to whisper/base",
    ]


async def test_the_last_candidates_error_is_raised() -> None:
    chain = Fallback(["a", "b"])

    async def attempt(model: str) -> str:
        raise EngineError(f"{model} is down")

    with pytest.raises(EngineError, match="b is down"):
        await with_fallback(chain, attempt)
    assert len(chain.notes) == 1


async def test_a_bad_request_never_falls_back() -> None:
    """Every model would reject it the same way: the first error is the answer."""
    chain = Fallback(["a", "b"])
    tried: list[str] = []

    async def attempt(model: str) -> str:
        tried.append(model)
        raise InvalidRequest("language 'xx' is unknown")

    with pytest.raises(InvalidRequest):
        await with_fallback(chain, attempt)
    assert tried == ["a"]
    assert chain.notes == []


def test_advance_stays_on_the_last_candidate() -> None:
    chain = Fallback([1, 2], name=lambda n: f"engine-{n}")
    error: VoxgateError = EngineError("boom")
    assert chain.advance(error)
    assert chain.current == 2
    assert not chain.advance(error)
    assert chain.current == 2
    assert chain.notes == ["engine-1: engine_error: boom; fell back to engine-2"]


def test_an_empty_list_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Fallback([])
