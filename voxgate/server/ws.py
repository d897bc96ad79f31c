"""``/stt/v1/transcribe:streamBidirectional``: frames in, session events out. Nothing else happens here.

Every failure reaches the client as ``{"error": {"code", "message"}}`` followed by a close with the error's close code;
one stream's failure never touches another's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from voxgate.audio.pcm import PcmEncoding
from voxgate.config import Settings
from voxgate.errors import (
    IdleTimeout,
    InvalidBase64,
    PayloadTooLarge,
    ProtocolViolation,
    VoxgateError,
)
from voxgate.protocol.http import Usage, VoiceProfileOut, WordTimestamp
from voxgate.protocol.options import inactivity_timeout, session_config
from voxgate.protocol.ws import (
    AudioChunk,
    CloseStream,
    EagerEndOfTurnEvent,
    EagerEndOfTurnMessage,
    EndOfTurnEvent,
    EndOfTurnMessage,
    EndTurn,
    ResultMessage,
    SpeechEvent,
    SpeechStartedEvent,
    SpeechStartedMessage,
    SpeechStartedResult,
    SpeechStoppedEvent,
    SpeechStoppedMessage,
    SpeechStoppedResult,
    StreamTranscription,
    StreamVoiceProfile,
    TranscribeConfigMessage,
    TranscriptionResult,
    TurnResumedMessage,
    UsageMessage,
    UsageResult,
    VoiceProfileMessage,
    VoiceProfileResult,
    parse_client_message,
)
from voxgate.server.auth import TOKEN_SUBPROTOCOL, check_credentials, subprotocol_key
from voxgate.service import Service
from voxgate.streaming.events import (
    EagerEndOfTurn,
    Event,
    ProfileEvent,
    SpeechEnded,
    SpeechStarted,
    StreamClosed,
    TranscriptEvent,
    TurnEnded,
    TurnResumed,
)
from voxgate.streaming.runner import StreamRunner
from voxgate.types import VoiceProfile

__all__ = ["router", "to_wire"]

log = logging.getLogger(__name__)
router = APIRouter()

_NORMAL = 1000


def to_wire(
    event: Event, top_n: int = 3, model_id: str | None = None, profile: VoiceProfile | None = None
) -> dict[str, Any]:
    """A session event as the JSON object the client receives (every event has one; a closed stream's is its usage).

    ``model_id``: the id the stream's usage names (the requested one; None: the model that served it).
    ``profile``: the voice profile heard so far, placed in a transcription's ``voiceProfile`` as the reference API
    does (``result.transcription.voiceProfile``)."""
    message: Any
    if isinstance(event, TranscriptEvent):
        message = ResultMessage(
            result=TranscriptionResult(
                transcription=StreamTranscription(
                    transcript=event.text,
                    is_final=event.is_final,
                    word_timestamps=[WordTimestamp.of(w, event.speaker) for w in event.words],
                    language=event.language,
                    language_probability=event.language_probability,
                    turn_index=event.turn,
                    start_time_seconds=event.start,
                    end_time_seconds=event.end,
                    stable_word_count=event.stable_words,
                    speaker_tag=event.speaker,
                    voice_profile=VoiceProfileOut.of(profile, top_n) if profile is not None else None,
                )
            )
        )
    elif isinstance(event, ProfileEvent):
        out = VoiceProfileOut.of(event.profile, top_n)
        message = VoiceProfileMessage(
            result=VoiceProfileResult(
                voice_profile=StreamVoiceProfile(
                    **out.model_dump(),
                    turn_index=event.turn,
                    time_seconds=event.time,
                    scope=event.scope,
                    speaker_tag=event.speaker,
                )
            )
        )
    elif isinstance(event, SpeechStarted):
        message = SpeechStartedMessage(
            result=SpeechStartedResult(
                speech_started=SpeechStartedEvent(
                    start_time_ms=round(event.time * 1000),
                    confidence=event.confidence,
                    time_seconds=event.time,
                    turn_index=event.turn,
                )
            )
        )
    elif isinstance(event, SpeechEnded):
        message = SpeechStoppedMessage(
            result=SpeechStoppedResult(
                speech_stopped=SpeechStoppedEvent(
                    silence_duration_ms=round(event.silence * 1000), time_seconds=event.time, turn_index=event.turn
                )
            )
        )
    elif isinstance(event, EagerEndOfTurn):
        message = EagerEndOfTurnMessage(
            eager_end_of_turn=EagerEndOfTurnEvent(
                transcript=event.text,
                start_time_seconds=event.start,
                end_time_seconds=event.end,
                probability=event.probability,
                time_seconds=event.time,
                turn_index=event.turn,
            )
        )
    elif isinstance(event, TurnResumed):
        message = TurnResumedMessage(turn_resumed=SpeechEvent(time_seconds=event.time, turn_index=event.turn))
    elif isinstance(event, StreamClosed):
        usage = Usage(transcribed_audio_ms=round(event.audio_seconds * 1000), model_id=model_id or event.model_id)
        message = UsageMessage(result=UsageResult(usage=usage))
    else:
        assert isinstance(event, TurnEnded)
        message = EndOfTurnMessage(
            end_of_turn=EndOfTurnEvent(
                time_seconds=event.time, turn_index=event.turn, reason=event.reason, probability=event.probability
            )
        )
    body: dict[str, Any] = message.model_dump(by_alias=True, exclude_none=True)
    return body


class _Connection:
    """One client: a receive loop feeding the runner and a send loop draining its events."""

    def __init__(self, ws: WebSocket, service: Service, settings: Settings) -> None:
        self.ws = ws
        self.service = service
        self.settings = settings
        self.runner: StreamRunner | None = None
        self.top_n = 3
        self.profile: VoiceProfile | None = None
        """The stream's latest voice profile (``stream`` scope), for the transcriptions' ``voiceProfile``."""
        self.speaker_profiles: dict[int, VoiceProfile] = {}
        self.model_id: str | None = None
        """The requested model id the usage echoes (None for a fallback list: the model that served)."""
        self.idle = settings.stream_idle_timeout_seconds
        """Seconds without a message before the stream is closed (the client may ask for less)."""

    async def receive(self, *, idle_timeout: bool = True) -> str | bytes:
        idle = self.idle
        try:
            async with asyncio.timeout(idle if idle_timeout else None):
                message = await self.ws.receive()
        except TimeoutError:
            raise IdleTimeout(f"no message for {idle:g} s; closing the stream") from None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        data: str | bytes | None = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        if len(data) > self.settings.stream_max_chunk_bytes:
            raise PayloadTooLarge(
                f"message of {len(data)} bytes exceeds the limit of {self.settings.stream_max_chunk_bytes} "
                "(VOXGATE_STREAM_MAX_CHUNK_BYTES)"
            )
        return data

    async def configure(self) -> StreamRunner:
        first = parse_client_message(await self.receive())
        if not isinstance(first, TranscribeConfigMessage):
            raise ProtocolViolation('the first message must be {"transcribeConfig": {...}}')
        cfg = first.transcribe_config
        if cfg.voice_profile_config is not None:
            self.top_n = cfg.voice_profile_config.top_n
        self.idle = inactivity_timeout(cfg, self.settings.stream_idle_timeout_seconds)
        # As the sync API does: the requested id echoed; with a fallback list, the model that did the work.
        self.model_id = cfg.model_id if isinstance(cfg.model_id, str) else None
        return await self.service.open_stream(
            cfg.model_id,
            replace(session_config(cfg), language_prior=self.settings.stream_language_prior),
            encoding=PcmEncoding(cfg.audio_encoding.value),
            sample_rate=cfg.sample_rate_hertz,
            channels=cfg.number_of_channels,
        )

    async def pump_in(self, runner: StreamRunner) -> None:
        closing = False
        while not closing:
            message = parse_client_message(await self.receive())
            if isinstance(message, TranscribeConfigMessage):
                raise ProtocolViolation("transcribeConfig may only be sent once, as the first message")
            if isinstance(message, AudioChunk):
                try:
                    data = base64.b64decode(message.audio_chunk.content, validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidBase64("audioChunk.content is not valid base64") from None
                await runner.feed(data)
                closing = runner.at_limit  # the runner ended the stream at stream_max_seconds
            elif isinstance(message, EndTurn):
                await runner.flush_audio()
                runner.end_turn()
            elif isinstance(message, CloseStream):
                await runner.flush_audio()
                runner.close()
                closing = True
        await self.discard()

    async def discard(self) -> None:
        """The stream is closing: the client only waits for its finals. Whatever it still sends (audio, garbage, a
        second closeStream) is dropped unread, so nothing it does can cost it the open turn's final; its silence is
        not idleness either."""
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))

    async def pump_out(self, runner: StreamRunner) -> None:
        while True:
            event = await runner.events.get()
            if isinstance(event, VoxgateError):
                raise event
            if isinstance(event, ProfileEvent):
                if event.scope == "stream":
                    self.profile = event.profile
                elif event.scope == "speaker" and event.speaker is not None:
                    self.speaker_profiles[event.speaker] = event.profile
            profile = self.profile
            if isinstance(event, TranscriptEvent) and event.speaker is not None:
                profile = self.speaker_profiles.get(event.speaker, profile)
            await self.ws.send_json(to_wire(event, self.top_n, self.model_id, profile))
            if isinstance(event, StreamClosed):  # its usage message was the last one
                return

    async def close(self, code: int, error: VoxgateError | None = None) -> None:
        if (
            self.ws.application_state is WebSocketState.DISCONNECTED
            or self.ws.client_state is WebSocketState.DISCONNECTED
        ):
            return
        with contextlib.suppress(Exception):  # the client may already be gone
            if error is not None:
                await self.ws.send_json(error.to_dict())
            await self.ws.close(code)


@router.websocket("/stt/v1/transcribe:streamBidirectional")
async def stream(ws: WebSocket) -> None:
    service: Service = ws.app.state.service
    settings: Settings = ws.app.state.settings
    conn = _Connection(ws, service, settings)
    key = subprotocol_key(ws.scope.get("subprotocols", ()))
    await ws.accept(subprotocol=TOKEN_SUBPROTOCOL if key is not None else None)
    runner: StreamRunner | None = None
    try:
        check_credentials(ws.headers, settings, key=key)
        runner = await conn.configure()
        receiving = asyncio.create_task(conn.pump_in(runner))
        sending = asyncio.create_task(conn.pump_out(runner))
        done, _ = await asyncio.wait({receiving, sending}, return_when=asyncio.FIRST_COMPLETED)
        if sending in done:
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, VoxgateError):
                await receiving
            sending.result()  # re-raise an error event
            await conn.close(_NORMAL)
        else:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
            receiving.result()
    except WebSocketDisconnect:
        pass
    except VoxgateError as exc:
        service.metrics.errors.labels(exc.code).inc()
        await conn.close(exc.ws_close_code, exc)
    except Exception:
        log.exception("stream failed")
        service.metrics.errors.labels("internal").inc()
        await conn.close(1011, VoxgateError("internal server error"))
    finally:
        if runner is not None:
            await runner.aclose()
