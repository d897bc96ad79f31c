"""One stream's state machine, sans I/O.

The session never touches a socket, a thread or a model. Its inputs are method calls — 16 kHz audio with the VAD's
per-frame speech probabilities, the client's ``endTurn``/``closeStream``, and the answers to jobs it asked for —
and each call returns a list of outputs: :mod:`events <voxgate.streaming.events>` for the client and jobs
(decodes, turn checks) for the runner to execute. Tests drive it directly, with no sockets and no sleeping.

States::

    STREAMING ──close()──▶ CLOSING ──(last final out)──▶ CLOSED

Within STREAMING, turns follow each other: a turn opens with speech, gets partial results while it lasts, and ends
on the client's ``endTurn``, on silence (``vad``), on the turn model (``semantic``), or on close. When speech pauses,
a full decode of the turn starts at once (speculative); if nothing new is heard before the turn ends, that result
is the final, so the final costs no decode of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import partial

import numpy as np

from voxgate.analysis.diarize import OnlineSpeakers
from voxgate.analysis.profile import ProfileSmoother
from voxgate.analysis.speaker import MIN_SAMPLES
from voxgate.analysis.vad import SpeechSegmenter
from voxgate.audio.buffer import SampleBuffer
from voxgate.errors import ProtocolViolation
from voxgate.streaming.agreement import LocalAgreement
from voxgate.streaming.events import (
    DecodeJob,
    DecodeKind,
    EagerEndOfTurn,
    Output,
    ProfileEvent,
    ProfileJob,
    SpeakerJob,
    SpeechEnded,
    SpeechStarted,
    StreamClosed,
    TranscriptEvent,
    TurnCheckJob,
    TurnEnded,
    TurnResumed,
)
from voxgate.streaming.language import LanguageEvidence
from voxgate.streaming.policy import EndTurnReason, TurnMode, TurnPolicy
from voxgate.types import SAMPLE_RATE, Audio, DiarizationOptions, Transcript, TranscriptionOptions, VoiceProfile, Word

__all__ = ["SessionConfig", "SessionState", "StreamSession"]

FRAME = 512
"""Samples per VAD frame (32 ms)."""
_RECENT_FRAMES = 64
"""VAD probabilities kept from earlier chunks, for the confidence of a speech start that spans chunks."""


class SessionState(Enum):
    STREAMING = "STREAMING"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    options: TranscriptionOptions
    turn: TurnPolicy = field(default_factory=TurnPolicy)
    partial_interval: float = 0.5
    partials: bool = True
    preroll: float = 0.3
    """Audio kept before detected speech, so a turn's first sound is not clipped."""
    roll_after: float = 20.0
    """A turn whose open audio grows past this is rolled forward: its older words are committed, their audio freed."""
    roll_keep: float = 5.0
    """Seconds of audio a roll keeps uncommitted at the end of the turn."""
    turn_context: float = 8.0
    """Seconds of a turn's audio the turn model sees."""
    speculative: bool = True
    """Start a full decode at each pause, so a turn that ends there needs no decode of its own."""
    profile: bool = False
    """Build a voice profile (``voiceProfile`` results) as speech accumulates and for every finished turn."""
    profile_interval: float = 1.0
    """Seconds of new speech between two profile updates."""
    profile_context: float = 15.0
    """Seconds of a turn's most recent audio a profile update looks at."""
    diarize: DiarizationOptions | None = None
    """Tag every final with its speaker (its turn's voice, compared with the voices heard before in the stream)."""
    language_prior: bool = True
    """When the language is not given: weigh each turn's language identification by the earlier turns'
    (:class:`voxgate.streaming.language.LanguageEvidence`)."""


def _seconds(samples: int) -> float:
    return round(samples / SAMPLE_RATE, 3)


@dataclass(eq=False)
class _Turn:
    index: int
    buffer: SampleBuffer
    speech: bool = False
    speech_start: int = 0
    frozen: list[Word] = field(default_factory=list)
    """Words committed by rolls, with stream times; their audio is gone."""
    agreement: LocalAgreement = field(default_factory=LocalAgreement)
    partial_in_flight: bool = False
    partial_upto: int = 0
    roll_in_flight: bool = False
    speculative: DecodeJob | None = None
    speculative_version: int = -1
    speculative_result: Transcript | None = None
    final_job: DecodeJob | None = None
    ended: bool = False
    profile_in_flight: bool = False
    profile_upto: int = 0
    last_text: str = ""
    language: str | None = None
    eager_pause: int = -1
    """The pause the turn model was eager about (its speculative transcript goes out once it is decoded)."""
    eager_probability: float = 0.0
    eager_sent: bool = False


class StreamSession:
    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.state = SessionState.STREAMING
        turn = config.turn
        self._segmenter = SpeechSegmenter(
            threshold=turn.vad_threshold, min_silence_ms=turn.pause_ms, min_speech_ms=96, speech_pad_ms=0
        )
        self._samples = 0
        self._languages = LanguageEvidence()
        self._recent_probs = np.zeros(0, dtype=np.float64)
        self._speech_version = 0
        """Count of frames heard as speech; a speculative decode is valid while this has not moved."""
        self._pause = 0
        self._pause_checked = -1
        self._checked_silence_ms = 0.0
        """How long the current pause had lasted at its last turn check."""
        self._check_in_flight = False
        self._early_version = -1
        """The speech-frame count at the last early check: one per quiet stretch."""
        self._turn = _Turn(0, SampleBuffer())
        self._ending: dict[int, _Turn] = {}
        self._parked: dict[int, Callable[[], list[Output]]] = {}
        """Finals decoded before an earlier turn's (decodes run side by side): sent once every earlier one is out."""
        self._smoother = ProfileSmoother()
        self._profiling: set[int] = set()
        """Finished turns whose profile is still being computed."""
        self._speakers = OnlineSpeakers(config.diarize) if config.diarize is not None else None
        self._voicing: dict[int, list[Output]] = {}
        """Finished turns waiting for their speaker: what goes out once it is known (the final first)."""
        self._voiced: dict[int, tuple[Audio, float] | None] = {}
        """Held turns whose voice is in (embedding, seconds; None: nothing to compare), waiting for earlier turns:
        finals go out in turn order, and speakers are numbered in it, whichever embedding finished first."""
        self._speaker_of: dict[int, int] = {}
        """Finished turns' speakers, until their profile (which names it) is out."""
        self._voices: dict[int, ProfileSmoother] = {}
        """Each speaker's own profile across their turns (diarized streams)."""

    # -- inspection ------------------------------------------------------------------------------------------------

    @property
    def time(self) -> float:
        """Seconds of audio received."""
        return _seconds(self._samples)

    @property
    def turn_index(self) -> int:
        return self._turn.index

    @property
    def buffered_samples(self) -> int:
        """Audio held for open and ending turns (bounded by rolling)."""
        return len(self._turn.buffer) + sum(len(t.buffer) for t in self._ending.values())

    def _require(self, action: str, *states: SessionState) -> None:
        if self.state not in states:
            raise ProtocolViolation(f"{action} is not allowed in state {self.state.value}")

    # -- inputs ----------------------------------------------------------------------------------------------------

    def feed(self, audio: Audio, speech_probs: np.ndarray) -> list[Output]:
        """Take 16 kHz audio and the VAD probabilities of the 32 ms frames it completed."""
        self._require("audio", SessionState.STREAMING)
        out: list[Output] = []
        turn = self._turn
        turn.buffer.append(audio)
        self._samples += len(audio)
        self._speech_version += int(np.count_nonzero(speech_probs >= self.config.turn.vad_threshold))
        first_frame = self._segmenter.frames
        events = self._segmenter.push(speech_probs)
        probs = np.concatenate([self._recent_probs, np.asarray(speech_probs, dtype=np.float64).reshape(-1)])
        base = first_frame - len(self._recent_probs)  # the frame index of probs[0]
        self._recent_probs = probs[-_RECENT_FRAMES:]
        for i, event in enumerate(events):
            if event.kind == "start":
                turn = self._turn
                if not turn.speech:
                    turn.speech = True
                    turn.speech_start = event.sample
                    turn.partial_upto = event.sample
                    turn.profile_upto = event.sample
                if turn.eager_sent:  # the speaker went on: the eager transcript is void
                    turn.eager_sent = False
                    out.append(TurnResumed(turn.index, _seconds(event.sample)))
                turn.eager_pause = -1
                frame = event.sample // FRAME - base
                opening = probs[max(frame, 0) : max(frame, 0) + self._segmenter.min_speech_frames]
                confidence = round(float(opening.mean()), 3) if len(opening) else 1.0
                out.append(SpeechStarted(turn.index, _seconds(event.sample), confidence))
            else:
                # The silence heard when the end is reported: up to speech resuming in this same chunk, or now.
                until = next((e.sample for e in events[i + 1 :] if e.kind == "start"), self._samples)
                out.extend(self._speech_ended(event.sample, until))
        turn = self._turn
        if not turn.speech:
            turn.buffer.trim_to(turn.buffer.end - int(self.config.preroll * SAMPLE_RATE))
            return out
        early = self.config.turn.speculate_ms
        if early and self._segmenter.in_speech and self._segmenter.silence_ms >= early:
            out.extend(self._speculate())  # a short quiet stretch: decode now, the pause may turn out to end the turn
        out.extend(self._early_check())
        out.extend(self._endpoint())
        if self._turn is turn:
            out.extend(self._maybe_partial())
            out.extend(self._maybe_roll())
            out.extend(self._maybe_profile())
        return out

    def end_turn(self) -> list[Output]:
        """The client says the turn is over."""
        self._require("endTurn", SessionState.STREAMING)
        return self._end_turn(EndTurnReason.CLIENT, None, always_answer=True)

    def close(self, reason: EndTurnReason = EndTurnReason.CLOSE) -> list[Output]:
        """Flush: finals for the open turn, then :class:`StreamClosed` once every final is out."""
        self._require("closeStream", SessionState.STREAMING)
        out: list[Output] = []
        if self._turn.speech:
            out.extend(self._end_turn(reason, None, always_answer=False))
        self.state = SessionState.CLOSING
        out.extend(self._maybe_closed())
        return out

    def decoded(self, job: DecodeJob, result: Transcript | None) -> list[Output]:
        """The answer to a decode job; ``None`` when a partial was dropped under load."""
        turn = self._turn if job.turn == self._turn.index else self._ending.get(job.turn)
        if turn is None or self.state is SessionState.CLOSED:
            return []
        if job.kind is DecodeKind.PARTIAL:
            turn.partial_in_flight = False
            if result is None or turn.ended:
                return []
            out = self._partial(turn, result)
            out.extend(self._maybe_partial())
            return out
        if job.kind is DecodeKind.ROLL:
            turn.roll_in_flight = False
            if result is not None and not turn.ended:
                self._roll(turn, job, result)
            return []
        assert result is not None, "only partials are ever dropped"
        if job.kind is DecodeKind.SPECULATIVE:
            if job is not turn.speculative:
                return []
            turn.speculative_result = result
            if turn.ended and turn.final_job is job:
                return self._in_order(turn.index, partial(self._final, turn, job, result))
            return self._maybe_eager() if turn is self._turn else []
        if job is turn.final_job:
            return self._in_order(turn.index, partial(self._final, turn, job, result))
        return []

    def profiled(self, job: ProfileJob, profile: VoiceProfile | None) -> list[Output]:
        """A voice profile computed for ``job`` (``None`` when an update was dropped under load)."""
        turn = self._turn if job.turn == self._turn.index else None
        if turn is not None and not job.final:
            turn.profile_in_flight = False
        if profile is None or self.state is SessionState.CLOSED:
            if job.final:
                self._profiling.discard(job.turn)
                self._speaker_of.pop(job.turn, None)
                return self._maybe_closed()
            return []
        now = _seconds(self._samples)
        if job.final:
            self._profiling.discard(job.turn)
            self._smoother.update(profile)
            speaker = self._speaker_of.pop(job.turn, None)
            out: list[Output] = [ProfileEvent(job.turn, now, profile, "turn", speaker)]
            if speaker is not None:
                voice = self._voices.setdefault(speaker, ProfileSmoother()).update(profile)
                out.append(ProfileEvent(job.turn, now, voice, "speaker", speaker))
            return [*out, *self._maybe_closed()]
        return [ProfileEvent(job.turn, now, self._smoother.peek(profile), "stream")]

    def voiced(self, job: SpeakerJob, embedding: Audio | None) -> list[Output]:
        """A finished turn's speaker embedding (``None`` if it could not be computed): its final goes out, tagged,
        once every earlier turn's has."""
        if job.turn not in self._voicing or self.state is SessionState.CLOSED:
            return []
        self._voiced[job.turn] = None if embedding is None else (embedding, len(job.audio) / SAMPLE_RATE)
        return self._release_voiced()

    def _release_voiced(self) -> list[Output]:
        out: list[Output] = []
        while self._voicing and (turn := min(self._voicing)) in self._voiced:
            held, voice = self._voicing.pop(turn), self._voiced.pop(turn)
            if voice is not None and self._speakers is not None:
                speaker = self._speakers.assign(*voice)
                if any(isinstance(o, ProfileJob) for o in held):
                    self._speaker_of[turn] = speaker
                held = [replace(o, speaker=speaker) if isinstance(o, TranscriptEvent) else o for o in held]
            out.extend(held)
        return [*out, *self._maybe_closed()]

    def turn_checked(self, job: TurnCheckJob, probability: float) -> list[Output]:
        """The turn model's answer: probability that the speaker has finished."""
        if job.early is not None:
            return self._early_checked(job, probability)
        self._check_in_flight = False
        if (
            self.state is not SessionState.STREAMING
            or job.turn != self._turn.index
            or job.pause != self._pause
            or self._segmenter.in_speech
            or self._segmenter.speech_pending
        ):
            return []
        if probability >= self.config.turn.threshold:
            return self._end_turn(EndTurnReason.SEMANTIC, probability, always_answer=False)
        eager = self.config.turn.eager_threshold
        turn = self._turn
        if eager is not None and probability >= eager and not turn.eager_sent and turn.eager_pause != self._pause:
            turn.eager_pause, turn.eager_probability = self._pause, probability
            return self._maybe_eager()
        return []

    def _early_checked(self, job: TurnCheckJob, probability: float) -> list[Output]:
        """An early check's answer: a sure one ends the turn now, declaring the pause the segmenter would have
        declared at ``pause_ms``; anything else waits for that pause's own check."""
        if (
            self.state is not SessionState.STREAMING
            or job.turn != self._turn.index
            or job.early != self._speech_version
            or not self._segmenter.in_speech
            or probability < self.config.turn.early_threshold
        ):
            return []
        (end,) = self._segmenter.flush()
        return [
            *self._speech_ended(end.sample, self._samples),
            *self._end_turn(EndTurnReason.SEMANTIC, probability, always_answer=False),
        ]

    def _maybe_eager(self) -> list[Output]:
        """The eager end of turn, once the turn model was eager about this pause and its speculative decode (of all
        the speech heard) is in."""
        turn = self._turn
        if (
            turn.eager_sent
            or turn.eager_pause != self._pause
            or turn.speculative is None
            or turn.speculative_result is None
            or turn.speculative_version != self._speech_version
        ):
            return []
        turn.eager_sent = True
        _, text, start, end = self._words(turn, turn.speculative, turn.speculative_result)
        now = _seconds(self._samples)
        return [EagerEndOfTurn(turn.index, now, text, round(start, 3), round(end, 3), round(turn.eager_probability, 3))]

    # -- turn logic ------------------------------------------------------------------------------------------------

    def _options(self, *, draft: bool) -> TranscriptionOptions:
        o = self.config.options
        prior = self._languages.prior() if o.language is None and self.config.language_prior else ()
        if draft:
            return TranscriptionOptions(
                language=o.language,
                prompts=o.prompts,
                prompt=o.prompt,
                word_timestamps=False,
                beam_size=1,
                task=o.task,
                vendor=o.vendor,
                language_prior=prior,
            )
        return replace(o, language_prior=prior) if prior else o

    def _job(self, kind: DecodeKind, turn: _Turn, *, draft: bool = False) -> DecodeJob:
        options = self._options(draft=draft)
        if kind is DecodeKind.ROLL:
            options = TranscriptionOptions(
                language=options.language,
                prompts=options.prompts,
                prompt=options.prompt,
                task=options.task,
                vendor=options.vendor,
                language_prior=options.language_prior,
            )
        return DecodeJob(kind, turn.index, turn.buffer.view(), _seconds(turn.buffer.start), options)

    def _speculate(self) -> list[Output]:
        turn = self._turn
        if not self.config.speculative or not turn.speech or turn.speculative_version == self._speech_version:
            return []
        turn.speculative = self._job(DecodeKind.SPECULATIVE, turn)
        turn.speculative_version = self._speech_version
        turn.speculative_result = None
        return [turn.speculative]

    def _speech_ended(self, sample: int, until: int) -> list[Output]:
        """The segmenter's end of speech at ``sample``, silent up to ``until``: a new pause of the turn."""
        self._pause += 1
        silence = _seconds(max(until - sample, 0))
        return [SpeechEnded(self._turn.index, _seconds(sample), silence), *self._speculate()]

    def _early_check(self) -> list[Output]:
        """Once per quiet stretch inside speech, at ``early_ms`` of it: ask the turn model before the pause is due."""
        policy = self.config.turn
        seg = self._segmenter
        if (
            policy.mode is not TurnMode.SEMANTIC
            or not policy.early_ms
            or not seg.in_speech
            or seg.silence_ms < policy.early_ms
            or self._early_version == self._speech_version
        ):
            return []
        self._early_version = self._speech_version
        return [
            TurnCheckJob(
                self._turn.index, self._turn_context(), self._pause, seg.silence_ms, early=self._speech_version
            )
        ]

    def _turn_context(self) -> Audio:
        """The open turn's last ``turn_context`` seconds: what the turn model hears."""
        buffer = self._turn.buffer
        return buffer.view(start=buffer.end - int(self.config.turn_context * SAMPLE_RATE))

    def _endpoint(self) -> list[Output]:
        policy = self.config.turn
        seg = self._segmenter
        if policy.mode is TurnMode.MANUAL or seg.in_speech or seg.speech_pending:
            return []
        silence = seg.silence_ms
        if policy.mode is TurnMode.VAD:
            if silence >= policy.silence_ms:
                return self._end_turn(EndTurnReason.SILENCE, None, always_answer=False)
            return []
        if silence >= policy.max_silence_ms:
            return self._end_turn(EndTurnReason.SILENCE, None, always_answer=False)
        first = self._pause_checked != self._pause
        again = policy.recheck_ms > 0 and silence - self._checked_silence_ms >= policy.recheck_ms
        if first or (again and not self._check_in_flight):
            self._pause_checked = self._pause
            self._checked_silence_ms = silence
            self._check_in_flight = True
            return [TurnCheckJob(self._turn.index, self._turn_context(), self._pause, silence)]
        return []

    def _maybe_partial(self) -> list[Output]:
        turn = self._turn
        if (
            not self.config.partials
            or not turn.speech
            or turn.partial_in_flight
            or not self._segmenter.in_speech
            or turn.buffer.end - turn.partial_upto < int(self.config.partial_interval * SAMPLE_RATE)
        ):
            return []
        turn.partial_in_flight = True
        turn.partial_upto = turn.buffer.end
        return [self._job(DecodeKind.PARTIAL, turn, draft=True)]

    def _maybe_profile(self) -> list[Output]:
        turn = self._turn
        if (
            not self.config.profile
            or not turn.speech
            or turn.profile_in_flight
            or turn.buffer.end - turn.profile_upto < int(self.config.profile_interval * SAMPLE_RATE)
        ):
            return []
        turn.profile_in_flight = True
        turn.profile_upto = turn.buffer.end
        audio = turn.buffer.view(start=turn.buffer.end - int(self.config.profile_context * SAMPLE_RATE))
        language = self.config.options.language or turn.language
        return [ProfileJob(turn.index, audio, turn.last_text, (), language, final=False)]

    def _maybe_roll(self) -> list[Output]:
        turn = self._turn
        if turn.roll_in_flight or len(turn.buffer) < int(self.config.roll_after * SAMPLE_RATE):
            return []
        turn.roll_in_flight = True
        return [self._job(DecodeKind.ROLL, turn)]

    def _end_turn(self, reason: EndTurnReason, probability: float | None, *, always_answer: bool) -> list[Output]:
        turn = self._turn
        now = _seconds(self._samples)
        out: list[Output] = [TurnEnded(turn.index, now, reason, probability)]
        self._turn = _Turn(turn.index + 1, SampleBuffer(start=self._samples))
        if self._segmenter.in_speech:  # the client cut the turn mid-speech: the next turn opens in speech
            self._turn.speech = True
            self._turn.speech_start = self._samples
            self._turn.partial_upto = self._samples
        turn.ended = True
        if not turn.speech or not len(turn.buffer):
            if always_answer:
                out.extend(self._in_order(turn.index, lambda: [TranscriptEvent(turn.index, True, "", now, now)]))
            return out
        self._ending[turn.index] = turn
        if turn.speculative is not None and turn.speculative_version == self._speech_version:
            turn.final_job = turn.speculative
            if turn.speculative_result is not None:
                final = partial(self._final, turn, turn.speculative, turn.speculative_result)
                out.extend(self._in_order(turn.index, final))
            return out
        turn.final_job = self._job(DecodeKind.FINAL, turn)
        out.append(turn.final_job)
        return out

    def _partial(self, turn: _Turn, result: Transcript) -> list[Output]:
        words = result.text.split()
        turn.last_text = result.text
        turn.language = result.language or turn.language
        turn.agreement.update(words)
        frozen = [w.word for w in turn.frozen]
        shown = frozen + turn.agreement.committed + turn.agreement.tail(words)
        if not shown:
            return []
        start = turn.frozen[0].start if turn.frozen else _seconds(turn.speech_start)
        return [
            TranscriptEvent(
                turn.index,
                False,
                " ".join(shown),
                start,
                _seconds(turn.partial_upto),
                language=result.language,
                language_probability=result.language_probability,
                stable_words=len(frozen) + len(turn.agreement.committed),
            )
        ]

    def _roll(self, turn: _Turn, job: DecodeJob, result: Transcript) -> None:
        horizon = job.offset + len(job.audio) / SAMPLE_RATE - self.config.roll_keep
        keep = [w for w in result.words if w.end + job.offset <= horizon]
        if keep:
            turn.frozen.extend(
                Word(w.word, round(w.start + job.offset, 3), round(w.end + job.offset, 3), w.confidence) for w in keep
            )
            cut = round(turn.frozen[-1].end * SAMPLE_RATE)
        else:  # nothing recognisable in all that audio: keep only the newest part
            cut = turn.buffer.end - int(self.config.roll_keep * SAMPLE_RATE)
        turn.buffer.trim_to(cut)
        turn.agreement.reset()
        turn.speculative = None
        turn.speculative_version = -1

    def _words(self, turn: _Turn, job: DecodeJob, result: Transcript) -> tuple[list[Word], str, float, float]:
        """A turn's words (those rolled forward, then ``result``'s, in stream time), text and span."""
        words = list(turn.frozen)
        words.extend(
            Word(w.word, round(w.start + job.offset, 3), round(w.end + job.offset, 3), w.confidence)
            for w in result.words
        )
        text = " ".join([w.word for w in turn.frozen] + ([result.text] if result.text else []))
        if words:
            start, end = words[0].start, words[-1].end
        else:
            start, end = _seconds(turn.speech_start), _seconds(turn.buffer.end)
        return words, text, start, end

    def _final(self, turn: _Turn, job: DecodeJob, result: Transcript) -> list[Output]:
        self._ending.pop(turn.index, None)
        words, text, start, end = self._words(turn, job, result)
        if text:
            self._languages.heard(result.language_candidates, len(job.audio) / SAMPLE_RATE)
        if self.config.profile and len(job.audio):
            language = self.config.options.language or result.language
            final_profile = ProfileJob(turn.index, job.audio, text, tuple(words), language, final=True)
        turn.buffer = SampleBuffer(start=turn.buffer.end)
        out: list[Output] = [
            TranscriptEvent(
                turn.index,
                True,
                text,
                round(start, 3),
                round(end, 3),
                words=tuple(words) if self.config.options.word_timestamps else (),
                language=result.language,
                language_probability=result.language_probability,
            )
        ]
        if self.config.profile and len(job.audio):
            # The turn's profile comes after its final; the stream closes only once it is out too.
            self._profiling.add(turn.index)
            out.append(final_profile)
        if self._speakers is not None:
            self._voicing[turn.index] = out
            if len(job.audio) >= MIN_SAMPLES:
                return [SpeakerJob(turn.index, job.audio)]
            self._voiced[turn.index] = None  # too short to embed: untagged, but still in its turn's place
            return self._release_voiced()
        out.extend(self._maybe_closed())
        return out

    def _in_order(self, index: int, final: Callable[[], list[Output]]) -> list[Output]:
        """Turn ``index``'s final (what ``final()`` returns), once every earlier turn's is out: two turns' decodes may
        run side by side (the scheduler's urgent lane) and the later, shorter one finish first."""
        self._parked[index] = final
        out: list[Output] = []
        while self._parked:
            first = min(self._parked)
            if any(i < first and i not in self._parked for i in self._ending):
                break
            out.extend(self._parked.pop(first)())
        return out

    def _maybe_closed(self) -> list[Output]:
        if (
            self.state is SessionState.CLOSING
            and not self._ending
            and not self._parked
            and not self._profiling
            and not self._voicing
        ):
            self.state = SessionState.CLOSED
            return [StreamClosed(audio_seconds=_seconds(self._samples))]
        return []
