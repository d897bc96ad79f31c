"""Helpers for the WebSocket tests: real clips, wire frames, and receive loops that can never hang."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import LiveServer
from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_linear16
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE

__all__ = [
    "CLOSE_STREAM",
    "END_TURN",
    "PATH",
    "RECV_TIMEOUT",
    "TINY",
    "Received",
    "audio_frame",
    "clip",
    "config_frame",
    "drain",
    "expect_error",
    "fork_service",
    "mulaw_encode",
    "open_stream",
    "pcm16",
    "recv",
    "send_all",
    "send_pcm",
    "silence",
    "until_final",
    "wait_for_streams",
]

TINY = "whisper/tiny.en"
PATH = "/stt/v1/transcribe:streamBidirectional"
RECV_TIMEOUT = 30.0
"""Every single receive is bounded by this: a broken server fails a test, it never hangs it."""
END_TURN = json.dumps({"endTurn": {}})
CLOSE_STREAM = json.dumps({"closeStream": {}})

Audio = npt.NDArray[np.float32]


# -- audio ----------------------------------------------------------------------------------------------------------


@functools.cache
def clip(path: Path) -> Audio:
    """A real recording, decoded once to 16 kHz mono float32."""
    audio: Audio = decode(path)
    return audio


def silence(seconds: float) -> Audio:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def pcm16(*parts: Audio) -> bytes:
    """16 kHz LINEAR16 bytes of the parts, one after the other."""
    return encode_linear16(np.concatenate(parts))


def mulaw_encode(samples: Audio) -> bytes:
    """ITU-T G.711 mu-law compression (the classic Sun g711.c ``linear2ulaw``), for float samples in [-1, 1]."""
    pcm = np.clip(np.rint(samples.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0x00)
    magnitude = np.minimum(np.abs(pcm), 32635) + 0x84  # clip, then add the bias
    exponent = np.zeros_like(magnitude)
    for e in range(1, 8):
        exponent[magnitude >= (0x80 << e)] = e
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    encoded: bytes = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()
    return encoded


# -- frames ---------------------------------------------------------------------------------------------------------


def config_frame(model_id: str | list[str] | None = TINY, **config: Any) -> str:
    """``{"transcribeConfig": {...}}``; ``config`` uses the wire's camelCase keys."""
    body = dict(config)
    if model_id is not None:
        body["modelId"] = model_id
    return json.dumps({"transcribeConfig": body})


def audio_frame(data: bytes) -> str:
    return json.dumps({"audioChunk": {"content": base64.b64encode(data).decode("ascii")}})


def open_stream(
    server: LiveServer, *, key: str | None = None, scheme: str = "Basic", headers: dict[str, str] | None = None
) -> connect:
    """``async with open_stream(server) as ws``: a plain ``websockets`` connection to the streaming route."""
    extra = dict(headers or {})
    if key is not None:
        extra["Authorization"] = f"{scheme} {key}"
    return connect(server.ws_url + PATH, additional_headers=extra, open_timeout=10, close_timeout=5, max_size=None)


async def send_all(ws: ClientConnection, frames: Sequence[str | bytes]) -> None:
    """Send frames until the server closes the connection (it may, half way through a bad sequence)."""
    with contextlib.suppress(ConnectionClosed):
        for frame in frames:
            await ws.send(frame)


async def send_pcm(
    ws: ClientConnection,
    data: bytes,
    *,
    bytes_per_second: int = 2 * SAMPLE_RATE,
    chunk_seconds: float = 0.1,
    speed: float | None = None,
) -> None:
    """Send ``data`` as base64 ``audioChunk`` frames of ``chunk_seconds``; ``speed`` x real time, or flat out."""
    step = int(bytes_per_second * chunk_seconds)
    for start in range(0, len(data), step):
        await ws.send(audio_frame(data[start : start + step]))
        if speed is not None:
            await asyncio.sleep(chunk_seconds / speed)


# -- receiving ------------------------------------------------------------------------------------------------------


@dataclass
class Received:
    """Everything one connection received, and how the server closed it."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m[kind] for m in self.messages if kind in m]

    @property
    def kinds(self) -> list[str]:
        return [next(iter(m)) for m in self.messages]

    @property
    def names(self) -> list[str]:
        """Each message's kind, a ``result`` by what it holds (``transcription``, ``speechStarted``, ``usage``...)."""
        return [next(iter(m["result"])) if "result" in m else next(iter(m)) for m in self.messages]

    def results(self, kind: str) -> list[dict[str, Any]]:
        """The ``{"result": {kind: ...}}`` messages' bodies, in order."""
        return [r[kind] for r in self.of("result") if kind in r]

    @property
    def transcriptions(self) -> list[dict[str, Any]]:
        return [r["transcription"] for r in self.of("result") if "transcription" in r]  # not voiceProfile results

    @property
    def finals(self) -> list[dict[str, Any]]:
        return [t for t in self.transcriptions if t["isFinal"]]

    @property
    def partials(self) -> list[dict[str, Any]]:
        return [t for t in self.transcriptions if not t["isFinal"]]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.of("error")


async def recv(ws: ClientConnection, within: float = RECV_TIMEOUT) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), within)
    message = json.loads(raw)
    assert isinstance(message, dict), message
    assert len(message) == 1, message
    return message


async def until_final(ws: ClientConnection, into: Received | None = None) -> dict[str, Any]:
    """Receive until a final transcription arrives; every message lands in ``into``."""
    into = into if into is not None else Received()
    while True:
        message = await recv(ws)
        into.messages.append(message)
        assert "error" not in message, message
        t: dict[str, Any] | None = message.get("result", {}).get("transcription")
        if t is not None and t["isFinal"]:
            return t


async def drain(ws: ClientConnection, into: Received | None = None, within: float = RECV_TIMEOUT) -> Received:
    """Receive until the server closes the connection; record the close code."""
    into = into if into is not None else Received()
    try:
        while True:
            into.messages.append(await recv(ws, within))
    except ConnectionClosed as closed:
        into.close_code = closed.rcvd.code if closed.rcvd is not None else ws.close_code
        into.close_reason = closed.rcvd.reason if closed.rcvd is not None else ""
    return into


async def expect_error(ws: ClientConnection, code: str | set[str], close_code: int) -> dict[str, Any]:
    """The server's answer ends with exactly one ``{"error": ...}`` frame, then a close with ``close_code``."""
    got = await drain(ws)
    codes = {code} if isinstance(code, str) else code
    assert got.errors, f"no error frame; got {got.messages} then close {got.close_code}"
    assert got.kinds[-1] == "error", got.messages
    assert len(got.errors) == 1, got.messages
    error = got.errors[0]
    assert set(error) == {"code", "message"}, error
    assert error["code"] in codes, error
    assert isinstance(error["message"], str), error
    assert error["message"].strip(), error
    assert got.close_code == close_code, (got.close_code, error)
    return error


# -- services -------------------------------------------------------------------------------------------------------


@contextmanager
def fork_service(service: Service, *models: str, **settings: Any) -> Iterator[Service]:
    """A second :class:`Service` with some settings changed, sharing the first one's already-loaded models.

    Serve it with ``create_app(fork.settings, service=fork)``: the stream route reads keys, idle and message limits
    from the app's settings but ``max_streams`` and ``stream_max_seconds`` from the service's, so both must agree.
    Sharing the loaded weights (and the VAD and turn models) keeps this from costing a model load per test. Only the
    fork's scheduler is closed afterwards: the engines belong to ``service``.
    """
    fork = Service(service.settings.model_copy(update=settings))
    for model_id in models:
        engine = service.engine(model_id)
        fork.engines.adopt(engine)
    fork.vad = service.vad
    fork.turn_detector = service.turn_detector
    try:
        yield fork
    finally:
        fork.scheduler.close()


async def wait_for_streams(service: Service, expected: int, within: float = 5.0) -> None:
    """Poll ``service.active_streams`` until it equals ``expected``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while service.active_streams != expected:
        assert loop.time() < deadline, f"active_streams is {service.active_streams}, expected {expected}"
        await asyncio.sleep(0.05)
