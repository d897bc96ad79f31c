"""Drive one :class:`StreamSession` with real models: the async glue between a transport and the session.

The runner turns client audio bytes into 16 kHz samples and VAD probabilities, hands them to the session, and
executes the jobs the session asks for — Whisper decodes through the shared :class:`Scheduler` (partials batched
across every stream of the same model and droppable under load; speculative decodes and finals never dropped), turn
checks and speaker embeddings on the small-model thread pool — feeding each answer back. Events for the client come
out of :attr:`events` in order. Nothing here knows about WebSockets.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any, Protocol

import anyio.to_thread
import numpy as np

from voxgate.analysis.diarize import CHUNK_SECONDS
from voxgate.analysis.profile import VoiceProfile
from voxgate.analysis.speaker import SpeakerEncoder
from voxgate.analysis.turn import TurnDetector
from voxgate.analysis.vad import VadStream
from voxgate.audio.pcm import PcmEncoding, StreamResampler, encode_linear16, pcm_to_float
from voxgate.engines.base import Engine, LiveEngine
from voxgate.engines.live import LiveConnector, LiveDecoder
from voxgate.errors import EngineError, VoxgateError
from voxgate.scheduler import Scheduler, Skipped, wait
from voxgate.streaming.events import DecodeJob, DecodeKind, Event, Output, ProfileJob, SpeakerJob, TurnCheckJob
from voxgate.streaming.policy import EndTurnReason
from voxgate.streaming.session import SessionConfig, StreamSession
from voxgate.types import SAMPLE_RATE, Audio, Transcript, TranscriptionOptions, Word

__all__ = ["StreamRunner"]

log = logging.getLogger(__name__)

# How soon each kind of decode should run (seconds from its request): the scheduler's priorities.
_DEADLINES = {DecodeKind.FINAL: 0.0, DecodeKind.SPECULATIVE: 0.1, DecodeKind.PARTIAL: 0.5, DecodeKind.ROLL: 1.0}
_TURN_RESULTS = frozenset({DecodeKind.FINAL, DecodeKind.SPECULATIVE})
"""Decodes whose result is (or is about to be) a turn's final: urgent on the scheduler, ahead of every draft."""
_PARTIAL_DROP_AFTER = 1.0
_PROFILE_DEADLINE = 2.0
"""Voice-profile work comes after partials; an update still queued 2 s past this is skipped."""


def _live_connector(engine: Engine) -> LiveConnector | None:
    """The engine's real-time connector, for providers that stream natively."""
    return engine.live_connector() if isinstance(engine, LiveEngine) else None


class Profiler(Protocol):
    def __call__(self, audio: Audio, *, text: str, words: Sequence[Word], language: str | None) -> VoiceProfile: ...


"""A partial still queued this long after its deadline is skipped; a newer one will follow."""


class StreamRunner:
    def __init__(
        self,
        config: SessionConfig,
        *,
        engine: Engine,
        fallbacks: Sequence[Engine] = (),
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
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.session = StreamSession(config)
        self.events: asyncio.Queue[Event | VoxgateError] = asyncio.Queue()
        self._engine = engine
        self._fallbacks = list(fallbacks)
        """Engines to move to, in order, when the current one fails (a provider outage, a lost key)."""
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
        self._tasks: set[asyncio.Task[None]] = set()
        self._live: LiveDecoder | None = None
        """The vendor's real-time socket, when the current engine streams natively."""
        self._on_close = on_close
        self._closed = False

    async def start(self) -> None:
        """Open the vendor's real-time socket when the engine has one (falling back along the list if it fails)."""
        while True:
            connector = _live_connector(self._engine)
            if connector is None:
                return
            try:
                connection = await connector.connect(self.session.config.options)
            except EngineError as exc:
                if not self._fallbacks:
                    raise
                self._switch(exc)
                continue
            self._live = LiveDecoder(connection, self._engine.model_id)
            # No speculative decodes: settling at every pause would make the vendor cut its utterances short; the
            # vendor hears the audio as it comes, so only the turn's final asks it to settle.
            self.session.config = replace(self.session.config, speculative=False)
            return

    def _switch(self, error: Exception) -> None:
        failed, self._engine = self._engine, self._fallbacks.pop(0)
        log.warning("stream falls back from %s to %s: %s", failed.model_id, self._engine.model_id, error)

    async def _drop_live(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            await live.close()

    # -- inputs from the transport ---------------------------------------------------------------------------------

    async def feed(self, data: bytes) -> None:
        """Raw PCM bytes from the client (validated: raises InvalidPcm on a bad byte count)."""
        samples = pcm_to_float(data, self._encoding, self._channels)
        audio = self._resampler.process(samples)
        if not len(audio):
            return
        await self._send_live(audio)
        probs = await anyio.to_thread.run_sync(self._vad.process, audio, limiter=self._small)
        self._dispatch(self.session.feed(audio, np.asarray(probs)))

    async def _send_live(self, audio: Audio) -> None:
        if self._live is None:
            return
        try:
            await self._live.send(encode_linear16(audio))
        except EngineError as exc:
            # The vendor's socket is gone: the session's requests carry their audio, so the fallback engine
            # decodes them from that; nothing heard is lost.
            await self._drop_live()
            if not self._fallbacks:
                self._fail(exc)
                return
            self._switch(exc)
            await self.start()

    async def flush_audio(self) -> None:
        """The client stopped sending (endTurn/closeStream): feed the audio still inside the resampler's filter."""
        tail = self._resampler.process(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            await self._send_live(tail)
            probs = await anyio.to_thread.run_sync(self._vad.process, tail, limiter=self._small)
            self._dispatch(self.session.feed(tail, np.asarray(probs)))

    def end_turn(self) -> None:
        self._dispatch(self.session.end_turn())

    def close(self, reason: EndTurnReason = EndTurnReason.CLOSE) -> None:
        """closeStream: the session flushes; :class:`StreamClosed` arrives on :attr:`events` after the last final."""
        self._dispatch(self.session.close(reason))

    async def aclose(self) -> None:
        """Release everything now (the client left): cancel pending work. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._drop_live()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._on_close is not None:
            self._on_close()

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
                self.events.put_nowait(output)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _decode(self, job: DecodeJob) -> None:
        while True:
            try:
                result = await self._run_decode(job)
            except Skipped:
                result = None
            except EngineError as exc:
                await self._drop_live()
                if not self._fallbacks:
                    self._fail(exc)
                    return
                # The job still holds its audio: the same turn is decoded again by the next engine, nothing lost.
                self._switch(exc)
                try:
                    await self.start()
                except EngineError as again:
                    self._fail(again)
                    return
                continue
            except VoxgateError as exc:
                self._fail(exc)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an engine bug must end this stream only, with a clear error
                log.exception("decode failed in %s", self._engine.model_id)
                self._fail(EngineError(f"{self._engine.model_id} failed: {type(exc).__name__}"))
                return
            break
        if not self._closed:
            self._dispatch(self.session.decoded(job, result))

    async def _run_decode(self, job: DecodeJob) -> Transcript:
        engine = self._engine
        if self._live is not None:  # the vendor's socket has been hearing this audio all along
            duration = len(job.audio) / SAMPLE_RATE
            if job.kind is DecodeKind.PARTIAL:
                return self._live.draft(job.offset, duration)
            return await self._live.settle(job.offset, duration)
        if engine.capabilities.remote:  # a cloud call: the thread pool, not the inference worker
            if job.kind is DecodeKind.PARTIAL:
                work = functools.partial(self._first_of, engine, [(job.audio, job.options)])
            else:
                work = functools.partial(engine.transcribe_utterance, job.audio, job.options)
            return await anyio.to_thread.run_sync(work)
        if job.kind is DecodeKind.PARTIAL and self._batching:
            # Drafts are padded to the longest in their batch: only batch clips of similar length.
            bucket = len(job.audio) // (2 * SAMPLE_RATE)
            future = self._scheduler.submit_batched(
                (engine.model_id, bucket),
                (job.audio, job.options),
                engine.transcribe_batch,
                max_batch=engine.capabilities.max_batch,
                deadline_in=_DEADLINES[job.kind],
                drop_after=_PARTIAL_DROP_AFTER,
            )
        elif job.kind is DecodeKind.PARTIAL:  # unbatched, but still droppable when it falls behind
            future = self._scheduler.submit_batched(
                ("draft", id(job)),
                (job.audio, job.options),
                engine.transcribe_batch,
                max_batch=1,
                deadline_in=_DEADLINES[job.kind],
                drop_after=_PARTIAL_DROP_AFTER,
            )
        else:
            work = functools.partial(engine.transcribe_utterance, job.audio, job.options)
            urgent = job.kind in _TURN_RESULTS  # a final (or its speculative decode) goes before queued drafts
            future = self._scheduler.submit(work, deadline_in=_DEADLINES[job.kind], urgent=urgent)
        return await wait(future)

    @staticmethod
    def _first_of(engine: Engine, items: list[tuple[Audio, TranscriptionOptions]]) -> Transcript:
        return engine.transcribe_batch(items)[0]

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
