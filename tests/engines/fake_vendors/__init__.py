"""Fake cloud vendors: small FastAPI apps that speak a vendor's documented wire format on a loopback port.

Each fake checks the request the way the vendor would (exact auth header, path, form fields or query parameters,
content type, a valid 16 kHz mono 16-bit WAV) and answers a malformed one with the vendor's own error body. A
well-formed one is transcribed with voxgate's real local engine — with the language, prompt or key terms the request
carried — and the result is formatted exactly as the vendor formats it. So an adapter test round-trips real speech
through the vendor's wire format rather than comparing canned strings.

Every fake is a :class:`Scripted`: tests script failures with :meth:`Scripted.script` (an HTTP status with an optional
``Retry-After``, a delay, a dropped connection, a body of the test's own), for whatever request comes next or for the
next requests to one route (the fakes of async-job APIs name theirs: ``upload``, ``create``, ``poll``, ...), and read
what the fake received, with the status it answered, from :attr:`Scripted.received`. A fake whose app answers every
route plays its faults with :class:`Recorder`; the others call :func:`faulted` where their handler allows.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import threading
import time
import wave
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxgate.engines.base import Engine
from voxgate.types import SAMPLE_RATE, Audio, Transcript, TranscriptionOptions

__all__ = [
    "FakeVendor",
    "Fault",
    "Received",
    "Recorder",
    "Scripted",
    "WireError",
    "faulted",
    "now",
    "read_wav",
    "received_from",
    "timestamp",
]

ErrorBody = Callable[[int, str], Mapping[str, Any]]
"""A vendor's error body for an HTTP status and a message."""


# -- scripted failures and recorded requests ---------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """How the fake answers one request instead of (or before) transcribing it."""

    status: int | None = None
    """Answer this HTTP status with the vendor's error body."""
    retry_after: str | None = None
    """``Retry-After`` header of that answer."""
    delay: float = 0.0
    """Seconds to wait before answering (then answer normally unless another field says otherwise)."""
    drop: bool = False
    """Start a 200 answer, send part of its body and close the connection."""
    body: bytes | None = None
    """Answer 200 with this body: a proxy's page (served as ``text/html``), or JSON of the test's own."""
    drip: float = 0.0
    """Answer 200 and send its body one byte every this many seconds (for ever, as far as any client cares)."""


@dataclass
class Received:
    """One request as the fake saw it."""

    at: float
    method: str
    path: str
    headers: dict[str, str]
    query: list[tuple[str, str]]
    route: str = ""
    """The vendor's name for what was asked (``listen``, ``upload``, ``poll``, ...)."""
    form: dict[str, list[str]] = field(default_factory=dict)
    file_name: str | None = None
    file_type: str | None = None
    audio_seconds: float | None = None
    status: int | None = None

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


def received_from(connection: HTTPConnection, route: str = "") -> Received:
    """A request (or a WebSocket handshake) as the fake saw it, answered with nothing yet."""
    return Received(
        at=now(),
        method=connection.scope.get("method", "GET"),
        path=connection.url.path,
        headers={k.lower(): v for k, v in connection.headers.items()},
        query=list(connection.query_params.multi_items()),
        route=route,
    )


class WireError(Exception):
    """The request is not what the vendor accepts: answered with ``status`` and the vendor's error body."""

    def __init__(self, message: str, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def read_wav(data: bytes) -> Audio:
    """The samples of a 16 kHz mono 16-bit PCM WAV; :class:`WireError` for anything else."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            pcm = w.readframes(frames)
    except (wave.Error, EOFError) as exc:
        raise WireError(f"the audio is not a valid WAV file: {exc}") from exc
    if (channels, width, rate) != (1, 2, SAMPLE_RATE):
        raise WireError(f"expected 16 kHz mono 16-bit audio, got {rate} Hz, {channels} channel(s), {8 * width}-bit")
    if frames == 0 or len(pcm) != 2 * frames:
        raise WireError("the WAV file holds no (or truncated) audio")
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


_CACHE: dict[tuple[str, str, TranscriptionOptions], Transcript] = {}
_CACHE_LOCK = threading.Lock()


class Scripted:
    """What every fake vendor keeps, shared by its app (on the server thread) and the test: the key it accepts, the
    faults scripted for it, what it received."""

    def __init__(self, *, api_key: str) -> None:
        self.api_key = api_key
        self.faults: defaultdict[str | None, deque[Fault]] = defaultdict(deque)
        self.received: list[Received] = []
        self.busy = 0
        """Requests being answered now (counted where a :class:`Recorder` sees them)."""

    @property
    def calls(self) -> list[str]:
        """The route of every request received, in order."""
        return [r.route for r in self.received]

    def script(self, *faults: Fault, route: str | None = None) -> None:
        """The next requests (to ``route``; to any route when None) meet these faults, one each, in order; later
        ones are answered normally."""
        self.faults[route].extend(faults)

    def next_fault(self, route: str) -> Fault | None:
        """The fault a request to ``route`` meets: the next one scripted for its route, else for any route."""
        for queue in (self.faults.get(route), self.faults.get(None)):
            if queue:
                return queue.popleft()
        return None

    def reset(self) -> None:
        self.faults.clear()
        self.received.clear()

    def settle(self, within: float = 5.0) -> None:
        """Wait (on the test's thread) until the fake is answering nothing: a request scripted to be answered late
        outlives the client that gave up on it, and must be done before the fake is reset for the next test."""
        deadline = time.monotonic() + within
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.01)

    def record(self, received: Received) -> Received:
        self.received.append(received)
        return received

    def close(self) -> None:
        """Stop the fake's background work (it has none unless a subclass says otherwise)."""


class FakeVendor(Scripted):
    """A fake vendor transcribing with a local engine."""

    def __init__(self, engine: Engine, *, api_key: str) -> None:
        super().__init__(api_key=api_key)
        self.engine = engine

    def transcribe(self, audio: Audio, options: TranscriptionOptions) -> Transcript:
        """The local engine's transcript of ``audio``; identical requests (retries) reuse it."""
        key = (self.engine.model_id, hashlib.sha256(audio.tobytes()).hexdigest(), options)
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
            if cached is None:
                cached = _CACHE[key] = self.engine.transcribe_utterance(audio, options)
        return cached


class _Truncated(Response):
    """A 200 whose body stops short of its ``Content-Length``: the server closes the connection mid-answer."""

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"text": "And so my fel', "more_body": False})


class _Drip(Response):
    """A 200 that never ends: one byte of JSON every ``interval`` seconds, each read quick enough for a per-read
    timeout to pass."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"text": "', "more_body": True})
        for _ in range(600):  # a minute at 0.1 s, unless the client hangs up first (it should)
            try:
                await asyncio.wait_for(gone.wait(), self.interval)
                break
            except TimeoutError:
                await send({"type": "http.response.body", "body": b"a", "more_body": True})
        watcher.cancel()
        await send({"type": "http.response.body", "body": b'"}', "more_body": False})


def _media_type(body: bytes) -> str:
    try:
        json.loads(body)
    except ValueError:
        return "text/html"
    return "application/json"


async def faulted(vendor: Scripted, received: Received, error_body: ErrorBody) -> Response | None:
    """Play the next fault scripted for the request's route: a response to send instead of the real one, or None to
    go on."""
    fault = vendor.next_fault(received.route)
    if fault is None:
        return None
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.drop:
        received.status = 200
        return _Truncated()
    if fault.drip:
        received.status = 200
        return _Drip(fault.drip)
    if fault.body is not None:
        received.status = 200
        return Response(fault.body, 200, media_type=_media_type(fault.body))
    if fault.status is not None:
        received.status = fault.status
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        return JSONResponse(dict(error_body(fault.status, "scripted failure")), fault.status, headers=headers)
    return None


class Recorder:
    """ASGI middleware for a fake whose faults are scripted per route: records every HTTP request (``route`` names
    it from its method and path) with the status it is answered with, and plays its next scripted fault before the
    app sees it. Added last, it is outermost: it sees every request, the refused ones too."""

    def __init__(self, app: ASGIApp, vendor: Scripted, route: Callable[[str, str], str], error_body: ErrorBody) -> None:
        self.app = app
        self.vendor = vendor
        self.route = route
        self.error_body = error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = self.vendor.record(received_from(HTTPConnection(scope), self.route(scope["method"], scope["path"])))

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                received.status = message["status"]
            await send(message)

        self.vendor.busy += 1
        try:
            scripted = await faulted(self.vendor, received, self.error_body)
            if scripted is not None:
                await scripted(scope, receive, answer)
            else:
                await self.app(scope, receive, answer)
        finally:
            self.vendor.busy -= 1


def now() -> float:
    return time.monotonic()


def timestamp() -> str:
    """The time as vendors write it: ISO 8601 in UTC with a ``Z``."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
