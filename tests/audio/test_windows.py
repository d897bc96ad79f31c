from __future__ import annotations

import numpy as np

from voxgate.audio.windows import iter_windows, quietest_cut
from voxgate.types import SAMPLE_RATE


def _noise_with_pauses(seconds: int, pauses: list[float], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal(seconds * SAMPLE_RATE) * 0.3).astype(np.float32)
    for p in pauses:
        i = int(p * SAMPLE_RATE)
        audio[i : i + SAMPLE_RATE // 2] = 0.0
    return audio


def _chunks(audio: np.ndarray, size: int) -> list[np.ndarray]:
    return [audio[i : i + size] for i in range(0, len(audio), size)]


def test_windows_cover_the_audio_exactly_once() -> None:
    audio = _noise_with_pauses(95, [18.0, 37.5, 56.0, 77.0])
    windows = list(iter_windows(_chunks(audio, 7 * SAMPLE_RATE), window_seconds=20, search_seconds=5))
    assert len(windows) >= 4
    offset = 0
    for start, window in windows:
        assert start == offset
        assert len(window) <= 20 * SAMPLE_RATE
        offset += len(window)
    assert offset == len(audio)
    np.testing.assert_array_equal(np.concatenate([w for _, w in windows]), audio)


def test_cuts_fall_inside_pauses() -> None:
    # With 20 s windows and a 5 s search region, each of these pauses lies where the next cut is searched for.
    pauses = [17.0, 35.0, 52.0, 70.0, 88.0]
    audio = _noise_with_pauses(95, pauses)
    windows = list(iter_windows(_chunks(audio, SAMPLE_RATE), window_seconds=20, search_seconds=5))
    cuts = [start / SAMPLE_RATE for start, _ in windows[1:]]
    assert len(cuts) == len(pauses)
    for cut in cuts:
        assert any(p <= cut <= p + 0.5 for p in pauses), (cut, pauses)


def test_short_audio_is_one_window() -> None:
    audio = _noise_with_pauses(3, [])
    windows = list(iter_windows([audio], window_seconds=300))
    assert len(windows) == 1
    assert windows[0][0] == 0
    assert len(windows[0][1]) == len(audio)


def test_quietest_cut_finds_the_silence() -> None:
    audio = _noise_with_pauses(10, [7.0])
    cut = quietest_cut(audio, 5 * SAMPLE_RATE)
    assert 7.0 * SAMPLE_RATE <= cut <= 7.5 * SAMPLE_RATE
