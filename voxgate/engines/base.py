"""The small interface every speech engine implements, local or remote."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from voxgate.types import Audio, LanguageScore, ProgressCallback, Transcript, TranscriptionOptions

if TYPE_CHECKING:
    from voxgate.engines.live import LiveConnector

__all__ = [
    "LANGUAGE_SWITCH",
    "Capabilities",
    "Engine",
    "LanguageIdentifier",
    "Listening",
    "LiveEngine",
    "VoiceEncoder",
    "weigh_languages",
]

LANGUAGE_SWITCH = 0.1
"""How likely a turn is taken to be in a language the prior does not favour: a language outside the prior needs
about ten times the engine's own confidence of one inside it to win."""


def weigh_languages(scores: Sequence[tuple[str, float]], prior: Sequence[LanguageScore]) -> list[tuple[str, float]]:
    """An engine's own language scores for a turn, weighed by what came before (``TranscriptionOptions``'s
    ``language_prior``): each language's score times ``(1 - LANGUAGE_SWITCH) x its prior share + LANGUAGE_SWITCH``,
    renormalised, best first. Without a prior the scores are returned as they are (best first)."""
    if not prior:
        return sorted(scores, key=lambda kv: -kv[1])
    share = {s.code: s.probability for s in prior}
    total = sum(share.values()) or 1.0
    weighed = [
        (code, p * ((1 - LANGUAGE_SWITCH) * share.get(code, 0.0) / total + LANGUAGE_SWITCH)) for code, p in scores
    ]
    norm = sum(p for _, p in weighed) or 1.0
    return sorted(((code, p / norm) for code, p in weighed), key=lambda kv: -kv[1])


@dataclass(frozen=True, slots=True)
class Capabilities:
    languages: tuple[str, ...]
    """ISO 639-1 codes the engine recognises; language identification picks among these."""
    word_timestamps: bool = True
    custom_vocabulary: bool = True
    translate: bool = False
    language_detection: bool = True
    max_batch: int = 1
    """How many independent requests :meth:`Engine.transcribe_batch` decodes together."""
    remote: bool = False
    """Calls go to a cloud API: they run on the I/O thread pool, not on the inference scheduler."""


@runtime_checkable
class Engine(Protocol):
    """A loaded model. Calls block; the scheduler runs them off the event loop."""

    @property
    def model_id(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions, progress: ProgressCallback | None = None
    ) -> Transcript:
        """Transcribe 16 kHz mono float32 audio. Times in the result are relative to ``audio[0]``."""
        ...

    def transcribe_utterance(self, audio: Audio, options: TranscriptionOptions) -> Transcript:
        """One streaming turn (at most ~30 s) at full quality, as fast as the engine can: finals of a stream."""
        ...

    def transcribe_batch(self, items: Sequence[tuple[Audio, TranscriptionOptions]]) -> list[Transcript]:
        """Quick drafts of several independent clips (each at most 30 s) in one call, for streaming partials.

        Greedy decoding, no word timings: the result's segments carry text only. Up to
        ``capabilities.max_batch`` items are given at once.
        """
        ...

    def close(self) -> None:
        """Release the model's memory."""
        ...


@runtime_checkable
class LiveEngine(Engine, Protocol):
    """An engine whose provider recognises a stream natively (a vendor socket, Kaldi's incremental recognizer).

    Streams on it send their audio to the connector and take its interim and final results; voxgate still decides
    the turns. ``live_connector()`` returns None when this model has no live mode (the stream then runs on voxgate's
    own session, one call per draft and per final).
    """

    def live_connector(self) -> LiveConnector | None: ...


@runtime_checkable
class LanguageIdentifier(Protocol):
    """Spoken-language identification on a clip (the voice profile's ``language``)."""

    def detect_language(self, audio: Audio, top: int = 5) -> tuple[LanguageScore, ...]:
        """The ``top`` most likely languages of 16 kHz mono ``audio``, most likely first."""
        ...


@dataclass(frozen=True, slots=True)
class Listening:
    """What one encoder pass over a clip tells the voice profile."""

    language: tuple[LanguageScore, ...]
    """The most likely languages, most likely first (``en`` alone from an English-only model)."""
    embedding: npt.NDArray[np.float32]
    """The encoder's hidden states pooled over the speech frames (mean, then standard deviation)."""


@runtime_checkable
class VoiceEncoder(Protocol):
    """An engine whose encoder also describes the voice (the input of the trained voice-profile heads)."""

    def listen(self, audio: Audio, top: int = 5) -> Listening:
        """Language ID and the pooled voice embedding of 16 kHz mono ``audio``, from one encoder pass."""
        ...
