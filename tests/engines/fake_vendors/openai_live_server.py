"""A fake of OpenAI's Realtime API in transcription mode (``/v1/realtime?intent=transcription``) that transcribes for
real.

The handshake is checked as OpenAI checks it: ``Authorization: Bearer <key>`` exactly (else HTTP 401 with OpenAI's
error body), plus ``OpenAI-Beta: realtime=v1`` and ``intent=transcription`` (else HTTP 400). On accepting, it sends
``transcription_session.created``. The first message must be ``transcription_session.update`` with known session
fields only, ``input_audio_format: "pcm16"``, ``turn_detection: null`` (voxgate commits turns itself) and an
``input_audio_transcription`` object with a known model, a string prompt and a known language; a bad one is answered
with an ``error`` event and a close. Every accepted ``session`` is kept in :attr:`~LiveVendor.sessions`.

Then it behaves like the vendor: ``input_audio_buffer.append`` carries base64 PCM16 at 24 kHz, which the fake
resamples back to 16 kHz (soxr, one stream per buffer); ``input_audio_buffer.commit`` (refused with an ``error``
event when less than 100 ms is buffered, as OpenAI does) is answered with ``input_audio_buffer.committed``, then the
buffer's transcript from voxgate's local engine as a few ``...input_audio_transcription.delta`` events (a short pause
between them, so drafts can be seen) and ``...input_audio_transcription.completed``. Binary frames are not part of
the protocol: an ``error`` event and a close. Nothing heard for :attr:`~LiveVendor.idle_timeout` seconds: an error
and a close (1011). Scripted faults as for the other live fakes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from typing import Any

import numpy as np
import soxr
from fastapi import FastAPI, WebSocketDisconnect
from fastapi.responses import JSONResponse

from tests.engines.fake_vendors.deepgram_live_server import Connection, FakeLiveSession, LiveVendor, live_app
from tests.engines.fake_vendors.openai_server import OPENAI_MODELS, error_body
from voxgate.audio.pcm import encode_linear16
from voxgate.models.catalog import WHISPER_LANGUAGES
from voxgate.types import SAMPLE_RATE, TranscriptionOptions

__all__ = ["API_KEY", "create_app"]

API_KEY = "sk-live-test-0123456789abcdef"
RATE = 24_000
SESSION_FIELDS = frozenset(
    {"input_audio_format", "input_audio_transcription", "turn_detection", "input_audio_noise_reduction", "include"}
)
TRANSCRIPTION_FIELDS = frozenset({"model", "prompt", "language"})
DELTA_PAUSE = 0.05
"""Seconds between the delta events of one transcript."""


def event_error(message: str, code: str | None = None, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {
        "type": "error",
        "event_id": f"event_{uuid.uuid4().hex[:20]}",
        "error": {"type": kind, "code": code, "message": message, "param": None, "event_id": None},
    }


def check_update(update: Any) -> str | None:
    """Why OpenAI would refuse this first message (None: it is good)."""
    if not isinstance(update, dict) or update.get("type") != "transcription_session.update":
        return "The first event must be transcription_session.update."
    session = update.get("session")
    if not isinstance(session, dict) or set(session) - SESSION_FIELDS:
        return f"Invalid session: {session!r}"
    if session.get("input_audio_format") != "pcm16":
        return "This fake takes input_audio_format pcm16 only."
    if "turn_detection" not in session or session["turn_detection"] is not None:
        return "This fake expects turn_detection: null (the client commits)."
    transcription = session.get("input_audio_transcription")
    if not isinstance(transcription, dict) or set(transcription) - TRANSCRIPTION_FIELDS:
        return f"Invalid input_audio_transcription: {transcription!r}"
    if transcription.get("model") not in OPENAI_MODELS:
        return f"Invalid model {transcription.get('model')!r}"
    if not isinstance(transcription.get("prompt", ""), str):
        return "prompt must be a string"
    if transcription.get("language", "en") not in WHISPER_LANGUAGES:
        return f"Invalid language {transcription.get('language')!r}"
    return None


class OpenAISession(FakeLiveSession):
    def __init__(self, connection: Connection, options: TranscriptionOptions) -> None:
        super().__init__(connection, options)
        self.resampler: soxr.ResampleStream | None = None
        self.buffered = 0
        """24 kHz samples appended since the last commit."""
        self.previous: str | None = None

    def check_audio(self, data: bytes) -> str | None:
        return "Binary frames are not supported; send input_audio_buffer.append events."

    async def refuse_audio(self, reason: str) -> None:
        await self.send(event_error(reason))
        await self.close(1008, "binary frame")

    def append(self, audio: Any) -> str | None:
        try:
            raw = base64.b64decode(str(audio), validate=True)
        except (binascii.Error, ValueError):
            return "audio is not valid base64"
        if len(raw) % 2:
            return "audio must hold whole 16-bit samples"
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        if self.resampler is None:
            self.resampler = soxr.ResampleStream(RATE, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        self.buffered += len(samples)
        self.pcm += encode_linear16(self.resampler.resample_chunk(samples))
        return None

    async def commit(self) -> None:
        if self.buffered < RATE // 10:
            await self.send(
                event_error(
                    f"Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but "
                    f"buffer only has {self.buffered * 1000 / RATE:.2f}ms of audio.",
                    "input_audio_buffer_commit_empty",
                )
            )
            return
        if self.resampler is not None:
            self.pcm += encode_linear16(self.resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
            self.resampler = None
        self.buffered = 0
        item_id = f"item_{uuid.uuid4().hex[:20]}"
        await self.send({"type": "input_audio_buffer.committed", "previous_item_id": self.previous, "item_id": item_id})
        self.previous = item_id
        words = await self.words(self.final, self.samples)
        self.final = self.shown = self.samples
        text = " ".join(w.word for w in words)
        pieces = [" ".join(w.word for w in words[i : i + 4]) for i in range(0, len(words), 4)]
        for n, piece in enumerate(pieces):
            delta = piece if n == 0 else " " + piece
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item_id,
                    "content_index": 0,
                    "delta": delta,
                }
            )
            await asyncio.sleep(DELTA_PAUSE)
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": text,
            }
        )

    async def control(self, message: dict[str, Any], at: int) -> bool:
        kind = message.get("type")
        if kind == "input_audio_buffer.append":
            refused = self.append(message.get("audio"))
            if refused is not None:
                await self.send(event_error(refused))
            return True
        if kind == "input_audio_buffer.commit":
            await self.commit()
            return True
        if kind == "input_audio_buffer.clear":
            self.resampler, self.buffered = None, 0
            return True
        await self.send(event_error(f"Invalid value: {kind!r}", "invalid_value"))
        return True

    async def interim(self) -> None:
        """turn_detection is off: nothing is transcribed before a commit."""

    async def endpoint(self, at: int) -> None:
        """No server VAD in this fake."""

    async def idle(self) -> None:
        await self.send(event_error("Session timed out: no audio received.", "session_expired"))
        await self.close(1011, "timeout")


def _refusal(status: int, message: str, code: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code), status_code=status)


def create_app(vendor: LiveVendor) -> FastAPI:
    async def realtime(connection: Connection) -> None:
        websocket = connection.websocket
        if websocket.headers.get("authorization") != f"Bearer {vendor.api_key}":
            await connection.deny(_refusal(401, "Incorrect API key provided.", "invalid_api_key"))
            return
        beta, intent = websocket.headers.get("openai-beta"), websocket.query_params.get("intent")
        if (beta, intent) != ("realtime=v1", "transcription"):
            await connection.deny(_refusal(400, "Expected OpenAI-Beta: realtime=v1 and intent=transcription."))
            return
        await connection.accept()
        created = {"type": "transcription_session.created", "session": {"id": f"sess_{uuid.uuid4().hex[:20]}"}}
        vendor.sent.append(created)
        await websocket.send_text(json.dumps(created))
        try:
            update: Any = json.loads(await websocket.receive_text())
        except (ValueError, KeyError, WebSocketDisconnect):
            update = None
        refused = check_update(update)
        if refused is not None:
            await websocket.send_text(json.dumps(event_error(refused)))
            await websocket.close(1008)
            return
        assert isinstance(update, dict)
        session: dict[str, Any] = update["session"]
        vendor.sessions.append(session)
        vendor.controls.append("transcription_session.update")
        transcription = session["input_audio_transcription"]
        updated = {"type": "transcription_session.updated", "session": session}
        vendor.sent.append(updated)
        await websocket.send_text(json.dumps(updated))
        options = TranscriptionOptions(
            language=transcription.get("language"), prompt=transcription.get("prompt") or None, word_timestamps=True
        )
        await OpenAISession(connection, options).run()

    return live_app("/v1/realtime", vendor, realtime, _refusal)
