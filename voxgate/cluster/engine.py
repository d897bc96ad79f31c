"""The engine an ingress replica holds for a model that runs in its own deployment.

Streams, files and jobs in the ingress use it like any engine: the streaming session and the file pipeline are the
single process's code. It says ``remote`` in its capabilities, so the ingress's scheduler runs its calls on the I/O
pool (many in flight, each waiting on the network) instead of its one inference thread: queuing, priorities and
batching happen once, on the model replica's scheduler, across every ingress replica.

A call that went to a replica that died (killed, out of memory, its node lost) is sent again: the deployment's router
picks a live replica, and Ray replaces the dead one. Decodes are pure functions of their input, so running one twice
is harmless.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from voxgate.engines.base import Capabilities
from voxgate.errors import EngineError
from voxgate.scheduler import Skipped
from voxgate.types import SAMPLE_RATE, Audio, ProgressCallback, Transcript, TranscriptionOptions

__all__ = ["ClusterEngine", "ModelHandle"]

log = logging.getLogger(__name__)


class _Response(Protocol):
    def result(self, *, timeout_s: float | None = None) -> Any: ...


class _Method(Protocol):
    def remote(self, *args: Any) -> _Response: ...


class ModelHandle(Protocol):
    """What :class:`ClusterEngine` needs of a Ray Serve ``DeploymentHandle`` to a
    :class:`~voxgate.cluster.model.ModelServer` (a test may give a double)."""

    @property
    def transcribe(self) -> _Method: ...

    @property
    def utterance(self) -> _Method: ...

    @property
    def drafts(self) -> _Method: ...


def _replica_lost() -> tuple[type[BaseException], ...]:
    """The errors that mean "the replica is gone", not "the decode failed" (Ray's, when Ray is installed)."""
    try:
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, WorkerCrashedError
    except ImportError:
        return ()
    return (RayActorError, ActorDiedError, ActorUnavailableError, WorkerCrashedError)


class ClusterEngine:
    def __init__(
        self,
        model_id: str,
        capabilities: Capabilities,
        handle: ModelHandle,
        *,
        attempts: int = 4,
        backoff: float = 0.5,
        timeout: float = 600.0,
        lost: tuple[type[BaseException], ...] | None = None,
        on_retry: Callable[[], None] | None = None,
    ) -> None:
        self._model_id = model_id
        self._capabilities = dataclasses.replace(capabilities, remote=True)
        self._handle = handle
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._timeout = timeout
        self._lost = _replica_lost() if lost is None else lost
        self._on_retry = on_retry
        """Called for each call sent again because its replica died (a metric)."""

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def _call(self, method: Callable[[], _Method], *args: Any) -> Any:
        for attempt in range(1, self._attempts + 1):
            try:
                return method().remote(*args).result(timeout_s=self._timeout)
            except self._lost as exc:
                if attempt == self._attempts:
                    raise EngineError(f"{self._model_id}: every replica tried has died ({exc})") from exc
                log.warning("%s: the replica died during a decode; sending it again (%s)", self._model_id, exc)
                if self._on_retry is not None:
                    self._on_retry()
                time.sleep(self._backoff * attempt)
        raise AssertionError("unreachable")

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions, progress: ProgressCallback | None = None
    ) -> Transcript:
        result: Transcript = self._call(lambda: self._handle.transcribe, audio, options)
        if progress is not None:  # the replica cannot call back across processes: done is all it can say
            progress(len(audio) / SAMPLE_RATE, len(audio) / SAMPLE_RATE)
        return result

    def transcribe_utterance(self, audio: Audio, options: TranscriptionOptions) -> Transcript:
        result: Transcript = self._call(lambda: self._handle.utterance, audio, options)
        return result

    def transcribe_batch(self, items: Sequence[tuple[Audio, TranscriptionOptions]]) -> list[Transcript]:
        results: list[Transcript | None] = self._call(lambda: self._handle.drafts, list(items))
        if any(r is None for r in results):  # the replica fell behind and dropped it, as a local scheduler would
            raise Skipped("a draft was dropped by the model replica, behind its deadline")
        return [r for r in results if r is not None]

    def close(self) -> None:
        pass  # the model's memory is its deployment's
