"""Prosody measurements and the pitch / vocal style labels, on synthetic signals and real speech (tests/data)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from tests.speech import DATA
from voxgate.analysis.prosody import (
    PITCH_BINS,
    PITCH_LABELS,
    VOCAL_STYLE_LABELS,
    extract_features,
    pitch_labels,
    vocal_style_labels,
)
from voxgate.analysis.vad import SileroVad
from voxgate.audio.decode import decode
from voxgate.types import SAMPLE_RATE, Audio, VoiceFeatures, Word

# Word timings whisper/base gives for jfk.flac (language en, no VAD filter), recorded once so the tests need no ASR.
# Whisper stretches words over the pauses after them ("ask" 2.76-3.74 covers a silence up to 3.28 s), which is why
# the pause measures also use the audio.
JFK_WORDS = [
    ("And", 0.00, 0.52), ("so", 0.52, 0.82), ("my", 0.82, 1.20), ("fellow", 1.20, 1.56), ("Americans,", 1.56, 2.10),
    ("ask", 2.76, 3.74), ("not", 3.74, 4.24), ("what", 4.24, 5.52), ("your", 5.52, 5.76), ("country", 5.76, 6.24),
    ("can", 6.24, 6.62), ("do", 6.62, 6.82), ("for", 6.82, 7.08), ("you,", 7.08, 7.36), ("ask", 7.72, 8.48),
    ("what", 8.48, 8.76), ("you", 8.76, 9.04), ("can", 9.04, 9.32), ("do", 9.32, 9.56), ("for", 9.56, 9.78),
    ("your", 9.78, 9.94), ("country.", 9.94, 10.36),
]  # fmt: skip


def vowel(
    f0: float | npt.NDArray[np.float64],
    seconds: float = 2.5,
    *,
    vibrato: float = 0.0,
    rms: float = 0.1,
    snr_db: float = 40.0,
    seed: int = 0,
) -> Audio:
    """A vowel-like voiced sound: harmonics of ``f0`` falling at -9 dB/octave (a glottal-pulse-like source) up to
    4 kHz, with an optional 5 Hz vibrato of +-``vibrato`` (a fraction), white noise ``snr_db`` below, at ``rms``.
    ``f0`` may be an array (one value per sample) for glides."""
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    freq = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,)) * (1.0 + vibrato * np.sin(2 * np.pi * 5.0 * t))
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    signal = np.zeros(n)
    for k in range(1, int(4000 // float(np.max(freq))) + 1):
        signal += k**-1.5 * np.sin(k * phase)
    signal /= np.sqrt(np.mean(signal**2))
    noise = np.random.default_rng(seed).standard_normal(n) * 10 ** (-snr_db / 20)
    out: Audio = ((signal + noise) * rms / np.sqrt(1 + 10 ** (-snr_db / 10))).astype(np.float32)
    return out


def silence(seconds: float) -> Audio:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def words(spans: list[tuple[float, float]]) -> list[Word]:
    return [Word(f"w{i}", s, e, 0.9) for i, (s, e) in enumerate(spans)]


def top(labels: list[tuple[str, float]]) -> str:
    return labels[0][0]


# -- synthetic signals -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("f0", "label"), [(110.0, "medium-low"), (220.0, "medium-high")])
def test_vowel_f0_and_pitch_label(f0: float, label: str) -> None:
    """110 Hz lies in medium-low (104.3-138.0 Hz), 220 Hz in medium-high (182.6-241.5 Hz): see PITCH_BINS."""
    feats = extract_features(vowel(f0, vibrato=0.02))
    assert feats.f0_median_hz == pytest.approx(f0, rel=0.02)
    assert feats.voiced_s is not None
    assert feats.voiced_s > 2.0
    assert feats.voiced_ratio is not None
    assert feats.voiced_ratio > 0.9
    # +-2 % vibrato: p10-p90 spans about 2 x 0.95 x 0.34 st.
    assert feats.f0_range_semitones is not None
    assert 0.3 < feats.f0_range_semitones < 1.0
    labels = pitch_labels(feats)
    assert top(labels) == label
    assert labels[0][1] > 0.9
    # A clean periodic signal: high HNR, little jitter and shimmer.
    assert feats.hnr_db is not None
    assert feats.hnr_db > 25
    assert feats.jitter_local is not None
    assert feats.jitter_local < 0.005
    assert feats.shimmer_local is not None
    assert feats.shimmer_local < 0.02


def test_f0_glide_range() -> None:
    """An exponential glide 100 -> 200 Hz covers 12 semitones evenly; its p10-p90 covers 80 % of them: 9.6 st."""
    seconds = 3.0
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    feats = extract_features(vowel(100.0 * 2.0 ** (t / seconds), seconds))
    assert feats.f0_range_semitones == pytest.approx(9.6, abs=0.4)
    assert feats.f0_p10_hz == pytest.approx(100 * 2**0.1, rel=0.03)
    assert feats.f0_p90_hz == pytest.approx(100 * 2**0.9, rel=0.03)
    assert feats.f0_median_hz == pytest.approx(100 * 2**0.5, rel=0.03)
    assert feats.f0_std_semitones == pytest.approx(12 / math.sqrt(12), abs=0.3)  # uniform over 12 st


@pytest.mark.parametrize("kind", ["silence", "noise", "short", "empty", "nan", "tiny"])
def test_no_f0_and_no_exception(kind: str) -> None:
    rng = np.random.default_rng(1)
    audio = {
        "silence": silence(2.0),
        "noise": (rng.standard_normal(2 * SAMPLE_RATE) * 0.1).astype(np.float32),
        "short": vowel(150.0, 0.2),
        "empty": silence(0.0),
        "nan": np.full(SAMPLE_RATE, np.nan, dtype=np.float32),
        "tiny": (rng.standard_normal(2 * SAMPLE_RATE) * 1e-7).astype(np.float32),
    }[kind]
    feats = extract_features(audio)
    assert feats.f0_median_hz is None
    assert feats.f0_range_semitones is None
    assert feats.hnr_db is None
    assert feats.jitter_local is None
    assert pitch_labels(feats) == [("unclear", 1.0)]
    styles = dict(vocal_style_labels(feats))
    assert not {"expressive", "monotone", "steady", "breathy", "rough"} & styles.keys()
    assert feats.duration_s == pytest.approx(len(audio) / SAMPLE_RATE)


def test_silence_has_no_speech_and_noise_no_voicing() -> None:
    quiet = extract_features(silence(2.0))
    assert quiet.speech_s is None
    assert quiet.loudness_dbfs is None
    assert vocal_style_labels(quiet) == []
    noise = extract_features((np.random.default_rng(2).standard_normal(2 * SAMPLE_RATE) * 0.1).astype(np.float32))
    assert noise.voiced_s is not None
    assert noise.voiced_s < 0.1
    assert noise.loudness_dbfs == pytest.approx(-20.0, abs=0.5)


def test_non_mono_audio_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="mono"):
        extract_features(np.zeros((2, SAMPLE_RATE), dtype=np.float32))


def test_clipped_audio() -> None:
    """Driven 20 dB into clipping: F0 still right, clipping reported, no voice-quality labels from distorted audio."""
    clipped = np.clip(vowel(220.0, rms=1.0) * 1.5, -1.0, 1.0)
    feats = extract_features(clipped)
    assert feats.clipped_ratio is not None
    assert feats.clipped_ratio > 0.05
    assert feats.f0_median_hz == pytest.approx(220.0, rel=0.02)
    assert not {"breathy", "rough"} & dict(vocal_style_labels(feats)).keys()
    assert dict(vocal_style_labels(feats))["loud"] > 0.5


def test_loudness_of_a_minus_20_dbfs_signal() -> None:
    feats = extract_features(vowel(150.0, rms=0.1))
    assert feats.loudness_dbfs == pytest.approx(-20.0, abs=0.2)
    assert feats.loudness_range_db is not None
    assert feats.loudness_range_db < 1.0
    # Silence around the vowel does not dilute the speech level.
    padded = extract_features(np.concatenate([silence(1.0), vowel(150.0, rms=0.1), silence(1.0)]))
    assert padded.loudness_dbfs == pytest.approx(-20.0, abs=0.5)
    assert padded.speech_s == pytest.approx(2.5, abs=0.15)


def test_mains_hum_is_not_speech() -> None:
    """60 Hz hum with harmonics at -43 dBFS around a -20 dBFS vowel: the hum's "F0" must not enter the statistics.
    (The two-speakers clip's left channel has such hum; within 25 dB of the speech it passes Praat's silence test,
    not the noise-floor test.)"""
    n = round(4.0 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * 60.0 * k * t) / k for k in (1, 3, 5))
    hum = hum / np.sqrt(np.mean(hum**2)) * 10 ** (-43 / 20)
    audio = hum.astype(np.float32)
    audio[SAMPLE_RATE : SAMPLE_RATE + 2 * SAMPLE_RATE] += vowel(180.0, 2.0)
    feats = extract_features(audio)
    assert feats.f0_p10_hz == pytest.approx(180.0, rel=0.03)
    assert feats.speech_s == pytest.approx(2.0, abs=0.15)


def test_vad_probabilities_gate_speech() -> None:
    noise = (np.random.default_rng(3).standard_normal(2 * SAMPLE_RATE) * 0.05).astype(np.float32)
    frames = len(noise) // 512
    none = extract_features(noise, speech_probabilities=np.zeros(frames, dtype=np.float32))
    assert none.speech_s == 0.0
    assert none.loudness_dbfs is None
    assert none.voiced_ratio is None
    assert extract_features(noise, speech_probabilities=np.zeros(0, dtype=np.float32)).speech_s == 0.0
    every = extract_features(noise, speech_probabilities=np.ones(frames, dtype=np.float32))
    assert every.loudness_dbfs == pytest.approx(-26.0, abs=0.5)


# -- words: rate and pauses ------------------------------------------------------------------------------------------


def test_speaking_rate_from_words() -> None:
    """10 words evenly over 4 s: 150 words per minute, no pauses."""
    feats = extract_features(silence(0.0), words([(i * 0.4, i * 0.4 + 0.38) for i in range(10)]))
    assert feats.word_count == 10
    assert feats.speaking_rate_wpm == pytest.approx(10 / 3.98 * 60, rel=0.01)
    assert feats.articulation_rate_wpm == pytest.approx(feats.speaking_rate_wpm)
    assert feats.pause_ratio == 0.0
    assert feats.mean_pause_s is None


def test_pauses_are_excluded_from_articulation_rate() -> None:
    """Gaps of 0.5 s and 0.7 s are pauses (>= 250 ms); the 0.1 s gaps are not."""
    spans = [(0.0, 0.4), (0.5, 0.9), (1.4, 1.8), (1.9, 2.3), (3.0, 3.4), (3.5, 4.0)]
    feats = extract_features(silence(0.0), words(spans))
    assert feats.speaking_rate_wpm == pytest.approx(6 / 4.0 * 60)
    assert feats.articulation_rate_wpm == pytest.approx(6 / (4.0 - 1.2) * 60, rel=0.01)
    assert feats.pause_ratio == pytest.approx(1.2 / 4.0, abs=0.01)
    assert feats.mean_pause_s == pytest.approx(0.6, abs=0.01)


def test_pauses_inside_words_are_found_in_the_audio() -> None:
    """ASR words often stretch over the silence after them; the audio's own silence still counts as a pause."""
    audio = np.concatenate([vowel(150.0, 1.0), silence(0.6), vowel(150.0, 1.4)])
    spans = [(0.0, 0.5), (0.5, 1.6), (1.6, 2.2), (2.2, 3.0)]  # the second word "covers" the silence
    feats = extract_features(audio, words(spans))
    assert feats.mean_pause_s == pytest.approx(0.6, abs=0.1)
    assert feats.pause_ratio == pytest.approx(0.6 / 3.0, abs=0.04)
    assert feats.speaking_rate_wpm == pytest.approx(4 / 3.0 * 60, rel=0.02)
    assert feats.articulation_rate_wpm == pytest.approx(4 / 2.4 * 60, rel=0.05)


def test_unusable_words() -> None:
    bad = [Word("a", 1.0, 0.5, 0.9), Word("b", math.nan, 1.0, 0.9)]
    assert extract_features(silence(0.0), bad).word_count == 0
    one = extract_features(silence(0.0), words([(0.0, 0.3)]))
    assert one.word_count == 1
    assert one.speaking_rate_wpm is None


# -- labels ----------------------------------------------------------------------------------------------------------


def test_pitch_bins_match_the_documented_table() -> None:
    assert [label for label, _, _ in PITCH_BINS] == list(PITCH_LABELS[:7])
    edges = [round(high, 1) for _, _, high in PITCH_BINS[:-1]]
    assert edges == [78.9, 104.3, 138.0, 182.6, 241.5, 319.5]
    assert PITCH_BINS[0][1] == 0.0
    assert math.isinf(PITCH_BINS[-1][2])


def pitched(median: float, voiced_s: float = 5.0, spread: float = 2.0) -> VoiceFeatures:
    return VoiceFeatures(duration_s=10.0, voiced_s=voiced_s, f0_median_hz=median, f0_std_semitones=spread)


def test_pitch_confidence_is_soft_at_edges_and_sure_mid_bin() -> None:
    edge = dict(pitch_labels(pitched(PITCH_BINS[3][2])))  # medium / medium-high edge
    assert edge["medium"] == pytest.approx(0.5, abs=0.02)
    assert edge["medium-high"] == pytest.approx(0.5, abs=0.02)
    mid = pitch_labels(pitched(120.0))
    assert mid[0][0] == "medium-low"
    assert mid[0][1] > 0.9
    assert sum(c for _, c in pitch_labels(pitched(150.0))) == pytest.approx(1.0, abs=0.03)
    assert top(pitch_labels(pitched(70.0))) == "very-low"
    assert top(pitch_labels(pitched(400.0))) == "very-high"


def test_pitch_confidence_needs_voiced_speech() -> None:
    short = dict(pitch_labels(pitched(120.0, voiced_s=0.8)))
    assert max(c for label, c in short.items() if label != "unclear") <= 0.5
    assert short["unclear"] >= 0.5
    assert pitch_labels(pitched(120.0, voiced_s=0.05)) == [("unclear", 1.0)]
    assert pitch_labels(VoiceFeatures(duration_s=1.0)) == [("unclear", 1.0)]


def rated(rate: float, n: int = 30, mean_pause: float | None = None) -> VoiceFeatures:
    return VoiceFeatures(duration_s=20.0, word_count=n, speaking_rate_wpm=rate, mean_pause_s=mean_pause)


def test_rate_labels() -> None:
    assert dict(vocal_style_labels(rated(250)))["fast-paced"] > 0.95
    assert dict(vocal_style_labels(rated(100)))["measured"] > 0.9
    middle = dict(vocal_style_labels(rated(155)))
    assert middle["conversational"] > 0.8
    assert middle.get("fast-paced", 0.0) < 0.1
    assert middle.get("measured", 0.0) < 0.1
    assert dict(vocal_style_labels(rated(155, mean_pause=1.0)))["measured"] > 0.95
    # On the threshold: even odds; from few words: little confidence.
    assert dict(vocal_style_labels(rated(180)))["fast-paced"] == pytest.approx(0.5, abs=0.01)
    assert dict(vocal_style_labels(rated(250, n=5)))["fast-paced"] < 0.35
    # Word rates are English norms: no rate labels for German; pause evidence stays.
    german = dict(vocal_style_labels(rated(250, mean_pause=1.0), language="de"))
    assert "fast-paced" not in german
    assert german["measured"] > 0.9
    assert "fast-paced" in dict(vocal_style_labels(rated(250), language="en-US"))


def test_style_labels_need_their_measurement() -> None:
    assert vocal_style_labels(VoiceFeatures(duration_s=3.0)) == []
    only_level = VoiceFeatures(duration_s=3.0, speech_s=3.0, loudness_dbfs=-10.0)
    labels = vocal_style_labels(only_level)
    assert [label for label, _ in labels] == ["loud"]
    assert labels[0][1] <= 0.6  # microphone gain is unknown
    wide = VoiceFeatures(duration_s=10.0, voiced_s=5.0, f0_range_semitones=14.0)
    assert dict(vocal_style_labels(wide))["expressive"] > 0.95
    flat = VoiceFeatures(duration_s=10.0, voiced_s=5.0, f0_range_semitones=2.0)
    assert dict(vocal_style_labels(flat))["monotone"] > 0.9
    for label, confidence in vocal_style_labels(replace(wide, word_count=30, speaking_rate_wpm=250)):
        assert label in VOCAL_STYLE_LABELS
        assert 0.0 <= confidence <= 1.0


def test_style_confidences_are_independent() -> None:
    feats = VoiceFeatures(
        duration_s=30.0, voiced_s=10.0, f0_range_semitones=14.0, word_count=40, speaking_rate_wpm=100.0
    )
    labels = dict(vocal_style_labels(feats))
    assert labels["expressive"] > 0.9
    assert labels["measured"] > 0.9


def test_voice_quality_labels_need_a_clean_recording() -> None:
    breathy = VoiceFeatures(duration_s=10.0, voiced_s=5.0, hnr_db=3.0, snr_db=40.0, clipped_ratio=0.0)
    assert 0.6 < dict(vocal_style_labels(breathy))["breathy"] <= 0.7  # capped: recordings colour HNR
    assert "breathy" not in dict(vocal_style_labels(replace(breathy, snr_db=12.0)))
    assert "breathy" not in dict(vocal_style_labels(replace(breathy, clipped_ratio=0.01)))
    rough = replace(breathy, hnr_db=15.0, jitter_local=0.06, shimmer_local=0.08)
    labels = dict(vocal_style_labels(rough))
    assert labels["rough"] > 0.6
    assert "breathy" not in labels


# -- real speech -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def harvard() -> dict[str, VoiceFeatures]:
    names = [f"{spk}_snt{i}" for spk in ("spk1", "spk2") for i in range(1, 7)]
    return {name: extract_features(decode(DATA / "en" / f"{name}.wav")) for name in names}


@pytest.fixture(scope="module")
def jfk() -> Audio:
    return decode(DATA / "en" / "jfk.flac")


def test_jfk_pitch(jfk: Audio) -> None:
    """Measured 237 Hz (p10-p90 189-282). High for a man, but real: the spectrum's harmonics sit at multiples of
    ~240 Hz (no subharmonic series), and Kennedy is projecting outdoors; shouting raises men's F0 to a mean of 176 Hz
    (Berg et al. 2017). The bounds leave ~8 % either way."""
    feats = extract_features(jfk)
    assert feats.f0_median_hz is not None
    assert 218 < feats.f0_median_hz < 256
    assert top(pitch_labels(feats)) in {"medium-high", "high"}
    assert feats.loudness_dbfs is not None
    assert feats.loudness_dbfs > -18


def test_jfk_rate_and_pauses(jfk: Audio) -> None:
    """The inaugural address's deliberate delivery: Whisper's words give 127 wpm, the audio 0.36 of the span paused
    (0.74 s mean pause); from the words alone the pause ratio would be 0.10."""
    ws = [Word(w, s, e, 0.9) for w, s, e in JFK_WORDS]
    feats = extract_features(jfk, ws)
    assert feats.speaking_rate_wpm is not None
    assert 115 < feats.speaking_rate_wpm < 140
    assert feats.pause_ratio is not None
    assert 0.25 < feats.pause_ratio < 0.45
    assert feats.mean_pause_s is not None
    assert 0.5 < feats.mean_pause_s < 1.0
    assert feats.articulation_rate_wpm is not None
    assert feats.articulation_rate_wpm > 170
    styles = dict(vocal_style_labels(feats, language="en"))
    assert styles["measured"] > 0.7
    assert "fast-paced" not in styles


def test_jfk_with_vad_agrees(jfk: Audio) -> None:
    plain = extract_features(jfk)
    gated = extract_features(jfk, speech_probabilities=SileroVad.load().probabilities(jfk))
    assert gated.f0_median_hz == pytest.approx(plain.f0_median_hz, rel=0.02)
    assert gated.speech_s is not None
    assert plain.speech_s is not None
    assert gated.speech_s <= plain.speech_s


def test_harvard_speakers_are_separated(harvard: dict[str, VoiceFeatures]) -> None:
    """spk1 measures 190-211 Hz in all six sentences, spk2 115-157 Hz: every spk1 median is above every spk2 one
    (a 33 Hz gap; the tests allow 15 Hz of drift on each side). spk1 is labelled medium-high in every sentence, spk2
    medium-low or medium (its medians straddle the 138 Hz edge)."""
    spk1 = [harvard[f"spk1_snt{i}"].f0_median_hz for i in range(1, 7)]
    spk2 = [harvard[f"spk2_snt{i}"].f0_median_hz for i in range(1, 7)]
    assert all(m is not None for m in spk1 + spk2)
    assert min(m for m in spk1 if m is not None) > 175
    assert max(m for m in spk2 if m is not None) < 172
    for i in range(1, 7):
        one = [label for label, _ in pitch_labels(harvard[f"spk1_snt{i}"]) if label != "unclear"]
        two = [label for label, _ in pitch_labels(harvard[f"spk2_snt{i}"]) if label != "unclear"]
        assert one[0] == "medium-high"
        assert two[0] in {"medium-low", "medium"}


def test_voice_quality_on_real_speech(harvard: dict[str, VoiceFeatures]) -> None:
    """Measured on the 12 sentences: HNR 13.1-24.5 dB, jitter 1.3-2.4 %, shimmer 4.7-11.8 %, voiced ratio 0.63-0.96,
    F0 range 3.8-8.9 st. The bounds leave room for other Praat builds; no sentence may look breathy or rough."""
    for name, feats in harvard.items():
        assert within(feats.hnr_db, 9, 28), name
        assert within(feats.jitter_local, 0.008, 0.035), name
        assert within(feats.shimmer_local, 0.03, 0.15), name
        assert within(feats.voiced_ratio, 0.5, 1.0), name
        assert within(feats.f0_range_semitones, 2.5, 11), name
        assert feats.clipped_ratio == 0.0, name
        styles = dict(vocal_style_labels(feats))
        assert "breathy" not in styles, name
        assert styles.get("rough", 0.0) < 0.2, name


def within(value: float | None, low: float, high: float) -> bool:
    return value is not None and low <= value <= high
