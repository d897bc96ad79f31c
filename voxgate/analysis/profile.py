"""Voice profile: who is speaking and how — language, age, gender, emotion, pitch, vocal style, accent — with the
measurements.

* **language** — Whisper language identification over the speech so far (the caller supplies the scores).
* **emotion**, **gender**, **age** — trained heads (:mod:`voxgate.analysis.heads`): small calibrated classifiers over
  what voxgate's own encoders already hear (the Whisper encoder's pooled hidden states, the speaker encoder's
  d-vector) and the prosodic measurements, trained and measured on speakers they never saw by
  ``tools/train_profile.py`` (scores in ``docs/profile-model-card.md``). Below :data:`MIN_VOICED_FOR_HEADS` seconds
  of voiced speech they answer ``unclear``, and noise moves their confidence to ``unclear`` (each head's reliability
  curve over the measured SNR). ``age``: a median F0 above adult ranges still suggests a child (``kid``,
  a rule: no child speech to train on); the head separates ``young`` (teens, twenties) from ``adult`` (thirties to
  fifties); ``old`` is never emitted (too few old speakers to train or measure it).
* **pitch**, **vocalStyle** — signal processing (:mod:`voxgate.analysis.prosody`, Praat via parselmouth): median F0,
  F0 range, loudness, rate, pauses, voice quality, mapped to labels with documented thresholds.
* **accent** — from language-ID posteriors: speech in one language whose LID spreads probability onto another
  language is a known (weak) cue of a non-native accent; otherwise ``unclear``. No accent head is trained: no accent
  but US English has enough speakers in the labelled data.

Any dimension can instead be served by a user's own ONNX classifier (:class:`OnnxClassifier`, configured with a path
and its label list), e.g. a wav2vec2 emotion or age model exported to ONNX; any head can be left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime

from voxgate.analysis.heads import Head, prosody_vector
from voxgate.analysis.prosody import PITCH_LABELS, extract_features, pitch_labels, vocal_style_labels
from voxgate.errors import ModelUnavailable
from voxgate.models.catalog import WHISPER_LANGUAGE_NAMES
from voxgate.types import DIMENSIONS, Audio, Labels, LabelScore, LanguageScore, VoiceFeatures, VoiceProfile, Word

# DIMENSIONS, LabelScore and VoiceProfile are core types (voxgate.types); they stay importable from here.
__all__ = [
    "AGE_LABELS",
    "DIMENSIONS",
    "EMOTION_LABELS",
    "GENDER_LABELS",
    "MIN_VOICED_FOR_HEADS",
    "LabelScore",
    "OnnxClassifier",
    "ProfileAnalyzer",
    "ProfileSmoother",
    "VoiceProfile",
    "merge_profiles",
]

AGE_LABELS = ("kid", "young", "adult", "old", "unclear")
GENDER_LABELS = ("male", "female", "unclear")
EMOTION_LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgusted", "surprised", "unclear")
MIN_VOICED_FOR_LANGUAGE = 0.5
"""Seconds of voiced speech below which no language is claimed (silence and noise get none)."""
MIN_VOICED_FOR_HEADS = 0.75
"""Seconds of voiced speech below which emotion, gender and age answer ``unclear``: the heads were trained and
measured on clips holding 0.8 to 3.5 s of voiced speech (median 1.2 s in RAVDESS, 2 s in Common Voice)."""

Hear = Callable[[Audio, frozenset[str]], Mapping[str, npt.NDArray[np.floating]]]
"""What the caller's encoders hear in a clip: the named inputs of :data:`voxgate.analysis.heads.INPUTS` asked for
(``prosody`` excepted: the analyzer measures it)."""


def _language_name(code: str) -> str:
    """``cy`` -> ``Welsh``, ``ht`` -> ``Haitian Creole`` (any of Whisper's languages; an unknown code as it is)."""
    return WHISPER_LANGUAGE_NAMES[code].title() if code in WHISPER_LANGUAGE_NAMES else code


def _sorted(scores: Mapping[str, float]) -> Labels:
    return tuple(LabelScore(k, round(float(v), 4)) for k, v in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])))


_CONFIG_NAMES = {"vocalStyle": "vocal_style"}


class OnnxClassifier:
    """A user's ONNX audio classifier for one dimension: 16 kHz float32 waveform ``[1, samples]`` in, one score per
    label out (logits are passed through a softmax; outputs that already sum to 1 are kept)."""

    def __init__(self, path: Path, labels: Sequence[str]) -> None:
        if not labels:
            raise ModelUnavailable(f"{path}: a classifier needs its list of labels")
        try:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.log_severity_level = 3
            self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception types are not exported
            raise ModelUnavailable(f"could not load the ONNX classifier {path}: {exc}") from exc
        self._input = self._session.get_inputs()[0].name
        self.labels = tuple(labels)
        self.path = path

    def predict(self, audio: Audio) -> Labels:
        waveform = np.asarray(audio, dtype=np.float32).reshape(1, -1)
        output = np.asarray(self._session.run(None, {self._input: waveform})[0], dtype=np.float64).reshape(-1)
        if output.shape[0] != len(self.labels):
            raise ModelUnavailable(
                f"{self.path} returned {output.shape[0]} scores for {len(self.labels)} labels {list(self.labels)}"
            )
        if not (np.all(output >= 0) and abs(output.sum() - 1.0) < 1e-3):
            exp = np.exp(output - output.max())
            output = exp / exp.sum()
        return _sorted(dict(zip(self.labels, output.tolist(), strict=True)))


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _with_reliability(
    head: Head, parts: Mapping[str, npt.NDArray[np.floating]], features: VoiceFeatures
) -> dict[str, float]:
    """The head's calibrated scores, the share noise takes from them given to ``unclear``."""
    reliability = head.reliability(features.snr_db)
    scores = {k: reliability * v for k, v in head.predict(parts).items()}
    return {**scores, "unclear": 1.0 - reliability} if reliability < 1.0 else scores


class ProfileAnalyzer:
    """Stateless: one instance serves every stream and file. ``overrides`` maps a dimension to a user's classifier;
    ``heads`` are the trained heads in use (by dimension: ``emotion``, ``gender``, ``age``); a dimension with
    neither answers ``unclear`` (``age`` keeps its ``kid`` rule)."""

    def __init__(
        self, overrides: Mapping[str, OnnxClassifier] | None = None, heads: Mapping[str, Head] | None = None
    ) -> None:
        # VOXGATE_PROFILE_MODELS may name a dimension as the API spells it (``vocalStyle``) or as voxgate does.
        self.overrides = {_CONFIG_NAMES.get(k, k): v for k, v in (overrides or {}).items()}
        unknown = set(self.overrides) - set(DIMENSIONS)
        if unknown:
            raise ModelUnavailable(f"unknown voice-profile dimensions {sorted(unknown)}; known: {list(DIMENSIONS)}")
        self.heads = {k: v for k, v in (heads or {}).items() if k not in self.overrides}

    @property
    def needs(self) -> frozenset[str]:
        """The encoders' outputs the heads in use read (``prosody`` excepted)."""
        return frozenset(i for head in self.heads.values() for i in head.inputs if i != "prosody")

    def analyze(
        self,
        audio: Audio,
        *,
        words: Sequence[Word] = (),
        text: str = "",
        language: Sequence[LanguageScore] = (),
        identify: Callable[[Audio], Sequence[LanguageScore]] | None = None,
        spoken_language: str | None = None,
        hear: Hear | None = None,
    ) -> VoiceProfile:
        """Profile ``audio`` (one speaker's speech). ``words``/``text`` are its transcript, ``language`` the
        language-ID scores over it — or ``identify`` computes them, only when there is enough voiced speech to
        identify a language from — and ``spoken_language`` is the language the transcript is in when known.
        ``hear`` gives the heads their encoder inputs, asked only when there is enough voiced speech for the heads;
        without it the heads' dimensions answer ``unclear``."""
        features = extract_features(audio, words)
        voiced = features.voiced_s or 0.0
        if identify is not None and voiced >= MIN_VOICED_FOR_LANGUAGE:
            language = tuple(identify(audio))
        spoken = spoken_language or (language[0].code if language else None)
        parts: dict[str, npt.NDArray[np.floating]] = {}
        if self.heads and hear is not None and voiced >= MIN_VOICED_FOR_HEADS:
            parts = {**hear(audio, self.needs), "prosody": prosody_vector(features)}
        dims: dict[str, Labels] = {
            "language": _sorted({s.code: s.probability for s in language}) if language else (),
            "age": self._age(features, parts),
            "gender": self._head("gender", parts, features),
            "emotion": self._head("emotion", parts, features),
            "pitch": _sorted(dict(pitch_labels(features))),
            "vocal_style": _sorted(dict(vocal_style_labels(features, language=spoken))),
            "accent": self._accent(language, spoken),
        }
        for dimension, classifier in self.overrides.items():
            dims[dimension] = classifier.predict(audio)
        return VoiceProfile.of(dims, features, float(features.speech_s or 0.0))

    def _head(self, name: str, parts: Mapping[str, npt.NDArray[np.floating]], features: VoiceFeatures) -> Labels:
        head = self.heads.get(name)
        if head is None or not parts:
            return (LabelScore("unclear", 1.0),)
        return _sorted(_with_reliability(head, parts, features))

    def _age(self, features: VoiceFeatures, parts: Mapping[str, npt.NDArray[np.floating]]) -> Labels:
        f0 = features.f0_median_hz
        voiced = features.voiced_s or 0.0
        # Children's F0 sits around 250-400 Hz, above adult women's typical 165-255 Hz: only a median well above
        # 260 Hz counts as evidence, and only with a second of voiced speech behind it.
        kid = 0.0 if f0 is None else 0.7 * _logistic((f0 - 280.0) / 20.0) * min(1.0, voiced)
        head = self.heads.get("age")
        if head is None or not parts:
            return _sorted({"kid": kid, "unclear": 1.0 - kid})
        scores = _with_reliability(head, parts, features)
        return _sorted({"kid": kid, **{k: (1.0 - kid) * v for k, v in scores.items()}})

    @staticmethod
    def _accent(language: Sequence[LanguageScore], spoken: str | None) -> Labels:
        if not language or spoken is None:
            return (LabelScore("unclear", 1.0),)
        own = next((s.probability for s in language if s.code == spoken), 0.0)
        others = [s for s in language if s.code != spoken and s.probability >= 0.05]
        scores: dict[str, float] = {}
        name = _language_name(spoken)
        for s in others[:3]:
            # Scaled down: LID confusion also comes from noise, code-switching and short audio.
            scores[f"{_language_name(s.code)}-influenced {name}"] = 0.6 * s.probability / (own + s.probability)
        if own >= 0.9 and not scores:
            scores[f"native-like {name}"] = 0.3 * (own - 0.9) / 0.1
        scores["unclear"] = max(0.0, 1.0 - sum(scores.values()))
        return _sorted(scores)


@dataclass
class ProfileSmoother:
    """Exponential smoothing of label confidences across a stream, weighted by speech seconds.

    ``half_life`` seconds of new speech halve the weight of what came before, so the profile settles as evidence
    accumulates yet follows a change of speaker or mood within a few turns. Features are not smoothed: the latest
    measurements are reported as they are.
    """

    half_life: float = 10.0
    _state: dict[str, dict[str, float]] = field(default_factory=dict)

    def update(self, profile: VoiceProfile) -> VoiceProfile:
        """Fold a finished stretch of speech (a turn) into the stream's profile and return the result."""
        return self._merge(profile, commit=True)

    def peek(self, profile: VoiceProfile) -> VoiceProfile:
        """The stream's profile if ``profile`` (speech still going on) were folded in; nothing is kept."""
        return self._merge(profile, commit=False)

    def _merge(self, profile: VoiceProfile, *, commit: bool) -> VoiceProfile:
        seconds = max(profile.speech_seconds, 0.1)
        keep = 0.5 ** (seconds / self.half_life)
        smoothed: dict[str, Labels] = {}
        for dimension, labels in profile.dimensions().items():
            previous = self._state.get(dimension)
            current = {s.label: s.confidence for s in labels}
            if previous is None or not labels:
                merged = current
            else:
                merged = {k: keep * previous.get(k, 0.0) + (1 - keep) * current.get(k, 0.0)
                          for k in set(previous) | set(current)}  # fmt: skip
            if commit:
                self._state[dimension] = merged
            smoothed[dimension] = _sorted(merged)
        return VoiceProfile.of(smoothed, profile.features, profile.speech_seconds)


def load_overrides(config: Mapping[str, Any]) -> dict[str, OnnxClassifier]:
    """``{"emotion": {"path": "...onnx", "labels": [...]}, ...}`` → classifiers."""
    return {dim: OnnxClassifier(Path(spec["path"]), list(spec["labels"])) for dim, spec in config.items()}


def merge_profiles(profiles: Sequence[VoiceProfile]) -> VoiceProfile | None:
    """One profile for several stretches of speech (a file's segments, a speaker's chunks): confidences and
    measurements averaged, weighted by each stretch's speech seconds (a weighted mean of medians, not a median over
    all frames). Pitch, a measurement, is judged again on the merged median F0 and all the voiced seconds together:
    averaging the stretches' pitch labels would keep each short stretch's ``unclear`` share however much speech
    there is in all (unless a pitch classifier of your own gave other labels)."""
    if not profiles:
        return None
    weights = [max(p.speech_seconds, 1e-3) for p in profiles]
    total = sum(weights)
    merged: dict[str, Labels] = {}
    for dimension in DIMENSIONS:
        scores: dict[str, float] = {}
        for p, w in zip(profiles, weights, strict=True):
            for s in p.dimensions()[dimension]:
                scores[s.label] = scores.get(s.label, 0.0) + s.confidence * w / total
        merged[dimension] = _sorted(scores)
    values: dict[str, Any] = {}
    for f in fields(VoiceFeatures):
        pairs = [(getattr(p.features, f.name), w) for p, w in zip(profiles, weights, strict=True)]
        known = [(v, w) for v, w in pairs if v is not None]
        if f.name in ("duration_s", "word_count"):
            values[f.name] = sum(v for v, _ in known)
        elif f.name in ("speech_s", "voiced_s"):
            values[f.name] = sum(v for v, _ in known) if known else None
        else:
            values[f.name] = sum(v * w for v, w in known) / sum(w for _, w in known) if known else None
    features = VoiceFeatures(**values)
    if {s.label for s in merged["pitch"]} <= set(PITCH_LABELS):
        merged["pitch"] = _sorted(dict(pitch_labels(features)))
    return VoiceProfile.of(merged, features, total)
