"""Decoding in worker processes: a crashed or hung decoder costs its request, never the caller."""

from __future__ import annotations

import numpy as np
import pytest

from tests.speech import DATA
from voxgate.audio import isolate
from voxgate.audio.decode import decode, iter_decode, probe
from voxgate.errors import AudioDecodeError
from voxgate.types import SAMPLE_RATE

JFK = DATA / "en" / "jfk.flac"
LICENSE_MP3 = DATA / "multilingual" / "en-de-license.mp3"


def workers() -> list[int]:
    return isolate._POOL.pids()


def test_isolated_and_in_process_decodes_are_identical() -> None:
    for source in (JFK, LICENSE_MP3.read_bytes()):
        np.testing.assert_array_equal(decode(source, isolated=True), decode(source, isolated=False))
        assert probe(source, isolated=True) == probe(source, isolated=False)


def test_chunks_stream_back_one_at_a_time_and_workers_are_reused() -> None:
    decode(JFK, isolated=True)
    before = set(workers())
    chunks = iter_decode(LICENSE_MP3, chunk_seconds=1.0, isolated=True)
    assert len(next(chunks)) == SAMPLE_RATE
    chunks.close()  # abandoned: the worker stops and goes back to the pool
    assert len(decode(JFK, isolated=True)) == 11 * SAMPLE_RATE
    assert set(workers()) == before  # no new process
    assert len(workers()) <= isolate._MAX_IDLE


def test_decodes_run_side_by_side_and_only_a_few_workers_stay() -> None:
    streams = [iter_decode(LICENSE_MP3, chunk_seconds=10.0, isolated=True) for _ in range(4)]
    firsts = [next(s) for s in streams]  # four inputs open at once, each in its own worker
    assert len(set(workers())) >= 4
    for first in firsts:
        np.testing.assert_array_equal(first, firsts[0])
    for stream in streams:
        assert sum(len(c) for c in stream) == 958_400 - 10 * SAMPLE_RATE
    assert len(workers()) <= isolate._MAX_IDLE


def test_errors_cross_the_process_boundary_as_themselves() -> None:
    with pytest.raises(AudioDecodeError, match=r"^could not decode audio: "):
        decode(b"not audio at all" * 100, isolated=True)
    with pytest.raises(ValueError, match="chunk_seconds"):
        iter_decode(JFK, chunk_seconds=0, isolated=True)
