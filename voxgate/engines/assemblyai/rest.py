"""AssemblyAI's pre-recorded (async) API: upload the audio, create a transcript job, poll it, map the result back.

The vendor's API, as voxgate uses it (``https://www.assemblyai.com/docs``, REST API v2):

* Auth: ``Authorization: <key>`` — the bare key, no scheme.
* ``POST /v2/upload`` with the WAV bytes as the raw body (``application/octet-stream``) → ``{"upload_url"}``.
  Retried on 429, 5xx and network errors (a repeated upload only leaves an unused copy).
* ``POST /v2/transcript`` with a JSON body → ``{"id", "status"}``. This creates a billable job, so it is sent once
  and never retried: after a 5xx or a dropped connection the job may exist all the same.
* ``GET /v2/transcript/{id}`` every :attr:`AssemblyAIEngine.poll_interval` seconds (growing up to
  :attr:`~AssemblyAIEngine.poll_interval_max`) until ``status`` is ``completed`` or ``error``. Retried like the
  upload. Polling stops with :class:`~voxgate.errors.ProviderTimeout` after ``provider_timeout_seconds`` plus
  :attr:`~AssemblyAIEngine.processing_allowance` seconds per second of audio. ``status: "error"`` raises
  :class:`~voxgate.errors.ProviderError` with the job's ``error`` message.

voxgate's options → the transcript request:

==========================  ==========================================================================================
``model`` (the id's name)   ``speech_models: [name]`` (``assemblyai/universal-3-pro`` → ``["universal-3-pro"]``). The
                            singular ``speech_model`` is deprecated and refused for current models. Streaming-only
                            models (``universal-streaming-*``, ``u3-rt-*``) have no batch form: the closest batch
                            model is used, with a warning.
``language``                ``language_code`` (ISO 639-1 codes are AssemblyAI codes); ``None`` →
                            ``language_detection: true``.
``prompts`` (vocabulary)    ``keyterms_prompt`` on Slam-1 and the Universal-3 family, ``word_boost`` with
                            ``boost_param: "high"`` on the others. AssemblyAI takes at most 1000 terms of at most
                            6 words: terms past those limits are left out, with a warning.
``prompt`` (free text)      Not sent, warning. AssemblyAI's ``prompt`` (Universal-3 only) is an instruction on how
                            to transcribe and excludes ``keyterms_prompt``; voxgate's is context (previous text).
``assemblyaiConfig``        ``prompt`` → ``prompt`` on Universal-3 models (the vocabulary is then not sent, only
                            respelled in the result; warning), warning on others. ``vadThreshold`` is for streams:
                            warning (its turn silences are voxgate's turn policy, streams only).
``word_timestamps=False``   AssemblyAI always returns words; voxgate drops them from the result.
punctuation, casing         ``punctuate: true``, ``format_text: true`` (voxgate's transcripts are formatted).
temperature, beam, VAD      Whisper decoding knobs with no AssemblyAI counterpart: not sent.
==========================  ==========================================================================================

The completed job → voxgate's :class:`~voxgate.types.Transcript`: ``words[{text, start, end, confidence}]`` (times
in milliseconds) become :class:`~voxgate.types.Word` (seconds, clamped to the audio); segments are cut after a word
ending a sentence, at pauses of at least a second, so long files read as sentences rather than one block;
``language_code`` (``en_us`` → ``en``) is the language, ``language_confidence`` its probability when it was detected.
The vocabulary respelling (:func:`~voxgate.vocabulary.apply_vocabulary`) runs on the result, as for every engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from voxgate.engines.assemblyai.live import AssemblyAILiveConnector
from voxgate.engines.assemblyai.wire import batch_counterpart
from voxgate.engines.live import LiveConnector
from voxgate.engines.remote import RemoteEngine, segments_from_words
from voxgate.errors import ProviderError
from voxgate.types import AssemblyAIOptions, Segment, Transcript, TranscriptionOptions, Word

__all__ = ["AssemblyAIEngine"]

_MAX_TERMS = 1000
_MAX_TERM_WORDS = 6


def _keyterms_model(model: str) -> bool:
    """Models that take ``keyterms_prompt`` (the others take ``word_boost``)."""
    return model == "slam-1" or model.startswith("universal-3")


class AssemblyAIEngine(RemoteEngine):
    """``assemblyai/<speech model>``: AssemblyAI's async transcription, one job per call."""

    provider = "assemblyai"
    auth_scheme = ""

    def live_connector(self) -> LiveConnector:
        """AssemblyAI's Universal-Streaming socket for this model (streaming host derived from the base URL)."""
        return AssemblyAILiveConnector(self.config, self.model)

    def recognize(self, wav: bytes, duration: float, options: TranscriptionOptions) -> Transcript:
        warnings: list[str] = []
        body = self._request_body(options, warnings)
        upload = self.json_object(
            self.request(
                "POST",
                "/v2/upload",
                audio_seconds=duration,
                content=wav,
                headers={"Content-Type": "application/octet-stream"},
            )
        )
        body["audio_url"] = self.json_string(upload, "upload_url")
        job = self.json_object(self.request("POST", "/v2/transcript", idempotent=False, json=body))
        job_id = self.json_string(job, "id")
        result = self.poll_json(
            f"/v2/transcript/{job_id}", kind="transcript", job_id=job_id, duration=duration, reasons=("error",)
        )
        return self._transcript(result, duration, options, bool(body.get("language_detection")), warnings)

    # -- request --------------------------------------------------------------------------------------------------

    def _batch_model(self, warnings: list[str]) -> str:
        """The speech model to ask for: the id's name, or a batch model in place of a streaming-only one."""
        batch = batch_counterpart(self.model)
        if batch is None:
            return self.model
        warnings.append(f"{self.model_id} is an AssemblyAI streaming model; the file was transcribed with {batch}")
        return batch

    def _request_body(self, options: TranscriptionOptions, warnings: list[str]) -> dict[str, Any]:
        model = self._batch_model(warnings)
        body: dict[str, Any] = {"speech_models": [model], "punctuate": True, "format_text": True}
        if options.language:
            body["language_code"] = options.language
        else:
            body["language_detection"] = True
        terms = self._terms(options.prompts, warnings)
        block = options.vendor if isinstance(options.vendor, AssemblyAIOptions) else None
        instruction = block.prompt if block is not None else None
        if instruction and not model.startswith("universal-3"):
            warnings.append(f"assemblyaiConfig.prompt needs a Universal-3 model; {model} was asked without it")
            instruction = None
        if instruction:
            body["prompt"] = instruction
            if terms:
                warnings.append(
                    "AssemblyAI takes a prompt or key terms, not both: assemblyaiConfig.prompt was sent, "
                    "the vocabulary was applied to the transcript only"
                )
        elif terms and _keyterms_model(model):
            body["keyterms_prompt"] = terms
        elif terms:
            body["word_boost"] = terms
            body["boost_param"] = "high"
        if block is not None and block.vad_threshold is not None:
            warnings.append("assemblyaiConfig.vadThreshold applies to streams only; ignored for a file")
        if options.prompt and options.prompt.strip():
            warnings.append(
                f"{self.model_id} ignores the free-text prompt: AssemblyAI takes vocabulary terms (prompts) only"
            )
        return body

    def _terms(self, prompts: Sequence[str], warnings: list[str]) -> list[str]:
        terms: list[str] = []
        long: list[str] = []
        for term in (p.strip() for p in prompts):
            if not term or term in terms:
                continue
            if len(term.split()) > _MAX_TERM_WORDS:
                long.append(term)
            else:
                terms.append(term)
        if long:
            warnings.append(
                f"{self.model_id}: vocabulary terms of more than {_MAX_TERM_WORDS} words left out: "
                + ", ".join(repr(t) for t in long)
            )
        if len(terms) > _MAX_TERMS:
            warnings.append(f"{self.model_id}: only the first {_MAX_TERMS} of {len(terms)} vocabulary terms were sent")
            terms = terms[:_MAX_TERMS]
        return terms

    # -- result ---------------------------------------------------------------------------------------------------

    def _transcript(
        self,
        result: dict[str, Any],
        duration: float,
        options: TranscriptionOptions,
        detected: bool,
        warnings: list[str],
    ) -> Transcript:
        code = result.get("language_code")
        language = code.split("_")[0].lower() if isinstance(code, str) and code else options.language
        probability = result.get("language_confidence")
        try:
            words = [w for w in (_word(raw, duration) for raw in result.get("words") or ()) if w.word]
            text = str(result.get("text") or "").strip()
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ProviderError(f"assemblyai answered a transcript voxgate cannot read: {exc!r}") from exc
        if words:
            segments = segments_from_words(words, language)
        elif text:  # no word timings: the whole text as one segment
            segments = [Segment(text=text, start=0.0, end=duration, language=language)]
        else:
            segments = []
        return self.build_transcript(
            segments,
            duration,
            language,
            options,
            warnings,
            language_probability=(float(probability) if detected and isinstance(probability, int | float) else None),
        )


def _word(raw: dict[str, Any], duration: float) -> Word:
    start = min(max(float(raw["start"]) / 1000.0, 0.0), duration)
    end = min(max(float(raw["end"]) / 1000.0, start), duration)
    confidence = min(max(float(raw.get("confidence", 1.0)), 0.0), 1.0)
    return Word(str(raw["text"]).strip(), start, end, confidence)
