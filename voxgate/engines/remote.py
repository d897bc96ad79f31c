"""What every cloud-provider engine shares: its key, an HTTP client, retries with backoff, and error mapping.

A provider module subclasses :class:`RemoteEngine` and implements :meth:`RemoteEngine.recognize` — one complete
WAV file (16 kHz mono LINEAR16, what voxgate decoded) in, voxgate's :class:`Transcript` out — mapping voxgate's
options to the vendor's and the vendor's results back. Options the vendor cannot honour are listed in
``Transcript.warnings``, never dropped silently.
"""

from __future__ import annotations

import io
import logging
import random
import time
import wave
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import httpx

from voxgate.audio.pcm import encode_linear16
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
from voxgate.types import SAMPLE_RATE, Audio, ProgressCallback, Transcript, TranscriptionOptions

__all__ = ["RemoteEngine", "to_wav"]

log = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_BACKOFF_BASE = 0.5
_BACKOFF_MAX = 8.0


def to_wav(audio: Audio) -> bytes:
    """16 kHz mono 16-bit WAV bytes: what voxgate sends every provider."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(encode_linear16(audio))
    return buffer.getvalue()


class RemoteEngine(ABC):
    """Base of the cloud engines. Subclasses set :attr:`provider` and implement :meth:`recognize`."""

    provider = ""
    auth_header = "Authorization"
    auth_scheme = "Bearer"

    def __init__(self, spec: ModelSpec, settings: Settings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.spec = spec
        self.config: ProviderConfig = settings.provider(self.provider)
        if not self.config.api_key:
            raise ModelUnavailable(f"{spec.id} needs an API key for {self.provider}: set {self.config.key_variable}")
        value = f"{self.auth_scheme} {self.config.api_key}" if self.auth_scheme else self.config.api_key
        self.client = httpx.Client(
            base_url=self.config.base_url,
            headers={self.auth_header: value, "User-Agent": "voxgate"},
            timeout=httpx.Timeout(self.config.timeout, connect=min(10.0, self.config.timeout)),
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
        result = self.recognize(to_wav(audio), duration, options)
        if progress is not None:
            progress(duration, duration)
        return result

    def transcribe_utterance(self, audio: Audio, options: TranscriptionOptions) -> Transcript:
        return self.transcribe(audio, options)

    def transcribe_batch(self, items: Sequence[tuple[Audio, TranscriptionOptions]]) -> list[Transcript]:
        return [self.transcribe(audio, options) for audio, options in items]

    # -- HTTP -----------------------------------------------------------------------------------------------------

    def request(self, method: str, url: str, *, idempotent: bool = True, **kwargs: Any) -> httpx.Response:
        """One call to the vendor, retried with jittered exponential backoff on 429, 5xx and network errors when
        ``idempotent``; any final failure is mapped to voxgate's provider errors."""
        attempts = 1 + (self.config.max_retries if idempotent else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self.client.request(method, url, **kwargs)
            except httpx.TimeoutException as exc:
                if last:
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
                    time.sleep(min(float(retry_after), _BACKOFF_MAX))
                    continue
            delay = min(_BACKOFF_MAX, _BACKOFF_BASE * 2**attempt) * (0.5 + random.random() / 2)
            log.info("%s: retrying %s %s in %.2f s", self.provider, method, url, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

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
