"""Deepgram's live streaming API (``wss://api.deepgram.com/v1/listen``): a :class:`~voxgate.engines.live.LiveConnector`.

The socket, as voxgate uses it:

* URL: the provider's base URL with ``https`` → ``wss`` (``http`` → ``ws``) and ``/v1/listen`` appended, so
  ``https://api.deepgram.com`` (the default) gives ``wss://api.deepgram.com/v1/listen``. Query:
  ``model=NAME&encoding=linear16&sample_rate=16000&channels=1&interim_results=true&punctuate=true&smart_format=true``
  plus, as for the batch adapter (:mod:`voxgate.engines.deepgram`): ``language`` when the caller gave one, else
  ``language=multi`` (Nova-2/Nova-3 multilingual; Deepgram's streaming API has no ``detect_language``) — other
  models get no ``language`` (Deepgram's default, English); vocabulary as one ``keyterm`` per term on Nova-3 models,
  ``keywords=TERM:2`` on the others. The free-text ``prompt`` and ``temperature`` have no Deepgram counterpart and
  are not sent.
* Header ``Authorization: Token <key>``. A refused handshake (HTTP 401/403) raises
  :class:`~voxgate.errors.ProviderUnauthorized`; 429 :class:`~voxgate.errors.ProviderRateLimited`; no answer within
  ``min(10 s, provider timeout)`` :class:`~voxgate.errors.ProviderTimeout`; anything else
  :class:`~voxgate.errors.ProviderError`.
* Audio: binary frames of 16 kHz mono LINEAR16, as voxgate hands them over (an empty frame would end Deepgram's
  stream, so none is sent). When no audio has gone out for :attr:`DeepgramLiveConnector.keepalive_interval`
  seconds (5 by default), a ``{"type": "KeepAlive"}`` text frame is sent: Deepgram closes a socket that hears
  nothing for 10 s.
* ``finalize()`` sends ``{"type": "Finalize"}`` (Deepgram flushes what it holds as final results);
  ``close()`` sends ``{"type": "CloseStream"}``, waits briefly for Deepgram to finish and close, then closes.

Messages → :class:`~voxgate.engines.live.LiveResult`:

* ``Results``: the first alternative's ``words`` (``punctuated_word``, else ``word``) with their ``start``/``end``
  (seconds from the start of the stream) and ``confidence``. ``is_final: false`` is an interim hypothesis of the
  span ``[start, start + duration]``; ``is_final: true`` settles that span (with ``speech_final`` and
  ``from_finalize`` only saying why). The language is the caller's, or the alternative's first ``languages`` entry
  in multilingual mode.
* ``Metadata``, ``UtteranceEnd``, ``SpeechStarted``: nothing to report.
* A close voxgate did not ask for — Deepgram's error closes (``1008`` bad audio, ``1011`` server error, ``NET-0001``
  idle) or a dropped socket — ends :meth:`~voxgate.engines.live.LiveConnection.results` with a
  :class:`~voxgate.errors.ProviderError` carrying the close code and reason, so voxgate falls back.

The socket plumbing (:func:`open_socket`, :class:`SocketConnection`) is vendor-neutral and shared with
:mod:`voxgate.engines.assemblyai_live`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from voxgate.config import ProviderConfig
from voxgate.engines.deepgram import _KEYTERM_MODELS, _KEYWORD_INTENSIFIER, _language
from voxgate.engines.live import LiveResult
from voxgate.errors import (
    InvalidRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnauthorized,
)
from voxgate.types import TranscriptionOptions, Word

__all__ = ["DeepgramLiveConnection", "DeepgramLiveConnector", "SocketConnection", "open_socket", "websocket_url"]

log = logging.getLogger(__name__)

_MULTILINGUAL_MODELS = ("nova-3", "nova-2")
"""Model name prefixes that take ``language=multi``."""


# -- vendor-neutral socket plumbing (also used by assemblyai_live) ------------------------------------------------


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

    async def _shutdown(self, goodbye: Mapping[str, Any] | None = None) -> None:
        """Send ``goodbye`` (the vendor's close message), give the vendor :attr:`close_wait` seconds to finish and
        close, then close the socket and stop the reader."""
        if self._closing:
            return
        self._closing = True
        if goodbye is not None and not self._ended.is_set():
            with contextlib.suppress(ProviderError):
                async with self._send_lock:
                    await self._send_locked(json.dumps(goodbye))
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
        self._on_end()
        self._failure = end
        self._queue.put_nowait(end)
        self._ended.set()
        if end is not None and not self._closing:
            log.warning("%s", end.message)
            with contextlib.suppress(Exception):
                await self._ws.close()


# -- Deepgram -------------------------------------------------------------------------------------------------------


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


class DeepgramLiveConnection(SocketConnection):
    """One open ``/v1/listen`` socket."""

    def __init__(
        self,
        ws: ClientConnection,
        config: ProviderConfig,
        model_id: str,
        *,
        language: str | None,
        keepalive_interval: float | None,
    ) -> None:
        super().__init__(ws, config, model_id)
        self._language = language
        self._keepalive: asyncio.Task[None] | None = None
        if keepalive_interval is not None:
            self._keepalive = asyncio.create_task(self._keep_alive(keepalive_interval))

    async def send(self, pcm16: bytes) -> None:
        if pcm16:  # an empty binary frame would end Deepgram's stream
            await self._send_frame(pcm16)

    async def finalize(self) -> None:
        await self._send_json({"type": "Finalize"})

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
        await self._shutdown({"type": "CloseStream"})

    async def _keep_alive(self, interval: float) -> None:
        while not self._ended.is_set() and not self._closing:
            await asyncio.sleep(max(0.05, self._last_sent + interval - time.monotonic()))
            if time.monotonic() - self._last_sent >= interval and not self._closing:
                try:
                    await self._send_json({"type": "KeepAlive"})
                except ProviderError:
                    return  # the reader reports the failure

    def _on_end(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "Results":
            alternative = message["channel"]["alternatives"][0]
            words = []
            for raw in alternative.get("words") or ():
                text = str(raw.get("punctuated_word") or raw["word"]).strip()
                if not text:
                    continue
                start = max(0.0, _number(raw["start"]))
                end = max(start, _number(raw["end"]))
                confidence = min(max(_number(raw.get("confidence", 1.0)), 0.0), 1.0)
                words.append(Word(text, round(start, 3), round(end, 3), round(confidence, 4)))
            languages = alternative.get("languages")
            language = self._language or (_language(languages[0]) if languages else None)
            start = max(0.0, _number(message["start"]))
            end = start + max(0.0, _number(message["duration"]))
            self._emit(LiveResult(tuple(words), bool(message.get("is_final")), start, end, language))
        elif kind == "Error" or "err_code" in message:
            reason = message.get("description") or message.get("err_msg") or message.get("message") or message
            raise ProviderError(f"{self._model_id} reported an error: {reason}")
        # Metadata, UtteranceEnd, SpeechStarted: nothing to report.


class DeepgramLiveConnector:
    """Opens Deepgram live sockets for one model (``deepgram/nova-3`` → ``nova-3``) with the provider's key and base
    URL (:class:`~voxgate.config.ProviderConfig`, as :class:`~voxgate.engines.deepgram.DeepgramEngine` holds it).

    ``keepalive_interval``: seconds without audio after which a ``KeepAlive`` is sent (None: never).
    """

    def __init__(self, config: ProviderConfig, model: str, *, keepalive_interval: float | None = 5.0) -> None:
        self.config = config
        self.model = model
        self.keepalive_interval = keepalive_interval

    @property
    def model_id(self) -> str:
        return f"{self.config.name}/{self.model}"

    def params(self, options: TranscriptionOptions) -> list[tuple[str, str]]:
        """The query string of the socket for ``options``."""
        params = [
            ("model", self.model),
            ("encoding", "linear16"),
            ("sample_rate", "16000"),
            ("channels", "1"),
            ("interim_results", "true"),
            ("punctuate", "true"),
            ("smart_format", "true"),
        ]
        if options.language:
            params.append(("language", options.language))
        elif self.model.startswith(_MULTILINGUAL_MODELS):
            params.append(("language", "multi"))
        terms = [t.strip() for t in options.prompts if t.strip()]
        if self.model.startswith(_KEYTERM_MODELS):
            params.extend(("keyterm", t) for t in terms)
        else:
            params.extend(("keywords", f"{t}:{_KEYWORD_INTENSIFIER}") for t in terms)
        return params

    def url(self, options: TranscriptionOptions) -> str:
        return websocket_url(self.config.base_url, "/v1/listen", self.params(options))

    async def connect(self, options: TranscriptionOptions) -> DeepgramLiveConnection:
        if options.task != "transcribe":
            raise InvalidRequest(f"{self.model_id} cannot {options.task}; use a whisper/* model for translation")
        headers = {"Authorization": f"Token {self.config.api_key}"}
        ws = await open_socket(self.url(options), headers, self.config)
        return DeepgramLiveConnection(
            ws, self.config, self.model_id, language=options.language, keepalive_interval=self.keepalive_interval
        )
