"""OpenAI's speech-to-text API (``POST {base}/audio/transcriptions``), and Groq's copy of it.

How voxgate's request maps to the vendor's multipart form:

* the audio → ``file``: the 16 kHz mono WAV, named ``audio.wav`` (the vendor reads the format from the extension).
  The service windows files (``window_seconds``, 300 s = 9.6 MB of WAV), so one call stays below the 25 MB limit;
* model id ``openai/NAME`` → ``model=NAME``;
* ``language`` (ISO 639-1) → ``language``; None: omitted, and the vendor detects it;
* ``prompts`` (custom vocabulary) → OpenAI has no keyterm list: the terms go first into ``prompt``, comma-separated,
  which is how OpenAI documents guiding the spelling of names and jargon; the result is then respelled with
  :func:`voxgate.vocabulary.apply_vocabulary`;
* ``prompt`` (free text) → appended to ``prompt`` after the terms (Whisper reads it as the preceding text);
* ``temperature`` → ``temperature`` (Groq: ``groqConfig.temperature`` when given);
* ``word_timestamps`` → Whisper models: ``response_format=verbose_json`` with ``timestamp_granularities[]=word`` and
  ``segment`` (``segment`` alone without word times). ``gpt-4o-*`` models answer ``json`` only (text; no times, no
  language): one segment spanning the audio, and a warning in ``Transcript.warnings`` when word times were asked;
* ``task=translate`` → refused by :class:`~voxgate.engines.remote.RemoteEngine` (``/audio/translations`` translates
  to English only, and only with whisper-1);
* ``beam_size``, ``vad_filter`` → decoder settings of voxgate's local engines; the vendor chooses its own.

And how ``verbose_json`` maps back to a :class:`~voxgate.types.Transcript`:

* ``segments[]`` become segments (``text``, ``start``, ``end``, ``avg_logprob``, ``no_speech_prob``);
* ``words[]`` (``word``, ``start``, ``end``; no probability) are placed in the segment their midpoint falls in and
  take the punctuation their segment's text gives them (``Americans`` in "fellow Americans, ask" becomes
  ``Americans,``, as voxgate's local words are); their confidence is the segment's mean token probability,
  ``exp(avg_logprob)``, the closest the API offers;
* ``language`` is a name in English ("english"; matched without regard to case, since OpenAI-compatible servers
  differ, and a code is accepted as well) and is mapped back to its code. When the caller gave the language, its
  probability is 1.0; a detected one has none (the API does not say).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from voxgate.config import Settings
from voxgate.engines.live import LiveConnector
from voxgate.engines.openai.live import OpenAILiveConnector
from voxgate.engines.openai.wire import language_code, prompt_of
from voxgate.engines.remote import RemoteEngine, json_number
from voxgate.models.catalog import WHISPER_LANGUAGES, ModelSpec
from voxgate.types import GroqOptions, Segment, Transcript, TranscriptionOptions, Word
from voxgate.vocabulary import apply_vocabulary

__all__ = ["GroqEngine", "OpenAIEngine"]

_TEXT_ONLY = ("gpt-4o",)
"""Model name prefixes that answer ``json``/``text`` only: no ``verbose_json``, no timestamps, no language."""

_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)


def _key(text: str) -> str:
    return _NON_ALNUM.sub("", text).casefold()


def _punctuate(words: list[Word], text: str) -> list[Word]:
    """Give each word the punctuation the segment's text puts around it (the API's words come without)."""
    tokens = text.split()
    out = []
    j = 0
    for word in words:
        key = _key(word.word)
        for k in range(j, min(j + 3, len(tokens))):
            if key and _key(tokens[k]) == key:
                out.append(replace(word, word=tokens[k]))
                j = k + 1
                break
        else:
            out.append(word)
    return out


class OpenAIEngine(RemoteEngine):
    """``openai/whisper-1``, ``openai/gpt-4o-transcribe``, ``openai/gpt-4o-mini-transcribe`` (and any other model
    name the API knows): one ``POST /audio/transcriptions`` per call, retried when it fails transiently."""

    provider = "openai"

    def __init__(self, spec: ModelSpec, settings: Settings, **kwargs: Any) -> None:
        super().__init__(spec, settings, **kwargs)
        self.text_only = self.model.startswith(_TEXT_ONLY)
        self._capabilities = replace(
            self._capabilities,
            languages=self._capabilities.languages or WHISPER_LANGUAGES,
            word_timestamps=not self.text_only,
        )

    def live_connector(self) -> LiveConnector | None:
        """OpenAI's Realtime transcription socket for this model (wss://…/realtime?intent=transcription)."""
        return OpenAILiveConnector(self.config, self.model)

    def temperature(self, options: TranscriptionOptions) -> float:
        """The sampling temperature to send: the request's."""
        return options.temperature

    def recognize(self, wav: bytes, duration: float, options: TranscriptionOptions) -> Transcript:
        form: dict[str, str | list[str]] = {"model": self.model, "temperature": repr(float(self.temperature(options)))}
        if options.language:
            form["language"] = options.language
        prompt = prompt_of(options)
        if prompt:
            form["prompt"] = prompt
        warnings: list[str] = []
        if self.text_only:
            form["response_format"] = "json"
            if options.word_timestamps:
                warnings.append(f"word timestamps are not available from {self.model_id}")
        else:
            form["response_format"] = "verbose_json"
            form["timestamp_granularities[]"] = ["word", "segment"] if options.word_timestamps else ["segment"]
        response = self.request(
            "POST",
            "/audio/transcriptions",
            audio_seconds=duration,
            data=form,
            files={"file": ("audio.wav", wav, "audio/wav")},
        )
        body = self.json_body(response)
        try:
            if self.text_only:
                language, segments = options.language, self._text_segment(body, duration, options.language)
            else:
                language, segments = self._verbose(body, duration, options)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self.unreadable(response, exc) from exc
        return Transcript(
            segments=apply_vocabulary(segments, options.prompts),
            duration=duration,
            language=language,
            language_probability=1.0 if options.language else None,
            model_id=self.model_id,
            warnings=tuple(warnings),
        )

    @staticmethod
    def _text_segment(body: Any, duration: float, language: str | None) -> list[Segment]:
        text = body["text"]
        if not isinstance(text, str):
            raise TypeError(f"text is {text!r}")
        return [Segment(text.strip(), 0.0, duration, language=language)] if text.strip() else []

    def _verbose(self, body: Any, duration: float, options: TranscriptionOptions) -> tuple[str | None, list[Segment]]:
        language = options.language or language_code(body.get("language"))
        raw_segments = body.get("segments") or []
        if not raw_segments:
            return language, self._text_segment(body, duration, language)
        words = [
            Word(
                str(w["word"]).strip(),
                round(min(max(json_number(w["start"]), 0.0), duration), 3),
                round(min(max(json_number(w["end"]), 0.0), duration), 3),
                1.0,
            )
            for w in (body.get("words") or [])
            if str(w["word"]).strip()
        ]
        words.sort(key=lambda w: w.start)
        spans = [(json_number(s["start"]), json_number(s["end"])) for s in raw_segments]
        placed: list[list[Word]] = [[] for _ in raw_segments]
        i = 0
        for word in words:
            middle = (word.start + word.end) / 2
            while i + 1 < len(spans) and middle >= spans[i + 1][0]:
                i += 1
            placed[i].append(word)
        segments = []
        for s, (start, end), mine in zip(raw_segments, spans, placed, strict=True):
            text = str(s["text"]).strip()
            if not text:
                continue
            avg_logprob = s.get("avg_logprob")
            confidence = round(min(1.0, math.exp(json_number(avg_logprob))), 4) if avg_logprob is not None else 1.0
            no_speech = s.get("no_speech_prob")
            segments.append(
                Segment(
                    text=text,
                    start=round(start, 3),
                    end=round(min(end, duration), 3),
                    words=tuple(replace(w, confidence=confidence) for w in _punctuate(mine, text)),
                    language=language,
                    avg_logprob=json_number(avg_logprob) if avg_logprob is not None else None,
                    no_speech_prob=json_number(no_speech) if no_speech is not None else None,
                )
            )
        return language, segments


class GroqEngine(OpenAIEngine):
    """``groq/whisper-large-v3``, ``groq/whisper-large-v3-turbo``: Groq serves OpenAI's API at its own base URL
    (``VOXGATE_GROQ_BASE_URL``, default ``https://api.groq.com/openai/v1``), ``verbose_json`` and word times
    included."""

    provider = "groq"

    def temperature(self, options: TranscriptionOptions) -> float:
        """``groqConfig.temperature`` when the request has one, else the request's."""
        if isinstance(options.vendor, GroqOptions) and options.vendor.temperature is not None:
            return options.vendor.temperature
        return options.temperature

    def live_connector(self) -> LiveConnector | None:
        """Groq has no streaming socket: its streams are served through voxgate's session (one call per decode)."""
        return None
