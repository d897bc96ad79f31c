"""A :class:`~voxgate.jobs.store.JobStore` in PostgreSQL, shared by every server (or Ray replica) that names it: the
store for more than one machine. ``job_store = "postgresql://user@host/db"``; needs ``pip install 'voxgate[postgres]'``
(psycopg 3 and its pool).

How it keeps the Protocol's promises with several writers on several machines:

* **Claims** take the oldest eligible row with ``SELECT ... FOR UPDATE SKIP LOCKED`` and mark it running in the same
  transaction: two workers never get the same job, and neither waits on the other's row.
* **The bounded queue** counts and inserts under a transaction-level advisory lock, so two submits on two machines
  cannot both take the last place. The lock is held only for the count, the insert and the commit: the audio is
  written earlier in the same transaction.
* **Audio lives in the database** (``voxgate_job_audio``, 1 MiB chunks) rather than on a disk only one machine sees;
  the worker that runs a job copies it to a temporary file for the pipeline (:meth:`PostgresJobStore.audio`). The
  audio is written in the submit's transaction, so an accepted job always has it (no orphan to sweep, unlike files),
  and it is deleted with the job's windows when the job ends.
* **Written once**: finish, fail, renew, release and save_window change the row only ``WHERE`` the caller still holds
  the current claim (worker, attempt, running); a window is written under the job row's lock, so it never lands
  after the job ended.

Tables are prefixed ``voxgate_`` and made on first use (under an advisory lock: two servers starting together do not
race on ``CREATE TABLE``). Times are ``time.time()`` seconds passed in by the caller, as for every store.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from voxgate.errors import NotFound, ResourceExhausted
from voxgate.jobs.store import CallbackState, JobRecord, JobState, NewJob, StoreCounts

__all__ = ["PostgresJobStore"]

_SCHEMA_LOCK = 0x766F7867_61746501
"""Advisory lock keys ("voxgate" and a number): the schema's creation, and the queue's bound."""
_SUBMIT_LOCK = 0x766F7867_61746502

_SCHEMA = """
CREATE TABLE IF NOT EXISTS voxgate_jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    state TEXT NOT NULL,
    request BYTEA NOT NULL,
    callback_url TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    progress DOUBLE PRECISION NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_until DOUBLE PRECISION,
    error_code TEXT,
    error_message TEXT,
    result BYTEA,
    expire_at DOUBLE PRECISION,
    callback_state TEXT NOT NULL DEFAULT 'NONE',
    audio_bytes BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS voxgate_job_audio (
    job_id TEXT NOT NULL REFERENCES voxgate_jobs (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    seq INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS voxgate_job_windows (
    job_id TEXT NOT NULL REFERENCES voxgate_jobs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (job_id, key)
);
CREATE INDEX IF NOT EXISTS voxgate_jobs_by_state ON voxgate_jobs (state, created_at, id);
CREATE INDEX IF NOT EXISTS voxgate_jobs_by_owner ON voxgate_jobs (owner, created_at, id);
CREATE INDEX IF NOT EXISTS voxgate_jobs_by_expiry ON voxgate_jobs (expire_at) WHERE expire_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS voxgate_jobs_by_callback ON voxgate_jobs (callback_state) WHERE callback_state = 'PENDING';
"""

_COLUMNS = (
    "id, owner, state, request, callback_url, created_at, updated_at, progress, attempts, worker, lease_until, "
    "error_code, error_message, expire_at, callback_state, audio_bytes"
)

_CHUNK = 1 << 20
"""Audio is kept in rows of this many bytes (no single huge value; read back a chunk at a time)."""

_CALLBACK_DUE = "callback_state = CASE WHEN callback_url IS NULL THEN 'NONE' ELSE 'PENDING' END"

_HELD = "id = %s AND state = 'RUNNING' AND worker = %s AND attempts = %s"
"""The current claim: the same worker, the same attempt, still running."""


class PostgresJobStore:
    def __init__(self, url: str, *, max_connections: int = 8, spool_dir: Path | None = None) -> None:
        """``url``: a libpq connection string or ``postgresql://`` URL. ``max_connections``: this process's pool
        (claims, renewals and the API's reads share it). ``spool_dir``: where a running job's audio is copied."""
        self.url = url
        self.spool_dir = spool_dir
        self._pool: ConnectionPool[Connection[tuple[Any, ...]]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, max_connections),
            open=False,
            check=ConnectionPool.check_connection,  # a database restarted under us: reconnect, not fail
            name="voxgate-jobs",
        )
        try:
            self._pool.open(wait=True, timeout=30.0)
        except PoolTimeout as exc:
            self._pool.close()
            raise ConnectionError(f"job_store: cannot reach PostgreSQL at {_where(url)} within 30 s") from exc
        try:
            with self._tx() as db:
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
        except BaseException:
            self._pool.close()
            raise

    # -- helpers --------------------------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Connection[tuple[Any, ...]]]:
        """One transaction on a pooled connection: committed on leaving, rolled back on an exception."""
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._tx() as db:
            return db.execute(sql, args).fetchall()

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

    @staticmethod
    def _drop_audio(db: Connection[tuple[Any, ...]], job_id: str) -> None:
        """The job's audio and kept windows: what only running it again would need."""
        db.execute("DELETE FROM voxgate_job_audio WHERE job_id = %s", (job_id,))
        db.execute("DELETE FROM voxgate_job_windows WHERE job_id = %s", (job_id,))

    # -- the Protocol ---------------------------------------------------------------------------------------------

    def submit(self, job: NewJob, audio: bytes, *, max_queued: int, now: float) -> JobRecord:
        with self._tx() as db:
            view = memoryview(audio)
            chunks = [view[i : i + _CHUNK] for i in range(0, len(audio), _CHUNK)] or [view]  # empty: one empty chunk
            with db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO voxgate_job_audio (job_id, seq, data) VALUES (%s, %s, %s)",
                    [(job.id, seq, bytes(chunk)) for seq, chunk in enumerate(chunks)],
                )
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_SUBMIT_LOCK,))
            row = db.execute("SELECT count(*) FROM voxgate_jobs WHERE state IN ('QUEUED', 'RUNNING')").fetchone()
            active = row[0] if row is not None else 0
            if active >= max_queued:
                raise ResourceExhausted(
                    f"the job queue is full ({active} jobs waiting or running; VOXGATE_JOB_MAX_QUEUED)"
                )
            inserted = db.execute(
                "INSERT INTO voxgate_jobs (id, owner, state, request, callback_url, created_at, updated_at, "
                f"audio_bytes) VALUES (%s, %s, 'QUEUED', %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
                (job.id, job.owner, job.request, job.callback_url, now, now, len(audio)),
            ).fetchone()
        assert inserted is not None
        return self._record(inserted)

    def get(self, job_id: str) -> JobRecord | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM voxgate_jobs WHERE id = %s", (job_id,))
        return self._record(rows[0]) if rows else None

    def list(self, owner: str, *, limit: int, before: tuple[float, str] | None = None) -> Sequence[JobRecord]:
        if before is None:
            sql = f"SELECT {_COLUMNS} FROM voxgate_jobs WHERE owner = %s ORDER BY created_at DESC, id DESC LIMIT %s"
            rows = self._read(sql, (owner, limit))
        else:
            sql = (
                f"SELECT {_COLUMNS} FROM voxgate_jobs WHERE owner = %s AND (created_at, id) < (%s, %s) "
                "ORDER BY created_at DESC, id DESC LIMIT %s"
            )
            rows = self._read(sql, (owner, before[0], before[1], limit))
        return [self._record(r) for r in rows]

    def claim(
        self, worker: str, *, lease_seconds: float, max_attempts: int, retention: float, now: float
    ) -> JobRecord | None:
        with self._tx() as db:
            while True:
                row = db.execute(
                    "SELECT id, attempts FROM voxgate_jobs "
                    "WHERE state = 'QUEUED' OR (state = 'RUNNING' AND lease_until < %s) "
                    "ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
                    (now,),
                ).fetchone()
                if row is None:
                    return None
                job_id, attempts = row
                if attempts >= max_attempts:  # claimed that often and never finished: it kills its worker
                    db.execute(
                        "UPDATE voxgate_jobs SET state = 'FAILED', error_code = 'internal', error_message = %s, "
                        f"worker = NULL, lease_until = NULL, updated_at = %s, expire_at = %s, {_CALLBACK_DUE} "
                        "WHERE id = %s",
                        (
                            f"the job was started {attempts} times and never finished (VOXGATE_JOB_MAX_ATTEMPTS)",
                            now,
                            now + retention,
                            job_id,
                        ),
                    )
                    self._drop_audio(db, job_id)
                    continue
                claimed = db.execute(
                    "UPDATE voxgate_jobs SET state = 'RUNNING', worker = %s, lease_until = %s, "
                    f"attempts = attempts + 1, updated_at = %s WHERE id = %s RETURNING {_COLUMNS}",
                    (worker, now + lease_seconds, now, job_id),
                ).fetchone()
                assert claimed is not None
                return self._record(claimed)

    def renew(
        self, job_id: str, worker: str, attempt: int, *, lease_seconds: float, progress: float, now: float
    ) -> bool:
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE voxgate_jobs SET lease_until = %s, progress = GREATEST(progress, %s), updated_at = %s "
                f"WHERE {_HELD}",
                (now + lease_seconds, progress, now, job_id, worker, attempt),
            )
            return cursor.rowcount == 1

    def release(self, job_id: str, worker: str, attempt: int, *, now: float) -> bool:
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE voxgate_jobs SET state = 'QUEUED', worker = NULL, lease_until = NULL, "
                f"attempts = attempts - 1, updated_at = %s WHERE {_HELD}",
                (now, job_id, worker, attempt),
            )
            return cursor.rowcount == 1

    def save_window(self, job_id: str, worker: str, attempt: int, key: str, data: bytes) -> bool:
        with self._tx() as db:
            # The job row locked: a finish or a takeover waits for this write, or this write sees it and stops.
            held = db.execute(f"SELECT 1 FROM voxgate_jobs WHERE {_HELD} FOR UPDATE", (job_id, worker, attempt))
            if held.fetchone() is None:
                return False
            db.execute(
                "INSERT INTO voxgate_job_windows (job_id, key, data) VALUES (%s, %s, %s) "
                "ON CONFLICT (job_id, key) DO UPDATE SET data = EXCLUDED.data",
                (job_id, key, data),
            )
            return True

    def window(self, job_id: str, key: str) -> bytes | None:
        rows = self._read("SELECT data FROM voxgate_job_windows WHERE job_id = %s AND key = %s", (job_id, key))
        return bytes(rows[0][0]) if rows else None

    @contextmanager
    def audio(self, job_id: str) -> Iterator[Path]:
        with tempfile.NamedTemporaryFile(prefix=f"voxgate-job-{job_id}-", dir=self.spool_dir) as spool:
            found = False
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                # A chunk at a time: a long recording is never held in memory whole.
                for (chunk,) in cur.stream("SELECT data FROM voxgate_job_audio WHERE job_id = %s ORDER BY seq",
                                           (job_id,)):  # fmt: skip
                    found = True
                    spool.write(chunk)
            if not found:
                raise NotFound(f"the audio of job {job_id} is gone")
            spool.flush()
            yield Path(spool.name)

    def _end(
        self, job: tuple[str, str, int], state: JobState, values: dict[str, Any], retention: float, now: float
    ) -> JobRecord | None:
        columns = ", ".join(f"{k} = %s" for k in values)
        with self._tx() as db:
            row = db.execute(
                f"UPDATE voxgate_jobs SET state = %s, {columns}, worker = NULL, lease_until = NULL, updated_at = %s, "
                f"expire_at = %s, {_CALLBACK_DUE} WHERE {_HELD} RETURNING {_COLUMNS}",
                (state.value, *values.values(), now, now + retention, *job),
            ).fetchone()
            if row is None:
                return None
            self._drop_audio(db, job[0])
        return self._record(row)

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
        with self._tx() as db:
            row = db.execute(
                "UPDATE voxgate_jobs SET state = 'CANCELLED', worker = NULL, lease_until = NULL, "
                "error_code = 'cancelled', error_message = 'the job was cancelled', updated_at = %s, expire_at = %s, "
                f"{_CALLBACK_DUE} WHERE id = %s AND state IN ('QUEUED', 'RUNNING') RETURNING {_COLUMNS}",
                (now, now + retention, job_id),
            ).fetchone()
            if row is not None:
                self._drop_audio(db, job_id)
                return self._record(row)
            row = db.execute(f"SELECT {_COLUMNS} FROM voxgate_jobs WHERE id = %s", (job_id,)).fetchone()
        return None if row is None else self._record(row)

    def result(self, job_id: str) -> bytes | None:
        rows = self._read("SELECT result FROM voxgate_jobs WHERE id = %s AND state = 'SUCCEEDED'", (job_id,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def delete(self, job_id: str) -> bool:
        with self._tx() as db:  # its audio and windows go with it (ON DELETE CASCADE)
            return db.execute("DELETE FROM voxgate_jobs WHERE id = %s", (job_id,)).rowcount == 1

    def purge(self, now: float) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM voxgate_jobs WHERE expire_at <= %s", (now,)).rowcount

    def callbacks_pending(self) -> Sequence[JobRecord]:
        rows = self._read(f"SELECT {_COLUMNS} FROM voxgate_jobs WHERE callback_state = 'PENDING' ORDER BY created_at")
        return [self._record(r) for r in rows]

    def callback_done(self, job_id: str, *, delivered: bool) -> None:
        state = CallbackState.DELIVERED if delivered else CallbackState.FAILED
        with self._tx() as db:
            db.execute("UPDATE voxgate_jobs SET callback_state = %s WHERE id = %s", (state.value, job_id))

    def counts(self) -> StoreCounts:
        rows: dict[str, int] = dict(self._read("SELECT state, count(*) FROM voxgate_jobs GROUP BY state"))
        done = sum(n for state, n in rows.items() if JobState(state).done)
        return StoreCounts(queued=rows.get("QUEUED", 0), running=rows.get("RUNNING", 0), done=done)

    def close(self) -> None:
        self._pool.close()


def _where(url: str) -> str:
    """Host, port and database of a connection string, never its password."""
    try:
        info = conninfo_to_dict(url)
    except Exception:
        return "the configured URL"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
