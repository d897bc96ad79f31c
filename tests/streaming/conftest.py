"""A synchronous driver for :class:`StreamSession`: real VAD, real turn model, real engine, no sockets, no sleeps."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from voxgate.analysis.diarize import CHUNK_SECONDS
from voxgate.analysis.speaker import SpeakerEncoder
from voxgate.analysis.turn import TurnDetector
from voxgate.analysis.vad import SileroVad, VadStream
from voxgate.audio.decode import decode
from voxgate.engines.base import Engine
from voxgate.service import Service
from voxgate.streaming.events import (
    DecodeJob,
    DecodeKind,
    Event,
    Job,
    Output,
    ProfileJob,
    SpeakerJob,
    TranscriptEvent,
    TurnCheckJob,
)
from voxgate.streaming.session import StreamSession
from voxgate.types import SAMPLE_RATE, Audio


@pytest.fixture(scope="session")
def vad_model() -> SileroVad:
    return SileroVad.load()


@pytest.fixture(scope="session")
def turn_model() -> TurnDetector:
    return TurnDetector.load()


@pytest.fixture(scope="session")
def tiny(service: Service) -> Engine:
    return service.engine("whisper/tiny.en")


@pytest.fixture(scope="session")
def clip(data: Path) -> Iterator[object]:
    cache: dict[str, Audio] = {}

    def load(name: str) -> Audio:
        if name not in cache:
            cache[name] = decode(data / "en" / name)
        return cache[name]

    return load


def silence(seconds: float) -> Audio:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


@dataclass
class Driver:
    """Feeds audio in chunks; runs the session's jobs with the real models, at once or when told to."""

    session: StreamSession
    vad: VadStream
    engine: Engine
    turn: TurnDetector | None
    profiler: object = None
    """``Service.profile`` (or anything with its signature) when the session builds voice profiles."""
    encoder: SpeakerEncoder | None = None
    """The speaker encoder, when the session diarizes."""
    auto: bool = True
    """Run jobs as soon as they are asked for (an infinitely fast server); else queue them for :meth:`run_jobs`."""
    events: list[Event] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    queue: deque[Job] = field(default_factory=deque)

    def _take(self, outputs: list[Output]) -> list[Output]:
        for out in outputs:
            if isinstance(out, DecodeJob | TurnCheckJob | ProfileJob | SpeakerJob):
                self.jobs.append(out)
                self.queue.append(out)
            else:
                self.events.append(out)
        if self.auto:
            self.run_jobs()
        return outputs

    def run_jobs(self) -> None:
        while self.queue:
            self.run_one(self.queue.popleft())

    def run_one(self, job: Job) -> None:
        """Answer one job with the real models, as the runner would."""
        if isinstance(job, ProfileJob):
            assert callable(self.profiler)
            profile = self.profiler(job.audio, text=job.text, words=job.words, language=job.language)
            self._take(self.session.profiled(job, profile))
        elif isinstance(job, SpeakerJob):
            self._take(self.session.voiced(job, self.voice(job)))
        elif isinstance(job, TurnCheckJob):
            assert self.turn is not None
            self._take(self.session.turn_checked(job, self.turn.predict(job.audio)))
        elif job.kind is DecodeKind.PARTIAL:
            self._take(self.session.decoded(job, self.engine.transcribe_batch([(job.audio, job.options)])[0]))
        else:
            self._take(self.session.decoded(job, self.engine.transcribe_utterance(job.audio, job.options)))

    def voice(self, job: SpeakerJob) -> Audio:
        """The turn's speaker embedding, computed as the runner does."""
        assert self.encoder is not None
        return self.encoder.embed_utterances([job.audio], window=CHUNK_SECONDS, hop=CHUNK_SECONDS / 2)[0]

    def feed(self, audio: Audio, chunk: float = 0.1) -> list[Output]:
        outputs: list[Output] = []
        step = int(chunk * SAMPLE_RATE)
        for i in range(0, len(audio), step):
            piece = audio[i : i + step]
            outputs += self._take(self.session.feed(piece, self.vad.process(piece)))
        return outputs

    def end_turn(self) -> list[Output]:
        return self._take(self.session.end_turn())

    def close(self) -> list[Output]:
        return self._take(self.session.close())

    def finals(self) -> list[TranscriptEvent]:
        return [e for e in self.events if isinstance(e, TranscriptEvent) and e.is_final]

    def partials(self) -> list[TranscriptEvent]:
        return [e for e in self.events if isinstance(e, TranscriptEvent) and not e.is_final]
