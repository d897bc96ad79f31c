"""The voice profile's trained heads: small classifiers over what voxgate's own encoders hear (the Whisper encoder's
pooled hidden states, the speaker encoder's d-vector) and the prosodic measurements.

Each head is one ``.npz`` file in ``voxgate/analysis/data/profile_heads/`` written by ``tools/train_profile.py``
(data, folds and scores in ``docs/profile-model-card.md``): a standardiser, a linear layer (multinomial logistic
regression), a temperature fitted on held-out speakers, so that a label's confidence is about how often it is
right, and a reliability curve over the measured SNR, so that noise moves confidence to ``unclear``. Inference is
numpy only: a matrix-vector product and a softmax.

``emotion.npz`` is trained on RAVDESS and carries its licence, CC BY-NC-SA 4.0 (non-commercial): it is kept apart
from the other heads so it can be left out (``VOXGATE_PROFILE_HEADS``) or replaced by your own classifier
(``VOXGATE_PROFILE_MODELS``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxgate.errors import ModelUnavailable
from voxgate.types import VoiceFeatures

__all__ = ["HEADS", "HEADS_DIR", "INPUTS", "PROSODY_FEATURES", "Head", "load_heads", "prosody_vector"]

HEADS_DIR = Path(__file__).resolve().parent / "data" / "profile_heads"
HEADS = ("emotion", "gender", "age")
"""The dimensions a trained head may serve."""

PROSODY_FEATURES = (
    "f0_median_hz",
    "f0_p10_hz",
    "f0_p90_hz",
    "f0_range_semitones",
    "f0_std_semitones",
    "loudness_range_db",
    "hnr_db",
    "jitter_local",
    "shimmer_local",
    "voiced_ratio",
)
"""Prosodic measurements a head may take beside the embedding (a head trained with them says so)."""

FloatArray = npt.NDArray[np.float64]


def prosody_vector(features: VoiceFeatures) -> FloatArray:
    """:data:`PROSODY_FEATURES` of ``features`` as a vector, F0 as log2 Hz; NaN where not measured."""
    values: list[float] = []
    for name in PROSODY_FEATURES:
        value = getattr(features, name)
        if value is None:
            values.append(math.nan)
        elif name.startswith("f0_") and name.endswith("_hz"):
            values.append(math.log2(max(float(value), 1.0)))
        else:
            values.append(float(value))
    return np.asarray(values, dtype=np.float64)


INPUTS = ("whisper/base", "whisper/tiny.en", "speaker", "prosody")
"""What a head may read, in the order its input vector joins them: a Whisper encoder's pooled hidden states
(:meth:`voxgate.engines.whisper.WhisperEngine.listen`), the speaker encoder's d-vector
(:class:`voxgate.analysis.speaker.SpeakerEncoder`), the prosodic measurements (:func:`prosody_vector`)."""


@dataclass(frozen=True)
class Head:
    """One trained classifier: ``labels``, the ``inputs`` it reads (of :data:`INPUTS`), and its weights."""

    name: str
    labels: tuple[str, ...]
    inputs: tuple[str, ...]
    mean: FloatArray
    scale: FloatArray
    weights: FloatArray
    bias: FloatArray
    temperature: float
    path: Path
    reliability_knots_db: FloatArray = field(default_factory=lambda: np.zeros(0))
    """Measured SNRs (:attr:`voxgate.types.VoiceFeatures.snr_db`, increasing) at which :attr:`reliability` is given;
    empty: the head keeps its confidence whatever the noise."""
    reliability_values: FloatArray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def load(cls, path: Path) -> Head:
        try:
            with np.load(path, allow_pickle=False) as z:
                head = cls(
                    name=str(z["name"]),
                    labels=tuple(str(x) for x in z["labels"]),
                    inputs=tuple(str(x) for x in z["inputs"]),
                    mean=z["mean"].astype(np.float64),
                    scale=z["scale"].astype(np.float64),
                    weights=z["weights"].astype(np.float64),
                    bias=z["bias"].astype(np.float64),
                    temperature=float(z["temperature"]),
                    path=path,
                    **(
                        {
                            "reliability_knots_db": z["reliability_knots_db"].astype(np.float64),
                            "reliability_values": z["reliability"].astype(np.float64),
                        }
                        if "reliability" in z.files
                        else {}
                    ),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ModelUnavailable(f"could not load the voice-profile head {path}: {exc}") from exc
        unknown = set(head.inputs) - set(INPUTS)
        if unknown:
            raise ModelUnavailable(f"{path} reads unknown inputs {sorted(unknown)}; known: {list(INPUTS)}")
        return head

    @property
    def size(self) -> int:
        """Width of the input vector."""
        return int(self.mean.shape[0])

    def predict(self, parts: Mapping[str, npt.NDArray[np.floating]]) -> dict[str, float]:
        """Calibrated probability of each label, from ``parts`` (each of the head's :attr:`inputs` by name). A
        measurement that is NaN (not measurable in this audio) counts as the training average."""
        missing = [i for i in self.inputs if i not in parts]
        if missing:
            raise ModelUnavailable(f"{self.path} needs {missing}")
        x = np.concatenate([np.asarray(parts[i], dtype=np.float64).reshape(-1) for i in self.inputs])
        if x.shape[0] != self.size:
            raise ModelUnavailable(f"{self.path} expects {self.size} inputs, got {x.shape[0]} ({self.inputs})")
        z = np.where(np.isnan(x), 0.0, (x - self.mean) / self.scale)
        logits = (self.weights @ z + self.bias) / self.temperature
        exp = np.exp(logits - logits.max())
        p = exp / exp.sum()
        return {label: float(v) for label, v in zip(self.labels, p, strict=True)}

    def reliability(self, snr_db: float | None) -> float:
        """The share of the head's confidence that audio with this measured SNR leaves it (the rest is ``unclear``):
        a non-decreasing curve over the measured SNR fitted on held-out speakers with noise added
        (``tools/train_profile.py``), so that the confidence left stays about how often the label is right. 1 without
        a curve or a measure."""
        if snr_db is None or not len(self.reliability_values) or math.isnan(snr_db):
            return 1.0
        return float(np.interp(snr_db, self.reliability_knots_db, self.reliability_values))


def load_heads(names: Iterable[str] = HEADS, directory: Path = HEADS_DIR) -> dict[str, Head]:
    """The shipped heads named in ``names`` (each from ``<directory>/<name>.npz``)."""
    unknown = set(names) - set(HEADS)
    if unknown:
        raise ModelUnavailable(f"unknown voice-profile heads {sorted(unknown)}; known: {list(HEADS)}")
    return {name: Head.load(directory / f"{name}.npz") for name in names}
