"""How a stream's decode requests are answered: one strategy per kind of engine, chosen when the stream opens and
again when it falls back to another engine.

* :class:`SocketDecoder` — the vendor's real-time socket hears the audio as it comes; drafts are what it has said so
  far, a final asks it to settle. No speculative decodes (settling at every pause would cut the vendor's utterances).
* :class:`CloudDecoder` — a provider without a socket here: one batch call per draft and per final, on the
  scheduler's bounded I/O pool.
* :class:`LocalDecoder` — a local model on the inference scheduler: drafts batched across streams (droppable when the
  server falls behind), finals and speculative decodes urgent.
"""

from __future__ import annotations

import functools
from typing import Protocol

from voxgate.engines.base import Engine, LiveEngine
from voxgate.engines.live import LiveDecoder
from voxgate.scheduler import Scheduler, wait
from voxgate.streaming.events import DecodeJob, DecodeKind
from voxgate.types import SAMPLE_RATE, Audio, Transcript, TranscriptionOptions

__all__ = ["CloudDecoder", "Decoder", "LocalDecoder", "SocketDecoder", "open_decoder"]

# How soon each kind of decode should run (seconds from its request): the scheduler's priorities.
_DEADLINES = {DecodeKind.FINAL: 0.0, DecodeKind.SPECULATIVE: 0.1, DecodeKind.PARTIAL: 0.5, DecodeKind.ROLL: 1.0}
_TURN_RESULTS = frozenset({DecodeKind.FINAL, DecodeKind.SPECULATIVE})
"""Decodes whose result is (or is about to be) a turn's final: urgent on the scheduler, ahead of every draft."""
_PARTIAL_DROP_AFTER = 1.0
"""A partial still queued this long after its deadline is skipped; a newer one will follow."""


class Decoder(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def hears_audio(self) -> bool:
        """Whether the stream's audio must be sent as it arrives (:meth:`send`)."""
        ...

    @property
    def speculative(self) -> bool:
        """Whether decoding a turn at each pause, before it ends, is worth it."""
        ...

    async def send(self, pcm: bytes) -> None:
        """16 kHz LINEAR16 audio as it arrives (only when :attr:`hears_audio`)."""
        ...

    async def decode(self, job: DecodeJob) -> Transcript:
        """The answer to one decode request (raises :class:`~voxgate.scheduler.Skipped` for a dropped draft)."""
        ...

    async def close(self) -> None: ...


async def open_decoder(engine: Engine, scheduler: Scheduler, options: TranscriptionOptions, batching: bool) -> Decoder:
    """The strategy for ``engine`` (opening the vendor's socket when it has one)."""
    connector = engine.live_connector() if isinstance(engine, LiveEngine) else None
    if connector is not None:
        connection = await connector.connect(options)
        return SocketDecoder(LiveDecoder(connection, engine.model_id), engine.model_id)
    if engine.capabilities.remote:
        return CloudDecoder(engine, scheduler)
    return LocalDecoder(engine, scheduler, batching)


class SocketDecoder:
    hears_audio = True
    speculative = False

    def __init__(self, live: LiveDecoder, model_id: str) -> None:
        self._live = live
        self.model_id = model_id

    async def send(self, pcm: bytes) -> None:
        await self._live.send(pcm)

    async def decode(self, job: DecodeJob) -> Transcript:
        duration = len(job.audio) / SAMPLE_RATE
        if job.kind is DecodeKind.PARTIAL:
            return self._live.draft(job.offset, duration)
        return await self._live.settle(job.offset, duration)

    async def close(self) -> None:
        await self._live.close()


class CloudDecoder:
    hears_audio = False
    speculative = True

    def __init__(self, engine: Engine, scheduler: Scheduler) -> None:
        self._engine = engine
        self._scheduler = scheduler
        self.model_id = engine.model_id

    async def send(self, pcm: bytes) -> None:
        pass

    async def decode(self, job: DecodeJob) -> Transcript:
        if job.kind is DecodeKind.PARTIAL:
            work = functools.partial(_first_of, self._engine, [(job.audio, job.options)])
        else:
            work = functools.partial(self._engine.transcribe_utterance, job.audio, job.options)
        return await self._scheduler.run(work, remote=True)

    async def close(self) -> None:
        pass


class LocalDecoder:
    hears_audio = False
    speculative = True

    def __init__(self, engine: Engine, scheduler: Scheduler, batching: bool) -> None:
        self._engine = engine
        self._scheduler = scheduler
        self._batching = batching
        self.model_id = engine.model_id

    async def send(self, pcm: bytes) -> None:
        pass

    async def decode(self, job: DecodeJob) -> Transcript:
        engine = self._engine
        if job.kind is DecodeKind.PARTIAL:
            # Drafts are padded to the longest in their batch: only batch clips of similar length. Unbatched, a
            # draft is still droppable when it falls behind.
            key = (engine.model_id, len(job.audio) // (2 * SAMPLE_RATE)) if self._batching else ("draft", id(job))
            future = self._scheduler.submit_batched(
                key,
                (job.audio, job.options),
                engine.transcribe_batch,
                max_batch=engine.capabilities.max_batch if self._batching else 1,
                deadline_in=_DEADLINES[job.kind],
                drop_after=_PARTIAL_DROP_AFTER,
            )
        else:
            work = functools.partial(engine.transcribe_utterance, job.audio, job.options)
            urgent = job.kind in _TURN_RESULTS  # a final (or its speculative decode) goes before queued drafts
            future = self._scheduler.submit(work, deadline_in=_DEADLINES[job.kind], urgent=urgent)
        return await wait(future)

    async def close(self) -> None:
        pass


def _first_of(engine: Engine, items: list[tuple[Audio, TranscriptionOptions]]) -> Transcript:
    return engine.transcribe_batch(items)[0]
