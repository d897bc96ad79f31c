"""Decoding in worker processes: a crashed or hung decoder costs its request, never the caller."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import numpy as np
import pytest

from tests.speech import DATA
from voxgate.audio import isolate
from voxgate.audio.decode import decode, iter_decode, probe
from voxgate.errors import AudioDecodeError, ResourceExhausted
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


def _serving(chunks: Iterator[object]) -> int:
    """Process id of the worker decoding ``chunks`` (an isolated decode already started)."""
    frame = getattr(chunks, "gi_frame", None)
    assert frame is not None
    worker: isolate._Worker = frame.f_locals["worker"]
    return worker.process.pid


def test_a_decoder_that_crashes_costs_only_its_own_request() -> None:
    chunks = iter_decode(LICENSE_MP3, chunk_seconds=1.0, isolated=True)
    other = iter_decode(LICENSE_MP3, chunk_seconds=1.0, isolated=True)
    next(chunks), next(other)
    os.kill(_serving(chunks), signal.SIGKILL)  # what a segfault in a codec does to the process
    with pytest.raises(AudioDecodeError, match="the decoder crashed"):
        for _ in chunks:
            pass
    assert sum(len(c) for c in other) == 958_400 - SAMPLE_RATE  # the decode beside it never noticed
    assert len(decode(JFK, isolated=True)) == 11 * SAMPLE_RATE  # and the next one gets a healthy worker


def test_a_decoder_that_hangs_is_killed_and_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolate, "_REPLY_TIMEOUT", 1.0)
    chunks = iter_decode(LICENSE_MP3, chunk_seconds=1.0, isolated=True)
    next(chunks)
    hung = _serving(chunks)
    os.kill(hung, signal.SIGSTOP)  # alive, answering nothing: a decoder stuck in a loop
    try:
        with pytest.raises(AudioDecodeError, match="the decoder timed out"):
            next(chunks)
        assert hung not in workers()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung, signal.SIGKILL)
    assert len(decode(JFK, isolated=True)) == 11 * SAMPLE_RATE


def test_no_free_decoder_is_resource_exhausted(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = isolate._Pool(1)
    monkeypatch.setattr(isolate, "_POOL", pool)
    monkeypatch.setattr(isolate, "_ACQUIRE_TIMEOUT", 0.2)
    held = iter_decode(LICENSE_MP3, chunk_seconds=1.0, isolated=True)
    next(held)
    try:
        with pytest.raises(ResourceExhausted, match="decoders are busy"):
            decode(JFK, isolated=True)
    finally:
        held.close()
        pool.close()
