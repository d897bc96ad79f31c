"""What a job store keeps and promises: the :class:`JobStore` Protocol and its records.

A store holds each job's request (opaque bytes the edge wrote), its audio, its state and, once done, its result. The
promises every implementation keeps, whatever it is built on (:mod:`.sqlite` here; a server database for several
machines can follow with the same methods):

* **Accepted means kept.** :meth:`JobStore.submit` returns only once the job and its audio are durable; past it,
  the job is run or cancelled, never lost.
* **One runner at a time.** :meth:`JobStore.claim` hands a job to one worker under a lease (a time limit) and counts
  the attempt; the attempt number is the worker's fencing token. A worker that dies leaves its lease to run out, and
  the job is claimed again; after ``max_attempts`` claims it fails instead.
* **Work kept.** A worker may keep each window's transcript as it goes (:meth:`JobStore.save_window`); the next
  attempt after a crash redoes only the window that was in flight.
* **Written once.** :meth:`JobStore.finish` and :meth:`JobStore.fail` write only for the worker holding the current
  claim (same worker, same attempt, still running): a worker whose lease was taken over, or whose job was cancelled,
  writes nothing. So a result is written exactly once, and a job is never done twice over.
* **Times are wall-clock seconds** (``time.time()``), passed in as ``now`` so several machines and the tests agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

__all__ = [
    "JOB_ID",
    "CallbackState",
    "JobRecord",
    "JobState",
    "JobStore",
    "NewJob",
    "StoreCounts",
    "valid_job_id",
]

JOB_ID = re.compile(r"[0-9a-f]{32}")
"""A job id: 32 lower-case hex digits (a random UUID's), nothing a path or a query could be made of."""


def valid_job_id(value: str) -> bool:
    return JOB_ID.fullmatch(value) is not None


class JobState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def done(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class CallbackState(StrEnum):
    NONE = "NONE"
    """No ``callbackUrl``, or the job is not done yet."""
    PENDING = "PENDING"
    """Done, the callback not yet delivered (a server restarting delivers it again: at least once)."""
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    """Every attempt failed."""


@dataclass(frozen=True, slots=True)
class NewJob:
    id: str
    owner: str
    """Who may see it: a digest of the API key that submitted it ("" when the server has no keys)."""
    request: bytes
    """What to do, as the edge wrote it (the store never reads it)."""
    callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    owner: str
    state: JobState
    request: bytes
    callback_url: str | None
    created_at: float
    updated_at: float
    progress: float
    """Percent done, 0-100."""
    attempts: int
    """Claims so far; the current claim's fencing token."""
    worker: str | None
    lease_until: float | None
    error_code: str | None
    error_message: str | None
    expire_at: float | None
    """When a finished job and its result are deleted."""
    callback_state: CallbackState
    audio_bytes: int


@dataclass(frozen=True, slots=True)
class StoreCounts:
    queued: int
    running: int
    done: int


class JobStore(Protocol):
    """A durable job queue. Methods block (disk or network): call them from a thread, not the event loop."""

    def submit(self, job: NewJob, audio: bytes, *, max_queued: int, now: float) -> JobRecord:
        """Keep ``job`` and its audio, queued; durable on return. Raises ``ResourceExhausted`` when ``max_queued``
        jobs are already queued or running (checked and inserted atomically)."""
        ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def list(self, owner: str, *, limit: int, before: tuple[float, str] | None = None) -> Sequence[JobRecord]:
        """``owner``'s jobs, newest first; ``before``: (created_at, id) of the last one of the previous page."""
        ...

    def claim(
        self, worker: str, *, lease_seconds: float, max_attempts: int, retention: float, now: float
    ) -> JobRecord | None:
        """Atomically take the oldest queued job (or a running one whose lease ran out) for ``worker``: running,
        leased until ``now + lease_seconds``, one more attempt. A job out of attempts is failed instead (and expires
        ``retention`` seconds from ``now``)."""
        ...

    def renew(
        self, job_id: str, worker: str, attempt: int, *, lease_seconds: float, progress: float, now: float
    ) -> bool:
        """Extend the claim and record progress; False when the claim is lost (cancelled, or taken over)."""
        ...

    def release(self, job_id: str, worker: str, attempt: int, *, now: float) -> bool:
        """Give a claimed job back to the queue unrun (a server shutting down), the attempt not counted."""
        ...

    def save_window(self, job_id: str, worker: str, attempt: int, key: str, data: bytes) -> bool:
        """Keep one window's transcript (a checkpoint), for the current claim only; a later attempt of the same job
        finds it with :meth:`window` and does not redo it. Deleted with the job's audio."""
        ...

    def window(self, job_id: str, key: str) -> bytes | None: ...

    def audio(self, job_id: str) -> AbstractContextManager[Path]:
        """The job's audio as a file, for the duration of the ``with``."""
        ...

    def finish(
        self, job_id: str, worker: str, attempt: int, *, result: bytes, retention: float, now: float
    ) -> JobRecord | None:
        """Store the result and mark the job succeeded, once, for the current claim only (None otherwise). The audio
        is deleted; the job expires ``retention`` seconds from ``now``."""
        ...

    def fail(
        self, job_id: str, worker: str, attempt: int, *, code: str, message: str, retention: float, now: float
    ) -> JobRecord | None:
        """Mark the job failed, for the current claim only (None otherwise)."""
        ...

    def cancel(self, job_id: str, *, retention: float, now: float) -> JobRecord | None:
        """Cancel a queued or running job (a running one's worker learns it at its next renewal); a job already done
        is returned as it is. None when there is no such job."""
        ...

    def result(self, job_id: str) -> bytes | None: ...

    def delete(self, job_id: str) -> bool:
        """Forget a job, its audio and its result."""
        ...

    def purge(self, now: float) -> int:
        """Delete the jobs (and their results and audio) whose retention has run out; how many."""
        ...

    def callbacks_pending(self) -> Sequence[JobRecord]:
        """Done jobs whose callback is still to be delivered."""
        ...

    def callback_done(self, job_id: str, *, delivered: bool) -> None: ...

    def counts(self) -> StoreCounts: ...

    def close(self) -> None: ...
