"""Tasks that start at once: how the bridge and edges hand audio on without a turn of the loop.

A frame handed from one task to another costs a turn of the event loop (another ``epoll_wait`` and
a task step), fifty times a second per call and direction. A task started eagerly runs its
coroutine immediately, up to its first real suspension, so a send that does not have to wait is
done before the code that started it goes on; only a send that must wait (a full socket buffer)
leaves a pending task behind.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["Drain", "eager_task"]

_T = TypeVar("_T")


def eager_task(coro: Coroutine[Any, Any, _T], *, name: str | None = None) -> asyncio.Task[_T]:
    """Start ``coro`` as a task of the running loop, eagerly where Python allows.

    On Python 3.12 and later the coroutine runs at once, inside this call, until it first
    suspends (``asyncio.Task(..., eager_start=True)``, what ``asyncio.eager_task_factory`` does);
    if it finishes without suspending, the task returned is already done. Before 3.12 this is
    ``loop.create_task``: the coroutine starts at the next turn of the loop.

    Code that starts such a task must not rely on it having run, nor on it not having run: keep a
    flag ("a writer is at it") set before the call and cleared in the coroutine's ``finally``.

    Args:
        coro: The coroutine.
        name: The task's name.

    Returns:
        The task.

    Raises:
        RuntimeError: No event loop is running.
    """
    return _start(asyncio.get_running_loop(), coro, name)


def _start(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, _T], name: str | None
) -> asyncio.Task[_T]:
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, name=name, eager_start=True)
    return loop.create_task(coro, name=name)


class Drain:
    """One task at a time that works through a queue while it has work, started on demand.

    ``kick()`` after putting work in the queue: if no task is at it, one starts (eagerly, see
    :func:`eager_task`) and runs ``work()``, which should return once the queue is empty. Work
    added while the task runs is for that task to find, so ``work()`` loops until the queue is
    empty. Used by the call bridge for its uplink and downlink and by the Twilio edge for its
    writer; any edge can use it for its own.

    Args:
        work: The coroutine function that empties the queue.
        name: The name of the tasks.
    """

    __slots__ = ("_loop", "_name", "_running", "_task", "_work")

    def __init__(self, work: Callable[[], Coroutine[Any, Any, None]], *, name: str) -> None:
        self._work = work
        self._name = name
        self._running = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<Drain {self._name} running={self._running}>"

    @property
    def running(self) -> bool:
        """A task is at it (possibly not started yet before Python 3.12)."""
        return self._running

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The latest task, finished or not; ``None`` before the first ``kick()``."""
        return self._task

    def kick(self) -> None:
        """Start a task unless one is already at it."""
        if self._running:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            # Looked up once: before Python 3.12 each lookup costs a getpid() system call, and
            # a kick comes with every frame.
            loop = self._loop = asyncio.get_running_loop()
        # Set before the task exists: an eager task may finish inside _start() itself.
        self._running = True
        self._task = _start(loop, self._run(), self._name)

    async def _run(self) -> None:
        try:
            await self._work()
        finally:
            self._running = False

    async def stop(self) -> None:
        """Cancel the task, if one is at it, and wait for it to end."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
