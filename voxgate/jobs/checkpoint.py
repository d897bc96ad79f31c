"""A job's windows kept in its store as it goes (:class:`~voxgate.files.pipeline.Checkpoints`), so a job run again
after its server died redoes only the window that was in flight; and the transcript codec they are kept in."""

from __future__ import annotations

import json
from typing import Any

from voxgate.jobs.store import JobRecord, JobStore
from voxgate.types import LanguageScore, Segment, Transcript, Word

__all__ = ["StoreCheckpoints", "decode_transcript", "encode_transcript"]


def encode_transcript(t: Transcript) -> bytes:
    """A window's transcript as JSON (every field; floats as Python writes them, so they come back exactly)."""

    def scores(items: tuple[LanguageScore, ...]) -> list[list[Any]]:
        return [[s.code, s.probability] for s in items]

    return json.dumps(
        {
            "segments": [
                {
                    "text": s.text,
                    "start": s.start,
                    "end": s.end,
                    "words": [[w.word, w.start, w.end, w.confidence] for w in s.words],
                    "language": s.language,
                    "avg_logprob": s.avg_logprob,
                    "no_speech_prob": s.no_speech_prob,
                    "language_scores": scores(s.language_scores),
                    "channel": s.channel,
                }
                for s in t.segments
            ],
            "duration": t.duration,
            "language": t.language,
            "language_probability": t.language_probability,
            "language_candidates": scores(t.language_candidates),
            "model_id": t.model_id,
            "warnings": list(t.warnings),
        }
    ).encode()


def decode_transcript(data: bytes) -> Transcript:
    raw = json.loads(data)

    def scores(items: list[list[Any]]) -> tuple[LanguageScore, ...]:
        return tuple(LanguageScore(code, probability) for code, probability in items)

    segments = tuple(
        Segment(
            text=s["text"],
            start=s["start"],
            end=s["end"],
            words=tuple(Word(*w) for w in s["words"]),
            language=s["language"],
            avg_logprob=s["avg_logprob"],
            no_speech_prob=s["no_speech_prob"],
            language_scores=scores(s["language_scores"]),
            channel=s["channel"],
        )
        for s in raw["segments"]
    )
    return Transcript(
        segments=segments,
        duration=raw["duration"],
        language=raw["language"],
        language_probability=raw["language_probability"],
        language_candidates=scores(raw["language_candidates"]),
        model_id=raw["model_id"],
        warnings=tuple(raw["warnings"]),
    )


class StoreCheckpoints:
    """The windows of one claimed job, in its store; counts the windows found (kept by an earlier attempt)."""

    def __init__(self, store: JobStore, job: JobRecord, worker: str) -> None:
        self.store = store
        self.job = job
        self.worker = worker
        self.reused = 0

    def load(self, key: str) -> Transcript | None:
        data = self.store.window(self.job.id, key)
        if data is None:
            return None
        self.reused += 1
        return decode_transcript(data)

    def save(self, key: str, transcript: Transcript) -> None:
        self.store.save_window(self.job.id, self.worker, self.job.attempts, key, encode_transcript(transcript))
