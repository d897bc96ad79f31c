"""Streaming through a vendor's own real-time socket.

A provider that offers live recognition implements :class:`LiveConnector`: ``connect(options)`` opens the vendor's
WebSocket and returns a :class:`LiveConnection` that takes 16 kHz LINEAR16 audio and yields :class:`LiveResult`s —
the vendor's interim and final hypotheses with word times relative to the start of the audio sent.

voxgate's stream session stays in charge of turns (local VAD and the semantic turn model, or the client's
``endTurn``), exactly as with local models; :class:`LiveDecoder` answers the session's decode requests from what the
vendor has said: a partial is the vendor's latest hypothesis for the turn's audio, a final waits for the vendor to
finalise everything up to the end of the turn (after asking it to flush). So the WebSocket protocol is the same
whichever provider does the work, and when the vendor's socket fails, the session's requests — which carry their
audio — are answered by the next engine in the fallback list without losing anything.

A vendor's socket plumbing — :func:`websocket_url`, :func:`open_socket` (handshake failures mapped to voxgate's
provider errors), :class:`SocketConnection` (ordered sends, a reader turning the vendor's messages into
:class:`LiveResult`s, a clean or failed end) — is vendor-neutral and shared by the providers' connectors
(:mod:`voxgate.engines.deepgram.live`, :mod:`voxgate.engines.assemblyai.live` and the others).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from voxgate.config import ProviderConfig
from voxgate.errors import InvalidRequest, ProviderError, ProviderRateLimited, ProviderTimeout, ProviderUnauthorized
from voxgate.types import Segment, Transcript, TranscriptionOptions, Word

__all__ = [
    "LiveConnection",
    "LiveConnector",
    "LiveDecoder",
    "LiveResult",
    "SocketConnection",
    "SocketConnector",
    "close_description",
    "handshake_error",
    "open_socket",
    "websocket_url",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveResult:
    """One vendor hypothesis. ``is_final``: these words will not change again (the vendor closed the span)."""

    words: tuple[Word, ...]
    is_final: bool
    start: float
    """Start of the audio span this result covers (seconds from the start of the stream)."""
    end: float
    """End of that span: a final result means everything before ``end`` is settled."""
    language: str | None = None


class LiveConnection(Protocol):
    async def send(self, pcm16: bytes) -> None:
        """Audio: 16 kHz mono signed 16-bit little-endian."""
        ...

    async def finalize(self) -> None:
        """Ask the vendor to finalise everything sent so far (Deepgram ``Finalize``, AssemblyAI ``ForceEndpoint``…)."""
        ...

    def results(self) -> AsyncIterator[LiveResult]:
        """The vendor's results, in order, until the connection closes (raises ProviderError if it fails)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class LiveConnector(Protocol):
    async def connect(self, options: TranscriptionOptions) -> LiveConnection: ...


class LiveDecoder:
    """Keeps the vendor's words of one stream and answers decode requests for stretches of its audio."""

    def __init__(self, connection: LiveConnection, model_id: str, *, finalize_timeout: float = 5.0) -> None:
        self._connection = connection
        self._model_id = model_id
        self._final: list[Word] = []
        self._interim: tuple[Word, ...] = ()
        self._settled = 0.0
        """Everything before this stream time is final at the vendor."""
        self._language: str | None = None
        self._changed = asyncio.Condition()
        self._failure: BaseException | None = None
        self._finalize_timeout = finalize_timeout
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for result in self._connection.results():
                async with self._changed:
                    if result.is_final:
                        self._final.extend(result.words)
                        self._interim = ()
                        self._settled = max(self._settled, result.end)
                    else:
                        self._interim = result.words
                    self._language = result.language or self._language
                    self._changed.notify_all()
            raise ProviderError(f"{self._model_id}: the vendor closed the stream")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            async with self._changed:
                self._failure = exc if isinstance(exc, ProviderError) else ProviderError(f"{self._model_id}: {exc}")
                self._changed.notify_all()

    async def send(self, pcm16: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        await self._connection.send(pcm16)

    def _words(self, start: float, end: float, *, interim: bool) -> list[Word]:
        pool = list(self._final) + (list(self._interim) if interim else [])
        return [w for w in pool if w.end > start + 0.01 and w.start < end - 0.01]

    def _transcript(self, words: list[Word], offset: float, duration: float) -> Transcript:
        shifted = tuple(Word(w.word, max(0.0, w.start - offset), w.end - offset, w.confidence) for w in words)
        text = " ".join(w.word for w in shifted)
        segments = (Segment(text, 0.0, duration, shifted, self._language),) if text else ()
        return Transcript(segments, duration, self._language, None, (), self._model_id)

    def draft(self, offset: float, duration: float) -> Transcript:
        """The vendor's current hypothesis (final and interim words) for the stretch at ``offset``."""
        if self._failure is not None:
            raise self._failure
        return self._transcript(self._words(offset, offset + duration, interim=True), offset, duration)

    async def settle(self, offset: float, duration: float) -> Transcript:
        """The vendor's final words for the stretch, once it has finalised up to its end."""
        end = offset + duration
        if self._settled < end - 0.05:
            await self._connection.finalize()
            try:
                async with asyncio.timeout(self._finalize_timeout), self._changed:
                    await self._changed.wait_for(lambda: self._failure is not None or self._settled >= end - 0.05)
            except TimeoutError:
                raise ProviderTimeout(
                    f"{self._model_id} did not finalise the turn within {self._finalize_timeout:g} s"
                ) from None
        if self._failure is not None:
            raise self._failure
        return self._transcript(self._words(offset, end, interim=False), offset, duration)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        with contextlib.suppress(Exception):
            await self._connection.close()


# -- vendor-neutral socket plumbing ---------------------------------------------------------------------------------


def websocket_url(base_url: str, path: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """``base_url`` with its scheme made a WebSocket one (``https`` → ``wss``, ``http`` → ``ws``), ``path`` appended
    to its path and ``params`` as the query."""
    parts = urlsplit(base_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, urlencode(list(params)), ""))


def handshake_error(config: ProviderConfig, status: int, body: bytes | bytearray | None) -> ProviderError:
    """The error for a vendor that refused the WebSocket upgrade with HTTP ``status``."""
    detail = bytes(body or b"")[:300].decode("utf-8", "replace").strip()
    where = f"{config.name} refused the streaming connection ({status})"
    if status in (401, 403):
        return ProviderUnauthorized(f"{where}: the API key in {config.key_variable} was refused")
    if status == 429:
        return ProviderRateLimited(f"{where}: rate limited ({detail})")
    if status in (408, 504):
        return ProviderTimeout(f"{where}: {detail}")
    return ProviderError(f"{where}: {detail}")


async def open_socket(url: str, headers: Mapping[str, str], config: ProviderConfig) -> ClientConnection:
    """Open the vendor's socket, mapping every failure to voxgate's provider errors."""
    timeout = min(10.0, config.timeout)
    try:
        return await connect(
            url,
            additional_headers=dict(headers),
            open_timeout=timeout,
            compression=None,
            user_agent_header="voxgate",
        )
    except InvalidStatus as exc:
        raise handshake_error(config, exc.response.status_code, exc.response.body) from exc
    except TimeoutError as exc:
        raise ProviderTimeout(f"{config.name} did not open the streaming connection within {timeout:g} s") from exc
    except (OSError, WebSocketException) as exc:
        raise ProviderError(f"{config.name} streaming connection failed: {type(exc).__name__}: {exc}") from exc


class SocketConnector:
    """Base of a vendor's :class:`LiveConnector`: opens the vendor's sockets for one model (``deepgram/nova-3`` →
    ``nova-3``) with the provider's key and base URL (:class:`~voxgate.config.ProviderConfig`, as the provider's
    :class:`~voxgate.engines.remote.RemoteEngine` holds it)."""

    def __init__(self, config: ProviderConfig, model: str) -> None:
        self.config = config
        self.model = model

    @property
    def model_id(self) -> str:
        return f"{self.config.name}/{self.model}"

    def check_task(self, options: TranscriptionOptions) -> None:
        """Refuse anything but ``transcribe`` (the vendors' sockets do not translate)."""
        if options.task != "transcribe":
            raise InvalidRequest(f"{self.model_id} cannot {options.task}; use a whisper/* model for translation")


def close_description(exc: ConnectionClosed) -> tuple[int, str]:
    """The close code and reason the vendor sent (1006 and an empty reason when the socket just dropped)."""
    if exc.rcvd is None:
        return 1006, ""
    return exc.rcvd.code, exc.rcvd.reason


class SocketConnection(ABC):
    """A vendor's live socket: frames sent in order, a reader task turning the vendor's messages into
    :class:`LiveResult`s (queued for :meth:`results`), and an end that is either clean (voxgate closed it) or a
    :class:`ProviderError`."""

    close_wait = 2.0
    """Seconds :meth:`close` waits for the vendor to finish after the close message, before closing itself."""

    def __init__(self, ws: ClientConnection, config: ProviderConfig, model_id: str) -> None:
        self._ws = ws
        self._config = config
        self._model_id = model_id
        self._queue: asyncio.Queue[LiveResult | ProviderError | None] = asyncio.Queue()
        self._send_lock = asyncio.Lock()
        self._closing = False
        self._failure: ProviderError | None = None
        self._ended = asyncio.Event()
        self._last_sent = time.monotonic()
        self._keepalive: asyncio.Task[None] | None = None
        self._reader = asyncio.create_task(self._read())

    # -- the vendor's part ----------------------------------------------------------------------------------------

    @abstractmethod
    def _handle(self, message: dict[str, Any]) -> None:
        """One JSON message from the vendor: :meth:`_emit` what it says (raise ProviderError if it is an error)."""

    def _close_error(self, code: int, reason: str) -> ProviderError:
        """The error for a close voxgate did not ask for."""
        said = f": {reason}" if reason else ""
        if code == 1006:
            return ProviderError(f"{self._model_id}: the streaming connection dropped")
        return ProviderError(f"{self._model_id}: the vendor closed the stream ({code}{said})")

    def _on_end(self) -> None:  # noqa: B027 - optional hook
        """Called once the socket has ended, before the end is queued (flush anything still held)."""

    # -- LiveConnection -------------------------------------------------------------------------------------------

    def results(self) -> AsyncIterator[LiveResult]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[LiveResult]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, ProviderError):
                raise item
            yield item

    async def close(self) -> None:
        await self._shutdown()

    # -- helpers for subclasses -----------------------------------------------------------------------------------

    def _emit(self, result: LiveResult) -> None:
        if not self._ended.is_set():
            self._queue.put_nowait(result)

    async def _send_frame(self, data: bytes | str) -> None:
        """One frame to the vendor, in order; ProviderError if the socket is gone."""
        if self._failure is not None:
            raise self._failure
        async with self._send_lock:
            await self._send_locked(data)

    async def _send_locked(self, data: bytes | str) -> None:
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            if self._failure is not None:
                raise self._failure from exc
            code, reason = close_description(exc)
            raise self._close_error(code, reason) from exc
        self._last_sent = time.monotonic()

    async def _send_json(self, message: Mapping[str, Any]) -> None:
        await self._send_frame(json.dumps(message))

    def _start_keepalive(self, message: Mapping[str, Any], interval: float | None) -> None:
        """Send ``message`` whenever no frame has gone out for ``interval`` seconds (None: never), until the socket
        ends or voxgate closes it; for vendors that close a socket left silent."""
        if interval is not None:
            self._keepalive = asyncio.create_task(self._keep_alive(message, interval))

    def _stop_keepalive(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()

    async def _keep_alive(self, message: Mapping[str, Any], interval: float) -> None:
        while not self._ended.is_set() and not self._closing:
            await asyncio.sleep(max(0.05, self._last_sent + interval - time.monotonic()))
            if time.monotonic() - self._last_sent >= interval and not self._closing:
                try:
                    await self._send_json(message)
                except ProviderError:
                    return  # the reader reports the failure

    async def _shutdown(self, goodbye: Mapping[str, Any] | bytes | None = None) -> None:
        """Send ``goodbye`` (the vendor's close message: JSON, or a binary frame as is), give the vendor
        :attr:`close_wait` seconds to finish and close, then close the socket and stop the reader."""
        self._stop_keepalive()
        if self._closing:
            return
        self._closing = True
        if goodbye is not None and not self._ended.is_set():
            with contextlib.suppress(ProviderError):
                async with self._send_lock:
                    await self._send_locked(goodbye if isinstance(goodbye, bytes) else json.dumps(goodbye))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.close_wait):
                    await self._ended.wait()
        with contextlib.suppress(Exception):
            await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    # -- reader ---------------------------------------------------------------------------------------------------

    async def _read(self) -> None:
        end: ProviderError | None
        try:
            async for raw in self._ws:
                if isinstance(raw, bytes):
                    continue
                try:
                    message = json.loads(raw)
                    if not isinstance(message, dict):
                        raise TypeError("not a JSON object")
                    self._handle(message)
                except ProviderError:
                    raise
                except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                    raise ProviderError(
                        f"{self._model_id} sent a message voxgate cannot read ({exc!r}): {raw[:200]!r}"
                    ) from exc
            code, reason = self._ws.close_code or 1000, self._ws.close_reason or ""
            end = None if self._closing else self._close_error(code, reason)
        except ConnectionClosed as exc:
            end = None if self._closing else self._close_error(*close_description(exc))
        except ProviderError as exc:
            end = exc
        except asyncio.CancelledError:
            self._ended.set()
            self._queue.put_nowait(self._failure)  # a consumer still waiting ends with the stream
            raise
        except Exception as exc:  # a transport failure the library did not wrap
            end = ProviderError(f"{self._model_id}: the streaming connection failed: {exc!r}")
        self._stop_keepalive()
        self._on_end()
        self._failure = end
        self._queue.put_nowait(end)
        self._ended.set()
        if end is not None and not self._closing:
            log.warning("%s", end.message)
            with contextlib.suppress(Exception):
                await self._ws.close()
