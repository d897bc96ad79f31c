"""voxgate's own result and option types. Engines return these, never a vendor's.

Times are seconds (float) relative to the start of the audio the caller gave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

__all__ = [
    "SAMPLE_RATE",
    "Audio",
    "DiarizationOptions",
    "LanguageScore",
    "ProgressCallback",
    "Segment",
    "Speakers",
    "Transcript",
    "TranscriptionOptions",
    "Word",
]

SAMPLE_RATE = 16_000
"""Every engine consumes float32 mono audio at this rate."""

Audio = npt.NDArray[np.float32]
ProgressCallback = Callable[[float, float], None]
"""Called with (seconds of audio done, seconds of audio in total or 0 when unknown)."""


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True, slots=True)
class LanguageScore:
    code: str
    probability: float


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()
    language: str | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    language_scores: tuple[LanguageScore, ...] = ()
    """Language-ID scores over this segment's audio, most likely first, when the engine identified it on its own."""
    channel: int | None = None
    """1-based channel of a multichannel file transcribed channel by channel (None: the channels mixed down)."""

    def shifted(self, offset: float) -> Segment:
        """The same segment with every time moved by ``offset`` seconds."""
        return replace(
            self,
            start=self.start + offset,
            end=self.end + offset,
            words=tuple(Word(w.word, w.start + offset, w.end + offset, w.confidence) for w in self.words),
        )


@dataclass(frozen=True, slots=True)
class Transcript:
    segments: tuple[Segment, ...]
    duration: float
    language: str | None = None
    language_probability: float | None = None
    language_candidates: tuple[LanguageScore, ...] = ()
    model_id: str = ""
    warnings: tuple[str, ...] = ()
    """Options the engine could not honour, fallbacks taken: said, never silently dropped."""

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)


@dataclass(frozen=True, slots=True)
class DiarizationOptions:
    """Ask for who spoke when (``analysis/diarize.py``): the speaker count is found between these bounds."""

    min_speakers: int = 1
    max_speakers: int = 8


@dataclass(frozen=True, slots=True)
class Speakers:
    """Who spoke: a speaker number (1, 2, ...) per word of the transcript and per segment (the one heard longest)."""

    words: tuple[int, ...]
    segments: tuple[int | None, ...]
    count: int


@dataclass(frozen=True, slots=True)
class TranscriptionOptions:
    """What a caller may ask of any engine. Engines that cannot honour an option say so, never drop it silently."""

    language: str | None = None
    """ISO 639-1 code (``en``), or None to detect."""
    prompts: tuple[str, ...] = ()
    """Custom vocabulary: terms and phrases the decoder should prefer."""
    prompt: str | None = None
    """Free-text context (OpenAI's ``prompt``): previous text, spelling examples."""
    word_timestamps: bool = True
    task: str = "transcribe"
    """``transcribe`` or ``translate`` (to English)."""
    temperature: float = 0.0
    beam_size: int = 5
    vad_filter: bool = True
