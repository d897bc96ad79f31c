"""Semantic end-of-turn detection with smart-turn v3.2 (Daily, BSD-2-Clause).

The model reads the sound of the turn so far (intonation, pacing, the words' grammar) and says how likely the
speaker is done, which lets a turn policy end a turn after a short pause when the sentence is complete and wait
longer when it is not. voxgate uses the ONNX file that ships in the pipecat-ai wheel
(``pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx``), found by path: pipecat is never imported.

Input contract (from pipecat's ``LocalSmartTurnAnalyzerV3._predict_endpoint``): the last 8 s of the turn's 16 kHz
audio, left-padded with zeros to exactly 8 s, turned into Whisper's 80-bin log-mel spectrogram with waveform
normalisation (``do_normalize=True``), shape (1, 80, 800); the single output is the probability that the turn is
complete. pipecat feeds the audio from 0.5 s before the VAD's speech start up to the moment the VAD reports the
pause, so the end of the input carries the short silence the VAD needed to notice the pause (0.2 s in pipecat's
recommended setup), not a long one.

The feature code below is a port of pipecat's numpy ``compute_whisper_log_mel_features``
(pipecat/audio/turn/smart_turn/_whisper_features.py, BSD-2-Clause, Copyright (c) 2024-2026 Daily), itself derived
from Hugging Face Transformers' ``WhisperFeatureExtractor`` and ``audio_utils`` (Apache-2.0, Copyright 2022-2023 The
HuggingFace Inc. team and the librosa & torchaudio authors). It reproduces them exactly (float64 STFT and mel
projection); faster-whisper's ``FeatureExtractor`` is not used because it normalises and pads differently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime
from numpy.lib.stride_tricks import sliding_window_view

from voxgate.errors import ModelUnavailable
from voxgate.models.catalog import module_dir
from voxgate.types import SAMPLE_RATE, Audio

__all__ = ["WINDOW_SAMPLES", "TurnDetector", "default_model_path", "log_mel_features", "model_window"]

WINDOW_SECONDS = 8
WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE
"""The model sees exactly this many samples (8 s): the end of the turn, left-padded with zeros."""
_MODEL_PARTS = ("audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")

# Whisper front end: 25 ms Hann window, 10 ms hop, 80 Slaney mel bins over 0-8 kHz.
_N_FFT = 400
_HOP = 160
_N_MELS = 80
_MEL_FLOOR = 1e-10
_NORM_EPS = 1e-7

Features = npt.NDArray[np.float32]


def _hz_to_mel(freq: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    mels = 3.0 * freq / 200.0
    log_region = freq >= 1000.0
    mels[log_region] = 15.0 + np.log(freq[log_region] / 1000.0) * (27.0 / np.log(6.4))
    return mels


def _mel_to_hz(mels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Inverse of :func:`_hz_to_mel`."""
    freq = 200.0 * mels / 3.0
    log_region = mels >= 15.0
    freq[log_region] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mels[log_region] - 15.0))
    return freq


def _mel_filterbank() -> npt.NDArray[np.float64]:
    """Slaney-normalised triangular filters, shape (201 FFT bins, 80 mels): ``power @ filters`` is the mel power."""
    edges = np.array([0.0, SAMPLE_RATE / 2.0])
    mel_lo, mel_hi = _hz_to_mel(edges)
    filter_freqs = _mel_to_hz(np.linspace(mel_lo, mel_hi, _N_MELS + 2))
    fft_freqs = np.linspace(0, SAMPLE_RATE // 2, _N_FFT // 2 + 1)
    slopes = filter_freqs[None, :] - fft_freqs[:, None]
    widths = np.diff(filter_freqs)
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    filters *= 2.0 / (filter_freqs[2:] - filter_freqs[:-2])[None, :]  # equal area per filter
    return filters


def _sparse_filterbank(
    filters: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """The filterbank as (FFT-bin indices, each filter's first position in them, weights), filter after filter.

    Each triangle spans only a few FFT bins (391 non-zero weights of 16,080), so projecting with a gather and
    ``np.add.reduceat`` costs ~1 ms in one thread, where the dense product goes through BLAS's own thread pool and,
    on a busy 2-core server, can wait 10 ms for it. The sums match the dense product to ~1e-16 relative.
    """
    columns = [np.flatnonzero(filters[:, mel]) for mel in range(filters.shape[1])]
    if any(c.size == 0 for c in columns):  # reduceat cannot express an empty filter; none is at 80 mels / 400-FFT
        raise RuntimeError("mel filterbank has an empty filter")
    bins = np.concatenate(columns)
    starts = np.cumsum([0] + [c.size for c in columns[:-1]]).astype(np.intp)
    weights = np.concatenate([filters[c, mel] for mel, c in enumerate(columns)])
    return bins, starts, weights


_MEL_BINS, _MEL_STARTS, _MEL_WEIGHTS = _sparse_filterbank(_mel_filterbank())
_HANN = np.hanning(_N_FFT + 1)[:-1]  # periodic Hann window, as torch.hann_window


def model_window(audio: Audio) -> Audio:
    """The 8 s the model sees: the last :data:`WINDOW_SAMPLES` of ``audio``, left-padded with zeros if shorter."""
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"turn detection expects mono audio (a 1-D array), got shape {samples.shape}")
    if samples.shape[0] >= WINDOW_SAMPLES:
        return samples[-WINDOW_SAMPLES:]
    return np.pad(samples, (WINDOW_SAMPLES - samples.shape[0], 0))


def log_mel_features(window: Audio) -> Features:
    """Whisper log-mel features of an 8 s window (see :func:`model_window`), shape (80, 800), float32.

    Same numbers as transformers' ``WhisperFeatureExtractor(chunk_length=8)`` with ``do_normalize=True`` and as
    pipecat's ``compute_whisper_log_mel_features``: the waveform is normalised to zero mean and unit variance (in
    float32), then a centred (reflect-padded) 400-point STFT with a 160-sample hop gives the power spectrum, which
    is projected on 80 mel bins, floored at 1e-10, log10'd, clamped to 8 decades below its maximum and mapped
    with ``(x + 4) / 4``. The last STFT frame is dropped, leaving 800. Inputs that are not 8 s long are zero-padded
    at the end or cut to their first 8 s, as the reference does.
    """
    x = np.asarray(window, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D window, got shape {x.shape}")
    if x.shape[0] != WINDOW_SAMPLES:
        x = np.pad(x, (0, WINDOW_SAMPLES - x.shape[0])) if x.shape[0] < WINDOW_SAMPLES else x[:WINDOW_SAMPLES]
    x = (x - x.mean()) / np.sqrt(x.var() + _NORM_EPS)
    padded = np.pad(x.astype(np.float64), _N_FFT // 2, mode="reflect")
    frames = sliding_window_view(padded, _N_FFT)[::_HOP]  # (801, 400), a view
    spectrum = np.fft.rfft(frames * _HANN, axis=-1)  # (801, 201)
    power = spectrum.real**2 + spectrum.imag**2
    mel = np.add.reduceat(power[:, _MEL_BINS] * _MEL_WEIGHTS, _MEL_STARTS, axis=1)  # (801, 80)
    log_spec = np.log10(np.maximum(mel, _MEL_FLOOR))[:-1].T  # (80, 800)
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    features: Features = ((log_spec + 4.0) / 4.0).astype(np.float32)
    return features


def default_model_path() -> Path | None:
    """Where the pipecat-ai wheel keeps ``smart-turn-v3.2-cpu.onnx`` (found without importing pipecat); None if
    pipecat-ai is not installed."""
    package = module_dir("pipecat")
    if package is None:
        return None
    return package.joinpath(*_MODEL_PARTS)


class TurnDetector:
    """smart-turn v3.2: the probability that a speaker's turn is complete, from the turn's audio.

    One instance per process, shared by every stream: onnxruntime sessions are safe to ``run`` from many threads,
    and :meth:`predict` keeps no state. The session runs on one intra-op and one inter-op thread, so one call costs
    one core (tens of ms on a server CPU) and parallel streams scale across cores.
    """

    def __init__(self, session: onnxruntime.InferenceSession, path: Path) -> None:
        """Wrap an already created session (use :meth:`load` to make one)."""
        self._session = session
        self._input = session.get_inputs()[0].name
        self.path = path

    @classmethod
    def load(cls, path: Path | None = None) -> TurnDetector:
        """Load the model from ``path``, or by default from the pipecat-ai wheel's ``smart-turn-v3.2-cpu.onnx``.

        Raises :class:`~voxgate.errors.ModelUnavailable` when the file is missing or onnxruntime cannot load it.
        """
        model_path = path if path is not None else default_model_path()
        if model_path is None:
            raise ModelUnavailable(
                "smart-turn model not found: it ships inside the pipecat-ai package "
                f"({'/'.join(_MODEL_PARTS)}), which is not installed (pip install 'pipecat-ai>=1.14,<2')"
            )
        if not model_path.is_file():
            raise ModelUnavailable(
                f"smart-turn model not found at {model_path}: reinstall pipecat-ai (>=1.14, which ships "
                "smart-turn-v3.2-cpu.onnx) or pass the path of a smart-turn v3 ONNX file"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own (unexported) exception types
            raise ModelUnavailable(f"could not load the smart-turn model from {model_path}: {exc}") from exc
        return cls(session, model_path)

    def predict(self, audio: Audio) -> float:
        """Probability in [0, 1] that the turn is complete, given the turn's audio so far (mono float32, 16 kHz).

        Pass the turn from shortly before its speech started up to the pause being judged (a few hundred ms of
        trailing silence at most); only the last 8 s are used. Raises ``ValueError`` on empty or non-1-D audio.
        """
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim == 1 and samples.shape[0] == 0:
            raise ValueError("turn detection needs some audio, got none")
        features = log_mel_features(model_window(samples))
        outputs = self._session.run(None, {self._input: features[None]})
        return float(np.asarray(outputs[0]).reshape(-1)[0])
