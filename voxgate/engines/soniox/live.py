"""Soniox's real-time WebSocket API (``wss://stt-rt.soniox.com/transcribe-websocket``): a
:class:`~voxgate.engines.live.LiveConnector`.

The socket, as voxgate uses it (``https://soniox.com/docs/stt/api-reference/websocket-api``):

* URL: for Soniox's own API host the real-time host — ``https://api.soniox.com`` (the default base URL) gives
  ``wss://stt-rt.soniox.com/transcribe-websocket`` (``api.<region>.soniox.com`` → ``stt-rt.<region>.soniox.com``);
  any other base URL (a gateway, a test fake) keeps its host, with ``https`` → ``wss`` (``http`` → ``ws``) and
  ``/transcribe-websocket`` appended to its path.
* Auth: ``Authorization: Bearer <key>`` on the upgrade request (Soniox's current scheme; the ``api_key`` field of the
  start message is deprecated and not sent). A refused handshake (HTTP 401/403) raises
  :class:`~voxgate.errors.ProviderUnauthorized`, 429 :class:`~voxgate.errors.ProviderRateLimited`, no answer within
  ``min(10 s, provider timeout)`` :class:`~voxgate.errors.ProviderTimeout`, anything else
  :class:`~voxgate.errors.ProviderError`.
* The first message is the JSON configuration: ``model`` (the id's name; an async model ``stt-async-<version>`` is
  replaced by its real-time twin ``stt-rt-<version>``), ``audio_format: "pcm_s16le"``, ``sample_rate: 16000``,
  ``num_channels: 1``, ``enable_language_identification: true`` and, as for the batch adapter
  (:mod:`voxgate.engines.soniox.rest`): ``language_hints: [code]`` when the caller gave a language, vocabulary as
  ``context.terms`` and the free-text prompt as ``context.text``; a ``sonioxConfig``'s ``languageHints``,
  ``languageHintsStrict`` and ``context{general, text, terms}`` merged in. Endpoint detection is left off (voxgate
  decides turns itself and asks Soniox to finalise them) unless a ``sonioxConfig`` sets
  ``enableEndpointDetection``/``maxEndpointDelayMs``, which are then sent as ``enable_endpoint_detection`` and
  ``max_endpoint_delay_ms``.
* Audio: binary frames of 16 kHz mono signed 16-bit little-endian PCM (an empty frame would end Soniox's stream,
  so none is sent). When no audio has gone out for :attr:`SonioxLiveConnector.keepalive_interval` seconds (5 by
  default) a ``{"type": "keepalive"}`` message is sent.
* ``finalize()`` sends ``{"type": "finalize"}``: Soniox finalises all audio sent so far and marks the end with a
  ``<fin>`` token. ``close()`` sends an empty binary frame (end of audio), waits briefly for Soniox's
  ``{"finished": true}`` and its close, then closes.

Messages → :class:`~voxgate.engines.live.LiveResult`:

* ``{"tokens": [...], "final_audio_proc_ms", "total_audio_proc_ms"}``: tokens with ``is_final: true`` arrive once
  and never change; the others are the current hypothesis of the audio after them, resent whole with each message.
  Tokens are sub-word pieces joined into words as the batch adapter joins them (a piece starting with whitespace
  starts a word). A final word is only reported once it is complete — the next token starts a new word, or a
  ``<fin>``/``<end>`` marker closes it — so the last final word may wait for the next message; the final result's
  ``end`` is ``final_audio_proc_ms`` (seconds), or the start of a word still held back. The non-final tokens, after
  any held-back final ones, make the interim result. Marker tokens (``<fin>``, ``<end>``) and translation tokens are
  not words. The language is the caller's, else the one most of the result's words carry.
* ``{"finished": true}``: the stream is over (after voxgate's end of audio).
* ``{"error_code", "error_message"}``: 401/403 → :class:`~voxgate.errors.ProviderUnauthorized`, 429 →
  :class:`~voxgate.errors.ProviderRateLimited`, 408 → :class:`~voxgate.errors.ProviderTimeout`, others
  :class:`~voxgate.errors.ProviderError`; Soniox closes the socket after it. A close voxgate did not ask for (or a
  dropped socket) also ends :meth:`~voxgate.engines.live.LiveConnection.results` with a ProviderError, so voxgate
  falls back.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection

from voxgate.config import ProviderConfig
from voxgate.engines.live import LiveResult, SocketConnection, SocketConnector, open_socket, websocket_url
from voxgate.engines.remote import json_number
from voxgate.engines.soniox.wire import endpoint_fields, recognition_fields, token_words
from voxgate.errors import ProviderError, ProviderRateLimited, ProviderTimeout, ProviderUnauthorized
from voxgate.types import SAMPLE_RATE, TranscriptionOptions, Word

__all__ = ["SonioxLiveConnection", "SonioxLiveConnector", "realtime_model", "streaming_url"]

PATH = "/transcribe-websocket"
_MARKERS = frozenset({"<fin>", "<end>"})
_ASYNC = re.compile(r"^stt-async-(.+)$")
_API_HOST = re.compile(r"^api\.((?:[\w-]+\.)*)soniox\.com$")


def streaming_url(base_url: str) -> str:
    """The real-time socket's URL for the provider's base URL (see the module's docstring)."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    api = _API_HOST.match(host)
    if api is not None and parts.scheme == "https":
        netloc = f"stt-rt.{api.group(1)}soniox.com" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(("wss", netloc, PATH, "", ""))
    return websocket_url(base_url, PATH)


def realtime_model(model: str) -> str:
    """The real-time model for the id's name: ``stt-async-v3`` → ``stt-rt-v3``; others as they are."""
    batch = _ASYNC.match(model)
    return f"stt-rt-{batch.group(1)}" if batch else model


def _error(model_id: str, code: int, message: str) -> ProviderError:
    where = f"{model_id} reported an error ({code}): {message}"
    if code in (401, 403):
        return ProviderUnauthorized(where)
    if code == 429:
        return ProviderRateLimited(where)
    if code in (408, 504):
        return ProviderTimeout(where)
    return ProviderError(where)


def _starts_word(token: dict[str, Any], previous: dict[str, Any] | None) -> bool:
    text = str(token["text"])
    return (
        previous is None
        or not text
        or text[0].isspace()
        or not str(previous["text"])
        or str(previous["text"])[-1].isspace()
    )


class SonioxLiveConnection(SocketConnection):
    """One open ``/transcribe-websocket`` socket."""

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
        self._held: list[dict[str, Any]] = []
        """Final tokens of a word not yet known to be complete."""
        self._settled = 0.0
        """End of the last final result (seconds)."""
        self._start_keepalive({"type": "keepalive"}, keepalive_interval)

    async def start(self, configuration: dict[str, Any]) -> None:
        """Send the configuration message (the first one Soniox expects)."""
        try:
            await self._send_json(configuration)
        except ProviderError:
            await self.close()
            raise

    # -- LiveConnection -------------------------------------------------------------------------------------------

    async def send(self, pcm16: bytes) -> None:
        if pcm16:  # an empty frame would end Soniox's stream
            await self._send_frame(pcm16)

    async def finalize(self) -> None:
        await self._send_json({"type": "finalize"})

    async def close(self) -> None:
        await self._shutdown(b"")  # an empty binary frame: the end of the audio

    # -- messages -------------------------------------------------------------------------------------------------

    def _result(self, tokens: Sequence[dict[str, Any]], *, is_final: bool, start: float, end: float) -> LiveResult:
        words = [
            Word(w.word.word, round(w.word.start, 3), round(w.word.end, 3), round(w.word.confidence, 4))
            for w in token_words(tokens, float("inf"))
        ]
        language = self._language
        if language is None:
            counts = Counter(str(t["language"]) for t in tokens if isinstance(t.get("language"), str) and t["language"])
            language = counts.most_common(1)[0][0] if counts else None
        return LiveResult(tuple(words), is_final, start, max(start, end), language)

    def _handle(self, message: dict[str, Any]) -> None:
        if message.get("error_code") is not None or message.get("error_message") is not None:
            code = int(json_number(message.get("error_code") or 0))
            raise _error(self._model_id, code, str(message.get("error_message") or message))
        raw = message.get("tokens") or []
        if not isinstance(raw, list):
            raise TypeError("tokens is not a list")
        final: list[dict[str, Any]] = []
        interim: list[dict[str, Any]] = []
        closed = False
        for token in raw:
            if not isinstance(token, dict):
                raise TypeError("a token is not an object")
            text = str(token["text"])
            if token.get("translation_status") == "translation":
                continue
            if text in _MARKERS:
                closed = closed or bool(token.get("is_final", True))
                continue
            (final if token.get("is_final") else interim).append(token)
        pending = self._held + final
        complete = pending
        self._held = []
        if pending and not closed:
            following = interim[0] if interim else None
            if following is None or not _starts_word(following, pending[-1]):
                cut = len(pending) - 1  # the last final word may go on: hold it back
                while cut > 0 and not _starts_word(pending[cut], pending[cut - 1]):
                    cut -= 1
                complete, self._held = pending[:cut], pending[cut:]
        final_ms = message.get("final_audio_proc_ms")
        end = json_number(final_ms) / 1000.0 if final_ms is not None else self._settled
        if self._held:
            end = min(end, max(0.0, json_number(self._held[0].get("start_ms", end * 1000.0)) / 1000.0))
        if complete or end > self._settled:
            self._emit(self._result(complete, is_final=True, start=self._settled, end=end))
            self._settled = max(self._settled, end)
        total_ms = message.get("total_audio_proc_ms")
        total = json_number(total_ms) / 1000.0 if total_ms is not None else self._settled
        if interim or self._held or final:
            self._emit(self._result(self._held + interim, is_final=False, start=self._settled, end=total))
        # {"finished": true}: Soniox closes the socket next; the reader ends the stream.


class SonioxLiveConnector(SocketConnector):
    """Opens Soniox real-time sockets for one model (``soniox/stt-rt-v3`` → ``stt-rt-v3``) with the provider's key
    and base URL (:class:`~voxgate.config.ProviderConfig`, as :class:`~voxgate.engines.soniox.rest.SonioxEngine`
    holds it).

    ``keepalive_interval``: seconds without audio after which a ``keepalive`` message is sent (None: never).
    """

    def __init__(self, config: ProviderConfig, model: str, *, keepalive_interval: float | None = 5.0) -> None:
        super().__init__(config, model)
        self.keepalive_interval = keepalive_interval

    def configuration(self, options: TranscriptionOptions) -> dict[str, Any]:
        """The first message of the socket for ``options``."""
        return {
            "model": realtime_model(self.model),
            "audio_format": "pcm_s16le",
            "sample_rate": SAMPLE_RATE,
            "num_channels": 1,
            **recognition_fields(options),
            **endpoint_fields(options),
        }

    def url(self) -> str:
        return streaming_url(self.config.base_url)

    async def connect(self, options: TranscriptionOptions) -> SonioxLiveConnection:
        self.check_task(options)
        headers = {"Authorization": f"Bearer {self.config.api_key}"}
        ws = await open_socket(self.url(), headers, self.config)
        connection = SonioxLiveConnection(
            ws, self.config, self.model_id, language=options.language, keepalive_interval=self.keepalive_interval
        )
        await connection.start(self.configuration(options))
        return connection
