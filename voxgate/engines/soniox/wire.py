"""What Soniox's two APIs (async files and the real-time socket) share: the recognition fields of a request, and
the joining of the sub-word tokens both answer with into words.

Both adapters (:mod:`voxgate.engines.soniox.rest`, :mod:`voxgate.engines.soniox.live`) import this module and
nothing from each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voxgate.types import SonioxOptions, TranscriptionOptions, Word

__all__ = ["TokenWord", "block", "endpoint_fields", "recognition_fields", "token_words"]


@dataclass(frozen=True, slots=True)
class TokenWord:
    """A word joined from Soniox tokens, with the language of its first token."""

    word: Word
    language: str | None


def block(options: TranscriptionOptions) -> SonioxOptions | None:
    """The request's ``sonioxConfig``, if it has one."""
    return options.vendor if isinstance(options.vendor, SonioxOptions) else None


def recognition_fields(options: TranscriptionOptions) -> dict[str, Any]:
    """What both Soniox APIs (async files, real-time socket) take alike: language ID and hints, and the context
    (custom vocabulary as ``terms``, the free-text prompt as ``text``), with a ``sonioxConfig``'s hints, strictness
    and context merged in (the caller's language first, the block's text after the prompt)."""
    sx = block(options)
    fields: dict[str, Any] = {"enable_language_identification": True}
    hints = list(dict.fromkeys([*([options.language] if options.language else []), *(sx.language_hints if sx else ())]))
    if hints:
        fields["language_hints"] = hints
    if sx is not None and sx.language_hints_strict is not None:
        fields["language_hints_strict"] = sx.language_hints_strict
    context: dict[str, Any] = {}
    if sx is not None and sx.context_general:
        context["general"] = [{"key": k, "value": v} for k, v in sx.context_general]
    given = [*options.prompts, *(sx.context_terms if sx else ())]
    terms = list(dict.fromkeys(p.strip() for p in given if p.strip()))
    if terms:
        context["terms"] = terms
    texts = [t.strip() for t in (options.prompt, sx.context_text if sx else None) if t and t.strip()]
    if texts:
        context["text"] = "\n".join(texts)
    if context:
        fields["context"] = context
    return fields


def endpoint_fields(options: TranscriptionOptions) -> dict[str, Any]:
    """The real-time socket's endpoint detection, when a ``sonioxConfig`` sets it (voxgate leaves it off)."""
    sx = block(options)
    fields: dict[str, Any] = {}
    if sx is not None and sx.enable_endpoint_detection is not None:
        fields["enable_endpoint_detection"] = sx.enable_endpoint_detection
    if sx is not None and sx.max_endpoint_delay_ms is not None:
        fields["max_endpoint_delay_ms"] = sx.max_endpoint_delay_ms
    return fields


def token_words(tokens: Sequence[Any], duration: float) -> list[TokenWord]:
    """Sub-word tokens joined into words: a token starting with whitespace (or after a blank one) starts a word."""
    words: list[TokenWord] = []
    text = ""
    start = end = 0.0
    confidence = 1.0
    language: str | None = None
    boundary = True

    def flush() -> None:
        if text:
            s = min(max(start, 0.0), duration)
            words.append(TokenWord(Word(text, s, min(max(end, s), duration), confidence), language))

    for token in tokens:
        if token.get("translation_status") == "translation":
            continue
        piece = str(token["text"])
        if not piece.strip():
            boundary = True
            continue
        t_start = float(token.get("start_ms", end * 1000.0)) / 1000.0
        t_end = max(float(token.get("end_ms", t_start * 1000.0)) / 1000.0, t_start)
        t_confidence = min(max(float(token.get("confidence", 1.0)), 0.0), 1.0)
        t_language = token.get("language")
        if boundary or piece[0].isspace():
            flush()
            text, start, end, confidence = piece.strip(), t_start, t_end, t_confidence
            language = t_language if isinstance(t_language, str) and t_language else None
        else:
            text += piece.rstrip()
            end = max(end, t_end)
            confidence = min(confidence, t_confidence)
        boundary = piece[-1].isspace()
    flush()
    return words
