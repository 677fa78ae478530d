"""eager_task: runs at once on Python >= 3.12, at the next turn of the loop before."""

from __future__ import annotations

import asyncio
import sys

import pytest

from voicewire.bridge import eager_task

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
