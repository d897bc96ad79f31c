"""The numpy port of Resemblyzer's speaker encoder, on real speech (tests/data/en: two speakers, six clips each).

Parity with Resemblyzer's torch model itself is checked by tools/check_speaker_encoder_parity.py (it needs torch); here
one reference embedding computed by that model pins the port without torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from voxgate.analysis.speaker import MIN_SAMPLES, SpeakerEncoder, normalize_volume
from voxgate.audio.decode import decode
from voxgate.errors import ModelUnavailable
from voxgate.types import SAMPLE_RATE, Audio

WINDOW = 16 * SAMPLE_RATE // 10  # 1.6 s: the length Resemblyzer's model was trained on

# Resemblyzer 0.1.4's VoiceEncoder (torch 2.13, CPU) on the first 1.6 s of spk1_snt1.wav, after its
# normalize_volume(-30 dBFS, increase_only) and librosa mel spectrogram: its six largest components (151 of the 256
# are 0). The port matched the whole vector to 3.7e-7.
REFERENCE = {10: 0.201130, 11: 0.201535, 125: 0.206801, 197: 0.235340, 198: 0.233445, 199: 0.210057}


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return SpeakerEncoder.load()


@pytest.fixture(scope="module")
def clips(data: Path) -> dict[str, Audio]:
    """Every spk1_snt* / spk2_snt* file, whole (1.76 s to 3.15 s)."""
    return {path.stem: decode(path) for path in sorted((data / "en").glob("spk[12]_snt*.wav"))}


@pytest.fixture(scope="module")
def windows(encoder: SpeakerEncoder, clips: dict[str, Audio]) -> tuple[list[str], npt.NDArray[np.float32]]:
    """The speaker of, and the embedding of, the first 1.6 s of each clip."""
    names = sorted(clips)
    return [name.split("_")[0] for name in names], encoder.embed([clips[name][:WINDOW] for name in names])


def test_packaged_weights_load(encoder: SpeakerEncoder) -> None:
    assert encoder.path is not None
    assert encoder.path.name == "speaker_encoder.npz"
    assert encoder.size == 256


def test_embeddings_are_unit_vectors(encoder: SpeakerEncoder, clips: dict[str, Audio]) -> None:
    audio = [clips["spk1_snt1"], clips["spk2_snt1"][:MIN_SAMPLES], clips["spk2_snt3"][:WINDOW]]
    embeddings = encoder.embed(audio)
    assert embeddings.shape == (3, 256)
    assert embeddings.dtype == np.float32
    assert np.isfinite(embeddings).all()
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert (embeddings >= 0).all()  # ReLU before the normalisation


def test_matches_resemblyzer_reference(encoder: SpeakerEncoder, clips: dict[str, Audio]) -> None:
    (embedding,) = encoder.embed([clips["spk1_snt1"][:WINDOW]])
    np.testing.assert_allclose([embedding[i] for i in REFERENCE], list(REFERENCE.values()), atol=1e-5)
    assert {int(i) for i in np.argsort(-embedding)[: len(REFERENCE)]} == set(REFERENCE)


def test_same_speaker_is_closer_than_other_speaker(windows: tuple[list[str], npt.NDArray[np.float32]]) -> None:
    speakers, embeddings = windows
    speaker = np.array(speakers)
    similarity = embeddings @ embeddings.T
    spk1, spk2 = speaker == "spk1", speaker == "spk2"
    other_clip = ~np.eye(len(speaker), dtype=bool)
    same1 = similarity[np.ix_(spk1, spk1)][other_clip[np.ix_(spk1, spk1)]]
    same2 = similarity[np.ix_(spk2, spk2)][other_clip[np.ix_(spk2, spk2)]]
    cross = similarity[np.ix_(spk1, spk2)]
    # Measured: same speaker mean 0.784 (spk1, min 0.709) and 0.825 (spk2, min 0.769); across speakers mean 0.495
    # (max 0.592). So the mean margin is ~0.29 for spk1 and ~0.33 for spk2, and every same-speaker pair beats every
    # cross-speaker pair by > 0.1.
    assert same1.mean() > cross.mean() + 0.15
    assert same2.mean() > cross.mean() + 0.15
    assert min(same1.min(), same2.min()) > cross.max()


def test_batch_equals_one_at_a_time(encoder: SpeakerEncoder, clips: dict[str, Audio]) -> None:
    # Different lengths in one batch, the longest not first: each clip must stop at its own last frame.
    audio = [clips["spk2_snt2"], clips["spk1_snt2"], clips["spk1_snt6"][:MIN_SAMPLES], clips["spk2_snt5"][:WINDOW]]
    batched = encoder.embed(audio)
    alone = np.concatenate([encoder.embed([clip]) for clip in audio])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert not np.allclose(batched[0], batched[3], atol=1e-3)  # and they are not all the same vector


def test_too_short_or_empty_clip_raises(encoder: SpeakerEncoder, clips: dict[str, Audio]) -> None:
    with pytest.raises(ValueError, match=r"clip 1: 3199 samples .* too short"):
        encoder.embed([clips["spk1_snt1"], clips["spk1_snt1"][: MIN_SAMPLES - 1]])
    with pytest.raises(ValueError, match="too short"):
        encoder.embed([np.zeros(0, dtype=np.float32)])


def test_rejects_stereo_and_non_finite(encoder: SpeakerEncoder, clips: dict[str, Audio]) -> None:
    clip = clips["spk1_snt1"][:WINDOW]
    with pytest.raises(ValueError, match="mono"):
        encoder.embed([np.stack([clip, clip])])
    with pytest.raises(ValueError, match="NaN"):
        encoder.embed([np.where(np.arange(len(clip)) == 100, np.nan, clip).astype(np.float32)])


def test_no_clips_gives_empty_array(encoder: SpeakerEncoder) -> None:
    assert encoder.embed([]).shape == (0, 256)


def test_volume_is_raised_to_minus_30_dbfs_never_lowered(clips: dict[str, Audio]) -> None:
    quiet = clips["spk1_snt5"][:WINDOW]  # -32.5 dBFS
    loud = clips["spk2_snt4"][:WINDOW]  # -26.1 dBFS
    raised = normalize_volume(quiet * np.float32(0.1))
    assert 20 * np.log10(np.sqrt(np.mean(np.square(raised, dtype=np.float64)))) == pytest.approx(-30.0, abs=1e-4)
    assert normalize_volume(loud) is loud
    assert normalize_volume(np.zeros(100, dtype=np.float32)).max() == 0.0


def test_quiet_audio_gives_the_same_embedding(encoder: SpeakerEncoder, clips: dict[str, Audio]) -> None:
    # Both copies are below -30 dBFS, so both are raised to it.
    clip = clips["spk1_snt5"][:WINDOW]
    original, quieter = encoder.embed([clip, clip * np.float32(0.1)])
    np.testing.assert_allclose(original, quieter, atol=1e-5)


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="not found"):
        SpeakerEncoder.load(tmp_path / "missing.npz")


def test_utterances_average_their_pieces(encoder: SpeakerEncoder, clips: dict[str, Audio]) -> None:
    short, long = clips["spk1_snt1"][:WINDOW], np.concatenate([clips["spk1_snt2"], clips["spk1_snt3"]])
    got = encoder.embed_utterances([short, long])
    # A clip up to 1.25 windows long is embedded whole ...
    np.testing.assert_allclose(got[0], encoder.embed([short])[0], atol=1e-6)
    # ... a longer one is the normalised mean of 1.6 s pieces every 0.8 s, the last ending at the clip's end.
    size, step = WINDOW, WINDOW // 2
    starts = [*range(0, len(long) - size, step), len(long) - size]
    mean = encoder.embed([long[s : s + size] for s in starts]).mean(axis=0)
    np.testing.assert_allclose(got[1], mean / np.linalg.norm(mean), atol=1e-5)
    # Other lengths of piece, same rule.
    three = encoder.embed_utterances([long], window=3.0, hop=1.5)[0]
    assert np.linalg.norm(three) == pytest.approx(1.0, abs=1e-5)
    assert float(three @ got[1]) > 0.8  # the same voice either way (measured 0.86)
