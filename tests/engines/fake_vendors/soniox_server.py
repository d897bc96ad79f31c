"""A fake Soniox async API (v1) that checks what it is sent and transcribes for real.

It answers like the vendor: ``POST /v1/files`` (multipart ``file`` → ``{"id"}``), ``POST /v1/transcriptions`` (a job,
``queued``), ``GET /v1/transcriptions/{id}`` (``processing`` for a couple of polls, then ``completed``, or ``error``
with ``error_type`` and ``error_message``), ``GET /v1/transcriptions/{id}/transcript`` (``text`` and sub-word
``tokens``), and ``DELETE`` of both (a transcription still processing cannot be deleted: 409). Requests are checked
the way the vendor checks them and refused with Soniox's error shape (``status_code``, ``error_type``, ``message``):
``Authorization: Bearer <key>`` exactly, known fields only, an async model (real-time models are refused), a
``file_id`` it issued, ``language_hints`` as codes, ``context`` as an object with ``terms``/``text``/..., and uploads
that must be 16 kHz mono 16-bit WAV (what voxgate sends).

Jobs are transcribed in the background by voxgate's real local engine (Whisper tiny.en, through the
:class:`~tests.engines.fake_vendors.assemblyai_server.LocalRecognizer` shared with the fake AssemblyAI), with
``context.terms`` as hotwords and ``context.text`` as the prompt. Its words are then cut into Soniox-style tokens:
sub-word pieces of at most four letters, the first piece of each word with a leading space, punctuation as pieces of
its own, times in milliseconds shared out over the pieces, and ``language`` on every token when language
identification is on.

It is a :class:`~tests.engines.fake_vendors.assemblyai_server.JobVendor`, as the fake AssemblyAI is: tests script
failures per route (``upload``, ``create``, ``poll``, ``transcript``, ``delete_transcription``, ``delete_file``) and
per job (:attr:`~tests.engines.fake_vendors.assemblyai_server.JobVendor.job_error`,
:attr:`~tests.engines.fake_vendors.assemblyai_server.JobVendor.stall`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from tests.engines.fake_vendors import WireError, read_wav, timestamp
from tests.engines.fake_vendors.assemblyai_server import Job, JobVendor
from voxgate.types import Word

__all__ = ["API_KEY", "FakeSoniox", "error_body", "soniox_error", "tokens"]

API_KEY = "soniox-test-key-0123456789"
ASYNC_MODELS = frozenset({"stt-async-v3", "stt-async-v4", "stt-async-v5", "stt-async-preview"})
FIELDS = frozenset(
    {
        "model",
        "file_id",
        "audio_url",
        "language_hints",
        "enable_language_identification",
        "language_hints_strict",
        "enable_speaker_diarization",
        "context",
        "client_reference_id",
        "webhook_url",
        "translation",
    }
)
CONTEXT_FIELDS = frozenset({"general", "text", "terms", "translation_terms"})
_PIECE = 4
_PUNCT = re.compile(r"^(.*?)([^\w'’]*)$", re.DOTALL)  # noqa: RUF001
_ERROR_TYPES = {
    400: "invalid_request",
    401: "unauthenticated",
    404: "not_found",
    409: "invalid_state",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    """Soniox's error body; a 429 or 5xx says what Soniox says then, whatever ``message`` is."""
    if status == 429:
        message = "Too many requests."
    elif status >= 500:
        message = "Service unavailable." if status == 503 else "Internal error."
    return {
        "status_code": status,
        "error_type": _ERROR_TYPES.get(status, "internal_error" if status >= 500 else "invalid_request"),
        "message": message,
        "validation_errors": [],
        "request_id": str(uuid.uuid4()),
    }


def soniox_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status)


def tokens(words: Sequence[Word], language: str | None) -> list[dict[str, Any]]:
    """Words cut into Soniox tokens (see the module's docstring)."""
    out: list[dict[str, Any]] = []
    for i, word in enumerate(words):
        match = _PUNCT.match(word.word)
        core, punct = (match.group(1), match.group(2)) if match else (word.word, "")
        if not core:
            core, punct = punct, ""
        pieces = [core[j : j + _PIECE] for j in range(0, len(core), _PIECE)]
        start_ms, end_ms = round(word.start * 1000), round(word.end * 1000)
        span, done = end_ms - start_ms, 0
        for k, piece in enumerate(pieces):
            piece_start = start_ms + span * done // len(core)
            done += len(piece)
            piece_end = start_ms + span * done // len(core)
            text = (" " if i > 0 and k == 0 else "") + piece
            out.append(_token(text, piece_start, piece_end, word.confidence, language))
        if punct:
            out.append(_token(punct, end_ms, end_ms, word.confidence, language))
    return out


def _token(text: str, start_ms: int, end_ms: int, confidence: float, language: str | None) -> dict[str, Any]:
    token: dict[str, Any] = {"text": text, "start_ms": start_ms, "end_ms": end_ms, "confidence": round(confidence, 3)}
    if language is not None:
        token["language"] = language
    return token


class FakeSoniox(JobVendor):
    """The fake vendor."""

    name = "soniox"
    routes_named = (
        ("POST", "/v1/files", "upload"),
        ("POST", "/v1/transcriptions", "create"),
        ("GET", "/v1/transcriptions/[^/]+", "poll"),
        ("GET", "/v1/transcriptions/[^/]+/transcript", "transcript"),
        ("DELETE", "/v1/transcriptions/[^/]+", "delete_transcription"),
        ("DELETE", "/v1/files/[^/]+", "delete_file"),
    )
    jobs_path = "/v1/transcriptions"
    created_status = 201
    upload_field = "file_id"
    not_found = "Transcription not found."
    unauthorized = "Invalid or missing API key."

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return error_body(status, message)

    def authorized(self, authorization: str | None) -> bool:
        return authorization == f"Bearer {self.api_key}"

    def routes(self, app: FastAPI) -> None:
        @app.post("/v1/files", status_code=201)
        async def upload(request: Request) -> JSONResponse:
            async with request.form() as form:
                file = form.get("file")
                if not isinstance(file, UploadFile) or set(form) != {"file"}:
                    return self.refuse(400, "Expected one multipart field 'file' with the audio")
                data = await file.read()
                filename = file.filename
            try:
                read_wav(data)
            except WireError as exc:
                return self.refuse(400, f"Upload is not the 16 kHz mono WAV voxgate sends: {exc.message}")
            file_id = str(uuid.uuid4())
            self.uploads[file_id] = data
            created = {"id": file_id, "filename": filename, "size": len(data), "created_at": timestamp()}
            return JSONResponse(created, status_code=201)

        @app.get("/v1/transcriptions/{transcription_id}/transcript")
        async def transcript(transcription_id: str) -> JSONResponse:
            job = self.jobs.get(transcription_id)
            if job is None:
                return self.refuse(404, self.not_found)
            if job.status != "completed" or job.transcript is None:
                return self.refuse(409, f"Transcription is {job.status}, not completed.")
            identify = bool(job.body.get("enable_language_identification"))
            language = job.transcript.language if identify else None
            toks = tokens(job.transcript.words, language)
            return JSONResponse({"id": job.id, "text": "".join(t["text"] for t in toks), "tokens": toks})

        @app.delete("/v1/transcriptions/{transcription_id}")
        async def delete_transcription(transcription_id: str) -> Response:
            job = self.jobs.get(transcription_id)
            if job is None:
                return self.refuse(404, self.not_found)
            if job.status in ("queued", "processing"):
                return self.refuse(409, "Transcription is still processing.")
            del self.jobs[transcription_id]
            return Response(status_code=204)

        @app.delete("/v1/files/{file_id}")
        async def delete_file(file_id: str) -> Response:
            if self.uploads.pop(file_id, None) is None:
                return self.refuse(404, "File not found.")
            return Response(status_code=204)

    def check(self, body: object) -> str | None:
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            return f"Unknown fields: {', '.join(unknown)}"
        model = body.get("model")
        if model not in ASYNC_MODELS:
            return f"Invalid model {model!r} for async transcription; use one of {sorted(ASYNC_MODELS)}"
        if "audio_url" in body:
            return "Give either audio_url or file_id; voxgate uploads files"
        if body.get("file_id") not in self.uploads:
            return f"Unknown file_id {body.get('file_id')!r}"
        hints = body.get("language_hints", [])
        if not isinstance(hints, list) or not all(isinstance(h, str) and re.fullmatch(r"[a-z]{2}", h) for h in hints):
            return f"language_hints must be a list of ISO 639-1 codes, got {hints!r}"
        for flag in ("enable_language_identification", "enable_speaker_diarization"):
            if flag in body and not isinstance(body[flag], bool):
                return f"{flag} must be a boolean"
        if "context" in body:
            context = body["context"]
            if not isinstance(context, dict) or not context or set(context) - CONTEXT_FIELDS:
                return f"context must be an object with some of {sorted(CONTEXT_FIELDS)}"
            terms = context.get("terms", [])
            if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
                return "context.terms must be a list of non-empty strings"
            if not isinstance(context.get("text", ""), str):
                return "context.text must be a string"
            general = context.get("general", [])
            if not isinstance(general, list) or not all(
                isinstance(g, dict) and set(g) == {"key", "value"} and all(isinstance(v, str) for v in g.values())
                for g in general
            ):
                return "context.general must be a list of {key, value} string pairs"
        if not isinstance(body.get("language_hints_strict", False), bool):
            return "language_hints_strict must be a boolean"
        return None

    def hears(self, body: dict[str, Any]) -> tuple[str | None, tuple[str, ...], str | None]:
        hints = body.get("language_hints") or [None]
        context = body.get("context") or {}
        return hints[0], tuple(context.get("terms", ())), context.get("text") or None

    def view(self, job: Job) -> dict[str, Any]:
        """The transcription resource as Soniox shows it."""
        return {
            "id": job.id,
            "status": job.status,
            "created_at": job.created_at,
            "model": job.body["model"],
            "audio_url": None,
            "file_id": job.body["file_id"],
            "filename": "audio.wav",
            "language_hints": job.body.get("language_hints"),
            "enable_language_identification": bool(job.body.get("enable_language_identification")),
            "context": job.body.get("context"),
            "audio_duration_ms": round(job.transcript.duration * 1000) if job.transcript else None,
            "error_type": "transcription_failed" if job.error else None,
            "error_message": job.error,
        }
