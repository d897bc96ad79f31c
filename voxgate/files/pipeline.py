"""The one file pipeline: decode lazily into windows, transcribe each on the scheduler, profile and embed its voices
when asked, merge, and fall back to the next model when one fails.

The server's routes await :meth:`FilePipeline.transcribe`; the CLI and the benchmarks call it through
:func:`blocking`, which runs that same coroutine in an event loop of its own.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any, ParamSpec, Protocol, TypeVar

import anyio
import anyio.to_thread

from voxgate.audio.decode import DecodeLimits
from voxgate.config import Settings
from voxgate.engines.base import Engine
from voxgate.engines.fallback import Fallback, with_fallback
from voxgate.engines.pool import EnginePool
from voxgate.files.merge import FileResult, WindowResult, merge_channels, merge_windows
from voxgate.files.source import AudioSource, channel_count, duration_hint, windows
from voxgate.metrics import Metrics
from voxgate.scheduler import Scheduler
from voxgate.types import (
    SAMPLE_RATE,
    Audio,
    DiarizationOptions,
    ProgressCallback,
    Transcript,
    TranscriptionOptions,
    VoiceProfile,
)
from voxgate.voice import Voice, Voices, with_speakers

__all__ = ["Checkpoints", "FilePipeline", "ModelChoice", "blocking"]

P = ParamSpec("P")
R = TypeVar("R")

ModelChoice = str | Sequence[str] | None
"""One model id, an ordered fallback list of them, or None for the default model."""


class Checkpoints(Protocol):
    """Windows an earlier run of the same work already transcribed (an async job run again after its server died).

    Keys name a window by model, channel and offset: windows are cut at the same places every time the same audio is
    decoded, so a window found here need not be transcribed again. Both methods block (run them on a thread)."""

    def load(self, key: str) -> Transcript | None: ...

    def save(self, key: str, transcript: Transcript) -> None: ...


class FilePipeline:
    def __init__(
        self, settings: Settings, engines: EnginePool, scheduler: Scheduler, voice: Voice, metrics: Metrics
    ) -> None:
        self._settings = settings
        self._engines = engines
        self._scheduler = scheduler
        self._voice = voice
        self._metrics = metrics
        self._limits = DecodeLimits.from_settings(settings)
        self._isolated = settings.decode_isolation

    async def transcribe(
        self,
        source: AudioSource,
        options: TranscriptionOptions,
        model_id: ModelChoice = None,
        *,
        profile: bool = False,
        diarize: DiarizationOptions | None = None,
        separate_channels: bool = False,
        progress: ProgressCallback | None = None,
        background: bool = False,
        window_seconds: float | None = None,
        checkpoints: Checkpoints | None = None,
    ) -> FileResult:
        """Transcribe a whole file. ``profile``: a voice profile for the file and each segment; ``diarize``: who spoke
        each word and segment; ``separate_channels``: each channel of a multichannel file transcribed on its own, its
        segments tagged with their channel and merged in time order; ``progress(done, total)`` in seconds of audio.
        ``background``: the scheduler runs this file's work after every stream's and every other file's (async jobs);
        ``window_seconds``: windows of this length instead of the settings' (shorter ones yield the worker sooner);
        ``checkpoints``: each window's transcript is kept there, and one kept by an earlier run is not redone (plain
        transcription only: with a profile or diarization, every window is run).

        ``model_id`` may be an ordered list: when a model fails (a provider error or timeout, a missing key, an
        engine failure), the next one is tried, and the result says so in its warnings.
        """
        candidates: list[str | None] = [model_id] if model_id is None or isinstance(model_id, str) else list(model_id)
        chain = Fallback(candidates or [None])
        how = _How(background, window_seconds or self._settings.window_seconds, checkpoints)

        async def attempt(candidate: str | None) -> FileResult:
            if separate_channels:
                return await self._channels(source, options, candidate, profile, progress, how)
            return await self._file(source, options, candidate, profile, diarize, progress=progress, how=how)

        result = await with_fallback(chain, attempt)
        if not chain.notes:
            return result
        return replace(
            result, transcript=replace(result.transcript, warnings=(*chain.notes, *result.transcript.warnings))
        )

    async def _channels(
        self,
        source: AudioSource,
        options: TranscriptionOptions,
        model_id: str | None,
        profile: bool,
        progress: ProgressCallback | None,
        how: _How,
    ) -> FileResult:
        count = await anyio.to_thread.run_sync(channel_count, source, self._limits, self._isolated)
        results = []
        for channel in range(count):
            report = None
            if progress is not None:  # the channels one after another: one bar across all of them

                def report(done: float, total: float, channel: int = channel) -> None:
                    assert progress is not None
                    progress((channel * total + done) / count, total)

            results.append(await self._file(source, options, model_id, profile, None, channel, report, how))
        return merge_channels(results)

    async def _file(
        self,
        source: AudioSource,
        options: TranscriptionOptions,
        model_id: str | None,
        profile: bool,
        diarize: DiarizationOptions | None,
        channel: int | None = None,
        progress: ProgressCallback | None = None,
        how: _How | None = None,
    ) -> FileResult:
        how = how or _How(False, self._settings.window_seconds, None)
        kept = how.checkpoints if not profile and diarize is None else None
        engine = await self._engines.load(model_id)
        if profile:
            await self._engines.load(self._voice.language_id_model)
        if diarize is not None:
            await anyio.to_thread.run_sync(self._voice.speaker_encoder)
            options = replace(options, word_timestamps=True)  # chunks follow the words; the caller may drop them
        total = 0.0
        if progress is not None:
            total = await anyio.to_thread.run_sync(duration_hint, source, self._limits, self._isolated)
        pieces = windows(source, how.window_seconds, channel, self._limits, self._isolated)
        parts: list[WindowResult] = []
        voices: list[Voices] = []
        try:
            while (item := await anyio.to_thread.run_sync(next, pieces, None)) is not None:
                offset, audio = item
                key = f"{engine.model_id}/{'-' if channel is None else channel}/{offset}"
                result = await anyio.to_thread.run_sync(kept.load, key) if kept is not None else None
                if result is None:
                    work = functools.partial(self._run_window, engine, audio, options)
                    result = await self._scheduler.run(
                        work, remote=engine.capabilities.remote, background=how.background
                    )
                    if kept is not None:
                        await anyio.to_thread.run_sync(kept.save, key, result)
                profiles: tuple[VoiceProfile | None, ...] = ()
                if profile:
                    profiles = await self._scheduler.run(
                        functools.partial(self._voice.segment_profiles, audio, result, options.language),
                        background=how.background,
                    )
                if diarize is not None:
                    work_voices = functools.partial(self._voice.window_voices, audio, result, profile, options.language)
                    voices.append(await self._scheduler.run(work_voices, background=how.background))
                parts.append(WindowResult(offset, result, profiles))
                if progress is not None:
                    progress((offset + len(audio)) / SAMPLE_RATE, total)
        finally:
            # The decoder (a worker process when isolated) goes back now, not whenever the generator is collected:
            # a failed or cancelled request must not hold it.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(pieces.close)
        merged = merge_windows(parts, engine.model_id)
        if channel is not None:
            segments = tuple(replace(s, channel=channel + 1) for s in merged.transcript.segments)
            merged = replace(merged, transcript=replace(merged.transcript, segments=segments))
        if diarize is None:
            return merged
        return with_speakers(merged, parts, voices, diarize)

    def _run_window(self, engine: Engine, audio: Audio, options: TranscriptionOptions) -> Transcript:
        started = time.perf_counter()
        result = engine.transcribe(audio, options)
        self._metrics.inference_seconds.labels(engine.model_id).observe(time.perf_counter() - started)
        self._metrics.audio_seconds.labels(engine.model_id).inc(len(audio) / SAMPLE_RATE)
        return result


@dataclass(frozen=True, slots=True)
class _How:
    """How one file's work is scheduled: its priority, its window length, where its windows are kept."""

    background: bool
    window_seconds: float
    checkpoints: Checkpoints | None


def blocking(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """``fn`` for synchronous callers (a thread with no running event loop): each call runs it to completion in an
    event loop of its own."""

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        return anyio.run(functools.partial(fn, *args, **kwargs))

    return call
