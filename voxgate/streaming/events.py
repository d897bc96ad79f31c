"""What a streaming session hands back: events for the client, and jobs for whoever runs inference.

Times are seconds from the start of the stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from voxgate.streaming.policy import EndTurnReason
from voxgate.types import Audio, TranscriptionOptions, VoiceProfile, Word

__all__ = [
    "DecodeJob",
    "DecodeKind",
    "Event",
    "Job",
    "Output",
    "ProfileEvent",
    "ProfileJob",
    "SpeakerJob",
    "SpeechEnded",
    "SpeechStarted",
    "StreamClosed",
    "TranscriptEvent",
    "TurnCheckJob",
    "TurnEnded",
]


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    turn: int
    time: float
    confidence: float = 1.0
    """Mean speech probability of the VAD frames that opened the speech."""


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    turn: int
    time: float
    """When the silence began."""
    silence: float = 0.0
    """Seconds of silence heard when the end was reported (at least the policy's ``pause_ms``)."""


@dataclass(frozen=True, slots=True)
class TurnEnded:
    turn: int
    time: float
    reason: EndTurnReason
    probability: float | None = None


@dataclass(frozen=True, slots=True)
class EagerEndOfTurn:
    """The turn model is fairly sure the speaker has finished (``TurnPolicy.eager_threshold``), though not sure
    enough to end the turn: the turn's transcript as the final would be now, for a voice agent to start on. A
    :class:`TurnResumed` takes it back if the speaker goes on; otherwise the turn's final follows."""

    turn: int
    time: float
    """The stream time when it was sent (the pause had lasted ``time - end``)."""
    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True, slots=True)
class TurnResumed:
    """The speaker went on after an :class:`EagerEndOfTurn`: that transcript is void; the turn continues."""

    turn: int
    time: float


@dataclass(frozen=True, slots=True)
class TranscriptEvent:
    turn: int
    is_final: bool
    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()
    language: str | None = None
    language_probability: float | None = None
    stable_words: int | None = None
    speaker: int | None = None
    """Finals of a diarized stream: who spoke the turn (1, 2, ... in order of first appearance)."""


@dataclass(frozen=True, slots=True)
class ProfileEvent:
    turn: int
    time: float
    profile: VoiceProfile
    scope: str
    """``stream`` (smoothed across the stream), ``turn`` (one finished turn alone) or ``speaker`` (smoothed across
    one speaker's turns, in a diarized stream)."""
    speaker: int | None = None
    """A turn's profile in a diarized stream: the turn's speaker."""


@dataclass(frozen=True, slots=True)
class StreamClosed:
    """Every final is out: the socket may close with 1000."""

    audio_seconds: float = 0.0
    """Audio the stream received (its usage)."""
    model_id: str = ""
    """The model that served the stream last (set by the runner)."""


Event = (
    SpeechStarted
    | SpeechEnded
    | EagerEndOfTurn
    | TurnResumed
    | TurnEnded
    | TranscriptEvent
    | ProfileEvent
    | StreamClosed
)


class DecodeKind(Enum):
    PARTIAL = "partial"
    """Quick draft (batched, greedy, no word times); may be dropped under load."""
    SPECULATIVE = "speculative"
    """Full decode started when speech pauses, so that a final needs no decode of its own."""
    FINAL = "final"
    """Full decode of a turn that has ended; never dropped."""
    ROLL = "roll"
    """Full decode of a long turn's audio, to commit its older words and drop their audio."""


@dataclass(frozen=True, slots=True, eq=False)
class DecodeJob:
    kind: DecodeKind
    turn: int
    audio: Audio
    offset: float
    """Stream time of ``audio[0]``."""
    options: TranscriptionOptions


@dataclass(frozen=True, slots=True, eq=False)
class TurnCheckJob:
    turn: int
    audio: Audio
    pause: int
    """Which pause of the stream this check is for; a stale answer is ignored."""
    silence_ms: float = 0.0
    """How long the pause had lasted when the check was asked for."""
    early: int | None = None
    """An early check (``TurnPolicy.early_ms``), before the pause is declared: the count of speech frames heard
    when it was asked for (it stands while no more speech is heard)."""


@dataclass(frozen=True, slots=True, eq=False)
class ProfileJob:
    turn: int
    audio: Audio
    text: str
    words: tuple[Word, ...]
    language: str | None
    """The transcript's language when known (the stream's configured one, or the last detected)."""
    final: bool
    """The profile of a finished turn (never dropped), rather than an update during one."""


@dataclass(frozen=True, slots=True, eq=False)
class SpeakerJob:
    """Embed a finished turn's voice; its final waits for the answer (:meth:`StreamSession.voiced`)."""

    turn: int
    audio: Audio


Job = DecodeJob | TurnCheckJob | ProfileJob | SpeakerJob
Output = Event | Job
