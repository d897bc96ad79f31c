from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from tests.scripted import hold
from voxgate.scheduler import Scheduler


@pytest.fixture
def scheduler():
    s = Scheduler()
    yield s
    s.close()


@pytest.fixture
def gate(scheduler: Scheduler) -> Iterator[threading.Event]:
    """Opened at teardown too, before the scheduler closes: a failing test cannot leave a worker blocked."""
    event = threading.Event()
    yield event
    event.set()


def test_runs_jobs_off_the_calling_thread(scheduler: Scheduler) -> None:
    caller = threading.get_ident()
    assert scheduler.submit(threading.get_ident).result(timeout=5) != caller


def test_earliest_deadline_runs_first(scheduler: Scheduler, gate: threading.Event) -> None:
    order: list[str] = []
    blocker = hold(scheduler, gate)  # occupies the single worker while the others queue up
    late = scheduler.submit(lambda: order.append("background"), deadline_in=100.0)
    urgent = scheduler.submit(lambda: order.append("urgent"), deadline_in=0.1)
    normal = scheduler.submit(lambda: order.append("normal"), deadline_in=10.0)
    assert scheduler.pending == 3
    gate.set()
    for f in (blocker, late, urgent, normal):
        f.result(timeout=5)
    assert order == ["urgent", "normal", "background"]


def test_urgent_work_goes_before_earlier_deadlines(scheduler: Scheduler, gate: threading.Event) -> None:
    """A final queued now overtakes drafts queued before it, although their deadlines come first."""
    order: list[str] = []
    blocker = hold(scheduler, gate)
    drafts = [
        scheduler.submit_batched(("draft", i), i, lambda items: [order.append(f"draft {i}") for i in items],
                                 max_batch=1, deadline_in=-1.0 + i)
        for i in range(3)
    ]  # fmt: skip
    final = scheduler.submit(lambda: order.append("final"), deadline_in=0.0, urgent=True)
    second = scheduler.submit(lambda: order.append("second final"), deadline_in=0.0, urgent=True)
    gate.set()
    for f in (blocker, *drafts, final, second):
        f.result(timeout=5)
    assert order == ["final", "second final", "draft 0", "draft 1", "draft 2"]  # urgent first, then by deadline


def test_exceptions_reach_the_caller_and_the_worker_survives(scheduler: Scheduler) -> None:
    def boom() -> None:
        raise ValueError("engine exploded")

    with pytest.raises(ValueError, match="engine exploded"):
        scheduler.submit(boom).result(timeout=5)
    assert scheduler.submit(lambda: 42).result(timeout=5) == 42


async def test_run_awaits_without_blocking_the_loop(scheduler: Scheduler) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    assert await scheduler.run(lambda: time.sleep(0.3) or "done") == "done"
    task.cancel()
    assert ticks >= 10  # the loop kept running while the worker slept


async def test_cancelled_caller_drops_queued_job(scheduler: Scheduler, gate: threading.Event) -> None:
    ran: list[int] = []
    blocker = hold(scheduler, gate)
    waiter = asyncio.create_task(scheduler.run(lambda: ran.append(1)))
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.set()
    blocker.result(timeout=5)
    scheduler.submit(lambda: None).result(timeout=5)
    assert ran == []


def test_closed_scheduler_refuses_work() -> None:
    s = Scheduler()
    s.close()
    with pytest.raises(RuntimeError, match="closed"):
        s.submit(lambda: None)


def test_remote_calls_do_not_wait_behind_inference(scheduler: Scheduler, gate: threading.Event) -> None:
    """A cloud call runs on the I/O pool at once, while the inference worker is busy."""
    blocker = hold(scheduler, gate)
    remote = scheduler.submit(lambda: "network", remote=True)
    assert remote.result(timeout=5) == "network"
    assert not blocker.done()
    gate.set()
    blocker.result(timeout=5)


def test_remote_calls_are_bounded() -> None:
    """No more than ``remote_calls`` cloud calls are in flight at once, whoever submits them (streams and files)."""
    scheduler = Scheduler(remote_calls=2)
    running = 0
    most = 0
    lock = threading.Lock()
    gate = threading.Event()

    def call() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        gate.wait(5)
        with lock:
            running -= 1

    try:
        futures = [scheduler.submit(call, remote=True) for _ in range(6)]
        time.sleep(0.2)
        assert most == 2
        gate.set()
        for f in futures:
            f.result(timeout=5)
        assert most == 2
    finally:
        scheduler.close()


def test_a_closed_scheduler_refuses_remote_calls() -> None:
    scheduler = Scheduler()
    scheduler.close()
    with pytest.raises(RuntimeError, match="closed"):
        scheduler.submit(lambda: None, remote=True)


def test_background_work_goes_after_everything_else(scheduler: Scheduler, gate: threading.Event) -> None:
    """An async job's window queued first, with the earliest deadline, still waits for a file window and a final."""
    order: list[str] = []
    blocker = hold(scheduler, gate)
    job = scheduler.submit(lambda: order.append("job"), deadline_in=-10.0, background=True)
    later_job = scheduler.submit(lambda: order.append("later job"), deadline_in=0.0, background=True)
    file = scheduler.submit(lambda: order.append("file"), deadline_in=100.0)
    final = scheduler.submit(lambda: order.append("final"), deadline_in=0.0, urgent=True)
    gate.set()
    for f in (blocker, job, later_job, file, final):
        f.result(timeout=5)
    assert order == ["final", "file", "job", "later job"]


def test_a_final_does_not_wait_for_the_long_job_running(scheduler: Scheduler, gate: threading.Event) -> None:
    """The urgent lane: a final starts while a long window holds the worker; plain work still waits its turn."""
    window = hold(scheduler, gate, background=True)
    plain = scheduler.submit(lambda: "file", deadline_in=0.0)
    final = scheduler.submit(lambda: "final", urgent=True)
    assert final.result(timeout=5) == "final"
    assert not window.done()
    assert not plain.done()
    gate.set()
    assert plain.result(timeout=5) == "file"
    assert window.result(timeout=5) is True


def test_without_an_urgent_lane_a_final_waits() -> None:
    s = Scheduler(urgent_lanes=0)
    try:
        gate = threading.Event()
        window = s.submit(gate.wait, background=True)
        time.sleep(0.05)
        final = s.submit(lambda: "final", urgent=True)
        time.sleep(0.2)
        assert not final.done()
        gate.set()
        assert final.result(timeout=5) == "final"
        assert window.result(timeout=5) is True
    finally:
        s.close()
