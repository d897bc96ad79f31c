"""What Deepgram's two APIs (pre-recorded ``POST /v1/listen`` and the live ``/v1/listen`` socket) share: the
vocabulary query parameters and the reading of Deepgram's language tags.

Both adapters (:mod:`voxgate.engines.deepgram.rest`, :mod:`voxgate.engines.deepgram.live`) import this module and
nothing from each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["language_of", "vocabulary"]

_KEYTERM_MODELS = ("nova-3",)
"""Model name prefixes that take ``keyterm``; the others take ``keywords``."""
_KEYWORD_INTENSIFIER = 2
_PRIMARY_ALIASES = {"iw": "he", "jv": "jw", "nb": "no"}
"""Deepgram's codes that Whisper (and so voxgate) spells otherwise."""


def language_of(tag: Any) -> str | None:
    """A Deepgram language tag as voxgate's ISO 639-1 code: ``en-US`` → ``en``; None for no tag."""
    if not isinstance(tag, str) or not tag.strip():
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return _PRIMARY_ALIASES.get(primary, primary)


def vocabulary(model: str, prompts: Sequence[str]) -> list[tuple[str, str]]:
    """The query parameters for the vocabulary: one ``keyterm`` per term on Nova-3, else ``keywords=TERM:2``."""
    terms = [t.strip() for t in prompts if t.strip()]
    if model.startswith(_KEYTERM_MODELS):
        return [("keyterm", t) for t in terms]
    return [("keywords", f"{t}:{_KEYWORD_INTENSIFIER}") for t in terms]
