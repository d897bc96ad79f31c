"""Soniox's async API (v1): upload the file, create a transcription, poll it, fetch its tokens, clean up.

The vendor's API, as voxgate uses it (``https://soniox.com/docs/stt/async-API/async-transcription``):

* Auth: ``Authorization: Bearer <key>``.
* ``POST /v1/files`` (multipart, field ``file``: the WAV) → ``{"id"}``. Retried on 429, 5xx and network errors.
* ``POST /v1/transcriptions`` with a JSON body → ``{"id", "status"}``. This creates a billable job, so it is sent
  once and never retried.
* ``GET /v1/transcriptions/{id}`` every :attr:`SonioxEngine.poll_interval` seconds (growing up to
  :attr:`~SonioxEngine.poll_interval_max`) until ``status`` is ``completed`` or ``error``; retried. Polling stops
  with :class:`~voxgate.errors.ProviderTimeout` after ``provider_timeout_seconds`` plus
  :attr:`~SonioxEngine.processing_allowance` seconds per second of audio; ``status: "error"`` raises
  :class:`~voxgate.errors.ProviderError` with the job's ``error_message``.
* ``GET /v1/transcriptions/{id}/transcript`` → ``{"text", "tokens": [{text, start_ms, end_ms, confidence,
  language, ...}]}``; retried.
* Clean-up, whatever happened: ``DELETE /v1/transcriptions/{id}`` and ``DELETE /v1/files/{id}``, one try each,
  failures only logged (Soniox keeps both until deleted, and counts them against the account's storage limits).

voxgate's options → the transcription request:

==========================  ==========================================================================================
``model`` (the id's name)   ``model`` (``soniox/stt-async-v3`` → ``stt-async-v3``). A real-time model
                            (``stt-rt-<version>``) has no async form: ``stt-async-<version>`` is used, with a warning.
``language``                ``language_hints: [code]``. Soniox takes ISO 639-1 codes; a hint biases recognition, it
                            does not forbid other languages. ``None``: no hints (Soniox recognises 60+ languages).
                            ``enable_language_identification: true`` always, so every token carries its language.
``prompts`` (vocabulary)    ``context.terms``.
``prompt`` (free text)      ``context.text``.
``sonioxConfig``            ``languageHints`` after the language in ``language_hints``, ``languageHintsStrict`` →
                            ``language_hints_strict``, ``context{general, text, terms}`` merged into ``context``.
                            Its endpoint fields are for streams: warning.
``word_timestamps=False``   Soniox always returns timed tokens; voxgate drops the words from the result.
temperature, beam, VAD      Whisper decoding knobs with no Soniox counterpart: not sent.
==========================  ==========================================================================================

Tokens → voxgate's :class:`~voxgate.types.Transcript`. Soniox tokens are sub-word pieces; a piece starting with
whitespace starts a new word, the others (word pieces, punctuation) continue the current one. A word takes its first
piece's start, its last piece's end (milliseconds → seconds, clamped to the audio), its lowest confidence and its
first piece's language. Translation tokens (``translation_status: "translation"``) are skipped: voxgate never asks
for translation. Segments are cut after sentence-final words, at pauses of at least a second and where the language
changes; each carries its language, and the transcript's language is the one most of its words are in. The
vocabulary respelling (:func:`~voxgate.vocabulary.apply_vocabulary`) runs on the result, as for every engine.

Assumed from Soniox's examples and SDK types rather than a formal API reference: ``error_message`` on a failed
transcription and the token fields above.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

import httpx

from voxgate.engines.live import LiveConnector
from voxgate.engines.remote import RemoteEngine, segments_from_words
from voxgate.engines.soniox.live import SonioxLiveConnector
from voxgate.engines.soniox.wire import endpoint_fields, recognition_fields, token_words
from voxgate.errors import ProviderError
from voxgate.types import Transcript, TranscriptionOptions

__all__ = ["SonioxEngine"]

log = logging.getLogger(__name__)

_REALTIME = re.compile(r"^stt-rt-(.+)$")


class SonioxEngine(RemoteEngine):
    """``soniox/<model>``: Soniox's async transcription, one uploaded file and one transcription per call."""

    provider = "soniox"

    cleanup_timeout = 10.0
    """Seconds one clean-up ``DELETE`` may take."""

    def live_connector(self) -> LiveConnector:
        """Soniox's real-time socket for this model (stt-rt-* host derived from the base URL)."""
        return SonioxLiveConnector(self.config, self.model)

    def recognize(self, wav: bytes, duration: float, options: TranscriptionOptions) -> Transcript:
        warnings: list[str] = []
        body = self._request_body(options, warnings)
        uploaded = self.json_object(
            self.request("POST", "/v1/files", audio_seconds=duration, files={"file": ("audio.wav", wav, "audio/wav")})
        )
        file_id = self.json_string(uploaded, "id")
        transcription_id: str | None = None
        try:
            created = self.json_object(
                self.request("POST", "/v1/transcriptions", idempotent=False, json={**body, "file_id": file_id})
            )
            transcription_id = self.json_string(created, "id")
            self.poll_json(
                f"/v1/transcriptions/{transcription_id}",
                kind="transcription",
                job_id=transcription_id,
                duration=duration,
                reasons=("error_message", "error_type"),
            )
            result = self.json_object(self.request("GET", f"/v1/transcriptions/{transcription_id}/transcript"))
        finally:
            if transcription_id is not None:
                self._delete(f"/v1/transcriptions/{transcription_id}")
            self._delete(f"/v1/files/{file_id}")
        return self._transcript(result, duration, options, warnings)

    # -- request --------------------------------------------------------------------------------------------------

    def _batch_model(self, warnings: list[str]) -> str:
        """The model to ask for: the id's name, or the async model of the same version in place of a real-time one."""
        realtime = _REALTIME.match(self.model)
        if realtime is None:
            return self.model
        batch = f"stt-async-{realtime.group(1)}"
        warnings.append(f"{self.model_id} is a Soniox real-time model; the file was transcribed with {batch}")
        return batch

    def _request_body(self, options: TranscriptionOptions, warnings: list[str]) -> dict[str, Any]:
        if endpoint_fields(options):
            warnings.append("sonioxConfig's endpoint fields apply to streams only; ignored for a file")
        return {"model": self._batch_model(warnings), **recognition_fields(options)}

    # -- job ------------------------------------------------------------------------------------------------------

    def _delete(self, url: str) -> None:
        """Best-effort clean-up: one try, failures logged and otherwise ignored."""
        try:
            response = self.client.request("DELETE", url, timeout=self.cleanup_timeout)
        except httpx.HTTPError as exc:
            log.warning("soniox: could not delete %s: %s: %s", url, type(exc).__name__, exc)
            return
        if response.status_code >= 400 and response.status_code != 404:
            log.warning("soniox: could not delete %s: %d %s", url, response.status_code, response.text[:200])

    # -- result ---------------------------------------------------------------------------------------------------

    def _transcript(
        self, result: dict[str, Any], duration: float, options: TranscriptionOptions, warnings: list[str]
    ) -> Transcript:
        tokens = result.get("tokens")
        if tokens is None:
            tokens = []
        if not isinstance(tokens, list):
            raise ProviderError("soniox answered a transcript whose tokens are not a list")
        try:
            words = token_words(tokens, duration)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ProviderError(f"soniox answered a transcript voxgate cannot read: {exc!r}") from exc
        counts = Counter(w.language for w in words if w.language)
        language = counts.most_common(1)[0][0] if counts else options.language
        segments = segments_from_words([w.word for w in words], language, [w.language for w in words])
        return self.build_transcript(segments, duration, language, options, warnings)
