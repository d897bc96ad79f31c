"""Voice profile: who is speaking and how — language, emotion, age, pitch, vocal style, accent — with the measurements.

No pretrained emotion, age or accent model ships in any package voxgate can install, and the real speech available
to develop with carries no emotion, age or accent labels, so nothing could be trained or validated here. Each
dimension therefore uses the most honest method available, and says how sure it is:

* **language** — Whisper language identification over the speech so far (the caller supplies the scores).
* **pitch**, **vocalStyle** — signal processing (:mod:`voxgate.analysis.prosody`, Praat via parselmouth): median F0,
  F0 range, loudness, rate, pauses, voice quality, mapped to labels with documented thresholds.
* **emotion** — a documented fusion on the valence/arousal circumplex (Russell 1980): *arousal* from acoustic cues
  (F0 variability, loudness, articulation rate, each scored against conversational-speech norms), *valence* from the
  words (VADER, a validated lexicon-and-rules sentiment model, English only). Each emotion label has a prototype
  point; its score falls off with distance from the measured point. Evidence strength (how many words, how much
  voiced speech) decides how far the distribution moves away from ``neutral``; confidence never exceeds
  :data:`EMOTION_MAX_CONFIDENCE`, because the mapping is unvalidated.
* **age** — only a strong acoustic cue is used: a median F0 above adult ranges suggests a child (``kid``);
  otherwise ``unclear`` dominates. Adult / young / old are not separable from these cues with any reliability, so
  they are never emitted with more than a token confidence.
* **accent** — from language-ID posteriors: speech in one language whose LID spreads probability onto another
  language is a known (weak) cue of a non-native accent; otherwise ``unclear``.

Any dimension can instead be served by a user's own ONNX classifier (:class:`OnnxClassifier`, configured with a path
and its label list), e.g. a wav2vec2 emotion or age model exported to ONNX.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from voxgate.analysis.prosody import PITCH_LABELS, extract_features, pitch_labels, vocal_style_labels
from voxgate.errors import ModelUnavailable
from voxgate.models.catalog import WHISPER_LANGUAGE_NAMES
from voxgate.types import DIMENSIONS, Audio, Labels, LabelScore, LanguageScore, VoiceFeatures, VoiceProfile, Word

# DIMENSIONS, LabelScore and VoiceProfile are core types (voxgate.types); they stay importable from here.
__all__ = [
    "AGE_LABELS",
    "DIMENSIONS",
    "EMOTION_LABELS",
    "LabelScore",
    "OnnxClassifier",
    "ProfileAnalyzer",
    "ProfileSmoother",
    "VoiceProfile",
    "merge_profiles",
]

AGE_LABELS = ("kid", "young", "adult", "old", "unclear")
EMOTION_LABELS = ("neutral", "calm", "tender", "happy", "surprised", "angry", "fearful", "disgusted", "sad")
EMOTION_MAX_CONFIDENCE = 0.6
MIN_VOICED_FOR_LANGUAGE = 0.5
"""Seconds of voiced speech below which no language is claimed (silence and noise get none)."""

# (valence, arousal) prototypes on the circumplex, each in [-1, 1]. Placement follows Russell (1980) and
# Scherer (2005) as commonly drawn: happy is pleasant and somewhat activated, calm pleasant and deactivated, etc.
_EMOTION_POINTS: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "calm": (0.35, -0.6),
    "tender": (0.6, -0.3),
    "happy": (0.75, 0.45),
    "surprised": (0.2, 0.85),
    "angry": (-0.65, 0.75),
    "fearful": (-0.6, 0.55),
    "disgusted": (-0.7, 0.2),
    "sad": (-0.65, -0.45),
}
_EMOTION_WIDTH = 0.45

# Conversational-speech norms used to score arousal cues (mean, spread): F0 standard deviation in semitones over an
# utterance, speech loudness in dBFS for a reasonably gained microphone, articulation rate in words per minute (the
# English clips in shared/data measure a median of 199 wpm; bench/prosody_norms.py).
_AROUSAL_NORMS = {"f0_std_semitones": (2.5, 1.2), "loudness_dbfs": (-24.0, 6.0), "articulation_rate_wpm": (195.0, 40.0)}
_AROUSAL_WEIGHTS = {"f0_std_semitones": 0.5, "loudness_dbfs": 0.2, "articulation_rate_wpm": 0.3}


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


def _arousal(features: VoiceFeatures) -> tuple[float, float]:
    """(arousal in [-1, 1], evidence weight in [0, 1]) from whichever acoustic cues were measurable."""
    total, weight = 0.0, 0.0
    for name, (mean, spread) in _AROUSAL_NORMS.items():
        value = getattr(features, name)
        if value is None:
            continue
        w = _AROUSAL_WEIGHTS[name]
        total += w * (value - mean) / spread
        weight += w
    if weight == 0:
        return 0.0, 0.0
    return math.tanh(total / weight / 1.5), weight * min(1.0, (features.voiced_s or 0.0) / 2.0)


class ProfileAnalyzer:
    """Stateless: one instance serves every stream and file. ``overrides`` maps a dimension to a user's classifier."""

    def __init__(self, overrides: Mapping[str, OnnxClassifier] | None = None) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._sentiment = SentimentIntensityAnalyzer()
        # VOXGATE_PROFILE_MODELS may name a dimension as the API spells it (``vocalStyle``) or as voxgate does.
        self.overrides = {_CONFIG_NAMES.get(k, k): v for k, v in (overrides or {}).items()}
        unknown = set(self.overrides) - set(DIMENSIONS)
        if unknown:
            raise ModelUnavailable(f"unknown voice-profile dimensions {sorted(unknown)}; known: {list(DIMENSIONS)}")

    def analyze(
        self,
        audio: Audio,
        *,
        words: Sequence[Word] = (),
        text: str = "",
        language: Sequence[LanguageScore] = (),
        identify: Callable[[Audio], Sequence[LanguageScore]] | None = None,
        spoken_language: str | None = None,
    ) -> VoiceProfile:
        """Profile ``audio`` (one speaker's speech). ``words``/``text`` are its transcript, ``language`` the
        language-ID scores over it — or ``identify`` computes them, only when there is enough voiced speech to
        identify a language from — and ``spoken_language`` is the language the transcript is in when known."""
        features = extract_features(audio, words)
        if identify is not None and (features.voiced_s or 0.0) >= MIN_VOICED_FOR_LANGUAGE:
            language = tuple(identify(audio))
        spoken = spoken_language or (language[0].code if language else None)
        dims: dict[str, Labels] = {
            "language": _sorted({s.code: s.probability for s in language}) if language else (),
            "age": self._age(features),
            "emotion": self._emotion(features, text, spoken),
            "pitch": _sorted(dict(pitch_labels(features))),
            "vocal_style": _sorted(dict(vocal_style_labels(features, language=spoken))),
            "accent": self._accent(language, spoken),
        }
        for dimension, classifier in self.overrides.items():
            dims[dimension] = classifier.predict(audio)
        return VoiceProfile.of(dims, features, float(features.speech_s or 0.0))

    def _emotion(self, features: VoiceFeatures, text: str, language: str | None) -> Labels:
        arousal, arousal_weight = _arousal(features)
        valence, valence_weight = 0.0, 0.0
        words = len(text.split())
        if text.strip() and (language in (None, "en")):
            valence = float(self._sentiment.polarity_scores(text)["compound"])
            valence_weight = min(1.0, words / 12)
        # Words and voice together may move the distribution all the way; the voice alone (no English words) at most
        # 0.6 of the way, since arousal cannot tell happy from angry.
        evidence = min(1.0, 0.6 * valence_weight + 0.4 * arousal_weight) if valence_weight > 0 else 0.6 * arousal_weight
        raw = {
            label: math.exp(-((valence - v) ** 2 + (arousal - a) ** 2) / (2 * _EMOTION_WIDTH**2))
            for label, (v, a) in _EMOTION_POINTS.items()
        }
        total = sum(raw.values())
        # With no evidence everything collapses onto "neutral"; with full evidence the circumplex decides, and no
        # label may claim more than EMOTION_MAX_CONFIDENCE.
        prior = {label: (1.0 if label == "neutral" else 0.0) for label in _EMOTION_POINTS}
        mixed = {label: evidence * raw[label] / total + (1 - evidence) * prior[label] for label in raw}
        top = max(mixed.values())
        if top > EMOTION_MAX_CONFIDENCE:
            scale = EMOTION_MAX_CONFIDENCE / top
            mixed = {k: v * scale for k, v in mixed.items()}
        return _sorted(mixed)

    @staticmethod
    def _age(features: VoiceFeatures) -> Labels:
        f0 = features.f0_median_hz
        voiced = features.voiced_s or 0.0
        # Children's F0 sits around 250-400 Hz, above adult women's typical 165-255 Hz: only a median well above
        # 260 Hz counts as evidence, and only with a second of voiced speech behind it.
        kid = 0.0 if f0 is None else 0.7 * _logistic((f0 - 280.0) / 20.0) * min(1.0, voiced)
        token = (1.0 - kid) * 0.05
        return _sorted({"kid": kid, "young": token, "adult": token, "old": token, "unclear": 1.0 - kid - 3 * token})

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
