"""Async jobs on the wire: the submit body, the operation (``GET /lro/v1alpha/operations/{id}``) and the result
document behind ``resultUri``, in the reference API's shapes.

* **Submit** (``POST /stt/v1/transcribe:async``): the sync body (``transcribeConfig`` + ``audioData.content``), or
  ``audioUri`` (also accepted as ``audioData.uri``) instead of the content; ``callbackUrl`` optionally.
* **Operation**: Google's long-running-operation shape. ``name`` (``operations/<32 hex>``), ``done``,
  ``metadata{state, progressPercent, createTime, updateTime, attempts}``, and once done either
  ``response{resultUri, expireTime}`` or ``error{code, message}`` (voxgate's error codes; ``cancelled`` for a
  cancelled job). Times are RFC 3339 UTC.
* **Result document**: ``transcript``, ``segments[{startTimeMs, endTimeMs, transcript}]`` (milliseconds as strings,
  protobuf's JSON for int64), ``language``, ``usage{transcribedAudioMs, modelId}`` (a number, as in the sync
  response). voxgate adds, when asked for: ``segments[].words`` (``includeWordTimestamps``; times in ms strings
  too), ``voiceProfile`` (file and segments), ``speakerTag`` / ``utterances`` / ``speakers`` (diarization),
  ``channelTag`` (separate channels), and ``languageProbability`` and ``warnings`` always.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Self

from pydantic import Field, model_validator

from voxgate.jobs.store import JobRecord, JobState
from voxgate.protocol.http import (
    CamelModel,
    OmitsUnsetTags,
    SpeakerOut,
    TranscribeConfig,
    Usage,
    Utterance,
    VoiceProfileOut,
    bare_word,
)
from voxgate.types import Word

if TYPE_CHECKING:  # the schemas stay importable without the audio stack (a client may want them)
    from voxgate.files import FileResult

__all__ = [
    "AsyncAudioData",
    "AsyncResult",
    "AsyncTranscribeRequest",
    "ListOperationsResponse",
    "Operation",
    "OperationError",
    "OperationMetadata",
    "OperationResponse",
    "ResultSegment",
    "ResultWord",
    "operation_name",
    "rfc3339",
]

OPERATIONS = "operations/"


def operation_name(job_id: str) -> str:
    return OPERATIONS + job_id


def rfc3339(seconds: float) -> str:
    """Unix seconds as RFC 3339 UTC with milliseconds (``2026-12-05T08:10:00.000Z``)."""
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_none(value: object) -> bool:
    return value is None


def _ms(seconds: float) -> str:
    return str(round(seconds * 1000))


class AsyncAudioData(CamelModel):
    content: str | None = None
    uri: str | None = None


class AsyncTranscribeRequest(CamelModel):
    transcribe_config: TranscribeConfig = Field(default_factory=TranscribeConfig)
    audio_data: AsyncAudioData | None = None
    audio_uri: str | None = None
    callback_url: str | None = Field(default=None, max_length=2048)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        content = self.audio_data.content if self.audio_data else None
        uri = self.audio_data.uri if self.audio_data else None
        sources = [s for s in (content, uri, self.audio_uri) if s is not None]
        if len(sources) != 1:
            raise ValueError("send exactly one of audioData.content (base64) and audioUri")
        if uri is not None:
            self.audio_uri, self.audio_data = uri, None
        return self

    @property
    def content(self) -> str | None:
        return self.audio_data.content if self.audio_data else None


class OperationMetadata(CamelModel):
    state: JobState
    progress_percent: int
    create_time: str
    update_time: str
    attempts: int


class OperationError(CamelModel):
    code: str
    message: str


class OperationResponse(CamelModel):
    result_uri: str
    expire_time: str


class Operation(CamelModel):
    name: str
    metadata: OperationMetadata
    done: bool
    response: OperationResponse | None = Field(default=None, exclude_if=_is_none)
    error: OperationError | None = Field(default=None, exclude_if=_is_none)

    @classmethod
    def of(cls, job: JobRecord, result_uri: str | None = None) -> Operation:
        """The operation of ``job``; ``result_uri``: where its result is (for a succeeded job)."""
        response = error = None
        if job.state is JobState.SUCCEEDED and result_uri is not None:
            response = OperationResponse(result_uri=result_uri, expire_time=rfc3339(job.expire_at or job.updated_at))
        elif job.state in (JobState.FAILED, JobState.CANCELLED):
            error = OperationError(code=job.error_code or "internal", message=job.error_message or "")
        return cls(
            name=operation_name(job.id),
            metadata=OperationMetadata(
                state=job.state,
                progress_percent=int(job.progress),
                create_time=rfc3339(job.created_at),
                update_time=rfc3339(job.updated_at),
                attempts=job.attempts,
            ),
            done=job.state.done,
            response=response,
            error=error,
        )


class ListOperationsResponse(CamelModel):
    operations: list[Operation]
    next_page_token: str = ""


class ResultWord(OmitsUnsetTags):
    word: str
    start_time_ms: str
    end_time_ms: str
    confidence: float

    @classmethod
    def of(cls, w: Word, speaker: int | None = None, channel: int | None = None) -> Self:
        return cls(
            word=bare_word(w.word),
            start_time_ms=_ms(w.start),
            end_time_ms=_ms(w.end),
            confidence=round(w.confidence, 4),
            speaker_tag=speaker,
            channel_tag=channel,
        )


class ResultSegment(OmitsUnsetTags):
    start_time_ms: str
    end_time_ms: str
    transcript: str
    language: str | None = Field(default=None, exclude_if=_is_none)
    words: list[ResultWord] | None = Field(default=None, exclude_if=_is_none)
    voice_profile: VoiceProfileOut | None = Field(default=None, exclude_if=_is_none)


class AsyncResult(CamelModel):
    transcript: str
    segments: list[ResultSegment]
    language: str | None
    usage: Usage
    language_probability: float | None = None
    voice_profile: VoiceProfileOut | None = Field(default=None, exclude_if=_is_none)
    utterances: list[Utterance] | None = Field(default=None, exclude_if=_is_none)
    speakers: list[SpeakerOut] | None = Field(default=None, exclude_if=_is_none)
    warnings: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, result: FileResult, config: TranscribeConfig, *, profile: bool) -> AsyncResult:
        """The document of a finished job, with what ``config`` asked for (``profile``: a voice profile was)."""
        t = result.transcript
        words = config.include_word_timestamps
        top_n = config.voice_profile_config.top_n if config.voice_profile_config is not None else 3
        speakers = result.speakers
        tags = iter(speakers.words) if speakers is not None else None
        segments = []
        for i, s in enumerate(t.segments):
            word_tags = [next(tags) for _ in s.words] if tags is not None else [None] * len(s.words)
            out = ResultSegment(
                start_time_ms=_ms(s.start),
                end_time_ms=_ms(s.end),
                transcript=s.text.strip(),
                language=s.language,
                words=[ResultWord.of(w, k, s.channel) for w, k in zip(s.words, word_tags, strict=True)]
                if words
                else None,
                speaker_tag=speakers.segments[i] if speakers is not None else None,
                channel_tag=s.channel,
            )
            measured = result.segment_profiles[i] if profile and i < len(result.segment_profiles) else None
            if measured is not None:
                out.voice_profile = VoiceProfileOut.of(measured, top_n)
            segments.append(out)
        echoed = config.model_id if isinstance(config.model_id, str) else t.model_id
        document = cls(
            transcript=t.text,
            segments=segments,
            language=t.language,
            language_probability=t.language_probability,
            usage=Usage(transcribed_audio_ms=round(t.duration * 1000), model_id=echoed),
            warnings=list(t.warnings),
        )
        if profile:
            document.voice_profile = VoiceProfileOut.of(result.profile, top_n) if result.profile else None
            if result.profile is None:
                document.warnings.append("voiceProfileConfig: no speech long enough to profile")
        if speakers is not None:
            document.utterances = Utterance.runs(t, speakers)
            if profile:
                document.speakers = [
                    SpeakerOut(speaker_tag=k, voice_profile=VoiceProfileOut.of(p, top_n))
                    for k, p in result.speaker_profiles.items()
                ]
        return document
