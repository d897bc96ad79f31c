"""Streaming client for ``/stt/v1/transcribe:streamBidirectional`` (the wire protocol of :mod:`voxgate.protocol.ws`).

::

    async with connect("ws://127.0.0.1:8000", model_id="whisper/base") as stream:
        await stream.send_audio(pcm16_bytes)
        await stream.close_stream()
        async for message in stream:
            if isinstance(message, ResultMessage) and message.result.transcription.is_final:
                print(message.result.transcription.transcript)

Iteration yields the server's messages as the pydantic models of :mod:`voxgate.protocol.ws` and ends when the server
closes the stream normally (close code 1000, which it does after ``closeStream`` once every final is out). An error
frame raises :class:`~voxgate.client.errors.VoxgateClientError` with the server's code and message.

:func:`stream_file` does the whole round trip for a file: decode, send in chunks (in real time or as fast as
possible), close, and yield messages as they arrive.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np
import numpy.typing as npt
from pydantic import TypeAdapter, ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from voxgate.audio.pcm import encode_linear16
from voxgate.client.errors import VoxgateClientError, VoxgateConnectionError
from voxgate.client.rest import shared_fields
from voxgate.protocol.ws import (
    AudioChunk,
    AudioContent,
    CloseStream,
    EagerEndOfTurnMessage,
    Empty,
    EndOfTurnMessage,
    EndTurn,
    ErrorMessage,
    ResultMessage,
    ServerMessage,
    SpeechStartedMessage,
    SpeechStoppedMessage,
    StreamEncoding,
    StreamResult,
    StreamTranscribeConfig,
    TranscribeConfigMessage,
    TurnDetection,
    TurnResumedMessage,
    UsageMessage,
    VoiceProfileMessage,
)
from voxgate.types import SAMPLE_RATE

__all__ = [
    "STREAM_PATH",
    "AsyncStream",
    "StreamFileOptions",
    "StreamOptions",
    "StreamResult",
    "build_config",
    "connect",
    "parse_server_message",
    "stream_file",
    "stream_url",
]

log = logging.getLogger(__name__)

STREAM_PATH = "/stt/v1/transcribe:streamBidirectional"


_NORMAL_CLOSE = 1000
_DRAIN_SECONDS = 2.0
"""After a send fails because the server closed, how long to wait for the frames it sent before closing."""
_DECODE_BLOCK_SECONDS = 10.0
"""stream_file decodes this much audio at a time (in a worker thread) and slices it into chunks."""

_SERVER_MESSAGES: dict[str, TypeAdapter[Any]] = {
    "endOfTurn": TypeAdapter(EndOfTurnMessage),
    "eagerEndOfTurn": TypeAdapter(EagerEndOfTurnMessage),
    "turnResumed": TypeAdapter(TurnResumedMessage),
    "error": TypeAdapter(ErrorMessage),
}
_RESULTS: dict[str, TypeAdapter[Any]] = {
    "transcription": TypeAdapter(ResultMessage),
    "voiceProfile": TypeAdapter(VoiceProfileMessage),
    "speechStarted": TypeAdapter(SpeechStartedMessage),
    "speechStopped": TypeAdapter(SpeechStoppedMessage),
    "usage": TypeAdapter(UsageMessage),
}
"""``{"result": {...}}`` messages, by the key inside ``result``."""


def stream_url(url: str) -> str:
    """The streaming endpoint for a server URL: ``http(s)://`` becomes ``ws(s)://`` and the path is appended.

    ``http://host:8000``, ``ws://host:8000/`` and the full endpoint URL all give
    ``ws://host:8000/stt/v1/transcribe:streamBidirectional``; a URL with no scheme is taken as ``ws://``.
    """
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "ws", url
    scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme.lower())
    if scheme not in ("ws", "wss"):
        raise ValueError(f"unsupported URL scheme {scheme!r} in {url!r}: use http(s):// or ws(s)://")
    rest = rest.rstrip("/")
    if not rest.endswith(STREAM_PATH):
        rest += STREAM_PATH
    return f"{scheme}://{rest}"


def parse_server_message(raw: str | bytes) -> ServerMessage | None:
    """Parse one server frame into its pydantic model; None for a kind of message this client does not know.

    Raises :class:`VoxgateClientError` (``invalid_response``) when the frame is not a JSON object or a known message
    does not match its schema.
    """
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise VoxgateClientError("invalid_response", f"server sent a frame that is not JSON: {raw[:200]!r}") from None
    if not isinstance(obj, dict):
        raise VoxgateClientError("invalid_response", f"server sent JSON that is not an object: {raw[:200]!r}")
    result = obj.get("result")
    if isinstance(result, dict):
        for inner, adapter in _RESULTS.items():
            if inner in result:
                try:
                    found: ServerMessage = adapter.validate_python({"result": {inner: result[inner]}})
                except ValidationError as exc:
                    raise VoxgateClientError("invalid_response", f"malformed {inner!r} result: {exc}") from None
                return found
    for key, adapter in _SERVER_MESSAGES.items():
        if key in obj:
            try:
                message: ServerMessage = adapter.validate_python({key: obj[key]})
            except ValidationError as exc:
                raise VoxgateClientError("invalid_response", f"malformed {key!r} message: {exc}") from None
            return message
    log.debug("ignoring unknown server message with keys %s", sorted(obj))
    return None


def _turn_detection(value: TurnDetection | Mapping[str, Any]) -> TurnDetection:
    return value if isinstance(value, TurnDetection) else TurnDetection.model_validate(dict(value))


class StreamFileOptions(TypedDict, total=False):
    """What a stream may ask for besides its audio format (keyword arguments; unset: the server's default)."""

    model_id: str | None
    language: str | None
    prompts: Iterable[str]
    turn_detection: TurnDetection | Mapping[str, Any] | None
    partial_interval_ms: int | None
    enable_voice_profile: bool
    diarize: bool


class StreamOptions(StreamFileOptions, total=False):
    """:class:`StreamFileOptions` plus the format of the audio the caller will send."""

    sample_rate: int
    encoding: StreamEncoding | str
    channels: int


def build_config(
    *,
    model_id: str | None = None,
    language: str | None = None,
    sample_rate: int = SAMPLE_RATE,
    encoding: StreamEncoding | str = StreamEncoding.LINEAR16,
    channels: int = 1,
    prompts: Iterable[str] = (),
    turn_detection: TurnDetection | Mapping[str, Any] | None = None,
    partial_interval_ms: int | None = None,
    enable_voice_profile: bool = False,
    diarize: bool = False,
) -> StreamTranscribeConfig:
    """The ``transcribeConfig`` for these options (validated here, so a bad value fails before connecting).

    Options left at None are not set, so the server's defaults apply to them.
    """
    fields: dict[str, Any] = {
        "audio_encoding": StreamEncoding(encoding.upper() if isinstance(encoding, str) else encoding),
        "sample_rate_hertz": sample_rate,
        "number_of_channels": channels,
        **shared_fields(model_id, language, prompts, enable_voice_profile, diarize),
    }
    if turn_detection is not None:
        fields["turn_detection"] = _turn_detection(turn_detection)
    if partial_interval_ms is not None:
        fields["partial_interval_ms"] = partial_interval_ms
    return StreamTranscribeConfig.model_validate(fields)


class AsyncStream:
    """One open stream: send audio and control messages, iterate over what the server sends back.

    Sending and receiving may run in different tasks (one sender, one receiver at a time).
    """

    def __init__(self, ws: ClientConnection, config: StreamTranscribeConfig) -> None:
        self._ws = ws
        self.config = config
        self._pending: collections.deque[ServerMessage] = collections.deque()
        self._recv_lock = asyncio.Lock()
        self._finished = False

    @property
    def sample_rate(self) -> int:
        """The sample rate of the audio this stream expects, in Hz."""
        return self.config.sample_rate_hertz

    @property
    def encoding(self) -> StreamEncoding:
        """The encoding of the audio this stream expects."""
        return self.config.audio_encoding

    # -- sending -------------------------------------------------------------------------------------------------

    async def send_audio(self, pcm: bytes) -> None:
        """Send raw audio in the stream's encoding (LINEAR16: signed 16-bit little-endian) as one ``audioChunk``."""
        if not pcm:
            return
        content = base64.b64encode(pcm).decode("ascii")
        await self._send(AudioChunk(audio_chunk=AudioContent(content=content)))

    async def send_float(self, audio: npt.ArrayLike) -> None:
        """Send float audio in [-1, 1] (mono, at the stream's sample rate, normally 16 kHz) as LINEAR16."""
        if self.encoding is not StreamEncoding.LINEAR16:
            raise ValueError(f"send_float needs a LINEAR16 stream; this one is {self.encoding}")
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"send_float takes mono audio (a 1-D array), got shape {samples.shape}")
        await self.send_audio(encode_linear16(samples))

    async def end_turn(self) -> None:
        """Tell the server the current turn is over: it sends the turn's final."""
        await self._send(EndTurn(end_turn=Empty()))

    async def close_stream(self) -> None:
        """Ask the server to flush (finals for any open turn) and close the stream; keep iterating to get them."""
        await self._send(CloseStream(close_stream=Empty()))

    async def _send(self, message: AudioChunk | EndTurn | CloseStream | TranscribeConfigMessage) -> None:
        try:
            await self._ws.send(message.model_dump_json(by_alias=True, exclude_unset=True))
        except ConnectionClosed as exc:
            raise await self._closed_while_sending(exc) from None

    async def _closed_while_sending(self, exc: ConnectionClosed) -> VoxgateClientError:
        """The error to raise when a send finds the connection closed: the server's error frame, if it sent one.

        When no receive is in progress, the frames the server sent before closing are read here and kept for
        iteration, so the caller learns why (``model_not_found``, ...) rather than just that the socket closed.
        """
        if self._recv_lock.locked() or self._finished:
            return _closed_error(exc)
        async with self._recv_lock:
            with contextlib.suppress(TimeoutError, ConnectionClosed, VoxgateClientError):
                async with asyncio.timeout(_DRAIN_SECONDS):
                    while True:
                        message = parse_server_message(await self._ws.recv())
                        if message is None:
                            continue
                        self._pending.append(message)
                        if isinstance(message, ErrorMessage):
                            self._finished = True
                            return _error_of(message, _close_code(exc))
        return _closed_error(exc)

    # -- receiving -----------------------------------------------------------------------------------------------

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> StreamResult:
        message = await self.receive()
        if message is None:
            raise StopAsyncIteration
        return message

    async def receive(self) -> StreamResult | None:
        """The next message from the server; None once the server has closed the stream normally.

        Raises :class:`VoxgateClientError` for an error frame or an abnormal close.
        """
        async with self._recv_lock:
            while True:
                message: ServerMessage | None
                if self._pending:
                    message = self._pending.popleft()
                elif self._finished:
                    return None
                else:
                    try:
                        raw = await self._ws.recv()
                    except ConnectionClosed as exc:
                        self._finished = True
                        if _close_code(exc) == _NORMAL_CLOSE:
                            return None
                        raise _closed_error(exc) from None
                    message = parse_server_message(raw)
                if isinstance(message, ErrorMessage):
                    self._finished = True
                    raise _error_of(message, await self._close_code_after_error())
                if message is not None:
                    return message

    async def _close_code_after_error(self) -> int | None:
        """The close code that follows an error frame (the server closes right after sending one)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DRAIN_SECONDS):
                await self._ws.wait_closed()
        return self._ws.close_code

    async def aclose(self) -> None:
        """Close the WebSocket (normal closure) without waiting for the server to flush."""
        await self._ws.close()


def _close_code(exc: ConnectionClosed) -> int | None:
    frame = exc.rcvd or exc.sent
    return frame.code if frame is not None else None


def _closed_error(exc: ConnectionClosed) -> VoxgateConnectionError:
    code = _close_code(exc)
    reason = exc.rcvd.reason if exc.rcvd is not None and exc.rcvd.reason else ""
    detail = f"close code {code}" if code is not None else "no close frame"
    return VoxgateConnectionError(
        f"the stream closed unexpectedly ({detail}{': ' + reason if reason else ''})",
        code="connection_closed",
        status=code,
    )


def _error_of(message: ErrorMessage, close_code: int | None) -> VoxgateClientError:
    return VoxgateClientError(message.error.code, message.error.message, status=close_code)


@contextlib.asynccontextmanager
async def connect(
    url: str,
    api_key: str | None = None,
    *,
    open_timeout: float = 10.0,
    **options: Unpack[StreamOptions],
) -> AsyncIterator[AsyncStream]:
    """Open a stream to the voxgate (or reference API) server at ``url`` and send its ``transcribeConfig``.

    ``url`` is the server's base URL (``http://``, ``https://``, ``ws://`` or ``wss://``) or the endpoint's full URL.
    ``api_key`` goes in ``Authorization: Basic <key>``. Raises :class:`VoxgateConnectionError` when the server
    cannot be reached; a config the server refuses shows up as an error raised by the first receive (or send).
    ``options``: :class:`StreamOptions` (the audio's format defaults to 16 kHz mono LINEAR16).
    """
    config = build_config(**options)
    endpoint = stream_url(url)
    headers = {"Authorization": f"Basic {api_key}"} if api_key else None
    try:
        ws = await ws_connect(endpoint, additional_headers=headers, open_timeout=open_timeout)
    except InvalidStatus as exc:
        status = exc.response.status_code
        message = f"{endpoint} refused the WebSocket upgrade: HTTP {status}"
        raise VoxgateConnectionError(message, status=status) from None
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        raise VoxgateConnectionError(f"could not connect to {endpoint}: {str(exc) or type(exc).__name__}") from None
    stream = AsyncStream(ws, config)
    try:
        await stream._send(TranscribeConfigMessage(transcribe_config=config))
        yield stream
    finally:
        await ws.close()


def _chunks(path: Path, chunk_samples: int) -> Iterator[npt.NDArray[np.float32]]:
    """Decoded 16 kHz samples of ``path`` in blocks of ``chunk_samples`` (the last may be shorter)."""
    # PyAV (FFmpeg) is loaded only when a file is streamed: importing the client loads no native media library.
    from voxgate.audio.decode import iter_decode

    block_seconds = max(_DECODE_BLOCK_SECONDS, chunk_samples / SAMPLE_RATE)
    block_seconds = round(block_seconds * SAMPLE_RATE / chunk_samples) * chunk_samples / SAMPLE_RATE
    for block in iter_decode(path, chunk_seconds=block_seconds):
        for start in range(0, block.size, chunk_samples):
            yield block[start : start + chunk_samples]


async def stream_file(
    url: str,
    path: str | Path,
    *,
    realtime: bool,
    chunk_ms: int = 100,
    api_key: str | None = None,
    on_progress: Callable[[float], None] | None = None,
    **options: Unpack[StreamFileOptions],
) -> AsyncGenerator[StreamResult, None]:
    """Stream a whole audio file (any format :mod:`voxgate.audio.decode` reads) and yield messages as they arrive.

    The file is decoded to 16 kHz mono and sent as ``chunk_ms`` LINEAR16 chunks: paced at real time when
    ``realtime`` is true (as a microphone would), otherwise as fast as the connection takes them. Receiving runs
    concurrently with sending. After the last chunk a ``closeStream`` asks for the remaining finals; the generator
    ends when the server closes the stream. ``on_progress`` is called with the seconds of audio sent so far after each
    chunk. Decode errors (:class:`voxgate.errors.AudioError`) are raised before connecting when the file does not
    open, and as they happen otherwise.
    """
    if chunk_ms <= 0:
        raise ValueError(f"chunk_ms must be positive, got {chunk_ms}")
    chunk_samples = max(1, SAMPLE_RATE * chunk_ms // 1000)
    chunks = _chunks(Path(path), chunk_samples)
    first = await asyncio.to_thread(next, chunks, None)  # a file that does not decode fails before connecting

    async with connect(url, api_key, sample_rate=SAMPLE_RATE, encoding=StreamEncoding.LINEAR16, **options) as stream:

        async def send_all() -> None:
            sent = 0
            started = time.monotonic()
            chunk = first
            try:
                while chunk is not None:
                    await stream.send_float(chunk)
                    sent += chunk.size
                    if on_progress is not None:
                        on_progress(sent / SAMPLE_RATE)
                    if realtime:
                        await asyncio.sleep(max(0.0, started + sent / SAMPLE_RATE - time.monotonic()))
                    chunk = await asyncio.to_thread(next, chunks, None)
                await stream.close_stream()
            except VoxgateClientError:
                raise  # the receiving side reports what the server said
            except Exception:
                await stream.aclose()  # ends the receiving side; this error is re-raised once it has
                raise

        sender = asyncio.create_task(send_all())
        try:
            async for message in stream:
                yield message
        finally:
            if not sender.done():
                sender.cancel()
            await asyncio.wait([sender])
            failure = None if sender.cancelled() else sender.exception()
        if failure is not None and not isinstance(failure, VoxgateClientError):
            raise failure
