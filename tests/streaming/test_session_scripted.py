"""The session's turn logic with the scripted engine and VAD (``tests/scripted.py``): no model, exact answers.

What real speech and real models add (accuracy, Whisper's timing, the turn model's judgement) is tested in
``test_session.py``; here the engine says exactly the scripted words, so the session's own bookkeeping — which
decodes it asks for, which results it reuses, the times it gives — can be checked to the word and the millisecond.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.scripted import Script, ScriptedEngine, ScriptedVad
from voxgate.errors import ProtocolViolation
from voxgate.streaming.events import (
    DecodeJob,
    DecodeKind,
    EagerEndOfTurn,
    SpeechEnded,
    SpeechStarted,
    StreamClosed,
    TranscriptEvent,
    TurnCheckJob,
    TurnEnded,
    TurnResumed,
)
from voxgate.streaming.policy import EndTurnReason, TurnMode, TurnPolicy
from voxgate.streaming.session import SessionConfig, SessionState, StreamSession
from voxgate.types import SAMPLE_RATE, TranscriptionOptions

from .conftest import Driver

CHILD = "the child almost hurt the small dog"
JOY = "what joy there is in living"


def drive(
    script: Script,
    *,
    mode: TurnMode = TurnMode.MANUAL,
    auto: bool = True,
    turn: object = None,
    engine: ScriptedEngine | None = None,
    policy: TurnPolicy | None = None,
    **config: object,
) -> tuple[Driver, ScriptedEngine]:
    """A session on the scripted VAD, answered by ``engine`` (by default a scripted engine of ``script``)."""
    cfg = SessionConfig(
        options=TranscriptionOptions(language="en"),
        turn=policy or TurnPolicy(mode=mode),
        **config,  # type: ignore[arg-type]
    )
    engine = engine or ScriptedEngine(script)
    return Driver(StreamSession(cfg), ScriptedVad(), engine, turn, auto=auto), engine  # type: ignore[arg-type]


def cut(script: Script, start: float, end: float | None = None) -> np.ndarray:
    a = round(start * SAMPLE_RATE)
    return script.audio[a : None if end is None else round(end * SAMPLE_RATE)]


def decodes(d: Driver, kind: DecodeKind) -> list[DecodeJob]:
    return [j for j in d.jobs if isinstance(j, DecodeJob) and j.kind is kind]


# -- turns -------------------------------------------------------------------------------------------------------------


def test_end_turn_cuts_turns_with_exact_words_and_stream_times() -> None:
    script = Script.say((0.5, CHILD), (4.5, JOY), tail=0.2)
    d, _ = drive(script)
    d.feed(cut(script, 0, 4.0))
    d.end_turn()
    d.feed(cut(script, 4.0))
    d.end_turn()
    first, second = d.finals()
    assert (first.turn, first.text) == (0, CHILD)
    assert (second.turn, second.text) == (1, JOY)
    assert first.words + second.words == script.words  # stream times, to the millisecond, across turns
    assert (first.start, first.end) == (script.words[0].start, script.words[6].end)
    ends = [e for e in d.events if isinstance(e, TurnEnded)]
    assert [(e.turn, e.reason, e.time) for e in ends] == [
        (0, EndTurnReason.CLIENT, 4.0),
        (1, EndTurnReason.CLIENT, 7.0),
    ]
    assert d.session.turn_index == 2


def test_finals_go_out_in_turn_order_whichever_decode_finishes_first() -> None:
    """Two turns' finals decoded side by side (the urgent lane): the second, shorter one done first waits for the
    first; an empty turn's final waits too."""
    script = Script.say((0.5, CHILD), (4.5, JOY), tail=0.2)
    d, _ = drive(script, auto=False, speculative=False)
    d.feed(cut(script, 0, 4.0))
    d.end_turn()
    d.feed(cut(script, 4.0))
    d.end_turn()
    d.end_turn()  # a turn with no speech: its empty final at once, were it not for the order
    finals_asked = [j for j in d.queue if isinstance(j, DecodeJob) and j.kind is DecodeKind.FINAL]
    assert [j.turn for j in finals_asked] == [0, 1]
    assert d.finals() == []
    d.queue.remove(finals_asked[1])
    d.run_one(finals_asked[1])  # the later turn is decoded first
    assert d.finals() == []  # ... and held
    d.queue.remove(finals_asked[0])
    d.run_one(finals_asked[0])
    assert [(f.turn, f.text) for f in d.finals()] == [(0, CHILD), (1, JOY), (2, "")]


def test_end_turn_mid_speech_opens_the_next_turn_in_speech() -> None:
    script = Script.say((0.5, CHILD), tail=0.5)
    d, _ = drive(script)
    d.feed(cut(script, 0, 1.7))  # "the child almost" heard, "hurt" not begun
    d.end_turn()
    d.feed(cut(script, 1.7))
    d.end_turn()
    first, second = d.finals()
    assert first.text == "the child almost"
    assert second.text == "hurt the small dog"
    starts = [e for e in d.events if isinstance(e, SpeechStarted)]
    assert [s.turn for s in starts] == [0]  # no new SpeechStarted: the second turn opened in speech


def test_vad_mode_ends_the_turn_after_the_silence() -> None:
    script = Script.say((0.5, CHILD), tail=1.5)
    d, _ = drive(script, mode=TurnMode.VAD)
    d.feed(script.audio)
    speech_end = next(e for e in d.events if isinstance(e, SpeechEnded))
    end = next(e for e in d.events if isinstance(e, TurnEnded))
    assert speech_end.time == pytest.approx(script.words[-1].end, abs=0.033)  # the frame the silence starts in
    assert end.reason is EndTurnReason.SILENCE
    assert 0.7 <= end.time - speech_end.time < 0.7 + 0.033 + 0.1  # silence_ms, a frame, a chunk
    (final,) = d.finals()
    assert final.text == CHILD


def test_semantic_mode_asks_once_per_pause_and_ignores_a_stale_answer() -> None:
    class Done:
        def predict(self, audio: np.ndarray) -> float:
            return 0.9

    script = Script.say((0.5, "the child"), (2.0, "almost hurt"), tail=1.0)
    d, _ = drive(script, mode=TurnMode.SEMANTIC, auto=False, turn=Done())
    d.feed(cut(script, 0, 1.8))  # a pause after "the child"
    (check,) = [j for j in d.queue if isinstance(j, TurnCheckJob)]
    d.feed(cut(script, 1.8, 2.2))  # speech again before the turn model answers
    assert d.session.turn_checked(check, 0.99) == []  # the answer is for a pause that is over
    d.queue.clear()
    d.auto = True
    d.feed(cut(script, 2.2))
    end = next(e for e in d.events if isinstance(e, TurnEnded))
    assert end.reason is EndTurnReason.SEMANTIC
    assert end.probability == 0.9
    assert sum(isinstance(j, TurnCheckJob) for j in d.jobs) == 2  # one per pause


class SurerWithSilence:
    """A turn model that hears how much silence ends its window: unsure at first, sure past ``sure_after`` s."""

    def __init__(self, sure_after: float) -> None:
        self.sure_after = sure_after
        self.heard: list[float] = []

    def predict(self, audio: np.ndarray) -> float:
        loud = np.nonzero(np.abs(audio) > 1e-3)[0]
        silence = (len(audio) - (loud[-1] + 1 if len(loud) else 0)) / SAMPLE_RATE
        self.heard.append(silence)
        return 0.9 if silence >= self.sure_after else 0.2


def test_semantic_mode_asks_again_as_the_pause_grows() -> None:
    """Unsure at 0.2 s of silence, the model is asked again every ``recheck_ms`` and ends the turn once sure, long
    before ``max_silence_ms``."""
    script = Script.say((0.5, CHILD), tail=2.5)
    model = SurerWithSilence(0.75)
    d, _ = drive(script, turn=model, policy=TurnPolicy(mode=TurnMode.SEMANTIC))
    d.feed(script.audio)
    speech_end = next(e for e in d.events if isinstance(e, SpeechEnded))
    end = next(e for e in d.events if isinstance(e, TurnEnded))
    assert end.reason is EndTurnReason.SEMANTIC
    assert end.probability == 0.9
    checks = [j for j in d.jobs if isinstance(j, TurnCheckJob)]
    assert len(checks) >= 3
    gaps = [b.silence_ms - a.silence_ms for a, b in itertools.pairwise(checks)]
    assert all(200 <= g < 200 + 100 + 1e-6 for g in gaps), gaps  # every 200 ms, at the first chunk past it
    assert model.heard[-1] >= 0.75
    assert end.time - speech_end.time < 1.0  # not the 2 s fallback


def test_semantic_mode_without_rechecks_waits_for_the_longest_pause() -> None:
    script = Script.say((0.5, CHILD), tail=2.5)
    d, _ = drive(script, turn=SurerWithSilence(0.75), policy=TurnPolicy(mode=TurnMode.SEMANTIC, recheck_ms=0))
    d.feed(script.audio)
    end = next(e for e in d.events if isinstance(e, TurnEnded))
    assert end.reason is EndTurnReason.SILENCE
    assert sum(isinstance(j, TurnCheckJob) for j in d.jobs) == 1


def test_a_short_quiet_stretch_starts_the_speculative_decode_before_the_pause_is_over() -> None:
    """~100 ms of quiet after the last word and the turn is decoded; the pause (200 ms) then ends it, and the final is
    that decode's answer, no second one."""
    script = Script.say((0.5, CHILD), tail=1.5)
    d, _ = drive(script, mode=TurnMode.VAD)
    d.feed(script.audio)
    speculative = decodes(d, DecodeKind.SPECULATIVE)[-1]  # (gaps between words may have had theirs)
    silence_from = next(e for e in d.events if isinstance(e, SpeechEnded)).time
    decoded_up_to = speculative.offset + len(speculative.audio) / SAMPLE_RATE
    assert silence_from + 0.096 <= decoded_up_to < silence_from + 0.2  # within the pause, before speechStopped
    assert decodes(d, DecodeKind.FINAL) == []
    assert [f.text for f in d.finals()] == [CHILD]


def test_without_early_speculation_the_decode_waits_for_the_pause() -> None:
    script = Script.say((0.5, CHILD), tail=1.5)
    d, _ = drive(script, policy=TurnPolicy(mode=TurnMode.VAD, speculate_ms=0))
    d.feed(script.audio)
    (speculative,) = decodes(d, DecodeKind.SPECULATIVE)
    silence_from = next(e for e in d.events if isinstance(e, SpeechEnded)).time
    assert speculative.offset + len(speculative.audio) / SAMPLE_RATE >= silence_from + 0.2


class Fixed:
    """A turn model with one answer, whatever it hears."""

    def __init__(self, probability: float) -> None:
        self.probability = probability

    def predict(self, audio: np.ndarray) -> float:
        return self.probability


def test_an_eager_end_of_turn_carries_the_transcript_before_the_turn_ends() -> None:
    """Fairly sure (0.6: above the eager 0.4, below the 0.8 that ends a turn): the speculative transcript goes out
    as an eager end of turn at the pause; the turn ends at the longest pause, with the same words."""
    script = Script.say((0.5, CHILD), tail=2.5)
    policy = TurnPolicy(mode=TurnMode.SEMANTIC, threshold=0.8, eager_threshold=0.4)
    d, _ = drive(script, turn=Fixed(0.6), policy=policy)
    d.feed(script.audio)
    (eager,) = [e for e in d.events if isinstance(e, EagerEndOfTurn)]
    speech_end = next(e for e in d.events if isinstance(e, SpeechEnded))
    end = next(e for e in d.events if isinstance(e, TurnEnded))
    (final,) = d.finals()
    assert (eager.turn, eager.text, eager.probability) == (0, CHILD, 0.6)
    assert (eager.start, eager.end) == (final.start, final.end)
    assert eager.time - speech_end.time <= speech_end.silence + 0.1  # with the pause's first check, not at the end
    assert end.reason is EndTurnReason.SILENCE
    assert d.events.index(eager) < d.events.index(end)
    assert not [e for e in d.events if isinstance(e, TurnResumed)]
    assert len(decodes(d, DecodeKind.FINAL)) == 0  # the final reused the speculative decode


def test_a_turn_resumed_takes_the_eager_transcript_back() -> None:
    script = Script.say((0.5, "the child almost"), (2.6, "hurt the small dog"), tail=2.5)
    policy = TurnPolicy(mode=TurnMode.SEMANTIC, threshold=0.8, eager_threshold=0.4, max_silence_ms=1_500)
    d, _ = drive(script, turn=Fixed(0.6), policy=policy)
    d.feed(script.audio)
    kinds = [type(e).__name__ for e in d.events if isinstance(e, EagerEndOfTurn | TurnResumed | TurnEnded)]
    assert kinds == ["EagerEndOfTurn", "TurnResumed", "EagerEndOfTurn", "TurnEnded"]
    first, second = [e for e in d.events if isinstance(e, EagerEndOfTurn)]
    resumed = next(e for e in d.events if isinstance(e, TurnResumed))
    assert (first.text, second.text) == ("the child almost", CHILD)
    assert first.turn == second.turn == resumed.turn == 0
    assert resumed.time == pytest.approx(2.6, abs=0.1)
    assert [f.text for f in d.finals()] == [CHILD]


@pytest.mark.parametrize(
    ("probability", "eager"),
    [(0.3, 0.4), (0.9, 0.4), (0.6, None)],
    ids=["unsure", "sure-ends-the-turn", "eager-off"],
)
def test_no_eager_end_of_turn_below_its_threshold_past_the_turns_or_when_off(
    probability: float, eager: float | None
) -> None:
    script = Script.say((0.5, CHILD), tail=2.5)
    policy = TurnPolicy(mode=TurnMode.SEMANTIC, threshold=0.8, eager_threshold=eager)
    d, _ = drive(script, turn=Fixed(probability), policy=policy)
    d.feed(script.audio)
    assert not [e for e in d.events if isinstance(e, EagerEndOfTurn | TurnResumed)]
    assert [f.text for f in d.finals()] == [CHILD]


# -- partials ----------------------------------------------------------------------------------------------------------


def test_partials_come_at_their_interval_and_grow_with_the_audio() -> None:
    script = Script.say((0.3, "one two three four five six seven eight nine ten"), tail=0.0)
    d, engine = drive(script, partial_interval=0.5)
    d.feed(script.audio)
    asked = decodes(d, DecodeKind.PARTIAL)
    ends = [j.offset + len(j.audio) / SAMPLE_RATE for j in asked]
    # One per interval, at the first 100 ms chunk past it:
    assert all(0.5 - 1e-6 <= b - a < 0.5 + 0.1 for a, b in itertools.pairwise(ends)), ends
    assert len(asked) == pytest.approx((script.duration - 0.3) / 0.5, abs=1)
    heard = [p.text for p in d.partials()]
    for text, end in zip(heard, ends[: len(heard)], strict=False):
        assert text == " ".join(w.word for w in script.words if w.end <= end + 1e-3)
    assert engine.kinds().count("draft") == len(asked)


def test_words_are_stable_once_two_drafts_agree() -> None:
    """LocalAgreement-2: a partial's stable words are those its draft shares with the draft before."""
    script = Script.say((0.3, "one two three four five six seven eight"), tail=0.0)
    d, _ = drive(script, partial_interval=0.5)
    d.feed(script.audio)
    partials = d.partials()
    assert len(partials) >= 5
    assert partials[0].stable_words == 0
    for before, after in itertools.pairwise(partials):
        assert after.stable_words == len(before.text.split())


def test_a_changing_tail_is_never_stable() -> None:
    """A draft's last word is wrong ("dog" heard as "doc") until more audio follows: it shows, unstable, and is
    replaced; a word is stable only once two drafts in a row agree on it."""
    script = Script.say((0.3, "the small dog ran far away"), tail=0.0)
    d, _ = drive(script, engine=ScriptedEngine(script, revise={"dog": "doc"}), partial_interval=0.3)
    d.feed(script.audio)
    assert [(p.text, p.stable_words) for p in d.partials()] == [
        ("the", 0),
        ("the", 1),
        ("the small", 1),
        ("the small doc", 2),
        ("the small dog ran", 2),  # "doc" was never agreed on: "dog" replaces it
        ("the small dog ran", 4),
        ("the small dog ran far", 4),
    ]
    d.end_turn()
    (final,) = d.finals()
    assert final.text == "the small dog ran far away"


def test_a_dropped_partial_frees_the_slot() -> None:
    script = Script.say((0.3, "one two three four five six"), tail=0.0)
    d, _ = drive(script, auto=False, partial_interval=0.3)
    d.feed(cut(script, 0, 1.0))
    (partial,) = decodes(d, DecodeKind.PARTIAL)
    d.feed(cut(script, 1.0, 1.5))
    assert len(decodes(d, DecodeKind.PARTIAL)) == 1  # one in flight at a time
    d.queue.clear()
    assert d.session.decoded(partial, None) == []  # dropped under load: no event ...
    d.feed(cut(script, 1.5, 1.6))
    assert len(decodes(d, DecodeKind.PARTIAL)) == 2  # ... and the next comes


def test_no_partials_when_they_are_off() -> None:
    script = Script.say((0.3, CHILD), tail=0.5)
    d, engine = drive(script, partials=False)
    d.feed(script.audio)
    d.end_turn()
    assert d.partials() == []
    assert "draft" not in engine.kinds()
    assert [f.text for f in d.finals()] == [CHILD]


# -- speculative finals ------------------------------------------------------------------------------------------------


def test_a_speculative_final_is_reused_when_nothing_new_is_heard() -> None:
    script = Script.say((0.3, JOY), tail=0.6)
    d, engine = drive(script)
    d.feed(script.audio)
    assert len(decodes(d, DecodeKind.SPECULATIVE)) == 1
    outputs = d.end_turn()
    assert not any(isinstance(o, DecodeJob) for o in outputs)  # the final comes out at once ...
    (final,) = [o for o in outputs if isinstance(o, TranscriptEvent)]
    assert final.is_final
    assert final.text == JOY
    assert engine.kinds().count("final") == 1  # ... from the one full decode, made at the pause


def test_new_speech_makes_the_final_decode_again() -> None:
    script = Script.say((0.3, JOY), (3.5, CHILD), tail=0.0)
    d, engine = drive(script)
    d.feed(script.audio)
    outputs = d.end_turn()
    (final_job,) = [o for o in outputs if isinstance(o, DecodeJob)]
    assert final_job.kind is DecodeKind.FINAL
    (final,) = d.finals()
    assert final.text == f"{JOY} {CHILD}"
    assert final.words == script.words
    assert engine.kinds().count("final") == 2  # the stale speculative decode and the final


def test_the_final_waits_for_a_speculative_decode_in_flight() -> None:
    script = Script.say((0.3, JOY), tail=0.6)
    d, engine = drive(script, auto=False)
    d.feed(script.audio)
    outputs = d.end_turn()
    assert not any(isinstance(o, DecodeJob) for o in outputs)  # nothing new heard: reuse the one in flight
    assert d.finals() == []
    d.run_jobs()
    (final,) = d.finals()
    assert final.text == JOY
    assert engine.kinds().count("final") == 1


def test_no_speculative_decodes_when_they_are_off() -> None:
    script = Script.say((0.3, JOY), tail=0.6)
    d, _ = drive(script, speculative=False)
    d.feed(script.audio)
    assert decodes(d, DecodeKind.SPECULATIVE) == []
    d.end_turn()
    assert len(decodes(d, DecodeKind.FINAL)) == 1
    assert [f.text for f in d.finals()] == [JOY]


# -- long turns --------------------------------------------------------------------------------------------------------


def test_a_long_turn_rolls_forward_without_losing_or_repeating_a_word() -> None:
    text = " ".join(f"w{i}" for i in range(60))  # 24 s of speech, one turn
    script = Script.say((0.3, text), tail=0.0)
    d, _ = drive(script, roll_after=6.0, roll_keep=2.0)
    peak = 0
    for second in range(int(script.duration) + 1):
        d.feed(cut(script, second, second + 1))
        peak = max(peak, d.session.buffered_samples)
    rolls = decodes(d, DecodeKind.ROLL)
    assert len(rolls) >= 3
    assert peak <= 6.0 * SAMPLE_RATE + SAMPLE_RATE  # never much more than roll_after (fed a second at a time)
    d.end_turn()
    (final,) = d.finals()
    assert final.text == text
    assert final.words == script.words  # committed words keep their stream times
    # Partials after a roll show the committed words first.
    last = d.partials()[-1]
    assert last.text.split() == [w.word for w in script.words if w.end <= last.end + 1e-3]


# -- closing -----------------------------------------------------------------------------------------------------------


def test_close_stream_flushes_the_open_turn_then_closes() -> None:
    script = Script.say((0.3, CHILD), tail=0.0)
    d, _ = drive(script)
    d.feed(script.audio)  # no trailing silence: the turn is still open
    d.close()
    (final,) = d.finals()
    assert final.text == CHILD
    end = next(e for e in d.events if isinstance(e, TurnEnded))
    assert end.reason is EndTurnReason.CLOSE
    assert isinstance(d.events[-1], StreamClosed)
    assert d.session.state is SessionState.CLOSED
    with pytest.raises(ProtocolViolation, match="CLOSED"):
        d.session.feed(cut(script, 0, 0.1), np.zeros(3))


def test_close_waits_for_the_last_final() -> None:
    script = Script.say((0.3, CHILD), tail=0.0)
    d, _ = drive(script, auto=False)
    d.feed(script.audio)
    d.close()
    assert d.session.state is SessionState.CLOSING
    assert not any(isinstance(e, StreamClosed) for e in d.events)
    d.run_jobs()
    assert [type(e) for e in d.events[-2:]] == [TranscriptEvent, StreamClosed]
    assert d.events[-2].is_final  # type: ignore[union-attr]


def test_close_without_speech_closes_at_once_and_end_turn_answers_empty() -> None:
    script = Script.say((5.0, "late"), tail=0.0)
    d, engine = drive(script)
    d.feed(cut(script, 0, 1.0))
    d.end_turn()
    assert [(f.turn, f.text) for f in d.finals()] == [(0, "")]
    assert d.session.turn_index == 1
    assert d.close() == [StreamClosed(audio_seconds=1.0)]  # its usage: the audio heard
    assert engine.calls == []
