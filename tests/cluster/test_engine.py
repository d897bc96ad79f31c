"""The ingress's engine for a deployed model, against a double of the deployment's handle: calls go to the handle's
methods, a replica lost mid-call is tried again (and counted), a decode's own error is not, a draft the replica
dropped is :class:`Skipped` as on a local scheduler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from voxgate.cluster.engine import ClusterEngine
from voxgate.engines.base import Capabilities
from voxgate.errors import EngineError, InvalidRequest
from voxgate.scheduler import Skipped
from voxgate.types import Segment, Transcript, TranscriptionOptions

AUDIO = np.zeros(16000, dtype=np.float32)
OPTIONS = TranscriptionOptions()


class Lost(Exception):
    """Stands for Ray's "the actor died"."""


def transcript(text: str) -> Transcript:
    return Transcript(segments=(Segment(text=text, start=0.0, end=1.0),), duration=1.0, model_id="m")


class Response:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def result(self, *, timeout_s: float | None = None) -> Any:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class Method:
    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = outcomes
        self.calls: list[tuple[Any, ...]] = []

    def remote(self, *args: Any) -> Response:
        self.calls.append(args)
        return Response(self.outcomes.pop(0))


class Handle:
    def __init__(self, **methods: list[Any]) -> None:
        self.transcribe = Method(methods.get("transcribe", []))
        self.utterance = Method(methods.get("utterance", []))
        self.drafts = Method(methods.get("drafts", []))


def engine(handle: Handle, retried: Callable[[], None] | None = None, attempts: int = 3) -> ClusterEngine:
    caps = Capabilities(languages=("en",), max_batch=8)
    return ClusterEngine("m", caps, handle, attempts=attempts, backoff=0.0, lost=(Lost,), on_retry=retried)


def test_calls_go_to_the_deployment_and_the_scheduler_treats_them_as_remote() -> None:
    handle = Handle(transcribe=[transcript("file")], utterance=[transcript("final")], drafts=[[transcript("draft")]])
    e = engine(handle)
    assert e.capabilities.remote  # the ingress's I/O pool, not its one inference thread
    assert e.capabilities.max_batch == 8
    progress: list[tuple[float, float]] = []
    assert e.transcribe(AUDIO, OPTIONS, lambda done, total: progress.append((done, total))).text == "file"
    assert progress == [(1.0, 1.0)]
    assert e.transcribe_utterance(AUDIO, OPTIONS).text == "final"
    assert [t.text for t in e.transcribe_batch([(AUDIO, OPTIONS)])] == ["draft"]
    assert handle.drafts.calls[0][0][0][1] is OPTIONS


def test_a_replica_lost_mid_call_is_tried_again_and_counted() -> None:
    handle = Handle(utterance=[Lost("gone"), Lost("gone too"), transcript("final")])
    retries: list[int] = []
    assert engine(handle, lambda: retries.append(1)).transcribe_utterance(AUDIO, OPTIONS).text == "final"
    assert len(handle.utterance.calls) == 3
    assert len(retries) == 2


def test_every_replica_lost_is_an_engine_error() -> None:
    handle = Handle(transcribe=[Lost("a"), Lost("b")])
    with pytest.raises(EngineError, match="every replica tried has died"):
        engine(handle, attempts=2).transcribe(AUDIO, OPTIONS)


def test_a_decodes_own_error_is_not_retried() -> None:
    handle = Handle(transcribe=[InvalidRequest("bad options"), transcript("never")])
    with pytest.raises(InvalidRequest):
        engine(handle).transcribe(AUDIO, OPTIONS)
    assert len(handle.transcribe.calls) == 1


def test_a_draft_the_replica_dropped_is_skipped() -> None:
    handle = Handle(drafts=[[None]])
    with pytest.raises(Skipped):
        engine(handle).transcribe_batch([(AUDIO, OPTIONS)])
