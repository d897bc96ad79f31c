"""The façade the server, the CLI and the benchmarks share: one object holding the parts, each owned elsewhere.

* :class:`~voxgate.engines.pool.EnginePool` — model ids resolved, engines loaded once, listed, closed;
* :class:`~voxgate.scheduler.Scheduler` — where every decode runs (inference worker, or the I/O pool for clouds);
* :class:`~voxgate.files.pipeline.FilePipeline` — the one file pipeline (windows, fallback, profiles, speakers);
* :class:`~voxgate.voice.Voice` — voice profiles and speaker embeddings;
* streams: admission (``max_streams``) and a :class:`~voxgate.streaming.runner.StreamRunner` per stream.
"""

from __future__ import annotations

import threading

import anyio
import anyio.to_thread
from threadpoolctl import threadpool_limits

from voxgate.analysis.profile import ProfileAnalyzer
from voxgate.analysis.speaker import SpeakerEncoder
from voxgate.analysis.turn import TurnDetector
from voxgate.analysis.vad import SileroVad
from voxgate.audio.pcm import PcmEncoding, check_sample_rate
from voxgate.config import Settings
from voxgate.engines.base import Engine
from voxgate.engines.pool import EnginePool, Lazy, ModelInfo
from voxgate.errors import InvalidRequest, ResourceExhausted
from voxgate.files import AudioSource, FileResult, RawAudio
from voxgate.files.pipeline import FilePipeline, ModelChoice, blocking
from voxgate.metrics import Metrics
from voxgate.models.catalog import ModelSpec
from voxgate.scheduler import Scheduler
from voxgate.streaming.policy import TurnMode
from voxgate.streaming.runner import StreamLimits, StreamRunner
from voxgate.streaming.session import SessionConfig
from voxgate.types import (
    ProgressCallback,
    Transcript,
    TranscriptionOptions,
)
from voxgate.voice import Voice

__all__ = ["AudioSource", "FileResult", "ModelInfo", "RawAudio", "Service"]


class Service:
    def __init__(self, settings: Settings, *, metrics: Metrics | None = None) -> None:
        self.settings = settings
        if settings.blas_threads:
            threadpool_limits(limits=settings.blas_threads, user_api="blas")
        self.metrics = metrics or Metrics()
        self.scheduler = Scheduler(urgent_lanes=int(settings.urgent_lane))
        self.metrics.decodes_queued.set_function(lambda: self.scheduler.pending)
        self.engines = EnginePool(settings, self.metrics)
        lock = threading.Lock()  # one lock for every shared small model: they load once, whoever asks first
        self.voice = Voice(settings, self.engines, lock)
        self.files = FilePipeline(settings, self.engines, self.scheduler, self.voice, self.metrics)
        self.transcribe_file = self.files.transcribe
        """A whole file through the one file pipeline (:meth:`FilePipeline.transcribe`)."""
        self.transcribe_file_sync = blocking(self.files.transcribe)
        """The same from synchronous code (the CLI, the benchmarks): the same pipeline and scheduler."""
        self.profile = self.voice.profile
        """A voice profile of a clip (blocking; run it on the scheduler): :meth:`Voice.profile`."""
        self.vad: Lazy[SileroVad] = Lazy(SileroVad.load, lock)
        """The shared Silero VAD model (each stream gets its own state from it)."""
        self.turn_detector: Lazy[TurnDetector] = Lazy(TurnDetector.load, lock)
        """The shared smart-turn model."""
        self._small_models: anyio.CapacityLimiter | None = None
        self.active_streams = 0

    # -- models ---------------------------------------------------------------------------------------------------

    def resolve(self, model_id: str | None) -> ModelSpec:
        return self.engines.resolve(model_id)

    def exposition(self) -> bytes:
        """What ``/metrics`` serves: this process's metrics (a cluster's ingress adds its other replicas')."""
        return self.metrics.exposition()

    def list_models(self) -> list[ModelInfo]:
        return self.engines.models()

    def engine(self, model_id: str | None) -> Engine:
        """The loaded engine for ``model_id``, loading it on first use (blocking)."""
        return self.engines.get(model_id)

    async def load(self, model_id: str | None) -> Engine:
        return await self.engines.load(model_id)

    def preload(self) -> None:
        for model_id in self.settings.preload:
            self.engine(None if model_id == "default" else model_id)
        if self.settings.preload:
            self.vad()
            self.turn_detector()

    @property
    def speaker_encoder(self) -> Lazy[SpeakerEncoder]:
        return self.voice.speaker_encoder

    @property
    def profile_analyzer(self) -> Lazy[ProfileAnalyzer]:
        return self.voice.analyzer

    # -- files ----------------------------------------------------------------------------------------------------

    async def transcribe(
        self, source: AudioSource, options: TranscriptionOptions, model_id: ModelChoice = None
    ) -> Transcript:
        return (await self.transcribe_file(source, options, model_id)).transcript

    def transcribe_sync(
        self,
        source: AudioSource,
        options: TranscriptionOptions,
        model_id: ModelChoice = None,
        progress: ProgressCallback | None = None,
    ) -> Transcript:
        return self.transcribe_file_sync(source, options, model_id, progress=progress).transcript

    # -- streams --------------------------------------------------------------------------------------------------

    async def open_stream(
        self,
        model_id: ModelChoice,
        config: SessionConfig,
        *,
        encoding: PcmEncoding,
        sample_rate: int,
        channels: int,
    ) -> StreamRunner:
        """A runner for one stream, its models loaded and its options checked; close it with ``aclose()``."""
        if self.active_streams >= self.settings.max_streams:
            raise ResourceExhausted(f"the server is at its limit of {self.settings.max_streams} streams")
        self.active_streams += 1  # reserved before the first await, so simultaneous configs cannot all pass
        self.metrics.streams.set(self.active_streams)
        try:
            check_sample_rate(sample_rate)
            candidates = [model_id] if model_id is None or isinstance(model_id, str) else list(model_id)
            engines = await self.engines.load_chain(candidates)
            language = config.options.language
            known = engines[0].capabilities.languages  # empty: the provider documents its own list, it decides
            if language is not None and known and language not in known:
                raise InvalidRequest(f"{engines[0].model_id} does not recognise language {language!r}")
            vad = await anyio.to_thread.run_sync(self.vad)
            semantic = config.turn.mode is TurnMode.SEMANTIC
            turn = await anyio.to_thread.run_sync(self.turn_detector) if semantic else None
            if config.profile:
                await anyio.to_thread.run_sync(self.voice.analyzer)
                await self.load(self.settings.language_id_model)
            encoder = await anyio.to_thread.run_sync(self.voice.speaker_encoder) if config.diarize else None
        except BaseException:
            self._stream_closed()
            raise
        if self._small_models is None:
            self._small_models = anyio.CapacityLimiter(max(1, (self.settings.cpu_threads or 1)))
        runner = StreamRunner(
            config,
            engines=engines,
            scheduler=self.scheduler,
            vad=vad.stream(),
            turn_detector=turn,
            encoding=encoding,
            sample_rate=sample_rate,
            channels=channels,
            small_models=self._small_models,
            batching=self.settings.stream_batching,
            profiler=self.voice.profile if config.profile else None,
            speaker_encoder=encoder,
            limits=StreamLimits(max_seconds=self.settings.stream_max_seconds),
            metrics=self.metrics,
            on_close=self._stream_closed,
        )
        try:
            await runner.start()
        except BaseException:
            await runner.aclose()
            raise
        return runner

    def _stream_closed(self) -> None:
        self.active_streams -= 1
        self.metrics.streams.set(self.active_streams)

    def close(self) -> None:
        self.scheduler.close()
        self.engines.close()
