"""Speaker embeddings (d-vectors) with numpy only: a port of Resemblyzer's GE2E speaker encoder.

Resemblyzer (https://github.com/resemble-ai/Resemblyzer, Apache-2.0, Copyright 2019 Resemble.AI; model by Corentin
Jemine) maps speech to a 256-d unit vector whose cosine similarity to another is high for the same voice. Its weights
ship here as ``data/speaker_encoder.npz`` (exported from the 0.1.4 wheel's ``pretrained.pt`` by
``tools/export_speaker_encoder.py``; provenance and checksums in ``data/NOTICE``).

Each clip goes through what Resemblyzer does to one *partial utterance*:

1. volume normalisation to -30 dBFS, only ever raising the level (``normalize_volume(wav, -30, increase_only=True)``
   in its ``preprocess_wav``). Its webrtcvad silence trimming is *not* done: the caller picks the speech;
2. a 40-band mel power spectrogram, not log: ``librosa.feature.melspectrogram(y, sr=16000, n_fft=400,
   hop_length=160, n_mels=40)`` (periodic Hann window, zero-padded centred frames, Slaney mel filters with Slaney
   area normalisation, power 2), re-implemented here so librosa is not needed;
3. a 3-layer LSTM (40 -> 256) whose last layer's hidden state after the clip's last frame goes through a linear layer
   (256 -> 256), a ReLU and L2 normalisation.

The model was trained on 1.6 s partials (160 frames). Longer clips are accepted and run through the LSTM as they are,
but Resemblyzer itself embeds a long utterance as the normalised mean of 1.6 s windows taken every ~0.77 s, and that
is the better way to use :meth:`SpeakerEncoder.embed` on long speech too.

``tools/check_speaker_encoder_parity.py`` checks the mel spectrogram against librosa and the embeddings against
Resemblyzer's torch model.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxgate.errors import ModelUnavailable
from voxgate.types import SAMPLE_RATE, Audio

__all__ = [
    "MIN_SAMPLES",
    "N_MELS",
    "SpeakerEncoder",
    "default_weights_path",
    "mel_filters",
    "mel_spectrogram",
    "normalize_volume",
    "unit_vectors",
]

N_FFT = 400
"""25 ms analysis window."""
HOP_LENGTH = 160
"""10 ms between frames."""
N_MELS = 40
TARGET_DBFS = -30.0
MIN_SAMPLES = SAMPLE_RATE // 5
"""The shortest clip :meth:`SpeakerEncoder.embed` accepts: 0.2 s (21 frames)."""
_HIDDEN = 256
_LAYERS = 3
_WEIGHTS_FILE = "speaker_encoder.npz"
_PROJECTION_BLOCK = 1 << 24
"""Input projections are computed for as many time steps at once as fit in this many floats (64 MiB): all of them for
a batch of 40 clips of 4 s, in blocks for long audio."""

Array = npt.NDArray[np.float32]


def default_weights_path() -> Path:
    """The packaged weights: ``voxgate/analysis/data/speaker_encoder.npz``."""
    return Path(__file__).resolve().parent / "data" / _WEIGHTS_FILE


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale (librosa ``hz_to_mel(htk=False)``): linear below 1 kHz, logarithmic above."""
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mels = hz / f_sp
    log_part = hz >= min_log_hz
    mels[log_part] = min_log_mel + np.log(hz[log_part] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The inverse of :func:`_hz_to_mel` (librosa ``mel_to_hz(htk=False)``)."""
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    hz = f_sp * mels
    log_part = mels >= min_log_mel
    hz[log_part] = min_log_hz * np.exp(logstep * (mels[log_part] - min_log_mel))
    return hz


@functools.cache
def mel_filters() -> Array:
    """The (N_MELS, N_FFT // 2 + 1) filterbank ``librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)`` returns:
    triangles between Slaney-mel-spaced edges from 0 Hz to 8 kHz, each scaled to unit area (norm="slaney")."""
    fft_freqs = np.fft.rfftfreq(N_FFT, d=1.0 / SAMPLE_RATE)
    edges_mel = np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([SAMPLE_RATE / 2]))[0], N_MELS + 2)
    edges = _mel_to_hz(edges_mel)
    widths = np.diff(edges)
    ramps: npt.NDArray[np.float64] = np.subtract.outer(edges, fft_freqs)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    weights.setflags(write=False)
    return weights


@functools.cache
def _window() -> npt.NDArray[np.float64]:
    """Periodic Hann window of N_FFT samples (scipy ``get_window("hann", 400, fftbins=True)``)."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    window.setflags(write=False)
    return window


def normalize_volume(audio: Audio) -> Audio:
    """``audio`` scaled up to -30 dBFS RMS, or unchanged if it is already louder (or all zeros)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms == 0.0:
        return audio
    dbfs_change = TARGET_DBFS - 20.0 * np.log10(rms)
    if dbfs_change < 0:
        return audio
    return audio * np.float32(10.0 ** (dbfs_change / 20.0))


def _frames(audio: Audio) -> Array:
    """The (frames, N_FFT) centred analysis frames of ``audio`` (zero-padded by N_FFT // 2 on each side)."""
    padded = np.pad(audio, N_FFT // 2)
    return np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH]


def _mel_from_frames(frames: Array) -> Array:
    # The FFT runs in float64, as librosa's does (and numpy's float64 FFT is the faster one); the filterbank in float32.
    spectrum = np.fft.rfft(frames * _window(), axis=-1)
    power = (np.square(spectrum.real) + np.square(spectrum.imag)).astype(np.float32)
    mel: Array = power @ mel_filters().T
    return mel


def mel_spectrogram(audio: Audio) -> Array:
    """The (1 + len(audio) // 160, 40) mel power spectrogram of 16 kHz ``audio``, time first, as the encoder reads
    it: ``librosa.feature.melspectrogram(y=audio, sr=16000, n_fft=400, hop_length=160, n_mels=40).T``. Does not
    normalise the volume (see :func:`normalize_volume`)."""
    return _mel_from_frames(_frames(np.asarray(audio, dtype=np.float32)))


def unit_vectors(x: npt.NDArray[np.floating]) -> Array:
    """``x`` scaled to unit length along its last axis, as float32 (an all-zero vector stays zero)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out: Array = (x / np.maximum(norms, np.finfo(np.float32).tiny)).astype(np.float32, copy=False)
    return out


class SpeakerEncoder:
    """Resemblyzer's speaker encoder: 16 kHz speech in, one L2-normalised 256-d embedding per clip out.

    Stateless after loading and thread-safe (numpy releases the GIL in its matmuls). Same-speaker embeddings have a
    higher cosine similarity (a plain dot product, the vectors being unit length) than different-speaker ones; with
    Resemblyzer's model, all components are >= 0, so similarities fall in [0, 1].
    """

    size: int = 256
    """Embedding size."""

    def __init__(self, weights: Mapping[str, npt.NDArray[np.floating]], path: Path | None = None) -> None:
        """Build from a state dict of Resemblyzer's ``VoiceEncoder`` (``lstm.weight_ih_l0`` ... ``linear.bias``)."""
        self.path = path
        # Per layer: W_ih^T (in, 4H), W_hh^T (H, 4H) and b_ih + b_hh (4H,), with torch's gate order (i, f, g, o)
        # reordered to (i, f, o, g) so that the three sigmoid gates are contiguous, and their columns halved:
        # sigmoid(x) = 0.5 * tanh(x / 2) + 0.5, so one tanh over all four gates does the work (and never overflows).
        hidden = _HIDDEN
        order = np.r_[0 : 2 * hidden, 3 * hidden : 4 * hidden, 2 * hidden : 3 * hidden]
        scale = np.ones(4 * hidden, dtype=np.float32)
        scale[: 3 * hidden] = 0.5
        self._layers: list[tuple[Array, Array, Array]] = []
        for layer in range(_LAYERS):
            inputs = N_MELS if layer == 0 else hidden
            w_ih = self._weight(weights, f"lstm.weight_ih_l{layer}", (4 * hidden, inputs))
            w_hh = self._weight(weights, f"lstm.weight_hh_l{layer}", (4 * hidden, hidden))
            bias = self._weight(weights, f"lstm.bias_ih_l{layer}", (4 * hidden,)) + self._weight(
                weights, f"lstm.bias_hh_l{layer}", (4 * hidden,)
            )
            self._layers.append(
                (
                    np.ascontiguousarray(w_ih[order].T * scale),
                    np.ascontiguousarray(w_hh[order].T * scale),
                    np.ascontiguousarray(bias[order] * scale),
                )
            )
        self._linear_w = np.ascontiguousarray(self._weight(weights, "linear.weight", (self.size, hidden)).T)
        self._linear_b = self._weight(weights, "linear.bias", (self.size,))

    @staticmethod
    def _weight(weights: Mapping[str, npt.NDArray[np.floating]], name: str, shape: tuple[int, ...]) -> Array:
        if name not in weights:
            raise ModelUnavailable(f"speaker encoder weights lack {name}")
        array = np.asarray(weights[name], dtype=np.float32)
        if array.shape != shape:
            raise ModelUnavailable(f"speaker encoder weight {name} has shape {array.shape}, expected {shape}")
        return array

    @classmethod
    def load(cls, path: Path | None = None) -> SpeakerEncoder:
        """Load the weights from ``path`` (an npz written by ``tools/export_speaker_encoder.py``), by default the
        packaged ones. Raises :class:`~voxgate.errors.ModelUnavailable` when the file is missing or not such an npz."""
        weights_path = path if path is not None else default_weights_path()
        if not weights_path.is_file():
            raise ModelUnavailable(
                f"speaker encoder weights not found at {weights_path}: reinstall voxgate (it ships {_WEIGHTS_FILE}) "
                "or write them with tools/export_speaker_encoder.py"
            )
        try:
            with np.load(weights_path, allow_pickle=False) as npz:
                weights = {name: npz[name] for name in npz.files}
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(f"could not read the speaker encoder weights at {weights_path}: {exc}") from exc
        return cls(weights, weights_path)

    def embed(self, clips: Sequence[Audio]) -> Array:
        """One L2-normalised 256-d embedding per clip (16 kHz float32 mono, any length >= 0.2 s), shape
        (len(clips), 256).

        Clips of different lengths run together in one batch; each clip's embedding is the one it gets alone.
        Raises ValueError for a clip that is not 1-D, shorter than :data:`MIN_SAMPLES` or not finite.
        """
        frames: list[Array] = []
        for index, clip in enumerate(clips):
            audio = np.asarray(clip, dtype=np.float32)
            if audio.ndim != 1:
                raise ValueError(f"clip {index}: expected mono audio (a 1-D array), got shape {audio.shape}")
            if audio.size < MIN_SAMPLES:
                raise ValueError(
                    f"clip {index}: {audio.size} samples ({audio.size / SAMPLE_RATE:.3f} s) is too short for a "
                    f"speaker embedding; the minimum is {MIN_SAMPLES} samples ({MIN_SAMPLES / SAMPLE_RATE:g} s)"
                )
            if not np.isfinite(audio).all():
                raise ValueError(f"clip {index}: audio contains NaN or infinite samples")
            frames.append(_frames(normalize_volume(audio)))
        if not frames:
            return np.zeros((0, self.size), dtype=np.float32)
        # One FFT and one filterbank product for every frame of every clip.
        mels = _mel_from_frames(np.concatenate(frames))
        return self.embed_mels(np.split(mels, np.cumsum([len(f) for f in frames])[:-1]))

    def embed_utterances(self, clips: Sequence[Audio], window: float = 1.6, hop: float = 0.8) -> Array:
        """One embedding per clip of any length, the way Resemblyzer embeds an utterance: clips longer than
        ``window`` * 1.25 seconds are cut into ``window``-second pieces every ``hop`` seconds (the last one ending at
        the clip's end), every piece of every clip is embedded in one batch, and each clip gets the normalised mean
        of its pieces. The model was trained on 1.6 s pieces; one LSTM pass over a long clip drifts from that."""
        size, step = round(window * SAMPLE_RATE), round(hop * SAMPLE_RATE)
        pieces: list[Audio] = []
        owners: list[int] = []
        for index, clip in enumerate(clips):
            n = len(clip)
            starts = [0] if n <= size * 1.25 else [*range(0, n - size, step), n - size]
            for start in starts:
                pieces.append(clip[start : start + size] if len(starts) > 1 else clip)
                owners.append(index)
        embedded = self.embed(pieces)
        sums = np.zeros((len(clips), self.size), dtype=np.float32)
        np.add.at(sums, np.asarray(owners, dtype=np.intp), embedded)
        return unit_vectors(sums)

    def embed_mels(self, mels: Sequence[Array]) -> Array:
        """The embeddings of ready-made (frames, 40) mel spectrograms (see :func:`mel_spectrogram`), shape
        (len(mels), 256): the model's forward pass alone, like ``VoiceEncoder.forward`` on each one."""
        if not mels:
            return np.zeros((0, self.size), dtype=np.float32)
        lengths = np.array([len(mel) for mel in mels])
        if any(np.shape(mel)[1:] != (N_MELS,) for mel in mels) or lengths.min() < 1:
            raise ValueError(f"mel spectrograms must have shape (frames >= 1, {N_MELS})")
        # Longest first, so that the clips still running at frame t are always the first ones: each step works on a
        # shrinking prefix of the batch, and no clip ever sees a padded frame.
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        steps = int(lengths[0])
        x = np.zeros((steps, len(mels), N_MELS), dtype=np.float32)  # time-major: x[t, :active] is contiguous
        for row, index in enumerate(order):
            x[: lengths[row], row] = mels[index]
        active = (lengths[None, :] > np.arange(steps)[:, None]).sum(axis=1)
        for w_ih, w_hh, bias in self._layers:
            x = self._lstm_layer(x, active, w_ih, w_hh, bias)
        last: Array = x[lengths - 1, np.arange(len(mels))]  # each clip's hidden state at its own last frame
        raw: Array = np.maximum(last @ self._linear_w + self._linear_b, np.float32(0.0))
        embeddings = np.empty_like(raw)
        embeddings[order] = unit_vectors(raw)
        return embeddings

    @staticmethod
    def _lstm_layer(x: Array, active: npt.NDArray[np.intp], w_ih: Array, w_hh: Array, bias: Array) -> Array:
        """One LSTM layer over time-major ``x`` (steps, batch, in) from zero state; ``active[t]`` clips run at t.

        Returns the hidden states (steps, batch, H); rows past a clip's end stay zero.
        """
        steps, batch, inputs = x.shape
        hidden = w_hh.shape[0]
        block = max(1, _PROJECTION_BLOCK // (batch * 4 * hidden))
        out = np.zeros((steps, batch, hidden), dtype=np.float32)
        cell = np.zeros((batch, hidden), dtype=np.float32)
        scratch = np.empty((batch, hidden), dtype=np.float32)
        h = np.zeros((batch, hidden), dtype=np.float32)
        for t in range(steps):
            if t % block == 0:  # x @ W_ih + b for the next block of steps, in one matmul
                chunk = x[t : t + block]
                projected = (chunk.reshape(-1, inputs) @ w_ih + bias).reshape(len(chunk), batch, 4 * hidden)
            n = int(active[t])
            gates = projected[t % block, :n]
            if t:
                gates += h[:n] @ w_hh
            np.tanh(gates, out=gates)
            sigmoid = gates[:, : 3 * hidden]
            sigmoid *= 0.5
            sigmoid += 0.5
            i, f, o, g = (gates[:, k * hidden : (k + 1) * hidden] for k in range(4))
            c = cell[:n]
            c *= f
            np.multiply(i, g, out=scratch[:n])
            c += scratch[:n]
            h = out[t]
            np.tanh(c, out=scratch[:n])
            np.multiply(o, scratch[:n], out=h[:n])
        return out
