"""The session state machine, driven with real speech and real models, without sockets or sleeping."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

import jiwer
import numpy as np
import pytest

from voxgate.analysis.profile import ProfileSmoother
from voxgate.errors import ProtocolViolation
from voxgate.streaming.events import (
    DecodeJob,
    DecodeKind,
    ProfileEvent,
    SpeakerJob,
    SpeechEnded,
    SpeechStarted,
    StreamClosed,
    TranscriptEvent,
    TurnCheckJob,
    TurnEnded,
)
from voxgate.streaming.policy import EndTurnReason, TurnMode, TurnPolicy
from voxgate.streaming.session import SessionConfig, SessionState, StreamSession
from voxgate.types import SAMPLE_RATE, DiarizationOptions, TranscriptionOptions, VoiceProfile

from .conftest import Driver, silence


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", "", text.lower()).split()


def assert_transcript(text: str, reference: str, max_wer: float = 0.2) -> None:
    """tiny.en is a small model: allow a word error here and there, never a different sentence."""
    error = jiwer.wer(" ".join(_words(reference)), " ".join(_words(text)) or "<empty>")
    assert error <= max_wer, f"WER {error:.2f} for {text!r} vs {reference!r}"


def make(vad_model, tiny, turn_model=None, *, mode=TurnMode.VAD, auto=True, **config) -> Driver:
    cfg = SessionConfig(options=TranscriptionOptions(language="en"), turn=TurnPolicy(mode=mode), **config)
    return Driver(StreamSession(cfg), vad_model.stream(), tiny, turn_model, auto=auto)


def test_one_turn_with_partials_then_final_on_silence(vad_model, tiny, clip) -> None:
    d = make(vad_model, tiny, partial_interval=0.3)
    d.feed(np.concatenate([silence(0.5), clip("spk1_snt2.wav"), silence(1.2)]))
    kinds = [type(e) for e in d.events]
    assert kinds.index(SpeechStarted) < kinds.index(TranscriptEvent) < kinds.index(SpeechEnded) < kinds.index(TurnEnded)
    partials = d.partials()
    assert len(partials) >= 3
    # LocalAgreement-2: once confirmed, a word never changes in a later partial.
    for earlier, later in itertools.pairwise(partials):
        assert earlier.stable_words is not None
        assert later.stable_words is not None
        assert later.stable_words >= earlier.stable_words
        assert _words(later.text)[: earlier.stable_words] == _words(earlier.text)[: earlier.stable_words]
    (final,) = d.finals()
    assert_transcript(final.text, "Drop the two when you add the figures.")
    end = next(e for e in d.events if isinstance(e, TurnEnded))
    assert end.reason is EndTurnReason.SILENCE
    # Stream-relative times: speech starts after the 0.5 s of leading silence. (Whisper dates a turn's first word
    # from the start of the audio it was given, which includes a 0.3 s pre-roll.)
    started = next(e for e in d.events if isinstance(e, SpeechStarted))
    assert 0.5 <= started.time < 1.0
    assert started.time - 0.35 <= final.words[0].start < started.time + 0.3
    assert final.start == final.words[0].start
    assert final.end <= 0.5 + 3.15 + 0.1
    assert end.time - final.end >= 0.6  # the 700 ms pause ended it, not something sooner


def test_speculative_final_needs_no_decode(vad_model, tiny, clip) -> None:
    d = make(vad_model, tiny, mode=TurnMode.MANUAL)
    d.feed(np.concatenate([clip("spk2_snt2.wav"), silence(0.6)]))
    speculative = [j for j in d.jobs if isinstance(j, DecodeJob) and j.kind is DecodeKind.SPECULATIVE]
    assert len(speculative) == 1
    outputs = d.end_turn()
    assert not any(isinstance(o, DecodeJob) for o in outputs)  # emitted at once from the speculative result
    (final,) = [o for o in outputs if isinstance(o, TranscriptEvent)]
    assert final.is_final
    assert_transcript(final.text, "What joy there is in living.")


def test_new_speech_invalidates_the_speculative_decode(vad_model, tiny, clip) -> None:
    d = make(vad_model, tiny, mode=TurnMode.MANUAL)
    d.feed(np.concatenate([clip("spk2_snt2.wav"), silence(0.6), clip("spk2_snt6.wav")]))
    outputs = d.end_turn()
    finals_asked = [o for o in outputs if isinstance(o, DecodeJob) and o.kind is DecodeKind.FINAL]
    assert len(finals_asked) == 1
    (final,) = d.finals()
    assert "living" in final.text.lower()
    assert "flavor" in final.text.lower()


def test_final_waits_for_a_speculative_decode_in_flight(vad_model, tiny, clip) -> None:
    d = make(vad_model, tiny, mode=TurnMode.MANUAL, auto=False)
    d.feed(np.concatenate([clip("spk1_snt6.wav"), silence(0.6)]))
    outputs = d.end_turn()
    assert not any(isinstance(o, DecodeJob) for o in outputs)  # nothing new heard: reuse the one in flight
    assert d.finals() == []
    d.run_jobs()
    (final,) = d.finals()
    assert_transcript(final.text, "The pencils have all been used.")


def test_turns_follow_each_other_with_stream_times(vad_model, tiny, clip) -> None:
    d = make(vad_model, tiny)
    first, second = clip("spk1_snt1.wav"), clip("spk2_snt4.wav")
    d.feed(np.concatenate([first, silence(1.5), second, silence(1.5)]))
    finals = d.finals()
    assert [f.turn for f in finals] == [0, 1]
    assert_transcript(finals[0].text, "The child almost hurt the small dog.")
    assert_transcript(finals[1].text, "Mend the coat before you go out.")
    second_start = (len(first) + 1.5 * SAMPLE_RATE) / SAMPLE_RATE
    assert second_start - 0.4 < finals[1].start < second_start + 0.8  # 0.3 s pre-roll, see above
    ends = [e for e in d.events if isinstance(e, TurnEnded)]
    assert [e.turn for e in ends] == [0, 1]


def test_semantic_mode_ends_a_complete_sentence_quickly(vad_model, tiny, turn_model, clip) -> None:
    d = make(vad_model, tiny, turn_model, mode=TurnMode.SEMANTIC)
    audio = clip("spk2_snt4.wav")  # the turn model rates it complete (bench/turn_eval.py: 2 of 12 it does not)
    d.feed(np.concatenate([audio, silence(2.5)]))
    end = next(e for e in d.events if isinstance(e, TurnEnded))
    speech_end = next(e for e in d.events if isinstance(e, SpeechEnded))
    assert end.reason is EndTurnReason.SEMANTIC
    assert end.probability is not None
    assert end.probability >= 0.5
    assert end.time - speech_end.time < 0.5  # well before the 2 s fallback
    (final,) = d.finals()
    assert_transcript(final.text, "Mend the coat before you go out.")


def test_semantic_mode_waits_when_the_model_says_not_done(vad_model, tiny, clip) -> None:
    class NeverDone:
        def predict(self, audio) -> float:
            return 0.1

    d = make(vad_model, tiny, NeverDone(), mode=TurnMode.SEMANTIC)
    d.feed(np.concatenate([clip("spk1_snt1.wav"), silence(2.5)]))
    end = next(e for e in d.events if isinstance(e, TurnEnded))
    speech_end = next(e for e in d.events if isinstance(e, SpeechEnded))
    assert end.reason is EndTurnReason.SILENCE
    assert end.time - speech_end.time >= 1.7  # the max-silence fallback (2 s after the silence began)


class Scripted:
    """A turn model that answers ``sure`` to early checks (less than the pause heard) and ``pause`` at the pause;
    the silence of each audio it was asked about is kept (its trailing digital zeros)."""

    def __init__(self, sure: float, pause: float) -> None:
        self.sure, self.pause = sure, pause
        self.heard: list[float] = []

    def predict(self, audio) -> float:
        nonzero = np.flatnonzero(audio)
        silent = (len(audio) - 1 - nonzero[-1]) / SAMPLE_RATE if len(nonzero) else len(audio) / SAMPLE_RATE
        self.heard.append(silent)
        return self.sure if silent < 0.2 else self.pause


def early(vad_model, tiny, turn_model, **policy) -> Driver:
    turn = replace(TurnPolicy(mode=TurnMode.SEMANTIC, early_ms=96), **policy)
    cfg = SessionConfig(options=TranscriptionOptions(language="en"), turn=turn)
    return Driver(StreamSession(cfg), vad_model.stream(), tiny, turn_model)


def test_a_sure_early_check_ends_the_turn_before_the_pause(vad_model, tiny, clip) -> None:
    model = Scripted(sure=0.99, pause=0.99)
    d = early(vad_model, tiny, model)
    d.feed(np.concatenate([clip("spk2_snt4.wav"), silence(2.5)]))
    (speech_end,) = [e for e in d.events if isinstance(e, SpeechEnded)]
    (end,) = [e for e in d.events if isinstance(e, TurnEnded)]
    assert d.events.index(speech_end) < d.events.index(end)  # the pause is declared, then the turn ends
    assert end.reason is EndTurnReason.SEMANTIC
    assert end.probability == 0.99
    # Asked at 96 ms of silence (three 32 ms frames), answered in the same 100 ms chunk: long before the 200 ms pause.
    assert end.time - speech_end.time < 0.2
    assert speech_end.silence == round(end.time - speech_end.time, 3)
    assert min(model.heard) < 0.2
    (final,) = d.finals()
    assert_transcript(final.text, "Mend the coat before you go out.")
    # The turn is over: the silence that follows opens nothing and asks nothing more.
    asked = len(model.heard)
    d.feed(silence(1.0))
    assert len(model.heard) == asked
    assert len([e for e in d.events if isinstance(e, TurnEnded)]) == 1


def test_an_early_check_below_its_threshold_leaves_the_turn_to_the_pause(vad_model, tiny, clip) -> None:
    model = Scripted(sure=0.9, pause=0.9)  # enough to end a turn at the pause, not early
    d = early(vad_model, tiny, model)
    d.feed(np.concatenate([clip("spk2_snt4.wav"), silence(2.5)]))
    (speech_end,) = [e for e in d.events if isinstance(e, SpeechEnded)]
    (end,) = [e for e in d.events if isinstance(e, TurnEnded)]
    assert end.reason is EndTurnReason.SEMANTIC
    assert end.time - speech_end.time >= 0.2
    assert min(model.heard) < 0.2 <= max(model.heard)  # asked early, then again at the pause
    (final,) = d.finals()
    assert_transcript(final.text, "Mend the coat before you go out.")


def test_an_early_answer_after_speech_resumed_is_ignored(vad_model, tiny, clip) -> None:
    model = Scripted(sure=0.99, pause=0.0)
    d = early(vad_model, tiny, model, max_silence_ms=5_000)
    d.auto = False
    audio = clip("spk2_snt4.wav")
    d.feed(audio)
    d.feed(silence(0.1))
    early_jobs = [j for j in d.queue if isinstance(j, TurnCheckJob) and j.early is not None]
    assert early_jobs, "no early check after 100 ms of silence"
    d.queue.clear()
    d.feed(audio[: SAMPLE_RATE // 2])  # the speaker goes on before the answer is in
    d.queue.clear()
    for job in early_jobs:
        d.run_one(job)
    assert not [e for e in d.events if isinstance(e, TurnEnded)]


def test_close_flushes_the_open_turn(vad_model, tiny, clip) -> None:
    d = make(vad_model, tiny, mode=TurnMode.MANUAL)
    d.feed(clip("spk1_snt5.wav"))  # no trailing silence: the turn is still open
    d.close()
    assert isinstance(d.events[-1], StreamClosed)
    (final,) = d.finals()
    assert_transcript(final.text, "Sunday is the best part of the week.")
    assert d.session.state is SessionState.CLOSED
    with pytest.raises(ProtocolViolation, match="CLOSED"):
        d.session.feed(silence(0.1), np.zeros(3))
    with pytest.raises(ProtocolViolation):
        d.session.end_turn()


def test_long_turn_rolls_forward_with_bounded_memory(vad_model, tiny, clip) -> None:
    d = make(vad_model, tiny, mode=TurnMode.MANUAL, roll_after=8.0, roll_keep=3.0)
    jfk = clip("jfk.flac")
    peak = 0
    for _ in range(3):
        d.feed(jfk, chunk=0.5)
        peak = max(peak, d.session.buffered_samples)
    assert any(isinstance(j, DecodeJob) and j.kind is DecodeKind.ROLL for j in d.jobs)
    assert peak < 12 * SAMPLE_RATE  # never the whole 33 s
    d.end_turn()
    (final,) = d.finals()
    text = " ".join(_words(final.text))
    assert text.count("ask not what your country can do for you") == 3
    starts = [w.start for w in final.words]
    assert starts == sorted(starts)
    assert final.words[-1].end > 30.0  # times stay stream-relative across rolls


def test_voice_profile_updates_during_a_turn_and_for_the_turn(vad_model, tiny, clip, service) -> None:
    cfg = SessionConfig(
        options=TranscriptionOptions(language="en"), turn=TurnPolicy(mode=TurnMode.MANUAL), profile=True
    )
    d = Driver(StreamSession(cfg), vad_model.stream(), tiny, None, profiler=service.profile)
    d.feed(clip("jfk.flac"))
    updates = [e for e in d.events if isinstance(e, ProfileEvent)]
    assert len(updates) >= 4  # about one per second of new speech over ~11 s
    assert all(u.scope == "stream" for u in updates)
    assert updates[-1].profile.language[0].label == "en"
    d.close()
    turn_profiles = [e for e in d.events if isinstance(e, ProfileEvent) and e.scope == "turn"]
    assert len(turn_profiles) == 1
    final_index = d.events.index(d.finals()[0])
    assert d.events.index(turn_profiles[0]) > final_index  # the turn's profile follows its final ...
    assert isinstance(d.events[-1], StreamClosed)  # ... and the stream closes only after it
    assert turn_profiles[0].profile.features.word_count > 10  # the final's words fed the rate measures
    assert turn_profiles[0].profile.features.speaking_rate_wpm is not None


def scores(profile: VoiceProfile) -> dict[str, dict[str, float]]:
    """A profile's confidences by dimension and label (labels of equal confidence may come in either order)."""
    return {d: {s.label: s.confidence for s in labels} for d, labels in profile.dimensions().items()}


def test_diarized_finals_carry_their_speaker(vad_model, tiny, clip, service) -> None:
    """Three turns by two real voices: each final waits for its turn's voice and is tagged with it."""
    cfg = SessionConfig(
        options=TranscriptionOptions(language="en"), turn=TurnPolicy(mode=TurnMode.VAD), diarize=DiarizationOptions()
    )
    cfg = replace(cfg, profile=True)
    d = Driver(
        StreamSession(cfg), vad_model.stream(), tiny, None, profiler=service.profile, encoder=service.speaker_encoder()
    )
    for name in ("spk1_snt1.wav", "spk2_snt2.wav", "spk1_snt3.wav"):
        d.feed(np.concatenate([clip(name), silence(1.5)]))
    d.close()
    finals = d.finals()
    assert [f.speaker for f in finals] == [1, 2, 1]
    assert sum(isinstance(j, SpeakerJob) for j in d.jobs) == 3
    # Each turn's own profile names the turn's speaker; the stream's running profile does not.
    turn_profiles = [e for e in d.events if isinstance(e, ProfileEvent) and e.scope == "turn"]
    assert [p.speaker for p in turn_profiles] == [1, 2, 1]
    assert {e.speaker for e in d.events if isinstance(e, ProfileEvent) and e.scope == "stream"} == {None}
    # ... and after each, that speaker's own profile so far: speaker 1's third-turn profile folds in its first turn.
    voices = [e for e in d.events if isinstance(e, ProfileEvent) and e.scope == "speaker"]
    assert [(v.turn, v.speaker) for v in voices] == [(0, 1), (1, 2), (2, 1)]
    assert d.events.index(voices[0]) == d.events.index(turn_profiles[0]) + 1
    expected = ProfileSmoother()
    expected.update(turn_profiles[0].profile)
    assert scores(voices[2].profile) == scores(expected.update(turn_profiles[2].profile))
    assert scores(voices[1].profile) == scores(turn_profiles[1].profile)  # speaker 2's first turn alone
    assert isinstance(d.events[-1], StreamClosed)


def test_a_final_is_held_until_its_voice_is_known(vad_model, tiny, clip, service) -> None:
    cfg = SessionConfig(
        options=TranscriptionOptions(language="en"),
        turn=TurnPolicy(mode=TurnMode.MANUAL),
        diarize=DiarizationOptions(),
    )
    d = Driver(StreamSession(cfg), vad_model.stream(), tiny, None, encoder=service.speaker_encoder(), auto=False)
    d.feed(clip("spk2_snt1.wav"))
    d.run_jobs()
    d.close()
    while not any(isinstance(j, SpeakerJob) for j in d.queue):
        job = d.queue.popleft()
        assert isinstance(job, DecodeJob)
        d.run_one(job)
    assert d.finals() == []  # decoded, but not out before its speaker
    assert not any(isinstance(e, StreamClosed) for e in d.events)
    d.run_jobs()
    (final,) = d.finals()
    assert final.speaker == 1
    assert isinstance(d.events[-1], StreamClosed)


def test_diarized_finals_keep_turn_order_whichever_voice_is_ready_first(vad_model, tiny, clip, service) -> None:
    cfg = SessionConfig(
        options=TranscriptionOptions(language="en"), turn=TurnPolicy(mode=TurnMode.VAD), diarize=DiarizationOptions()
    )
    d = Driver(StreamSession(cfg), vad_model.stream(), tiny, None, encoder=service.speaker_encoder(), auto=False)
    d.feed(np.concatenate([clip("spk1_snt1.wav"), silence(1.5), clip("spk2_snt2.wav"), silence(1.5)]))
    voices: list[SpeakerJob] = []
    while d.queue:  # decode everything; hold the speaker jobs back
        job = d.queue.popleft()
        if isinstance(job, SpeakerJob):
            voices.append(job)
        else:
            d.run_one(job)
    assert [v.turn for v in voices] == [0, 1]
    assert d.finals() == []
    first, second = voices
    d.run_one(second)  # the later turn's voice is ready first ...
    assert d.finals() == []  # ... but its final waits for the earlier one's
    d.run_one(first)
    assert [(f.turn, f.speaker) for f in d.finals()] == [(0, 1), (1, 2)]  # in turn order, numbered in it


# -- the reference's speech events: speechStarted{confidence}, speechStopped{silenceDurationMs}, usage ---------------


def test_speech_events_carry_the_vads_confidence_and_the_silence_heard(vad_model, tiny, clip) -> None:
    d = make(vad_model, tiny, mode=TurnMode.MANUAL)
    audio = np.concatenate([silence(0.5), clip("spk1_snt2.wav"), silence(1.2)])
    d.feed(audio)
    (started,) = [e for e in d.events if isinstance(e, SpeechStarted)]
    (ended,) = [e for e in d.events if isinstance(e, SpeechEnded)]
    # The frames that opened the speech were all above the VAD's lower threshold, the first above its threshold.
    assert TurnPolicy().vad_threshold - 0.15 <= started.confidence <= 1.0
    # Reported once the pause (200 ms in whole 32 ms frames) was heard, in 100 ms chunks: a chunk and a frame more.
    assert 0.2 <= ended.silence <= 0.2 + 0.032 + 0.1 + 0.032
    d.close()
    (closed,) = [e for e in d.events if isinstance(e, StreamClosed)]
    assert closed.audio_seconds == round(len(audio) / SAMPLE_RATE, 3)


def test_silence_of_a_speech_end_stops_where_speech_resumes_in_the_same_chunk(vad_model, tiny, clip) -> None:
    d = make(vad_model, tiny, mode=TurnMode.MANUAL)
    audio = np.concatenate([clip("spk1_snt1.wav"), silence(0.8), clip("spk2_snt4.wav"), silence(0.5)])
    d.feed(audio, chunk=len(audio) / SAMPLE_RATE)  # one chunk: both speeches and the pause between them
    starts = [e for e in d.events if isinstance(e, SpeechStarted)]
    ends = [e for e in d.events if isinstance(e, SpeechEnded)]
    assert len(starts) == 2
    assert ends[0].time < starts[1].time
    assert ends[0].silence == round(starts[1].time - ends[0].time, 3)
    assert all(0.5 <= s.confidence <= 1.0 for s in starts)
