"""``voicewire._change.wait_for_change``: the poll loops' wait, which never loses a cancellation."""

from __future__ import annotations

import asyncio
import sys

import pytest

from voicewire._change import wait_for_change


async def test_returns_once_the_event_is_set() -> None:
    changed = asyncio.Event()
    task = asyncio.create_task(wait_for_change(changed, 60.0))
    await asyncio.sleep(0)
    assert not task.done()
    changed.set()
    await asyncio.wait_for(task, 10.0)  # hang guard


async def test_returns_when_the_time_is_up_and_leaves_the_event_alone() -> None:
    changed = asyncio.Event()
    await wait_for_change(changed, 0.01)
    assert not changed.is_set()
    await wait_for_change(changed, -1.0)  # a deadline already past: no wait


async def test_leaves_no_task_behind() -> None:
    before = asyncio.all_tasks()
    await wait_for_change(asyncio.Event(), 0.01)
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == before


async def test_a_cancellation_that_arrives_as_the_event_is_set_is_not_lost() -> None:
    changed = asyncio.Event()
    task = asyncio.create_task(wait_for_change(changed, 60.0))
    await asyncio.sleep(0)
    changed.set()
    task.cancel()  # in the same turn of the loop
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_asyncio_wait_for_loses_that_cancellation_before_python_3_12() -> None:
    # Why the poll loops do not use wait_for: the same sequence, and before 3.12 the task goes on.
    changed = asyncio.Event()

    async def wait() -> str:
        await asyncio.wait_for(changed.wait(), 60.0)
        return "went on"

    task = asyncio.create_task(wait())
    await asyncio.sleep(0)
    changed.set()
    task.cancel()
    if sys.version_info >= (3, 12):
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        assert await task == "went on"
