"""What only the SQLite store does: a file that survives reopening, audio files beside it, orphans swept."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from voxgate.errors import ResourceExhausted
from voxgate.jobs.sqlite import SqliteJobStore
from voxgate.jobs.store import JobState, NewJob

T0 = 1_000_000.0


def new() -> NewJob:
    return NewJob(id=uuid.uuid4().hex, owner="", request=b"{}")


def test_a_submitted_job_is_kept_with_its_audio_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    first = SqliteJobStore(path)
    job = first.submit(new(), b"RIFF-audio", max_queued=10, now=T0)
    assert job.state is JobState.QUEUED
    assert job.attempts == 0
    assert job.audio_bytes == 10
    first.close()
    again = SqliteJobStore(path)
    assert again.get(job.id) == job
    with again.audio(job.id) as audio:
        assert audio.read_bytes() == b"RIFF-audio"
    again.close()


def test_refused_and_finished_jobs_leave_no_audio_and_orphans_are_swept(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    store.submit(new(), b"a", max_queued=1, now=T0)
    with pytest.raises(ResourceExhausted):
        store.submit(new(), b"b", max_queued=1, now=T0)
    assert len(list(store.audio_dir.iterdir())) == 1  # the refused job's audio is not left behind
    orphan = store.audio_dir / uuid.uuid4().hex  # a crash between the audio and its row
    orphan.write_bytes(b"z")
    young = store.audio_dir / uuid.uuid4().hex  # a submit under way right now: its row is coming
    young.write_bytes(b"z")
    os.utime(orphan, (T0 - 7200, T0 - 7200))
    os.utime(young, (T0, T0))
    store.purge(T0)
    assert not orphan.exists()
    assert young.exists()
    assert len(list(store.audio_dir.iterdir())) == 2
    store.close()


def test_ids_that_are_not_job_ids_never_reach_the_file_system(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    with pytest.raises(ValueError, match="not a job id"):
        store.submit(NewJob(id="../../etc/passwd", owner="", request=b"{}"), b"x", max_queued=10, now=T0)
    store.close()
