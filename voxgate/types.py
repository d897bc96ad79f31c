"""voxgate's own result and option types. Engines return these, never a vendor's.

Times are seconds (float) relative to the start of the audio the caller gave.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "DIMENSIONS",
    "SAMPLE_RATE",
    "AssemblyAIOptions",
    "Audio",
    "DeepgramOptions",
    "DiarizationOptions",
    "GroqOptions",
    "LabelScore",
    "Labels",
    "LanguageScore",
    "ProgressCallback",
    "Segment",
    "SonioxOptions",
    "Speakers",
    "Transcript",
    "TranscriptionOptions",
    "VendorOptions",
    "VoiceFeatures",
    "VoiceProfile",
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


# -- one cloud vendor's own settings -------------------------------------------------------------------------------
# A request may carry settings for one vendor (the reference API's provider blocks). They travel with the options to
# every engine of the request's fallback list; only an engine of that vendor reads them (``provider`` names it), the
# others go on without. None means "not given": the adapter keeps its own default.


@dataclass(frozen=True, slots=True)
class DeepgramOptions:
    provider: ClassVar[str] = "deepgram"
    keyterms: tuple[str, ...] = ()
    """Terms to boost, added to the vocabulary (``keyterm`` on Nova-3, ``keywords`` on older models)."""
    smart_format: bool | None = None
    punctuate: bool | None = None
    profanity_filter: bool | None = None
    filler_words: bool | None = None
    numerals: bool | None = None
    endpointing: int | None = None
    """Live socket only: milliseconds of silence after which Deepgram marks speech final (0: off)."""


@dataclass(frozen=True, slots=True)
class AssemblyAIOptions:
    """(The block's turn silences are voxgate's turn policy: voxgate decides a stream's turns, whatever the vendor.)"""

    provider: ClassVar[str] = "assemblyai"
    vad_threshold: float | None = None
    """Live socket only: the vendor's speech/silence threshold."""
    prompt: str | None = None
    """AssemblyAI's instruction prompt (Universal-3 models), not voxgate's free-text context."""


@dataclass(frozen=True, slots=True)
class SonioxOptions:
    provider: ClassVar[str] = "soniox"
    language_hints: tuple[str, ...] = ()
    language_hints_strict: bool | None = None
    enable_endpoint_detection: bool | None = None
    """Live socket only."""
    max_endpoint_delay_ms: int | None = None
    """Live socket only."""
    context_general: tuple[tuple[str, str], ...] = ()
    """``context.general`` key/value pairs (domain, topic, names...)."""
    context_text: str | None = None
    context_terms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroqOptions:
    provider: ClassVar[str] = "groq"
    temperature: float | None = None


VendorOptions = DeepgramOptions | AssemblyAIOptions | SonioxOptions | GroqOptions


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
    vendor: VendorOptions | None = None
    """One cloud vendor's own settings; read only by that vendor's engines."""
    language_prior: tuple[LanguageScore, ...] = ()
    """When ``language`` is None: the languages already heard (a stream's earlier turns), each with its share of that
    evidence. An engine that identifies the language itself weighs its own scores by it; a hint, not a constraint
    (engines that do not identify languages have nothing to weigh and ignore it)."""


# -- voice profile ---------------------------------------------------------------------------------------------------

DIMENSIONS = ("language", "age", "gender", "emotion", "pitch", "vocal_style", "accent")
"""The voice profile's dimensions, in the order they are reported."""


@dataclass(frozen=True, slots=True)
class LabelScore:
    label: str
    confidence: float


Labels = tuple[LabelScore, ...]
"""One dimension of a voice profile: its labels, most confident first."""


@dataclass(frozen=True, slots=True)
class VoiceFeatures:
    """Prosody and voice measurements (:func:`voxgate.analysis.prosody.extract_features`). None where the audio or the
    words do not allow a measurement."""

    duration_s: float
    """Length of the audio."""
    speech_s: float | None = None
    """Speech time (voiced and unvoiced) found in the audio: intensity criterion, and VAD when given."""
    voiced_s: float | None = None
    """Voiced speech time (frames with an F0 inside speech)."""
    voiced_ratio: float | None = None
    """Voiced frames / speech frames."""
    f0_median_hz: float | None = None
    f0_p10_hz: float | None = None
    f0_p90_hz: float | None = None
    f0_range_semitones: float | None = None
    """12 x log2(p90 / p10): the F0 span of the central 80 % of voiced frames."""
    f0_std_semitones: float | None = None
    """Standard deviation of F0 in semitones around the median."""
    loudness_dbfs: float | None = None
    """RMS of the speech frames, dB re an RMS of 1.0 (a -20 dBFS signal has RMS 0.1)."""
    loudness_range_db: float | None = None
    """10th-90th percentile spread of the speech frames' levels."""
    snr_db: float | None = None
    """Speech level over the noise floor (5th-percentile frame level): an estimate, low when the clip has no pause.
    HNR cannot exceed what the recording's noise allows, so voice-quality labels need a good SNR."""
    hnr_db: float | None = None
    """Mean harmonics-to-noise ratio (Praat harmonicity cc) over the voiced speech frames."""
    jitter_local: float | None = None
    """Praat local jitter, a fraction (0.0104 is Praat's 1.04 %)."""
    shimmer_local: float | None = None
    """Praat local shimmer, a fraction (0.0381 is Praat's 3.81 %)."""
    clipped_ratio: float | None = None
    """Fraction of samples at full scale (|x| >= 0.999); voice quality is unreliable above ~0.1 %."""
    word_count: int = 0
    """Words the rate measures were computed from."""
    speaking_rate_wpm: float | None = None
    """Words per minute from the first word's start to the last word's end, less silence at the two ends."""
    articulation_rate_wpm: float | None = None
    """Words per minute of that span without its pauses (>= 250 ms between words or silent in the audio)."""
    pause_ratio: float | None = None
    """Pause time / span."""
    mean_pause_s: float | None = None
    """Mean pause length; None when the span has no pause."""


@dataclass(frozen=True, slots=True)
class VoiceProfile:
    """Who is speaking and how (:mod:`voxgate.analysis.profile` makes them): labels per dimension, the measurements."""

    language: Labels
    age: Labels
    gender: Labels
    emotion: Labels
    pitch: Labels
    vocal_style: Labels
    accent: Labels
    features: VoiceFeatures
    speech_seconds: float = 0.0
    """How much speech this profile rests on."""

    @classmethod
    def of(cls, dimensions: Mapping[str, Labels], features: VoiceFeatures, speech_seconds: float) -> VoiceProfile:
        """A profile from one label list per dimension, keyed as :data:`DIMENSIONS` names them."""
        return cls(
            language=dimensions["language"],
            age=dimensions["age"],
            gender=dimensions["gender"],
            emotion=dimensions["emotion"],
            pitch=dimensions["pitch"],
            vocal_style=dimensions["vocal_style"],
            accent=dimensions["accent"],
            features=features,
            speech_seconds=speech_seconds,
        )

    def dimensions(self) -> dict[str, Labels]:
        """Each dimension's labels, keyed as :data:`DIMENSIONS` names them, in that order."""
        return {
            "language": self.language,
            "age": self.age,
            "gender": self.gender,
            "emotion": self.emotion,
            "pitch": self.pitch,
            "vocal_style": self.vocal_style,
            "accent": self.accent,
        }

    def top(self, n: int) -> VoiceProfile:
        """Each dimension cut to its ``n`` most confident labels."""
        cut = {dimension: labels[:n] for dimension, labels in self.dimensions().items()}
        return VoiceProfile.of(cut, self.features, self.speech_seconds)
