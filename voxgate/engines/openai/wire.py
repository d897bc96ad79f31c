"""What OpenAI's two APIs (``POST /audio/transcriptions`` and the Realtime transcription socket) share, and Groq
with them: the ``prompt`` voxgate's vocabulary and free-text prompt become, and the reading of the language names the
API answers with.

Both adapters (:mod:`voxgate.engines.openai.rest`, :mod:`voxgate.engines.openai.live`) import this module and
nothing from each other.
"""

from __future__ import annotations

from voxgate.models.catalog import WHISPER_LANGUAGE_NAMES
from voxgate.types import TranscriptionOptions

__all__ = ["language_code", "prompt_of"]

_CODES: dict[str, str] = {
    **{name: code for code, name in WHISPER_LANGUAGE_NAMES.items()},
    # Whisper's aliases.
    "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht", "letzeburgesch": "lb", "pushto": "ps",
    "panjabi": "pa", "moldavian": "ro", "moldovan": "ro", "sinhalese": "si", "castilian": "es", "mandarin": "zh",
}  # fmt: skip


def language_code(reported: str | None) -> str | None:
    """``"english"``/``"English"``/``"en"`` → ``"en"``; None for nothing or a name this table does not know."""
    if not reported:
        return None
    name = reported.strip().lower()
    if name in WHISPER_LANGUAGE_NAMES:
        return name
    return _CODES.get(name)


def prompt_of(options: TranscriptionOptions) -> str | None:
    """The vendor's ``prompt``: the vocabulary terms (comma-separated), then the free-text prompt; None for neither."""
    terms = ", ".join(t.strip() for t in options.prompts if t.strip())
    text = (options.prompt or "").strip()
    return " ".join(p for p in (terms, text) if p) or None
