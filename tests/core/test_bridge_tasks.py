"""eager_task (at once on Python >= 3.12, at the next turn of the loop before) and Drain."""

from __future__ import annotations

import asyncio
import sys

import pytest

from voicewire.bridge import Drain, eager_task

EAGER = sys.version_info >= (3, 12)


async def test_a_coroutine_that_never_waits() -> None:
    ran: list[str] = []

    async def work() -> int:
        ran.append("ran")
        return 7

    task = eager_task(work(), name="vw-test")
    assert task.get_name() == "vw-test"
    assert task.done() is EAGER
    assert ran == (["ran"] if EAGER else [])
    assert await task == 7


async def test_a_coroutine_that_waits_runs_up_to_its_first_suspension() -> None:
    gate = asyncio.Event()
    steps: list[str] = []

    async def work() -> None:
        steps.append("before")
        await gate.wait()
        steps.append("after")

    task = eager_task(work())
    assert steps == (["before"] if EAGER else [])
    assert not task.done()
    gate.set()
    await task
    assert steps == ["before", "after"]


async def test_the_task_is_current_inside_and_errors_stay_in_the_task() -> None:
    seen: list[asyncio.Task[None] | None] = []

    async def work() -> None:
        seen.append(asyncio.current_task())
        raise ValueError("boom")

    outer = asyncio.current_task()
    task = eager_task(work())
    assert asyncio.current_task() is outer
    with pytest.raises(ValueError, match="boom"):
        await task
    assert seen == [task]


def test_needs_a_running_loop() -> None:
    async def work() -> None:
        return None

    coro = work()
    with pytest.raises(RuntimeError):
        eager_task(coro)
    coro.close()


def busy(drain: Drain) -> bool:
    # Calls, not the properties: mypy would keep an earlier assert's narrowing across kick().
    return drain.running


def task_of(drain: Drain) -> asyncio.Task[None] | None:
    return drain.task


async def test_drain_runs_one_task_at_a_time_until_the_queue_is_empty() -> None:
    queue: list[int] = []
    done: list[int] = []
    gate = asyncio.Event()
    tasks_started = 0

    async def work() -> None:
        nonlocal tasks_started
        tasks_started += 1
        while queue:
            item = queue.pop(0)
            if item == 2:
                await gate.wait()  # a send that has to wait
            done.append(item)

    drain = Drain(work, name="vw-test-drain")
    assert drain.task is None
    assert not busy(drain)
    queue.append(1)
    drain.kick()
    if EAGER:
        assert done == [1]
        assert not busy(drain)
    await asyncio.sleep(0)
    assert done == [1]
    queue.append(2)
    drain.kick()
    queue.append(3)
    drain.kick()  # the task at work finds it
    await asyncio.sleep(0)
    assert busy(drain)
    assert done == [1]
    gate.set()
    task = task_of(drain)
    assert task is not None
    await task
    assert done == [1, 2, 3]
    assert tasks_started == 2
    assert not busy(drain)
    assert "vw-test-drain" in repr(drain)


async def test_drain_stop_cancels_the_task_at_work() -> None:
    never = asyncio.Event()
    queue = [1]

    async def work() -> None:
        while queue:
            await never.wait()

    drain = Drain(work, name="vw-test-drain")
    drain.kick()
    await asyncio.sleep(0)
    assert busy(drain)
    await drain.stop()
    task = drain.task
    assert task is not None
    assert task.cancelled()
    assert not busy(drain)
    await drain.stop()  # idempotent


def test_a_drain_kicked_again_under_a_new_event_loop_uses_that_loop() -> None:
    # The loop is looked up once, not per kick; a closed one is looked up again.
    loops: list[asyncio.AbstractEventLoop] = []

    async def work() -> None:
        loops.append(asyncio.get_running_loop())

    drain = Drain(work, name="vw-test-drain")

    async def kick_and_finish() -> None:
        drain.kick()
        task = drain.task
        assert task is not None
        await task

    asyncio.run(kick_and_finish())
    asyncio.run(kick_and_finish())
    assert len(loops) == 2
    assert loops[0] is not loops[1]
