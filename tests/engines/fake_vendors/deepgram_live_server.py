"""A fake of Deepgram's live streaming API (``GET /v1/listen`` upgraded to a WebSocket) that transcribes for real.

The handshake is checked as Deepgram checks it: ``Authorization: Token <key>`` exactly (else HTTP 401 with Deepgram's
error body), a known ``model``, known query parameters with well-formed values, ``keyterm`` only on Nova-3 and
``keywords`` only on the others, ``language=multi`` only on Nova-2/Nova-3, and the raw audio format voxgate sends
(``encoding=linear16&sample_rate=16000&channels=1``); a bad request is refused with HTTP 400.

Then it behaves like the vendor: binary frames are audio; ``{"type": "KeepAlive"}`` keeps the socket open,
``{"type": "Finalize"}`` flushes, ``{"type": "CloseStream"}`` flushes, sends ``Metadata`` and closes (1000). Every
:attr:`LiveVendor.interim_every` seconds of new audio it sends an interim ``Results`` (``is_final: false``) for the
audio since its last final, transcribed by voxgate's local engine (:meth:`FakeVendor.transcribe`, hotwords from the
key terms); ``Finalize`` answers with a final ``Results`` (``is_final: true``, ``from_finalize: true``) covering
everything received before it. With :attr:`LiveVendor.endpoint_silence` set (or the ``endpointing`` parameter, in
milliseconds), it also ends an utterance by itself after that much silence following speech (a final with
``speech_final: true``), as Deepgram's endpointing does. Words carry stream times (seconds from the start of the audio
received). Nothing heard for :attr:`LiveVendor.idle_timeout` seconds closes the socket with ``1011`` ``NET-0001``.

Scripted faults (:meth:`LiveVendor.script_live`, one per connection): refuse the handshake with a status, or drop
the connection (close ``1011``) after some seconds of audio.

:class:`LiveVendor`, :class:`LiveFault`, :class:`FakeLiveSession` (the audio bookkeeping and the loop that decides
when to transcribe) and :func:`live_app` (every connection recorded, a scripted refusal played) are shared with the
other fake live APIs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from tests.engines.fake_vendors import FakeVendor, Received, WireError, received_from, timestamp
from tests.engines.fake_vendors.deepgram_server import MODELS, check_query, error_body
from voxgate.engines.base import Engine
from voxgate.models.catalog import WHISPER_LANGUAGES
from voxgate.types import SAMPLE_RATE, TranscriptionOptions, Word

__all__ = [
    "Connection",
    "FakeLiveSession",
    "LiveFault",
    "LiveVendor",
    "create_app",
    "live_app",
    "pause",
    "plain",
]

_BOOLEANS = {
    "interim_results", "punctuate", "smart_format", "numerals", "diarize", "vad_events", "profanity_filter",
    "filler_words",
}  # fmt: skip
_KNOWN = _BOOLEANS | {
    "model",
    "encoding",
    "sample_rate",
    "channels",
    "language",
    "keyterm",
    "keywords",
    "endpointing",
    "utterance_end_ms",
    "tag",
}
_SILENCE = 1e-3
"""Audio whose peak stays under this is silence: no words (Whisper would invent a "you")."""


# -- shared with the fake AssemblyAI live API ------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveFault:
    """What the fake does to one connection instead of serving it normally."""

    status: int | None = None
    """Refuse the WebSocket handshake with this HTTP status (and the vendor's error body)."""
    drop_after: float | None = None
    """Close the connection abruptly (``1011``) once this many seconds of audio have arrived."""


class LiveVendor(FakeVendor):
    """A fake live vendor's state: the engine that transcribes, its pacing, scripted faults, what it was sent."""

    def __init__(
        self,
        engine: Engine,
        *,
        api_key: str,
        interim_every: float = 1.0,
        endpoint_silence: float | None = None,
        idle_timeout: float = 10.0,
    ) -> None:
        super().__init__(engine, api_key=api_key)
        self.interim_every = interim_every
        self.endpoint_silence = endpoint_silence
        """Seconds of silence after speech after which the fake ends an utterance by itself (None: never)."""
        self.idle_timeout = idle_timeout
        self.live_faults: deque[LiveFault] = deque()
        self.controls: list[str] = []
        """The ``type`` of every text message received, in order."""
        self.sent: list[dict[str, Any]] = []
        """Every JSON message the fake sent, in order."""
        self.sessions: list[dict[str, Any]] = []
        """What each accepted session was opened with, where a session opens with a message (OpenAI's session
        update, Soniox's configuration)."""

    def script_live(self, *faults: LiveFault) -> None:
        self.live_faults.extend(faults)

    def next_live_fault(self) -> LiveFault:
        return self.live_faults.popleft() if self.live_faults else LiveFault()

    def reset(self) -> None:
        super().reset()
        self.live_faults.clear()
        self.controls.clear()
        self.sent.clear()
        self.sessions.clear()
        self.interim_every = 1.0
        self.endpoint_silence = None
        self.idle_timeout = 10.0


def plain(text: str) -> str:
    """A word as an unformatted transcript spells it: lower case, no punctuation."""
    return re.sub(r"[^\w']+", "", text).lower()


def pause(pcm: bytes | bytearray, start: int, end: int, length: float) -> int | None:
    """Where a vendor listening for ``length`` seconds of silence after speech would end an utterance in samples
    ``[start, end)`` of ``pcm`` (16-bit): the sample at which that much silence has passed (None: not yet).

    Silence is a 20 ms frame quieter than a tenth of the loud frames (the 95th percentile) of everything received."""
    frame = SAMPLE_RATE // 50
    audio = np.frombuffer(bytes(pcm), dtype="<i2").astype(np.float32) / 32768.0
    whole = audio[: len(audio) // frame * frame].reshape(-1, frame)
    if not len(whole):
        return None
    loud = float(np.percentile(np.sqrt((whole**2).mean(axis=1)), 95))
    first, last = -(-start // frame), end // frame
    if last <= first:
        return None
    levels = np.sqrt((whole[first:last] ** 2).mean(axis=1))
    silent = levels < max(0.1 * loud, _SILENCE / 10)
    needed = max(1, round(length * 50))
    spoken = False
    run = 0
    for i, quiet in enumerate(silent):
        if not quiet:
            spoken, run = True, 0
            continue
        run += 1
        if spoken and run == needed:
            return (first + i + 1) * frame
    return None


@dataclass(frozen=True)
class Connection:
    """One connection to a fake live vendor: its socket, the vendor, its handshake as recorded, its scripted fault."""

    websocket: WebSocket
    vendor: LiveVendor
    received: Received
    fault: LiveFault

    async def deny(self, response: Response) -> None:
        """Refuse the handshake with ``response`` (recorded as the handshake's status)."""
        self.received.status = response.status_code
        await self.websocket.send_denial_response(response)

    async def accept(self) -> None:
        """Accept the handshake (recorded as 101, switching protocols)."""
        self.received.status = 101
        await self.websocket.accept()


class FakeLiveSession(ABC):
    """One connection to a fake live vendor: audio and control messages are received in the background while the
    session decides, in order, what to answer — a control message at the audio position it arrived at, an endpoint
    after :attr:`endpoint_silence` seconds of silence, an interim every :attr:`LiveVendor.interim_every` seconds of new
    audio, the scripted drop, the idle timeout."""

    endpoint_silence: float | None = None
    """Seconds of silence after speech after which this session ends an utterance by itself (None: never)."""

    def __init__(self, connection: Connection, options: TranscriptionOptions) -> None:
        self.websocket = connection.websocket
        self.vendor = connection.vendor
        self.options = options
        """What the local engine is asked for."""
        self.fault = connection.fault
        self.pcm = bytearray()
        self.final = 0
        """Samples before this are final."""
        self.shown = 0
        """Samples received when the last interim was made."""
        self.controls: deque[tuple[dict[str, Any], int]] = deque()
        self.wake = asyncio.Event()
        self.gone = False
        self.heard_at = time.monotonic()
        self.started_at = time.monotonic()
        self.session_id = str(uuid.uuid4())

    # -- what a vendor fills in -------------------------------------------------------------------------------------

    @abstractmethod
    async def control(self, message: dict[str, Any], at: int) -> bool:
        """A control message that arrived after ``at`` samples; False ends the session (the socket is closed)."""

    @abstractmethod
    async def interim(self) -> None:
        """Show the hypothesis for the audio since :attr:`final`."""

    @abstractmethod
    async def endpoint(self, at: int) -> None:
        """End the utterance at sample ``at``, by itself (:attr:`endpoint_silence` seconds of silence have passed)."""

    @abstractmethod
    async def idle(self) -> None:
        """Nothing heard for :attr:`LiveVendor.idle_timeout` seconds: close as the vendor does."""

    def check_audio(self, data: bytes) -> str | None:
        """Why this audio frame is refused (None: accepted)."""
        return None if len(data) % 2 == 0 else "audio frames must hold whole 16-bit samples"

    async def refuse_audio(self, reason: str) -> None:
        await self.close(1008, reason)

    # -- helpers ----------------------------------------------------------------------------------------------------

    @property
    def samples(self) -> int:
        return len(self.pcm) // 2

    async def close(self, code: int, reason: str = "") -> None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.websocket.close(code, reason)

    async def send(self, message: dict[str, Any]) -> None:
        self.vendor.sent.append(message)
        await self.websocket.send_text(json.dumps(message))

    async def words(self, start: int, end: int) -> list[Word]:
        """The local engine's words for samples ``[start, end)``, in stream time (seconds)."""
        audio = np.frombuffer(bytes(self.pcm[2 * start : 2 * end]), dtype="<i2").astype(np.float32) / 32768.0
        if len(audio) < SAMPLE_RATE // 10 or float(np.max(np.abs(audio))) < _SILENCE:
            return []
        transcript = await run_in_threadpool(self.vendor.transcribe, audio, self.options)
        offset = start / SAMPLE_RATE
        return [
            Word(w.word.strip(), round(w.start + offset, 3), round(w.end + offset, 3), w.confidence)
            for w in transcript.words
            if w.word.strip()
        ]

    # -- the loop ---------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        receiver = asyncio.create_task(self._receive())
        try:
            await self._work()
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client left while the fake was answering
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver

    async def _receive(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                self.gone = True
            elif message.get("bytes") is not None:
                data: bytes = message["bytes"]
                refused = self.check_audio(data)
                if refused is not None:
                    self.controls.append(({"type": "!refused", "reason": refused}, self.samples))
                else:
                    self.pcm += data
            elif message.get("text") is not None:
                try:
                    control = json.loads(message["text"])
                except ValueError:
                    control = None
                if not isinstance(control, dict):
                    control = {"type": "!invalid", "text": message["text"][:200]}
                self.vendor.controls.append(str(control.get("type")))
                self.controls.append((control, self.samples))
            self.heard_at = time.monotonic()
            self.wake.set()
            if self.gone:
                return

    async def _work(self) -> None:
        vendor = self.vendor
        while not self.gone:
            idle_left = vendor.idle_timeout - (time.monotonic() - self.heard_at)
            if idle_left <= 0:
                await self.idle()
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle_left):
                    await self.wake.wait()
            self.wake.clear()
            if self.fault.drop_after is not None and self.samples >= self.fault.drop_after * SAMPLE_RATE:
                await self.close(1011, "scripted: connection dropped")
                return
            while self.controls:
                message, at = self.controls.popleft()
                if message["type"] == "!refused":
                    await self.refuse_audio(str(message["reason"]))
                    return
                if not await self.control(message, at):
                    return
            while self.endpoint_silence is not None:
                ends = pause(self.pcm, self.final, self.samples, self.endpoint_silence)
                if ends is None:
                    break
                await self.endpoint(ends)
                self.final = self.shown = ends
            if self.samples - max(self.shown, self.final) >= vendor.interim_every * SAMPLE_RATE:
                self.shown = self.samples
                await self.interim()


def live_app(
    path: str,
    vendor: LiveVendor,
    serve: Callable[[Connection], Awaitable[None]],
    refusal: Callable[[int, str], Response],
) -> FastAPI:
    """A fake live API at ``path``: each connection's handshake is recorded and, when the connection's scripted fault
    says so, refused with the vendor's ``refusal`` of that status; the others are handed to ``serve``."""
    app = FastAPI()

    @app.websocket(path)
    async def connect(websocket: WebSocket) -> None:
        connection = Connection(websocket, vendor, vendor.record(received_from(websocket)), vendor.next_live_fault())
        if connection.fault.status is not None:
            await connection.deny(refusal(connection.fault.status, "scripted failure"))
            return
        await serve(connection)

    return app


# -- Deepgram -------------------------------------------------------------------------------------------------------


def _check(query: Sequence[tuple[str, str]]) -> tuple[str, dict[str, str], list[str]]:
    model, single, terms = check_query(query, _KNOWN, _BOOLEANS)
    # The fake decodes raw LINEAR16 16 kHz mono only (what voxgate sends); Deepgram needs all three for raw audio.
    if (single.get("encoding"), single.get("sample_rate"), single.get("channels", "1")) != ("linear16", "16000", "1"):
        raise WireError("Raw audio needs encoding=linear16, sample_rate=16000 and channels=1 here.")
    endpointing = single.get("endpointing", "10")
    if endpointing != "false" and not endpointing.isdigit():
        raise WireError(f"Invalid value for 'endpointing': {endpointing!r} (milliseconds or false)")
    language = single.get("language", "en")
    if language == "multi":
        if not model.startswith(("nova-2", "nova-3")):
            raise WireError("No such model/language/tier combination found.")
    elif language.split("-")[0].lower() not in WHISPER_LANGUAGES:
        raise WireError("No such model/language/tier combination found.")
    return model, single, terms


def _word(w: Word, punctuate: bool, language: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "word": plain(w.word),
        "start": w.start,
        "end": w.end,
        "confidence": round(w.confidence, 4),
    }
    if punctuate:
        out["punctuated_word"] = w.word
    if language is not None:
        out["language"] = language
    return out


class DeepgramSession(FakeLiveSession):
    def __init__(
        self, connection: Connection, options: TranscriptionOptions, *, model: str, params: dict[str, str]
    ) -> None:
        super().__init__(connection, options)
        self.model = model
        self.punctuate = params.get("punctuate") == "true" or params.get("smart_format") == "true"
        self.interim_results = params.get("interim_results") == "true"
        self.multi = params.get("language") == "multi"
        endpointing = params.get("endpointing")
        if endpointing is None:
            self.endpoint_silence = connection.vendor.endpoint_silence
        elif endpointing != "false":
            self.endpoint_silence = int(endpointing) / 1000
        self.model_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, model))

    def results(
        self, words: Sequence[Word], start: int, end: int, *, is_final: bool, speech_final: bool, from_finalize: bool
    ) -> dict[str, Any]:
        language = "en" if self.multi and words else None
        text = " ".join(w.word if self.punctuate else plain(w.word) for w in words)
        alternative: dict[str, Any] = {
            "transcript": text,
            "confidence": round(sum(w.confidence for w in words) / len(words), 4) if words else 0.0,
            "words": [_word(w, self.punctuate, language) for w in words],
        }
        if self.multi:
            alternative["languages"] = [language] if language else []
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round((end - start) / SAMPLE_RATE, 3),
            "start": round(start / SAMPLE_RATE, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [alternative]},
            "metadata": {
                "request_id": self.session_id,
                "model_info": {"name": f"general-{self.model}", "version": MODELS[self.model], "arch": self.model},
                "model_uuid": self.model_uuid,
            },
        }

    async def flush(self, at: int, *, from_finalize: bool) -> None:
        if at > self.final:
            words = await self.words(self.final, at)
            await self.send(
                self.results(words, self.final, at, is_final=True, speech_final=True, from_finalize=from_finalize)
            )
            self.final = at

    async def control(self, message: dict[str, Any], at: int) -> bool:
        kind = message.get("type")
        if kind == "KeepAlive":
            return True
        if kind == "Finalize":
            await self.flush(at, from_finalize=True)
            return True
        if kind == "CloseStream":
            await self.flush(at, from_finalize=False)
            await self.send(
                {
                    "type": "Metadata",
                    "transaction_key": "deprecated",
                    "request_id": self.session_id,
                    "sha256": hashlib.sha256(bytes(self.pcm)).hexdigest(),
                    "created": timestamp(),
                    "duration": round(self.samples / SAMPLE_RATE, 6),
                    "channels": 1,
                    "models": [self.model_uuid],
                    "model_info": {
                        self.model_uuid: {
                            "name": f"general-{self.model}",
                            "version": MODELS[self.model],
                            "arch": self.model,
                        }
                    },
                }
            )
            await self.close(1000)
            return False
        await self.close(1008, f"DATA-0000: unknown control message {kind!r}")
        return False

    async def interim(self) -> None:
        if not self.interim_results:
            return
        end = self.samples
        words = await self.words(self.final, end)
        await self.send(self.results(words, self.final, end, is_final=False, speech_final=False, from_finalize=False))

    async def endpoint(self, at: int) -> None:
        words = await self.words(self.final, at)
        await self.send(self.results(words, self.final, at, is_final=True, speech_final=True, from_finalize=False))

    async def idle(self) -> None:
        await self.close(
            1011, "NET-0001: Deepgram did not receive audio data or a text message within the timeout window."
        )


def _refusal(status: int, message: str) -> JSONResponse:
    return JSONResponse(error_body(status, message), status)


def create_app(vendor: LiveVendor) -> FastAPI:
    async def listen(connection: Connection) -> None:
        if connection.websocket.headers.get("authorization") != f"Token {vendor.api_key}":
            await connection.deny(_refusal(401, "Invalid credentials."))
            return
        try:
            model, params, terms = _check(connection.received.query)
        except WireError as exc:
            await connection.deny(_refusal(exc.status, exc.message))
            return
        language = params.get("language", "en")
        options = TranscriptionOptions(
            language=None if language == "multi" else language.split("-")[0].lower(),
            prompts=tuple(terms),
            word_timestamps=True,
        )
        await connection.accept()
        await DeepgramSession(connection, options, model=model, params=params).run()

    return live_app("/v1/listen", vendor, listen, _refusal)
