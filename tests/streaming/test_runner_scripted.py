"""The stream runner's glue with the scripted engine and VAD (``tests/scripted.py``): fallback to the next engine
mid-turn, errors that end a stream, where calls run, the scheduler's priorities and dropped partials — with no
model, and every answer known in advance.

Real engines behind the same runner are tested through the WebSocket (``tests/server/test_ws.py``,
``test_ws_providers.py``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import pytest

from tests.scripted import Call, Failure, Script, ScriptedEngine, ScriptedVad, hold
from voxgate.audio.pcm import PcmEncoding
from voxgate.errors import EngineError, ProviderError, VoxgateError
from voxgate.scheduler import Scheduler
from voxgate.streaming.events import Event, StreamClosed, TranscriptEvent
from voxgate.streaming.policy import TurnMode, TurnPolicy
from voxgate.streaming.runner import StreamRunner
from voxgate.streaming.session import SessionConfig
from voxgate.types import TranscriptionOptions

CHILD = "the child almost hurt the small dog"
JOY = "what joy there is in living"


@pytest.fixture
def scheduler() -> AsyncIterator[Scheduler]:
    s = Scheduler()
    yield s  # type: ignore[misc]
    s.close()


@pytest.fixture
def gate(scheduler: Scheduler) -> Iterator[threading.Event]:
    """What a test's busy jobs (:func:`hold`) wait for; opened at teardown too, before the scheduler closes, so a
    failing test cannot leave a worker blocked (and the run hung in ``Scheduler.close``)."""
    event = threading.Event()
    yield event
    event.set()


@asynccontextmanager
async def running(
    engines: Sequence[ScriptedEngine], scheduler: Scheduler, *, partials: bool = True, batching: bool = True
) -> AsyncIterator[StreamRunner]:
    config = SessionConfig(
        options=TranscriptionOptions(language="en"),
        turn=TurnPolicy(mode=TurnMode.MANUAL),
        partial_interval=0.3,
        partials=partials,
    )
    runner = StreamRunner(
        config,
        engines=engines,
        scheduler=scheduler,
        vad=ScriptedVad(),  # type: ignore[arg-type]
        turn_detector=None,
        encoding=PcmEncoding.LINEAR16,
        sample_rate=16_000,
        channels=1,
        small_models=anyio.CapacityLimiter(2),
        batching=batching,
    )
    await runner.start()
    try:
        yield runner
    finally:
        await runner.aclose()


async def send(
    runner: StreamRunner, script: Script, start: float = 0.0, end: float | None = None, *, lockstep: bool = True
) -> None:
    """The script's audio from ``start`` to ``end`` as a client sends it: 100 ms PCM frames. In ``lockstep``, each
    frame waits for the work the last one started (as a client at real-time pace would, on an idle server), so what
    the engines are asked does not depend on the machine's load; without, frames go as fast as the loop takes them
    (the tests that hold the scheduler's worker)."""
    pcm = script.pcm(start, end)
    for i in range(0, len(pcm), 3200):
        await runner.feed(pcm[i : i + 3200])
        if lockstep:
            await runner.settled()
        else:
            await asyncio.sleep(0)


async def until_closed(runner: StreamRunner, within: float = 10.0) -> list[Event | VoxgateError]:
    """Every event up to StreamClosed (or the first error)."""
    got: list[Event | VoxgateError] = []
    while True:
        event = await asyncio.wait_for(runner.events.get(), within)
        got.append(event)
        if isinstance(event, StreamClosed | VoxgateError):
            return got


def finals(events: Sequence[object]) -> list[str]:
    return [e.text for e in events if isinstance(e, TranscriptEvent) and e.is_final]


# -- fallback ----------------------------------------------------------------------------------------------------------


async def test_a_failing_engine_hands_the_turn_to_the_next_with_its_audio(scheduler: Scheduler) -> None:
    script = Script.say((0.3, CHILD), (4.0, JOY), tail=0.3)
    primary = ScriptedEngine(script, model_id="scripted/primary", failure=Failure(kinds=frozenset({"final"})))
    backup = ScriptedEngine(script, model_id="scripted/backup")
    async with running([primary, backup], scheduler) as runner:
        await send(runner, script, 0, 3.5)
        runner.end_turn()
        await runner.settled()  # the final has failed over before the next turn's first frame
        await send(runner, script, 3.5)
        runner.close()
        events = await until_closed(runner)
    assert not [e for e in events if isinstance(e, VoxgateError)]
    assert finals(events) == [CHILD, JOY]  # nothing heard was lost
    (failed,) = [c for c in primary.calls if c.kind == "final"]
    assert "draft" in primary.kinds()  # the primary served partials until its first final failed ...
    first_final = next(c for c in backup.calls if c.kind == "final")
    assert (first_final.start, first_final.end) == (failed.start, failed.end)  # ... the backup decoded that turn
    # ... and the stream stayed on the backup: nothing of the next turn went to the primary. (A draft of the failed
    # turn queued before its final may still run on the primary; its answer is dropped, the turn having ended.)
    assert not [c for c in primary.calls if c.start >= failed.end]
    assert "final" in [c.kind for c in backup.calls if c.start >= failed.end]


async def test_a_fallback_takes_over_drafts_too(scheduler: Scheduler) -> None:
    script = Script.say((0.3, CHILD), tail=0.3)
    primary = ScriptedEngine(script, model_id="scripted/primary", failure=Failure(after=2))
    backup = ScriptedEngine(script, model_id="scripted/backup")
    async with running([primary, backup], scheduler) as runner:
        await send(runner, script)
        runner.close()
        events = await until_closed(runner)
    assert finals(events) == [CHILD]
    assert "draft" in primary.kinds()
    assert "draft" in backup.kinds()
    partials = [e.text for e in events if isinstance(e, TranscriptEvent) and not e.is_final]
    assert len(partials) >= 3  # drafts kept coming, from the backup after the primary's third failed


async def test_without_a_fallback_the_engine_error_ends_the_stream(scheduler: Scheduler) -> None:
    script = Script.say((0.3, CHILD), tail=0.3)
    failing = ScriptedEngine(script, failure=Failure(kinds=frozenset({"final"}), error=ProviderError))
    async with running([failing], scheduler, partials=False) as runner:
        await send(runner, script)
        runner.close()
        events = await until_closed(runner)
    error = events[-1]
    assert isinstance(error, ProviderError)
    assert "scripted/test failed (scripted) on a final call" in error.message
    assert finals(events) == []


async def test_an_engine_bug_ends_only_the_stream_and_is_not_retried(scheduler: Scheduler) -> None:
    """A bug is not an outage: no fallback, an EngineError naming the engine and the exception's type."""
    script = Script.say((0.3, CHILD), tail=0.3)
    buggy = ScriptedEngine(script, failure=Failure(kinds=frozenset({"final"}), error=RuntimeError))
    backup = ScriptedEngine(script, model_id="scripted/backup")
    async with running([buggy, backup], scheduler, partials=False) as runner:
        await send(runner, script)
        runner.close()
        events = await until_closed(runner)
    error = events[-1]
    assert type(error) is EngineError
    assert error.message == "scripted/test failed: RuntimeError"
    assert backup.calls == []


async def test_close_waits_for_a_slow_speculative_final_and_reuses_it(scheduler: Scheduler) -> None:
    """A slow engine: the pause's full decode is still running when the client closes; the final is that decode's
    answer (no second one), and the stream closes only after it is out."""
    script = Script.say((0.3, JOY), tail=0.5)
    slow = ScriptedEngine(script, delays={"final": 0.5})
    async with running([slow], scheduler, partials=False) as runner:
        await send(runner, script, lockstep=False)  # the pause after "living" starts the speculative decode
        for _ in range(40):  # wait until the worker has begun it (its answer takes 0.5 s)
            if slow.calls:
                break
            await asyncio.sleep(0.01)
        assert slow.kinds() == ["final"]
        runner.close()
        events = await until_closed(runner)
    assert [type(e).__name__ for e in events][-2:] == ["TranscriptEvent", "StreamClosed"]
    assert finals(events) == [JOY]
    assert slow.kinds() == ["final"]


# -- where calls run ---------------------------------------------------------------------------------------------------


async def test_remote_engines_run_beside_the_scheduler_and_local_ones_on_it(
    scheduler: Scheduler, gate: threading.Event
) -> None:
    script = Script.say((0.3, CHILD), tail=0.3)
    blocked = [hold(scheduler, gate, urgent=True) for _ in range(2)]  # the worker and the urgent lane are busy
    remote = ScriptedEngine(script, remote=True)
    try:
        async with running([remote], scheduler) as runner:
            await send(runner, script)
            runner.close()
            events = await until_closed(runner)  # a cloud call does not wait for the inference worker
        assert finals(events) == [CHILD]
        assert "draft" in remote.kinds()
        assert threading.get_ident() not in {c.thread for c in remote.calls}
        local = ScriptedEngine(script)
        async with running([local], scheduler, partials=False) as runner:
            await send(runner, script, lockstep=False)
            runner.close()
            with pytest.raises(TimeoutError):  # a local engine's final waits for a free inference thread ...
                await until_closed(runner, within=0.5)
            gate.set()
            events = await until_closed(runner)
        assert finals(events) == [CHILD]  # ... and comes once it is free
    finally:
        gate.set()
        for b in blocked:
            b.result(timeout=5)


async def test_a_final_goes_before_queued_drafts(scheduler: Scheduler, gate: threading.Event) -> None:
    """Streams on one busy worker: the final asked for last runs before the drafts queued before it, although
    their deadlines came first (on the urgent lane, at once, while the worker is still busy)."""
    script = Script.say((0.3, CHILD), tail=0.3)
    log: list[Call] = []
    talkers = [ScriptedEngine(script, model_id=f"scripted/talker{i}", calls=log) for i in range(3)]
    closer = ScriptedEngine(script, model_id="scripted/closer", calls=log)
    async with AsyncExitStack() as stack:
        closing = await stack.enter_async_context(running([closer], scheduler, partials=False))
        talking = [await stack.enter_async_context(running([t], scheduler, batching=False)) for t in talkers]
        await send(closing, script, 0, 2.0)  # mid-speech: no pause, no speculative decode
        blocked = hold(scheduler, gate)
        for runner in talking:
            await send(runner, script, 0, 1.0, lockstep=False)  # each stream's first draft queues behind the worker
        await asyncio.sleep(0.6)  # the drafts' deadlines (0.5 s) pass; they are not dropped before 1.5 s
        queued = scheduler.pending
        closing.close()
        events = await until_closed(closing)  # the worker is still blocked
        gate.set()
        blocked.result(timeout=5)
        await asyncio.sleep(0.2)
    assert queued == 3  # the drafts, queued before the final
    assert finals(events) == ["the child almost hurt"]
    assert [(c.engine, c.kind) for c in log][:2] == [("scripted/closer", "final"), ("scripted/talker0", "draft")]
    assert sorted(c.engine for c in log[1:4]) == [t.model_id for t in talkers]


async def test_a_draft_queued_too_long_is_dropped_and_the_next_one_comes(
    scheduler: Scheduler, gate: threading.Event
) -> None:
    """A partial still queued 1 s past its 0.5 s deadline is skipped, not decoded late; the stream goes on."""
    script = Script.say((0.3, "one two three four five six"), tail=0.0)
    engine = ScriptedEngine(script)
    async with running([engine], scheduler) as runner:
        blocked = hold(scheduler, gate)
        await send(runner, script, 0, 1.0, lockstep=False)  # a draft queues behind the busy worker
        assert scheduler.pending == 1
        await asyncio.sleep(1.7)
        gate.set()
        blocked.result(timeout=5)
        await asyncio.sleep(0.1)
        assert engine.calls == []  # dropped, never decoded
        await send(runner, script, 1.0)
        runner.close()
        events = await until_closed(runner)
    drafts = [c for c in engine.calls if c.kind == "draft"]
    assert drafts
    assert all(c.end > 1.0 for c in drafts)
    partials = [e for e in events if isinstance(e, TranscriptEvent) and not e.is_final]
    assert partials
    assert partials[0].end > 1.0
    assert finals(events) == ["one two three four five six"]
