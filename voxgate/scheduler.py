"""The only place inference runs.

Work items are queued with a deadline and run by a small pool of worker threads, earliest deadline first, so the
event loop never blocks and urgent work (a stream's final) overtakes background work (a long file's next window).
CTranslate2 already spreads one decode over every core, so one worker is the right default on a CPU.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Scheduler"]

T = TypeVar("T")

BACKGROUND = 3600.0
"""Default deadline (seconds from now) for work nobody is waiting on in real time."""


@dataclass(order=True)
class _Job:
    deadline: float
    seq: int
    fn: Callable[[], Any] = field(compare=False)
    future: Future[Any] = field(compare=False)


class Scheduler:
    def __init__(self, workers: int = 1) -> None:
        self._heap: list[_Job] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"voxgate-worker-{i}", daemon=True) for i in range(max(1, workers))
        ]
        for t in self._threads:
            t.start()

    @property
    def pending(self) -> int:
        """Jobs waiting (not counting those running)."""
        with self._cond:
            return len(self._heap)

    def submit(self, fn: Callable[[], T], *, deadline_in: float = BACKGROUND) -> Future[T]:
        """Queue ``fn`` to run no later than ``deadline_in`` seconds from now (a priority, not a guarantee)."""
        future: Future[T] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("scheduler is closed")
            heapq.heappush(self._heap, _Job(time.monotonic() + deadline_in, next(self._seq), fn, future))
            self._cond.notify()
        return future

    async def run(self, fn: Callable[[], T], *, deadline_in: float = BACKGROUND) -> T:
        """Run ``fn`` on a worker and await its result. Cancelling the caller drops the job if it has not started."""
        future = self.submit(fn, deadline_in=deadline_in)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._closed:
                    self._cond.wait()
                if not self._heap:
                    return
                job = heapq.heappop(self._heap)
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                result = job.fn()
            except BaseException as exc:  # handed to the awaiting caller, who decides
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)

    def close(self) -> None:
        """Finish queued work, then stop the workers."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join()
