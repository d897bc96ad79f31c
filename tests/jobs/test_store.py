"""The :class:`JobStore` contract: every store keeps the same promises (durable submits, bounded queue, atomic leased
claims, results written once, retention). A new store (a server database) joins :data:`STORES` and must pass all."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from voxgate.errors import NotFound, ResourceExhausted
from voxgate.jobs.sqlite import SqliteJobStore
from voxgate.jobs.store import CallbackState, JobRecord, JobState, JobStore, NewJob

T0 = 1_000_000.0
LEASE = 30.0
DAY = 86400.0


def _postgres(request: pytest.FixtureRequest, tmp: Path) -> JobStore:
    from voxgate.jobs.postgres import PostgresJobStore

    return PostgresJobStore(request.getfixturevalue("postgres_url"), spool_dir=tmp)


STORES: dict[str, Callable[[pytest.FixtureRequest, Path], JobStore]] = {
    "sqlite": lambda _, tmp: SqliteJobStore(tmp / "jobs.sqlite3"),
    "postgres": _postgres,
}
"""Each store under test, made empty (in a temporary folder, or a new database on the tests' server)."""


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    s = STORES[request.param](request, tmp_path)
    yield s
    s.close()


def has_audio(store: JobStore, job_id: str) -> bool:
    try:
        with store.audio(job_id):
            return True
    except NotFound:
        return False


def new(owner: str = "", callback: str | None = None) -> NewJob:
    return NewJob(id=uuid.uuid4().hex, owner=owner, request=b'{"transcribeConfig": {}}', callback_url=callback)


def claim(store: JobStore, worker: str = "w1", now: float = T0, attempts: int = 3) -> JobRecord | None:
    return store.claim(worker, lease_seconds=LEASE, max_attempts=attempts, retention=DAY, now=now)


def test_a_submitted_job_is_kept_with_its_audio(store: JobStore) -> None:
    job = store.submit(new("alice"), b"RIFF-audio", max_queued=10, now=T0)
    assert job.state is JobState.QUEUED
    assert job.attempts == 0
    assert job.audio_bytes == 10
    assert store.get(job.id) == job
    with store.audio(job.id) as audio:
        assert audio.read_bytes() == b"RIFF-audio"
    assert store.get("0" * 32) is None


def test_the_queue_is_bounded(store: JobStore) -> None:
    store.submit(new(), b"a", max_queued=2, now=T0)
    store.submit(new(), b"b", max_queued=2, now=T0)
    with pytest.raises(ResourceExhausted):
        store.submit(new(), b"c", max_queued=2, now=T0)
    running = claim(store)
    assert running is not None
    store.finish(running.id, "w1", 1, result=b"{}", retention=DAY, now=T0)
    store.submit(new(), b"c", max_queued=2, now=T0)  # a finished job no longer counts


def test_claims_are_exclusive_under_concurrency(store: JobStore) -> None:
    ids = {store.submit(new(), b"x", max_queued=100, now=T0).id for _ in range(20)}
    taken: list[str] = []
    lock = threading.Lock()

    def grab(worker: str) -> None:
        while (job := claim(store, worker)) is not None:
            with lock:
                taken.append(job.id)

    threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(ids)  # each job claimed once


def test_an_expired_lease_is_claimed_again_and_the_stale_worker_writes_nothing(store: JobStore) -> None:
    job = store.submit(new(), b"x", max_queued=10, now=T0)
    first = claim(store, "dead")
    assert first is not None
    assert first.attempts == 1
    assert first.state is JobState.RUNNING
    assert claim(store, "other", now=T0 + LEASE / 2) is None  # leased
    second = claim(store, "alive", now=T0 + LEASE + 1)
    assert second is not None
    assert second.id == job.id
    assert second.attempts == 2
    # The first worker wakes up: its renewal and its result are refused.
    assert not store.renew(job.id, "dead", 1, lease_seconds=LEASE, progress=50, now=T0 + LEASE + 2)
    assert store.finish(job.id, "dead", 1, result=b"stale", retention=DAY, now=T0 + LEASE + 2) is None
    done = store.finish(job.id, "alive", 2, result=b"fresh", retention=DAY, now=T0 + LEASE + 3)
    assert done is not None
    assert done.state is JobState.SUCCEEDED
    assert done.progress == 100
    assert store.result(job.id) == b"fresh"
    # Written once: a second finish, even by the rightful worker, changes nothing.
    assert store.finish(job.id, "alive", 2, result=b"again", retention=DAY, now=T0 + LEASE + 4) is None
    assert store.result(job.id) == b"fresh"
    assert not has_audio(store, job.id)  # the audio goes when the job is done


def test_a_job_that_never_finishes_fails_after_its_attempts(store: JobStore) -> None:
    job = store.submit(new(), b"x", max_queued=10, now=T0)
    now = T0
    for attempt in (1, 2):
        claimed = claim(store, f"w{attempt}", now=now, attempts=2)
        assert claimed is not None
        assert claimed.attempts == attempt
        now += LEASE + 1
    assert claim(store, "w3", now=now, attempts=2) is None
    failed = store.get(job.id)
    assert failed is not None
    assert failed.state is JobState.FAILED
    assert failed.error_code == "internal"
    assert "2 times" in (failed.error_message or "")


def test_renew_records_progress_and_release_gives_the_job_back(store: JobStore) -> None:
    job = store.submit(new(), b"x", max_queued=10, now=T0)
    claimed = claim(store)
    assert claimed is not None
    assert store.renew(job.id, "w1", 1, lease_seconds=LEASE, progress=40, now=T0 + 1)
    assert store.renew(job.id, "w1", 1, lease_seconds=LEASE, progress=30, now=T0 + 2)  # never goes back
    assert store.get(job.id).progress == 40  # type: ignore[union-attr]
    assert store.release(job.id, "w1", 1, now=T0 + 3)
    back = store.get(job.id)
    assert back is not None
    assert back.state is JobState.QUEUED
    assert back.attempts == 0


def test_cancel(store: JobStore) -> None:
    queued = store.submit(new(), b"x", max_queued=10, now=T0)
    cancelled = store.cancel(queued.id, retention=DAY, now=T0)
    assert cancelled is not None
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.error_code == "cancelled"
    assert claim(store) is None
    running = store.submit(new(), b"y", max_queued=10, now=T0)
    assert claim(store) is not None
    store.cancel(running.id, retention=DAY, now=T0)
    assert not store.renew(running.id, "w1", 1, lease_seconds=LEASE, progress=10, now=T0)  # the worker learns it
    assert store.finish(running.id, "w1", 1, result=b"{}", retention=DAY, now=T0) is None
    assert store.cancel("0" * 32, retention=DAY, now=T0) is None


def test_retention_deletes_results_and_audio(store: JobStore) -> None:
    done = store.submit(new(), b"x", max_queued=10, now=T0)
    claim(store)
    store.finish(done.id, "w1", 1, result=b"{}", retention=60, now=T0)
    waiting = store.submit(new(), b"y", max_queued=10, now=T0)
    assert store.purge(T0 + 59) == 0
    assert store.result(done.id) == b"{}"
    assert store.purge(T0 + 7200) == 1
    assert store.get(done.id) is None
    assert store.result(done.id) is None
    assert store.get(waiting.id) is not None
    assert has_audio(store, waiting.id)


def test_list_is_per_owner_newest_first_in_pages(store: JobStore) -> None:
    mine = [store.submit(new("me"), b"x", max_queued=100, now=T0 + i).id for i in range(5)]
    store.submit(new("you"), b"x", max_queued=100, now=T0)
    first = store.list("me", limit=3)
    assert [j.id for j in first] == mine[::-1][:3]
    rest = store.list("me", limit=3, before=(first[-1].created_at, first[-1].id))
    assert [j.id for j in rest] == mine[::-1][3:]


def test_callbacks_are_pending_until_done(store: JobStore) -> None:
    job = store.submit(new(callback="https://example.com/hook"), b"x", max_queued=10, now=T0)
    plain = store.submit(new(), b"x", max_queued=10, now=T0)
    assert store.callbacks_pending() == []
    for _ in range(2):
        claimed = claim(store)
        assert claimed is not None
        store.fail(claimed.id, "w1", 1, code="audio_error", message="bad", retention=DAY, now=T0)
    assert [j.id for j in store.callbacks_pending()] == [job.id]
    assert store.get(plain.id).callback_state is CallbackState.NONE  # type: ignore[union-attr]
    store.callback_done(job.id, delivered=True)
    assert store.callbacks_pending() == []
