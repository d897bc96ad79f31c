"""A fake of AssemblyAI's Universal-Streaming API (v3, ``/v3/ws``) that transcribes for real.

The handshake is checked as the vendor checks it: known query parameters, ``speech_model`` given and known,
``encoding=pcm_s16le`` at ``sample_rate=16000`` (what voxgate sends, and all this fake decodes), booleans spelled
``true``/``false``, ``keyterms_prompt`` a JSON list of at most 100 strings — a bad request is refused with HTTP 400.
The ``Authorization`` header must be the bare key: without it (or with another key) the socket is accepted, then an
``Error`` message and a ``1008 Unauthorized Connection`` close follow, as AssemblyAI documents. The session starts with
``Begin``.

Audio frames must be 50 to 1000 ms long (else ``Error`` and close ``3005 Input duration violation``). Every
:attr:`~tests.engines.fake_vendors.deepgram_live_server.LiveVendor.interim_every` seconds of new audio the open turn
is transcribed by voxgate's local engine (key terms as hotwords) and sent as a partial ``Turn`` (``end_of_turn:
false``, lower case, no punctuation). Words are immutable once final, as at the vendor: a word ending at least a
second before the audio received so far becomes ``word_is_final`` and stays as it is in every later message of the
turn. ``{"type": "ForceEndpoint"}`` ends the open turn with the audio received before it: a ``Turn`` with
``end_of_turn: true`` and, when ``format_turns=true``, the same words formatted (``turn_is_formatted: true``, cased
and punctuated as the whole turn transcribed at once spells them) — and nothing at all when the turn has no words.
Turns also end by themselves after silence following speech: ``max_turn_silence`` milliseconds (default 1280) when
``end_of_turn_confidence_threshold=1`` turns the semantic model off, else ``min_end_of_turn_silence_when_confident``
(default 400; the semantic model is taken as always confident). ``{"type": "Terminate"}`` ends the open turn, sends
``Termination`` and closes (1000). Times are milliseconds of the audio received (padding a client added included).
With ``language_detection=true`` each ``Turn`` carries ``language_code`` and ``language_confidence``.

Scripted faults (:meth:`LiveVendor.script_live`): refuse the handshake with a status, or drop the connection (close
``1011``) after some seconds of audio; :attr:`AssemblyAIVendor.formats_turns` ``= False`` never sends the formatted
copy of a turn.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from tests.engines.fake_vendors import WireError
from tests.engines.fake_vendors.assemblyai_server import error_body
from tests.engines.fake_vendors.deepgram_live_server import Connection, FakeLiveSession, LiveVendor, live_app, plain
from voxgate.engines.base import Engine
from voxgate.types import SAMPLE_RATE, TranscriptionOptions, Word

__all__ = ["API_KEY", "SPEECH_MODELS", "AssemblyAIVendor", "create_app"]

API_KEY = "aai-live-test-key-0123456789"
SPEECH_MODELS = frozenset({"universal-streaming-english", "universal-streaming-multilingual", "u3-rt-pro"})
_BOOLEANS = {"format_turns", "language_detection"}
_KNOWN = _BOOLEANS | {
    "sample_rate",
    "encoding",
    "speech_model",
    "keyterms_prompt",
    "end_of_turn_confidence_threshold",
    "min_end_of_turn_silence_when_confident",
    "max_turn_silence",
    "inactivity_timeout",
    "vad_threshold",
    "prompt",
}
_FINAL_LAG = 1.0
"""A word ending this long before the end of the audio received is final."""


class AssemblyAIVendor(LiveVendor):
    """:class:`LiveVendor` with the one AssemblyAI quirk a test may switch off."""

    def __init__(self, engine: Engine, *, api_key: str = API_KEY) -> None:
        super().__init__(engine, api_key=api_key)
        self.formats_turns = True
        """False: never send the formatted copy of a turn, even with ``format_turns=true``."""

    def reset(self) -> None:
        super().reset()
        self.formats_turns = True


def _check(query: Sequence[tuple[str, str]]) -> tuple[str, dict[str, str], list[str]]:
    unknown = sorted({k for k, _ in query} - _KNOWN)
    if unknown:
        raise WireError(f"Invalid query parameter(s): {', '.join(unknown)}")
    params = dict(query)
    if len(params) != len(query):
        raise WireError("A query parameter was given more than once")
    for name in _BOOLEANS & set(params):
        if params[name] not in ("true", "false"):
            raise WireError(f"Invalid value for {name}: {params[name]!r}")
    model = params.get("speech_model")
    if model is None:
        raise WireError("speech_model is required")
    if model not in SPEECH_MODELS:
        raise WireError(f"Invalid speech_model: {model!r}")
    if params.get("encoding", "pcm_s16le") != "pcm_s16le" or params.get("sample_rate") != str(SAMPLE_RATE):
        raise WireError("this fake takes encoding=pcm_s16le at sample_rate=16000 only")
    try:
        threshold = float(params.get("end_of_turn_confidence_threshold", "0.4"))
        vad = float(params.get("vad_threshold", "0.4"))
        silences = [int(params.get(k, "0")) for k in ("max_turn_silence", "min_end_of_turn_silence_when_confident")]
    except ValueError:
        raise WireError("turn detection parameters must be numbers") from None
    if not 0 <= threshold <= 1 or not 0 <= vad <= 1 or min(silences) < 0:
        raise WireError("turn detection parameters out of range")
    if "prompt" in params and model != "u3-rt-pro":
        raise WireError("prompt is supported by u3-rt-pro only")
    terms: list[str] = []
    if "keyterms_prompt" in params:
        try:
            terms = json.loads(params["keyterms_prompt"])
        except ValueError:
            raise WireError("keyterms_prompt must be a JSON list of strings") from None
        if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
            raise WireError("keyterms_prompt must be a JSON list of strings")
        if len(terms) > 100:
            raise WireError("keyterms_prompt takes at most 100 terms")
    return model, params, [t for t in terms if 5 <= len(t) <= 50]  # the vendor ignores terms outside 5-50 characters


def _formatted(words: Sequence[Word], whole: Sequence[Word]) -> list[Word]:
    """``words`` spelled as in ``whole`` (the same word near the same time), the first one capitalised."""
    out = []
    for w in words:
        match = next((o for o in whole if plain(o.word) == plain(w.word) and abs(o.start - w.start) < 0.3), w)
        out.append(Word(match.word, w.start, w.end, w.confidence))
    if out:
        out[0] = Word(out[0].word[:1].upper() + out[0].word[1:], out[0].start, out[0].end, out[0].confidence)
    return out


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class AssemblyAISession(FakeLiveSession):
    def __init__(
        self, connection: Connection, options: TranscriptionOptions, *, params: dict[str, str], formats: bool = True
    ) -> None:
        super().__init__(connection, options)
        self.format_turns = params.get("format_turns") == "true" and formats
        self.language_detection = params.get("language_detection") == "true"
        # Acoustic end of turn after max_turn_silence; the semantic model is taken as always confident (its turns end
        # after min_end_of_turn_silence_when_confident) unless the threshold of 1 turns it off.
        longest = int(params.get("max_turn_silence", "1280")) / 1000
        shortest = int(params.get("min_end_of_turn_silence_when_confident", "400")) / 1000
        threshold = float(params.get("end_of_turn_confidence_threshold", "0.4"))
        self.endpoint_silence = longest if threshold >= 1 else min(shortest, longest)
        self.order = 0
        self.fixed: list[Word] = []
        """The open turn's final (immutable) words."""

    # -- messages ---------------------------------------------------------------------------------------------------

    def turn(self, words: Sequence[Word], final: int, *, end_of_turn: bool, formatted: bool) -> dict[str, Any]:
        shown = [w.word if formatted else plain(w.word) for w in words]
        message: dict[str, Any] = {
            "turn_order": self.order,
            "turn_is_formatted": formatted,
            "end_of_turn": end_of_turn,
            "transcript": " ".join(shown[:final]),
            "end_of_turn_confidence": 0.9 if end_of_turn else 0.05,
            "words": [
                {
                    "start": _ms(w.start),
                    "end": _ms(w.end),
                    "text": text,
                    "confidence": round(w.confidence, 6),
                    "word_is_final": i < final,
                }
                for i, (w, text) in enumerate(zip(words, shown, strict=True))
            ],
            "utterance": "",
            "type": "Turn",
        }
        if self.language_detection:
            message["language_code"] = "en"
            message["language_confidence"] = 0.98
        return message

    def merged(self, words: Sequence[Word], end: float) -> tuple[list[Word], int]:
        """The open turn's words (its final ones kept as they are, then the new hypothesis after them) and how many
        of them are final now."""
        tail = [w for w in words if not self.fixed or w.start >= self.fixed[-1].end - 0.02]
        merged = self.fixed + tail
        final = len(self.fixed)
        while final < len(merged) and merged[final].end <= end - _FINAL_LAG:
            final += 1
        self.fixed = merged[:final]
        return merged, final

    async def end_turn(self, words: Sequence[Word], whole: Sequence[Word]) -> None:
        """End the open turn with ``words``; ``whole`` is the turn transcribed at once, which its formatted copy takes
        its casing and punctuation from (the words stay the ones already sent)."""
        await self.send(self.turn(words, len(words), end_of_turn=True, formatted=False))
        if self.format_turns:
            await self.send(self.turn(_formatted(words, whole), len(words), end_of_turn=True, formatted=True))
        self.order += 1
        self.fixed = []

    async def close_turn(self, at: int) -> None:
        """End the open turn with the audio before sample ``at`` (no message when it has no words)."""
        whole = await self.words(self.final, at)
        words, _ = self.merged(whole, at / SAMPLE_RATE)
        if words:
            await self.end_turn(words, whole)
        else:
            self.fixed = []
        self.final = max(self.final, at)

    # -- FakeLiveSession --------------------------------------------------------------------------------------------

    def check_audio(self, data: bytes) -> str | None:
        ms = len(data) / 2 / SAMPLE_RATE * 1000
        if len(data) % 2 or not 50 <= ms <= 1000:
            return f"Input duration violation: {ms:.0f} ms. Expected between 50 and 1000 ms"
        return None

    async def refuse_audio(self, reason: str) -> None:
        await self.send({"type": "Error", "error_code": 3005, "error": reason})
        await self.close(3005, reason)

    async def control(self, message: dict[str, Any], at: int) -> bool:
        kind = message.get("type")
        if kind == "ForceEndpoint":
            await self.close_turn(at)
            return True
        if kind == "Terminate":
            await self.close_turn(at)
            await self.send(
                {
                    "type": "Termination",
                    "audio_duration_seconds": round(self.samples / SAMPLE_RATE),
                    "session_duration_seconds": round(time.monotonic() - self.started_at),
                }
            )
            await self.close(1000)
            return False
        if kind in ("KeepAlive", "UpdateConfiguration"):
            return True
        reason = f"Invalid Message Type: {kind}"
        await self.send({"type": "Error", "error_code": 3005, "error": reason})
        await self.close(3005, reason)
        return False

    async def interim(self) -> None:
        end = self.samples
        words, final = self.merged(await self.words(self.final, end), end / SAMPLE_RATE)
        if words:
            await self.send(self.turn(words, final, end_of_turn=False, formatted=False))

    async def endpoint(self, at: int) -> None:
        whole = await self.words(self.final, at)
        words, _ = self.merged(whole, at / SAMPLE_RATE)
        if words:
            await self.end_turn(words, whole)
        self.fixed = []

    async def idle(self) -> None:
        await self.send({"type": "Error", "error_code": 3005, "error": "Session Cancelled: idle for too long"})
        await self.close(3005, "Session Cancelled: idle for too long")


def _refusal(status: int, message: str) -> JSONResponse:
    return JSONResponse(error_body(status, message), status)


def create_app(vendor: AssemblyAIVendor) -> FastAPI:
    async def streaming(connection: Connection) -> None:
        websocket = connection.websocket
        try:
            model, params, terms = _check(connection.received.query)
        except WireError as exc:
            await connection.deny(_refusal(exc.status, exc.message))
            return
        await connection.accept()
        key = websocket.headers.get("authorization")
        if key != vendor.api_key:
            reason = "Unauthorized Connection: " + (
                "Missing Authorization header" if key is None else "Invalid API key"
            )
            await websocket.send_text(json.dumps({"type": "Error", "error_code": 1008, "error": reason}))
            await websocket.close(1008, reason)
            return
        options = TranscriptionOptions(
            language="en" if model == "universal-streaming-english" else None,
            prompts=tuple(terms),
            word_timestamps=True,
        )
        session = AssemblyAISession(connection, options, params=params, formats=vendor.formats_turns)
        await session.send({"type": "Begin", "id": session.session_id, "expires_at": int(time.time()) + 3 * 3600})
        await session.run()

    return live_app("/v3/ws", vendor, streaming, _refusal)
