"""Voice work beside transcription: voice profiles (of a clip, of a file's segments) and speakers (a file's chunks of
one voice, their embeddings, clustered into speakers with their own merged profiles).

Everything here blocks: the file pipeline and the stream runner run it on the scheduler (profiles) or the small-model
pool (embeddings).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from voxgate.analysis.diarize import Chunk, assign, chunks_of, clip_of, cluster
from voxgate.analysis.heads import load_heads
from voxgate.analysis.profile import OnnxClassifier, ProfileAnalyzer, VoiceProfile, merge_profiles
from voxgate.analysis.speaker import SpeakerEncoder
from voxgate.config import Settings
from voxgate.engines.base import Engine, LanguageIdentifier, Listening, VoiceEncoder
from voxgate.engines.pool import EnginePool, Lazy
from voxgate.errors import ModelUnavailable
from voxgate.files.merge import FileResult, WindowResult
from voxgate.types import SAMPLE_RATE, Audio, DiarizationOptions, LanguageScore, Segment, Transcript, Word

__all__ = ["HEADS_SECONDS", "Voice", "Voices", "with_speakers"]

HEADS_SECONDS = 4.0
"""Seconds of a stretch's most recent audio the voice-profile heads' encoders hear (when no pass over all of it is
made anyway): a bound on their cost per profile. The heads were trained on clips of 1.8-10.3 s (median 3.9 s); heard
only through their last 4 s, the held-out speakers score the same (emotion 67.2 % UAR instead of 67.7 %, gender
96.2 % instead of 96.3 %, age 58.1 % instead of 56.7 %)."""


@dataclass(frozen=True, slots=True)
class Voices:
    """One window's chunks of one voice, their embeddings and (when profiled) their voice profiles."""

    chunks: list[Chunk]
    embeddings: npt.NDArray[np.float32]
    profiles: tuple[VoiceProfile | None, ...]


class Voice:
    """The voice-profile analyzer and the speaker encoder (each loaded on first use), and what they measure."""

    def __init__(self, settings: Settings, engines: EnginePool, lock: threading.Lock) -> None:
        self._settings = settings
        self._engines = engines
        self.analyzer = Lazy(self._make_analyzer, lock)
        """The shared voice-profile analyzer (with the configured ONNX overrides)."""
        self.speaker_encoder = Lazy(SpeakerEncoder.load, lock)
        """The shared speaker encoder (diarization)."""

    def _make_analyzer(self) -> ProfileAnalyzer:
        overrides = {dim: OnnxClassifier(m.path, m.labels) for dim, m in self._settings.profile_models.items()}
        return ProfileAnalyzer(overrides, load_heads(self._settings.profile_heads))

    @property
    def language_id_model(self) -> str:
        return self._settings.language_id_model

    def profile(
        self,
        audio: Audio,
        *,
        text: str = "",
        words: Sequence[Word] = (),
        language: str | None = None,
        identified: Sequence[LanguageScore] = (),
        speaker_embedding: npt.NDArray[np.float32] | None = None,
    ) -> VoiceProfile:
        """A voice profile of ``audio``: language ID, then the analyzers.

        ``identified``: language-ID scores the language-ID model already gave for this same audio (reused, not redone).
        When the heads read the language-ID model's encoder, one encoder pass serves both. ``speaker_embedding``: the
        speaker encoder's embedding of this same audio, when diarization already made it.
        """
        lid = self._engines.get(self.language_id_model)
        passes: dict[str, Listening] = {}

        def listen(engine: Engine, clip: Audio) -> Listening:
            if engine.model_id not in passes:
                if not isinstance(engine, VoiceEncoder):
                    raise ModelUnavailable(f"{engine.model_id} cannot serve the voice-profile heads")
                passes[engine.model_id] = engine.listen(clip)
            return passes[engine.model_id]

        detect: Callable[[Audio], Sequence[LanguageScore]]
        if identified:
            detect = _answer(tuple(identified))
        elif isinstance(lid, VoiceEncoder):
            detect = lambda clip: listen(lid, clip).language  # noqa: E731
        elif isinstance(lid, LanguageIdentifier):
            detect = lid.detect_language
        else:
            raise ModelUnavailable(f"{lid.model_id} cannot identify languages; set VOXGATE_LANGUAGE_ID_MODEL")

        def hear(clip: Audio, needs: frozenset[str]) -> dict[str, npt.NDArray[np.floating]]:
            # The heads hear the last HEADS_SECONDS of a longer stretch (a stream's or a file's profile averages its
            # stretches), unless an encoder pass over all of it is made anyway (language ID) or an embedding of it is
            # already known (diarization).
            recent = clip[-int(HEADS_SECONDS * SAMPLE_RATE) :]
            parts: dict[str, npt.NDArray[np.floating]] = {}
            for name in needs:
                if name == "speaker":
                    if speaker_embedding is not None and clip is audio:
                        parts[name] = speaker_embedding
                    else:
                        parts[name] = self.speaker_encoder().embed([recent])[0]
                else:
                    engine = self._engines.get(name)
                    parts[name] = listen(engine, clip if engine.model_id in passes else recent).embedding
            return parts

        return self.analyzer().analyze(
            audio, words=words, text=text, identify=detect, spoken_language=language, hear=hear
        )

    def segment_profiles(
        self, audio: Audio, result: Transcript, language: str | None
    ) -> tuple[VoiceProfile | None, ...]:
        """A profile of each segment of a window's transcript (None where a segment is too short to measure)."""
        reuse = self._reuses_language_id(result)
        return tuple(
            self._stretch_profile(audio, s.start, s.end, s.text, s.words, s, language, reuse) for s in result.segments
        )

    def window_voices(self, audio: Audio, result: Transcript, profile: bool, language: str | None) -> Voices:
        """A window's chunks of one voice, their speaker embeddings and, with ``profile``, each chunk's voice profile
        (for per-speaker profiles)."""
        chunks = chunks_of(result.segments)
        if not chunks:
            return Voices([], np.zeros((0, SpeakerEncoder.size), dtype=np.float32), ())
        embeddings = self.speaker_encoder().embed([clip_of(audio, c) for c in chunks])
        if not profile:
            return Voices(chunks, embeddings, ())
        reuse = self._reuses_language_id(result)
        words = result.words
        profiles: list[VoiceProfile | None] = []
        for chunk, embedding in zip(chunks, embeddings, strict=True):
            held = [words[i] for i in chunk.words]
            text = " ".join(w.word for w in held)
            segment = result.segments[chunk.segment]
            profiles.append(
                self._stretch_profile(
                    audio, chunk.start, chunk.end, text, held, segment, language, reuse, speaker_embedding=embedding
                )
            )
        return Voices(chunks, embeddings, tuple(profiles))

    def _reuses_language_id(self, result: Transcript) -> bool:
        """Whether ``result`` came from the language-ID model: then its per-segment scores are the profile's."""
        return result.model_id == self._engines.get(self.language_id_model).model_id

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
        speaker_embedding: npt.NDArray[np.float32] | None = None,
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
        return self.profile(
            clip,
            text=text,
            words=moved,
            language=language or segment.language,
            identified=identified,
            speaker_embedding=speaker_embedding,
        )


def with_speakers(
    merged: FileResult, parts: Sequence[WindowResult], voices: Sequence[Voices], options: DiarizationOptions
) -> FileResult:
    """Cluster every window's chunks together, hand the speakers to the merged transcript's words and segments, and
    merge each speaker's chunk profiles into the speaker's own."""
    chunks: list[Chunk] = []
    words = segments = 0
    for part, window in zip(parts, voices, strict=True):
        chunks.extend(c.shifted(part.offset / SAMPLE_RATE, segments, words) for c in window.chunks)
        words += len(part.transcript.words)
        segments += len(part.transcript.segments)
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
