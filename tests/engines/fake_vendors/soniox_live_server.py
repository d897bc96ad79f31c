"""A fake of Soniox's real-time WebSocket API (``/transcribe-websocket``) that transcribes for real.

The handshake is checked as Soniox checks it: ``Authorization: Bearer <key>`` exactly (else HTTP 401 with Soniox's
error body). Without that header the deprecated ``api_key`` of the start message is checked instead (a wrong one is
answered with ``{"error_code": 401, ...}`` and a close). The first message must be the JSON configuration: known
fields only, a real-time ``model``, ``audio_format: "pcm_s16le"`` with ``sample_rate: 16000`` and
``num_channels: 1`` (what voxgate sends; the fake decodes nothing else), ``language_hints`` a list of known codes,
``context`` an object of known fields; a bad one is answered with ``error_code`` 400 and a close. Every accepted
configuration is kept in :attr:`~LiveVendor.sessions`.

Then it behaves like the vendor: binary frames are audio; ``{"type": "keepalive"}`` keeps the socket open;
``{"type": "finalize"}`` makes everything received before it final — its tokens are sent ``is_final: true`` in two
messages (all but the last token, then the last one with the ``<fin>`` marker), so a word can be split across
messages as Soniox does; an empty frame ends the stream (the rest made final, ``{"finished": true}``, close 1000).
Every :attr:`~LiveVendor.interim_every` seconds of new audio it sends the non-final tokens of the audio since its
last final, transcribed by voxgate's local engine and cut into sub-word tokens as the batch fake does. With
``enable_endpoint_detection`` it also ends utterances at pauses (final tokens and ``<end>``). Nothing heard for
:attr:`~LiveVendor.idle_timeout` seconds: ``error_code`` 408 and a close. Scripted faults as for the other live fakes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, WebSocketDisconnect

from tests.engines.fake_vendors.deepgram_live_server import Connection, FakeLiveSession, LiveVendor, live_app
from tests.engines.fake_vendors.soniox_server import API_KEY, soniox_error, tokens
from voxgate.models.catalog import WHISPER_LANGUAGES
from voxgate.types import SAMPLE_RATE, TranscriptionOptions, Word

__all__ = ["API_KEY", "RT_MODELS", "create_app"]

RT_MODELS = frozenset({"stt-rt-v3", "stt-rt-v4", "stt-rt-v5", "stt-rt-preview"})
FIELDS = frozenset(
    {
        "api_key",
        "model",
        "audio_format",
        "sample_rate",
        "num_channels",
        "language_hints",
        "enable_language_identification",
        "enable_speaker_diarization",
        "enable_endpoint_detection",
        "language_hints_strict",
        "max_endpoint_delay_ms",
        "context",
        "client_reference_id",
        "translation",
    }
)
CONTEXT_FIELDS = frozenset({"general", "text", "terms", "translation_terms"})
_END = "!end"


def check_config(config: Any, header_auth: bool, api_key: str) -> tuple[int, str] | None:
    """Why Soniox would refuse this configuration: ``(error_code, error_message)``; None when it is good."""
    if not isinstance(config, dict):
        return 400, "The first message must be a JSON object with the configuration."
    if not header_auth and config.get("api_key") != api_key:
        return 401, "Invalid API key."
    unknown = sorted(set(config) - FIELDS)
    if unknown:
        return 400, f"Unknown field(s): {', '.join(unknown)}"
    if config.get("model") not in RT_MODELS:
        return 400, f"Invalid model {config.get('model')!r}; use one of {sorted(RT_MODELS)}"
    audio = (config.get("audio_format"), config.get("sample_rate"), config.get("num_channels"))
    if audio != ("pcm_s16le", SAMPLE_RATE, 1):
        return 400, f"This fake takes pcm_s16le at 16000 Hz, 1 channel only (got {audio})"
    hints = config.get("language_hints", [])
    if not isinstance(hints, list) or not all(isinstance(h, str) and h in WHISPER_LANGUAGES for h in hints):
        return 400, f"Invalid language_hints: {hints!r}"
    context = config.get("context", {})
    if not isinstance(context, dict) or set(context) - CONTEXT_FIELDS:
        return 400, f"Invalid context: {context!r}"
    terms = context.get("terms", [])
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        return 400, "context.terms must be a list of strings"
    if not general_ok(context.get("general", [])):
        return 400, "context.general must be a list of {key, value} string pairs"
    delay = config.get("max_endpoint_delay_ms", 2000)
    if not isinstance(delay, int) or not 500 <= delay <= 3000:
        return 400, "max_endpoint_delay_ms must be an integer between 500 and 3000"
    for flag in ("language_hints_strict", "enable_endpoint_detection"):
        if not isinstance(config.get(flag, False), bool):
            return 400, f"{flag} must be a boolean"
    return None


def general_ok(general: Any) -> bool:
    """``context.general``: a list of ``{"key", "value"}`` objects of strings."""
    return isinstance(general, list) and all(
        isinstance(g, dict) and set(g) == {"key", "value"} and all(isinstance(v, str) for v in g.values())
        for g in general
    )


class SonioxSession(FakeLiveSession):
    def __init__(self, connection: Connection, options: TranscriptionOptions, *, endpoint: bool) -> None:
        super().__init__(connection, options)
        self.spoken = False
        """Some final word has been sent (the next token starts with a space)."""
        if endpoint:
            self.endpoint_silence = connection.vendor.endpoint_silence or 0.5

    def check_audio(self, data: bytes) -> str | None:
        if not data:
            return _END
        return super().check_audio(data)

    def tokens(self, words: Sequence[Word], *, is_final: bool) -> list[dict[str, Any]]:
        out = tokens(words, self.options.language or "en")
        if out and self.spoken:
            out[0]["text"] = " " + out[0]["text"]
        for token in out:
            token["is_final"] = is_final
        return out

    def message(self, tokens: list[dict[str, Any]], final_ms: int | None = None) -> dict[str, Any]:
        return {
            "tokens": tokens,
            "final_audio_proc_ms": round(self.final * 1000 / SAMPLE_RATE) if final_ms is None else final_ms,
            "total_audio_proc_ms": round(self.samples * 1000 / SAMPLE_RATE),
        }

    async def make_final(self, at: int, marker: str | None) -> None:
        """Everything before sample ``at`` final: two messages (the last token apart, with ``marker``)."""
        words = await self.words(self.final, at) if at > self.final else []
        out = self.tokens(words, is_final=True)
        self.spoken = self.spoken or bool(words)
        if len(out) > 1:
            before = round(out[-1]["start_ms"])
            await self.send(self.message(out[:-1], final_ms=max(round(self.final * 1000 / SAMPLE_RATE), before)))
        self.final = max(self.final, at)
        tail = out[-1:]
        if marker is not None:
            tail.append({"text": marker, "is_final": True})
        await self.send(self.message(tail))

    async def control(self, message: dict[str, Any], at: int) -> bool:
        kind = message.get("type")
        if kind == "keepalive":
            return True
        if kind == "finalize":
            await self.make_final(at, "<fin>")
            return True
        if kind == "!invalid" and message.get("text") == "":
            await self.refuse_audio(_END)
            return False
        await self.send({"error_code": 400, "error_message": f"Unknown control message {kind!r}"})
        await self.close(1008)
        return False

    async def refuse_audio(self, reason: str) -> None:
        if reason != _END:
            await self.send({"error_code": 400, "error_message": reason})
            await self.close(1008)
            return
        await self.make_final(self.samples, None)
        await self.send({"tokens": [], "finished": True, **self.message([])})
        await self.close(1000)

    async def interim(self) -> None:
        words = await self.words(self.final, self.samples)
        await self.send(self.message(self.tokens(words, is_final=False)))

    async def endpoint(self, at: int) -> None:
        await self.make_final(at, "<end>")

    async def idle(self) -> None:
        await self.send({"error_code": 408, "error_message": "Request timeout: no audio received."})
        await self.close(1011, "timeout")


def create_app(vendor: LiveVendor) -> FastAPI:
    async def transcribe(connection: Connection) -> None:
        websocket = connection.websocket
        authorization = websocket.headers.get("authorization")
        if authorization is not None and authorization != f"Bearer {vendor.api_key}":
            await connection.deny(soniox_error(401, "Invalid API key."))
            return
        await connection.accept()
        try:
            first = await websocket.receive_text()
            config: Any = json.loads(first)
        except (ValueError, KeyError, WebSocketDisconnect):
            config = None
        refused = check_config(config, authorization is not None, vendor.api_key)
        if refused is not None:
            await websocket.send_text(json.dumps({"error_code": refused[0], "error_message": refused[1]}))
            await websocket.close(1008)
            return
        assert isinstance(config, dict)
        vendor.sessions.append(config)
        hints = config.get("language_hints") or []
        context = config.get("context") or {}
        options = TranscriptionOptions(
            language=hints[0] if len(hints) == 1 else None,
            prompts=tuple(context.get("terms") or ()),
            word_timestamps=True,
        )
        endpoint = bool(config.get("enable_endpoint_detection"))
        await SonioxSession(connection, options, endpoint=endpoint).run()

    return live_app("/transcribe-websocket", vendor, transcribe, soniox_error)
