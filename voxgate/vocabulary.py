"""Custom vocabulary, second half: spell the user's terms the way the user wrote them.

The decoder is biased toward the terms first (Whisper ``hotwords``: the terms go into the prompt context). Small
models then often hear the right sounds but split or case the term their own way ("Comfy UI", "comfyui"). This pass
finds runs of consecutive words whose letters and digits, case-folded, equal a term's, and replaces the run with the
term as given, keeping the first word's start, the last word's end and the lowest confidence. It never invents a term
the decoder did not produce: "comfy eye" stays "comfy eye".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from voxgate.types import Segment, Word

__all__ = ["apply_vocabulary"]

_MAX_RUN = 4
_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)


def _key(text: str) -> str:
    return _NON_ALNUM.sub("", text).casefold()


def _is_word_char(c: str) -> bool:
    """What ``\\w`` matches: a letter, a digit or any other numeric character, or ``_``."""
    return c.isalnum() or c == "_"


def _edges(text: str) -> tuple[str, str]:
    """The non-word characters ``text`` starts and ends with (all of it as the start when it has no word character).

    A plain scan from each end: linear in the length, whatever the text (a regex with a lazy middle group backtracks
    quadratically on long runs of punctuation).
    """
    start = 0
    while start < len(text) and not _is_word_char(text[start]):
        start += 1
    end = len(text)
    while end > start and not _is_word_char(text[end - 1]):
        end -= 1
    return text[:start], text[end:]


def _respell(first: str, last: str, term: str) -> str:
    """``term`` with the punctuation around the decoded words, minus what the term itself already carries."""
    before = _edges(first)[0]
    after = _edges(last)[1]
    own_before, own_after = _edges(term)
    if own_before and before.endswith(own_before):
        before = before[: -len(own_before)]
    if own_after and after.startswith(own_after):
        after = after[len(own_after) :]
    return before + term + after


def _merge_words(words: Sequence[Word], terms: dict[str, str]) -> tuple[list[Word], bool]:
    out: list[Word] = []
    changed = False
    i = 0
    while i < len(words):
        for n in range(min(_MAX_RUN, len(words) - i), 0, -1):
            run = words[i : i + n]
            term = terms.get(_key("".join(w.word for w in run)))
            if term is None:
                continue
            text = _respell(run[0].word, run[-1].word, term)
            if n > 1 or run[0].word != text:
                changed = True
            out.append(Word(text, run[0].start, run[-1].end, min(w.confidence for w in run)))
            i += n
            break
        else:
            out.append(words[i])
            i += 1
    return out, changed


def _merge_text(text: str, terms: dict[str, str]) -> str:
    tokens = text.split()
    words = [Word(t, 0.0, 0.0, 1.0) for t in tokens]
    merged, changed = _merge_words(words, terms)
    return " ".join(w.word for w in merged) if changed else text


def apply_vocabulary(segments: Sequence[Segment], vocabulary: Sequence[str]) -> tuple[Segment, ...]:
    """Respell occurrences of ``vocabulary`` terms in ``segments`` (words and text)."""
    terms = {_key(t): t.strip() for t in vocabulary if _key(t)}
    if not terms:
        return tuple(segments)
    result = []
    for seg in segments:
        if seg.words:
            words, changed = _merge_words(seg.words, terms)
            text = " ".join(w.word for w in words) if changed else seg.text
        else:
            words, text = list(seg.words), _merge_text(seg.text, terms)
        result.append(
            Segment(
                text=text,
                start=seg.start,
                end=seg.end,
                words=tuple(words),
                language=seg.language,
                avg_logprob=seg.avg_logprob,
                no_speech_prob=seg.no_speech_prob,
            )
        )
    return tuple(result)
