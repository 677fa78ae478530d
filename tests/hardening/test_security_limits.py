"""Limits of the public media WebSocket, under concurrent abuse.

``tests/twilio`` checks each limit alone. Here abusive callers hit the real bridge server at the
same time as a well-behaved one: a message flood (closed with 1008), an oversized frame (closed
with 1009), a flood of binary frames, a flood of malformed JSON. Each abuser is cut off (or its
frames refused and counted) with a clear close code and an error event on its own call; the
healthy call completes its turn, ``/healthz`` answers throughout, and every call ends.
"""

from __future__ import annotations

import asyncio
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

pytestmark = pytest.mark.usefixtures("no_task_leaks")

RATE = 100.0
BURST = 50
MAX_FRAME = 4096


async def test_abusers_are_cut_off_and_the_honest_call_goes_on(
    twilio_env: EnvFactory, kit: type[Kit]
) -> None:
    async with twilio_env(
        max_messages_per_second=RATE, message_burst=BURST, max_message_bytes=MAX_FRAME
    ) as env:
        flood_dialect = TwilioDialect()
        flood = SimulatedCaller(env.ws_url, flood_dialect, keepalive=False)
        big = SimulatedCaller(env.ws_url, TwilioDialect(), keepalive=False)
        binary = SimulatedCaller(env.ws_url, TwilioDialect(), keepalive=False)
        garbage = SimulatedCaller(env.ws_url, TwilioDialect(), keepalive=False)
        honest = SimulatedCaller(env.ws_url, TwilioDialect(), speed=2.0)
        callers = [flood, big, binary, garbage, honest]
        try:
            for caller in callers:
                await caller.start()
            await env.waker.until(lambda: len(env.refs) == 3 * len(callers), "five calls")
            speaking = asyncio.ensure_future(honest.say(speech_like(500, MULAW_8K, seed="ok")))
            frame = flood_dialect.media(b"\xff" * 160, 0)  # valid frames, just too many

            async def abuse() -> None:
                for _ in range(BURST * 4):
                    await flood.send_raw(frame)
                await big.send_raw('{"event":"media","x":"' + "A" * (MAX_FRAME * 4) + '"}')
                for _ in range(BURST // 2):
                    await binary.send_raw(b"\x00\x01\x02\x03")
                    await garbage.send_raw("{no json")

            await asyncio.gather(abuse(), return_exceptions=True)
            await flood.wait_closed(timeout=kit.GUARD)
            await big.wait_closed(timeout=kit.GUARD)
            assert flood.close_code == 1008
            # 1009 from the server; a reset if the kernel dropped the rest of the frame first.
            assert big.close_code in (1009, 1006)
            health = await env.healthz()
            assert health["status"] == "ok"
            await speaking
            await honest.wait_for(lambda: len(honest.heard) > 0, timeout=kit.GUARD)
            await honest.wait_idle(timeout=kit.GUARD)
            assert honest.heard in honest.sent
            assert not binary.closed
            assert not garbage.closed
        finally:
            for caller in callers:
                await caller.close()
        await env.server.wait_for_calls(0, timeout=kit.GUARD)

        # Each call's errors are its own (calls are matched by what went wrong with them).
        codes = sorted(
            (sorted(set(c)), len(c))
            for c in ([e.code or "" for e in env.errors(i)] for i in range(len(callers)))
        )
        assert codes == sorted(
            [
                (["rate_limited"], 1),
                (["message_too_large"], 1),
                (["binary_frame"], BURST // 2),
                (["invalid_json"], BURST // 2),
                ([], 0),
            ]
        )
        for bridge in env.bridges:
            kit.assert_balanced(bridge.stats)
