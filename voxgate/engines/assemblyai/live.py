"""AssemblyAI's Universal-Streaming API (v3): a :class:`~voxgate.engines.live.LiveConnector`.

The socket, as voxgate uses it:

* Host: AssemblyAI streams from another host than its batch API. The provider's base URL is mapped by
  :func:`streaming_url`: ``https://api.assemblyai.com`` (the default) → ``wss://streaming.assemblyai.com``, and any
  ``api.<region>.assemblyai.com`` → ``streaming.<region>.assemblyai.com`` (``api.eu`` → ``streaming.eu``). Any other
  base URL (a gateway, a self-hosted deployment, the tests' fake) keeps its host, with ``https`` → ``wss`` and
  ``http`` → ``ws``. The path is ``/v3/ws`` (after the base URL's own path, if any).
* Query: ``sample_rate=16000&encoding=pcm_s16le&format_turns=true&speech_model=…`` where the speech model is the id's
  name when it is a streaming model (``universal-streaming-english``, ``universal-streaming-multilingual``,
  ``u3-rt-*``, ``whisper-rt``); for a batch model id (``assemblyai/universal-3-pro``…) the streaming counterpart:
  ``u3-rt-pro`` for the Universal-3 family, else ``universal-streaming-english`` when the caller's language is
  English and ``universal-streaming-multilingual`` otherwise. No language given → ``language_detection=true``
  (multilingual model) and the Turn's ``language_code`` is reported. Vocabulary (``prompts``) →
  ``keyterms_prompt`` as a JSON list (at most 100 terms of at most 50 characters; longer ones are left out, with a
  log line). voxgate decides turns itself and ends the vendor's with ``ForceEndpoint``, so the vendor's own turn
  detection is turned down: ``end_of_turn_confidence_threshold=1`` (no semantic end of turn) and
  ``max_turn_silence=3600`` (a turn ends by itself only after 3.6 s of silence) —
  ``AssemblyAILiveConnector(turn_silence=…)`` changes the silence, ``turn_silence=None`` leaves the vendor's
  defaults. This keeps a vendor turn from ending on its own just as voxgate forces one (which would make the forced
  turn's end ambiguous, and loses the words after the vendor's own end: a client's ``assemblyaiConfig`` turn
  silences therefore shape voxgate's turns, not the vendor's). An ``assemblyaiConfig``'s ``vadThreshold`` is sent as
  ``vad_threshold`` and its ``prompt`` as ``prompt``. The free-text ``prompt`` and ``temperature`` are not sent.
* Header ``Authorization: <key>`` (the bare key). A refused handshake (HTTP 401/403) or the vendor's
  ``1008 Unauthorized Connection`` close before ``Begin`` raises :class:`~voxgate.errors.ProviderUnauthorized` (a
  ``1008`` about concurrency: :class:`~voxgate.errors.ProviderRateLimited`); no ``Begin`` within ``min(10 s,
  provider timeout)`` :class:`~voxgate.errors.ProviderTimeout`.
* Audio: binary frames of 16 kHz LINEAR16 between 50 ms and 1000 ms long (the vendor's limits). voxgate's chunks are
  re-cut to that: under 50 ms is held back until more comes; ``finalize()`` sends what is held, padded with silence
  to 50 ms when shorter — padding the vendor hears but voxgate's times skip, so word times stay those of the audio
  voxgate sent. (AssemblyAI also refuses audio sent much faster than real time; voxgate forwards a client's audio as
  it arrives.)
* ``finalize()`` sends ``{"type": "ForceEndpoint"}``; ``close()`` sends ``{"type": "Terminate"}``, waits briefly
  for ``Termination`` and the vendor's close, then closes.

Messages → :class:`~voxgate.engines.live.LiveResult` (word ``start``/``end`` are milliseconds → seconds):

* ``Turn`` with ``end_of_turn: false``: an interim hypothesis — every word of the open turn (``word_is_final``
  words are immutable at the vendor but still unformatted, so they stay interim until the formatted turn comes).
* ``Turn`` with ``end_of_turn: true`` and ``turn_is_formatted: true``: final. With ``format_turns=true`` the vendor
  first sends the end of turn unformatted, then formatted; the unformatted copy is shown as interim, and promoted to
  final if the formatted one does not follow within :attr:`AssemblyAILiveConnection.format_wait` seconds (or before
  ``Termination``). With ``format_turns=false`` (``AssemblyAILiveConnector(format_turns=False)``) the end-of-turn
  message is final and, before it, each run of ``word_is_final`` words is final as soon as it comes.
* A final's ``end`` is its last word's ``end``; when the turn is the one a ``ForceEndpoint`` closed, ``end`` is the
  audio voxgate had sent at that moment (the vendor has heard all of it: nothing before it can change). The Turn
  messages do not say which audio a turn covers, so the forced turn is taken to be the first end of turn whose
  ``turn_order`` is at least that of the turn open when the ``ForceEndpoint`` went out. (Were the vendor to end that
  turn by itself just before reading the ``ForceEndpoint``, speech between the two would be reported after the
  settled point; turning the vendor's turn detection down, above, makes that practically impossible.) A forced
  turn without words gets no ``Turn`` message (an assumption: the vendor does not document it): once
  :attr:`AssemblyAILiveConnection.endpoint_grace` seconds (1 s) pass after a ``ForceEndpoint`` with no unfinished
  words before it and no ``Turn`` arriving, an empty final up to that point is reported — so settling a stretch
  without speech costs that long.
* ``Begin``, ``SpeechStarted``: nothing to report; ``Termination``: the session is over. An ``Error`` message
  (``{"type": "Error", "error_code", "error"}``) names the close that follows; a close voxgate did not ask for
  (``3005``, ``3008``, ``1011``…) or a dropped socket ends
  :meth:`~voxgate.engines.live.LiveConnection.results` with a :class:`~voxgate.errors.ProviderError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from voxgate.config import ProviderConfig
from voxgate.engines.assemblyai.wire import speech_model
from voxgate.engines.live import (
    LiveResult,
    SocketConnection,
    SocketConnector,
    close_description,
    open_socket,
    websocket_url,
)
from voxgate.engines.remote import json_number
from voxgate.errors import ProviderError, ProviderRateLimited, ProviderTimeout, ProviderUnauthorized
from voxgate.types import SAMPLE_RATE, AssemblyAIOptions, TranscriptionOptions, Word

__all__ = ["AssemblyAILiveConnection", "AssemblyAILiveConnector", "streaming_url"]

log = logging.getLogger(__name__)

_MAX_TERMS = 100
_MAX_TERM_CHARS = 50
_BYTES_PER_SECOND = 2 * SAMPLE_RATE
_MIN_CHUNK = _BYTES_PER_SECOND // 20
"""50 ms: the shortest audio frame AssemblyAI accepts."""
_MAX_CHUNK = _BYTES_PER_SECOND
"""1000 ms: the longest."""


def streaming_url(base_url: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """The Universal-Streaming socket URL for the provider's (batch) base URL; see the module docstring."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if host.startswith("api.") and host.endswith(".assemblyai.com"):
        netloc = "streaming." + host.removeprefix("api.") + (f":{parts.port}" if parts.port else "")
        base_url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return websocket_url(base_url, "/v3/ws", params)


def _language_code(value: Any) -> str | None:
    """``en_us`` / ``en-US`` → ``en``."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().replace("-", "_").split("_")[0].lower()


def _close_error(config: ProviderConfig, model_id: str, code: int, reason: str) -> ProviderError:
    if code == 1006:
        return ProviderError(f"{model_id}: the streaming connection dropped")
    where = f"{model_id}: assemblyai closed the stream ({code}{': ' + reason if reason else ''})"
    if code == 1008 and "concurren" in reason.lower():
        return ProviderRateLimited(where)
    if code == 1008:
        return ProviderUnauthorized(f"{where}: check the API key in {config.key_variable} and the account")
    return ProviderError(where)


class AssemblyAILiveConnection(SocketConnection):
    """One open ``/v3/ws`` session (after its ``Begin``)."""

    endpoint_grace = 1.0
    """Seconds after a ``ForceEndpoint`` (and after the last ``Turn``) before an empty forced turn is reported."""
    format_wait = 1.5
    """Seconds an unformatted end of turn waits for its formatted copy before it is reported as is."""

    def __init__(
        self,
        ws: ClientConnection,
        config: ProviderConfig,
        model_id: str,
        *,
        language: str | None,
        format_turns: bool,
    ) -> None:
        super().__init__(ws, config, model_id)
        self._language = language
        self._format_turns = format_turns
        self._buffer = bytearray()
        self._stream_bytes = 0
        """Audio voxgate handed over (bytes)."""
        self._vendor_bytes = 0
        """Audio sent to the vendor, padding included (bytes)."""
        self._pads: list[tuple[float, float]] = []
        """Silence voxgate added: (vendor time it starts at, seconds)."""
        self._done = 0
        """Turns before this ``turn_order`` are final."""
        self._held: dict[int, tuple[tuple[Word, ...], str | None, float]] = {}
        """Unformatted ends of turns waiting for their formatted copy: turn → (words, language, when it came)."""
        self._partial: tuple[Word, ...] = ()
        self._partial_turn: int | None = None
        self._reported = 0
        """Words of the open turn already reported final (``format_turns=false``)."""
        self._force: tuple[float, int, float] | None = None
        """A pending ``ForceEndpoint``: (stream time it settles, the turn open then, when it was sent)."""
        self._last_turn_at = 0.0
        self._settled = 0.0
        self._vendor_error: tuple[int, str] | None = None
        self._watcher: asyncio.Task[None] | None = None

    # -- LiveConnection -------------------------------------------------------------------------------------------

    async def send(self, pcm16: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        self._buffer += pcm16
        self._stream_bytes += len(pcm16)
        async with self._send_lock:
            while len(self._buffer) >= _MIN_CHUNK:
                chunk = bytes(self._buffer[:_MAX_CHUNK])
                del self._buffer[:_MAX_CHUNK]
                await self._send_audio(chunk)

    async def finalize(self) -> None:
        if self._failure is not None:
            raise self._failure
        async with self._send_lock:
            if self._buffer:
                chunk = bytes(self._buffer)
                self._buffer.clear()
                if len(chunk) < _MIN_CHUNK:
                    pad = _MIN_CHUNK - len(chunk)
                    self._pads.append(((self._vendor_bytes + len(chunk)) / _BYTES_PER_SECOND, pad / _BYTES_PER_SECOND))
                    chunk += bytes(pad)
                await self._send_audio(chunk)
            # What the vendor has heard when it reads the ForceEndpoint (a concurrent send() may have buffered more).
            at = (self._stream_bytes - len(self._buffer)) / _BYTES_PER_SECOND
            force = (at, self._open_turn(), time.monotonic())
            await self._send_locked(json.dumps({"type": "ForceEndpoint"}))
        self._force = force
        self._watch()

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        await self._shutdown({"type": "Terminate"})

    async def _send_audio(self, chunk: bytes) -> None:
        await self._send_locked(chunk)
        self._vendor_bytes += len(chunk)

    # -- times ----------------------------------------------------------------------------------------------------

    def _stream_time(self, vendor_ms: Any) -> float:
        """A vendor time (ms, padding included) as a time in the audio voxgate sent (s)."""
        t = max(0.0, json_number(vendor_ms) / 1000.0)
        shift = 0.0
        for at, length in self._pads:
            if t <= at:
                break
            shift += min(length, t - at)
        return round(t - shift, 3)

    def _words(self, raw: Any) -> tuple[tuple[Word, ...], int]:
        """The message's words, and how many of them (from the start) are ``word_is_final``."""
        words: list[Word] = []
        final = 0
        leading = True
        for w in raw or ():
            text = str(w["text"]).strip()
            if not text:
                continue
            start = self._stream_time(w["start"])
            end = max(start, self._stream_time(w["end"]))
            confidence = w.get("confidence", 1.0)
            confidence = min(max(float(confidence), 0.0), 1.0) if isinstance(confidence, int | float) else 1.0
            words.append(Word(text, start, end, round(confidence, 4)))
            leading = leading and bool(w.get("word_is_final"))
            final += leading
        return tuple(words), final

    # -- turns ----------------------------------------------------------------------------------------------------

    def _open_turn(self) -> int:
        """The vendor's open turn: the one after every turn whose end voxgate has seen."""
        return max([self._done, *(k + 1 for k in self._held)])

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "Turn":
            self._turn(message)
        elif kind == "Termination":
            self._release_held()
        elif kind == "Error":
            code = message.get("error_code")
            self._vendor_error = (code if isinstance(code, int) else 0, str(message.get("error") or ""))
        # Begin, SpeechStarted: nothing to report.

    def _turn(self, message: dict[str, Any]) -> None:
        self._last_turn_at = time.monotonic()
        order = int(message["turn_order"])
        if order < self._done:
            return  # already final (a formatted copy after its unformatted turn was reported)
        words, final = self._words(message.get("words"))
        language = self._language or _language_code(message.get("language_code"))
        if message.get("end_of_turn"):
            if message.get("turn_is_formatted") or not self._format_turns:
                self._finish(order, words, language)
            else:
                self._held[order] = (words, language, time.monotonic())
                if self._partial_turn is not None and self._partial_turn <= order:
                    self._partial, self._partial_turn = (), None
                self._show(language)
                self._watch()
            return
        if self._partial_turn != order:
            self._reported = 0
        self._partial_turn = order
        if not self._format_turns and final > self._reported:
            self._report(words[self._reported : final], language)
            self._reported = final
        self._partial = words[self._reported :] if not self._format_turns else words
        self._show(language)

    def _finish(self, order: int, words: tuple[Word, ...], language: str | None) -> None:
        """Turn ``order`` is final with ``words`` (turns before it that are still held go first, as they are)."""
        for earlier in sorted(k for k in self._held if k < order):
            self._finish(earlier, *self._held[earlier][:2])
        self._held.pop(order, None)
        if not self._format_turns and self._partial_turn == order:
            words = words[self._reported :]
        end = words[-1].end if words else self._settled
        if self._force is not None and order >= self._force[1]:
            end = max(end, self._force[0])
            self._force = None
        self._report(words, language, end)
        self._done = order + 1
        if self._partial_turn is not None and self._partial_turn <= order:
            self._partial, self._partial_turn, self._reported = (), None, 0
        self._show(language)

    def _report(self, words: tuple[Word, ...], language: str | None, end: float | None = None) -> None:
        end = max(end if end is not None else (words[-1].end if words else self._settled), self._settled)
        start = words[0].start if words else self._settled
        self._emit(LiveResult(words, True, min(start, end), end, language))
        self._settled = end

    def _show(self, language: str | None) -> None:
        """The open words (held unformatted turns, then the partial) as the interim hypothesis."""
        words = tuple(w for k in sorted(self._held) for w in self._held[k][0]) + self._partial
        if words:
            self._emit(LiveResult(words, False, words[0].start, words[-1].end, language))

    def _release_held(self) -> None:
        for order in sorted(self._held):
            if order in self._held:
                self._finish(order, *self._held[order][:2])

    def _on_end(self) -> None:
        self._release_held()
        if self._watcher is not None:
            self._watcher.cancel()

    # -- timers ---------------------------------------------------------------------------------------------------

    def _watch(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watching())

    async def _watching(self) -> None:
        tick = min(0.1, self.endpoint_grace / 4, self.format_wait / 4)
        while (self._force is not None or self._held) and not self._ended.is_set():
            await asyncio.sleep(tick)
            now = time.monotonic()
            for order in sorted(self._held):
                if order in self._held and now - self._held[order][2] >= self.format_wait:
                    log.info("%s: turn %d came without its formatted copy; reported unformatted", self._model_id, order)
                    self._finish(order, *self._held[order][:2])
            force = self._force
            if force is None or self._held:
                continue
            at, _, sent = force
            unfinished = any(w.start < at - 0.01 for w in self._partial)
            if not unfinished and now - max(sent, self._last_turn_at) >= self.endpoint_grace:
                self._force = None
                self._report((), self._language, at)

    # -- errors ---------------------------------------------------------------------------------------------------

    def _close_error(self, code: int, reason: str) -> ProviderError:
        if self._vendor_error is not None and code != 1006:
            code, reason = self._vendor_error[0] or code, self._vendor_error[1] or reason
        return _close_error(self._config, self._model_id, code, reason)


class AssemblyAILiveConnector(SocketConnector):
    """Opens Universal-Streaming sessions for one model with the provider's key and base URL
    (:class:`~voxgate.config.ProviderConfig`, as :class:`~voxgate.engines.assemblyai.rest.AssemblyAIEngine` holds
    it)."""

    def __init__(
        self, config: ProviderConfig, model: str, *, format_turns: bool = True, turn_silence: int | None = 3600
    ) -> None:
        super().__init__(config, model)
        self.format_turns = format_turns
        self.turn_silence = turn_silence

    def params(self, options: TranscriptionOptions) -> list[tuple[str, str]]:
        """The query string of the socket for ``options``."""
        model = speech_model(self.model, options.language)
        params = [
            ("sample_rate", str(SAMPLE_RATE)),
            ("encoding", "pcm_s16le"),
            ("format_turns", "true" if self.format_turns else "false"),
            ("speech_model", model),
        ]
        if self.turn_silence is not None:
            params.append(("end_of_turn_confidence_threshold", "1"))
            params.append(("max_turn_silence", str(self.turn_silence)))
        block = options.vendor if isinstance(options.vendor, AssemblyAIOptions) else None
        if block is not None and block.vad_threshold is not None:
            params.append(("vad_threshold", str(block.vad_threshold)))
        if block is not None and block.prompt:
            params.append(("prompt", block.prompt))
        if options.language is None and model == "universal-streaming-multilingual":
            params.append(("language_detection", "true"))
        terms: list[str] = []
        for term in (t.strip() for t in options.prompts):
            if not term or term in terms:
                continue
            if len(term) > _MAX_TERM_CHARS or len(terms) == _MAX_TERMS:
                log.warning(
                    "%s: key term %r left out (at most %d terms of %d characters)",
                    self.model_id,
                    term,
                    _MAX_TERMS,
                    _MAX_TERM_CHARS,
                )
                continue
            terms.append(term)
        if terms:
            params.append(("keyterms_prompt", json.dumps(terms)))
        return params

    def url(self, options: TranscriptionOptions) -> str:
        return streaming_url(self.config.base_url, self.params(options))

    async def connect(self, options: TranscriptionOptions) -> AssemblyAILiveConnection:
        self.check_task(options)
        ws = await open_socket(self.url(options), {"Authorization": self.config.api_key or ""}, self.config)
        await self._begin(ws)
        return AssemblyAILiveConnection(
            ws, self.config, self.model_id, language=options.language, format_turns=self.format_turns
        )

    async def _begin(self, ws: ClientConnection) -> None:
        """Wait for the session's ``Begin`` (the vendor reports a refused key or bad parameters by closing)."""
        timeout = min(10.0, self.config.timeout)
        error: tuple[int, str] | None = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    raw = await ws.recv()
                    if isinstance(raw, bytes):
                        continue
                    message = json.loads(raw)
                    kind = message.get("type") if isinstance(message, dict) else None
                    if kind == "Begin":
                        return
                    if kind == "Error":
                        error = (int(message.get("error_code") or 0), str(message.get("error") or ""))
        except ConnectionClosed as exc:
            code, reason = close_description(exc)
            if error is not None:
                code, reason = error[0] or code, error[1] or reason
            raise _close_error(self.config, self.model_id, code, reason) from exc
        except TimeoutError:
            await ws.close()
            raise ProviderTimeout(
                f"{self.model_id}: assemblyai did not begin the session within {timeout:g} s"
            ) from None
        except (ValueError, TypeError) as exc:
            await ws.close()
            raise ProviderError(f"{self.model_id}: assemblyai sent a message voxgate cannot read ({exc!r})") from exc
