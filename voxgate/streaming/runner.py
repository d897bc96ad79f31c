"""Drive one :class:`StreamSession` with real models: the async glue between a transport and the session.

The runner turns client audio bytes into 16 kHz samples and VAD probabilities, hands them to the session, and
executes the jobs the session asks for — decodes through the current engine's :mod:`~voxgate.streaming.decoders`
strategy (a vendor socket, a cloud call, or the local scheduler with drafts batched across streams), turn checks and
speaker embeddings on the small-model thread pool — feeding each answer back. When the engine fails it moves to the
next one of the request's fallback list (:mod:`voxgate.engines.fallback`) and the failed decode is redone there. It
also keeps the stream's limits (``max_seconds``) and measures end-of-turn → final latency. Events for the client come
out of :attr:`events` in order. Nothing here knows about WebSockets.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import anyio.to_thread
import numpy as np

from voxgate.analysis.diarize import CHUNK_SECONDS
from voxgate.analysis.speaker import SpeakerEncoder
from voxgate.analysis.turn import TurnDetector
from voxgate.analysis.vad import VadStream
from voxgate.audio.pcm import PcmEncoding, StreamResampler, encode_linear16, pcm_to_float
from voxgate.engines.base import Engine
from voxgate.engines.fallback import FALLBACK_ERRORS, Fallback, with_fallback
from voxgate.errors import EngineError, VoxgateError
from voxgate.metrics import Metrics
from voxgate.scheduler import Scheduler, Skipped, wait
from voxgate.streaming.decoders import Decoder, open_decoder
from voxgate.streaming.events import (
    DecodeJob,
    Event,
    Output,
    ProfileJob,
    SpeakerJob,
    StreamClosed,
    TranscriptEvent,
    TurnCheckJob,
    TurnEnded,
)
from voxgate.streaming.policy import EndTurnReason
from voxgate.streaming.session import SessionConfig, StreamSession
from voxgate.types import Audio, Transcript, VoiceProfile, Word

__all__ = ["StreamLimits", "StreamRunner"]

log = logging.getLogger(__name__)

_PROFILE_DEADLINE = 2.0
"""Voice-profile work comes after partials; an update still queued 2 s past this is skipped."""


class Profiler(Protocol):
    def __call__(self, audio: Audio, *, text: str, words: Sequence[Word], language: str | None) -> VoiceProfile: ...


@dataclass(frozen=True, slots=True)
class StreamLimits:
    max_seconds: float = float("inf")
    """Seconds of audio after which the stream is flushed and closed (``maxDuration``)."""


class StreamRunner:
    def __init__(
        self,
        config: SessionConfig,
        *,
        engines: Sequence[Engine],
        scheduler: Scheduler,
        vad: VadStream,
        turn_detector: TurnDetector | None,
        encoding: PcmEncoding,
        sample_rate: int,
        channels: int,
        small_models: anyio.CapacityLimiter,
        batching: bool = True,
        profiler: Profiler | None = None,
        speaker_encoder: SpeakerEncoder | None = None,
        limits: StreamLimits = StreamLimits(),
        metrics: Metrics | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.session = StreamSession(config)
        self.events: asyncio.Queue[Event | VoxgateError] = asyncio.Queue()
        self._engines = Fallback(engines, name=lambda e: e.model_id)
        """The engine serving the stream, then those to move to, in order, when it fails (an outage, a lost key)."""
        self._decoder: Decoder | None = None
        """How the current engine answers decode requests (opened by :meth:`start`)."""
        self._scheduler = scheduler
        self._vad = vad
        self._turn = turn_detector
        self._encoding = encoding
        self._channels = channels
        self._resampler = StreamResampler(sample_rate)
        self._small = small_models
        self._batching = batching
        self._profiler = profiler
        self._speaker_encoder = speaker_encoder
        self._limits = limits
        self._metrics = metrics
        self._turn_ended_at: dict[int, float] = {}
        """When each turn ended (monotonic), until its final goes out: the end-of-turn → final latency."""
        self.at_limit = False
        """The stream reached ``limits.max_seconds`` and is closing: further audio is dropped."""
        self._switching = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_close = on_close
        self._closed = False

    @property
    def model_id(self) -> str:
        """The model serving the stream (after a fallback, the one it moved to)."""
        return self._decoder.model_id if self._decoder is not None else self._engines.current.model_id

    async def start(self) -> None:
        """Open the decode strategy of the first engine that can serve (a vendor socket may refuse: the next one
        takes over)."""
        self._decoder = await with_fallback(self._engines, self._open)
        if not self._decoder.speculative:
            self.session.config = replace(self.session.config, speculative=False)

    async def _open(self, engine: Engine) -> Decoder:
        return await open_decoder(engine, self._scheduler, self.session.config.options, self._batching)

    async def _fall_back(self, error: VoxgateError, failed: Decoder | None) -> bool:
        """The decoder ``failed``: close it and open the next engine's. False when none is left (or the next ones
        fail too); the stream must then end with ``error``. Several jobs failing at once move the stream on once."""
        async with self._switching:
            if self._decoder is not failed:  # another job has moved on already
                return self._decoder is not None
            await self._drop_decoder()
            if not self._engines.advance(error):
                return False
            try:
                await self.start()
            except FALLBACK_ERRORS:
                return False
            return True

    async def _drop_decoder(self) -> None:
        if self._decoder is not None:
            decoder, self._decoder = self._decoder, None
            await decoder.close()

    # -- inputs from the transport ---------------------------------------------------------------------------------

    async def feed(self, data: bytes) -> None:
        """Raw PCM bytes from the client (validated: raises InvalidPcm on a bad byte count). Audio past
        ``limits.max_seconds`` closes the stream (:attr:`at_limit`); audio after that is dropped."""
        if self.at_limit:
            return
        samples = pcm_to_float(data, self._encoding, self._channels)
        audio = self._resampler.process(samples)
        if not len(audio):
            return
        await self._send(audio)
        probs = await anyio.to_thread.run_sync(self._vad.process, audio, limiter=self._small)
        self._dispatch(self.session.feed(audio, np.asarray(probs)))
        if self.session.time > self._limits.max_seconds:
            self.at_limit = True
            self.close(EndTurnReason.MAX_DURATION)

    async def _send(self, audio: Audio) -> None:
        decoder = self._decoder
        if decoder is None or not decoder.hears_audio:
            return
        try:
            await decoder.send(encode_linear16(audio))
        except EngineError as exc:
            # The vendor's socket is gone: the session's requests carry their audio, so the fallback engine
            # decodes them from that; nothing heard is lost.
            if not await self._fall_back(exc, decoder):
                self._fail(exc)

    async def flush_audio(self) -> None:
        """The client stopped sending (endTurn/closeStream): feed the audio still inside the resampler's filter."""
        tail = self._resampler.process(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            await self._send(tail)
            probs = await anyio.to_thread.run_sync(self._vad.process, tail, limiter=self._small)
            self._dispatch(self.session.feed(tail, np.asarray(probs)))

    def end_turn(self) -> None:
        self._turn_ended_at[self.session.turn_index] = time.perf_counter()
        self._dispatch(self.session.end_turn())

    def close(self, reason: EndTurnReason = EndTurnReason.CLOSE) -> None:
        """closeStream: the session flushes; :class:`StreamClosed` arrives on :attr:`events` after the last final."""
        self._turn_ended_at[self.session.turn_index] = time.perf_counter()
        self._dispatch(self.session.close(reason))

    async def aclose(self) -> None:
        """Release everything now (the client left): cancel pending work. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._drop_decoder()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._on_close is not None:
            self._on_close()

    async def settled(self) -> None:
        """Wait until none of this stream's jobs is in flight (what a caller driving the stream in lockstep, as
        the tests do, waits for between frames)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    # -- jobs ------------------------------------------------------------------------------------------------------

    def _dispatch(self, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, DecodeJob):
                self._spawn(self._decode(output))
            elif isinstance(output, TurnCheckJob):
                self._spawn(self._check_turn(output))
            elif isinstance(output, ProfileJob):
                self._spawn(self._profile(output))
            elif isinstance(output, SpeakerJob):
                self._spawn(self._voice(output))
            else:
                if isinstance(output, StreamClosed):
                    output = replace(output, model_id=self.model_id)
                self._measure(output)
                self.events.put_nowait(output)

    def _measure(self, event: Event) -> None:
        """The end-of-turn → final latency metric (from the client's endTurn, or the turn's detected end)."""
        if isinstance(event, TurnEnded):
            self._turn_ended_at.setdefault(event.turn, time.perf_counter())
        elif isinstance(event, TranscriptEvent) and event.is_final:
            ended = self._turn_ended_at.pop(event.turn, None)
            if ended is not None and self._metrics is not None:
                self._metrics.stream_final_seconds.observe(time.perf_counter() - ended)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _decode(self, job: DecodeJob) -> None:
        while True:
            decoder = self._decoder
            try:
                if decoder is None:
                    raise EngineError("no engine can serve this stream")
                result: Transcript | None = await decoder.decode(job)
            except Skipped:
                result = None
            except EngineError as exc:
                # The job still holds its audio: the same turn is decoded again by the next engine, nothing lost.
                if not await self._fall_back(exc, decoder):
                    self._fail(exc)
                    return
                continue
            except VoxgateError as exc:
                self._fail(exc)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an engine bug must end this stream only, with a clear error
                model = decoder.model_id if decoder is not None else "the engine"
                log.exception("decode failed in %s", model)
                self._fail(EngineError(f"{model} failed: {type(exc).__name__}"))
                return
            break
        if not self._closed:
            self._dispatch(self.session.decoded(job, result))

    async def _profile(self, job: ProfileJob) -> None:
        profile: VoiceProfile | None = None
        if self._profiler is not None:
            work = functools.partial(self._profiler, job.audio, text=job.text, words=job.words, language=job.language)
            try:
                if job.final:
                    profile = await self._scheduler.run(work, deadline_in=_PROFILE_DEADLINE)
                else:  # an update during a turn: droppable, like a partial
                    future = self._scheduler.submit_batched(
                        ("profile", id(self)), None, lambda _: [work()], max_batch=1,
                        deadline_in=_PROFILE_DEADLINE, drop_after=_PROFILE_DEADLINE,
                    )  # fmt: skip
                    profile = await wait(future)
            except Skipped:
                profile = None
            except VoxgateError as exc:
                self._fail(exc)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("voice profile failed")
                self._fail(EngineError(f"voice profile failed: {type(exc).__name__}"))
                return
        if not self._closed:
            self._dispatch(self.session.profiled(job, profile))

    async def _voice(self, job: SpeakerJob) -> None:
        embedding: Audio | None = None
        if self._speaker_encoder is not None:
            # Pieces as long as a file's chunks, so that one distance threshold serves both.
            work = functools.partial(
                self._speaker_encoder.embed_utterances, [job.audio], window=CHUNK_SECONDS, hop=CHUNK_SECONDS / 2
            )
            try:
                embedding = (await anyio.to_thread.run_sync(work, limiter=self._small))[0]
            except asyncio.CancelledError:
                raise
            except Exception:  # the final still goes out, untagged, rather than be lost
                log.exception("speaker embedding failed")
        if not self._closed:
            self._dispatch(self.session.voiced(job, embedding))

    async def _check_turn(self, job: TurnCheckJob) -> None:
        if self._turn is None:
            return
        try:
            probability = await anyio.to_thread.run_sync(self._turn.predict, job.audio, limiter=self._small)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("turn check failed")
            self._fail(EngineError(f"turn detector failed: {type(exc).__name__}"))
            return
        if not self._closed:
            self._dispatch(self.session.turn_checked(job, float(probability)))

    def _fail(self, error: VoxgateError) -> None:
        if not self._closed:
            self.events.put_nowait(error)
