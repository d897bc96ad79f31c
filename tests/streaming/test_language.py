"""A stream's language evidence: what earlier turns said, as the prior the engine weighs the next turn by."""

from __future__ import annotations

import numpy as np
import pytest

from voxgate.engines.base import LANGUAGE_SWITCH, Engine, weigh_languages
from voxgate.service import Service
from voxgate.streaming.events import DecodeJob
from voxgate.streaming.language import LanguageEvidence
from voxgate.streaming.policy import TurnMode, TurnPolicy
from voxgate.streaming.session import SessionConfig, StreamSession
from voxgate.types import LanguageScore, TranscriptionOptions

from .conftest import Driver, silence


def scores(**probabilities: float) -> tuple[LanguageScore, ...]:
    return tuple(LanguageScore(code, p) for code, p in probabilities.items())


def test_no_prior_before_two_seconds_of_speech_then_shares_weighted_by_length() -> None:
    evidence = LanguageEvidence()
    evidence.heard(scores(ca=0.6, es=0.4), 1.5)
    assert evidence.prior() == ()
    evidence.heard(scores(es=0.6, ca=0.4), 0.6)
    prior = dict((s.code, s.probability) for s in evidence.prior())
    # 1.5 s at ca 0.6 and 0.6 s at ca 0.4 (the earlier faded a little by the later): ca ahead, shares sum to 1.
    assert prior["ca"] > prior["es"]
    assert sum(prior.values()) == pytest.approx(1.0, abs=1e-3)


def test_the_prior_follows_a_change_of_language_within_a_few_turns() -> None:
    evidence = LanguageEvidence()
    for _ in range(10):
        evidence.heard(scores(en=0.95, de=0.05), 4.0)
    assert evidence.prior()[0].code == "en"
    turns = 0
    while evidence.prior()[0].code != "de":
        evidence.heard(scores(de=0.97, en=0.03), 4.0)
        turns += 1
    assert turns <= 12  # 40 s of English against 4 s German turns, a 60 s half-life


def test_weighing_settles_a_close_call_but_never_overrides_a_clear_one() -> None:
    prior = scores(ca=0.9, es=0.1)
    # A short turn the engine half-hears as Spanish: the stream's Catalan wins.
    assert weigh_languages([("es", 0.5), ("ca", 0.4), ("gl", 0.1)], prior)[0][0] == "ca"
    # A turn clearly in German: the prior does not hold it back (ratio above 1 / LANGUAGE_SWITCH).
    assert weigh_languages([("de", 0.97), ("ca", 0.02), ("es", 0.01)], prior)[0][0] == "de"
    weighed = weigh_languages([("de", 0.97), ("ca", 0.02), ("es", 0.01)], prior)
    assert sum(p for _, p in weighed) == pytest.approx(1.0)
    # Without a prior: the engine's own scores, best first.
    assert weigh_languages([("es", 0.4), ("ca", 0.6)], ()) == [("ca", 0.6), ("es", 0.4)]
    assert 0 < LANGUAGE_SWITCH < 0.5


@pytest.fixture(scope="module")
def base(service: Service) -> Engine:
    return service.engine("whisper/base")


def run(vad_model, engine: Engine, clip, *, language: str | None, language_prior: bool = True) -> Driver:
    config = SessionConfig(
        options=TranscriptionOptions(language=language),
        turn=TurnPolicy(mode=TurnMode.VAD),
        partials=False,
        language_prior=language_prior,
    )
    d = Driver(StreamSession(config), vad_model.stream(), engine, None)
    audio = [clip("spk1_snt1.wav"), silence(1.2), clip("spk2_snt4.wav"), silence(1.2), clip("spk1_snt3.wav")]
    d.feed(np.concatenate([*audio, silence(1.2)]))
    return d


def test_later_turns_of_a_stream_are_decoded_with_the_earlier_turns_language(vad_model, base, clip) -> None:
    d = run(vad_model, base, clip, language=None)
    finals = d.finals()
    assert [f.turn for f in finals] == [0, 1, 2]
    assert {f.language for f in finals} == {"en"}
    by_turn: dict[int, list[DecodeJob]] = {}
    for job in d.jobs:
        if isinstance(job, DecodeJob):
            by_turn.setdefault(job.turn, []).append(job)
    assert all(job.options.language_prior == () for job in by_turn[0])  # nothing heard yet
    for turn in (1, 2):
        for job in by_turn[turn]:
            assert job.options.language_prior[0].code == "en"
            assert job.options.language_prior[0].probability > 0.9


def test_no_prior_when_the_language_is_given_or_the_prior_is_off(vad_model, base, clip) -> None:
    for d in (
        run(vad_model, base, clip, language="en"),
        run(vad_model, base, clip, language=None, language_prior=False),
    ):
        assert len(d.finals()) == 3
        assert all(job.options.language_prior == () for job in d.jobs if isinstance(job, DecodeJob))


def test_a_prior_does_not_override_what_the_engine_clearly_hears(base, clip) -> None:
    english = clip("spk2_snt4.wav")
    result = base.transcribe_utterance(english, TranscriptionOptions(language_prior=scores(de=1.0)))
    assert result.language == "en"
    assert result.language_candidates[0].code == "en"  # the turn's own scores, kept without the prior
