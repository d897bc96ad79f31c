"""OpenAI-compatible routes: ``/v1/audio/transcriptions``, ``/v1/audio/translations`` and ``/v1/models``.

The official ``openai`` SDK works against these by setting ``base_url``. ``model`` takes any voxgate id;
``whisper-1`` means the default model. ``response_format=diarized_json`` (OpenAI's speaker-annotated format) runs
voxgate's diarization with any model.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from voxgate.errors import InvalidRequest
from voxgate.protocol.formats import ResponseFormat, render, to_openai_diarized_json, to_openai_json
from voxgate.protocol.http import TranscribeConfig
from voxgate.protocol.options import transcription_options
from voxgate.server.auth import require_key
from voxgate.server.http import audio_source, run_transcription
from voxgate.service import Service
from voxgate.types import DiarizationOptions

__all__ = ["router"]

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])

_OPENAI_ALIASES = {"whisper-1": None}


def _format(value: str) -> ResponseFormat:
    try:
        return ResponseFormat(value)
    except ValueError:
        allowed = ", ".join(f.value for f in ResponseFormat)
        raise InvalidRequest(f"response_format {value!r} is not one of: {allowed}") from None


async def _handle(
    request: Request,
    *,
    file: UploadFile,
    model: str,
    language: str | None,
    prompt: str | None,
    response_format: str,
    temperature: float,
    granularities: list[str],
    task: str,
) -> Response:
    fmt = _format(response_format)
    diarized = fmt is ResponseFormat.DIARIZED_JSON
    if diarized and task != "transcribe":
        raise InvalidRequest("response_format 'diarized_json' is for transcriptions, not translations")
    unknown = sorted(set(granularities) - {"word", "segment"})
    if unknown:
        raise InvalidRequest(f"timestamp_granularities[] takes 'word' and/or 'segment', not {unknown}")
    if not 0.0 <= temperature <= 1.0:
        raise InvalidRequest("temperature must be between 0 and 1")
    service: Service = request.app.state.service
    data = await file.read()
    source = audio_source(data, TranscribeConfig(), request.app.state.settings.max_upload_bytes)
    want_words = "word" in granularities
    options = transcription_options(
        language=language,
        prompt=prompt,
        temperature=temperature,
        task=task,
        word_timestamps=want_words or fmt in (ResponseFormat.SRT, ResponseFormat.VTT),
    )
    model_id = _OPENAI_ALIASES.get(model, model)
    result = await run_transcription(
        service, source, options, model_id, diarize=DiarizationOptions() if diarized else None
    )
    transcript = result.transcript
    if result.speakers is not None:
        return JSONResponse(to_openai_diarized_json(transcript, result.speakers))
    if fmt is ResponseFormat.VERBOSE_JSON:
        body = to_openai_json(
            transcript,
            verbose=True,
            task=task,
            words=want_words,
            segments=not granularities or "segment" in granularities,
        )
        return JSONResponse(body)
    rendered = render(transcript, fmt)
    if isinstance(rendered, dict):
        return JSONResponse(rendered)
    media = {ResponseFormat.VTT: "text/vtt"}.get(fmt, "text/plain")
    return PlainTextResponse(rendered, media_type=media)


@router.post("/audio/transcriptions")
async def transcriptions(
    request: Request,
    file: Annotated[UploadFile, Form()],
    model: Annotated[str, Form()] = "whisper-1",
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[float, Form()] = 0.0,
    timestamp_granularities: Annotated[list[str] | None, Form(alias="timestamp_granularities[]")] = None,
) -> Response:
    return await _handle(
        request,
        file=file,
        model=model,
        language=language,
        prompt=prompt,
        response_format=response_format,
        temperature=temperature,
        granularities=timestamp_granularities or [],
        task="transcribe",
    )


@router.post("/audio/translations")
async def translations(
    request: Request,
    file: Annotated[UploadFile, Form()],
    model: Annotated[str, Form()] = "whisper-1",
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[float, Form()] = 0.0,
) -> Response:
    return await _handle(
        request,
        file=file,
        model=model,
        language=None,
        prompt=prompt,
        response_format=response_format,
        temperature=temperature,
        granularities=[],
        task="translate",
    )


@router.get("/models")
async def models(request: Request) -> dict[str, Any]:
    service: Service = request.app.state.service
    return {
        "object": "list",
        "data": [{"id": m.id, "object": "model", "owned_by": "voxgate"} for m in service.list_models()],
    }
