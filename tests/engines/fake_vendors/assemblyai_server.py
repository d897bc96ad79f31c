"""A fake AssemblyAI pre-recorded API (v2) that checks what it is sent and transcribes for real.

It answers like the vendor: ``POST /v2/upload`` (raw bytes → ``upload_url``), ``POST /v2/transcript`` (a job,
``queued``), ``GET /v2/transcript/{id}`` (``processing`` for a couple of polls, then ``completed`` with ``text`` and
``words`` in milliseconds, or ``error`` with a message). Requests are checked the way the vendor checks them and
refused with AssemblyAI's error shape (``{"error": "..."}``): the exact ``Authorization`` key, known fields only, the
deprecated ``speech_model`` refused, ``keyterms_prompt`` only on the models that take it, ``word_boost`` only on the
others, and uploads that must be 16 kHz mono 16-bit WAV (what voxgate sends).

Jobs are transcribed in the background, as at the vendor, by voxgate's real local engine (:class:`LocalRecognizer`,
Whisper tiny.en) with the request's vocabulary passed as hotwords: the fake's text, times and vocabulary are real.

Tests script failures per route (:meth:`~tests.engines.fake_vendors.Scripted.script` with ``route=`` ``upload``,
``create`` or ``poll``) and per job (:attr:`JobVendor.job_error`, :attr:`JobVendor.stall`). :class:`LocalRecognizer`,
:class:`Job` and :class:`JobVendor` (what an async-job fake is: uploads, jobs created and polled, background
transcription, faults per route) are shared with the fake Soniox.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.engines.fake_vendors import Recorder, Scripted, WireError, read_wav, timestamp
from voxgate.engines.base import Engine
from voxgate.errors import VoxgateError
from voxgate.types import Transcript, TranscriptionOptions

__all__ = ["API_KEY", "FakeAssemblyAI", "Job", "JobVendor", "LocalRecognizer", "error_body"]

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


@dataclass
class Job:
    """One transcription job: ``queued``, ``processing`` as it is polled, then ``completed`` or ``error``."""

    id: str
    body: dict[str, Any]
    wav: bytes
    future: Future[Transcript] | None
    created_at: str = field(default_factory=timestamp)
    polls: int = 0
    status: str = "queued"
    transcript: Transcript | None = None
    error: str | None = None


class JobVendor(Scripted, ABC):
    """A fake async-job API: uploads, a job created from one, polled until done, transcribed in the background by
    ``engine`` (through a :class:`LocalRecognizer`). Serve :attr:`app` (e.g. with ``LiveServer``); :meth:`close` stops
    its background work.

    Every request passes :class:`~tests.engines.fake_vendors.Recorder` (recorded, its route's scripted fault played),
    then the key check, then the vendor's handlers: its upload route and what else it has (:meth:`routes`), and the
    job routes all such vendors share — ``POST {jobs_path}`` (checked by :meth:`check`, recorded in :attr:`created`)
    and ``GET {jobs_path}/{id}`` (the job as :meth:`view` shows it)."""

    name: ClassVar[str]
    routes_named: ClassVar[tuple[tuple[str, str, str], ...]]
    """``(method, path pattern, name)`` of each of the vendor's routes: what a request's route is called."""
    jobs_path: ClassVar[str]
    created_status: ClassVar[int] = 200
    upload_field: ClassVar[str]
    """The field of a job request naming its upload."""
    not_found: ClassVar[str]
    unauthorized: ClassVar[str]

    def __init__(self, engine: Engine, *, api_key: str, polls_to_complete: int = 2) -> None:
        super().__init__(api_key=api_key)
        self.recognize = LocalRecognizer(engine)
        self.polls_to_complete = polls_to_complete
        self.uploads: dict[str, bytes] = {}
        """Uploads not deleted yet."""
        self.jobs: dict[str, Job] = {}
        """Jobs not deleted yet."""
        self.created: list[dict[str, Any]] = []
        """Every accepted job request's body, in order."""
        self.job_error: str | None = None
        """When set, jobs end with ``status: "error"`` and this message."""
        self.stall = False
        """When set, jobs stay ``processing`` for ever."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fake-{self.name}")
        self.app = self._build()

    def reset(self) -> None:
        super().reset()
        self.uploads.clear()
        self.jobs.clear()
        self.created.clear()
        self.job_error = None
        self.stall = False

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    # -- what a vendor fills in -------------------------------------------------------------------------------------

    @abstractmethod
    def error_body(self, status: int, message: str) -> dict[str, Any]:
        """The vendor's error body."""

    @abstractmethod
    def authorized(self, authorization: str | None) -> bool:
        """Whether this ``Authorization`` header carries the key."""

    @abstractmethod
    def check(self, body: object) -> str | None:
        """What the vendor would refuse in a job request, or None."""

    @abstractmethod
    def hears(self, body: dict[str, Any]) -> tuple[str | None, tuple[str, ...], str | None]:
        """The language, key terms and prompt a job request asks the recogniser for."""

    @abstractmethod
    def view(self, job: Job) -> dict[str, Any]:
        """The job as the vendor shows it."""

    @abstractmethod
    def routes(self, app: FastAPI) -> None:
        """Add the vendor's own routes (the upload, ...)."""

    # -- the app ----------------------------------------------------------------------------------------------------

    def route(self, method: str, path: str) -> str:
        """The name of a request's route (``upload``, ``create``, ``poll``, ...)."""
        named = (name for m, pattern, name in self.routes_named if m == method and re.fullmatch(pattern, path))
        return next(named, f"{method} {path}")

    def refuse(self, status: int, message: str) -> JSONResponse:
        return JSONResponse(self.error_body(status, message), status_code=status)

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def authenticate(request: Request, call_next: Any) -> Any:
            if not self.authorized(request.headers.get("authorization")):
                return self.refuse(401, self.unauthorized)
            return await call_next(request)

        app.add_middleware(Recorder, vendor=self, route=self.route, error_body=self.error_body)

        @app.post(self.jobs_path, status_code=self.created_status)
        async def create(request: Request) -> JSONResponse:
            try:
                body = await request.json()
            except ValueError:
                return self.refuse(400, "Request body is not valid JSON")
            problem = self.check(body)
            if problem:
                return self.refuse(400, problem)
            self.created.append(body)
            job = Job(str(uuid.uuid4()), body, self.uploads[body[self.upload_field]], None)
            if not self.stall and self.job_error is None:
                job.future = self._executor.submit(self.recognize, job.wav, *self.hears(body))
            self.jobs[job.id] = job
            return JSONResponse(self.view(job), status_code=self.created_status)

        @app.get(self.jobs_path + "/{job_id}")
        async def poll(job_id: str) -> JSONResponse:
            job = self.jobs.get(job_id)
            if job is None:
                return self.refuse(404, self.not_found)
            self._advance(job)
            return JSONResponse(self.view(job))

        self.routes(app)
        return app

    def _advance(self, job: Job) -> None:
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


# -- the fake AssemblyAI --------------------------------------------------------------------------------------------


def error_body(status: int, message: str) -> dict[str, Any]:
    if status == 429:
        message = "Too many requests"
    elif status >= 500:
        message = "Service unavailable" if status == 503 else "Internal server error"
    return {"error": message}


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


class FakeAssemblyAI(JobVendor):
    """The fake vendor."""

    name = "assemblyai"
    routes_named = (
        ("POST", "/v2/upload", "upload"),
        ("POST", "/v2/transcript", "create"),
        ("GET", "/v2/transcript/[^/]+", "poll"),
    )
    jobs_path = "/v2/transcript"
    upload_field = "audio_url"
    not_found = "Transcript not found"
    unauthorized = "Authentication error, API token missing/invalid"

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return error_body(status, message)

    def authorized(self, authorization: str | None) -> bool:
        return authorization == self.api_key

    def routes(self, app: FastAPI) -> None:
        @app.post("/v2/upload")
        async def upload(request: Request) -> JSONResponse:
            data = await request.body()
            try:
                read_wav(data)
            except WireError as exc:
                return self.refuse(422, f"Upload is not the 16 kHz mono WAV voxgate sends: {exc.message}")
            upload_url = f"https://cdn.assemblyai.com/upload/{uuid.uuid4()}"
            self.uploads[upload_url] = data
            return JSONResponse({"upload_url": upload_url})

    def check(self, body: object) -> str | None:
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

    def hears(self, body: dict[str, Any]) -> tuple[str | None, tuple[str, ...], str | None]:
        code = body.get("language_code")
        language = code.split("_")[0] if isinstance(code, str) and code else None
        return language, tuple(body.get("keyterms_prompt") or body.get("word_boost") or ()), None

    def view(self, job: Job) -> dict[str, Any]:
        """The transcript resource as AssemblyAI shows it."""
        body = job.body
        detect = bool(body.get("language_detection"))
        view: dict[str, Any] = {
            "id": job.id,
            "status": job.status,
            "audio_url": body["audio_url"],
            "speech_models": body["speech_models"],
            "speech_model_used": body["speech_models"][0] if job.status == "completed" else None,
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
            "error": job.error,
        }
        transcript = job.transcript
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
