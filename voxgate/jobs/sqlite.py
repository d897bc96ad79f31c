"""The default :class:`~voxgate.jobs.store.JobStore`: SQLite (stdlib ``sqlite3``, WAL) in the home directory, each
job's audio a file beside the database.

Why files for the audio: the pipeline decodes a file path as a stream, so a four-hour recording is never read into
memory whole; the database stays small (rows and result documents), and its WAL does not grow by each upload. The
cost is two writes per submit: the audio is written, flushed to disk and renamed into place before the row that names
it is committed, so a crash in between leaves at worst an orphan file, which :meth:`purge` removes. Results are small
documents and live in the row, written in the same transaction that marks the job done: written once or not at all.

Concurrency: one connection, serialised by a lock (SQLite writes one transaction at a time anyway). Claims and
submits run in ``BEGIN IMMEDIATE`` transactions, so two servers sharing the file (one machine) never claim the same
job or overfill the queue. ``synchronous=FULL``: an accepted job survives power loss, not only a killed process.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from voxgate.errors import NotFound, ResourceExhausted
from voxgate.jobs.store import CallbackState, JobRecord, JobState, NewJob, StoreCounts, valid_job_id

__all__ = ["SqliteJobStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    state TEXT NOT NULL,
    request BLOB NOT NULL,
    callback_url TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_until REAL,
    error_code TEXT,
    error_message TEXT,
    result BLOB,
    expire_at REAL,
    callback_state TEXT NOT NULL DEFAULT 'NONE',
    audio_bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS job_windows (
    job_id TEXT NOT NULL,
    key TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, key)
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_expiry ON jobs (expire_at) WHERE expire_at IS NOT NULL;
"""

_COLUMNS = (
    "id, owner, state, request, callback_url, created_at, updated_at, progress, attempts, worker, lease_until, "
    "error_code, error_message, expire_at, callback_state, audio_bytes"
)

_ACTIVE = (JobState.QUEUED.value, JobState.RUNNING.value)


class SqliteJobStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.audio_dir = path.parent / "audio"
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # re-entered: a transaction may drop a job's audio and windows
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            self._db.executescript(_SCHEMA)

    # -- helpers --------------------------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: the write lock taken first, so a read-then-write is atomic across
        processes too."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _audio_path(self, job_id: str) -> Path:
        if not valid_job_id(job_id):  # ids become file names: never anything but hex
            raise ValueError(f"not a job id: {job_id!r}")
        return self.audio_dir / job_id

    def _drop_audio(self, job_id: str) -> None:
        """The job's audio and its kept windows: what only running it again would need."""
        self._audio_path(job_id).unlink(missing_ok=True)
        with self._lock:
            self._db.execute("DELETE FROM job_windows WHERE job_id = ?", (job_id,))

    @staticmethod
    def _record(row: tuple[Any, ...]) -> JobRecord:
        return JobRecord(
            id=row[0],
            owner=row[1],
            state=JobState(row[2]),
            request=bytes(row[3]),
            callback_url=row[4],
            created_at=row[5],
            updated_at=row[6],
            progress=row[7],
            attempts=row[8],
            worker=row[9],
            lease_until=row[10],
            error_code=row[11],
            error_message=row[12],
            expire_at=row[13],
            callback_state=CallbackState(row[14]),
            audio_bytes=row[15],
        )

    def _get(self, db: sqlite3.Connection, job_id: str) -> JobRecord | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else self._record(row)

    # -- the Protocol ---------------------------------------------------------------------------------------------

    def submit(self, job: NewJob, audio: bytes, *, max_queued: int, now: float) -> JobRecord:
        path = self._audio_path(job.id)
        partial = path.with_name(path.name + ".part")
        with open(partial, "wb") as f:
            f.write(audio)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
        _fsync_dir(self.audio_dir)
        try:
            with self._write() as db:
                (active,) = db.execute("SELECT count(*) FROM jobs WHERE state IN (?, ?)", _ACTIVE).fetchone()
                if active >= max_queued:
                    raise ResourceExhausted(
                        f"the job queue is full ({active} jobs waiting or running; VOXGATE_JOB_MAX_QUEUED)"
                    )
                db.execute(
                    "INSERT INTO jobs (id, owner, state, request, callback_url, created_at, updated_at, audio_bytes) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (job.id, job.owner, JobState.QUEUED.value, job.request, job.callback_url, now, now, len(audio)),
                )
                record = self._get(db, job.id)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        assert record is not None
        return record

    def get(self, job_id: str) -> JobRecord | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return self._record(rows[0]) if rows else None

    def list(self, owner: str, *, limit: int, before: tuple[float, str] | None = None) -> Sequence[JobRecord]:
        if before is None:
            sql = f"SELECT {_COLUMNS} FROM jobs WHERE owner = ? ORDER BY created_at DESC, id DESC LIMIT ?"
            rows = self._read(sql, (owner, limit))
        else:
            sql = (
                f"SELECT {_COLUMNS} FROM jobs WHERE owner = ? AND (created_at, id) < (?, ?) "
                "ORDER BY created_at DESC, id DESC LIMIT ?"
            )
            rows = self._read(sql, (owner, before[0], before[1], limit))
        return [self._record(r) for r in rows]

    def claim(
        self, worker: str, *, lease_seconds: float, max_attempts: int, retention: float, now: float
    ) -> JobRecord | None:
        with self._write() as db:
            while True:
                row = db.execute(
                    "SELECT id, attempts FROM jobs WHERE state = ? OR (state = ? AND lease_until < ?) "
                    "ORDER BY created_at, id LIMIT 1",
                    (JobState.QUEUED.value, JobState.RUNNING.value, now),
                ).fetchone()
                if row is None:
                    return None
                job_id, attempts = row
                if attempts >= max_attempts:  # claimed that often and never finished: it kills its worker
                    db.execute(
                        "UPDATE jobs SET state = ?, error_code = ?, error_message = ?, worker = NULL, "
                        "lease_until = NULL, updated_at = ?, expire_at = ?, "
                        "callback_state = CASE WHEN callback_url IS NULL THEN 'NONE' ELSE 'PENDING' END WHERE id = ?",
                        (
                            JobState.FAILED.value,
                            "internal",
                            f"the job was started {attempts} times and never finished (VOXGATE_JOB_MAX_ATTEMPTS)",
                            now,
                            now + retention,
                            job_id,
                        ),
                    )
                    self._drop_audio(job_id)
                    continue
                db.execute(
                    "UPDATE jobs SET state = ?, worker = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? "
                    "WHERE id = ?",
                    (JobState.RUNNING.value, worker, now + lease_seconds, now, job_id),
                )
                return self._get(db, job_id)

    def _claimed(self, db: sqlite3.Connection, sql: str, args: tuple[Any, ...], job: tuple[str, str, int]) -> bool:
        cursor = db.execute(sql + " WHERE id = ? AND state = ? AND worker = ? AND attempts = ?",
                            (*args, job[0], JobState.RUNNING.value, job[1], job[2]))  # fmt: skip
        return cursor.rowcount == 1

    def renew(
        self, job_id: str, worker: str, attempt: int, *, lease_seconds: float, progress: float, now: float
    ) -> bool:
        with self._write() as db:
            sql = "UPDATE jobs SET lease_until = ?, progress = max(progress, ?), updated_at = ?"
            return self._claimed(db, sql, (now + lease_seconds, progress, now), (job_id, worker, attempt))

    def release(self, job_id: str, worker: str, attempt: int, *, now: float) -> bool:
        with self._write() as db:
            sql = (
                "UPDATE jobs SET state = ?, worker = NULL, lease_until = NULL, attempts = attempts - 1, updated_at = ?"
            )
            return self._claimed(db, sql, (JobState.QUEUED.value, now), (job_id, worker, attempt))

    def save_window(self, job_id: str, worker: str, attempt: int, key: str, data: bytes) -> bool:
        with self._write() as db:
            held = db.execute(
                "SELECT 1 FROM jobs WHERE id = ? AND state = ? AND worker = ? AND attempts = ?",
                (job_id, JobState.RUNNING.value, worker, attempt),
            ).fetchone()
            if held is None:
                return False
            db.execute("INSERT OR REPLACE INTO job_windows (job_id, key, data) VALUES (?, ?, ?)", (job_id, key, data))
            return True

    def window(self, job_id: str, key: str) -> bytes | None:
        rows = self._read("SELECT data FROM job_windows WHERE job_id = ? AND key = ?", (job_id, key))
        return bytes(rows[0][0]) if rows else None

    @contextmanager
    def audio(self, job_id: str) -> Iterator[Path]:
        path = self._audio_path(job_id)
        if not path.exists():
            raise NotFound(f"the audio of job {job_id} is gone")
        yield path

    def _end(
        self, job: tuple[str, str, int], state: JobState, values: dict[str, Any], retention: float, now: float
    ) -> JobRecord | None:
        columns = ", ".join(f"{k} = ?" for k in values)
        sql = (
            f"UPDATE jobs SET state = ?, {columns}, worker = NULL, lease_until = NULL, updated_at = ?, expire_at = ?, "
            "callback_state = CASE WHEN callback_url IS NULL THEN 'NONE' ELSE 'PENDING' END"
        )
        with self._write() as db:
            if not self._claimed(db, sql, (state.value, *values.values(), now, now + retention), job):
                return None
            record = self._get(db, job[0])
        self._drop_audio(job[0])
        return record

    def finish(
        self, job_id: str, worker: str, attempt: int, *, result: bytes, retention: float, now: float
    ) -> JobRecord | None:
        values = {"result": result, "progress": 100.0}
        return self._end((job_id, worker, attempt), JobState.SUCCEEDED, values, retention, now)

    def fail(
        self, job_id: str, worker: str, attempt: int, *, code: str, message: str, retention: float, now: float
    ) -> JobRecord | None:
        values = {"error_code": code, "error_message": message}
        return self._end((job_id, worker, attempt), JobState.FAILED, values, retention, now)

    def cancel(self, job_id: str, *, retention: float, now: float) -> JobRecord | None:
        with self._write() as db:
            db.execute(
                "UPDATE jobs SET state = ?, worker = NULL, lease_until = NULL, error_code = 'cancelled', "
                "error_message = 'the job was cancelled', updated_at = ?, expire_at = ?, "
                "callback_state = CASE WHEN callback_url IS NULL THEN 'NONE' ELSE 'PENDING' END "
                "WHERE id = ? AND state IN (?, ?)",
                (JobState.CANCELLED.value, now, now + retention, job_id, *_ACTIVE),
            )
            record = self._get(db, job_id)
        if record is not None and record.state is JobState.CANCELLED:
            self._drop_audio(job_id)
        return record

    def result(self, job_id: str) -> bytes | None:
        rows = self._read("SELECT result FROM jobs WHERE id = ? AND state = ?", (job_id, JobState.SUCCEEDED.value))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def delete(self, job_id: str) -> bool:
        with self._write() as db:
            deleted = db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount == 1
        self._drop_audio(job_id)
        return deleted

    def purge(self, now: float) -> int:
        with self._write() as db:
            expired = [r[0] for r in db.execute("SELECT id FROM jobs WHERE expire_at <= ?", (now,)).fetchall()]
            db.execute("DELETE FROM jobs WHERE expire_at <= ?", (now,))
        for job_id in expired:
            self._drop_audio(job_id)
        # Files no row names: a submit that crashed between its audio and its row, an hour or more ago.
        known = {r[0] for r in self._read("SELECT id FROM jobs WHERE state IN (?, ?)", _ACTIVE)}
        for path in self.audio_dir.iterdir():
            name = path.name.removesuffix(".part")
            if name not in known and path.stat().st_mtime < now - 3600:
                path.unlink(missing_ok=True)
        return len(expired)

    def callbacks_pending(self) -> Sequence[JobRecord]:
        rows = self._read(f"SELECT {_COLUMNS} FROM jobs WHERE callback_state = ?", (CallbackState.PENDING.value,))
        return [self._record(r) for r in rows]

    def callback_done(self, job_id: str, *, delivered: bool) -> None:
        state = CallbackState.DELIVERED if delivered else CallbackState.FAILED
        with self._write() as db:
            db.execute("UPDATE jobs SET callback_state = ? WHERE id = ?", (state.value, job_id))

    def counts(self) -> StoreCounts:
        rows = dict(self._read("SELECT state, count(*) FROM jobs GROUP BY state"))
        done = sum(n for state, n in rows.items() if JobState(state).done)
        return StoreCounts(queued=rows.get("QUEUED", 0), running=rows.get("RUNNING", 0), done=done)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
