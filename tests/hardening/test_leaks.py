"""Leak checks: many short calls through the real bridge server leave nothing behind.

Short calls (connect, a spoken turn, the echo heard, hang up) run through ``create_app`` to the
fake model, first one after another, then all at once. Afterwards: every call's bridge was
garbage-collected, no asyncio task is left, the process holds exactly the file descriptors and
sockets it held before, and its resident memory grew by less than a stated bound.

Counts are small by default so that the suite stays fast; raise them with
``VOICEWIRE_SOAK_CALLS`` (sequential, up to 1000) and ``VOICEWIRE_SOAK_PARALLEL`` (concurrent,
up to 100). ``bench/soak.py`` is the long version, with figures.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from voicewire.audio.formats import MULAW_8K
from voicewire.testing import speech_like
from voicewire.testing.telephony import SimulatedCaller
from voicewire_twilio.caller import TwilioDialect

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from tests.hardening.conftest import Kit, TwilioServerEnv

    EnvFactory = Callable[..., AbstractAsyncContextManager[TwilioServerEnv]]

SPEED = 10.0
"""Caller clock speed of the sequential calls."""
PARALLEL_SPEED = 2.0
"""Caller clock speed of the concurrent calls: every caller sends 50 x speed frames per second
(silence between utterances, as Twilio does), so this keeps the load within two CPU cores."""
RSS_BASE_BOUND = 24 * 1024 * 1024
"""Bytes of resident-memory growth allowed for allocator and import noise, whatever the count."""
RSS_PER_CALL_BOUND = 64 * 1024
"""Bytes allowed per call on top (the fake model keeps a record of every session it served)."""


async def short_call(url: str, seed: str, guard: float, speed: float = SPEED) -> None:
    caller = SimulatedCaller(url, TwilioDialect(), speed=speed)
    try:
        await caller.start()
        await caller.say(speech_like(300, MULAW_8K, seed=seed))
        await caller.wait_heard(1, timeout=guard)
        await caller.hang_up()
    finally:
        await caller.close()
    assert caller.violations == ()


def _forget_test_plugin_records() -> None:
    # The suite's own test plugin (tests/plugins, installed in the test environments) keeps
    # every transport and edge the registry creates, on purpose; production has no such plugin.
    try:
        good = importlib.import_module("voicewire_testplugins.good")
    except ImportError:
        return
    good.forget()


async def _resources_return_to(
    kit: type[Kit], fds: int | None, sockets: int | None, guard: float
) -> tuple[int | None, int | None]:
    """Poll until the fd and socket counts are back to the baseline (closing is asynchronous);
    return the last counts seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + guard
    now_fds, now_sockets = kit.fds(), kit.sockets()
    while (now_fds, now_sockets) != (fds, sockets) and loop.time() < deadline:
        await asyncio.sleep(0.05)
        gc.collect()
        now_fds, now_sockets = kit.fds(), kit.sockets()
    return now_fds, now_sockets


async def test_many_calls_leak_no_task_fd_socket_or_memory(
    twilio_env: EnvFactory, kit: type[Kit]
) -> None:
    if kit.fds() is None:
        pytest.skip("needs /proc (Linux)")
    sequential = kit.env_int("VOICEWIRE_SOAK_CALLS", 30, maximum=1000)
    parallel = kit.env_int("VOICEWIRE_SOAK_PARALLEL", 20, maximum=100)
    async with twilio_env(keep=False) as env:
        # Warm up: imports, codec tables, the first connection's lazily built objects.
        for index in range(2):
            await short_call(env.ws_url, f"warm-{index}", kit.GUARD)
        await env.server.wait_for_calls(0, timeout=kit.GUARD)
        await kit.settle()
        tasks_before = set(asyncio.all_tasks())
        fds_before, sockets_before = kit.fds(), kit.sockets()
        rss_before = kit.rss()

        for index in range(sequential):
            await short_call(env.ws_url, f"seq-{index}", kit.GUARD)
        await asyncio.gather(
            *(
                short_call(env.ws_url, f"par-{index}", kit.GUARD, PARALLEL_SPEED)
                for index in range(parallel)
            )
        )
        await env.server.wait_for_calls(0, timeout=kit.GUARD)
        total = 2 + sequential + parallel
        assert env.server.calls_started == total
        await env.fake.wait_for(
            lambda: sum(s.closed for s in env.fake.sessions) == total, timeout=kit.GUARD
        )
        await kit.settle()

        leaked_tasks = kit.alive_tasks(tasks_before)
        assert leaked_tasks == [], leaked_tasks
        _forget_test_plugin_records()
        gc.collect()
        alive = [type(obj).__name__ for obj in (ref() for ref in env.refs) if obj is not None]
        assert alive == [], f"still referenced after their calls: {alive}"
        fds, sockets = await _resources_return_to(kit, fds_before, sockets_before, kit.GUARD)

        assert fds == fds_before, (fds_before, fds)
        assert sockets == sockets_before, (sockets_before, sockets)
        rss_after = kit.rss()
        assert rss_before is not None
        assert rss_after is not None
        growth = rss_after - rss_before
        bound = RSS_BASE_BOUND + RSS_PER_CALL_BOUND * (sequential + parallel)
        assert growth < bound, f"RSS grew by {growth / 1e6:.1f} MB (bound {bound / 1e6:.1f} MB)"
        health = await env.healthz()
        assert health["active_calls"] == 0


async def refused_call(url: str, guard: float) -> None:
    """A stream of another account: the bridge ends it at 'start'."""
    caller = SimulatedCaller(url, TwilioDialect(), speed=SPEED)
    try:
        await caller.start()
        await caller.wait_closed(timeout=guard)
    finally:
        await caller.close()


@pytest.mark.parametrize(
    "connect_on_call_start",
    [True, False],
    ids=["model-after-start", "model-connecting-when-refused"],
)
async def test_calls_refused_at_start_leak_nothing_either(
    twilio_env: EnvFactory,
    kit: type[Kit],
    caplog: pytest.LogCaptureFixture,
    connect_on_call_start: bool,
) -> None:
    if kit.fds() is None:
        pytest.skip("needs /proc (Linux)")
    count = kit.env_int("VOICEWIRE_SOAK_PARALLEL", 20, maximum=100)
    options = {"connect_on_call_start": connect_on_call_start}
    async with twilio_env(
        keep=False, twilio_account_sid="AC" + "5" * 32, bridge_options=options
    ) as env:
        await refused_call(env.ws_url, kit.GUARD)  # warm-up
        await env.server.wait_for_calls(0, timeout=kit.GUARD)
        await kit.settle()
        tasks_before = set(asyncio.all_tasks())
        fds_before, sockets_before = kit.fds(), kit.sockets()

        await asyncio.gather(*(refused_call(env.ws_url, kit.GUARD) for _ in range(count)))
        await env.server.wait_for_calls(0, timeout=kit.GUARD)
        await kit.settle()

        assert kit.alive_tasks(tasks_before) == []
        _forget_test_plugin_records()
        gc.collect()
        alive = [type(obj).__name__ for obj in (ref() for ref in env.refs) if obj is not None]
        assert alive == [], f"still referenced after their calls: {alive}"
        fds, sockets = await _resources_return_to(kit, fds_before, sockets_before, kit.GUARD)
        assert (fds, sockets) == (fds_before, sockets_before)
        # No caller audio reached the model; with the default, no session was even opened.
        assert all(kit.appended_of(session) == b"" for session in env.fake.sessions)
        if connect_on_call_start:
            assert env.fake.sessions == ()
    # Ended while the model connected: not an internal error of the transport.
    assert "the connection task failed" not in caplog.text
