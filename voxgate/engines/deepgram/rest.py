"""Deepgram's pre-recorded API (``POST {base}/v1/listen``, ``Authorization: Token <key>``).

How voxgate's request maps to the vendor's query string (the body is the WAV, ``Content-Type: audio/wav``):

* model id ``deepgram/NAME`` → ``model=NAME``;
* always ``punctuate=true&smart_format=true`` (punctuated, formatted text, as Whisper writes it; a
  ``deepgramConfig`` may turn either off, and set ``profanity_filter``, ``filler_words``, ``numerals``) and
  ``utterances=true`` (segments);
* the reference's stream-only Flux ids (``flux-general-en``, ``flux-general-multi``) → ``model=nova-3`` (with
  ``language=en`` for ``-en``), with a warning: Flux has no pre-recorded API;
* ``language`` (ISO 639-1) → ``language``; None → ``detect_language=true``;
* ``prompts`` (custom vocabulary), then ``deepgramConfig.keyterms`` → Nova-3 models: one ``keyterm`` parameter per
  term (Keyterm Prompting); older models: ``keywords=TERM:2`` (keyword boosting, intensifier 2). The result is then
  respelled with :func:`voxgate.vocabulary.apply_vocabulary`;
* ``deepgramConfig.endpointing`` → streams only: a warning says it was ignored;
* ``prompt`` (free text) → not supported: a warning in ``Transcript.warnings`` says so;
* ``temperature`` > 0 → not supported: a warning says so;
* ``word_timestamps=False`` → Deepgram always sends words; voxgate drops them;
* ``task=translate`` → refused by :class:`~voxgate.engines.remote.RemoteEngine`;
* ``beam_size``, ``vad_filter`` → decoder settings of voxgate's local engines; the vendor chooses its own.

And how the response maps back to a :class:`~voxgate.types.Transcript`:

* ``results.utterances[]`` become segments (``transcript``, ``start``, ``end``, ``words``); without utterances, the
  first alternative of the first channel (``results.channels[0].alternatives[0]``) is one segment;
* each word is ``punctuated_word`` (``word`` when absent: lower case, no punctuation) with its ``start``, ``end`` and
  ``confidence``;
* ``results.channels[0].detected_language`` and ``language_confidence`` give the language and its probability
  (``en-US`` is reduced to ``en``); when the caller gave the language, its probability is 1.0.
"""

from __future__ import annotations

from typing import Any

from voxgate.engines.deepgram.live import DeepgramLiveConnector
from voxgate.engines.deepgram.wire import FLUX_NOTE, block, formatting, language_of, served_model, terms, vocabulary
from voxgate.engines.live import LiveConnector
from voxgate.engines.remote import RemoteEngine, json_number
from voxgate.types import Segment, Transcript, TranscriptionOptions, Word
from voxgate.vocabulary import apply_vocabulary

__all__ = ["NO_ENDPOINTING", "NO_PROMPT", "NO_TEMPERATURE", "DeepgramEngine"]

NO_PROMPT = "deepgram has no free-text prompt; use prompts (keyterms)"
NO_TEMPERATURE = "deepgram has no sampling temperature; temperature was ignored"
NO_ENDPOINTING = "deepgramConfig.endpointing applies to streams only; ignored for a file"


def _words(raw: Any, duration: float) -> tuple[Word, ...]:
    words = []
    for w in raw or ():
        text = str(w.get("punctuated_word") or w["word"]).strip()
        if not text:
            continue
        words.append(
            Word(
                text,
                round(min(max(json_number(w["start"]), 0.0), duration), 3),
                round(min(max(json_number(w["end"]), 0.0), duration), 3),
                round(min(max(json_number(w["confidence"]), 0.0), 1.0), 4),
            )
        )
    return tuple(words)


class DeepgramEngine(RemoteEngine):
    """``deepgram/nova-3``, ``deepgram/nova-2`` (and any other model name Deepgram knows): one ``POST /v1/listen``
    per call, retried when it fails transiently."""

    provider = "deepgram"
    auth_scheme = "Token"

    def live_connector(self) -> LiveConnector:
        """Deepgram's live socket for this model; voxgate's stream runner uses it for streams."""
        return DeepgramLiveConnector(self.config, self.model)

    def recognize(self, wav: bytes, duration: float, options: TranscriptionOptions) -> Transcript:
        model, language = served_model(self.model, options.language)
        params: list[tuple[str, str]] = [("model", model), *formatting(options), ("utterances", "true")]
        if language:
            params.append(("language", language))
        else:
            params.append(("detect_language", "true"))
        params.extend(vocabulary(model, terms(options)))
        warnings = []
        if model != self.model:
            warnings.append(FLUX_NOTE.format(model_id=self.model_id))
        dg = block(options)
        if dg is not None and dg.endpointing is not None:
            warnings.append(NO_ENDPOINTING)
        if options.prompt and options.prompt.strip():
            warnings.append(NO_PROMPT)
        if options.temperature > 0:
            warnings.append(NO_TEMPERATURE)
        response = self.request(
            "POST",
            "/v1/listen",
            audio_seconds=duration,
            params=params,
            content=wav,
            headers={"Content-Type": "audio/wav"},
        )
        body = self.json_body(response)
        try:
            language, probability, segments = self._parse(body, duration, options)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise self.unreadable(response, exc) from exc
        return Transcript(
            segments=apply_vocabulary(segments, tuple(terms(options))),
            duration=duration,
            language=language,
            language_probability=probability,
            model_id=self.model_id,
            warnings=tuple(warnings),
        )

    @staticmethod
    def _parse(
        body: Any, duration: float, options: TranscriptionOptions
    ) -> tuple[str | None, float | None, list[Segment]]:
        results = body["results"]
        channel = results["channels"][0]
        alternative = channel["alternatives"][0]
        language: str | None = options.language
        probability: float | None = 1.0 if options.language else None
        if not options.language:
            language = language_of(channel.get("detected_language"))
            confidence = channel.get("language_confidence")
            probability = round(json_number(confidence), 4) if confidence is not None and language else None
        segments = []
        utterances = results.get("utterances")
        if utterances:
            for u in utterances:
                if u.get("channel", 0) != 0:
                    continue
                text = str(u["transcript"]).strip()
                if text:
                    segments.append(
                        Segment(
                            text,
                            round(json_number(u["start"]), 3),
                            round(min(json_number(u["end"]), duration), 3),
                            _words(u.get("words"), duration),
                            language,
                        )
                    )
        else:
            text = str(alternative["transcript"]).strip()
            words = _words(alternative.get("words"), duration)
            if text:
                start = words[0].start if words else 0.0
                end = words[-1].end if words else duration
                segments.append(Segment(text, start, end, words, language))
        if not options.word_timestamps:
            segments = [Segment(s.text, s.start, s.end, (), s.language) for s in segments]
        return language, probability, segments
