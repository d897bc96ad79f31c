"""Ordered fallback between models: one rule for files and streams alike.

A request may name several models (``["deepgram/nova-3", "whisper/base"]``). The first one serves it; when it fails
with an error that another model could avoid (a provider error or timeout, a missing key, an engine failure), the
next one takes over and a warning says so. Errors about the request itself (bad audio, a bad argument) never fall
back: every model would fail the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from voxgate.errors import EngineError, ModelUnavailable, Timeout, VoxgateError

__all__ = ["FALLBACK_ERRORS", "Fallback", "with_fallback"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

FALLBACK_ERRORS: tuple[type[VoxgateError], ...] = (EngineError, ModelUnavailable, Timeout)
"""Failures the next model may not share."""


class Fallback(Generic[T]):
    """Candidates in order of preference; :attr:`current` serves until :meth:`advance` moves to the next."""

    def __init__(self, candidates: Sequence[T], name: Callable[[T], str] = str) -> None:
        if not candidates:
            raise ValueError("a fallback list needs at least one candidate")
        self._candidates = list(candidates)
        self._at = 0
        self._name = name
        self.notes: list[str] = []
        """One line per move (``<failed>: <code>: <message>; fell back to <next>``), for a result's warnings."""

    @property
    def current(self) -> T:
        return self._candidates[self._at]

    @property
    def remaining(self) -> int:
        """Candidates after the current one."""
        return len(self._candidates) - self._at - 1

    def advance(self, error: VoxgateError) -> bool:
        """Move to the next candidate after ``error``; False (staying put) when none is left."""
        if not self.remaining:
            return False
        failed = self._name(self.current)
        self._at += 1
        self.notes.append(f"{failed}: {error.code}: {error.message}; fell back to {self._name(self.current)}")
        log.warning("falling back from %s to %s: %s", failed, self._name(self.current), error)
        return True


async def with_fallback(chain: Fallback[T], attempt: Callable[[T], Awaitable[R]]) -> R:
    """``attempt(chain.current)``, moving along ``chain`` while it fails with one of :data:`FALLBACK_ERRORS`; the last
    candidate's error is raised."""
    while True:
        try:
            return await attempt(chain.current)
        except FALLBACK_ERRORS as exc:
            if not chain.advance(exc):
                raise
