"""A scripted engine: answers from words a test wrote down, for tests of the streaming logic that need no model.

What it scripts. A :class:`Script` is a stream's words with their stream times, and its audio: ``Script.say`` builds
synthetic "speech" (seeded noise at 16-bit levels) under each word and digital silence between them, or a test
hands in real audio (``en/jfk.flac``) with that clip's words. :class:`ScriptedEngine` finds where every clip it is
given sits in the script's audio (an exact match of a few samples, so times survive the stream's turn buffers,
pre-roll, rolls and a 16-bit PCM round trip) and answers:

* drafts (``transcribe_batch``): the words wholly heard by the end of the clip, text only, so a draft grows in
  proportion to the audio heard so far;
* finals (``transcribe_utterance``, ``transcribe``): every word inside the clip, timed relative to its first
  sample, in one segment (words kept unless ``word_timestamps=False``);
* ``language``: the one asked for, else the script's (detected with probability 1.0).

It checks its callers: more items in one batch than ``capabilities.max_batch``, audio not cut from the script, or a
call after :meth:`ScriptedEngine.close` fail the test. It refuses what a real engine refuses (``InvalidRequest`` for
a language outside ``capabilities.languages`` or an unsupported ``translate``). It can be told to fail
(:class:`Failure`: which calls, after how many, with which error) and to take its time (``delays`` per kind of call),
and it records every call (:attr:`ScriptedEngine.calls`), so tests can check fallback, slow engines and the
scheduler's priorities.

What it does not pretend to do: recognise anything. Any audio outside the script is an error, not a guess; drafts
are never wrong in ways that LocalAgreement has to repair (unless a test scripts a changing draft with
``revise``); prompts and vocabulary change nothing; there is no beam search, no hallucination, no language
identification beyond the script's own language, no translation. Accuracy and timing of real models are tested with
real models (``tests/engines/test_contract.py``, ``tests/streaming/test_session.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from voxgate.engines.base import Capabilities
from voxgate.errors import EngineError, InvalidRequest, VoxgateError
from voxgate.scheduler import Scheduler
from voxgate.types import SAMPLE_RATE, Audio, ProgressCallback, Segment, Transcript, TranscriptionOptions, Word

__all__ = ["Call", "Failure", "Kind", "Script", "ScriptedEngine", "ScriptedVad", "chunks"]

Kind = Literal["draft", "final", "file"]
"""A call's kind: ``transcribe_batch`` (one per item), ``transcribe_utterance``, ``transcribe``."""

WORD = 0.3
"""Seconds of "speech" per word that :meth:`Script.say` writes."""
GAP = 0.1
"""Seconds between two words of one phrase (shorter than any pause the session takes for a pause)."""
_ANCHOR = 8
"""Samples matched to find where a clip sits in the script's audio."""


def _levels(audio: Audio) -> np.ndarray:
    """Float samples as the 16-bit levels they came from (or would go to)."""
    return np.clip(np.round(np.asarray(audio, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int32)


@dataclass(frozen=True)
class Script:
    """A stream's audio and the words said in it, timed in seconds from the audio's first sample."""

    audio: Audio
    words: tuple[Word, ...]
    language: str = "en"

    @classmethod
    def say(cls, *phrases: tuple[float, str], tail: float = 1.0, seed: int = 0, language: str = "en") -> Script:
        """Each ``(start, text)`` phrase's words said from ``start`` on (``WORD`` s each, ``GAP`` s apart), silence
        elsewhere, and ``tail`` seconds of silence after the last word."""
        words: list[Word] = []
        for start, text in phrases:
            for i, word in enumerate(text.split()):
                begin = round(start + i * (WORD + GAP), 3)
                words.append(Word(word, begin, round(begin + WORD, 3), 1.0))
        starts = [w.start for w in words]
        assert starts == sorted(starts), "phrases overlap or are out of order"
        rng = np.random.default_rng(seed)
        audio = np.zeros(round(((words[-1].end if words else 0.0) + tail) * SAMPLE_RATE), dtype=np.float32)
        for w in words:
            a, b = round(w.start * SAMPLE_RATE), round(w.end * SAMPLE_RATE)
            levels = rng.integers(1000, 8000, b - a) * rng.choice([-1, 1], b - a)
            audio[a:b] = levels.astype(np.float32) / np.float32(32768.0)
        return cls(audio, tuple(words), language)

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def text(self) -> str:
        return " ".join(w.word for w in self.words)

    def pcm(self, start: float = 0.0, end: float | None = None) -> bytes:
        """The audio from ``start`` to ``end`` seconds as little-endian 16-bit PCM (what a client sends)."""
        a = round(start * SAMPLE_RATE)
        b = len(self.audio) if end is None else round(end * SAMPLE_RATE)
        return _levels(self.audio[a:b]).astype("<i2").tobytes()

    def between(self, start: float, end: float) -> list[Word]:
        """The words said wholly between ``start`` and ``end`` seconds (a millisecond's slack each side)."""
        return [w for w in self.words if w.start >= start - 1e-3 and w.end <= end + 1e-3]


@dataclass(frozen=True)
class Call:
    """One clip an engine was asked about: where it sits in the script's audio (seconds), how it was asked."""

    engine: str
    """The engine's ``model_id`` (engines given one ``calls`` list log their calls in one order)."""
    kind: Kind
    start: float
    end: float
    options: TranscriptionOptions
    thread: int


@dataclass(frozen=True)
class Failure:
    """Calls that raise instead of answering: those of ``kinds``, after ``after`` of them answered."""

    kinds: frozenset[Kind] = frozenset({"draft", "final", "file"})
    after: int = 0
    error: Callable[[str], VoxgateError | Exception] = EngineError
    """Made from a message naming the engine and call; ``EngineError`` (and subclasses) make a stream fall back."""


@dataclass(eq=False)
class ScriptedEngine:
    """An :class:`~voxgate.engines.base.Engine` that reads its answers off a :class:`Script` (see the module)."""

    script: Script
    model_id: str = "scripted/test"
    languages: tuple[str, ...] = ("en",)
    max_batch: int = 4
    remote: bool = False
    translate: bool = False
    failure: Failure | None = None
    delays: Mapping[Kind, float] = field(default_factory=dict)
    """Seconds each call of a kind sleeps before answering (a loaded server, a slow vendor)."""
    revise: Mapping[str, str] = field(default_factory=dict)
    """Words a draft gets wrong while it is the draft's last word (``{"dog": "doc"}``): a tail that changes."""
    calls: list[Call] = field(default_factory=list)
    """Every call, in order (a list shared by several engines logs all of theirs)."""
    closed: bool = False

    def __post_init__(self) -> None:
        self._levels = _levels(self.script.audio)
        self._lock = threading.Lock()
        self._answered: dict[Kind, int] = {}

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            languages=self.languages,
            word_timestamps=True,
            custom_vocabulary=False,
            translate=self.translate,
            language_detection=True,
            max_batch=self.max_batch,
            remote=self.remote,
        )

    def kinds(self) -> list[Kind]:
        """The kinds of this engine's calls so far, in order."""
        return [c.kind for c in self.calls if c.engine == self.model_id]

    # -- where a clip sits --------------------------------------------------------------------------------------------

    def locate(self, audio: Audio) -> float | None:
        """Seconds from the script's start to ``audio[0]``; None for digital silence (nothing to find or hear)."""
        levels = _levels(audio)
        if not len(levels) or not levels.any():
            return None
        j = min(int(np.argmax(np.abs(levels))), max(len(levels) - _ANCHOR, 0))
        anchor = levels[j : j + _ANCHOR]
        candidates = np.flatnonzero(self._levels[: len(self._levels) - len(anchor) + 1] == anchor[0])
        for k in range(1, len(anchor)):
            candidates = candidates[self._levels[candidates + k] == anchor[k]]
        candidates = candidates[candidates >= j]
        assert len(candidates) == 1, f"{self.model_id}: {len(candidates)} places in the script match the audio given"
        start = int(candidates[0]) - j
        assert np.array_equal(self._levels[start : start + len(levels)], levels), "audio not cut from the script"
        return start / SAMPLE_RATE

    # -- the Engine protocol ------------------------------------------------------------------------------------------

    def _check(self, options: TranscriptionOptions) -> None:
        if options.language is not None and options.language not in self.languages:
            raise InvalidRequest(f"{self.model_id} does not know language {options.language!r}")
        if options.task == "translate" and not self.translate:
            raise InvalidRequest(f"{self.model_id} cannot translate")

    def _call(self, kind: Kind, audio: Audio, options: TranscriptionOptions) -> tuple[float, float] | None:
        """Record the call, sleep and fail as scripted; the clip's place in the script (None: silence)."""
        assert not self.closed, f"{self.model_id} used after close()"
        self._check(options)
        at = self.locate(audio)
        start = 0.0 if at is None else at
        span = (start, round(start + len(audio) / SAMPLE_RATE, 6))
        with self._lock:
            self.calls.append(Call(self.model_id, kind, *span, options, threading.get_ident()))
            answered = self._answered.get(kind, 0)
            failing = self.failure is not None and kind in self.failure.kinds and answered >= self.failure.after
            self._answered[kind] = answered + 1
        if self.delays.get(kind):
            time.sleep(self.delays[kind])
        if failing:
            assert self.failure is not None
            raise self.failure.error(f"{self.model_id} failed (scripted) on a {kind} call")
        return None if at is None else span

    def _transcript(
        self, audio: Audio, options: TranscriptionOptions, span: tuple[float, float] | None, *, draft: bool
    ) -> Transcript:
        duration = len(audio) / SAMPLE_RATE
        words = self.script.between(*span) if span is not None else []
        if draft and words and words[-1].word in self.revise:
            words = [*words[:-1], Word(self.revise[words[-1].word], words[-1].start, words[-1].end, 0.5)]
        start = span[0] if span is not None else 0.0
        timed = tuple(
            Word(w.word, round(max(w.start - start, 0.0), 3), round(min(w.end - start, duration), 3), w.confidence)
            for w in words
        )
        segments: tuple[Segment, ...] = ()
        if timed:
            keep = () if draft or not options.word_timestamps else timed
            segments = (Segment(" ".join(w.word for w in timed), timed[0].start, timed[-1].end, keep),)
        detected = options.language is None
        return Transcript(
            segments,
            duration,
            language=options.language or self.script.language,
            language_probability=1.0 if detected else None,
            model_id=self.model_id,
        )

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions, progress: ProgressCallback | None = None
    ) -> Transcript:
        span = self._call("file", audio, options)
        result = self._transcript(audio, options, span, draft=False)
        if progress is not None:
            progress(result.duration, result.duration)
        return result

    def transcribe_utterance(self, audio: Audio, options: TranscriptionOptions) -> Transcript:
        return self._transcript(audio, options, self._call("final", audio, options), draft=False)

    def transcribe_batch(self, items: Sequence[tuple[Audio, TranscriptionOptions]]) -> list[Transcript]:
        assert 1 <= len(items) <= self.max_batch, f"{len(items)} drafts in one batch (max_batch={self.max_batch})"
        return [self._transcript(a, o, self._call("draft", a, o), draft=True) for a, o in items]

    def close(self) -> None:
        self.closed = True


class ScriptedVad:
    """A stand-in for :class:`~voxgate.analysis.vad.VadStream` that hears a script's "speech" exactly: each
    completed 512-sample frame is speech (1.0) if any of its samples is not digital silence, else 0.0."""

    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, audio: Audio) -> np.ndarray:
        self._pending = np.concatenate([self._pending, np.asarray(audio, dtype=np.float32)])
        frames = len(self._pending) // 512
        framed = self._pending[: frames * 512].reshape(frames, 512)
        self._pending = self._pending[frames * 512 :]
        return (np.abs(framed).max(axis=1, initial=0.0) > 0).astype(np.float32)


def chunks(audio: Audio, seconds: float = 0.1) -> Iterable[Audio]:
    """``audio`` in pieces of ``seconds``, as a client sends it."""
    step = round(seconds * SAMPLE_RATE)
    for i in range(0, len(audio), step):
        yield audio[i : i + step]


def hold(
    scheduler: Scheduler, gate: threading.Event, *, urgent: bool = False, background: bool = False
) -> Future[bool]:
    """A job that keeps one of the scheduler's threads busy until ``gate`` opens; returns once it is running (a job
    only queued could still be overtaken by work with an earlier deadline)."""
    running = threading.Event()

    def busy() -> bool:
        running.set()
        return gate.wait()

    future = scheduler.submit(busy, urgent=urgent, background=background)
    assert running.wait(10)
    return future
