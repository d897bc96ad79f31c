"""Deepgram's live streaming API (``wss://api.deepgram.com/v1/listen``): a :class:`~voxgate.engines.live.LiveConnector`.

The socket, as voxgate uses it:

* URL: the provider's base URL with ``https`` → ``wss`` (``http`` → ``ws``) and ``/v1/listen`` appended, so
  ``https://api.deepgram.com`` (the default) gives ``wss://api.deepgram.com/v1/listen``. Query:
  ``model=NAME&encoding=linear16&sample_rate=16000&channels=1&interim_results=true&punctuate=true&smart_format=true``
  plus, as for the batch adapter (:mod:`voxgate.engines.deepgram.rest`): ``language`` when the caller gave one, else
  ``language=multi`` (Nova-2/Nova-3 multilingual; Deepgram's streaming API has no ``detect_language``) — other
  models get no ``language`` (Deepgram's default, English); vocabulary (``prompts``, then ``deepgramConfig.keyterms``)
  as one ``keyterm`` per term on Nova-3 models, ``keywords=TERM:2`` on the others. A ``deepgramConfig`` may turn
  ``punctuate``/``smart_format`` off, set ``profanity_filter``, ``filler_words``, ``numerals`` and ``endpointing``
  (ms; 0 sends ``false``). The reference's Flux ids (``flux-general-en``, ``flux-general-multi``) are served by
  ``model=nova-3`` on this socket (``language=en`` for ``-en``, ``multi`` otherwise): Flux's own ``/v2/listen`` socket
  is not spoken here yet. The free-text ``prompt`` and ``temperature`` have no Deepgram counterpart and
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

The socket plumbing (:func:`~voxgate.engines.live.open_socket`, :class:`~voxgate.engines.live.SocketConnection`)
is vendor-neutral and lives in :mod:`voxgate.engines.live`.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import ClientConnection

from voxgate.config import ProviderConfig
from voxgate.engines.deepgram.wire import block, formatting, language_of, served_model, terms, vocabulary
from voxgate.engines.live import LiveResult, SocketConnection, SocketConnector, open_socket, websocket_url
from voxgate.engines.remote import json_number
from voxgate.errors import ProviderError
from voxgate.types import TranscriptionOptions, Word

__all__ = ["DeepgramLiveConnection", "DeepgramLiveConnector"]

_MULTILINGUAL_MODELS = ("nova-3", "nova-2")
"""Model name prefixes that take ``language=multi``."""


# -- Deepgram -------------------------------------------------------------------------------------------------------


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
        self._start_keepalive({"type": "KeepAlive"}, keepalive_interval)

    async def send(self, pcm16: bytes) -> None:
        if pcm16:  # an empty binary frame would end Deepgram's stream
            await self._send_frame(pcm16)

    async def finalize(self) -> None:
        await self._send_json({"type": "Finalize"})

    async def close(self) -> None:
        await self._shutdown({"type": "CloseStream"})

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "Results":
            alternative = message["channel"]["alternatives"][0]
            words = []
            for raw in alternative.get("words") or ():
                text = str(raw.get("punctuated_word") or raw["word"]).strip()
                if not text:
                    continue
                start = max(0.0, json_number(raw["start"]))
                end = max(start, json_number(raw["end"]))
                confidence = min(max(json_number(raw.get("confidence", 1.0)), 0.0), 1.0)
                words.append(Word(text, round(start, 3), round(end, 3), round(confidence, 4)))
            languages = alternative.get("languages")
            language = self._language or (language_of(languages[0]) if languages else None)
            start = max(0.0, json_number(message["start"]))
            end = start + max(0.0, json_number(message["duration"]))
            self._emit(LiveResult(tuple(words), bool(message.get("is_final")), start, end, language))
        elif kind == "Error" or "err_code" in message:
            reason = message.get("description") or message.get("err_msg") or message.get("message") or message
            raise ProviderError(f"{self._model_id} reported an error: {reason}")
        # Metadata, UtteranceEnd, SpeechStarted: nothing to report.


class DeepgramLiveConnector(SocketConnector):
    """Opens Deepgram live sockets for one model (``deepgram/nova-3`` → ``nova-3``) with the provider's key and base
    URL (:class:`~voxgate.config.ProviderConfig`, as :class:`~voxgate.engines.deepgram.rest.DeepgramEngine` holds it).

    ``keepalive_interval``: seconds without audio after which a ``KeepAlive`` is sent (None: never).
    """

    def __init__(self, config: ProviderConfig, model: str, *, keepalive_interval: float | None = 5.0) -> None:
        super().__init__(config, model)
        self.keepalive_interval = keepalive_interval

    def params(self, options: TranscriptionOptions) -> list[tuple[str, str]]:
        """The query string of the socket for ``options``."""
        model, language = served_model(self.model, options.language)
        params = [
            ("model", model),
            ("encoding", "linear16"),
            ("sample_rate", "16000"),
            ("channels", "1"),
            ("interim_results", "true"),
            *formatting(options),
        ]
        if language:
            params.append(("language", language))
        elif model.startswith(_MULTILINGUAL_MODELS):
            params.append(("language", "multi"))
        params.extend(vocabulary(model, terms(options)))
        dg = block(options)
        if dg is not None and dg.endpointing is not None:
            params.append(("endpointing", str(dg.endpointing) if dg.endpointing else "false"))
        return params

    def url(self, options: TranscriptionOptions) -> str:
        return websocket_url(self.config.base_url, "/v1/listen", self.params(options))

    async def connect(self, options: TranscriptionOptions) -> DeepgramLiveConnection:
        self.check_task(options)
        headers = {"Authorization": f"Token {self.config.api_key}"}
        ws = await open_socket(self.url(options), headers, self.config)
        return DeepgramLiveConnection(
            ws, self.config, self.model_id, language=options.language, keepalive_interval=self.keepalive_interval
        )
