"""The only place speech-model inference runs.

Work items are queued with a deadline and run by a small pool of worker threads, earliest deadline first, so the
event loop never blocks and urgent work (a stream's final) overtakes background work (a long file's next window).
Work marked ``urgent`` (a result somebody is waiting on now: a stream's final) goes before all other queued work
whatever its deadline: under load, drafts queued earlier have earlier deadlines than a final queued now, and plain
EDF would make the final wait behind every one of them. CTranslate2 already spreads one decode over every core, so
one worker is the right default on a CPU.

Nothing is preempted, so a final queued behind a long job already running (a file's or an async job's 30 s window:
seconds of decode) would wait for it. An *urgent lane* prevents that: one more thread that takes urgent work only,
so a final starts at once beside whatever runs, the two sharing the cores for a moment (the engine must then accept
two calls at once: ``WhisperEngine`` loads its model with two CTranslate2 replicas sharing the weights).

Batchable items (streaming partials) carry a key: when the worker takes one, it takes every other queued item with
the same key too (up to the batch limit) and runs them in one call, so N streams share one encoder/decoder pass.
Items may also be marked droppable: one still queued well past its deadline is skipped (:class:`Skipped`) rather
than run late, which is how partials give way when the server falls behind. Finals are never droppable.

Work marked ``background`` (an async job's windows) goes after all other queued work whatever its deadline, so a
flood of queued jobs never delays a stream or a synchronous request; among themselves, background jobs run earliest
deadline first too.

Calls to cloud providers (``remote=True``) do not queue behind inference: they wait on the network, so they run on a
bounded pool of I/O threads of their own (``remote_calls`` at once, streams and files alike), first come first served.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Scheduler", "Skipped", "wait"]

T = TypeVar("T")

BACKGROUND = 3600.0
"""Default deadline (seconds from now) for work nobody is waiting on in real time."""


class Skipped(Exception):
    """A droppable job was still queued too long after its deadline and was not run."""


@dataclass(order=True)
class _Job:
    rank: int
    """0 for urgent work, 1 for the rest, 2 for background work: compared before the deadline."""
    deadline: float
    seq: int
    fn: Callable[[], Any] | None = field(compare=False)
    future: Future[Any] = field(compare=False)
    batch_key: Hashable | None = field(default=None, compare=False)
    item: Any = field(default=None, compare=False)
    batch_fn: Callable[[list[Any]], list[Any]] | None = field(default=None, compare=False)
    max_batch: int = field(default=1, compare=False)
    drop_after: float | None = field(default=None, compare=False)


class Scheduler:
    def __init__(self, workers: int = 1, remote_calls: int = 16, urgent_lanes: int = 1) -> None:
        self._io = ThreadPoolExecutor(max_workers=max(1, remote_calls), thread_name_prefix="voxgate-io")
        """Cloud-provider calls in flight at once (threads blocked on the network)."""
        self._heap: list[_Job] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"voxgate-worker-{i}", daemon=True) for i in range(max(1, workers))
        ] + [
            threading.Thread(target=self._work, args=(True,), name=f"voxgate-urgent-{i}", daemon=True)
            for i in range(max(0, urgent_lanes))
        ]
        for t in self._threads:
            t.start()

    @property
    def pending(self) -> int:
        """Jobs waiting (not counting those running)."""
        with self._cond:
            return len(self._heap)

    def submit(
        self,
        fn: Callable[[], T],
        *,
        deadline_in: float = BACKGROUND,
        urgent: bool = False,
        remote: bool = False,
        background: bool = False,
    ) -> Future[T]:
        """Queue ``fn`` to run no later than ``deadline_in`` seconds from now (a priority, not a guarantee); ``urgent``
        puts it before every queued job that is not, ``background`` after every one that is not. ``remote``: a cloud
        call, run on the I/O pool instead."""
        if remote:
            with self._cond:
                if self._closed:
                    raise RuntimeError("scheduler is closed")
            return self._io.submit(fn)
        future: Future[T] = Future()
        self._push(_Job(_rank(urgent, background), time.monotonic() + deadline_in, next(self._seq), fn, future))
        return future

    def submit_batched(
        self,
        key: Hashable,
        item: Any,
        batch_fn: Callable[[list[Any]], list[T]],
        *,
        max_batch: int,
        deadline_in: float,
        drop_after: float | None = None,
        urgent: bool = False,
    ) -> Future[T]:
        """Queue ``item`` to be run by ``batch_fn`` together with other queued items of the same ``key``.

        ``batch_fn`` takes a list of items and returns one result per item, in order. With ``drop_after``, an item
        still queued ``drop_after`` seconds past its deadline fails with :class:`Skipped` instead of running.
        """
        future: Future[T] = Future()
        deadline = time.monotonic() + deadline_in
        job = _Job(
            _rank(urgent), deadline, next(self._seq), None, future, key, item, batch_fn, max(1, max_batch), drop_after
        )
        self._push(job)
        return future

    def _push(self, job: _Job) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("scheduler is closed")
            heapq.heappush(self._heap, job)
            self._cond.notify_all()  # an urgent lane woken for plain work would leave it to sleep

    async def run(
        self,
        fn: Callable[[], T],
        *,
        deadline_in: float = BACKGROUND,
        urgent: bool = False,
        remote: bool = False,
        background: bool = False,
    ) -> T:
        """Run ``fn`` on a worker (``remote``: on the I/O pool) and await its result. Cancelling the caller drops the
        job if it has not started."""
        future = self.submit(fn, deadline_in=deadline_in, urgent=urgent, remote=remote, background=background)
        return await wait(future)

    def _take(self, urgent_only: bool = False) -> list[_Job] | None:
        """Pop the most urgent job, plus its batch mates; None once closed and drained. An urgent lane
        (``urgent_only``) waits for urgent work and leaves the draining to the plain workers."""
        with self._cond:
            while not self._closed and not (self._heap and (not urgent_only or self._heap[0].rank == 0)):
                self._cond.wait()
            if not self._heap or (urgent_only and self._heap[0].rank != 0):
                return None
            job = heapq.heappop(self._heap)
            if job.batch_key is None:
                return [job]
            batch = [job]
            mates = [j for j in self._heap if j.batch_key == job.batch_key][: job.max_batch - 1]
            if mates:
                taken = {id(j) for j in mates}
                self._heap = [j for j in self._heap if id(j) not in taken]
                heapq.heapify(self._heap)
                batch.extend(sorted(mates))
            return batch

    def _work(self, urgent_only: bool = False) -> None:
        while (jobs := self._take(urgent_only)) is not None:
            now = time.monotonic()
            live = []
            for job in jobs:
                if not job.future.set_running_or_notify_cancel():
                    continue
                if job.drop_after is not None and now > job.deadline + job.drop_after:
                    job.future.set_exception(Skipped(f"dropped {now - job.deadline:.2f} s past its deadline"))
                    continue
                live.append(job)
            if live:
                self._run(live)

    @staticmethod
    def _run(jobs: list[_Job]) -> None:
        try:
            if jobs[0].fn is not None:
                results = [jobs[0].fn()]
            else:
                assert jobs[0].batch_fn is not None
                results = jobs[0].batch_fn([j.item for j in jobs])
        except BaseException as exc:  # handed to every awaiting caller, who decides
            for job in jobs:
                job.future.set_exception(exc)
        else:
            for job, result in zip(jobs, results, strict=True):
                job.future.set_result(result)

    def close(self) -> None:
        """Finish queued work, then stop the workers."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join()
        self._io.shutdown(wait=True)


def _rank(urgent: bool, background: bool = False) -> int:
    return 0 if urgent else 2 if background else 1


async def wait(future: Future[T]) -> T:
    """Await a scheduler future; cancelling the awaiting task drops the job if it has not started."""
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        future.cancel()
        raise
