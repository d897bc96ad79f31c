"""WebSocket wire schemas for ``/stt/v1/transcribe:streamBidirectional``.

Client → server, one JSON object per text frame, each with exactly one key:

* ``{"transcribeConfig": {...}}`` — first message, once;
* ``{"audioChunk": {"content": "<base64>"}}`` — any number;
* ``{"endTurn": {}}`` — the client says the current turn is over;
* ``{"closeStream": {}}`` — flush (finals for any open turn), then the server closes with 1000.

Server → client:

* ``{"result": {"transcription": {...}}}`` — partial (``isFinal: false``) or final transcripts, the same object as the
  sync API's ``transcription`` plus ``turnIndex``, ``startTimeSeconds``, ``endTimeSeconds`` (stream-relative);
* ``{"result": {"speechStarted": {"startTimeMs", "confidence", ...}}}`` and
  ``{"result": {"speechStopped": {"silenceDurationMs", ...}}}`` — the reference's speech events, with voxgate's
  ``timeSeconds`` and ``turnIndex`` as additions;
* ``{"result": {"usage": {"transcribedAudioMs", "modelId"}}}`` — once, when the stream closes normally;
* ``{"endOfTurn": {...}}`` — voxgate's own: why and when a turn ended;
* ``{"eagerEndOfTurn": {"transcript", "probability", ...}}`` and ``{"turnResumed": {...}}`` — opt-in
  (``turnDetection.eagerThreshold``): the turn is probably over, here is its transcript; or, the speaker went on;
* ``{"error": {"code", "message"}}`` — then the socket closes with the error's close code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from voxgate.errors import ProtocolViolation
from voxgate.protocol.http import (
    CamelModel,
    DiarizationConfig,
    ReferenceConfig,
    Usage,
    VoiceProfileConfig,
    VoiceProfileOut,
    WordTimestamp,
    describe_errors,
)
from voxgate.streaming.policy import EndTurnReason, TurnMode, TurnPolicy

# EndTurnReason and TurnMode are core enums (voxgate.streaming.policy) whose values are the wire strings; they are
# exported here too, as part of the message schemas the client SDK publishes.
__all__ = [
    "AudioChunk",
    "ClientMessage",
    "CloseStream",
    "EagerEndOfTurnMessage",
    "EndOfTurnMessage",
    "EndTurn",
    "EndTurnReason",
    "ErrorMessage",
    "ResultMessage",
    "ServerMessage",
    "SpeechStartedEvent",
    "SpeechStartedMessage",
    "SpeechStoppedEvent",
    "SpeechStoppedMessage",
    "StreamEncoding",
    "StreamResult",
    "StreamTranscribeConfig",
    "StreamTranscription",
    "StreamVoiceProfile",
    "TranscribeConfigMessage",
    "TurnDetection",
    "TurnMode",
    "TurnResumedMessage",
    "UsageMessage",
    "VoiceProfileMessage",
    "parse_client_message",
]


class StreamEncoding(StrEnum):
    LINEAR16 = "LINEAR16"
    MULAW = "MULAW"
    ALAW = "ALAW"


_POLICY = TurnPolicy()
_MIN_PAUSE_MS = 64


# The wire form of voxgate.streaming.policy.TurnPolicy: the same defaults, plus the bounds a client must respect.
# (No docstring: it would become the schema's description.)
class TurnDetection(CamelModel):
    mode: TurnMode = _POLICY.mode
    silence_ms: int = Field(default=_POLICY.silence_ms, ge=100, le=10_000)
    """``vad`` mode: the pause that ends a turn."""
    pause_ms: int = Field(default=_POLICY.pause_ms, ge=_MIN_PAUSE_MS, le=5_000)
    """Silence after which speech counts as ended (``speechEnded``) and ``semantic`` mode asks the turn model."""
    threshold: float = Field(default=_POLICY.threshold, ge=0.0, le=1.0)
    """``semantic`` mode: end-of-turn probability needed to end the turn. Lower is more eager."""
    max_silence_ms: int = Field(default=_POLICY.max_silence_ms, ge=100, le=30_000)
    """``semantic`` mode: a pause this long ends the turn whatever the model says."""
    vad_threshold: float = Field(default=_POLICY.vad_threshold, ge=0.05, le=0.95)
    """Speech probability above which a 32 ms frame counts as speech."""
    eager_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """``semantic`` mode, opt-in: end-of-turn probability at which an ``eagerEndOfTurn`` is sent with the transcript
    so far, before the turn has ended (``turnResumed`` takes it back if the speaker goes on). Below ``threshold``."""
    early_ms: int = Field(default=_POLICY.early_ms, ge=0, le=5_000)
    """``semantic`` mode: silence, shorter than ``pauseMs``, after which the turn model is asked once, early; 0: no."""
    early_threshold: float = Field(default=_POLICY.early_threshold, ge=0.0, le=1.0)
    """``semantic`` mode: end-of-turn probability that ends the turn at the early check. At least ``threshold``."""

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> TurnDetection:
        if self.eager_threshold is not None and self.eager_threshold >= self.threshold:
            raise ValueError(
                f"eagerThreshold ({self.eager_threshold}) must be below threshold ({self.threshold}): "
                "at the threshold the turn simply ends"
            )
        if self.early_ms and not _MIN_PAUSE_MS <= self.early_ms < self.pause_ms:
            # A turn-model run per quiet stretch: as short a stretch as a pause may be, no shorter.
            raise ValueError(
                f"earlyMs ({self.early_ms}) must be from {_MIN_PAUSE_MS} to below pauseMs ({self.pause_ms}), "
                "or 0 for no early check"
            )
        if self.early_ms and self.early_threshold < self.threshold:
            raise ValueError(
                f"earlyThreshold ({self.early_threshold}) must be at least threshold ({self.threshold}): the early "
                "check hears less silence, so it must be surer"
            )
        return self

    @field_validator("mode", mode="before")
    @classmethod
    def _aliases(cls, value: object) -> object:
        # The reference calls its modes "automatic" and "manual".
        if isinstance(value, str):
            value = value.lower()
            return {"automatic": "semantic", "auto": "semantic", "server_vad": "vad"}.get(value, value)
        return value

    def to_policy(self) -> TurnPolicy:
        return TurnPolicy(
            mode=self.mode,
            silence_ms=self.silence_ms,
            pause_ms=self.pause_ms,
            threshold=self.threshold,
            max_silence_ms=self.max_silence_ms,
            vad_threshold=self.vad_threshold,
            eager_threshold=self.eager_threshold,
            early_ms=self.early_ms,
            early_threshold=self.early_threshold,
        )


class StreamTranscribeConfig(ReferenceConfig):
    model_id: str | list[str] | None = None
    """One model id, or an ordered list: the first that can be opened serves the stream, the rest are fallbacks."""
    audio_encoding: StreamEncoding = StreamEncoding.LINEAR16
    sample_rate_hertz: int = Field(default=16_000, ge=8_000, le=48_000)
    number_of_channels: int = Field(default=1, ge=1, le=8)
    language: str | None = None
    prompts: list[str] = Field(default_factory=list, max_length=200)
    include_word_timestamps: bool = True
    voice_profile_config: VoiceProfileConfig | None = None
    diarization_config: DiarizationConfig | None = None
    """Tag each final with its speaker (``minSpeakerCount`` does not apply: a stream decides turn by turn)."""
    turn_detection: TurnDetection = Field(default_factory=TurnDetection)
    profile_interval_ms: int = Field(default=1000, ge=250, le=30_000)
    """Voice profile cadence: an update after about this much new speech (when the profile is enabled)."""
    partial_interval_ms: int = Field(default=500, ge=100, le=10_000)
    """Cadence of partial results: a new partial after about this much new audio."""
    enable_partials: bool = True

    @field_validator("audio_encoding", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        # AUDIO_ENCODING_UNSPECIFIED (the protobuf default): the reference streams LINEAR16 only, so that is what an
        # unspecified stream encoding is. Raw samples cannot be sniffed as a file's header can.
        if isinstance(value, str):
            value = value.upper()
            return StreamEncoding.LINEAR16.value if value == "AUDIO_ENCODING_UNSPECIFIED" else value
        return value


class TranscribeConfigMessage(CamelModel):
    transcribe_config: StreamTranscribeConfig


class AudioContent(CamelModel):
    content: str


class AudioChunk(CamelModel):
    audio_chunk: AudioContent


class Empty(CamelModel):
    pass


class EndTurn(CamelModel):
    end_turn: Empty


class CloseStream(CamelModel):
    close_stream: Empty


ClientMessage = TranscribeConfigMessage | AudioChunk | EndTurn | CloseStream

_BY_KEY: dict[str, TypeAdapter[Any]] = {
    "transcribeConfig": TypeAdapter(TranscribeConfigMessage),
    "audioChunk": TypeAdapter(AudioChunk),
    "endTurn": TypeAdapter(EndTurn),
    "closeStream": TypeAdapter(CloseStream),
}
_OBJECT = TypeAdapter(dict[str, Any])


def parse_client_message(raw: str | bytes) -> ClientMessage:
    """Parse one client frame; raise :class:`ProtocolViolation` naming what is wrong."""
    try:
        obj = _OBJECT.validate_json(raw)
    except ValidationError:
        raise ProtocolViolation("message is not a JSON object") from None
    keys = [k for k in obj if k in _BY_KEY]
    if len(keys) != 1:
        known = ", ".join(_BY_KEY)
        raise ProtocolViolation(f"message must have exactly one of: {known}; got keys {sorted(obj)}")
    key = keys[0]
    try:
        message: ClientMessage = _BY_KEY[key].validate_python({key: obj[key]})
    except ValidationError as exc:
        raise ProtocolViolation(f"invalid {key}: {describe_errors(exc.errors())}") from None
    return message


# -- server messages -----------------------------------------------------------------------------------------------


class StreamTranscription(CamelModel):
    transcript: str
    is_final: bool
    word_timestamps: list[WordTimestamp] = Field(default_factory=list)
    language: str | None = None
    language_probability: float | None = None
    turn_index: int
    start_time_seconds: float
    end_time_seconds: float
    stable_word_count: int | None = None
    """Partials only: the first N words are confirmed (LocalAgreement-2) and will not change in later partials."""
    speaker_tag: int | None = None
    """Finals of a diarized stream: the turn's speaker, 1, 2, ... in order of first appearance."""
    voice_profile: VoiceProfileOut | None = None
    """With ``voiceProfileConfig``: the voice profile heard before this result (the stream's, or in a diarized stream
    the final's speaker's), where the reference API's clients read it. A turn's own profile follows in a
    ``voiceProfile`` result: a final never waits for it."""


class TranscriptionResult(CamelModel):
    transcription: StreamTranscription


class ResultMessage(CamelModel):
    result: TranscriptionResult


class StreamVoiceProfile(VoiceProfileOut):
    turn_index: int
    time_seconds: float
    scope: str
    """``stream``: smoothed over the whole stream so far (sent as speech accumulates); ``turn``: one finished turn;
    ``speaker`` (diarized streams, after each turn's): smoothed over the turns of the speaker ``speakerTag``."""
    speaker_tag: int | None = None
    """A turn's profile in a diarized stream: whose voice it describes (the ``speakerTag`` of the turn's final)."""


class VoiceProfileResult(CamelModel):
    voice_profile: StreamVoiceProfile


class VoiceProfileMessage(CamelModel):
    result: VoiceProfileResult


class SpeechEvent(CamelModel):
    time_seconds: float
    turn_index: int


class EndOfTurnEvent(SpeechEvent):
    reason: EndTurnReason
    probability: float | None = None
    """``semantic`` turns: the turn model's end-of-turn probability."""


class SpeechStartedEvent(SpeechEvent):
    start_time_ms: int
    """When the speech began, ms from the start of the stream (``timeSeconds`` is the same instant)."""
    confidence: float
    """The voice activity detector's mean speech probability over the frames that opened the speech."""


class SpeechStoppedEvent(SpeechEvent):
    silence_duration_ms: int
    """The silence heard after the speech when the event was sent (at least ``turnDetection.pauseMs``);
    ``timeSeconds`` is when that silence began."""


class SpeechStartedResult(CamelModel):
    speech_started: SpeechStartedEvent


class SpeechStartedMessage(CamelModel):
    result: SpeechStartedResult


class SpeechStoppedResult(CamelModel):
    speech_stopped: SpeechStoppedEvent


class SpeechStoppedMessage(CamelModel):
    result: SpeechStoppedResult


class UsageResult(CamelModel):
    usage: Usage


class UsageMessage(CamelModel):
    result: UsageResult


class EndOfTurnMessage(CamelModel):
    end_of_turn: EndOfTurnEvent


class EagerEndOfTurnEvent(SpeechEvent):
    transcript: str
    """The turn's transcript as its final would be now (the pause's speculative decode)."""
    start_time_seconds: float
    end_time_seconds: float
    probability: float
    """The turn model's end-of-turn probability (at least ``turnDetection.eagerThreshold``)."""


class EagerEndOfTurnMessage(CamelModel):
    eager_end_of_turn: EagerEndOfTurnEvent


class TurnResumedMessage(CamelModel):
    turn_resumed: SpeechEvent


class ErrorBody(CamelModel):
    code: str
    message: str


class ErrorMessage(CamelModel):
    error: ErrorBody


StreamResult = (
    ResultMessage
    | VoiceProfileMessage
    | SpeechStartedMessage
    | SpeechStoppedMessage
    | UsageMessage
    | EndOfTurnMessage
    | EagerEndOfTurnMessage
    | TurnResumedMessage
)
"""What a stream sends besides errors: transcripts and speech and turn events."""
ServerMessage = StreamResult | ErrorMessage
