"""How a stream's turns end: the domain side of the ``turnDetection`` config, free of any wire format.

:mod:`voxgate.protocol.ws` validates the client's ``turnDetection`` and converts it to a :class:`TurnPolicy`
(``TurnDetection.to_policy()``); the session, the runner and the service only ever see the policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["EndTurnReason", "TurnMode", "TurnPolicy"]


class TurnMode(StrEnum):
    SEMANTIC = "semantic"
    """Silero VAD finds pauses; the smart-turn model decides whether the speaker is done."""
    VAD = "vad"
    """A pause of ``silence_ms`` ends the turn."""
    MANUAL = "manual"
    """Only the client's ``endTurn`` ends a turn."""


class EndTurnReason(StrEnum):
    # Why a turn ended; the values are what ``endOfTurn.reason`` carries on the wire.
    CLIENT = "client"
    SEMANTIC = "semantic"
    SILENCE = "silence"
    CLOSE = "close"
    MAX_DURATION = "maxDuration"


@dataclass(frozen=True, slots=True)
class TurnPolicy:
    """A stream's turn detection, already validated (the protocol layer checks the bounds)."""

    mode: TurnMode = TurnMode.SEMANTIC
    silence_ms: int = 700
    """``vad`` mode: the pause that ends a turn."""
    pause_ms: int = 200
    """Silence after which speech counts as ended (``speechEnded``) and ``semantic`` mode asks the turn model."""
    threshold: float = 0.5
    """``semantic`` mode: end-of-turn probability needed to end the turn. Lower is more eager."""
    max_silence_ms: int = 2_000
    """``semantic`` mode: a pause this long ends the turn whatever the model says."""
    eager_threshold: float | None = None
    """``semantic`` mode, opt-in: end-of-turn probability at which an :class:`EagerEndOfTurn` is sent with the
    transcript so far (once per pause; below ``threshold``, else the turn simply ends). None: never."""
    speculate_ms: int = 96
    """Silence inside speech after which the turn is decoded speculatively (0: only once the pause is ``pause_ms``):
    started before the pause counts as one, the decode is often done by the time the turn model has decided."""
    early_ms: int = 0
    """``semantic`` mode, opt-in: silence inside speech, shorter than ``pause_ms``, after which the turn model is
    asked once early; 0: never. Off by default: at 96 ms / 0.97 turns end ~88 ms sooner at the median for 1.7 points
    more sentences cut, but finals come no sooner (the speculative decode, not the turn decision, is then the
    critical path); see ``bench/README.md``."""
    early_threshold: float = 0.97
    """``semantic`` mode: end-of-turn probability that ends the turn at that early check (the model hears only
    ``early_ms`` of silence, so it must be surer than ``threshold``)."""
    recheck_ms: int = 200
    """``semantic`` mode: while a pause goes on, the turn model is asked again each time it has grown this much
    (it hears the silence too, and grows surer of an ending); 0 asks once per pause."""
    vad_threshold: float = 0.5
    """Speech probability above which a 32 ms frame counts as speech."""
