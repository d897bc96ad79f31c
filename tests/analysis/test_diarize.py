"""Diarization's chunking, clustering and assignment (real voices end to end: test_service.py, server/test_http.py)."""

from __future__ import annotations

import numpy as np
import pytest

from voxgate.analysis.diarize import (
    CHUNK_SECONDS,
    DISTANCE,
    MAX_ANCHORS,
    Chunk,
    DiarizationOptions,
    OnlineSpeakers,
    assign,
    chunks_of,
    clip_of,
    cluster,
)
from voxgate.types import SAMPLE_RATE, Segment, Word


def _words(*spans: tuple[float, float]) -> tuple[Word, ...]:
    return tuple(Word(f"w{i}", a, b, 0.9) for i, (a, b) in enumerate(spans))


def test_a_pause_or_a_long_stretch_starts_a_new_chunk() -> None:
    segments = [
        Segment("a b c", 0.0, 3.0, _words((0.0, 0.4), (0.5, 0.9), (1.5, 2.0))),  # 0.6 s pause before the third
        Segment("", 3.0, 4.0),  # no words: one chunk of its own
        Segment("long", 4.0, 9.0, _words(*((4.0 + 0.5 * i, 4.4 + 0.5 * i) for i in range(8)))),
    ]
    chunks = chunks_of(segments)
    assert chunks[0] == Chunk(0.0, 0.9, 0, (0, 1))
    assert chunks[1] == Chunk(1.5, 2.0, 0, (2,))
    assert chunks[2] == Chunk(3.0, 4.0, 1, ())
    long = chunks[3:]
    assert all(c.segment == 2 and c.seconds <= CHUNK_SECONDS for c in long)
    assert len(long) == 2
    # Every word is in exactly one chunk, in order.
    assert [i for c in chunks for i in c.words] == list(range(11))


def test_shifted_chunks_take_their_place_in_the_whole_file() -> None:
    moved = Chunk(1.0, 2.0, 0, (0, 1)).shifted(30.0, segments=4, words=17)
    assert moved == Chunk(31.0, 32.0, 4, (17, 18))


def test_a_short_chunk_is_widened_around_its_centre() -> None:
    audio = np.arange(10 * SAMPLE_RATE, dtype=np.float32)
    clip = clip_of(audio, Chunk(5.0, 5.1, 0), offset=2.0)  # 3.0-3.1 s into this audio
    assert len(clip) == int(0.3 * SAMPLE_RATE)
    assert clip[0] == pytest.approx(2.9 * SAMPLE_RATE, abs=1)
    # At the edge of the audio the clip is cut, never wraps around.
    assert len(clip_of(audio, Chunk(0.0, 0.05, 0))) > 0


def _voices(rng: np.random.Generator, plan: list[int], spread: float = 0.05) -> np.ndarray:
    """Unit vectors around one random direction per voice (voice numbers as in ``plan``); ``spread``: noise norm."""
    centres = {v: rng.normal(size=256) for v in set(plan)}
    noise = spread / np.sqrt(256)
    vectors = np.stack([centres[v] / np.linalg.norm(centres[v]) + rng.normal(scale=noise, size=256) for v in plan])
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_clusters_are_numbered_by_first_appearance() -> None:
    rng = np.random.default_rng(0)
    plan = [7, 7, 3, 7, 3, 9, 3]
    speakers = cluster(_voices(rng, plan), [1.5] * len(plan))
    assert speakers == [1, 1, 2, 1, 2, 3, 2]


def test_speaker_count_bounds_are_honoured() -> None:
    rng = np.random.default_rng(1)
    plan = [0, 1, 2, 0, 1, 2]
    vectors = _voices(rng, plan)
    assert len(set(cluster(vectors, [1.5] * 6))) == 3
    assert len(set(cluster(vectors, [1.5] * 6, DiarizationOptions(max_speakers=2)))) == 2
    same = _voices(rng, [0] * 6)
    assert len(set(cluster(same, [1.5] * 6))) == 1
    assert len(set(cluster(same, [1.5] * 6, DiarizationOptions(min_speakers=2)))) == 2


def test_short_chunks_join_the_nearest_voice_without_shaping_the_clusters() -> None:
    rng = np.random.default_rng(2)
    plan = [0, 1, 0, 1, 1, 0]
    vectors = _voices(rng, plan)
    seconds = [1.5, 1.5, 0.3, 1.5, 0.2, 1.5]
    assert cluster(vectors, seconds) == [1, 2, 1, 2, 2, 1]


def test_the_distance_threshold_separates_voices_not_noise() -> None:
    rng = np.random.default_rng(3)
    # Noise of norm 0.3 puts same-voice chunks ~0.08 apart in cosine distance: under the threshold, one speaker.
    assert len(set(cluster(_voices(rng, [0] * 20, spread=0.3), [1.5] * 20))) == 1
    # Two voices whose directions are DISTANCE * 2 apart are two speakers.
    a = rng.normal(size=256)
    b = rng.normal(size=256)
    b -= (b @ a) / (a @ a) * a  # orthogonal to a
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    angle = np.arccos(1 - 2 * DISTANCE)
    second = np.cos(angle) * a + np.sin(angle) * b
    vectors = np.stack([a, a, second, second]).astype(np.float32)
    assert cluster(vectors, [1.5] * 4) == [1, 1, 2, 2]


def test_a_very_long_file_clusters_a_spread_sample_and_labels_every_chunk() -> None:
    rng = np.random.default_rng(7)
    plan = [i % 3 for i in range(MAX_ANCHORS + 1500)]
    speakers = cluster(_voices(rng, plan, spread=0.3), [1.5] * len(plan))
    assert len(speakers) == len(plan)
    assert speakers[:6] == [1, 2, 3, 1, 2, 3]
    assert all(speakers[i] == speakers[i % 3] for i in range(len(plan)))


def test_nothing_or_one_chunk() -> None:
    assert cluster(np.zeros((0, 256), dtype=np.float32), []) == []
    one = _voices(np.random.default_rng(4), [0])
    assert cluster(one, [0.4]) == [1]


def test_words_take_their_chunk_and_segments_the_voice_heard_longest() -> None:
    chunks = [Chunk(0.0, 2.0, 0, (0, 1)), Chunk(2.5, 3.0, 0, (2,)), Chunk(3.0, 4.0, 1, ()), Chunk(4.0, 5.0, 2, (3,))]
    who = assign(chunks, [1, 2, 2, 1], words=4, segments=3)
    assert who.words == (1, 1, 2, 1)
    assert who.segments == (1, 2, 1)
    assert who.count == 2


def test_online_speakers_join_a_known_voice_or_start_a_new_one() -> None:
    rng = np.random.default_rng(5)
    turns = _voices(rng, [0, 1, 0, 2, 1, 0], spread=0.3)
    online = OnlineSpeakers()
    assert [online.assign(v, 2.0) for v in turns] == [1, 2, 1, 3, 2, 1]
    assert online.count == 3


def test_online_speakers_respect_the_maximum_and_short_turns() -> None:
    rng = np.random.default_rng(6)
    a, b, c = _voices(rng, [0, 1, 2], spread=0.0)
    capped = OnlineSpeakers(DiarizationOptions(max_speakers=2))
    assert [capped.assign(v, 2.0) for v in (a, b, c)][:2] == [1, 2]
    assert capped.count == 2  # the third voice joined the nearer of the two
    online = OnlineSpeakers()
    assert online.assign(a, 0.3) == 1  # the first turn founds a speaker, however short
    assert online.assign(b, 0.3) == 1  # a short turn never founds another: it joins the nearest
    assert online.assign(b, 2.0) == 2
