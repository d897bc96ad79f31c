"""What a request asks of the core: the one mapping from the routes' fields to :class:`TranscriptionOptions` (and, for
a stream, its :class:`SessionConfig`).

Each route keeps its own field names — the reference API's ``transcribeConfig`` (REST and WebSocket) and OpenAI's
form fields — and every one of them reaches the core through :func:`transcription_options`. This module imports the
streaming core, so the client SDK (which needs only :mod:`voxgate.protocol.http` and :mod:`voxgate.protocol.ws`)
never imports it.
"""

from __future__ import annotations

from collections.abc import Iterable

from voxgate.protocol.http import TranscribeConfig, normalize_language
from voxgate.protocol.ws import StreamTranscribeConfig
from voxgate.streaming.session import SessionConfig
from voxgate.types import DiarizationOptions, TranscriptionOptions

__all__ = ["diarization", "options_of", "session_config", "transcription_options", "wants_profile"]


def transcription_options(
    *,
    language: str | None,
    prompts: Iterable[str] = (),
    prompt: str | None = None,
    word_timestamps: bool = True,
    temperature: float = 0.0,
    task: str = "transcribe",
) -> TranscriptionOptions:
    """A language tag as clients send it (``en-US``, ``auto``), vocabulary prompts (blank ones dropped), OpenAI's
    free-text ``prompt`` (empty means none), and the rest as they are."""
    return TranscriptionOptions(
        language=normalize_language(language),
        prompts=tuple(p for p in prompts if p.strip()),
        prompt=prompt or None,
        word_timestamps=word_timestamps,
        temperature=temperature,
        task=task,
    )


def options_of(config: TranscribeConfig | StreamTranscribeConfig) -> TranscriptionOptions:
    """The options of a ``transcribeConfig`` (REST or WebSocket: the same field names)."""
    return transcription_options(
        language=config.language, prompts=config.prompts, word_timestamps=config.include_word_timestamps
    )


def wants_profile(config: TranscribeConfig | StreamTranscribeConfig) -> bool:
    return config.voice_profile_config is not None and config.voice_profile_config.enable_voice_profile


def diarization(config: TranscribeConfig | StreamTranscribeConfig) -> DiarizationOptions | None:
    return config.diarization_config.options() if config.diarization_config is not None else None


def session_config(config: StreamTranscribeConfig) -> SessionConfig:
    """A stream's ``transcribeConfig`` as the session takes it."""
    return SessionConfig(
        options=options_of(config),
        turn=config.turn_detection.to_policy(),
        partial_interval=config.partial_interval_ms / 1000,
        partials=config.enable_partials,
        profile=wants_profile(config),
        profile_interval=config.profile_interval_ms / 1000,
        diarize=diarization(config),
    )
