"""LocalAgreement-2 (Macháček et al., 2023, "Turning Whisper into Real-Time Transcription System").

A word is confirmed once two successive hypotheses for the same audio agree on it (and on everything before it).
Confirmed words never change again; only the tail after them may.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["LocalAgreement", "common_prefix"]

_NORMALISE = re.compile(r"[^\w']+", re.UNICODE)


def _key(word: str) -> str:
    return _NORMALISE.sub("", word).casefold()


def common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common prefix of two word lists, comparing words without case or punctuation."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if _key(x) != _key(y):
            break
        n += 1
    return n


@dataclass
class LocalAgreement:
    """Stable-prefix tracker for one utterance's successive hypotheses."""

    committed: list[str] = field(default_factory=list)
    """Confirmed words, in the spelling of the hypothesis that first confirmed them."""
    _previous: list[str] = field(default_factory=list)

    def update(self, hypothesis: Sequence[str]) -> list[str]:
        """Take a new full hypothesis for the utterance; return the words newly confirmed by it.

        Words already confirmed stay as they are even when the new hypothesis disagrees with them.
        """
        words = list(hypothesis)
        start = len(self.committed)
        # Only the part after what is already confirmed can be confirmed now, and only where the new hypothesis
        # still agrees with the confirmed words.
        if common_prefix(self.committed, words) < start:
            self._previous = words
            return []
        agreed = common_prefix(self._previous, words)
        new = words[start:agreed] if agreed > start else []
        self.committed.extend(new)
        self._previous = words
        return new

    def tail(self, hypothesis: Sequence[str]) -> list[str]:
        """The unconfirmed rest of ``hypothesis``: its words after as many as are confirmed."""
        return list(hypothesis[len(self.committed) :])

    def reset(self) -> None:
        self.committed.clear()
        self._previous = []
