"""OpenAI's Realtime API in transcription-only mode (``wss://api.openai.com/v1/realtime?intent=transcription``): a
:class:`~voxgate.engines.live.LiveConnector`.

The socket, as voxgate uses it (the beta ``realtime=v1`` protocol of
``https://platform.openai.com/docs/guides/realtime-transcription``):

* URL: ``https://api.openai.com/v1`` (the default base URL) gives ``wss://api.openai.com/v1/realtime?intent=transcription``;
  any other base URL (a gateway, a test fake) keeps its host and path, with ``https`` → ``wss`` (``http`` → ``ws``)
  and ``/realtime?intent=transcription`` appended.
* Auth: ``Authorization: Bearer <key>`` and ``OpenAI-Beta: realtime=v1`` on the upgrade request. A refused handshake
  (HTTP 401/403) raises :class:`~voxgate.errors.ProviderUnauthorized`, 429 :class:`~voxgate.errors.ProviderRateLimited`,
  no answer within ``min(10 s, provider timeout)`` :class:`~voxgate.errors.ProviderTimeout`, anything else
  :class:`~voxgate.errors.ProviderError`.
* The first message is ``transcription_session.update``: ``input_audio_format: "pcm16"``, ``turn_detection: null``
  (voxgate decides turns itself and commits them) and ``input_audio_transcription`` with the model (the id's name:
  ``whisper-1``, ``gpt-4o-transcribe``…), the language when the caller gave one and, as for the batch adapter
  (:mod:`voxgate.engines.openai.rest`), a ``prompt`` made of the vocabulary (comma-separated) and the free-text prompt.
* Audio: the Realtime API takes 24 kHz mono PCM16 only, so voxgate's 16 kHz audio is resampled (soxr, one stream
  per turn, drained at each commit) and sent as ``{"type": "input_audio_buffer.append", "audio": <base64>}``.
* ``finalize()`` sends ``{"type": "input_audio_buffer.commit"}`` when audio arrived since the last commit (the API
  refuses an empty or shorter-than-100-ms buffer: a short one is padded with silence); with nothing new, the span is
  reported settled at once (once earlier commits are answered).

Events → :class:`~voxgate.engines.live.LiveResult`:

* ``input_audio_buffer.committed`` (``item_id``): the item that commit made; its audio span is the one the commit
  covered (commits are answered in order).
* ``conversation.item.input_audio_transcription.delta`` (``item_id``, ``delta``): more text of the item — an interim
  result of the text so far.
* ``conversation.item.input_audio_transcription.completed`` (``item_id``, ``transcript``): the item's final text — a
  final result whose ``end`` is the end of the item's span (the seconds of audio committed up to it).
* The API gives no word times: the words (the text split on whitespace) are **spread over the item's span in
  proportion to their length**, so their times are approximate (voxgate reports words with times everywhere).
  Confidence is not reported either (1.0). The language is the caller's.
* ``conversation.item.input_audio_transcription.failed`` and ``error`` (``{"error": {"type", "code", "message"}}``):
  a ProviderError (``invalid_api_key``/``authentication_error`` → :class:`~voxgate.errors.ProviderUnauthorized`,
  ``rate_limit_exceeded`` → :class:`~voxgate.errors.ProviderRateLimited`). A close voxgate did not ask for (or a
  dropped socket) ends :meth:`~voxgate.engines.live.LiveConnection.results` with a ProviderError, so voxgate falls
  back.
"""

from __future__ import annotations

import base64
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import soxr
from websockets.asyncio.client import ClientConnection

from voxgate.audio.pcm import encode_linear16
from voxgate.config import ProviderConfig
from voxgate.engines.live import LiveResult, SocketConnection, SocketConnector, open_socket, websocket_url
from voxgate.engines.openai.wire import prompt_of
from voxgate.errors import ProviderError, ProviderRateLimited, ProviderTimeout, ProviderUnauthorized
from voxgate.types import SAMPLE_RATE, TranscriptionOptions, Word

__all__ = ["REALTIME_RATE", "OpenAILiveConnection", "OpenAILiveConnector", "spread", "streaming_url"]

REALTIME_RATE = 24_000
"""The only PCM16 sample rate the Realtime API takes."""
PATH = "/realtime"
INTENT = ("intent", "transcription")
_MIN_COMMIT = REALTIME_RATE // 10
"""The API refuses to commit less than 100 ms of audio."""


def streaming_url(base_url: str) -> str:
    """The Realtime socket's URL for the provider's base URL (see the module's docstring)."""
    parts = urlsplit(base_url)
    if parts.scheme == "https" and (parts.hostname or "").lower() == "api.openai.com":
        return "wss://api.openai.com/v1/realtime?intent=transcription"
    return websocket_url(base_url, PATH, [INTENT])


def spread(text: str, start: float, end: float) -> tuple[Word, ...]:
    """The words of ``text`` spread over ``[start, end]`` in proportion to their length (approximate times)."""
    words = text.split()
    if not words:
        return ()
    end = max(start, end)
    total = sum(len(w) + 1 for w in words)
    out: list[Word] = []
    at = 0
    for w in words:
        begin = start + (end - start) * at / total
        at += len(w) + 1
        finish = start + (end - start) * (at - 1) / total
        out.append(Word(w, round(begin, 3), round(max(begin, finish), 3), 1.0))
    return tuple(out)


def _error(model_id: str, error: Any) -> ProviderError:
    detail = error if isinstance(error, dict) else {"message": str(error)}
    code = str(detail.get("code") or "")
    kind = str(detail.get("type") or "")
    where = f"{model_id} reported an error ({code or kind or 'unknown'}): {detail.get('message') or detail}"
    if code in ("invalid_api_key", "unauthorized") or kind in ("authentication_error", "permission_error"):
        return ProviderUnauthorized(where)
    if code == "rate_limit_exceeded" or kind == "rate_limit_error":
        return ProviderRateLimited(where)
    if code in ("timeout", "session_expired"):
        return ProviderTimeout(where)
    return ProviderError(where)


@dataclass
class _Item:
    start: float
    end: float
    text: str = field(default="")


class OpenAILiveConnection(SocketConnection):
    """One open Realtime transcription socket."""

    def __init__(self, ws: ClientConnection, config: ProviderConfig, model_id: str, *, language: str | None) -> None:
        super().__init__(ws, config, model_id)
        self._language = language
        self._resampler: soxr.ResampleStream | None = None
        self._sent = 0
        """16 kHz samples sent so far."""
        self._committed = 0
        """16 kHz samples committed so far."""
        self._buffered = 0
        """24 kHz samples appended since the last commit."""
        self._spans: deque[tuple[float, float]] = deque()
        """Commits sent, not yet answered with ``input_audio_buffer.committed``."""
        self._items: dict[str, _Item] = {}
        """Committed items not yet completed, in commit order."""
        self._settled = 0.0

    async def start(self, update: dict[str, Any]) -> None:
        """Send the ``transcription_session.update`` message."""
        try:
            await self._send_json(update)
        except ProviderError:
            await self.close()
            raise

    # -- LiveConnection -------------------------------------------------------------------------------------------

    async def _append(self, samples: np.ndarray[Any, np.dtype[np.float32]]) -> None:
        if samples.size:
            self._buffered += int(samples.size)
            audio = base64.b64encode(encode_linear16(samples)).decode("ascii")
            await self._send_json({"type": "input_audio_buffer.append", "audio": audio})

    async def send(self, pcm16: bytes) -> None:
        if len(pcm16) < 2:
            return
        audio = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
        if self._resampler is None:
            self._resampler = soxr.ResampleStream(SAMPLE_RATE, REALTIME_RATE, 1, dtype="float32", quality="HQ")
        out = self._resampler.resample_chunk(audio)
        self._sent += int(audio.size)
        await self._append(np.asarray(out, dtype=np.float32))

    async def finalize(self) -> None:
        if self._sent > self._committed:
            if self._resampler is not None:
                tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
                self._resampler = None
                await self._append(np.asarray(tail, dtype=np.float32))
            if self._buffered < _MIN_COMMIT:
                await self._append(np.zeros(_MIN_COMMIT - self._buffered, dtype=np.float32))
            self._spans.append((self._committed / SAMPLE_RATE, self._sent / SAMPLE_RATE))
            self._committed = self._sent
            self._buffered = 0
            await self._send_json({"type": "input_audio_buffer.commit"})
        elif not self._spans and not self._items:
            if self._failure is not None:
                raise self._failure
            end = self._committed / SAMPLE_RATE
            self._emit(LiveResult((), True, self._settled, max(self._settled, end), self._language))
            self._settled = max(self._settled, end)

    async def close(self) -> None:
        await self._shutdown()

    # -- messages -------------------------------------------------------------------------------------------------

    def _item(self, item_id: str) -> _Item:
        item = self._items.get(item_id)
        if item is None:
            start, end = self._spans.popleft() if self._spans else (self._settled, self._committed / SAMPLE_RATE)
            item = self._items[item_id] = _Item(start, end)
        return item

    def _interim(self) -> None:
        words = tuple(w for item in self._items.values() for w in spread(item.text, item.start, item.end))
        end = max(self._settled, self._sent / SAMPLE_RATE)
        self._emit(LiveResult(words, False, self._settled, end, self._language))

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "error":
            raise _error(self._model_id, message.get("error"))
        if kind == "conversation.item.input_audio_transcription.failed":
            raise _error(self._model_id, message.get("error") or "transcription failed")
        if kind == "input_audio_buffer.committed":
            self._item(str(message["item_id"]))
        elif kind == "conversation.item.input_audio_transcription.delta":
            item = self._item(str(message["item_id"]))
            item.text += str(message.get("delta") or "")
            self._interim()
        elif kind == "conversation.item.input_audio_transcription.completed":
            item = self._item(str(message["item_id"]))
            del self._items[str(message["item_id"])]
            words = spread(str(message.get("transcript") or ""), item.start, item.end)
            start = min(self._settled, item.start)
            self._emit(LiveResult(words, True, start, max(start, item.end), self._language))
            self._settled = max(self._settled, item.end)
            if self._items:
                self._interim()
        # session.created/updated and the rest: nothing to report


class OpenAILiveConnector(SocketConnector):
    """Opens Realtime transcription sockets for one model (``openai/gpt-4o-transcribe`` → ``gpt-4o-transcribe``)
    with the provider's key and base URL (:class:`~voxgate.config.ProviderConfig`, as
    :class:`~voxgate.engines.openai.rest.OpenAIEngine` holds it)."""

    def session_update(self, options: TranscriptionOptions) -> dict[str, Any]:
        """The first message of the socket for ``options``."""
        transcription: dict[str, Any] = {"model": self.model}
        prompt = prompt_of(options)
        if prompt:
            transcription["prompt"] = prompt
        if options.language:
            transcription["language"] = options.language
        session = {"input_audio_format": "pcm16", "input_audio_transcription": transcription, "turn_detection": None}
        return {"type": "transcription_session.update", "session": session}

    def url(self) -> str:
        return streaming_url(self.config.base_url)

    async def connect(self, options: TranscriptionOptions) -> OpenAILiveConnection:
        self.check_task(options)
        headers = {"Authorization": f"Bearer {self.config.api_key}", "OpenAI-Beta": "realtime=v1"}
        ws = await open_socket(self.url(), headers, self.config)
        connection = OpenAILiveConnection(ws, self.config, self.model_id, language=options.language)
        await connection.start(self.session_update(options))
        return connection
