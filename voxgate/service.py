"""The façade the server and the CLI share: models, engines, the scheduler and file transcription."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
import anyio.to_thread
import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from voxgate.analysis.diarize import Chunk, assign, chunks_of, clip_of, cluster
from voxgate.analysis.profile import OnnxClassifier, ProfileAnalyzer, VoiceProfile, merge_profiles
from voxgate.analysis.speaker import SpeakerEncoder
from voxgate.analysis.turn import TurnDetector
from voxgate.analysis.vad import SileroVad
from voxgate.audio.decode import iter_decode, probe
from voxgate.audio.pcm import PcmEncoding, check_sample_rate, decode_pcm
from voxgate.audio.windows import iter_windows
from voxgate.config import Settings
from voxgate.engines.base import Engine, LanguageIdentifier
from voxgate.engines.registry import load_engine
from voxgate.errors import (
    AudioDecodeError,
    EmptyAudio,
    EngineError,
    InvalidRequest,
    ModelUnavailable,
    ResourceExhausted,
    Timeout,
)
from voxgate.metrics import Metrics
from voxgate.models.catalog import ALIASES, PROVIDERS, ModelSpec, listed, resolve
from voxgate.protocol.ws import TurnMode
from voxgate.scheduler import Scheduler
from voxgate.streaming.runner import StreamRunner
from voxgate.streaming.session import SessionConfig
from voxgate.types import (
    SAMPLE_RATE,
    Audio,
    DiarizationOptions,
    LanguageScore,
    ProgressCallback,
    Segment,
    Speakers,
    Transcript,
    TranscriptionOptions,
    Word,
)

__all__ = ["FileResult", "ModelInfo", "RawAudio", "Service"]

log = logging.getLogger(__name__)

_DECODE_CHUNK_SECONDS = 30.0
_REMOTE_CALLS = 16
"""Cloud-provider calls in flight at once (threads blocked on the network)."""


@dataclass(frozen=True, slots=True)
class RawAudio:
    """Headerless PCM: the caller says how to read it."""

    data: bytes
    encoding: PcmEncoding
    sample_rate: int
    channels: int = 1


AudioSource = bytes | Path | RawAudio


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    languages: tuple[str, ...]
    multilingual: bool
    size_bytes: int
    source: str
    loaded: bool
    default: bool
    aliases: tuple[str, ...]
    remote: bool = False
    configured: bool = True
    """A cloud model's key is set (or a local engine's package is installed)."""


class Service:
    def __init__(self, settings: Settings, *, metrics: Metrics | None = None) -> None:
        self.settings = settings
        if settings.blas_threads:
            threadpool_limits(limits=settings.blas_threads, user_api="blas")
        self.metrics = metrics or Metrics()
        self.scheduler = Scheduler()
        self._engines: dict[str, Engine] = {}
        self._load_lock = threading.Lock()
        self._vad: SileroVad | None = None
        self._turn: TurnDetector | None = None
        self._speaker_encoder: SpeakerEncoder | None = None
        self._small_models: anyio.CapacityLimiter | None = None
        self._profiler: ProfileAnalyzer | None = None
        self._remote_calls: anyio.CapacityLimiter | None = None
        self.active_streams = 0

    # -- models ---------------------------------------------------------------------------------------------------

    def resolve(self, model_id: str | None) -> ModelSpec:
        return resolve(model_id or "", self.settings.default_model)

    def list_models(self) -> list[ModelInfo]:
        default = self.resolve(None).id
        specs = listed(self.settings.default_model)
        return [
            ModelInfo(
                id=s.id,
                languages=s.languages,
                multilingual=s.multilingual,
                size_bytes=s.size_bytes,
                source=s.source,
                loaded=s.id in self._engines,
                default=s.id == default,
                aliases=tuple(a for a in ALIASES if s.id == default),
                remote=s.remote,
                configured=self._configured(s),
            )
            for s in specs
        ]

    async def _open_engines(self, model_id: str | Sequence[str] | None) -> list[Engine]:
        """The engines of a stream: the first that opens serves it, those after it are its fallbacks."""
        candidates: list[str | None] = [model_id] if model_id is None or isinstance(model_id, str) else list(model_id)
        engines: list[Engine] = []
        for i, candidate in enumerate(candidates or [None]):
            try:
                engines.append(await self.load(candidate))
            except (ModelUnavailable, EngineError) as exc:
                if not engines and i == len(candidates) - 1:
                    raise
                log.warning("stream fallback: %s cannot be opened: %s", candidate, exc)
        return engines

    def _configured(self, spec: ModelSpec) -> bool:
        return PROVIDERS[spec.provider].configured(self.settings, spec)

    def engine(self, model_id: str | None) -> Engine:
        """The loaded engine for ``model_id``, loading it on first use (blocking)."""
        spec = self.resolve(model_id)
        engine = self._engines.get(spec.id)
        if engine is not None:
            return engine
        with self._load_lock:
            engine = self._engines.get(spec.id)
            if engine is None:
                started = time.perf_counter()
                engine = load_engine(spec, self.settings)
                elapsed = time.perf_counter() - started
                log.info("loaded %s in %.2f s", spec.id, elapsed)
                self.metrics.model_load_seconds.labels(spec.id).set(elapsed)
                self._engines[spec.id] = engine
                self.metrics.models_loaded.set(len(self._engines))
        return engine

    async def load(self, model_id: str | None) -> Engine:
        """:meth:`engine` off the event loop."""
        return await anyio.to_thread.run_sync(self.engine, model_id)

    def preload(self) -> None:
        for model_id in self.settings.preload:
            self.engine(None if model_id == "default" else model_id)
        if self.settings.preload:
            self.vad()
            self.turn_detector()

    def profile_analyzer(self) -> ProfileAnalyzer:
        """The shared voice-profile analyzer (with the configured ONNX overrides)."""
        with self._load_lock:
            if self._profiler is None:
                overrides = {
                    dim: OnnxClassifier(spec.path, spec.labels) for dim, spec in self.settings.profile_models.items()
                }
                self._profiler = ProfileAnalyzer(overrides)
            return self._profiler

    def profile(
        self,
        audio: Audio,
        *,
        text: str = "",
        words: Sequence[Word] = (),
        language: str | None = None,
        identified: Sequence[LanguageScore] = (),
    ) -> VoiceProfile:
        """A voice profile of ``audio`` (blocking; run it on the scheduler): language ID, then the analyzers.

        ``identified``: language-ID scores the language-ID model already gave for this same audio (reused, not redone).
        """
        lid = self.engine(self.settings.language_id_model)
        detect = (
            _answer(tuple(identified))
            if identified
            else lid.detect_language
            if isinstance(lid, LanguageIdentifier)
            else None
        )
        if detect is None:
            raise ModelUnavailable(f"{lid.model_id} cannot identify languages; set VOXGATE_LANGUAGE_ID_MODEL")
        return self.profile_analyzer().analyze(audio, words=words, text=text, identify=detect, spoken_language=language)

    def vad(self) -> SileroVad:
        """The shared Silero VAD model (each stream gets its own state from it)."""
        with self._load_lock:
            if self._vad is None:
                self._vad = SileroVad.load()
            return self._vad

    def turn_detector(self) -> TurnDetector:
        """The shared smart-turn model."""
        with self._load_lock:
            if self._turn is None:
                self._turn = TurnDetector.load()
            return self._turn

    def speaker_encoder(self) -> SpeakerEncoder:
        """The shared speaker encoder (diarization)."""
        with self._load_lock:
            if self._speaker_encoder is None:
                self._speaker_encoder = SpeakerEncoder.load()
            return self._speaker_encoder

    def _window_voices(self, audio: Audio, result: Transcript, profile: bool, language: str | None) -> Voices:
        """A window's chunks of one voice, their speaker embeddings and, with ``profile``, each chunk's voice profile
        (for per-speaker profiles). Blocking; run it on the scheduler."""
        chunks = chunks_of(result.segments)
        if not chunks:
            return Voices([], np.zeros((0, SpeakerEncoder.size), dtype=np.float32), ())
        embeddings = self.speaker_encoder().embed([clip_of(audio, c) for c in chunks])
        if not profile:
            return Voices(chunks, embeddings, ())
        reuse = self._reuses_language_id(result)
        words = result.words
        profiles: list[VoiceProfile | None] = []
        for chunk in chunks:
            held = [words[i] for i in chunk.words]
            text = " ".join(w.word for w in held)
            segment = result.segments[chunk.segment]
            profiles.append(self._stretch_profile(audio, chunk.start, chunk.end, text, held, segment, language, reuse))
        return Voices(chunks, embeddings, tuple(profiles))

    # -- streams --------------------------------------------------------------------------------------------------

    async def open_stream(
        self,
        model_id: str | Sequence[str] | None,
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
            engines = await self._open_engines(model_id)
            engine = engines[0]
            language = config.options.language
            known = engine.capabilities.languages  # empty: the provider documents its own list, it decides
            if language is not None and known and language not in known:
                raise InvalidRequest(f"{engine.model_id} does not recognise language {language!r}")
            vad = await anyio.to_thread.run_sync(self.vad)
            semantic = config.turn.mode is TurnMode.SEMANTIC
            turn = await anyio.to_thread.run_sync(self.turn_detector) if semantic else None
            if config.profile:
                await anyio.to_thread.run_sync(self.profile_analyzer)
                await self.load(self.settings.language_id_model)
            encoder = await anyio.to_thread.run_sync(self.speaker_encoder) if config.diarize else None
        except BaseException:
            self.active_streams -= 1
            self.metrics.streams.set(self.active_streams)
            raise
        if self._small_models is None:
            self._small_models = anyio.CapacityLimiter(max(1, (self.settings.cpu_threads or 1)))

        def closed() -> None:
            self.active_streams -= 1
            self.metrics.streams.set(self.active_streams)

        runner = StreamRunner(
            config,
            engine=engine,
            fallbacks=engines[1:],
            scheduler=self.scheduler,
            vad=vad.stream(),
            turn_detector=turn,
            encoding=encoding,
            sample_rate=sample_rate,
            channels=channels,
            small_models=self._small_models,
            batching=self.settings.stream_batching,
            profiler=self.profile if config.profile else None,
            speaker_encoder=encoder,
            on_close=closed,
        )
        try:
            await runner.start()
        except BaseException:
            await runner.aclose()
            raise
        return runner

    def close(self) -> None:
        self.scheduler.close()
        for engine in self._engines.values():
            engine.close()
        self._engines.clear()

    # -- files ----------------------------------------------------------------------------------------------------

    def duration_hint(self, source: AudioSource) -> float:
        """Seconds of audio in ``source`` if its header says so, else 0."""
        if isinstance(source, RawAudio):
            return (
                len(source.data)
                / (2 if source.encoding is PcmEncoding.LINEAR16 else 1)
                / source.channels
                / (source.sample_rate or 1)
            )
        try:
            return probe(source).duration or 0.0
        except (AudioDecodeError, EmptyAudio):
            return 0.0  # decoding proper reports the problem

    def windows(self, source: AudioSource, channel: int | None = None) -> Iterator[tuple[int, Audio]]:
        """Decode ``source`` lazily into 16 kHz windows cut at quiet points (its downmix, or one 0-based channel)."""
        chunks: Iterator[Audio]
        if isinstance(source, RawAudio):
            chunks = iter([decode_pcm(source.data, source.encoding, source.sample_rate, source.channels, channel)])
        else:
            chunks = iter_decode(source, chunk_seconds=_DECODE_CHUNK_SECONDS, channel=channel)
        return iter_windows(chunks, window_seconds=self.settings.window_seconds)

    @staticmethod
    def channel_count(source: AudioSource) -> int:
        """How many channels ``source`` has (its header's word for a container)."""
        return source.channels if isinstance(source, RawAudio) else probe(source).channels

    def _run_window(self, engine: Engine, audio: Audio, options: TranscriptionOptions) -> Transcript:
        started = time.perf_counter()
        result = engine.transcribe(audio, options)
        self.metrics.inference_seconds.labels(engine.model_id).observe(time.perf_counter() - started)
        self.metrics.audio_seconds.labels(engine.model_id).inc(len(audio) / SAMPLE_RATE)
        return result

    def _reuses_language_id(self, result: Transcript) -> bool:
        """Whether ``result`` came from the language-ID model: then its per-segment scores are the profile's."""
        return result.model_id == self.engine(self.settings.language_id_model).model_id

    def _window_profiles(
        self, audio: Audio, result: Transcript, language: str | None
    ) -> tuple[VoiceProfile | None, ...]:
        reuse = self._reuses_language_id(result)
        return tuple(
            self._stretch_profile(audio, s.start, s.end, s.text, s.words, s, language, reuse) for s in result.segments
        )

    def _stretch_profile(
        self,
        audio: Audio,
        start: float,
        end: float,
        text: str,
        words: Sequence[Word],
        segment: Segment,
        language: str | None,
        reuse_scores: bool,
    ) -> VoiceProfile | None:
        """The profile of ``audio`` from ``start`` to ``end`` seconds (all of ``segment`` or part of it) with its
        words, or None when under 0.25 s. ``reuse_scores``: take the segment's language-ID scores instead of
        identifying the language again."""
        clip = audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        if len(clip) < SAMPLE_RATE // 4:
            return None
        # The clip starts at ``start``: its words' times must too.
        moved = tuple(Word(w.word, w.start - start, w.end - start, w.confidence) for w in words)
        identified = segment.language_scores if reuse_scores else ()
        return self.profile(clip, text=text, words=moved, language=language or segment.language, identified=identified)

    def transcribe_sync(
        self,
        source: AudioSource,
        options: TranscriptionOptions,
        model_id: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Transcript:
        """Transcribe a whole file in this thread (the CLI's path)."""
        return self.transcribe_file_sync(source, options, model_id, progress).transcript

    def transcribe_file_sync(
        self,
        source: AudioSource,
        options: TranscriptionOptions,
        model_id: str | None = None,
        progress: ProgressCallback | None = None,
        *,
        diarize: DiarizationOptions | None = None,
    ) -> FileResult:
        """:meth:`transcribe_sync`, with who spoke each word and segment when ``diarize`` is given."""
        engine = self.engine(model_id)
        if diarize is not None:
            options = replace(options, word_timestamps=True)
        total = self.duration_hint(source)
        parts = []
        voices = []
        for offset, audio in self.windows(source):
            result = self._run_window(engine, audio, options)
            if diarize is not None:
                voices.append(self._window_voices(audio, result, False, options.language))
            parts.append((offset, result, ()))
            if progress is not None:
                progress((offset + len(audio)) / SAMPLE_RATE, total)
        merged = merge_windows(parts, engine.model_id)
        return merged if diarize is None else _with_speakers(merged, parts, voices, diarize)

    async def transcribe(
        self, source: AudioSource, options: TranscriptionOptions, model_id: str | None = None
    ) -> Transcript:
        """Transcribe a whole file; decoding runs in a thread, each window is one job on the scheduler."""
        return (await self.transcribe_file(source, options, model_id)).transcript

    async def transcribe_file(
        self,
        source: AudioSource,
        options: TranscriptionOptions,
        model_id: str | Sequence[str] | None = None,
        *,
        profile: bool = False,
        diarize: DiarizationOptions | None = None,
        separate_channels: bool = False,
    ) -> FileResult:
        """:meth:`transcribe`, with a voice profile for the file and each segment when ``profile`` is set, and who
        spoke each word and segment when ``diarize`` is given. ``separate_channels``: every channel of a multichannel
        file is transcribed on its own, its segments tagged with their channel and merged in time order.

        ``model_id`` may be an ordered list: when a model fails (a provider error or timeout, a missing key, an
        engine failure), the next one is tried, and the result says so in its warnings.
        """
        candidates: list[str | None] = [model_id] if model_id is None or isinstance(model_id, str) else list(model_id)
        if not candidates:
            candidates = [None]
        notes: list[str] = []
        for i, candidate in enumerate(candidates):
            try:
                if separate_channels:
                    result = await self._transcribe_channels(source, options, candidate, profile)
                else:
                    result = await self._transcribe_file(source, options, candidate, profile, diarize)
            except (EngineError, ModelUnavailable, Timeout) as exc:
                if i == len(candidates) - 1:
                    raise
                notes.append(f"{candidate}: {exc.code}: {exc.message}; fell back to {candidates[i + 1]}")
                log.warning("falling back from %s: %s", candidate, exc)
                continue
            if notes:
                transcript = replace(result.transcript, warnings=(*notes, *result.transcript.warnings))
                result = replace(result, transcript=transcript)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _transcribe_channels(
        self, source: AudioSource, options: TranscriptionOptions, model_id: str | None, profile: bool
    ) -> FileResult:
        count = await anyio.to_thread.run_sync(self.channel_count, source)
        results = [
            await self._transcribe_file(source, options, model_id, profile, None, channel) for channel in range(count)
        ]
        return merge_channels(results)

    async def _transcribe_file(
        self,
        source: AudioSource,
        options: TranscriptionOptions,
        model_id: str | None,
        profile: bool,
        diarize: DiarizationOptions | None,
        channel: int | None = None,
    ) -> FileResult:
        engine = await self.load(model_id)
        if profile:
            await self.load(self.settings.language_id_model)
        if diarize is not None:
            await anyio.to_thread.run_sync(self.speaker_encoder)
            options = replace(options, word_timestamps=True)  # chunks follow the words; the caller may drop them
        windows = self.windows(source, channel)
        parts = []
        voices: list[Voices] = []
        while (item := await anyio.to_thread.run_sync(next, windows, None)) is not None:
            offset, audio = item
            work = functools.partial(self._run_window, engine, audio, options)
            if engine.capabilities.remote:  # network-bound: the I/O pool, not the inference worker
                if self._remote_calls is None:
                    self._remote_calls = anyio.CapacityLimiter(_REMOTE_CALLS)
                result = await anyio.to_thread.run_sync(work, limiter=self._remote_calls)
            else:
                result = await self.scheduler.run(work)
            profiles: tuple[VoiceProfile | None, ...] = ()
            if profile:
                work_profiles = functools.partial(self._window_profiles, audio, result, options.language)
                profiles = await self.scheduler.run(work_profiles)
            if diarize is not None:
                work_voices = functools.partial(self._window_voices, audio, result, profile, options.language)
                voices.append(await self.scheduler.run(work_voices))
            parts.append((offset, result, profiles))
        merged = merge_windows(parts, engine.model_id)
        if channel is not None:
            segments = tuple(replace(s, channel=channel + 1) for s in merged.transcript.segments)
            merged = replace(merged, transcript=replace(merged.transcript, segments=segments))
        if diarize is None:
            return merged
        return _with_speakers(merged, parts, voices, diarize)


@dataclass(frozen=True, slots=True)
class Voices:
    """One window's chunks of one voice, their embeddings and (when profiled) their voice profiles."""

    chunks: list[Chunk]
    embeddings: npt.NDArray[np.float32]
    profiles: tuple[VoiceProfile | None, ...]


def _with_speakers(
    merged: FileResult,
    parts: Sequence[tuple[int, Transcript, tuple[VoiceProfile | None, ...]]],
    voices: Sequence[Voices],
    options: DiarizationOptions,
) -> FileResult:
    """Cluster every window's chunks together, hand the speakers to the merged transcript's words and segments, and
    merge each speaker's chunk profiles into the speaker's own."""
    chunks: list[Chunk] = []
    words = segments = 0
    for (offset, part, _), window in zip(parts, voices, strict=True):
        chunks.extend(c.shifted(offset / SAMPLE_RATE, segments, words) for c in window.chunks)
        words += len(part.words)
        segments += len(part.segments)
    vectors = [v.embeddings for v in voices if len(v.embeddings)]
    embeddings = np.concatenate(vectors) if vectors else np.zeros((0, SpeakerEncoder.size), dtype=np.float32)
    speakers = cluster(embeddings, [c.seconds for c in chunks], options)
    profiles = [p for v in voices for p in v.profiles]
    by_speaker: dict[int, list[VoiceProfile]] = {}
    for speaker, profile in zip(speakers, profiles, strict=False):  # no profiles at all when none was asked for
        if profile is not None:
            by_speaker.setdefault(speaker, []).append(profile)
    speaker_profiles = {k: p for k, group in sorted(by_speaker.items()) if (p := merge_profiles(group)) is not None}
    who = assign(chunks, speakers, words=words, segments=segments)
    return replace(merged, speakers=who, speaker_profiles=speaker_profiles)


def _answer(scores: tuple[LanguageScore, ...]) -> Callable[[Audio], Sequence[LanguageScore]]:
    """A language identifier that already knows its answer (the analyzer still decides whether to ask it)."""

    def identify(_audio: Audio) -> Sequence[LanguageScore]:
        return scores

    return identify


@dataclass(frozen=True, slots=True)
class FileResult:
    transcript: Transcript
    profile: VoiceProfile | None = None
    """The whole file's voice profile (segments merged, weighted by speech)."""
    segment_profiles: tuple[VoiceProfile | None, ...] = ()
    """One per segment of the transcript, in order (None for segments too short to measure)."""
    speakers: Speakers | None = None
    """Who spoke each word and segment, when diarization was asked for."""
    speaker_profiles: dict[int, VoiceProfile] = field(default_factory=dict)
    """Each speaker's voice profile (their chunks merged), when diarization and a profile were both asked for."""


def merge_channels(results: Sequence[FileResult]) -> FileResult:
    """One result from each channel's (segments tagged with their channel): segments in time order, the language of
    the channel that spoke most, the longest duration, every channel's warnings."""
    ordered = sorted(
        ((s, p) for r in results for s, p in zip(r.transcript.segments, r.segment_profiles or _nones(r), strict=True)),
        key=lambda sp: (sp[0].start, sp[0].channel or 0),
    )
    main = max(results, key=lambda r: sum(s.end - s.start for s in r.transcript.segments)).transcript
    transcript = replace(
        main,
        segments=tuple(s for s, _ in ordered),
        duration=max(r.transcript.duration for r in results),
        warnings=tuple(dict.fromkeys(w for r in results for w in r.transcript.warnings)),
    )
    profiles = tuple(p for _, p in ordered)
    if not any(r.segment_profiles for r in results):
        return FileResult(transcript)
    return FileResult(transcript, merge_profiles([p for p in profiles if p is not None]), profiles)


def _nones(result: FileResult) -> tuple[None, ...]:
    return (None,) * len(result.transcript.segments)


def merge_windows(
    parts: Sequence[tuple[int, Transcript, tuple[VoiceProfile | None, ...]]], model_id: str
) -> FileResult:
    """Join per-window transcripts into one, moving every time by its window's offset."""
    if not parts:
        raise EmptyAudio("the audio contains no samples")
    segments: list[Segment] = []
    profiles: list[VoiceProfile | None] = []
    for offset, part, part_profiles in parts:
        segments.extend(s.shifted(offset / SAMPLE_RATE) for s in part.segments)
        profiles.extend(part_profiles)
    first = parts[0][1]
    last_offset, last, _ = parts[-1]
    warnings = tuple(dict.fromkeys(w for _, part, _ in parts for w in part.warnings))
    transcript = Transcript(
        segments=tuple(segments),
        warnings=warnings,
        duration=last_offset / SAMPLE_RATE + last.duration,
        language=first.language,
        language_probability=first.language_probability,
        language_candidates=first.language_candidates,
        model_id=model_id,
    )
    measured = [p for p in profiles if p is not None]
    return FileResult(transcript, merge_profiles(measured), tuple(profiles))
