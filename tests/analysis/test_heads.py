"""The shipped voice-profile heads: what they read, how they answer, how they fail."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from voxgate.analysis.heads import HEADS, INPUTS, PROSODY_FEATURES, Head, load_heads, prosody_vector
from voxgate.analysis.speaker import SpeakerEncoder
from voxgate.errors import ModelUnavailable
from voxgate.types import VoiceFeatures

WIDTHS = {
    "whisper/base": 1024,
    "whisper/tiny.en": 768,
    "speaker": SpeakerEncoder.size,
    "prosody": len(PROSODY_FEATURES),
}


@pytest.fixture(scope="module")
def heads() -> dict[str, Head]:
    return load_heads()


def test_every_head_ships_with_its_labels_and_a_fitted_temperature(heads: dict[str, Head]) -> None:
    assert set(heads) == set(HEADS)
    assert heads["emotion"].labels == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
    assert heads["gender"].labels == ("male", "female")
    assert heads["age"].labels == ("young", "adult")  # "old": too few speakers to train (see the model card)
    for head in heads.values():
        assert set(head.inputs) <= set(INPUTS)
        assert head.size == sum(WIDTHS[i] for i in head.inputs)
        assert head.weights.shape == (len(head.labels), head.size)
        assert 0.05 < head.temperature < 20.0
        assert np.all(head.scale > 0)


def test_a_head_answers_calibrated_probabilities_and_tolerates_unmeasured_prosody(heads: dict[str, Head]) -> None:
    rng = np.random.default_rng(0)
    for head in heads.values():
        parts = {i: rng.normal(size=WIDTHS[i]) for i in head.inputs}
        if "prosody" in parts:
            parts["prosody"] = prosody_vector(VoiceFeatures(duration_s=1.0))  # nothing measured: all NaN
            assert np.all(np.isnan(parts["prosody"]))
        p = head.predict(parts)
        assert list(p) == list(head.labels)
        assert sum(p.values()) == pytest.approx(1.0)
        assert all(0.0 <= v <= 1.0 and math.isfinite(v) for v in p.values())
        # At the training average (every input standardised to 0) the answer is the bias alone.
        mean = {i: head.mean[sum(WIDTHS[j] for j in head.inputs[: head.inputs.index(i)]) :][: WIDTHS[i]]
                for i in head.inputs}  # fmt: skip
        at_mean = np.asarray(list(head.predict(mean).values()))
        expected = np.exp(head.bias / head.temperature)
        assert at_mean == pytest.approx(expected / expected.sum(), abs=1e-6)


def test_prosody_vector_takes_log_f0() -> None:
    vector = prosody_vector(VoiceFeatures(duration_s=2.0, f0_median_hz=128.0, hnr_db=12.5, voiced_ratio=0.5))
    named = dict(zip(PROSODY_FEATURES, vector.tolist(), strict=True))
    assert named["f0_median_hz"] == pytest.approx(7.0)
    assert named["hnr_db"] == 12.5
    assert named["voiced_ratio"] == 0.5
    assert math.isnan(named["jitter_local"])


def test_wrong_inputs_and_unknown_heads_are_refused(heads: dict[str, Head], tmp_path: Path) -> None:
    gender = heads["gender"]
    with pytest.raises(ModelUnavailable, match="needs"):
        gender.predict({})
    with pytest.raises(ModelUnavailable, match="expects"):
        gender.predict({i: np.zeros(3) for i in gender.inputs})
    with pytest.raises(ModelUnavailable, match="unknown voice-profile heads"):
        load_heads(["emotion", "accent"])
    with pytest.raises(ModelUnavailable, match="could not load"):
        load_heads(["gender"], tmp_path)
    assert load_heads([]) == {}


def test_a_reliability_curve_is_non_decreasing_in_the_measured_snr_and_one_without_a_measure(
    heads: dict[str, Head],
) -> None:
    curved = [head for head in heads.values() if len(head.reliability_values)]
    assert {head.name for head in curved} >= {"emotion", "gender"}  # what tools/train_profile.py kept (model card)
    for head in curved:
        assert np.all(np.diff(head.reliability_knots_db) > 0)
        assert np.all(np.diff(head.reliability_values) >= 0)
        assert np.all((head.reliability_values >= 0) & (head.reliability_values <= 1))
        snrs = [-20.0, 0.0, 5.0, 10.0, 20.0, 40.0, 80.0]
        values = [head.reliability(snr) for snr in snrs]
        assert values == sorted(values)
        assert head.reliability(None) == 1.0
        assert head.reliability(math.nan) == 1.0
        assert head.reliability(80.0) > 0.8  # clean speech keeps most of its confidence
    assert heads["age"].reliability(3.0) == 1.0  # no curve: the confidence is left as it is
