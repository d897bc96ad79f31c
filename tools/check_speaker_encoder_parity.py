# mypy: disable-error-code="import-not-found,import-untyped"
"""Check voxgate's numpy speaker encoder against Resemblyzer's torch model and librosa, on real speech.

A dev tool, not a test: it needs torch, librosa and resemblyzer, none of which voxgate depends on. Run it in a
throwaway environment::

    python -m venv /tmp/rzvenv
    /tmp/rzvenv/bin/pip install resemblyzer==0.1.4 'setuptools<81' soundfile   # pulls torch and librosa
    /tmp/rzvenv/bin/python tools/check_speaker_encoder_parity.py [WAV_DIR]

(``setuptools<81``: resemblyzer imports webrtcvad, which needs ``pkg_resources``.) WAV_DIR defaults to
``../shared/data/en`` beside the checkout; every ``*.wav`` in it must be 16 kHz mono. voxgate is imported from this
checkout (its speaker module needs numpy only).

It checks, on 1.6 s windows of every file, the whole files and a few short clips:

1. the packaged npz against ``torch.load`` of Resemblyzer's ``pretrained.pt`` (bit-exact);
2. :func:`mel_spectrogram` against ``librosa.feature.melspectrogram`` on the same (volume-normalised) audio;
3. :meth:`SpeakerEncoder.embed_mels` against ``VoiceEncoder.forward`` on the same (librosa) mel spectrograms;
4. :meth:`SpeakerEncoder.embed` on the raw clips against Resemblyzer's whole path (its ``normalize_volume``,
   ``wav_to_mel_spectrogram`` and ``forward``; no webrtcvad trimming, as in voxgate);

and exits 1 if an embedding's cosine similarity to Resemblyzer's is below 0.9999.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import librosa
import numpy as np
import soundfile
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voxgate.analysis.speaker import (  # noqa: E402 - after the sys.path change
    SpeakerEncoder,
    default_weights_path,
    mel_filters,
    mel_spectrogram,
    normalize_volume,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # resemblyzer imports scipy.ndimage.morphology and pkg_resources (deprecated)
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import normalize_volume as rz_normalize_volume
    from resemblyzer.audio import wav_to_mel_spectrogram as rz_mel

MIN_COSINE = 0.9999
WINDOW = 25_600  # 1.6 s, Resemblyzer's partial utterance
HOP = 12_800


def clips(wav_dir: Path) -> list[np.ndarray]:
    """1.6 s windows (0.8 s apart) of every file, the whole files, and a 0.2 s and a 0.5 s clip."""
    out: list[np.ndarray] = []
    whole: list[np.ndarray] = []
    for path in sorted(wav_dir.glob("*.wav")):
        audio, rate = soundfile.read(path, dtype="float32")
        if rate != 16_000 or audio.ndim != 1:
            raise SystemExit(f"{path}: need 16 kHz mono, got {rate} Hz, shape {audio.shape}")
        out += [audio[start : start + WINDOW] for start in range(0, len(audio) - WINDOW + 1, HOP)]
        whole.append(audio)
    if not whole:
        raise SystemExit(f"no *.wav in {wav_dir}")
    return out + whole + [whole[0][8000:11_200], whole[-1][4000:12_000]]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    similarity: np.ndarray = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return similarity


def main() -> None:
    wav_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "en"
    torch.set_num_threads(2)
    encoder = SpeakerEncoder.load()
    model = VoiceEncoder(device="cpu", verbose=False)
    model.eval()

    # 1. Weights.
    source = Path(sys.modules["resemblyzer"].__file__ or "").parent / "pretrained.pt"
    state = torch.load(source, map_location="cpu", weights_only=False)["model_state"]
    with np.load(default_weights_path()) as npz:
        exact = all(np.array_equal(state[name].numpy(), npz[name]) for name in npz.files)
        print(f"weights: {len(npz.files)} arrays, bit-exact with {source}: {exact}")

    audio = clips(wav_dir)
    lengths = sorted({len(a) for a in audio})
    print(f"clips: {len(audio)} ({len(lengths)} distinct lengths, {lengths[0] / 16e3:.2f}-{lengths[-1] / 16e3:.2f} s)")

    # 2. Mel spectrogram vs librosa on the same normalised float32 audio.
    worst_abs = worst_rel = 0.0
    librosa_mels = []
    for clip in audio:
        y = normalize_volume(clip)
        ours = mel_spectrogram(y)
        ref = librosa.feature.melspectrogram(y=y, sr=16_000, n_fft=400, hop_length=160, n_mels=40).astype(np.float32).T
        assert ours.shape == ref.shape, (ours.shape, ref.shape)
        worst_abs = max(worst_abs, float(np.max(np.abs(ours - ref))))
        worst_rel = max(worst_rel, float(np.max(np.abs(ours - ref)) / np.max(ref)))
        librosa_mels.append(ref)
    filters = librosa.filters.mel(sr=16_000, n_fft=400, n_mels=40)
    print(f"mel filters: max |ours - librosa| = {np.max(np.abs(mel_filters() - filters)):.3g}")
    print(f"mel: max |ours - librosa| = {worst_abs:.3g} (mel values up to ~{max(m.max() for m in librosa_mels):.3g});")
    print(f"     max of that relative to the clip's largest mel value = {worst_rel:.3g}")

    # 3. Model alone: the same librosa mels through torch and through numpy (all clips in one numpy batch).
    with torch.no_grad():
        torch_embeds = np.concatenate([model(torch.from_numpy(m[None])).numpy() for m in librosa_mels])
    ours = encoder.embed_mels(librosa_mels)
    cos = cosine(ours, torch_embeds)
    print(f"model (same mels): max |diff| = {np.max(np.abs(ours - torch_embeds)):.3g}, min cosine = {cos.min():.8f}")
    model_ok = cos.min() >= MIN_COSINE

    # 4. The whole path from raw audio.
    with torch.no_grad():
        rz = np.concatenate(
            [
                model(torch.from_numpy(rz_mel(rz_normalize_volume(c, -30, increase_only=True))[None])).numpy()
                for c in audio
            ]
        )
    ours = encoder.embed(audio)
    cos = cosine(ours, rz)
    print(f"end to end (raw audio): max |diff| = {np.max(np.abs(ours - rz)):.3g}, min cosine = {cos.min():.8f}")
    end_ok = cos.min() >= MIN_COSINE

    if not (exact and model_ok and end_ok):
        raise SystemExit(f"FAIL: weights exact {exact}, model cosine ok {model_ok}, end-to-end cosine ok {end_ok}")
    print("OK")


if __name__ == "__main__":
    main()
