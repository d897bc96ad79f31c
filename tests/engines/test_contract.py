"""One contract, every registered engine: what any engine must do with real speech."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engines.harness import words_are_sane
from voxgate.engines.base import Engine
from voxgate.errors import InvalidRequest
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, TranscriptionOptions

ENGINES = ["whisper/tiny.en", "whisper/base"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, service: Service) -> Engine:
    return service.engine(request.param)


def test_is_an_engine(engine: Engine) -> None:
    assert isinstance(engine, Engine)
    assert engine.model_id in ENGINES
    assert "en" in engine.capabilities.languages


def test_transcribes_real_speech_with_word_times(engine: Engine, jfk: np.ndarray) -> None:
    t = engine.transcribe(jfk, TranscriptionOptions(language="en"))
    assert t.model_id == engine.model_id
    assert t.duration == pytest.approx(len(jfk) / SAMPLE_RATE)
    text = t.text.lower()
    for phrase in ("fellow americans", "ask not what your country can do for you"):
        assert phrase in text.replace(",", "")
    words_are_sane(t, within=t.duration + 0.05)
    # "Americans" is said around 1.5-2.3 s into the clip, "country" last near 10 s.
    americans = next(w for w in t.words if w.word.lower().startswith("americans"))
    assert 1.0 < americans.start < 2.6
    assert t.words[-1].end > 9.0


def test_detects_language_when_none_given(engine: Engine, jfk: np.ndarray) -> None:
    t = engine.transcribe(jfk, TranscriptionOptions())
    assert t.language == "en"
    assert t.language_probability is not None
    assert 0.5 < t.language_probability <= 1.0


def test_silence_gives_no_segments(engine: Engine) -> None:
    t = engine.transcribe(np.zeros(3 * SAMPLE_RATE, dtype=np.float32), TranscriptionOptions(language="en"))
    assert t.segments == ()
    assert t.text == ""


def test_word_timestamps_can_be_skipped(engine: Engine, jfk: np.ndarray) -> None:
    t = engine.transcribe(jfk, TranscriptionOptions(language="en", word_timestamps=False))
    assert "country" in t.text
    assert t.words == ()


def test_rejects_a_language_it_does_not_know(engine: Engine, jfk: np.ndarray) -> None:
    with pytest.raises(InvalidRequest):
        engine.transcribe(jfk[:SAMPLE_RATE], TranscriptionOptions(language="xx"))


def test_english_only_model_refuses_other_languages_and_translation(service: Service, jfk: np.ndarray) -> None:
    tiny = service.engine("whisper/tiny.en")
    with pytest.raises(InvalidRequest, match="English only"):
        tiny.transcribe(jfk, TranscriptionOptions(language="de"))
    with pytest.raises(InvalidRequest, match="cannot translate"):
        tiny.transcribe(jfk, TranscriptionOptions(task="translate"))


def test_utterance_path_matches_the_file_path(engine: Engine, jfk: np.ndarray) -> None:
    """The streaming final's fast path (shortened encoder window) gives the same words, with sane times."""
    options = TranscriptionOptions(language="en")
    fast = engine.transcribe_utterance(jfk, options)
    full = engine.transcribe(jfk, options)
    words_are_sane(fast, within=fast.duration + 0.05)
    assert fast.text.replace(",", "").lower() == full.text.replace(",", "").lower()
    gaps = [abs(a.start - b.start) for a, b in zip(fast.words, full.words, strict=True)]
    # Without the file path's VAD cuts, a word after a long pause may be dated into the pause ("ask" after
    # "Americans," by ~0.7 s on base); on average the two agree closely.
    assert sum(gaps) / len(gaps) < 0.15
    assert max(gaps) < 0.8


def test_drafts_in_one_batch_keep_their_own_options(engine: Engine, jfk: np.ndarray) -> None:
    short = jfk[: 3 * SAMPLE_RATE]
    drafts = engine.transcribe_batch(
        [(jfk, TranscriptionOptions(language="en")), (short, TranscriptionOptions(prompts=("Americans",)))]
    )
    assert len(drafts) == 2
    assert "country" in drafts[0].text.lower()
    assert "fellow" in drafts[1].text.lower()
    assert "country" not in drafts[1].text.lower()
    assert drafts[1].language == "en"
    assert drafts[0].words == ()  # drafts carry text only


@pytest.mark.parametrize("samples", [0, 1, 120, 160, 200, 1000])
def test_utterance_too_short_to_hold_a_word(engine: Engine, samples: int) -> None:
    t = engine.transcribe_utterance(np.zeros(samples, dtype=np.float32), TranscriptionOptions(language="en"))
    assert t.segments == ()
