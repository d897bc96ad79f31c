"""Render a :class:`Transcript` as text, SRT, WebVTT or OpenAI's json / verbose_json."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from voxgate.models.catalog import WHISPER_LANGUAGE_NAMES
from voxgate.protocol.http import Utterance
from voxgate.types import Speakers, Transcript

__all__ = [
    "LANGUAGE_NAMES",
    "ResponseFormat",
    "render",
    "speaker_letter",
    "to_openai_diarized_json",
    "to_openai_json",
    "to_srt",
    "to_text",
    "to_vtt",
]


class ResponseFormat(StrEnum):
    JSON = "json"
    TEXT = "text"
    SRT = "srt"
    VTT = "vtt"
    VERBOSE_JSON = "verbose_json"
    DIARIZED_JSON = "diarized_json"


LANGUAGE_NAMES = WHISPER_LANGUAGE_NAMES
"""OpenAI's verbose_json names the language in English words, Whisper's."""


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _parts(t: Transcript, speakers: Speakers | None) -> list[tuple[float, float, str, int | None]]:
    """What to show, in order: the segments, or with speakers, each speaker's turns (start, end, text, speaker)."""
    if speakers is None:
        return [(s.start, s.end, s.text.strip(), None) for s in t.segments if s.text.strip()]
    return [
        (u.start_time_seconds, u.end_time_seconds, u.transcript, u.speaker_tag) for u in Utterance.runs(t, speakers)
    ]


def to_text(t: Transcript, speakers: Speakers | None = None) -> str:
    if speakers is None:
        return t.text + "\n"
    return "".join(f"Speaker {k}: {text}\n" for _, _, text, k in _parts(t, speakers))


def to_srt(t: Transcript, speakers: Speakers | None = None) -> str:
    cues = [
        f"{i}\n{_clock(a, ',')} --> {_clock(b, ',')}\n{f'Speaker {k}: ' if k else ''}{text}\n"
        for i, (a, b, text, k) in enumerate(_parts(t, speakers), start=1)
    ]
    return "\n".join(cues)


def to_vtt(t: Transcript, speakers: Speakers | None = None) -> str:
    """WebVTT; a speaker is named with a voice span (``<v Speaker 2>``), which players show or style."""
    cues = [
        f"{_clock(a, '.')} --> {_clock(b, '.')}\n{f'<v Speaker {k}>' if k else ''}{text}\n"
        for a, b, text, k in _parts(t, speakers)
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def to_openai_json(
    t: Transcript, *, verbose: bool, task: str = "transcribe", words: bool = True, segments: bool = True
) -> dict[str, Any]:
    if not verbose:
        return {"text": t.text}
    out: dict[str, Any] = {
        "task": task,
        "language": LANGUAGE_NAMES.get(t.language or "", t.language or ""),
        "duration": round(t.duration, 3),
        "text": t.text,
    }
    if segments:
        out["segments"] = [
            {
                "id": i,
                "seek": 0,
                "start": s.start,
                "end": s.end,
                "text": " " + s.text.strip(),
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": s.avg_logprob if s.avg_logprob is not None else 0.0,
                "compression_ratio": 0.0,
                "no_speech_prob": s.no_speech_prob if s.no_speech_prob is not None else 0.0,
            }
            for i, s in enumerate(t.segments)
        ]
    if words:
        out["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in t.words]
    return out


def speaker_letter(tag: int) -> str:
    """OpenAI labels speakers A, B, ..., Z, then AA, AB, ...: speaker 1 is A."""
    letters = ""
    while tag > 0:
        tag, rest = divmod(tag - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def to_openai_diarized_json(t: Transcript, speakers: Speakers) -> dict[str, Any]:
    """OpenAI's ``diarized_json``: the transcript cut where the speaker changes, speakers lettered A, B, ..."""
    return {
        "task": "transcribe",
        "duration": round(t.duration, 3),
        "text": t.text,
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{i}",
                "start": a,
                "end": b,
                "text": text,
                "speaker": speaker_letter(k or 0) or "?",
            }
            for i, (a, b, text, k) in enumerate(_parts(t, speakers))
        ],
        "usage": {"type": "duration", "seconds": round(t.duration, 3)},
    }


def render(t: Transcript, fmt: ResponseFormat) -> str | dict[str, Any]:
    """A string for text/srt/vtt, a JSON-ready dict for json/verbose_json."""
    if fmt is ResponseFormat.TEXT:
        return to_text(t)
    if fmt is ResponseFormat.SRT:
        return to_srt(t)
    if fmt is ResponseFormat.VTT:
        return to_vtt(t)
    return to_openai_json(t, verbose=fmt is ResponseFormat.VERBOSE_JSON)
