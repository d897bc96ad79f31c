"""REST client for ``POST /stt/v1/transcribe`` and ``GET /stt/v1/models``, sync (:class:`Client`) and async
(:class:`AsyncClient`), on httpx.

::

    with Client("http://127.0.0.1:8000") as client:
        response = client.transcribe("meeting.mp3", model_id="whisper/base", prompts=["voxgate"])
        print(response.transcription.transcript)

Requests use the reference API's JSON body (audio base64 in ``audioData.content``) or, with ``multipart=True``, a
multipart upload (``file`` plus a ``transcribeConfig`` JSON field), which saves the base64 overhead on large files.
Responses are parsed into :class:`~voxgate.protocol.http.TranscribeResponse`; an error response raises
:class:`~voxgate.client.errors.VoxgateClientError` with the server's code, message and HTTP status.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack

import anyio
import httpx
from pydantic import ValidationError

from voxgate.client.errors import VoxgateClientError, VoxgateConnectionError, error_from_body
from voxgate.protocol.http import (
    AudioData,
    AudioEncoding,
    DiarizationConfig,
    TranscribeConfig,
    TranscribeRequest,
    TranscribeResponse,
    VoiceProfileConfig,
)

__all__ = ["DEFAULT_URL", "AsyncClient", "Client", "FileOptions", "transcribe_file"]

DEFAULT_URL = "http://127.0.0.1:8000"
TRANSCRIBE_PATH = "/stt/v1/transcribe"
MODELS_PATH = "/stt/v1/models"
_DEFAULT_TIMEOUT = 600.0
"""Seconds to wait for a response: long files take a while on CPU."""

AudioInput = str | Path | bytes
"""A path to an audio file, or the file's bytes."""


def http_url(url: str) -> str:
    """The server's base URL for REST: ``ws(s)://`` becomes ``http(s)://``, no trailing slash; no scheme means http."""
    url = url.strip().rstrip("/")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return f"http://{url}"
    scheme = {"ws": "http", "wss": "https"}.get(scheme.lower(), scheme.lower())
    if scheme not in ("http", "https"):
        raise ValueError(f"unsupported URL scheme {scheme!r} in {url!r}: use http(s)://")
    return f"{scheme}://{rest}"


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Basic {api_key}"} if api_key else {}


def _read(audio: AudioInput) -> tuple[bytes, str]:
    """The audio's bytes and a file name for multipart uploads."""
    if isinstance(audio, bytes | bytearray | memoryview):
        return bytes(audio), "audio"
    path = Path(audio)
    return path.read_bytes(), path.name


class FileOptions(TypedDict, total=False):
    """What a file transcription may ask for (keyword arguments of ``transcribe``; unset: the server's default).

    ``audio_encoding``/``sample_rate``/``channels`` are only needed for headerless PCM; a container file's format is
    detected. ``word_timestamps`` None leaves the server's default (on).
    """

    model_id: str | None
    language: str | None
    prompts: Iterable[str]
    word_timestamps: bool | None
    audio_encoding: AudioEncoding | str | None
    sample_rate: int | None
    channels: int | None
    enable_voice_profile: bool
    diarize: bool


def build_config(
    *,
    model_id: str | None = None,
    language: str | None = None,
    prompts: Iterable[str] = (),
    word_timestamps: bool | None = None,
    audio_encoding: AudioEncoding | str | None = None,
    sample_rate: int | None = None,
    channels: int | None = None,
    enable_voice_profile: bool = False,
    diarize: bool = False,
) -> TranscribeConfig:
    """The request's ``transcribeConfig``; options left at None are not sent, so the server's defaults apply."""
    fields = shared_fields(model_id, language, prompts, enable_voice_profile, diarize)
    if word_timestamps is not None:
        fields["include_word_timestamps"] = word_timestamps
    if audio_encoding is not None:
        fields["audio_encoding"] = audio_encoding
    if sample_rate is not None:
        fields["sample_rate_hertz"] = sample_rate
    if channels is not None:
        fields["number_of_channels"] = channels
    return TranscribeConfig.model_validate(fields)


def shared_fields(
    model_id: str | None, language: str | None, prompts: Iterable[str], enable_voice_profile: bool, diarize: bool
) -> dict[str, Any]:
    """The ``transcribeConfig`` fields files and streams share (snake_case, for the config models); None: unset."""
    fields: dict[str, Any] = {}
    if model_id is not None:
        fields["model_id"] = model_id
    if language is not None:
        fields["language"] = language
    prompt_list = [prompts] if isinstance(prompts, str) else list(prompts)
    if prompt_list:
        fields["prompts"] = prompt_list
    if enable_voice_profile:
        fields["voice_profile_config"] = VoiceProfileConfig(enable_voice_profile=True)
    if diarize:
        fields["diarization_config"] = DiarizationConfig(enable_speaker_diarization=True)
    return fields


def _request_kwargs(
    data: bytes, name: str, options: FileOptions, multipart: bool, headers: dict[str, str]
) -> dict[str, Any]:
    """httpx keyword arguments for the transcribe request: the reference JSON body, or a multipart upload."""
    config = build_config(**options)
    if multipart:
        return {
            "files": {"file": (name, data, "application/octet-stream")},
            "data": {"transcribeConfig": config.model_dump_json(by_alias=True, exclude_unset=True)},
            "headers": headers,
        }
    body = TranscribeRequest(
        transcribe_config=config, audio_data=AudioData(content=base64.b64encode(data).decode("ascii"))
    )
    return {
        "content": body.model_dump_json(by_alias=True, exclude_unset=True),
        "headers": {**headers, "Content-Type": "application/json"},
    }


def _check(response: httpx.Response) -> None:
    """Raise :class:`VoxgateClientError` for an error response, with the server's code and message when it sent them."""
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    error = error_from_body(body, status=response.status_code)
    if error is not None:
        raise error
    text = response.text.strip()[:300] or response.reason_phrase
    raise VoxgateClientError(f"http_{response.status_code}", text, status=response.status_code)


def _parse_transcription(response: httpx.Response) -> TranscribeResponse:
    _check(response)
    try:
        return TranscribeResponse.model_validate_json(response.content)
    except ValidationError as exc:
        raise VoxgateClientError(
            "invalid_response", f"the response is not a transcription: {exc}", status=response.status_code
        ) from None


def _parse_models(response: httpx.Response) -> list[dict[str, Any]]:
    _check(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    models = body.get("models") if isinstance(body, dict) else None
    if not isinstance(models, list):
        raise VoxgateClientError("invalid_response", "the response has no 'models' list", status=response.status_code)
    return [m for m in models if isinstance(m, dict)]


def _transport_error(exc: httpx.TransportError, url: str) -> VoxgateConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return VoxgateConnectionError(f"no response from {url} in time: {exc}", code="timeout")
    return VoxgateConnectionError(f"could not reach {url}: {str(exc) or type(exc).__name__}")


class Client:
    """Synchronous REST client; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = _DEFAULT_TIMEOUT,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.url = http_url(url)
        self._owned = http_client is None
        self._http = http_client or httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0))
        self._headers = _headers(api_key)

    def transcribe(
        self,
        audio: AudioInput,
        *,
        multipart: bool = False,
        **options: Unpack[FileOptions],
    ) -> TranscribeResponse:
        """Transcribe a whole file (a path or its bytes) with the :class:`FileOptions` given; the parsed response."""
        data, name = _read(audio)
        target, kwargs = self.url + TRANSCRIBE_PATH, _request_kwargs(data, name, options, multipart, self._headers)
        try:
            response = self._http.post(target, **kwargs)
        except httpx.TransportError as exc:
            raise _transport_error(exc, target) from None
        return _parse_transcription(response)

    def models(self) -> list[dict[str, Any]]:
        """Every model the server can serve, as ``GET /stt/v1/models`` lists them (``id``, ``languages``, ...)."""
        target = self.url + MODELS_PATH
        try:
            response = self._http.get(target, headers=self._headers)
        except httpx.TransportError as exc:
            raise _transport_error(exc, target) from None
        return _parse_models(response)

    def close(self) -> None:
        """Close the HTTP client (unless it was passed in)."""
        if self._owned:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient:
    """Asynchronous REST client; use as an async context manager or await :meth:`aclose`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = _DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = http_url(url)
        self._owned = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0))
        self._headers = _headers(api_key)

    async def transcribe(
        self,
        audio: AudioInput,
        *,
        multipart: bool = False,
        **options: Unpack[FileOptions],
    ) -> TranscribeResponse:
        """Transcribe a whole file (a path or its bytes); the parsed response. See :meth:`Client.transcribe`."""
        if isinstance(audio, bytes | bytearray | memoryview):
            data, name = bytes(audio), "audio"
        else:
            path = Path(audio)
            data, name = await _read_path(path), path.name
        target, kwargs = self.url + TRANSCRIBE_PATH, _request_kwargs(data, name, options, multipart, self._headers)
        try:
            response = await self._http.post(target, **kwargs)
        except httpx.TransportError as exc:
            raise _transport_error(exc, target) from None
        return _parse_transcription(response)

    async def models(self) -> list[dict[str, Any]]:
        """Every model the server can serve, as ``GET /stt/v1/models`` lists them (``id``, ``languages``, ...)."""
        target = self.url + MODELS_PATH
        try:
            response = await self._http.get(target, headers=self._headers)
        except httpx.TransportError as exc:
            raise _transport_error(exc, target) from None
        return _parse_models(response)

    async def aclose(self) -> None:
        """Close the HTTP client (unless it was passed in)."""
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


async def _read_path(path: Path) -> bytes:
    return await anyio.Path(path).read_bytes()


def transcribe_file(
    path: str | Path,
    *,
    url: str = DEFAULT_URL,
    api_key: str | None = None,
    multipart: bool = False,
    timeout: float = _DEFAULT_TIMEOUT,
    **options: Unpack[FileOptions],
) -> TranscribeResponse:
    """Transcribe one file with a one-off :class:`Client` (any :class:`FileOptions`); the parsed response."""
    with Client(url, api_key, timeout=timeout) as client:
        return client.transcribe(path, multipart=multipart, **options)
