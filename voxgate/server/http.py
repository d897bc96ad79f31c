"""The reference API's REST routes: ``POST /stt/v1/transcribe`` (JSON or multipart) and ``GET /stt/v1/models``."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from voxgate.audio.pcm import PcmEncoding, check_sample_rate
from voxgate.errors import EmptyAudio, InvalidBase64, InvalidRequest, PayloadTooLarge, Timeout
from voxgate.files import AudioSource, FileResult, RawAudio
from voxgate.protocol.http import (
    RAW_ENCODINGS,
    SpeakerOut,
    TranscribeConfig,
    TranscribeRequest,
    TranscribeResponse,
    VoiceProfileOut,
    describe_errors,
)
from voxgate.protocol.options import diarization, options_of, wants_profile
from voxgate.server.auth import require_key
from voxgate.service import Service
from voxgate.types import DiarizationOptions, TranscriptionOptions

__all__ = ["audio_source", "router", "run_transcription"]

router = APIRouter(dependencies=[Depends(require_key)])

_REQUEST = TypeAdapter(TranscribeRequest)
_CONFIG = TypeAdapter(TranscribeConfig)
_CONTAINER_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"FORM", b"fLaC", b"OggS", b"ID3")


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def audio_source(data: bytes, config: TranscribeConfig, max_bytes: int) -> AudioSource:
    """Bytes plus the config's encoding fields → what the service decodes (a container, or raw PCM)."""
    if not data:
        raise EmptyAudio("the audio is empty (0 bytes)")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"audio of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    # The reference reads the sample rate "from the file header when it has one": a WAV sent as LINEAR16 is decoded
    # as the file it is.
    if config.audio_encoding in RAW_ENCODINGS and not data.startswith(_CONTAINER_MAGIC):
        if config.sample_rate_hertz is None:
            raise InvalidRequest(f"sampleRateHertz is required for headerless {config.audio_encoding} audio")
        check_sample_rate(config.sample_rate_hertz)
        return RawAudio(
            data, PcmEncoding(config.audio_encoding.value), config.sample_rate_hertz, config.number_of_channels
        )
    return data


async def run_transcription(
    service: Service,
    source: AudioSource,
    options: TranscriptionOptions,
    model_id: str | Sequence[str] | None,
    *,
    profile: bool = False,
    diarize: DiarizationOptions | None = None,
    separate_channels: bool = False,
) -> FileResult:
    """Transcribe with the configured deadline; a request that runs past it gets a ``timeout`` error."""
    limit = service.settings.request_timeout_seconds
    with anyio.move_on_after(limit):
        return await service.transcribe_file(
            source, options, model_id, profile=profile, diarize=diarize, separate_channels=separate_channels
        )
    raise Timeout(f"transcription took longer than {limit:.0f} s (VOXGATE_REQUEST_TIMEOUT_SECONDS)")


async def _from_json(request: Request) -> tuple[bytes, TranscribeConfig]:
    # Memory: the body is gathered into one buffer (not a list of chunks joined into a second copy) and freed once
    # parsed; the base64 text is dropped as soon as it is decoded. Peak ≈ body + text + audio, not twice that.
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
    try:
        parsed = _REQUEST.validate_json(body)
    except ValidationError as exc:
        raise InvalidRequest(describe_errors(exc.errors())) from None
    finally:
        body.clear()
    try:
        data = base64.b64decode(parsed.audio_data.content, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64("audioData.content is not valid base64") from None
    parsed.audio_data.content = ""
    return data, parsed.transcribe_config


def _form_config(form: Any) -> TranscribeConfig:
    raw: dict[str, Any] = {}
    if isinstance(form.get("transcribeConfig"), str):
        try:
            raw = json.loads(form["transcribeConfig"])
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"transcribeConfig is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise InvalidRequest("transcribeConfig must be a JSON object")
    for key, value in form.multi_items():
        if key in ("file", "transcribeConfig") or not isinstance(value, str):
            continue
        if key == "prompts":
            raw.setdefault("prompts", []).append(value)
        else:
            raw[key] = value
    try:
        return _CONFIG.validate_python(raw)
    except ValidationError as exc:
        raise InvalidRequest(describe_errors(exc.errors())) from None


async def _from_multipart(request: Request) -> tuple[bytes, TranscribeConfig]:
    async with request.form(max_files=1, max_fields=100) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("multipart upload needs a 'file' field with the audio")
        data = await upload.read()
        return data, _form_config(form)


@router.post("/stt/v1/transcribe", response_model=TranscribeResponse, response_model_by_alias=True)
async def transcribe(request: Request) -> TranscribeResponse:
    """Transcribe a complete file: the reference's JSON body, or a multipart upload (``curl -F file=@x.mp3``)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        data, config = await _from_multipart(request)
    elif content_type.startswith("application/json") or not content_type:
        data, config = await _from_json(request)
    else:
        raise InvalidRequest(f"unsupported content type {content_type!r}: send application/json or multipart/form-data")
    service = _service(request)
    source = audio_source(data, config, request.app.state.settings.max_upload_bytes)
    profile = config.voice_profile_config
    wanted = wants_profile(config)
    result = await run_transcription(
        service,
        source,
        options_of(config),
        config.model_id,
        profile=wanted,
        diarize=diarization(config),
        separate_channels=config.enable_separate_recognition_per_channel,
    )
    transcript = result.transcript
    # The reference echoes the requested modelId; with a fallback list, the model that did the work.
    echoed = config.model_id if isinstance(config.model_id, str) else transcript.model_id
    response = TranscribeResponse.of(transcript, model_id=echoed, words=config.include_word_timestamps)
    if wanted and profile is not None:
        top_n = profile.top_n
        response.voice_profile = VoiceProfileOut.of(result.profile, top_n) if result.profile else None
        response.transcription.voice_profile = response.voice_profile
        for out, segment_profile in zip(response.segments, result.segment_profiles, strict=True):
            out.voice_profile = VoiceProfileOut.of(segment_profile, top_n) if segment_profile else None
        if result.profile is None:
            response.warnings.append("voiceProfileConfig: no speech long enough to profile")
    if result.speakers is not None:
        response.add_speakers(transcript, result.speakers)
        if wanted and profile is not None:
            response.speakers = [
                SpeakerOut(speaker_tag=k, voice_profile=VoiceProfileOut.of(p, profile.top_n))
                for k, p in result.speaker_profiles.items()
            ]
    return response


@router.get("/stt/v1/models")
async def models(request: Request) -> dict[str, Any]:
    """Every model voxgate can serve: id, languages, size, source, loaded or not."""
    return {
        "models": [
            {
                "id": m.id,
                "languages": list(m.languages),
                "multilingual": m.multilingual,
                "sizeBytes": m.size_bytes,
                "source": m.source,
                "loaded": m.loaded,
                "default": m.default,
                "aliases": list(m.aliases),
                "remote": m.remote,
                "configured": m.configured,
            }
            for m in _service(request).list_models()
        ]
    }
