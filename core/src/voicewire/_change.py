"""Waiting, with a time limit, for an event that says "something changed, look again".

Poll loops (``while not done(): wait for a change or the deadline``) are written with this
instead of ``asyncio.wait_for(event.wait(), timeout)``: before Python 3.12, ``wait_for`` returns
normally when a cancellation arrives in the same turn of the loop as the event is set, and the
cancellation is lost; the task that should have stopped goes on polling.
"""

from __future__ import annotations

import asyncio

__all__ = ["wait_for_change"]


async def wait_for_change(changed: asyncio.Event, timeout: float) -> None:
    """Wait until ``changed`` is set, or ``timeout`` seconds have passed; a cancellation always
    propagates."""
    if changed.is_set():
        return
    waiter = asyncio.ensure_future(changed.wait())
    try:
        await asyncio.wait((waiter,), timeout=max(0.0, timeout))
    finally:
        waiter.cancel()
