"""Voice profile: the fusion rules, smoothing, merging, pluggable ONNX classifiers, and real speech end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from voxgate.analysis.profile import (
    AGE_LABELS,
    EMOTION_LABELS,
    EMOTION_MAX_CONFIDENCE,
    OnnxClassifier,
    ProfileAnalyzer,
    ProfileSmoother,
    merge_profiles,
)
from voxgate.analysis.prosody import pitch_labels
from voxgate.audio.decode import decode
from voxgate.config import ProfileModel, Settings
from voxgate.errors import ModelUnavailable
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, LabelScore, LanguageScore, VoiceFeatures, VoiceProfile


@pytest.fixture(scope="module")
def analyzer() -> ProfileAnalyzer:
    return ProfileAnalyzer()


def features(**values: float) -> VoiceFeatures:
    base = {"duration_s": 4.0, "speech_s": 3.5, "voiced_s": 2.5, "voiced_ratio": 0.7}
    base.update(values)
    return VoiceFeatures(**base)  # type: ignore[arg-type]


def top(labels: tuple[LabelScore, ...]) -> str:
    return labels[0].label


def test_emotion_follows_the_words_and_the_voice(analyzer: ProfileAnalyzer) -> None:
    lively = features(f0_std_semitones=4.5, loudness_dbfs=-16.0, articulation_rate_wpm=210.0)
    flat = features(f0_std_semitones=1.0, loudness_dbfs=-34.0, articulation_rate_wpm=120.0)
    happy = analyzer._emotion(lively, "This is wonderful, I am so happy and excited to see you all here today!", "en")
    sad = analyzer._emotion(flat, "I miss her so much, everything feels empty and hopeless since she died.", "en")
    angry = analyzer._emotion(lively, "This is outrageous, I hate this, you ruined everything, you idiot!", "en")
    assert top(happy) in ("happy", "surprised")
    assert top(sad) == "sad"
    assert top(angry) in ("angry", "fearful", "disgusted")
    for labels in (happy, sad, angry):
        assert {s.label for s in labels} == set(EMOTION_LABELS)
        assert max(s.confidence for s in labels) <= EMOTION_MAX_CONFIDENCE + 1e-9


def test_emotion_without_evidence_stays_neutral(analyzer: ProfileAnalyzer) -> None:
    nothing = VoiceFeatures(duration_s=1.0)
    labels = analyzer._emotion(nothing, "", None)
    assert top(labels) == "neutral"
    # Words in a language the lexicon does not cover carry no valence.
    german = analyzer._emotion(nothing, "Ich bin so glücklich, das ist wunderbar!", "de")
    assert top(german) == "neutral"


def test_age_is_unclear_unless_the_pitch_says_child(analyzer: ProfileAnalyzer) -> None:
    adult = analyzer._age(features(f0_median_hz=120.0))
    child = analyzer._age(features(f0_median_hz=330.0))
    assert top(adult) == "unclear"
    assert top(child) == "kid"
    assert {s.label for s in adult} == set(AGE_LABELS)
    assert all(s.confidence <= 0.05 for s in adult if s.label in ("young", "adult", "old"))
    assert abs(sum(s.confidence for s in adult) - 1.0) < 1e-3


def test_accent_from_language_id(analyzer: ProfileAnalyzer) -> None:
    assert top(analyzer._accent((), None)) == "unclear"
    clean = analyzer._accent((LanguageScore("en", 0.99), LanguageScore("de", 0.005)), "en")
    assert top(clean) in ("unclear", "native-like English")
    welsh = analyzer._accent((LanguageScore("en", 0.6), LanguageScore("cy", 0.35)), "en")
    assert "Welsh-influenced English" in {s.label for s in welsh}  # any of Whisper's languages by name, not code
    mixed = analyzer._accent((LanguageScore("en", 0.6), LanguageScore("de", 0.35)), "en")
    cue = next(s for s in mixed if s.label == "German-influenced English")
    assert cue.confidence == pytest.approx(0.6 * 0.35 / 0.95, abs=1e-3)  # a weak cue stays a weak label
    assert top(mixed) == "unclear"


def _profile(emotion: str, seconds: float) -> VoiceProfile:
    one = (LabelScore(emotion, 1.0),)
    return VoiceProfile(one, one, one, one, one, one, VoiceFeatures(duration_s=seconds), speech_seconds=seconds)


def test_smoother_weights_by_speech_and_peek_keeps_nothing() -> None:
    smoother = ProfileSmoother(half_life=10.0)
    first = smoother.update(_profile("calm", 10.0))
    assert top(first.emotion) == "calm"
    peeked = smoother.peek(_profile("angry", 30.0))
    assert top(peeked.emotion) == "angry"  # 30 s of new speech outweighs 10 s of old
    again = smoother.peek(_profile("angry", 1.0))
    assert top(again.emotion) == "calm"  # the peek above was not kept; 1 s does not outweigh the history
    calm = next(s.confidence for s in again.emotion if s.label == "calm")
    assert calm == pytest.approx(0.5**0.1, abs=1e-3)


def test_merge_weights_by_speech_seconds() -> None:
    merged = merge_profiles([_profile("happy", 3.0), _profile("sad", 1.0)])
    assert merged is not None
    assert [(s.label, s.confidence) for s in merged.emotion] == [("happy", 0.75), ("sad", 0.25)]
    assert merged.speech_seconds == pytest.approx(4.0)
    assert merged.features.duration_s == pytest.approx(4.0)
    assert merge_profiles([]) is None


def test_merged_pitch_is_judged_on_all_the_voiced_speech() -> None:
    """Three 1.5 s stretches of one 130 Hz voice: each alone is half "unclear" (under 2 s voiced), together they
    are not; the averaged labels would have stayed half "unclear"."""
    features = VoiceFeatures(duration_s=1.5, f0_median_hz=130.0, f0_std_semitones=2.0, voiced_s=1.0)
    one = pitch_labels(features)
    assert dict(one)["unclear"] == pytest.approx(0.5)
    pitch = tuple(LabelScore(label, c) for label, c in one)
    stretch = _profile("calm", 1.5)
    stretch = VoiceProfile.of({**stretch.dimensions(), "pitch": pitch}, features, 1.5)
    merged = merge_profiles([stretch] * 3)
    assert merged is not None
    assert merged.features.voiced_s == pytest.approx(3.0)
    assert [(s.label, s.confidence) for s in merged.pitch] == [
        (label, round(c, 4)) for label, c in pitch_labels(merged.features)
    ]
    assert "unclear" not in {s.label for s in merged.pitch}
    assert top(merged.emotion) == "calm"  # other dimensions still averaged


def _tiny_onnx(path: Path) -> Path:
    """scores = [mean(x), max(x), -mean(x)]: a real ONNX graph whose answer depends on the audio."""
    x = helper.make_tensor_value_info("waveform", TensorProto.FLOAT, [1, None])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])
    nodes = [
        helper.make_node("ReduceMean", ["waveform"], ["mean"], keepdims=1),
        helper.make_node("ReduceMax", ["waveform"], ["max"], keepdims=1),
        helper.make_node("Neg", ["mean"], ["negmean"]),
        helper.make_node("Concat", ["mean", "max", "negmean"], ["logits"], axis=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_onnx_classifier_replaces_a_dimension(tmp_path: Path) -> None:
    path = _tiny_onnx(tmp_path / "tiny.onnx")
    classifier = OnnxClassifier(path, ["positive", "peaky", "negative"])
    positive = classifier.predict(np.full(SAMPLE_RATE, 2.0, dtype=np.float32))
    negative = classifier.predict(np.full(SAMPLE_RATE, -2.0, dtype=np.float32))
    assert top(positive) in ("positive", "peaky")
    assert top(negative) == "negative"
    assert sum(s.confidence for s in negative) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ModelUnavailable, match="3 scores for 2 labels"):
        OnnxClassifier(path, ["a", "b"]).predict(np.zeros(100, dtype=np.float32))
    with pytest.raises(ModelUnavailable):
        OnnxClassifier(tmp_path / "missing.onnx", ["a"])


def test_a_classifier_may_name_its_dimension_as_the_api_does(tmp_path: Path) -> None:
    # VOXGATE_PROFILE_MODELS keys: the README's dimension names are the API's (vocalStyle).
    classifier = OnnxClassifier(_tiny_onnx(tmp_path / "tiny.onnx"), ["up", "peak", "down"])
    analyzer = ProfileAnalyzer({"vocalStyle": classifier})
    profile = analyzer.analyze(np.full(SAMPLE_RATE, 0.2, dtype=np.float32))
    assert {s.label for s in profile.vocal_style} == {"up", "peak", "down"}
    with pytest.raises(ModelUnavailable, match="unknown voice-profile dimensions"):
        ProfileAnalyzer({"timbre": classifier})


def test_service_uses_the_configured_classifier(tmp_path: Path, settings: Settings, data: Path) -> None:
    path = _tiny_onnx(tmp_path / "tiny.onnx")
    custom = Service(
        settings.model_copy(
            update={"profile_models": {"emotion": ProfileModel(path=path, labels=["up", "peak", "down"])}}
        )
    )
    try:
        audio = decode(data / "en" / "spk1_snt1.wav")
        profile = custom.profile(audio, text="The child almost hurt the small dog.")
    finally:
        custom.close()
    assert {s.label for s in profile.emotion} == {"up", "peak", "down"}
    assert top(profile.language) == "en"


def test_real_speech_end_to_end(service: Service, data: Path) -> None:
    audio = decode(data / "en" / "jfk.flac")
    text = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
    profile = service.profile(audio, text=text)
    dims = profile.dimensions()
    assert set(dims) == {"language", "age", "emotion", "pitch", "vocal_style", "accent"}
    for labels in dims.values():
        confidences = [s.confidence for s in labels]
        assert confidences == sorted(confidences, reverse=True)
        assert all(0.0 <= c <= 1.0 for c in confidences)
    assert top(profile.language) == "en"
    assert profile.language[0].confidence > 0.9
    assert profile.features.f0_median_hz is not None
    # Kennedy's raised, projected oratory voice: high for a man (bench/prosody_norms.py measures ~237 Hz).
    assert 180 < profile.features.f0_median_hz < 280
    assert top(profile.pitch) != "unclear"
    assert top(profile.age) == "unclear"  # nothing here can tell an adult's age
