"""What Deepgram's two APIs (pre-recorded ``POST /v1/listen`` and the live ``/v1/listen`` socket) share: the
vocabulary query parameters and the reading of Deepgram's language tags.

Both adapters (:mod:`voxgate.engines.deepgram.rest`, :mod:`voxgate.engines.deepgram.live`) import this module and
nothing from each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from voxgate.types import DeepgramOptions, TranscriptionOptions

__all__ = ["FLUX_NOTE", "block", "formatting", "language_of", "served_model", "terms", "vocabulary"]

_FLUX = "flux-"
FLUX_NOTE = "{model_id}: Flux has no pre-recorded API (it streams on /v2/listen); the file was transcribed with nova-3"


def served_model(model: str, language: str | None) -> tuple[str, str | None]:
    """The model voxgate asks Deepgram for, and the language to send: Flux ids (``flux-general-en``,
    ``flux-general-multi``, the reference's stream models) are served by Nova-3 on ``/v1/listen`` — English for
    ``-en``, multilingual otherwise; the caller's language wins. Other models as they are."""
    if not model.startswith(_FLUX):
        return model, language
    return "nova-3", language or ("en" if model.endswith("-en") else None)


def block(options: TranscriptionOptions) -> DeepgramOptions | None:
    """The request's ``deepgramConfig``, if it has one."""
    return options.vendor if isinstance(options.vendor, DeepgramOptions) else None


def terms(options: TranscriptionOptions) -> list[str]:
    """The vocabulary: ``prompts`` then ``deepgramConfig.keyterms``, without repeats."""
    given = [*options.prompts, *(b.keyterms if (b := block(options)) is not None else ())]
    return list(dict.fromkeys(t.strip() for t in given if t.strip()))


def formatting(options: TranscriptionOptions) -> list[tuple[str, str]]:
    """``punctuate`` and ``smart_format`` (on unless ``deepgramConfig`` turns them off), then the block's other
    flags when it sets them."""
    b = block(options)
    flags: list[tuple[str, bool | None]] = [
        ("punctuate", True if b is None or b.punctuate is None else b.punctuate),
        ("smart_format", True if b is None or b.smart_format is None else b.smart_format),
    ]
    if b is not None:
        flags += [("profanity_filter", b.profanity_filter), ("filler_words", b.filler_words), ("numerals", b.numerals)]
    return [(name, "true" if value else "false") for name, value in flags if value is not None]


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
