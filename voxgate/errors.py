"""voxgate's one exception tree, and the one table that maps it to the wire.

    VoxgateError                      500  internal
    ├── InvalidRequest                400  invalid_argument
    │   ├── InvalidAudioEncoding      400  invalid_audio_encoding
    │   ├── InvalidSampleRate         400  invalid_sample_rate
    │   ├── InvalidBase64             400  invalid_base64
    │   ├── InvalidPcm                400  invalid_pcm
    │   └── ProtocolViolation         400  protocol_violation
    ├── AudioError                    422  audio_error
    │   ├── AudioDecodeError          422  audio_decode_error
    │   ├── EmptyAudio                422  empty_audio
    │   ├── TooManyChannels           422  too_many_channels
    │   ├── UnsupportedSampleRate     422  unsupported_sample_rate
    │   └── AudioTooLong              422  audio_too_long
    ├── PayloadTooLarge               413  payload_too_large
    ├── Unauthenticated               401  unauthenticated
    ├── PermissionDenied              403  permission_denied
    ├── NotFound                      404  not_found
    ├── ModelNotFound                 404  model_not_found
    ├── ModelUnavailable              503  model_unavailable
    ├── Timeout                       504  timeout
    │   └── IdleTimeout               408  idle_timeout
    ├── ResourceExhausted             429  resource_exhausted
    └── EngineError                   502  engine_error
        └── ProviderError             502  provider_error
            ├── ProviderUnauthorized  502  provider_unauthorized
            ├── ProviderRateLimited   429  provider_rate_limited
            └── ProviderTimeout       504  provider_timeout

Every class carries its ``code`` (the string clients see in ``{"error": {"code": ...}}``), its HTTP status and the
WebSocket close code used when a stream must end because of it. Routes never pick a status themselves: they raise,
and the handlers in :mod:`voxgate.server` read this table. :func:`error_body` is the one place that JSON is built.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AudioDecodeError",
    "AudioError",
    "AudioTooLong",
    "EmptyAudio",
    "EngineError",
    "IdleTimeout",
    "InvalidAudioEncoding",
    "InvalidBase64",
    "InvalidPcm",
    "InvalidRequest",
    "InvalidSampleRate",
    "ModelNotFound",
    "ModelUnavailable",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "ProtocolViolation",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderTimeout",
    "ProviderUnauthorized",
    "ResourceExhausted",
    "Timeout",
    "TooManyChannels",
    "Unauthenticated",
    "UnsupportedSampleRate",
    "VoxgateError",
    "error_body",
]

# WebSocket close codes (RFC 6455 §7.4): 1008 policy violation, 1009 message too big, 1011 internal error,
# 4xxx application codes.
WS_POLICY = 1008
WS_TOO_BIG = 1009
WS_INTERNAL = 1011


class VoxgateError(Exception):
    """Base of every error voxgate raises on purpose."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    ws_close_code: ClassVar[int] = WS_INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, dict[str, str]]:
        return error_body(self.code, self.message)


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """What a client receives for any failure, over HTTP (the body) and WebSocket (the last frame) alike."""
    return {"error": {"code": code, "message": message}}


class InvalidRequest(VoxgateError):
    code = "invalid_argument"
    http_status = 400
    ws_close_code = WS_POLICY


class InvalidAudioEncoding(InvalidRequest):
    code = "invalid_audio_encoding"


class InvalidSampleRate(InvalidRequest):
    code = "invalid_sample_rate"


class InvalidBase64(InvalidRequest):
    code = "invalid_base64"


class InvalidPcm(InvalidRequest):
    code = "invalid_pcm"


class ProtocolViolation(InvalidRequest):
    code = "protocol_violation"


class AudioError(VoxgateError):
    code = "audio_error"
    http_status = 422
    ws_close_code = WS_POLICY


class AudioDecodeError(AudioError):
    code = "audio_decode_error"


class EmptyAudio(AudioError):
    code = "empty_audio"


class TooManyChannels(AudioError):
    """A file with more channels than ``Settings.max_audio_channels``."""

    code = "too_many_channels"


class UnsupportedSampleRate(AudioError):
    """A file whose sample rate is outside ``Settings.min_audio_sample_rate`` .. ``max_audio_sample_rate``."""

    code = "unsupported_sample_rate"


class AudioTooLong(AudioError):
    """A file longer than ``Settings.max_audio_seconds``, or longer than its byte size can carry (a bomb)."""

    code = "audio_too_long"


class PayloadTooLarge(VoxgateError):
    code = "payload_too_large"
    http_status = 413
    ws_close_code = WS_TOO_BIG


class Unauthenticated(VoxgateError):
    code = "unauthenticated"
    http_status = 401
    ws_close_code = WS_POLICY


class PermissionDenied(VoxgateError):
    """The request is understood and authenticated, but not allowed from where it comes (its Host or Origin)."""

    code = "permission_denied"
    http_status = 403
    ws_close_code = WS_POLICY


class NotFound(VoxgateError):
    """A resource (an async job's operation, its result) that does not exist, has expired, or is not the caller's."""

    code = "not_found"
    http_status = 404
    ws_close_code = WS_POLICY


class ModelNotFound(VoxgateError):
    code = "model_not_found"
    http_status = 404
    ws_close_code = WS_POLICY


class ModelUnavailable(VoxgateError):
    code = "model_unavailable"
    http_status = 503
    ws_close_code = WS_INTERNAL


class Timeout(VoxgateError):
    code = "timeout"
    http_status = 504
    ws_close_code = 4008


class IdleTimeout(Timeout):
    code = "idle_timeout"
    http_status = 408
    ws_close_code = 4008


class ResourceExhausted(VoxgateError):
    code = "resource_exhausted"
    http_status = 429
    ws_close_code = 1013  # try again later


class EngineError(VoxgateError):
    code = "engine_error"
    http_status = 502
    ws_close_code = WS_INTERNAL


class ProviderError(EngineError):
    """A cloud provider failed or answered with an error (after retries where the call is idempotent)."""

    code = "provider_error"


class ProviderUnauthorized(ProviderError):
    """The provider refused voxgate's API key (the server's configuration, not the client's request)."""

    code = "provider_unauthorized"


class ProviderRateLimited(ProviderError):
    code = "provider_rate_limited"
    http_status = 429
    ws_close_code = 1013


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    http_status = 504
