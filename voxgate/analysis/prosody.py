"""Prosody and voice measurements for the voice profile, and the ``pitch`` and ``vocalStyle`` labels made from them.

Two halves, kept apart so a caller can apply its own thresholds:

* :func:`extract_features` measures (:class:`VoiceFeatures`): F0 statistics, loudness, voicing, voice quality (HNR,
  jitter, shimmer) from the audio with Praat (praat-parselmouth), and speaking rate and pauses from word timestamps.
* :func:`pitch_labels` and :func:`vocal_style_labels` map those numbers to labels with a confidence in [0, 1], using
  the thresholds documented below. A label whose measurement is missing (None) is never emitted.

Measurement method
------------------

Everything runs on 16 kHz mono float32 audio, with Praat 6.1 through praat-parselmouth:

* **F0**: Praat's autocorrelation tracker (``Sound: To Pitch (ac)``, Boersma 1993, "Accurate short-term analysis of
  the fundamental frequency and the harmonics-to-noise ratio of a sampled sound"), 10 ms steps, run twice as
  Hirst (2011, "The analysis by synthesis of speech melody", JoSS 1(1)) and De Looze & Hirst (2008) recommend: a first
  pass over the wide range 60-500 Hz (60 Hz is below very low adult male voices; 500 Hz is Praat's recommended ceiling
  for women's and children's voices, whose speaking F0 reaches ~250-400 Hz), then a second pass with the floor at
  0.75 x the first pass's 25th percentile and the ceiling at 1.5 x its 75th percentile (kept within 60-500 Hz). The
  speaker-specific range removes most octave jumps. Statistics use the voiced frames that fall in speech; below
  :data:`MIN_VOICED_S` of voicing there is no F0 (all F0 fields None): a handful of "voiced" frames is what a tracker
  finds in noise. Spread is measured in semitones (12 x log2 of a frequency ratio), the scale on which F0 variation
  is about the same for low and high voices (Traunmüller & Eriksson 1995, "The frequency range of the voice
  fundamental in the speech of male and female adults").
* **Speech / pauses in the audio**: Praat's intensity contour (``To Intensity``, 100 Hz minimum pitch: Praat's
  default, a 64 ms window). A frame is speech when its level is within :data:`SILENCE_THRESHOLD_DB` (25 dB) of the
  99th-percentile frame level (the criterion of Praat's ``To TextGrid (silences)`` and of De Jong & Wempe 2009,
  "Praat script to detect syllable nuclei and measure speech rate automatically"), at least :data:`NOISE_MARGIN_DB`
  above the noise floor (the 5th-percentile level; this rule never asks for more than 15 dB below the 99th
  percentile) and above :data:`ABSOLUTE_FLOOR_DBFS`. The noise-floor rule is what keeps the 60 Hz mains hum of the
  shared two-speaker clip (-43 dBFS under -21 dBFS speech) out of the F0 statistics. Steady noise at a poor SNR still
  passes an energy test, so a caller that has Silero VAD probabilities (one per 512 samples,
  :class:`voxgate.analysis.vad.SileroVad`) should pass them: frames then also need p >= 0.5.
* **Loudness**: RMS over the speech frames in dBFS, where an RMS of 1.0 is 0 dBFS (so a full-scale sine is -3 dBFS;
  AES17 would call that 0 dBFS). It is not perceptual loudness (no K-weighting, LUFS) and it depends on microphone
  gain and distance as much as on the voice. The range is the 10th-90th percentile spread of the frame levels.
* **Voice quality**: harmonics-to-noise ratio from ``To Harmonicity (cc)`` (1 period per window, silence threshold
  0.1, the settings of Praat's voice report), averaged in dB over the voiced speech frames; local jitter and shimmer
  from the glottal pulses (``Sound & Pitch: To PointProcess (cc)`` on the second-pass pitch, the same thing
  ``To PointProcess (periodic, cc)`` computes with its own pitch) with Praat's standard arguments (periods 0.1-20 ms,
  maximum period factor 1.3, maximum amplitude factor 1.6). These are running-speech values: intonation and
  voiced/unvoiced transitions make them much larger than on the sustained vowels the clinical norms come from
  (see :func:`vocal_style_labels`).
* **Rate and pauses** come from word timestamps (an ASR's) and the audio's speech frames: words per minute over the
  span from the first word's start to the last word's end (trimmed of silence the audio shows at its two ends).
  A pause is a stretch of at least :data:`PAUSE_MIN_S` (250 ms, the classic threshold that separates hesitation
  pauses from articulatory silences such as stop closures: Goldman-Eisler 1968, "Psycholinguistics: experiments in
  spontaneous speech") that no word covers *or* that the audio shows as non-speech: Whisper stretches words over the
  silence after them (on the JFK clip the words alone show 10 % of pauses, the audio 36 %). The articulation rate
  counts words per minute of the span minus the pauses. Word rates are language dependent (German words are longer
  than English ones): the thresholds in :func:`vocal_style_labels` are for English.

Cost (bench/prosody_norms.py, 2-core x86 VM): 5-12 ms of one core per second of audio, 8 ms on average over the
shared clips; harmonicity is half of it. parselmouth holds the GIL through each Praat call (the longest, a pitch pass
over the whole input, ~4-7 ms per audio second), so analyse long recordings in windows (<= 30 s) or off-process when
an event loop shares the interpreter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import parselmouth
from parselmouth.praat import call

from voxgate.types import SAMPLE_RATE, Audio, VoiceFeatures, Word

__all__ = [
    "MIN_VOICED_S",
    "PITCH_BINS",
    "PITCH_LABELS",
    "VOCAL_STYLE_LABELS",
    "VoiceFeatures",
    "extract_features",
    "pitch_labels",
    "vocal_style_labels",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# -- measurement settings --------------------------------------------------------------------------------------------

PITCH_FLOOR_HZ: Final = 60.0
"""First-pass F0 floor: below the lowest habitual speaking F0 of adult men (~85 Hz in Baken 2000's range)."""
PITCH_CEILING_HZ: Final = 500.0
"""F0 ceiling of both passes: Praat's recommended ceiling for women's and children's voices."""
TIME_STEP_S: Final = 0.01
"""Analysis step of the pitch, intensity and harmonicity contours."""
INTENSITY_MIN_PITCH_HZ: Final = 100.0
"""``To Intensity`` minimum pitch (Praat's default): a 64 ms analysis window."""
MIN_AUDIO_S: Final = 0.3
"""Shorter audio is not analysed (only word-based measures): too short for the 107 ms windows of a 60 Hz floor to
give a meaningful contour."""
MIN_VOICED_S: Final = 0.1
"""Less voicing than this (10 frames) means "no F0": trackers find a few periodic-looking frames in noise."""
SILENCE_THRESHOLD_DB: Final = 25.0
"""A frame is speech when within this many dB of the 99th-percentile level (Praat ``To TextGrid (silences)``)."""
NOISE_MARGIN_DB: Final = 6.0
"""A frame is speech only when at least this far above the noise floor, estimated as the 5th percentile of the frame
levels: the speech power is then at least 3x the noise power (SNR >= 4.8 dB). Keeps steady hum and hiss out of the
speech frames when the recording's SNR is under 25 dB."""
NOISE_RULE_MAX_DB: Final = 15.0
"""The noise-floor rule never asks more than this below the 99th-percentile level: when a clip has no pause its 5th
percentile is quiet speech, not noise, and a steady sound (a test tone) would otherwise have no speech at all."""
ABSOLUTE_FLOOR_DBFS: Final = -60.0
"""Frames quieter than this are never speech, whatever the rest of the signal."""
MIN_LEVEL_DBFS: Final = -100.0
"""Frame levels are clamped here (digital silence gives Praat's -300 dB), which bounds the noise floor and SNR."""
VAD_THRESHOLD: Final = 0.5
"""Silero speech probability at which a 512-sample frame counts as speech (its usual threshold)."""
VAD_FRAME_SAMPLES: Final = 512
PAUSE_MIN_S: Final = 0.25
"""A gap between words at least this long is a pause (Goldman-Eisler 1968)."""
MIN_RATE_SPAN_S: Final = 0.5
"""Word spans shorter than this give no rate."""
CLIP_LEVEL: Final = 0.999
"""Samples at or above this magnitude count as clipped."""
_DBFS_OF_PRAAT_DB: Final = 20.0 * math.log10(2e-5)
"""Praat reports intensity in dB re 2e-5 (air pressure in Pa); add this to get dB re 1.0, i.e. dBFS."""
_HARMONICITY_UNVOICED: Final = -200.0
"""Praat's harmonicity value for frames it finds unvoiced or silent."""
_SPAN_BRIDGE_S: Final = 0.3
_SPAN_MAX_S: Final = 5.0


# -- measuring -------------------------------------------------------------------------------------------------------


def extract_features(
    audio: Audio,
    words: Sequence[Word] = (),
    *,
    speech_probabilities: npt.NDArray[np.float32] | None = None,
) -> VoiceFeatures:
    """Measure ``audio`` (float32 mono 16 kHz) and, when given, its ``words`` (times in seconds from ``audio[0]``).

    ``speech_probabilities``: optional Silero VAD output for the same audio (one value per 512-sample frame, as
    :meth:`voxgate.analysis.vad.SileroVad.probabilities` returns); with it, frames count as speech only where the VAD
    agrees, which keeps steady background noise out of the loudness and voicing figures.

    Never raises on content: silence, noise, clipped, very short audio (< 0.3 s) or NaNs give a
    :class:`VoiceFeatures` with None for what cannot be measured. Raises ``ValueError`` only for a non-1-D array.
    Blocks the calling thread (holding the GIL during each Praat call) for ~5-12 ms per second of audio.
    """
    samples = np.asarray(audio, dtype=np.float64)
    if samples.ndim != 1:
        raise ValueError(f"prosody expects mono audio (a 1-D array), got shape {samples.shape}")
    samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    duration = samples.shape[0] / SAMPLE_RATE
    measured: dict[str, Any] = {}
    timeline: _Timeline | None = None
    if samples.shape[0]:
        measured["clipped_ratio"] = float(np.mean(np.abs(samples) >= CLIP_LEVEL))
        if duration >= MIN_AUDIO_S and np.any(samples):
            sound = parselmouth.Sound(samples, sampling_frequency=SAMPLE_RATE)
            timeline = _speech_timeline(sound, speech_probabilities)
            if timeline is not None:
                measured.update(_audio_measures(sound, timeline))
    return VoiceFeatures(duration_s=duration, **measured, **_word_measures(words, timeline))


@dataclass(frozen=True, slots=True)
class _Timeline:
    """The intensity contour: frame times, levels in dBFS, which frames are speech, and the noise floor."""

    times: FloatArray
    levels: FloatArray
    speech: BoolArray
    noise_floor_dbfs: float

    def speech_at(self, times: FloatArray) -> BoolArray:
        return _nearest(self.times, self.speech, times)


def _speech_timeline(sound: parselmouth.Sound, vad: npt.NDArray[np.float32] | None) -> _Timeline | None:
    """Speech frames from the intensity contour (and the VAD); None when Praat cannot analyse the sound."""
    try:
        intensity = sound.to_intensity(minimum_pitch=INTENSITY_MIN_PITCH_HZ, time_step=TIME_STEP_S)
    except parselmouth.PraatError:
        return None
    times = np.asarray(intensity.xs(), dtype=np.float64)
    levels = np.maximum(np.asarray(intensity.values[0], dtype=np.float64) + _DBFS_OF_PRAAT_DB, MIN_LEVEL_DBFS)
    top, floor = (float(v) for v in np.percentile(levels, [99, 5]))
    noise_rule = min(floor + NOISE_MARGIN_DB, top - NOISE_RULE_MAX_DB)
    threshold = max(top - SILENCE_THRESHOLD_DB, noise_rule, ABSOLUTE_FLOOR_DBFS)
    speech: BoolArray = levels >= threshold
    if vad is not None:
        probs = np.asarray(vad, dtype=np.float64).reshape(-1)
        if probs.size == 0:
            speech[:] = False
        else:
            index = np.minimum((times * SAMPLE_RATE / VAD_FRAME_SAMPLES).astype(np.int64), probs.size - 1)
            speech &= probs[index] >= VAD_THRESHOLD
    return _Timeline(times, levels, speech, floor)


def _audio_measures(sound: parselmouth.Sound, timeline: _Timeline) -> dict[str, Any]:
    out: dict[str, Any] = {}
    speech = timeline.speech
    n_speech = int(np.count_nonzero(speech))
    out["speech_s"] = n_speech * TIME_STEP_S
    if n_speech:
        speech_levels = timeline.levels[speech]
        loudness = float(10.0 * np.log10(np.mean(10.0 ** (speech_levels / 10.0))))
        p10, p90 = np.percentile(speech_levels, [10, 90])
        out.update(
            loudness_dbfs=loudness,
            loudness_range_db=float(p90 - p10),
            snr_db=loudness - timeline.noise_floor_dbfs,
        )

    # F0, two passes.
    pitch = _pitch(sound, PITCH_FLOOR_HZ, PITCH_CEILING_HZ)
    if pitch is None:
        return out
    f0, voiced = _voiced_f0(pitch, timeline)
    floor = PITCH_FLOOR_HZ
    if np.count_nonzero(voiced) * TIME_STEP_S >= MIN_VOICED_S:
        q25, q75 = np.percentile(f0[voiced], [25, 75])
        floor = float(np.clip(0.75 * q25, PITCH_FLOOR_HZ, PITCH_CEILING_HZ / 2))
        ceiling = float(np.clip(1.5 * q75, floor * 2, PITCH_CEILING_HZ))
        second = _pitch(sound, floor, ceiling)
        if second is not None:
            pitch = second
            f0, voiced = _voiced_f0(pitch, timeline)
    voiced_s = float(np.count_nonzero(voiced)) * TIME_STEP_S
    out["voiced_s"] = voiced_s
    if n_speech:
        out["voiced_ratio"] = min(1.0, float(np.count_nonzero(voiced)) / n_speech)
    if voiced_s < MIN_VOICED_S:
        return out
    hz = f0[voiced]
    median, p10, p90 = (float(v) for v in np.percentile(hz, [50, 10, 90]))
    out.update(
        f0_median_hz=median,
        f0_p10_hz=p10,
        f0_p90_hz=p90,
        f0_range_semitones=_semitones(p90 / p10),
        f0_std_semitones=float(np.std(12.0 * np.log2(hz / median))),
    )

    # Voice quality.
    out["hnr_db"] = _hnr(sound, floor, np.asarray(pitch.xs(), dtype=np.float64), voiced)
    try:
        points = call([sound, pitch], "To PointProcess (cc)")
        jitter = float(call(points, "Get jitter (local)", 0.0, 0.0, 0.0001, 0.02, 1.3))
        shimmer = float(call([sound, points], "Get shimmer (local)", 0.0, 0.0, 0.0001, 0.02, 1.3, 1.6))
    except parselmouth.PraatError:
        return out
    out["jitter_local"] = jitter if math.isfinite(jitter) else None
    out["shimmer_local"] = shimmer if math.isfinite(shimmer) else None
    return out


def _pitch(sound: parselmouth.Sound, floor: float, ceiling: float) -> parselmouth.Pitch | None:
    try:
        return sound.to_pitch_ac(time_step=TIME_STEP_S, pitch_floor=floor, pitch_ceiling=ceiling)
    except parselmouth.PraatError:
        return None


def _voiced_f0(pitch: parselmouth.Pitch, timeline: _Timeline) -> tuple[FloatArray, BoolArray]:
    """The pitch contour's F0 (0 where unvoiced) and which of its frames are voiced and inside speech."""
    f0 = np.asarray(pitch.selected_array["frequency"], dtype=np.float64)
    voiced: BoolArray = (f0 > 0) & timeline.speech_at(np.asarray(pitch.xs(), dtype=np.float64))
    return f0, voiced


def _nearest(src_times: FloatArray, src_mask: BoolArray, dst_times: FloatArray) -> BoolArray:
    """``src_mask`` sampled at ``dst_times`` (nearest frame); False outside the source contour's time span."""
    if src_times.size == 0:
        return np.zeros(dst_times.shape, dtype=np.bool_)
    step = src_times[1] - src_times[0] if src_times.size > 1 else TIME_STEP_S
    index = np.rint((dst_times - src_times[0]) / step).astype(np.int64)
    inside = (index >= 0) & (index < src_times.size)
    out: BoolArray = np.zeros(dst_times.shape, dtype=np.bool_)
    out[inside] = src_mask[index[inside]]
    return out


def _hnr(sound: parselmouth.Sound, floor: float, pitch_times: FloatArray, voiced: BoolArray) -> float | None:
    """Mean HNR (dB) over the voiced frames, analysing only the voiced stretches, in pieces of <= 5 s.

    Harmonicity (cc) is the costly analysis (~20 ms per second of audio at a 60 Hz floor) and parselmouth holds the
    GIL through each Praat call: skipping unvoiced audio saves a third to a half of the work, and the pieces bound
    how long one call blocks other Python threads (an event loop)."""
    values: list[FloatArray] = []
    pad = 2.0 / floor + TIME_STEP_S
    for start, end in _spans(pitch_times, voiced):
        try:
            part = sound.extract_part(
                from_time=max(sound.xmin, start - pad),
                to_time=min(sound.xmax, end + pad),
                window_shape=parselmouth.WindowShape.RECTANGULAR,
                relative_width=1.0,
                preserve_times=True,
            )
            harmonicity = part.to_harmonicity_cc(
                time_step=TIME_STEP_S, minimum_pitch=floor, silence_threshold=0.1, periods_per_window=1.0
            )
        except parselmouth.PraatError:
            continue
        hnr = np.asarray(harmonicity.values[0], dtype=np.float64)
        times = np.asarray(harmonicity.xs(), dtype=np.float64)
        keep = (hnr > _HARMONICITY_UNVOICED) & (times >= start) & (times < end)
        keep &= _nearest(pitch_times, voiced, times)
        values.append(hnr[keep])
    joined = np.concatenate(values) if values else np.zeros(0)
    return float(np.mean(joined)) if joined.size else None


def _spans(times: FloatArray, mask: BoolArray) -> list[tuple[float, float]]:
    """Time spans covering the True frames of ``mask``: runs closer than 0.3 s merged, then cut to <= 5 s."""
    spans: list[tuple[float, float]] = []
    index = np.flatnonzero(mask)
    if index.size == 0:
        return spans
    breaks = np.flatnonzero(np.diff(times[index]) > _SPAN_BRIDGE_S)
    firsts = np.concatenate(([0], breaks + 1))
    lasts = np.concatenate((breaks, [index.size - 1]))
    half = TIME_STEP_S / 2
    for first, last in zip(firsts, lasts, strict=True):
        start, end = float(times[index[first]]) - half, float(times[index[last]]) + half
        pieces = max(1, math.ceil((end - start) / _SPAN_MAX_S))
        step = (end - start) / pieces
        spans += [(start + k * step, start + (k + 1) * step) for k in range(pieces)]
    return spans


def _semitones(ratio: float) -> float:
    return 12.0 * math.log2(ratio)


def _word_measures(words: Sequence[Word], timeline: _Timeline | None) -> dict[str, Any]:
    """Rate and pause measures from word timestamps, with the audio's silences when known (see the module doc)."""
    timed = sorted(
        (w for w in words if math.isfinite(w.start) and math.isfinite(w.end) and w.end >= w.start),
        key=lambda w: (w.start, w.end),
    )
    if not timed:
        return {}
    out: dict[str, Any] = {"word_count": len(timed)}
    first, last = timed[0].start, max(w.end for w in timed)
    # A 10 ms grid over the words' span: silent where no word covers it, or where the audio has no speech.
    steps = np.arange(max(0, math.ceil((last - first) / TIME_STEP_S)), dtype=np.float64)
    grid: FloatArray = first + (steps + 0.5) * TIME_STEP_S
    silent: BoolArray = np.ones(grid.shape, dtype=np.bool_)
    for w in timed:
        silent[(grid >= w.start) & (grid < w.end)] = False
    if timeline is not None and timeline.times.size:
        analysed = (grid >= timeline.times[0] - TIME_STEP_S) & (grid <= timeline.times[-1] + TIME_STEP_S)
        silent |= analysed & ~timeline.speech_at(grid)
    sounding = np.flatnonzero(~silent)
    if sounding.size == 0:
        return out
    silent = silent[sounding[0] : sounding[-1] + 1]  # silence at the span's ends is not a pause
    span = silent.size * TIME_STEP_S
    if span < MIN_RATE_SPAN_S:
        return out
    pauses = [n * TIME_STEP_S for n in _runs(silent) if n * TIME_STEP_S >= PAUSE_MIN_S - 1e-9]
    paused = sum(pauses)
    out["speaking_rate_wpm"] = len(timed) / span * 60.0
    out["articulation_rate_wpm"] = len(timed) / (span - paused) * 60.0
    out["pause_ratio"] = paused / span
    out["mean_pause_s"] = paused / len(pauses) if pauses else None
    return out


def _runs(mask: BoolArray) -> list[int]:
    """Lengths of the runs of True in ``mask``."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [int(n) for n in edges[1::2] - edges[::2]]


# -- pitch labels ----------------------------------------------------------------------------------------------------

PITCH_LABELS: Final = ("very-low", "low", "medium-low", "medium", "medium-high", "high", "very-high", "unclear")

_MALE_HZ: Final = 120.0
_FEMALE_HZ: Final = 210.0
_PITCH_CENTRE_HZ: Final = math.sqrt(_MALE_HZ * _FEMALE_HZ)
_PITCH_BIN_ST: Final = _semitones(_FEMALE_HZ / _MALE_HZ) / 2.0

PITCH_BINS: Final[tuple[tuple[str, float, float], ...]] = tuple(
    (
        label,
        0.0 if k == -3 else _PITCH_CENTRE_HZ * 2.0 ** ((k - 0.5) * _PITCH_BIN_ST / 12.0),
        math.inf if k == 3 else _PITCH_CENTRE_HZ * 2.0 ** ((k + 0.5) * _PITCH_BIN_ST / 12.0),
    )
    for k, label in zip(range(-3, 4), PITCH_LABELS[:7], strict=True)
)
"""(label, lower Hz, upper Hz) of each pitch class: 4.84-semitone bins on a log-frequency scale.

Built from two anchors, the typical habitual speaking F0 of adult men and women, taken as the midpoints of the
ranges 85-155 Hz (men) and 165-255 Hz (women) that Baken (2000, "Clinical Measurement of Speech and Voice", p. 177,
after Fitch & Holbrook 1970) gives: 120 Hz and 210 Hz, the usual textbook figures. ``medium`` is centred on their
geometric mean (158.7 Hz, the voice that is neither typically male nor typically female), and every bin is half the
men-women distance wide (4.84 st), so the typical man sits in the middle of ``medium-low`` and the typical woman in
the middle of ``medium-high``:

============  ===========  ==================================================================
label         F0 (Hz)      who typically lands there
============  ===========  ==================================================================
very-low      < 78.9       very deep male voices, creaky voice
low           78.9-104.3   low male voices (lower part of the 85-155 Hz male range)
medium-low    104.3-138.0  typical adult men (centre 120 Hz)
medium        138.0-182.6  high male / low female voices, older women (Berg et al. 2017: 168.5 Hz)
medium-high   182.6-241.5  typical adult women (centre 210 Hz)
high          241.5-319.5  high female voices; children 6-10 (262-281 Hz, Sorenson 1989)
very-high     > 319.5      young children, falsetto, excited or shouted speech
============  ===========  ==================================================================

Loud speech raises F0 (Berg et al. 2017, J Voice 31(2): men 112 Hz conversational, 130 Hz "classroom" voice, 176 Hz
shouting), so a projecting speaker is labelled higher than their conversational voice would be: the label describes
the voice in the audio, not the speaker's sex or age.

Measured on the shared clips (bench/prosody_norms.py): the Harvard speaker spk1 190-211 Hz in all six sentences
(medium-high every time), spk2 115-157 Hz (medium-low or medium, straddling the 138 Hz edge), the license reader
127 Hz reading English and 154 Hz reading German, the two-speaker clip's voices 91 Hz and 145 Hz, and JFK 237 Hz:
a man, but projecting outdoors (the harmonics are spaced ~240 Hz apart, so it is not an octave error).
"""

_PITCH_TRACK_SD_ST: Final = 0.5
"""Semitones of uncertainty in a clip's median F0 that more audio does not remove (tracker error, residual octave
errors, recording)."""
_F0_SAMPLES_PER_VOICED_S: Final = 4.0
"""Independent F0 observations per second of voicing (frames within a syllable are strongly correlated; English
has ~4-5 syllables per second)."""
_PITCH_FULL_CONFIDENCE_VOICED_S: Final = 2.0
"""Seconds of voicing before pitch labels may reach full confidence (under 1 s: at most 0.5)."""
MIN_LABEL_CONFIDENCE: Final = 0.01
"""Labels below this confidence are left out of the lists."""


def pitch_labels(features: VoiceFeatures) -> list[tuple[str, float]]:
    """The pitch class(es) of the median F0, most likely first; confidences sum to 1 (before dropping < 0.01).

    Confidence is a soft assignment: the speaker's median F0 is taken as normally distributed on the semitone scale
    around the measured median, with standard deviation ``sqrt(0.5^2 + (1.2533 * sd / sqrt(n))^2)`` semitones: a
    0.5 st floor (tracker error) plus the standard error of a median of ``n`` independent observations
    (``sd`` = F0 standard deviation in semitones, ``n`` = 4 per voiced second). Each label gets the probability mass
    of its bin in :data:`PITCH_BINS`, so a median on a bin edge gives ~0.5 / 0.5 and one mid-bin with a few
    seconds of speech gives > 0.9. Then the whole is scaled by ``min(1, voiced seconds / 2)`` (under 1 s of voicing
    no label exceeds 0.5) and the rest goes to ``unclear``. Without a measured F0: ``[("unclear", 1.0)]``.

    The model's spread for one 2-second sentence (~1.3 st) matches the data: the six sentence medians of one speaker
    scatter by 0.7 st (spk1) and 1.8 st (spk2).
    """
    median, voiced_s = features.f0_median_hz, features.voiced_s
    if median is None or voiced_s is None or median <= 0 or voiced_s < MIN_VOICED_S:
        return [("unclear", 1.0)]
    spread = features.f0_std_semitones or 0.0
    n = max(1.0, voiced_s * _F0_SAMPLES_PER_VOICED_S)
    sd = math.hypot(_PITCH_TRACK_SD_ST, 1.2533 * spread / math.sqrt(n))
    reliability = min(1.0, voiced_s / _PITCH_FULL_CONFIDENCE_VOICED_S)
    scores: dict[str, float] = {}
    for label, low, high in PITCH_BINS:
        mass = _normal_cdf(_st_distance(high, median) / sd) - _normal_cdf(_st_distance(low, median) / sd)
        scores[label] = reliability * mass
    scores["unclear"] = 1.0 - reliability
    return _ranked(scores)


def _st_distance(edge_hz: float, median_hz: float) -> float:
    """Signed semitones from the median to a bin edge (edges 0 and inf map to -inf / +inf)."""
    if edge_hz <= 0:
        return -math.inf
    if math.isinf(edge_hz):
        return math.inf
    return _semitones(edge_hz / median_hz)


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    kept = [(label, float(min(1.0, max(0.0, c)))) for label, c in scores.items() if c >= MIN_LABEL_CONFIDENCE]
    return sorted(kept, key=lambda item: -item[1])


# -- vocal style labels ----------------------------------------------------------------------------------------------

VOCAL_STYLE_LABELS: Final = (
    "measured",
    "fast-paced",
    "conversational",
    "expressive",
    "monotone",
    "steady",
    "loud",
    "soft-spoken",
    "breathy",
    "rough",
)


@dataclass(frozen=True, slots=True)
class Threshold:
    """One edge of a style label: a value in the measurement's own units, and the logistic's scale in those units.

    Evidence for "above" is ``1 / (1 + exp(-(x - value) / scale))``: 0.5 on the threshold, 0.73 one scale past it,
    0.95 three scales past it.
    """

    value: float
    scale: float

    def above(self, x: float) -> float:
        return _logistic((x - self.value) / self.scale)

    def below(self, x: float) -> float:
        return _logistic((self.value - x) / self.scale)


SLOW_RATE_WPM: Final = Threshold(130.0, 10.0)
"""``measured`` below this speaking rate (pauses included): US speakers usually talk at 125-150 words per minute
(Lucas 2004, "The Art of Public Speaking", p. 300); 130 is the bottom of that band. Whisper's word timings on the
JFK clip (an inaugural address famous for its slow, deliberate delivery) give 127 wpm."""
FAST_RATE_WPM: Final = Threshold(180.0, 10.0)
"""``fast-paced`` above this speaking rate: the top of the 160-180 wpm that radio style guides recommend for news
(Rodero 2012, Text & Talk 32(3)) and above the 150-160 wpm of audiobooks; the second Harvard-sentence speaker,
reading isolated sentences quickly, measures 190-290 wpm."""
LONG_PAUSE_S: Final = Threshold(0.6, 0.1)
"""``measured`` also with a mean pause above this: the JFK clip's pauses average 0.74 s, the audiobook-style read of
the MIT license 0.43 s (bench/prosody_norms.py); silent pauses in read speech mostly fall in 0.2-1 s (Campione &
Veronis 2002, "A large-scale multilingual study of silent pause duration")."""
NARROW_F0_ST: Final = Threshold(4.0, 0.75)
"""``monotone`` below this p10-p90 F0 range (semitones): the narrowest neutral read sentence measured spans 3.8 st,
the others 5.3-8.9 st; 4 st is a major third, the swing of a flat declarative with little accenting."""
WIDE_F0_ST: Final = Threshold(10.0, 1.0)
"""``expressive`` above this p10-p90 F0 range: wider than every neutral read clip measured (3.8-9.8 st, the noisy
hum-laden channel 11.3 st); lively discourse widens the F0 distribution (Traunmüller & Eriksson 1995)."""
LOUD_DBFS: Final = Threshold(-16.0, 2.0)
"""``loud`` above this speech level: louder than the -16 LUFS that streaming/podcast platforms normalise to, 7 dB over
EBU R 128's -23 LUFS broadcast target (speech RMS in dBFS is within a few dB of its LUFS)."""
SOFT_DBFS: Final = Threshold(-35.0, 2.0)
"""``soft-spoken`` below this speech level: 12 dB under the broadcast target; the quietest clips measured sit at
-30 to -33 dBFS."""
LOUDNESS_MAX_CONFIDENCE: Final = 0.6
"""dBFS depends on microphone gain and distance as much as on the voice, so loudness labels never exceed this."""
LOW_HNR_DB: Final = Threshold(7.0, 1.5)
"""``breathy`` below this mean HNR. Sustained vowels of healthy voices reach ~20 dB and more (Boersma 1993; Praat's
voice report), running speech much less because of onsets, offsets and voiced consonants: 11.8-24.5 dB on the clean
clips measured, 7.9 dB on the one with mains hum (SNR ~17 dB), which the SNR guard below discounts."""
HIGH_JITTER: Final = Threshold(0.045, 0.004)
"""``rough`` above this local jitter (a fraction). Praat's pathology threshold, 1.04 % (after MDVP), is for sustained
vowels: every running-speech clip measured exceeds it (1.3-3.4 % clean, 3.6 % on the noisy channel), intonation
and voicing transitions being counted as jitter, so the threshold sits about a point above all of them."""
HIGH_SHIMMER: Final = Threshold(0.15, 0.015)
"""``rough`` above this local shimmer. Praat's sustained-vowel threshold is 3.81 %; running speech measured 4.7-12.2 %
on the clean clips and 14.1 % on the noisy channel."""
QUALITY_MIN_SNR_DB: Final = Threshold(20.0, 2.5)
"""Voice-quality labels are weighted by evidence that the recording's SNR is above this: noise lowers HNR and raises
shimmer, and below ~20 dB the recording, not the voice, sets them."""
QUALITY_MAX_CONFIDENCE: Final = 0.7
"""HNR, jitter and shimmer of running speech also move with reverberation and codecs the SNR estimate does not see."""
MAX_CLIPPED_RATIO: Final = 0.001
"""With more clipped samples than this, voice-quality labels are not emitted (clipping distorts the waveform)."""
RATE_FULL_CONFIDENCE_WORDS: Final = 15
"""Words before rate and pause labels may reach full confidence: one short sentence shows the sentence's pace."""
F0_RANGE_FULL_CONFIDENCE_VOICED_S: Final = 3.0
"""Seconds of voicing before F0-range labels may reach full confidence: a range needs several intonation phrases."""
LEVEL_FULL_CONFIDENCE_SPEECH_S: Final = 2.0
MIN_STYLE_CONFIDENCE: Final = 0.05
"""Style labels below this are left out."""


def vocal_style_labels(features: VoiceFeatures, *, language: str | None = None) -> list[tuple[str, float]]:
    """Style labels with independent confidences in [0, 1], highest first. They do not sum to 1: a voice can be both
    ``measured`` and ``expressive``, or nothing in particular (an empty list).

    Each label's confidence is ``reliability x evidence``. The evidence is a logistic of the distance from the
    measurement to its threshold (:class:`Threshold`, each constant below documents its value and source); the
    reliability in [0, 1] says how much data the measurement rests on (words counted, seconds of voicing or speech)
    and, for loudness and voice quality, caps what the measurement can support at all. A label whose measurement is
    None is not emitted.

    ====================  ============================================================================
    label                 evidence
    ====================  ============================================================================
    measured              speaking rate < 130 wpm, or mean pause > 0.6 s (the stronger of the two)
    fast-paced            speaking rate > 180 wpm
    conversational        speaking rate between 130 and 180 wpm, pauses not long (evidences multiplied)
    monotone              F0 p10-p90 range < 4 semitones
    expressive            F0 p10-p90 range > 10 semitones
    steady                F0 range between 4 and 10 semitones
    loud / soft-spoken    speech level > -16 dBFS / < -35 dBFS, at most 0.6
    breathy               mean HNR < 7 dB, weighted by SNR > 20 dB evidence, at most 0.7
    rough                 jitter > 4.5 % or shimmer > 15 %, same weighting
    ====================  ============================================================================

    Word rates are language specific: the thresholds are for English, so the rate labels (``measured`` from the rate,
    ``fast-paced``, ``conversational``) are only given when ``language`` is None (assumed English) or English
    (``en``, ``en-US``, ...); ``measured`` from pauses is given for every language.
    """
    scores: dict[str, float] = {}
    english = language is None or language.lower().split("-")[0] == "en"
    words = features.word_count
    rate_reliability = min(1.0, words / RATE_FULL_CONFIDENCE_WORDS)
    measured: list[float] = []
    short_pauses = 1.0 if features.mean_pause_s is None else LONG_PAUSE_S.below(features.mean_pause_s)
    if features.speaking_rate_wpm is not None and english:
        rate = features.speaking_rate_wpm
        measured.append(SLOW_RATE_WPM.below(rate))
        scores["fast-paced"] = rate_reliability * FAST_RATE_WPM.above(rate)
        middle = SLOW_RATE_WPM.above(rate) * FAST_RATE_WPM.below(rate)
        scores["conversational"] = rate_reliability * middle * short_pauses
    if features.mean_pause_s is not None:
        measured.append(LONG_PAUSE_S.above(features.mean_pause_s))
    if measured:
        scores["measured"] = rate_reliability * max(measured)

    if features.f0_range_semitones is not None and features.voiced_s is not None:
        f0_range = features.f0_range_semitones
        reliability = min(1.0, features.voiced_s / F0_RANGE_FULL_CONFIDENCE_VOICED_S)
        scores["monotone"] = reliability * NARROW_F0_ST.below(f0_range)
        scores["expressive"] = reliability * WIDE_F0_ST.above(f0_range)
        scores["steady"] = reliability * NARROW_F0_ST.above(f0_range) * WIDE_F0_ST.below(f0_range)

    if features.loudness_dbfs is not None and features.speech_s is not None:
        reliability = LOUDNESS_MAX_CONFIDENCE * min(1.0, features.speech_s / LEVEL_FULL_CONFIDENCE_SPEECH_S)
        scores["loud"] = reliability * LOUD_DBFS.above(features.loudness_dbfs)
        scores["soft-spoken"] = reliability * SOFT_DBFS.below(features.loudness_dbfs)

    quality = _quality_reliability(features)
    if quality > 0:
        if features.hnr_db is not None:
            scores["breathy"] = quality * LOW_HNR_DB.below(features.hnr_db)
        rough = [
            t.above(x)
            for t, x in ((HIGH_JITTER, features.jitter_local), (HIGH_SHIMMER, features.shimmer_local))
            if x is not None
        ]
        if rough:
            scores["rough"] = quality * max(rough)
    return [(label, c) for label, c in _ranked(scores) if c >= MIN_STYLE_CONFIDENCE]


def _quality_reliability(features: VoiceFeatures) -> float:
    """How far HNR, jitter and shimmer can be trusted to describe the voice: data, SNR, clipping, and a cap."""
    if features.voiced_s is None or features.snr_db is None:
        return 0.0
    if features.clipped_ratio is not None and features.clipped_ratio > MAX_CLIPPED_RATIO:
        return 0.0
    data = min(1.0, features.voiced_s / _PITCH_FULL_CONFIDENCE_VOICED_S)
    return QUALITY_MAX_CONFIDENCE * data * QUALITY_MIN_SNR_DB.above(features.snr_db)


def _logistic(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
