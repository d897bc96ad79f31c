"""What every cloud-provider engine shares: its key, an HTTP client, retries with backoff, and error mapping.

A provider module subclasses :class:`RemoteEngine` and implements :meth:`RemoteEngine.recognize` — one complete
WAV file (16 kHz mono LINEAR16, what voxgate decoded) in, voxgate's :class:`Transcript` out — mapping voxgate's
options to the vendor's and the vendor's results back. Options the vendor cannot honour are listed in
``Transcript.warnings``, never dropped silently.

For reading the vendor's answers: :meth:`RemoteEngine.json_body` / :meth:`~RemoteEngine.json_object` /
:meth:`~RemoteEngine.json_string`, :func:`json_number`, :meth:`~RemoteEngine.unreadable`,
:meth:`RemoteEngine.poll_json` (an async job polled until it is done), :func:`segments_from_words` (timed words
grouped into sentences) and :meth:`RemoteEngine.build_transcript`.
"""

from __future__ import annotations

import logging
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import httpx

from voxgate.audio.pcm import encode_wav
from voxgate.config import ProviderConfig, Settings
from voxgate.engines.base import Capabilities
from voxgate.errors import (
    InvalidRequest,
    ModelUnavailable,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnauthorized,
)
from voxgate.models.catalog import ModelSpec
from voxgate.types import SAMPLE_RATE, Audio, ProgressCallback, Segment, Transcript, TranscriptionOptions, Word
from voxgate.vocabulary import apply_vocabulary

__all__ = ["RemoteEngine", "json_number", "segments_from_words"]

log = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_BACKOFF_BASE = 0.5
_BACKOFF_MAX = 8.0
_CONNECT_TIMEOUT = 10.0
_NO_ALLOWANCE_SECONDS = 30.0
"""Audio a call may carry within the plain timeouts; each further second extends them by the processing allowance."""
_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""A vendor's answer larger than this is an error (a transcript of hours is a few MB)."""
_PAUSE = 1.0
"""A silence this long (seconds) between two words starts a new segment."""
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]]*$")  # noqa: RUF001


def json_number(value: Any) -> float:
    """A number from the vendor's JSON as a float; TypeError for anything else (``true`` included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def segments_from_words(
    words: Sequence[Word], language: str | None, languages: Sequence[str | None] = ()
) -> list[Segment]:
    """Words grouped into sentences: a segment ends after a sentence-final word or before a pause of at least a
    second. ``languages``, when given, holds each word's language (one per word): a segment also ends where a word
    names another language than the segment's first word, and takes that first word's language (``language`` when
    it has none). Without it, every segment is in ``language``."""
    tags = list(languages) if languages else [None] * len(words)
    segments: list[Segment] = []
    current: list[Word] = []
    first = 0  # the index of the current segment's first word
    for i, word in enumerate(words):
        current.append(word)
        following = i + 1 if i + 1 < len(words) else None
        if (
            following is None
            or _SENTENCE_END.search(word.word)
            or words[following].start - word.end >= _PAUSE
            or (tags[following] is not None and tags[following] != tags[first])
        ):
            segments.append(
                Segment(
                    text=" ".join(w.word for w in current),
                    start=current[0].start,
                    end=current[-1].end,
                    words=tuple(current),
                    language=tags[first] or language,
                )
            )
            current = []
            first = i + 1
    return segments


class RemoteEngine(ABC):
    """Base of the cloud engines. Subclasses set :attr:`provider` and implement :meth:`recognize`."""

    provider = ""
    base_url = ""
    """The vendor's API when the settings name none (the built-in providers' defaults live in the settings)."""
    auth_header = "Authorization"
    auth_scheme = "Bearer"

    poll_interval = 1.0
    """Seconds before :meth:`poll_json`'s first status poll; each further wait is 1.5 times longer, up to
    :attr:`poll_interval_max`."""
    poll_interval_max = 5.0
    processing_allowance = 1.0
    """Seconds of polling allowed per second of audio, on top of ``provider_timeout_seconds``."""

    def __init__(self, spec: ModelSpec, settings: Settings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.spec = spec
        self.config: ProviderConfig = settings.provider(self.provider, self.base_url)
        if not self.config.api_key:
            raise ModelUnavailable(f"{spec.id} needs an API key for {self.provider}: set {self.config.key_variable}")
        if not self.config.base_url:
            raise ModelUnavailable(f"{spec.id} needs a base URL for {self.provider}: set {self.config.url_variable}")
        value = f"{self.auth_scheme} {self.config.api_key}" if self.auth_scheme else self.config.api_key
        self.client = httpx.Client(
            base_url=self.config.base_url,
            headers={self.auth_header: value, "User-Agent": "voxgate"},
            timeout=httpx.Timeout(self.config.timeout, connect=min(_CONNECT_TIMEOUT, self.config.timeout)),
            transport=transport,
        )
        self._capabilities = Capabilities(languages=spec.languages, remote=True, translate=False)

    @property
    def model_id(self) -> str:
        return self.spec.id

    @property
    def model(self) -> str:
        """The vendor's own model name (the part after ``provider/``)."""
        return self.spec.name

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def close(self) -> None:
        self.client.close()

    # -- the one method a provider writes -------------------------------------------------------------------------

    @abstractmethod
    def recognize(self, wav: bytes, duration: float, options: TranscriptionOptions) -> Transcript:
        """Transcribe one WAV file (16 kHz mono 16-bit) of ``duration`` seconds with the vendor's batch API."""

    # -- Engine protocol ------------------------------------------------------------------------------------------

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions, progress: ProgressCallback | None = None
    ) -> Transcript:
        if options.task != "transcribe":
            raise InvalidRequest(f"{self.model_id} cannot {options.task}; use a whisper/* model for translation")
        duration = len(audio) / SAMPLE_RATE
        result = self.recognize(encode_wav(audio), duration, options)
        if progress is not None:
            progress(duration, duration)
        return result

    def transcribe_utterance(self, audio: Audio, options: TranscriptionOptions) -> Transcript:
        return self.transcribe(audio, options)

    def transcribe_batch(self, items: Sequence[tuple[Audio, TranscriptionOptions]]) -> list[Transcript]:
        return [self.transcribe(audio, options) for audio, options in items]

    # -- HTTP -----------------------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool = True,
        audio_seconds: float = 0.0,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call to the vendor, retried with jittered exponential backoff on 429, 5xx and network errors when
        ``idempotent``; any final failure is mapped to voxgate's provider errors.

        Each attempt — connecting, sending, every byte of the answer — takes at most ``provider_timeout_seconds``,
        the whole call with its retries and waits ``provider_deadline_seconds``, each plus
        :attr:`processing_allowance` seconds per second of audio the call carries (``audio_seconds``) past its first
        30 s, and never
        past ``deadline`` (a :func:`time.monotonic` time) when one is given. A vendor that answers one byte at a time
        cannot hold a request past them."""
        allowance = self.processing_allowance * max(0.0, audio_seconds - _NO_ALLOWANCE_SECONDS)
        started = time.monotonic()
        end = started + self.config.deadline + allowance
        if deadline is not None:
            end = min(end, deadline)
        attempts = 1 + (self.config.max_retries if idempotent else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._send(
                    method, url, min(end, time.monotonic() + self.config.timeout + allowance), **kwargs
                )
            except httpx.TimeoutException as exc:
                if last or end <= time.monotonic():
                    raise ProviderTimeout(f"{self.provider} did not answer in time ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                if last:
                    raise ProviderError(f"{self.provider} unreachable: {type(exc).__name__}: {exc}") from exc
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in _RETRY_STATUS or last:
                    raise self._error(response)
                retry_after = response.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    self._wait(min(float(retry_after), _BACKOFF_MAX), end, response)
                    continue
            delay = min(_BACKOFF_MAX, _BACKOFF_BASE * 2**attempt) * (0.5 + random.random() / 2)
            log.info("%s: retrying %s %s in %.2f s", self.provider, method, url, delay)
            self._wait(delay, end)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, url: str, deadline: float, **kwargs: Any) -> httpx.Response:
        """One attempt, read to the end by ``deadline`` (httpx's own timeouts bound each read, not their sum)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise httpx.ReadTimeout("the call's deadline passed")
        timeout = httpx.Timeout(remaining, connect=min(_CONNECT_TIMEOUT, remaining))
        request = self.client.build_request(method, url, timeout=timeout, **kwargs)
        response = self.client.send(request, stream=True)
        if response.is_stream_consumed:  # an in-memory transport's answer: complete already
            return response
        try:
            body = bytearray()
            for chunk in response.iter_raw():
                body += chunk
                if len(body) > _MAX_RESPONSE_BYTES:
                    raise ProviderError(f"{self.provider} answered more than {_MAX_RESPONSE_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the answer was still arriving at the call's deadline", request=request)
        finally:
            response.close()
        # The raw bytes, decoded (gzip, ...) once by the complete response built from them.
        return httpx.Response(response.status_code, headers=response.headers, content=bytes(body), request=request)

    def _wait(self, seconds: float, deadline: float, response: httpx.Response | None = None) -> None:
        """Sleep before a retry, unless the retry could not start before the deadline."""
        if time.monotonic() + seconds >= deadline:
            if response is not None:
                raise self._error(response)
            raise ProviderTimeout(f"{self.provider} did not answer in time (no time left to retry)")
        time.sleep(seconds)

    # -- the vendor's answers -------------------------------------------------------------------------------------

    def json_body(self, response: httpx.Response) -> Any:
        """The response's JSON (any JSON value); ProviderError when the body is not JSON."""
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(
                f"{self.provider} answered {response.status_code} with a body that is not JSON: {response.text[:200]!r}"
            ) from exc

    def json_object(self, response: httpx.Response) -> dict[str, Any]:
        """The response's JSON object; ProviderError when the body is not JSON or not an object."""
        value = self.json_body(response)
        if not isinstance(value, dict):
            raise ProviderError(f"{self.provider} answered {response.status_code} with JSON that is not an object")
        return value

    def json_string(self, obj: dict[str, Any], key: str) -> str:
        """``obj[key]``, a non-empty string; ProviderError when it is missing, empty or not a string."""
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            raise ProviderError(f"{self.provider}'s answer has no {key!r}: {str(obj)[:200]}")
        return value

    def unreadable(self, response: httpx.Response, exc: Exception) -> ProviderError:
        """The error for an answer whose JSON is not what the vendor documents (``exc``: what reading it raised)."""
        return ProviderError(f"{self.provider} answered with an unexpected body ({exc}): {response.text[:200]!r}")

    def poll_json(self, url: str, *, kind: str, job_id: str, duration: float, reasons: Sequence[str]) -> dict[str, Any]:
        """Poll the vendor's job ``job_id`` (its ``kind``, as error messages call it: ``transcript``) at ``url`` every
        :attr:`poll_interval` seconds (growing 1.5 times a poll up to :attr:`poll_interval_max`) until its
        ``status`` is ``completed``, and return that last answer. ``status: "error"`` raises ProviderError with the
        first of the job's ``reasons`` fields that says something; a status other than ``queued`` and
        ``processing`` raises ProviderError; still unfinished after ``provider_timeout_seconds`` plus
        :attr:`processing_allowance` seconds per second of audio (``duration``): ProviderTimeout."""
        budget = self.config.timeout + self.processing_allowance * duration
        deadline = time.monotonic() + budget
        interval = self.poll_interval
        status: Any = "queued"
        while True:
            try:
                job = self.json_object(self.request("GET", url, deadline=deadline))
            except ProviderTimeout as exc:
                if time.monotonic() < deadline:
                    raise
                raise ProviderTimeout(
                    f"{self.provider} did not finish {kind} {job_id} within {budget:.1f} s (last status: {status})"
                ) from exc
            status = job.get("status")
            if status == "completed":
                return job
            if status == "error":
                reason = next((job[key] for key in reasons if job.get(key)), "no reason given")
                raise ProviderError(f"{self.provider} could not transcribe the audio ({kind} {job_id}): {reason}")
            if status not in ("queued", "processing"):
                raise ProviderError(f"{self.provider} answered an unknown {kind} status {status!r} for {job_id}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProviderTimeout(
                    f"{self.provider} did not finish {kind} {job_id} within {budget:.1f} s (last status: {status})"
                )
            time.sleep(min(interval, remaining))
            interval = min(interval * 1.5, self.poll_interval_max)

    def build_transcript(
        self,
        segments: Sequence[Segment],
        duration: float,
        language: str | None,
        options: TranscriptionOptions,
        warnings: Sequence[str],
        *,
        language_probability: float | None = None,
    ) -> Transcript:
        """voxgate's transcript of the vendor's ``segments``: respelled with the vocabulary
        (:func:`~voxgate.vocabulary.apply_vocabulary`), then stripped of their words unless
        ``options.word_timestamps``."""
        segments = list(apply_vocabulary(segments, options.prompts))
        if not options.word_timestamps:
            segments = [Segment(s.text, s.start, s.end, (), s.language) for s in segments]
        return Transcript(
            segments=tuple(segments),
            duration=duration,
            language=language,
            language_probability=language_probability,
            model_id=self.model_id,
            warnings=tuple(warnings),
        )

    def _error(self, response: httpx.Response) -> ProviderError:
        detail = response.text[:300].strip()
        where = f"{self.provider} answered {response.status_code}"
        if response.status_code in (401, 403):
            return ProviderUnauthorized(f"{where}: the API key in {self.config.key_variable} was refused")
        if response.status_code == 429:
            return ProviderRateLimited(f"{where}: rate limited ({detail})")
        if response.status_code in (408, 504):
            return ProviderTimeout(f"{where}: {detail}")
        return ProviderError(f"{where}: {detail}")
