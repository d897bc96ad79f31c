"""A fake of OpenAI's ``POST /v1/audio/transcriptions`` (and of Groq's copy at ``/openai/v1``).

Checks what OpenAI checks: ``Authorization: Bearer <key>`` exactly, a multipart body, a ``file`` part whose name
has an audio extension, a known ``model``, only documented fields, ``response_format`` and
``timestamp_granularities[]`` the model supports (``gpt-4o-*``: ``json``/``text`` only, no granularities;
granularities need ``verbose_json``), ``temperature`` in [0, 1], an ISO-639-1 ``language``. The file must also be the
16 kHz mono 16-bit WAV voxgate promises to send.

Answers like the vendor: ``verbose_json`` has ``task``, ``language`` as an English name (lower case as OpenAI
writes it; capitalised by the Groq fake, so the adapter's case-blind mapping is exercised), ``duration``, ``text``,
``segments[]`` (one per sentence, text with a leading space, Whisper's decoding statistics), ``words[]`` without
punctuation, ``usage``; ``json`` has ``text`` and ``usage``. Errors are ``{"error": {"message", "type", "param",
"code"}}``. The text comes from voxgate's local engine, which gets the request's ``language``, ``prompt`` (as
Whisper's previous-text prompt, as OpenAI uses it) and ``temperature``.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from tests.engines.fake_vendors import FakeVendor, WireError, faulted, read_wav, received_from
from voxgate.protocol.formats import LANGUAGE_NAMES
from voxgate.types import SAMPLE_RATE, Segment, Transcript, TranscriptionOptions, Word

__all__ = ["GROQ_MODELS", "OPENAI_MODELS", "create_app"]

OPENAI_MODELS = {"whisper-1": "whisper", "gpt-4o-transcribe": "text", "gpt-4o-mini-transcribe": "text"}
GROQ_MODELS = {"whisper-large-v3": "whisper", "whisper-large-v3-turbo": "whisper"}

_FIELDS = {"file", "model", "language", "prompt", "response_format", "temperature", "timestamp_granularities[]"}
_FORMATS = {"json", "text", "srt", "verbose_json", "vtt"}
_AUDIO_EXTENSIONS = (".flac", ".mp3", ".mp4", ".mpeg", ".mpga", ".m4a", ".ogg", ".wav", ".webm")
_SENTENCE_END = re.compile(r"[.?!]['\")\]]*$")


def error_body(status: int, message: str, code: str | None = None, kind: str | None = None) -> dict[str, Any]:
    default_kind = {401: "invalid_request_error", 429: "requests"}.get(status, "invalid_request_error")
    if status >= 500:
        default_kind = "server_error"
        message = "The server had an error while processing your request. Sorry about that!"
    if status == 429:
        message = "Rate limit reached for requests. Please try again in 1s."
        code = code or "rate_limit_exceeded"
    return {"error": {"message": message, "type": kind or default_kind, "param": None, "code": code}}


def _compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return round(len(raw) / len(zlib.compress(raw)), 4) if raw else 0.0


def _bare(word: str) -> str:
    """A word as OpenAI lists it: no leading or trailing punctuation."""
    return re.sub(r"^[^\w']+|[^\w']+$", "", word)


def _sentences(t: Transcript) -> list[Segment]:
    """Whisper-style segments: the local segments cut after each sentence-final word."""
    out: list[Segment] = []
    for seg in t.segments:
        if not seg.words:
            out.append(seg)
            continue
        run: list[Word] = []
        for i, w in enumerate(seg.words):
            run.append(w)
            if _SENTENCE_END.search(w.word) or i == len(seg.words) - 1:
                text = " ".join(x.word for x in run)
                out.append(
                    Segment(
                        text,
                        run[0].start,
                        run[-1].end,
                        tuple(run),
                        avg_logprob=seg.avg_logprob,
                        no_speech_prob=seg.no_speech_prob,
                    )
                )
                run = []
    return out


def verbose_json(t: Transcript, duration: float, *, words: bool, segments: bool, capitalise: bool) -> dict[str, Any]:
    name = LANGUAGE_NAMES.get(t.language or "", t.language or "")
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": name.title() if capitalise else name,
        "duration": round(duration, 2),
        "text": t.text,
    }
    pieces = _sentences(t)
    if segments:
        body["segments"] = [
            {
                "id": i,
                "seek": 0,
                "start": round(s.start, 2),
                "end": round(s.end, 2),
                "text": " " + s.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": s.avg_logprob if s.avg_logprob is not None else -0.3,
                "compression_ratio": _compression_ratio(s.text),
                "no_speech_prob": s.no_speech_prob if s.no_speech_prob is not None else 0.0,
            }
            for i, s in enumerate(pieces)
        ]
    if words:
        body["words"] = [
            {"word": _bare(w.word), "start": round(w.start, 2), "end": round(w.end, 2)}
            for s in pieces
            for w in s.words
            if _bare(w.word)
        ]
    body["usage"] = {"type": "duration", "seconds": math.ceil(duration)}
    return body


def _check(
    fields: Mapping[str, list[Any]], models: Mapping[str, str]
) -> tuple[UploadFile, str, str, list[str], TranscriptionOptions]:
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise WireError(f"Unrecognized request argument supplied: {', '.join(unknown)}")
    for name, values in fields.items():
        if len(values) > 1 and name != "timestamp_granularities[]":
            raise WireError(f"'{name}' was given {len(values)} times")
    files = fields.get("file", [])
    if not files or not isinstance(files[0], UploadFile):
        raise WireError("you must provide a 'file' (multipart file part)", code="invalid_value")
    upload = files[0]
    if not (upload.filename or "").lower().endswith(_AUDIO_EXTENSIONS):
        raise WireError(
            f"Invalid file format. Supported formats: {[e[1:] for e in _AUDIO_EXTENSIONS]}", code="invalid_value"
        )
    text = {k: v[0] for k, v in fields.items() if k != "file" and v and isinstance(v[0], str)}
    if set(text) != set(fields) - {"file"}:
        raise WireError("only 'file' may be a file part", code="invalid_value")
    model = text.get("model")
    if not model:
        raise WireError("you must provide a model parameter", code="invalid_value")
    if model not in models:
        raise WireError(
            f"The model `{model}` does not exist or you do not have access to it.", status=404, code="model_not_found"
        )
    fmt = text.get("response_format", "json")
    if fmt not in _FORMATS:
        raise WireError(f"'{fmt}' is not one of {sorted(_FORMATS)} - 'response_format'", code="invalid_value")
    granularities = fields.get("timestamp_granularities[]", [])
    if any(g not in ("word", "segment") for g in granularities):
        raise WireError(f"timestamp_granularities[] takes 'word' and 'segment', not {granularities}")
    if models[model] == "text":
        if fmt not in ("json", "text"):
            raise WireError(
                f"response_format '{fmt}' is not compatible with model '{model}'. Use 'json' or 'text' instead.",
                code="unsupported_value",
            )
        if granularities:
            raise WireError(f"timestamp_granularities[] is not supported with model '{model}'")
    elif granularities and fmt != "verbose_json":
        raise WireError("timestamp_granularities[] requires response_format=verbose_json")
    try:
        temperature = float(text.get("temperature", "0"))
    except ValueError:
        raise WireError(f"temperature {text['temperature']!r} is not a number") from None
    if not 0.0 <= temperature <= 1.0:
        raise WireError("temperature must be between 0 and 1")
    language = text.get("language")
    if language is not None and not re.fullmatch(r"[a-z]{2,3}", language):
        raise WireError(f"Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format.")
    options = TranscriptionOptions(
        language=language, prompt=text.get("prompt") or None, temperature=temperature, word_timestamps=True
    )
    return upload, model, fmt, [str(g) for g in granularities], options


def create_app(vendor: FakeVendor, *, prefix: str = "/v1", models: Mapping[str, str] = OPENAI_MODELS) -> FastAPI:
    """The fake; ``prefix="/openai/v1", models=GROQ_MODELS`` makes it Groq's (language names capitalised)."""
    app = FastAPI()
    groq = prefix.startswith("/openai")

    @app.post(f"{prefix}/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        received = vendor.record(received_from(request, "transcriptions"))
        if request.headers.get("authorization") != f"Bearer {vendor.api_key}":
            received.status = 401
            message = "Incorrect API key provided. You can find your API key at https://platform.openai.com."
            return JSONResponse(error_body(401, message, "invalid_api_key"), 401)
        scripted = await faulted(vendor, received, error_body)
        if scripted is not None:
            return scripted
        try:
            if not request.headers.get("content-type", "").startswith("multipart/form-data"):
                raise WireError("the request must be multipart/form-data")
            async with request.form() as form:
                fields: dict[str, list[Any]] = {}
                for key, value in form.multi_items():
                    fields.setdefault(key, []).append(value)
                received.form = {k: [v for v in vs if isinstance(v, str)] for k, vs in fields.items() if k != "file"}
                upload, model, fmt, granularities, options = _check(fields, models)
                received.file_name, received.file_type = upload.filename, upload.content_type
                audio = read_wav(await upload.read())
        except WireError as exc:
            received.status = exc.status
            return JSONResponse(error_body(exc.status, exc.message, exc.code), exc.status)
        duration = len(audio) / SAMPLE_RATE
        received.audio_seconds = duration
        transcript = await run_in_threadpool(vendor.transcribe, audio, options)
        received.status = 200
        if fmt == "verbose_json":
            return JSONResponse(
                verbose_json(
                    transcript,
                    duration,
                    words="word" in granularities,
                    segments=not granularities or "segment" in granularities,
                    capitalise=groq,
                )
            )
        if fmt == "json":
            body: dict[str, Any] = {"text": transcript.text}
            if models[model] == "text":
                tokens = max(1, round(duration * 10))
                out = len(transcript.text.split())
                body["usage"] = {
                    "type": "tokens",
                    "input_tokens": tokens,
                    "input_token_details": {"text_tokens": 0, "audio_tokens": tokens},
                    "output_tokens": out,
                    "total_tokens": tokens + out,
                }
            else:
                body["usage"] = {"type": "duration", "seconds": math.ceil(duration)}
            return JSONResponse(body)
        return PlainTextResponse(transcript.text + "\n")

    return app
