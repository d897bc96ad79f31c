"""The scripted engine's own promises (``tests/scripted.py``) beyond the engine contract it also runs
(``tests/engines/test_contract.py``): where it finds a clip, its scripted failures and delays, the callers it
refuses."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.scripted import Failure, Script, ScriptedEngine, ScriptedVad
from voxgate.audio.pcm import PcmEncoding, pcm_to_float
from voxgate.errors import EngineError, ProviderTimeout
from voxgate.types import SAMPLE_RATE, TranscriptionOptions

EN = TranscriptionOptions(language="en")
SCRIPT = Script.say((0.5, "the child almost hurt"), (3.0, "the small dog"), tail=0.5)


def clip(start: float, end: float) -> np.ndarray:
    return SCRIPT.audio[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]


def test_a_clip_is_found_where_it_was_cut_even_after_16_bit_pcm() -> None:
    engine = ScriptedEngine(SCRIPT)
    assert engine.locate(clip(1.25, 3.6)) == 1.25
    assert engine.locate(pcm_to_float(SCRIPT.pcm(2.0, 4.0), PcmEncoding.LINEAR16)) == 2.0
    assert engine.locate(np.zeros(800, dtype=np.float32)) is None
    with pytest.raises(AssertionError, match="match"):
        engine.locate(np.full(800, 0.5, dtype=np.float32))


def test_drafts_hold_the_words_heard_finals_every_word_in_the_clip() -> None:
    engine = ScriptedEngine(SCRIPT)
    (draft,) = engine.transcribe_batch([(clip(0.2, 1.6), EN)])
    assert draft.text == "the child almost"  # "hurt" (1.7-2.0 s) not heard yet
    assert draft.words == ()
    final = engine.transcribe_utterance(clip(2.5, 4.4), EN)
    assert final.text == "the small dog"
    assert [(w.start, w.end) for w in final.words] == [(0.5, 0.8), (0.9, 1.2), (1.3, 1.6)]  # from the clip's start
    assert final.duration == pytest.approx(1.9)
    assert engine.kinds() == ["draft", "final"]
    assert [(c.start, c.end) for c in engine.calls] == [(0.2, 1.6), (2.5, 4.4)]


def test_failures_come_after_the_answers_scripted() -> None:
    engine = ScriptedEngine(SCRIPT, failure=Failure(kinds=frozenset({"final"}), after=1, error=ProviderTimeout))
    assert engine.transcribe_utterance(clip(0, 2.1), EN).text == "the child almost hurt"
    assert engine.transcribe_batch([(clip(0, 2.1), EN)])[0].text == "the child almost hurt"  # drafts never fail
    with pytest.raises(ProviderTimeout, match="scripted/test failed"):
        engine.transcribe_utterance(clip(0, 2.1), EN)
    with pytest.raises(EngineError):  # ProviderTimeout is an EngineError: a stream falls back on it
        engine.transcribe_utterance(clip(0, 2.1), EN)


def test_delays_per_kind_of_call() -> None:
    engine = ScriptedEngine(SCRIPT, delays={"final": 0.2})
    started = time.monotonic()
    engine.transcribe_batch([(clip(0, 1.0), EN)])
    assert time.monotonic() - started < 0.1
    engine.transcribe_utterance(clip(0, 1.0), EN)
    assert time.monotonic() - started >= 0.2


def test_it_refuses_callers_that_break_the_contract() -> None:
    engine = ScriptedEngine(SCRIPT, max_batch=2)
    with pytest.raises(AssertionError, match="max_batch=2"):
        engine.transcribe_batch([(clip(0, 1.0), EN)] * 3)
    engine.close()
    with pytest.raises(AssertionError, match="after close"):
        engine.transcribe_utterance(clip(0, 1.0), EN)


def test_the_scripted_vad_hears_the_script_frame_by_frame() -> None:
    vad = ScriptedVad()
    probs = np.concatenate([vad.process(piece) for piece in np.array_split(clip(0, 1.024), 7)])
    assert len(probs) == 32  # 1.024 s of 512-sample frames, whatever the pieces
    speech = np.flatnonzero(probs)
    assert speech[0] == int(0.5 * SAMPLE_RATE) // 512  # the frame "the" starts in
    assert probs[int(0.85 * SAMPLE_RATE) // 512] == 0.0  # between "the" (ends 0.8 s) and "child" (0.9 s)
