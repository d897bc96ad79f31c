"""REST wire schemas: the reference API's sync request/response, camelCase, plus voxgate's additions.

A client of the reference API can ignore every field voxgate adds (``language``, ``languageProbability``,
``languageCandidates``, ``segments``, ``warnings``).
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import fields
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from voxgate.types import DiarizationOptions, Segment, Speakers, Transcript, VoiceFeatures, VoiceProfile, Word

__all__ = [
    "AssemblyaiConfig",
    "AudioData",
    "AudioEncoding",
    "CamelModel",
    "DeepgramConfig",
    "DiarizationConfig",
    "GroqConfig",
    "InworldSttV1Config",
    "ReferenceConfig",
    "SegmentOut",
    "SonioxConfig",
    "SonioxContext",
    "SpeakerOut",
    "TranscribeConfig",
    "TranscribeRequest",
    "TranscribeResponse",
    "Transcription",
    "Usage",
    "Utterance",
    "VoiceProfileConfig",
    "VoiceProfileOut",
    "WordTimestamp",
    "describe_errors",
    "features_to_wire",
    "normalize_language",
]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class AudioEncoding(StrEnum):
    AUTO_DETECT = "AUTO_DETECT"
    """Also what ``AUDIO_ENCODING_UNSPECIFIED`` (the protobuf default the reference publishes) means for a file."""
    LINEAR16 = "LINEAR16"
    MP3 = "MP3"
    OGG_OPUS = "OGG_OPUS"
    FLAC = "FLAC"
    MULAW = "MULAW"
    ALAW = "ALAW"


RAW_ENCODINGS = frozenset({AudioEncoding.LINEAR16, AudioEncoding.MULAW, AudioEncoding.ALAW})


class VoiceProfileConfig(CamelModel):
    enable_voice_profile: bool = False
    top_n: int = Field(default=3, ge=1, le=20)


class DiarizationConfig(CamelModel):
    """Who spoke when (Google's field names): a ``speakerTag`` per word and segment, and ``utterances``."""

    enable_speaker_diarization: bool = False
    min_speaker_count: int = Field(default=1, ge=1, le=20)
    max_speaker_count: int = Field(default=8, ge=1, le=20)

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_speaker_count > self.max_speaker_count:
            raise ValueError("minSpeakerCount must not exceed maxSpeakerCount")
        return self

    def options(self) -> DiarizationOptions | None:
        """What the service takes, or None when diarization is off."""
        if not self.enable_speaker_diarization:
            return None
        return DiarizationOptions(min_speakers=self.min_speaker_count, max_speakers=self.max_speaker_count)


def _is_none(value: object) -> bool:
    return value is None


class OmitsUnsetTags(CamelModel):
    """Leaves ``speakerTag`` and ``channelTag`` out of the JSON when there are none (no diarization, channels mixed
    down): reference clients see no change."""

    speaker_tag: int | None = Field(default=None, exclude_if=_is_none)
    channel_tag: int | None = Field(default=None, exclude_if=_is_none)


# -- the reference's provider blocks and turn fields (shared by the REST and WebSocket configs) --------------------


class InworldSttV1Config(CamelModel):
    """voxgate's own turn detection, in the reference's terms (its own model, ``inworld/inworld-stt-1``)."""

    min_end_of_turn_silence_when_confident: int | None = Field(default=None, ge=64, le=5_000)
    """ms of silence after which the turn model is asked; a confident answer ends the turn then."""
    vad_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """Speech probability of a frame counted as speech; 0: no server turn detection (the client sends endTurn)."""
    max_turn_silence: int | None = Field(default=None, ge=100, le=30_000)
    """ms of silence that end a turn whatever the turn model says."""


class AssemblyaiConfig(CamelModel):
    """AssemblyAI's turn silences shape voxgate's turns (it decides every stream's turns); ``vadThreshold`` goes to
    AssemblyAI's streaming socket, ``prompt`` to both its APIs."""

    min_end_of_turn_silence_when_confident: int | None = Field(default=None, ge=64, le=5_000)
    max_turn_silence: int | None = Field(default=None, ge=100, le=30_000)
    vad_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    prompt: str | None = Field(default=None, max_length=4_000)


class SonioxContextItem(CamelModel):
    key: str = Field(max_length=200)
    value: str = Field(max_length=2_000)


class SonioxContext(CamelModel):
    general: list[SonioxContextItem] = Field(default_factory=list, max_length=50)
    text: str | None = Field(default=None, max_length=10_000)
    terms: list[str] = Field(default_factory=list, max_length=1_000)


class SonioxConfig(CamelModel):
    """Passed to Soniox (files and streams; the endpoint fields to its real-time socket only)."""

    language_hints: list[str] = Field(default_factory=list, max_length=100)
    language_hints_strict: bool | None = None
    enable_endpoint_detection: bool | None = None
    max_endpoint_delay_ms: int | None = Field(default=None, ge=500, le=3_000)
    context: SonioxContext | None = None


class GroqConfig(CamelModel):
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)


class DeepgramConfig(CamelModel):
    """A few of Deepgram's documented query parameters (files and streams; ``endpointing`` streams only)."""

    keyterms: list[str] = Field(default_factory=list, max_length=100)
    smart_format: bool | None = None
    punctuate: bool | None = None
    profanity_filter: bool | None = None
    filler_words: bool | None = None
    numerals: bool | None = None
    endpointing: int | None = Field(default=None, ge=0, le=10_000)


PROVIDER_BLOCKS = {
    "inworld_stt_v1_config": "inworld",
    "assemblyai_config": "assemblyai",
    "soniox_config": "soniox",
    "groq_config": "groq",
    "deepgram_config": "deepgram",
}
"""Each provider block's field and the provider whose models it is for."""


class ReferenceConfig(CamelModel):
    """What the REST and WebSocket ``transcribeConfig`` share beyond the first pass: the reference's turn fields and
    its provider blocks (at most one, matching a model of the request: :mod:`voxgate.protocol.options` checks)."""

    end_of_turn_confidence_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """Streams: the turn model's end-of-turn probability needed to end a turn (``turnDetection.threshold``)."""
    inactivity_timeout_seconds: float | None = Field(default=None, gt=0.0, le=3_600.0)
    """Streams: close the stream after this long without a message (at most the server's own idle timeout)."""
    enable_speaker_diarization: bool = False
    """The reference's switch: the same as ``diarizationConfig.enableSpeakerDiarization`` (either turns it on)."""
    inworld_stt_v1_config: InworldSttV1Config | None = None
    assemblyai_config: AssemblyaiConfig | None = None
    soniox_config: SonioxConfig | None = None
    groq_config: GroqConfig | None = None
    deepgram_config: DeepgramConfig | None = None


class TranscribeConfig(ReferenceConfig):
    model_id: str | list[str] | None = None
    """One model id, or an ordered list to fall back along when a model fails."""
    audio_encoding: AudioEncoding = AudioEncoding.AUTO_DETECT
    sample_rate_hertz: int | None = None
    number_of_channels: int = Field(default=1, ge=1, le=8)
    language: str | None = None
    include_word_timestamps: bool = True
    prompts: list[str] = Field(default_factory=list, max_length=200)
    voice_profile_config: VoiceProfileConfig | None = None
    diarization_config: DiarizationConfig | None = None
    enable_separate_recognition_per_channel: bool = False
    """Transcribe each channel of a multichannel file on its own (a call recording: one party per channel); segments
    and words carry their ``channelTag``. Google's field name."""

    @model_validator(mode="after")
    def _channels_or_speakers(self) -> Self:
        if self.enable_separate_recognition_per_channel and (
            self.enable_speaker_diarization
            or (self.diarization_config is not None and self.diarization_config.enable_speaker_diarization)
        ):
            raise ValueError(
                "enableSeparateRecognitionPerChannel and speaker diarization cannot be combined: "
                "with separate channels, each channel's channelTag tells the parties apart"
            )
        return self

    @field_validator("audio_encoding", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.upper()
            return AudioEncoding.AUTO_DETECT.value if value == "AUDIO_ENCODING_UNSPECIFIED" else value
        return value


class AudioData(CamelModel):
    content: str


class TranscribeRequest(CamelModel):
    transcribe_config: TranscribeConfig = Field(default_factory=TranscribeConfig)
    audio_data: AudioData


class WordTimestamp(OmitsUnsetTags):
    word: str
    start_time_seconds: float
    end_time_seconds: float
    confidence: float

    @classmethod
    def of(cls, w: Word, speaker: int | None = None, channel: int | None = None) -> WordTimestamp:
        """The reference API's words are bare (``"Hey"`` for ``"Hey,"``): edge punctuation is in the transcript only."""
        return cls(
            word=bare_word(w.word),
            start_time_seconds=w.start,
            end_time_seconds=w.end,
            confidence=w.confidence,
            speaker_tag=speaker,
            channel_tag=channel,
        )


class LanguageCandidate(CamelModel):
    code: str
    probability: float


class Transcription(CamelModel):
    transcript: str
    is_final: bool = True
    word_timestamps: list[WordTimestamp] = Field(default_factory=list)
    language: str | None = None
    language_probability: float | None = None
    voice_profile: VoiceProfileOut | None = Field(default=None, exclude_if=_is_none)
    """Where the reference API puts the voice profile (the same one as the response's top-level ``voiceProfile``)."""


class SegmentOut(OmitsUnsetTags):
    text: str
    start_time_seconds: float
    end_time_seconds: float
    language: str | None = None
    word_timestamps: list[WordTimestamp] = Field(default_factory=list)
    voice_profile: VoiceProfileOut | None = None

    @classmethod
    def of(cls, s: Segment, words: bool) -> SegmentOut:
        return cls(
            text=s.text,
            start_time_seconds=s.start,
            end_time_seconds=s.end,
            language=s.language,
            word_timestamps=[WordTimestamp.of(w, channel=s.channel) for w in s.words] if words else [],
            channel_tag=s.channel,
        )


class LabelConfidence(CamelModel):
    label: str
    confidence: float


class VoiceProfileOut(CamelModel):
    """One array per dimension, most confident first, plus the measurements behind them."""

    language: list[LabelConfidence] = Field(default_factory=list)
    age: list[LabelConfidence] = Field(default_factory=list)
    gender: list[LabelConfidence] = Field(default_factory=list)
    emotion: list[LabelConfidence] = Field(default_factory=list)
    pitch: list[LabelConfidence] = Field(default_factory=list)
    vocal_style: list[LabelConfidence] = Field(default_factory=list)
    accent: list[LabelConfidence] = Field(default_factory=list)
    features: dict[str, float | None] = Field(default_factory=dict)
    speech_seconds: float = 0.0

    @classmethod
    def of(cls, profile: VoiceProfile, top_n: int) -> Self:
        top = profile.top(top_n)
        return cls(
            **{
                name: [LabelConfidence(label=s.label, confidence=s.confidence) for s in labels]
                for name, labels in top.dimensions().items()
            },
            features=features_to_wire(top.features),
            speech_seconds=round(top.speech_seconds, 2),
        )


_FEATURE_KEYS: dict[str, tuple[str, int]] = {
    "duration_s": ("durationSec", 3),
    "speech_s": ("speechSec", 2),
    "voiced_s": ("voicedSec", 2),
    "voiced_ratio": ("voicedRatio", 3),
    "f0_median_hz": ("f0MedianHz", 1),
    "f0_p10_hz": ("f0P10Hz", 1),
    "f0_p90_hz": ("f0P90Hz", 1),
    "f0_range_semitones": ("f0RangeSemitones", 2),
    "f0_std_semitones": ("f0StdSemitones", 2),
    "loudness_dbfs": ("loudnessDbfs", 1),
    "loudness_range_db": ("loudnessRangeDb", 1),
    "snr_db": ("snrDb", 1),
    "hnr_db": ("hnrDb", 1),
    "jitter_local": ("jitterLocal", 4),
    "shimmer_local": ("shimmerLocal", 4),
    "clipped_ratio": ("clippedRatio", 4),
    "word_count": ("wordCount", 0),
    "speaking_rate_wpm": ("speakingRateWpm", 1),
    "articulation_rate_wpm": ("articulationRateWpm", 1),
    "pause_ratio": ("pauseRatio", 3),
    "mean_pause_s": ("meanPauseSec", 3),
}
"""Each measurement's key in ``voiceProfile.features`` (camelCase, the unit in the name) and the decimals it is
rounded to (what the measurement resolves)."""


def features_to_wire(features: VoiceFeatures) -> dict[str, float | None]:
    """``voiceProfile.features``: every measurement under its published key, rounded; None where not measured."""
    out: dict[str, float | None] = {}
    for f in fields(features):
        value = getattr(features, f.name)
        key, digits = _FEATURE_KEYS[f.name]
        out[key] = value if value is None or isinstance(value, int) else round(float(value), digits)
    return out


class Utterance(CamelModel):
    """A stretch of one speaker's words, in time order (diarization only)."""

    speaker_tag: int
    transcript: str
    start_time_seconds: float
    end_time_seconds: float

    @classmethod
    def runs(cls, t: Transcript, speakers: Speakers) -> list[Utterance]:
        """Consecutive words of one speaker joined (segments without words stand for themselves)."""
        spans: list[tuple[int, list[str], float, float]] = []
        n = 0
        for s, segment in enumerate(t.segments):
            items = (
                [(speakers.words[n + i], w.word, w.start, w.end) for i, w in enumerate(segment.words)]
                if segment.words
                else [(speakers.segments[s] or 0, segment.text.strip(), segment.start, segment.end)]
            )
            n += len(segment.words)
            for speaker, text, start, end in items:
                if spans and spans[-1][0] == speaker:
                    spans[-1][1].append(text)
                    spans[-1] = (speaker, spans[-1][1], spans[-1][2], end)
                else:
                    spans.append((speaker, [text], start, end))
        glue = "" if t.language in _UNSPACED else " "
        return [
            cls(speaker_tag=k, transcript=glue.join(x for x in texts if x), start_time_seconds=a, end_time_seconds=b)
            for k, texts, a, b in spans
            if k
        ]


_UNSPACED = frozenset({"zh", "ja", "th", "lo", "my", "km", "yue", "bo"})
"""Languages written without spaces between words."""


class SpeakerOut(CamelModel):
    """One diarized speaker's own voice profile (when both diarization and the voice profile are on)."""

    speaker_tag: int
    voice_profile: VoiceProfileOut


class Usage(CamelModel):
    transcribed_audio_ms: int
    model_id: str


class TranscribeResponse(CamelModel):
    transcription: Transcription
    usage: Usage
    language_candidates: list[LanguageCandidate] = Field(default_factory=list)
    segments: list[SegmentOut] = Field(default_factory=list)
    voice_profile: VoiceProfileOut | None = None
    utterances: list[Utterance] | None = Field(default=None, exclude_if=_is_none)
    """Who spoke when: present only when diarization was asked for."""
    speakers: list[SpeakerOut] | None = Field(default=None, exclude_if=_is_none)
    """Each speaker's voice profile: present only when diarization and the voice profile were both asked for."""
    warnings: list[str] = Field(default_factory=list)

    def add_speakers(self, t: Transcript, speakers: Speakers) -> None:
        """Tag every word and segment with its speaker and list the utterances."""
        tags = iter(speakers.words)
        for segment, out, tag in zip(t.segments, self.segments, speakers.segments, strict=True):
            out.speaker_tag = tag
            segment_tags = [next(tags) for _ in segment.words]
            for word, word_tag in zip(out.word_timestamps, segment_tags, strict=False):
                word.speaker_tag = word_tag
        if self.transcription.word_timestamps:
            for word, tag in zip(self.transcription.word_timestamps, speakers.words, strict=True):
                word.speaker_tag = tag
        self.utterances = Utterance.runs(t, speakers)

    @classmethod
    def of(cls, t: Transcript, *, model_id: str, words: bool) -> TranscribeResponse:
        return cls(
            transcription=Transcription(
                transcript=t.text,
                word_timestamps=[WordTimestamp.of(w, channel=s.channel) for s in t.segments for w in s.words]
                if words
                else [],
                language=t.language,
                language_probability=t.language_probability,
            ),
            usage=Usage(transcribed_audio_ms=round(t.duration * 1000), model_id=model_id),
            language_candidates=[
                LanguageCandidate(code=c.code, probability=c.probability) for c in t.language_candidates
            ],
            segments=[SegmentOut.of(s, words) for s in t.segments],
            warnings=list(t.warnings),
        )


_EDGE = re.compile(r"^[^\w]+|[^\w]+$", re.UNICODE)


def bare_word(word: str) -> str:
    """A word without leading/trailing punctuation (inner apostrophes and hyphens stay)."""
    return _EDGE.sub("", word) or word


def describe_errors(errors: Iterable[Mapping[str, Any]], *, skip: Container[object] = ()) -> str:
    """Pydantic validation errors as one line a client can act on: ``where: what; where: what``."""
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in skip)
        message = str(err.get("msg", "invalid"))
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "invalid request"


def normalize_language(tag: str | None) -> str | None:
    """BCP-47 (``en-US``, ``pt_BR``, ``zh-Hant``) → the primary subtag Whisper uses; empty or ``auto`` → None."""
    if tag is None:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    if primary in ("", "auto", "und"):
        return None
    return {"iw": "he", "jv": "jw", "nb": "no"}.get(primary, primary)
