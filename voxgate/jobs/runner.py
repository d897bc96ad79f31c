"""The job runner: ``job_workers`` loops that claim jobs from the store and run them, a lease kept alive beside each,
the completion callbacks, and the purge of expired jobs.

What runs a job is the edge's ``handler`` (the request bytes → the result bytes; it transcribes on the service's
scheduler at background priority); the runner owns only the life cycle around it:

1. **claim** (atomic, leased, the attempt counted) — the loop sleeps when nothing is queued, woken by a submit in
   this process or, for jobs submitted elsewhere, by polling;
2. **run** the handler, renewing the lease and writing progress every second or so; if a renewal fails (the job was
   cancelled, or the lease taken over), the run is cancelled and nothing is written;
3. **write** the result or the error, once, under the claim (:meth:`JobStore.finish` / :meth:`JobStore.fail`);
4. **call back**, if the job asked to be: at least once, retried, recorded in the store (deliveries left pending
   by a server that stopped are retried when the next one starts).

Shut down (cancelled), the runner hands its claimed jobs back to the queue; killed, it leaves their leases to expire.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.to_thread

from voxgate.errors import Timeout, VoxgateError
from voxgate.files.pipeline import Checkpoints
from voxgate.jobs.checkpoint import StoreCheckpoints
from voxgate.jobs.fetch import UrlPolicy
from voxgate.jobs.store import CallbackState, JobRecord, JobStore
from voxgate.jobs.webhook import deliver

__all__ = ["Handler", "JobRunner", "RunnerConfig"]

log = logging.getLogger(__name__)

T = TypeVar("T")

Progress = Callable[[float], None]
"""Percent done (0-100), called by the handler as it goes."""
Handler = Callable[[JobRecord, Path, Progress, Checkpoints], Awaitable[bytes]]
"""Runs one job: its record, its audio file, a progress callback and where to keep its windows → the result
document."""


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    workers: int = 1
    lease_seconds: float = 30.0
    max_attempts: int = 3
    retention_seconds: float = 24 * 3600.0
    timeout_seconds: float = 4 * 3600.0
    poll_seconds: float = 1.0
    """How often an idle worker looks for jobs submitted by another process (and for expired leases)."""
    webhook_secret: str | None = None
    webhook_attempts: int = 5
    webhook_backoff: float = 2.0
    url_policy: UrlPolicy = field(default_factory=UrlPolicy)


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        handler: Handler,
        config: RunnerConfig,
        *,
        callback_body: Callable[[JobRecord], bytes] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self._handler = handler
        self._callback_body = callback_body
        self.worker = uuid.uuid4().hex
        """This runner's name in the store's claims."""
        self._wake = anyio.Event()
        self._tasks: anyio.abc.TaskGroup | None = None
        self._calling: set[str] = set()
        """Jobs whose callback this runner is delivering now (not started twice)."""

    async def _store(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    def wake(self) -> None:
        """A job was submitted: an idle worker should look now rather than at its next poll."""
        self._wake.set()
        self._wake = anyio.Event()

    async def run(self) -> None:
        """Run until cancelled."""
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            for record in await self._store(self.store.callbacks_pending):
                self.call_back_soon(record)
            for _ in range(self.config.workers):
                tasks.start_soon(self._work)
            tasks.start_soon(self._purge)

    async def _work(self) -> None:
        while True:
            try:
                job = await self._store(
                    self.store.claim,
                    self.worker,
                    lease_seconds=self.config.lease_seconds,
                    max_attempts=self.config.max_attempts,
                    retention=self.config.retention_seconds,
                    now=time.time(),
                )
                if job is not None:
                    await self.run_one(job)
                    continue
            except Exception:  # the store failing (a full disk, a locked database) must not stop the runner
                log.exception("job runner: the store failed; trying again")
            with anyio.move_on_after(self.config.poll_seconds):
                await self._wake.wait()

    def call_back_soon(self, record: JobRecord) -> None:
        """Deliver ``record``'s callback in the background if it has one pending (a job cancelled by a request)."""
        if record.callback_state is not CallbackState.PENDING or record.id in self._calling:
            return
        if self._tasks is not None:
            self._calling.add(record.id)
            self._tasks.start_soon(self._call_back, record)

    async def run_one(self, job: JobRecord) -> JobRecord | None:
        """Run a claimed job to its end; the record as written (None when the claim was lost on the way)."""
        log.info("job %s: attempt %d", job.id, job.attempts)
        progress = [job.progress]
        outcome: tuple[bytes, None] | tuple[None, VoxgateError] | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._keep_lease, job, progress, tg.cancel_scope)
                outcome = await self._attempt(job, progress)
                tg.cancel_scope.cancel()
        except BaseException:
            if outcome is None:  # shut down mid-job: hand it back, unless it is done
                with anyio.CancelScope(shield=True):
                    await self._store(self.store.release, job.id, self.worker, job.attempts, now=time.time())
            raise
        if outcome is None:
            log.info("job %s: cancelled, or its lease was lost; nothing written", job.id)
            return None
        result, error = outcome
        now = time.time()
        retention = self.config.retention_seconds
        if error is None:
            assert result is not None
            args = (job.id, self.worker, job.attempts)
            record = await self._store(self.store.finish, *args, result=result, retention=retention, now=now)
        else:
            record = await self._store(
                self.store.fail,
                job.id,
                self.worker,
                job.attempts,
                code=error.code,
                message=error.message,
                retention=retention,
                now=now,
            )
        if record is not None:
            self.call_back_soon(record)
        return record

    async def _attempt(self, job: JobRecord, progress: list[float]) -> tuple[bytes, None] | tuple[None, VoxgateError]:
        def report(percent: float) -> None:
            progress[0] = max(progress[0], min(99.0, percent))

        limit = self.config.timeout_seconds
        kept = StoreCheckpoints(self.store, job, self.worker)
        try:
            with anyio.fail_after(limit):
                with self.store.audio(job.id) as path:
                    return await self._handler(job, path, report, kept), None
        except VoxgateError as exc:
            return None, exc
        except TimeoutError:
            return None, _timeout(limit)
        except Exception as exc:
            log.exception("job %s failed", job.id)
            return None, VoxgateError(f"internal error: {type(exc).__name__}")
        finally:
            if kept.reused:
                log.info("job %s: %d window(s) kept from an earlier attempt, not redone", job.id, kept.reused)

    async def _keep_lease(self, job: JobRecord, progress: list[float], scope: anyio.CancelScope) -> None:
        interval = min(1.0, self.config.lease_seconds / 3)
        while True:
            await anyio.sleep(interval)
            held = await self._store(
                self.store.renew,
                job.id,
                self.worker,
                job.attempts,
                lease_seconds=self.config.lease_seconds,
                progress=progress[0],
                now=time.time(),
            )
            if not held:
                scope.cancel()
                return

    async def _call_back(self, record: JobRecord) -> None:
        if record.callback_url is None or self._callback_body is None:
            return
        secret = self.config.webhook_secret
        delivered = False
        try:
            if secret is None:
                log.warning("job %s: no VOXGATE_JOB_WEBHOOK_SECRET, its callback is not sent", record.id)
            else:
                delivered = await deliver(
                    record.callback_url,
                    self._callback_body(record),
                    secret=secret,
                    policy=self.config.url_policy,
                    attempts=self.config.webhook_attempts,
                    backoff=self.config.webhook_backoff,
                    name=record.id,
                )
            await self._store(self.store.callback_done, record.id, delivered=delivered)
        except Exception:
            log.exception("job %s: its callback failed", record.id)
        finally:
            self._calling.discard(record.id)

    async def _purge(self) -> None:
        interval = min(60.0, max(0.5, self.config.retention_seconds / 10))
        while True:
            try:
                removed = await self._store(self.store.purge, time.time())
            except Exception:
                log.exception("purging expired jobs failed")
            else:
                if removed:
                    log.info("deleted %d expired job(s)", removed)
            await anyio.sleep(interval)


def _timeout(limit: float) -> VoxgateError:
    return Timeout(f"the job took longer than {limit:.0f} s (VOXGATE_JOB_TIMEOUT_SECONDS)")
