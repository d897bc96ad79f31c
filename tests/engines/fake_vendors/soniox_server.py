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

Tests script failures per route (:meth:`FakeSoniox.fail`) and per job (:attr:`FakeSoniox.job_error`,
:attr:`FakeSoniox.stall`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from tests.engines.fake_vendors.assemblyai_server import (
    Fault,
    FaultMiddleware,
    FaultPlan,
    LocalRecognizer,
    read_wav,
)
from voxgate.errors import VoxgateError
from voxgate.types import Transcript, Word

__all__ = ["API_KEY", "FakeSoniox", "soniox_error", "tokens"]

API_KEY = "soniox-test-key-0123456789"
ASYNC_MODELS = frozenset({"stt-async-v3", "stt-async-v4", "stt-async-v5", "stt-async-preview"})
FIELDS = frozenset(
    {
        "model",
        "file_id",
        "audio_url",
        "language_hints",
        "enable_language_identification",
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


def soniox_error(status: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "status_code": status,
            "error_type": error_type,
            "message": message,
            "validation_errors": [],
            "request_id": str(uuid.uuid4()),
        },
        status_code=status,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _route(method: str, path: str) -> str:
    if path == "/v1/files" and method == "POST":
        return "upload"
    if path == "/v1/transcriptions" and method == "POST":
        return "create"
    if re.fullmatch(r"/v1/transcriptions/[^/]+", path):
        return {"GET": "poll", "DELETE": "delete_transcription"}.get(method, f"{method} {path}")
    if method == "GET" and re.fullmatch(r"/v1/transcriptions/[^/]+/transcript", path):
        return "transcript"
    if method == "DELETE" and re.fullmatch(r"/v1/files/[^/]+", path):
        return "delete_file"
    return f"{method} {path}"


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


@dataclass
class _Job:
    id: str
    body: dict[str, Any]
    file_id: str
    future: Future[Transcript] | None
    created_at: str
    polls: int = 0
    status: str = "queued"
    transcript: Transcript | None = None
    error: str | None = None


class FakeSoniox:
    """The fake vendor. Serve :attr:`app` (e.g. with ``LiveServer``); :meth:`close` stops its background work."""

    def __init__(self, recognize: LocalRecognizer, *, api_key: str = API_KEY, polls_to_complete: int = 2) -> None:
        self.recognize = recognize
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.plan = FaultPlan(_route)
        self.files: dict[str, bytes] = {}
        """Uploaded files not deleted yet."""
        self.transcriptions: dict[str, _Job] = {}
        """Transcriptions not deleted yet."""
        self.created: list[dict[str, Any]] = []
        """Every accepted ``POST /v1/transcriptions`` body, in order."""
        self.job_error: str | None = None
        """When set, jobs end with ``status: "error"`` and this ``error_message``."""
        self.stall = False
        """When set, jobs stay ``processing`` for ever."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fake-soniox")
        self.app = self._build()

    @property
    def calls(self) -> list[str]:
        return self.plan.calls

    def fail(self, route: str, *faults: Fault) -> None:
        """Answer the next requests to ``route`` (``upload``, ``create``, ``poll``, ``transcript``,
        ``delete_transcription``, ``delete_file``) with ``faults``, in order."""
        self.plan.faults[route].extend(faults)

    def reset(self) -> None:
        self.plan.reset()
        self.created.clear()
        self.files.clear()
        self.transcriptions.clear()
        self.job_error = None
        self.stall = False

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    # -- the app --------------------------------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def authenticate(request: Request, call_next: Any) -> Any:
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                return soniox_error(401, "unauthenticated", "Invalid or missing API key.")
            return await call_next(request)

        app.add_middleware(FaultMiddleware, plan=self.plan)  # outermost: sees every request, before auth

        @app.post("/v1/files", status_code=201)
        async def upload(request: Request) -> JSONResponse:
            async with request.form() as form:
                file = form.get("file")
                if not isinstance(file, UploadFile) or set(form) != {"file"}:
                    return soniox_error(400, "invalid_request", "Expected one multipart field 'file' with the audio")
                data = await file.read()
                filename = file.filename
            try:
                read_wav(data)
            except ValueError as exc:
                return soniox_error(400, "invalid_request", f"Upload is not the 16 kHz mono WAV voxgate sends: {exc}")
            file_id = str(uuid.uuid4())
            self.files[file_id] = data
            created = {"id": file_id, "filename": filename, "size": len(data), "created_at": _now()}
            return JSONResponse(created, status_code=201)

        @app.post("/v1/transcriptions", status_code=201)
        async def create(request: Request) -> JSONResponse:
            try:
                body = await request.json()
            except ValueError:
                return soniox_error(400, "invalid_request", "Request body is not valid JSON")
            problem = self._check(body)
            if problem:
                return soniox_error(400, "invalid_request", problem)
            self.created.append(body)
            job = _Job(str(uuid.uuid4()), body, body["file_id"], None, _now())
            if not self.stall and self.job_error is None:
                job.future = self._executor.submit(self._transcribe, job)
            self.transcriptions[job.id] = job
            return JSONResponse(self._view(job), status_code=201)

        @app.get("/v1/transcriptions/{transcription_id}")
        async def poll(transcription_id: str) -> JSONResponse:
            job = self.transcriptions.get(transcription_id)
            if job is None:
                return soniox_error(404, "not_found", "Transcription not found.")
            self._advance(job)
            return JSONResponse(self._view(job))

        @app.get("/v1/transcriptions/{transcription_id}/transcript")
        async def transcript(transcription_id: str) -> JSONResponse:
            job = self.transcriptions.get(transcription_id)
            if job is None:
                return soniox_error(404, "not_found", "Transcription not found.")
            if job.status != "completed" or job.transcript is None:
                return soniox_error(409, "invalid_state", f"Transcription is {job.status}, not completed.")
            identify = bool(job.body.get("enable_language_identification"))
            language = job.transcript.language if identify else None
            toks = tokens(job.transcript.words, language)
            return JSONResponse({"id": job.id, "text": "".join(t["text"] for t in toks), "tokens": toks})

        @app.delete("/v1/transcriptions/{transcription_id}")
        async def delete_transcription(transcription_id: str) -> Response:
            job = self.transcriptions.get(transcription_id)
            if job is None:
                return soniox_error(404, "not_found", "Transcription not found.")
            if job.status in ("queued", "processing"):
                return soniox_error(409, "invalid_state", "Transcription is still processing.")
            del self.transcriptions[transcription_id]
            return Response(status_code=204)

        @app.delete("/v1/files/{file_id}")
        async def delete_file(file_id: str) -> Response:
            if self.files.pop(file_id, None) is None:
                return soniox_error(404, "not_found", "File not found.")
            return Response(status_code=204)

        return app

    def _check(self, body: object) -> str | None:
        """What the vendor would refuse in a transcription request, or None."""
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
        if body.get("file_id") not in self.files:
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
        return None

    def _transcribe(self, job: _Job) -> Transcript:
        hints = job.body.get("language_hints") or [None]
        context = job.body.get("context") or {}
        return self.recognize(
            self.files[job.file_id], hints[0], tuple(context.get("terms", ())), context.get("text") or None
        )

    def _advance(self, job: _Job) -> None:
        """One poll's worth of progress: queued → processing → completed / error."""
        job.polls += 1
        if job.status not in ("queued", "processing"):
            return
        job.status = "processing"
        if self.stall or job.polls <= self.polls_to_complete:
            return
        if self.job_error is not None:
            job.status, job.error = "error", self.job_error
            return
        assert job.future is not None
        if not job.future.done():
            return
        try:
            job.transcript = job.future.result()
            job.status = "completed"
        except VoxgateError as exc:
            job.status, job.error = "error", f"Transcription failed: {exc.message}"

    def _view(self, job: _Job) -> dict[str, Any]:
        """The transcription resource as Soniox shows it."""
        return {
            "id": job.id,
            "status": job.status,
            "created_at": job.created_at,
            "model": job.body["model"],
            "audio_url": None,
            "file_id": job.file_id,
            "filename": "audio.wav",
            "language_hints": job.body.get("language_hints"),
            "enable_language_identification": bool(job.body.get("enable_language_identification")),
            "context": job.body.get("context"),
            "audio_duration_ms": round(job.transcript.duration * 1000) if job.transcript else None,
            "error_type": "transcription_failed" if job.error else None,
            "error_message": job.error,
        }
