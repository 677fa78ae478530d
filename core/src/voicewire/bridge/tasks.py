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
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["eager_task"]

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
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, name=name, eager_start=True)
    return loop.create_task(coro, name=name)
