"""Fake cloud vendors: small FastAPI apps that speak a vendor's documented wire format on a loopback port.

Each fake checks the request the way the vendor would (exact auth header, path, form fields or query parameters,
content type, a valid 16 kHz mono 16-bit WAV) and answers a malformed one with the vendor's own error body. A
well-formed one is transcribed with voxgate's real local engine — with the language, prompt or key terms the request
carried — and the result is formatted exactly as the vendor formats it. So an adapter test round-trips real speech
through the vendor's wire format rather than comparing canned strings.

Tests script failures per request with :meth:`FakeVendor.script` (an HTTP status with an optional ``Retry-After``, a
delay, a dropped connection, a body that is not JSON) and read what the fake received from
:attr:`FakeVendor.received`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
import time
import wave
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from voxgate.engines.base import Engine
from voxgate.types import SAMPLE_RATE, Audio, Transcript, TranscriptionOptions

__all__ = [
    "FakeVendor",
    "Fault",
    "Received",
    "WireError",
    "faulted",
    "now",
    "read_wav",
]


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
    """Answer 200 with this body (``text/html``): a proxy's page, not the vendor's JSON."""


@dataclass
class Received:
    """One request as the fake saw it."""

    at: float
    method: str
    path: str
    headers: dict[str, str]
    query: list[tuple[str, str]]
    form: dict[str, list[str]] = field(default_factory=dict)
    file_name: str | None = None
    file_type: str | None = None
    audio_seconds: float | None = None
    status: int | None = None

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


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


class FakeVendor:
    """A fake vendor's state, shared by its app (on the server thread) and the test."""

    def __init__(self, engine: Engine, *, api_key: str) -> None:
        self.engine = engine
        self.api_key = api_key
        self.faults: deque[Fault] = deque()
        self.received: list[Received] = []

    def script(self, *faults: Fault) -> None:
        """The next requests meet these faults, one each, in order; later ones are answered normally."""
        self.faults.extend(faults)

    def reset(self) -> None:
        self.faults.clear()
        self.received.clear()

    def record(self, received: Received) -> Received:
        self.received.append(received)
        return received

    def next_fault(self) -> Fault | None:
        return self.faults.popleft() if self.faults else None

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


async def faulted(
    vendor: FakeVendor, received: Received, error_body: Callable[[int, str], Mapping[str, Any]]
) -> Response | None:
    """Play the next scripted fault: a response to send instead of the real one, or None to go on."""
    fault = vendor.next_fault()
    if fault is None:
        return None
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.drop:
        received.status = 200
        return _Truncated()
    if fault.body is not None:
        received.status = 200
        return Response(fault.body, 200, media_type="text/html")
    if fault.status is not None:
        received.status = fault.status
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        return JSONResponse(dict(error_body(fault.status, "scripted failure")), fault.status, headers=headers)
    return None


def now() -> float:
    return time.monotonic()
