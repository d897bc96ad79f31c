"""A fake AssemblyAI pre-recorded API (v2) that checks what it is sent and transcribes for real.

It answers like the vendor: ``POST /v2/upload`` (raw bytes → ``upload_url``), ``POST /v2/transcript`` (a job,
``queued``), ``GET /v2/transcript/{id}`` (``processing`` for a couple of polls, then ``completed`` with ``text`` and
``words`` in milliseconds, or ``error`` with a message). Requests are checked the way the vendor checks them and
refused with AssemblyAI's error shape (``{"error": "..."}``): the exact ``Authorization`` key, known fields only, the
deprecated ``speech_model`` refused, ``keyterms_prompt`` only on the models that take it, ``word_boost`` only on the
others, and uploads that must be 16 kHz mono 16-bit WAV (what voxgate sends).

Jobs are transcribed in the background, as at the vendor, by voxgate's real local engine (:class:`LocalRecognizer`,
Whisper tiny.en) with the request's vocabulary passed as hotwords: the fake's text, times and vocabulary are real.

Tests script failures per route (:meth:`FakeAssemblyAI.fail`, :class:`Fault`: a status with a body and headers, a
body that is not JSON, a dropped connection) and per job (:attr:`FakeAssemblyAI.job_error`,
:attr:`FakeAssemblyAI.stall`). :class:`LocalRecognizer`, :class:`Fault` and :class:`FaultPlan` are shared with the
fake Soniox.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import uuid
import wave
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from voxgate.engines.base import Engine
from voxgate.errors import VoxgateError
from voxgate.types import SAMPLE_RATE, Audio, Transcript, TranscriptionOptions

__all__ = ["FakeAssemblyAI", "Fault", "FaultMiddleware", "FaultPlan", "LocalRecognizer", "read_wav"]

API_KEY = "aai-test-key-0123456789"
SPEECH_MODELS = frozenset({"universal-3-pro", "universal-2", "universal", "slam-1", "best", "nano"})
KEYTERM_MODELS = frozenset({"universal-3-pro", "slam-1"})
FIELDS = frozenset(
    {
        "audio_url",
        "speech_models",
        "speech_model",
        "language_code",
        "language_detection",
        "punctuate",
        "format_text",
        "word_boost",
        "boost_param",
        "keyterms_prompt",
        "prompt",
        "speaker_labels",
        "webhook_url",
    }
)


# -- shared with the fake Soniox ------------------------------------------------------------------------------------


def read_wav(data: bytes) -> Audio:
    """The samples of a 16 kHz mono 16-bit WAV; ValueError for anything else."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, SAMPLE_RATE):
                raise ValueError(
                    f"expected 16 kHz mono 16-bit WAV, got {w.getframerate()} Hz, {w.getnchannels()} channel(s), "
                    f"{8 * w.getsampwidth()}-bit"
                )
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a WAV file: {exc}") from exc
    if not frames:
        raise ValueError("the WAV file has no samples")
    samples: Audio = (np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)
    return samples


_CACHE: dict[tuple[str, str, str | None, tuple[str, ...], str | None], Transcript] = {}
_CACHE_LOCK = threading.Lock()


class LocalRecognizer:
    """What the fakes transcribe with: a real local engine, results cached across fakes (same audio, same options)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(
        self, wav: bytes, language: str | None, terms: tuple[str, ...] = (), prompt: str | None = None
    ) -> Transcript:
        key = (self.engine.model_id, hashlib.sha256(wav).hexdigest(), language, terms, prompt)
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
            if cached is None:
                options = TranscriptionOptions(language=language, prompts=terms, prompt=prompt)
                cached = _CACHE[key] = self.engine.transcribe(read_wav(wav), options)
        return cached


@dataclass(frozen=True)
class Fault:
    """One scripted answer to one request, in place of the real one."""

    status: int = 500
    body: bytes = b'{"error": "Internal server error"}'
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    drop: bool = False
    """Start a response and close the connection before its body is complete."""

    @classmethod
    def not_json(cls) -> Fault:
        return cls(200, b"<html><body>502 Bad Gateway</body></html>", (("content-type", "text/html"),))

    @classmethod
    def dropped(cls) -> Fault:
        return cls(200, b'{"id": ', drop=True)

    async def send(self, send: Send) -> None:
        length = len(self.body) + (1000 if self.drop else 0)
        headers = [(k.encode(), v.encode()) for k, v in self.headers]
        headers.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


@dataclass
class FaultPlan:
    """Scripted faults per route, taken in order, and every request's route, recorded."""

    route: Callable[[str, str], str]
    """(method, path) → the route's name (``"upload"``, ``"poll"``, ...)."""
    faults: dict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    calls: list[str] = field(default_factory=list)

    def take(self, name: str) -> Fault | None:
        queue = self.faults.get(name)
        return queue.pop(0) if queue else None

    def reset(self) -> None:
        self.faults.clear()
        self.calls.clear()


class FaultMiddleware:
    """ASGI middleware: record each request's route, answer with its next scripted fault if it has one."""

    def __init__(self, app: ASGIApp, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            name = self.plan.route(scope["method"], scope["path"])
            self.plan.calls.append(name)
            fault = self.plan.take(name)
            if fault is not None:
                await fault.send(send)
                return
        await self.app(scope, receive, send)


# -- the fake AssemblyAI --------------------------------------------------------------------------------------------


def _route(method: str, path: str) -> str:
    if method == "POST" and path == "/v2/upload":
        return "upload"
    if method == "POST" and path == "/v2/transcript":
        return "create"
    if method == "GET" and re.fullmatch(r"/v2/transcript/[^/]+", path):
        return "poll"
    return f"{method} {path}"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


@dataclass
class _Job:
    id: str
    body: dict[str, Any]
    wav: bytes
    future: Future[Transcript] | None
    polls: int = 0


class FakeAssemblyAI:
    """The fake vendor. Serve :attr:`app` (e.g. with ``LiveServer``); :meth:`close` stops its background work."""

    def __init__(self, recognize: LocalRecognizer, *, api_key: str = API_KEY, polls_to_complete: int = 2) -> None:
        self.recognize = recognize
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.plan = FaultPlan(_route)
        self.uploads: dict[str, bytes] = {}
        self.jobs: dict[str, _Job] = {}
        self.created: list[dict[str, Any]] = []
        """Every accepted ``POST /v2/transcript`` body, in order."""
        self.job_error: str | None = None
        """When set, jobs end with ``status: "error"`` and this message."""
        self.stall = False
        """When set, jobs stay ``processing`` for ever."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fake-assemblyai")
        self.app = self._build()

    @property
    def calls(self) -> list[str]:
        return self.plan.calls

    def fail(self, route: str, *faults: Fault) -> None:
        """Answer the next requests to ``route`` (``upload``, ``create``, ``poll``) with ``faults``, in order."""
        self.plan.faults[route].extend(faults)

    def reset(self) -> None:
        self.plan.reset()
        self.created.clear()
        self.job_error = None
        self.stall = False

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    # -- the app --------------------------------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def authenticate(request: Request, call_next: Any) -> Any:
            if request.headers.get("authorization") != self.api_key:
                return _error(401, "Authentication error, API token missing/invalid")
            return await call_next(request)

        app.add_middleware(FaultMiddleware, plan=self.plan)  # outermost: sees every request, before auth

        @app.post("/v2/upload")
        async def upload(request: Request) -> JSONResponse:
            data = await request.body()
            try:
                read_wav(data)
            except ValueError as exc:
                return _error(422, f"Upload is not the 16 kHz mono WAV voxgate sends: {exc}")
            upload_url = f"https://cdn.assemblyai.com/upload/{uuid.uuid4()}"
            self.uploads[upload_url] = data
            return JSONResponse({"upload_url": upload_url})

        @app.post("/v2/transcript")
        async def create(request: Request) -> JSONResponse:
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "Request body is not valid JSON")
            problem = self._check(body)
            if problem:
                return _error(400, problem)
            self.created.append(body)
            job = _Job(str(uuid.uuid4()), body, self.uploads[body["audio_url"]], None)
            if not self.stall and self.job_error is None:
                job.future = self._executor.submit(self._transcribe, job)
            self.jobs[job.id] = job
            return JSONResponse(self._view(job, "queued"))

        @app.get("/v2/transcript/{job_id}")
        async def poll(job_id: str) -> JSONResponse:
            job = self.jobs.get(job_id)
            if job is None:
                return _error(404, "Transcript not found")
            job.polls += 1
            if self.stall or job.polls <= self.polls_to_complete:
                return JSONResponse(self._view(job, "processing"))
            if self.job_error is not None:
                return JSONResponse(self._view(job, "error", error=self.job_error))
            assert job.future is not None
            if not job.future.done():
                return JSONResponse(self._view(job, "processing"))
            try:
                transcript = job.future.result()
            except VoxgateError as exc:
                return JSONResponse(self._view(job, "error", error=f"Transcription failed: {exc.message}"))
            return JSONResponse(self._view(job, "completed", transcript=transcript))

        return app

    def _check(self, body: object) -> str | None:
        """What the vendor would refuse in a transcript request, or None."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            return f"Unknown parameters: {', '.join(unknown)}"
        if "speech_model" in body:
            return "speech_model is deprecated. Use 'speech_models' instead."
        if body.get("audio_url") not in self.uploads:
            return "audio_url must be an upload_url returned by /v2/upload"
        models = body.get("speech_models")
        if not _strings(models) or not models or any(m not in SPEECH_MODELS for m in models):
            return f"speech_models must be a non-empty list of {sorted(SPEECH_MODELS)}, got {models!r}"
        if "language_code" in body and not isinstance(body["language_code"], str):
            return "language_code must be a string"
        if "language_detection" in body and not isinstance(body["language_detection"], bool):
            return "language_detection must be a boolean"
        if body.get("language_code") and body.get("language_detection"):
            return "Specify either language_code or language_detection, not both"
        for flag in ("punctuate", "format_text"):
            if flag in body and not isinstance(body[flag], bool):
                return f"{flag} must be a boolean"
        model = models[0]
        if "keyterms_prompt" in body:
            if not _strings(body["keyterms_prompt"]):
                return "keyterms_prompt must be a list of non-empty strings"
            if model not in KEYTERM_MODELS:
                return f"keyterms_prompt is not supported for the {model} model"
            if "prompt" in body:
                return "prompt and keyterms_prompt cannot be used together"
        if "word_boost" in body:
            if not _strings(body["word_boost"]):
                return "word_boost must be a list of non-empty strings"
            if model in KEYTERM_MODELS:
                return f"word_boost is not supported for the {model} model; use keyterms_prompt"
        if "boost_param" in body and body["boost_param"] not in ("low", "default", "high"):
            return "boost_param must be one of low, default, high"
        return None

    def _transcribe(self, job: _Job) -> Transcript:
        body = job.body
        code = body.get("language_code")
        language = code.split("_")[0] if isinstance(code, str) and code else None
        terms = tuple(body.get("keyterms_prompt") or body.get("word_boost") or ())
        return self.recognize(job.wav, language, terms)

    def _view(
        self, job: _Job, status: str, *, transcript: Transcript | None = None, error: str | None = None
    ) -> dict[str, Any]:
        """The transcript resource as AssemblyAI shows it."""
        body = job.body
        detect = bool(body.get("language_detection"))
        view: dict[str, Any] = {
            "id": job.id,
            "status": status,
            "audio_url": body["audio_url"],
            "speech_models": body["speech_models"],
            "speech_model_used": body["speech_models"][0] if status == "completed" else None,
            "language_code": body.get("language_code", "en_us"),
            "language_detection": detect,
            "language_confidence": None,
            "punctuate": body.get("punctuate", True),
            "format_text": body.get("format_text", True),
            "word_boost": body.get("word_boost", []),
            "boost_param": body.get("boost_param"),
            "keyterms_prompt": body.get("keyterms_prompt", []),
            "text": None,
            "words": None,
            "confidence": None,
            "audio_duration": None,
            "error": error,
        }
        if transcript is not None:
            words: list[dict[str, Any]] = [
                {
                    "text": w.word,
                    "start": round(w.start * 1000),
                    "end": round(w.end * 1000),
                    "confidence": round(w.confidence, 5),
                    "speaker": None,
                }
                for w in transcript.words
            ]
            view.update(
                text=" ".join(w["text"] for w in words),
                words=words,
                confidence=round(sum(w["confidence"] for w in words) / len(words), 5) if words else None,
                audio_duration=round(transcript.duration),
            )
            if detect:
                view.update(language_code=transcript.language, language_confidence=transcript.language_probability)
        return view
