"""What a stream's finished turns said about its language, kept as a prior for the turns that follow.

Whisper identifies the language of each turn from that turn alone; on a turn of one or two seconds it is often
unsure between neighbours (Catalan and Spanish, Estonian and Finnish) and sometimes wrong. A conversation rarely
changes language from one turn to the next, so the turns already heard are evidence about the next one. Each final's
own language scores (the engine's, before any prior) are added, weighted by the turn's length, and older turns fade
with a half-life counted in seconds of speech, so a stream that does change language follows it within a few turns.
The engine weighs its scores for a new turn by this prior (:func:`voxgate.engines.base.weigh_languages`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from voxgate.types import LanguageScore

__all__ = ["LanguageEvidence"]


@dataclass
class LanguageEvidence:
    half_life_s: float = 60.0
    """Seconds of later speech that halve what a turn counts for."""
    min_seconds: float = 2.0
    """No prior before this much speech has been heard."""
    max_turn_s: float = 15.0
    """A long turn counts as this many seconds at most."""
    _scores: dict[str, float] = field(default_factory=dict)
    _seconds: float = 0.0

    def heard(self, scores: Sequence[LanguageScore], seconds: float) -> None:
        """A finished turn of ``seconds`` whose language the engine scored as ``scores`` (its own, without a prior)."""
        total = sum(s.probability for s in scores)
        if total <= 0 or seconds <= 0:
            return
        weight = min(seconds, self.max_turn_s)
        fade = 0.5 ** (weight / self.half_life_s)
        self._scores = {code: value * fade for code, value in self._scores.items()}
        self._seconds = self._seconds * fade + weight
        for s in scores:
            self._scores[s.code] = self._scores.get(s.code, 0.0) + weight * s.probability / total

    def prior(self, top: int = 5) -> tuple[LanguageScore, ...]:
        """The languages heard so far, each with its share of the evidence (empty until ``min_seconds``)."""
        if self._seconds < self.min_seconds:
            return ()
        total = sum(self._scores.values())
        ranked = sorted(self._scores.items(), key=lambda kv: -kv[1])[:top]
        return tuple(LanguageScore(code, round(value / total, 4)) for code, value in ranked)
