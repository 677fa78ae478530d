"""``CallRoster`` and ``run_app``: the calls a plugin's aiohttp server carries, and its shutdown.

A real aiohttp server on loopback and a plain aiohttp client per call; the call's work is a small
function of the test's (the Twilio server's and the Telnyx example's tests run real bridges).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from voicewire.audio import MULAW_8K
from voicewire.bridge import CallBridge, DialectEdge, EdgeCapabilities, EdgeEvent
from voicewire.bridge.aiohttp_server import ActiveCall, CallRoster, run_app
from voicewire.bridge.aiohttp_socket import AiohttpMediaSocket
from voicewire.errors import ConfigError
from voicewire.testing import FakeRealtimeServer
from voicewire.transport import ConnectOptions
from voicewire_openai_ws import OpenAIRealtimeWebSocket

GUARD = 10.0
SECRET = "sk-roster-SECRET"

Run = Callable[[ActiveCall], Awaitable[None]]


def app_for(roster: CallRoster, run: Run) -> web.Application:
    async def media(request: web.Request) -> web.StreamResponse:
        return await roster.carry(request, web.WebSocketResponse(), run)

    async def healthz(request: web.Request) -> web.Response:
        status, body = roster.health()
        return web.json_response(status=status, data=body)

    app = web.Application()
    app.router.add_get("/media", media)
    app.router.add_get("/healthz", healthz)
    app.on_shutdown.append(roster.on_shutdown)
    return app


async def echo_until_closed(call: ActiveCall) -> None:
    """A call: echo text frames until the peer closes."""
    async for message in call.ws:
        if message.type is aiohttp.WSMsgType.TEXT:
            await call.ws.send_str(message.data)


@asynccontextmanager
async def served(roster: CallRoster, run: Run) -> AsyncIterator[str]:
    """Serve on loopback with ``run_app``; yield the base URL; cancel it at the end."""
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_app(app_for(roster, run), roster, host="127.0.0.1", port=0, ready=ready.set_result)
    )
    try:
        yield await asyncio.wait_for(ready, GUARD)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def health(http: aiohttp.ClientSession, base: str) -> tuple[int, object]:
    async with http.get(f"{base}/healthz") as response:
        return response.status, await response.json()


async def test_calls_are_counted_and_each_one_closed_when_it_ends(no_task_leaks: None) -> None:
    roster = CallRoster(shutdown_timeout=GUARD)
    async with served(roster, echo_until_closed) as base, aiohttp.ClientSession() as http:
        assert await health(http, base) == (
            200,
            {
                "status": "ok",
                "active_calls": 0,
                "max_calls": None,
                "calls_started": 0,
                "calls_rejected": 0,
            },
        )
        async with http.ws_connect(f"{base}/media") as first, http.ws_connect(f"{base}/media"):
            await roster.wait_for_calls(2, timeout=GUARD)
            assert roster.active_calls == 2
            await first.send_str("hi")
            assert (await first.receive()).data == "hi"
        await roster.wait_for_calls(0, timeout=GUARD)
        status, body = await health(http, base)
        assert (status, body) == (
            200,
            {
                "status": "ok",
                "active_calls": 0,
                "max_calls": None,
                "calls_started": 2,
                "calls_rejected": 0,
            },
        )
    assert roster.bridges == []


async def test_a_failing_call_is_closed_and_logged_without_secrets_and_others_go_on(
    no_task_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    async def run(call: ActiveCall) -> None:
        async for message in call.ws:
            if message.data == "explode":
                raise RuntimeError(f"could not reach the model with {SECRET}")
            await call.ws.send_str(message.data)

    log = logging.getLogger("voicewire_test.roster")
    roster = CallRoster(shutdown_timeout=GUARD, logger=log, secrets=(SECRET, None))
    caplog.set_level(logging.ERROR, logger="voicewire_test.roster")
    async with (
        served(roster, run) as base,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{base}/media") as good,
    ):
        async with http.ws_connect(f"{base}/media") as failing:
            await failing.send_str("explode")
            await failing.receive()
            assert failing.close_code == 1011
        await good.send_str("still here")
        assert (await good.receive()).data == "still here"
    assert re.search(
        r"call \d failed: RuntimeError: could not reach the model with \*\*\*", caplog.text
    )
    assert SECRET not in caplog.text


async def test_a_shutdown_waits_for_the_calls_then_closes_the_rest(no_task_leaks: None) -> None:
    roster = CallRoster(shutdown_timeout=0.3)
    async with served(roster, echo_until_closed) as base, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{base}/media") as client:
            await roster.wait_for_calls(1, timeout=GUARD)
            drain = asyncio.create_task(roster.drain())
            await asyncio.sleep(0.1)
            assert roster.draining
            assert not drain.done()  # the call has its time to finish
            status, body = await health(http, base)
            assert status == 503
            assert body == {
                "status": "draining",
                "active_calls": 1,
                "max_calls": None,
                "calls_started": 1,
                "calls_rejected": 0,
            }
            async with http.get(f"{base}/media") as refused:
                assert refused.status == 503  # no new calls
            assert await asyncio.wait_for(drain, GUARD) == 1  # the call did not end: closed
            closing = await client.receive()
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert closing.data == 1001  # going away
        assert roster.calls_rejected == 1
        assert roster.active_calls == 0


class _Quiet:
    """A dialect whose provider never starts a call: enough for a bridge to be closed."""

    call_id = None
    capabilities = EdgeCapabilities(acknowledgements=True, audio_format=MULAW_8K, provider="q")

    def receive(self, frame: str | bytes) -> EdgeEvent | None:
        return None

    def play(self, data: bytes) -> list[str]:
        return []

    def mark(self, token: str) -> str:
        return token

    def clear(self) -> str:
        return "clear"


class _SlowToClose(AiohttpMediaSocket):
    """The real adapter, whose close waits until the test lets it go."""

    def __init__(
        self, ws: web.WebSocketResponse, closing: list[int], three: asyncio.Event, go: asyncio.Event
    ) -> None:
        super().__init__(ws)
        self._closing = closing
        self._three = three
        self._go = go

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._closing.append(code)
        if len(self._closing) == 3:
            self._three.set()
        await self._go.wait()
        await super().close(code, reason)


async def test_a_shutdown_closes_the_calls_left_all_at_once(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    closing: list[int] = []
    three_closing, go = asyncio.Event(), asyncio.Event()

    async def run(call: ActiveCall) -> None:
        edge = DialectEdge(_Quiet(), _SlowToClose(call.ws, closing, three_closing, go))
        model = OpenAIRealtimeWebSocket(plugin_observers=False)
        call.bridge = CallBridge(edge, model, call_start_timeout=None, plugin_observers=False)
        await call.bridge.run(ConnectOptions(url=fake_realtime_server.url, api_key="sk-test"))

    roster = CallRoster(shutdown_timeout=0.0)
    async with (
        served(roster, run) as base,
        aiohttp.ClientSession() as http,
        contextlib.AsyncExitStack() as stack,
    ):
        for _ in range(3):
            await stack.enter_async_context(http.ws_connect(f"{base}/media"))
        await roster.wait_for_calls(3, timeout=GUARD)
        drain = asyncio.create_task(roster.drain())
        try:
            # One after the other, the second close would wait for the first, held by `go`.
            await asyncio.wait_for(three_closing.wait(), GUARD)
            assert not drain.done()
        finally:
            go.set()
        assert await asyncio.wait_for(drain, GUARD) == 3
        await roster.wait_for_calls(0, timeout=GUARD)


async def test_run_app_lets_a_call_finish_after_it_is_cancelled(no_task_leaks: None) -> None:
    roster = CallRoster(shutdown_timeout=GUARD)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_app(
            app_for(roster, echo_until_closed),
            roster,
            host="127.0.0.1",
            port=0,
            ready=ready.set_result,
        )
    )
    try:
        base = await asyncio.wait_for(ready, GUARD)
        assert base.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{base}/media") as client:
            await roster.wait_for_calls(1, timeout=GUARD)
            task.cancel()  # SIGTERM
            await asyncio.sleep(0.1)
            assert not task.done()
            await client.send_str("mid-shutdown")  # the call is still read and answered
            assert (await client.receive()).data == "mid-shutdown"
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), GUARD)
        assert roster.active_calls == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def slow_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` hook that makes answering an upgrade take a while, as a
    middleware or a busy loop may: upgrades that arrive together overlap."""
    del request, response
    await asyncio.sleep(0.05)


async def test_max_calls_holds_when_upgrades_arrive_at_once(
    no_task_leaks: None, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("voicewire_test.roster")
    caplog.set_level(logging.WARNING, logger="voicewire_test.roster")
    roster = CallRoster(shutdown_timeout=GUARD, max_calls=2, logger=log)
    app = app_for(roster, echo_until_closed)
    app.on_response_prepare.append(slow_prepare)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}"
    try:
        async with aiohttp.ClientSession() as http, contextlib.AsyncExitStack() as stack:

            async def connect() -> aiohttp.ClientWebSocketResponse[bool] | int:
                try:
                    client = await http.ws_connect(f"{base}/media")
                except aiohttp.WSServerHandshakeError as exc:
                    return exc.status
                stack.push_async_callback(client.close)
                return client

            outcomes = await asyncio.gather(*(connect() for _ in range(5)))
            accepted = [o for o in outcomes if not isinstance(o, int)]
            assert sorted(o for o in outcomes if isinstance(o, int)) == [503, 503, 503]
            assert len(accepted) == 2
            assert (roster.active_calls, roster.calls_started, roster.calls_rejected) == (2, 2, 3)
            assert caplog.text.count("rejected a call: 2 calls active (max_calls)") == 3
            await accepted[0].close()
            await roster.wait_for_calls(1, timeout=GUARD)
            again = await stack.enter_async_context(http.ws_connect(f"{base}/media"))
            await again.send_str("room again")
            assert (await again.receive()).data == "room again"
    finally:
        await runner.cleanup()
    assert roster.active_calls == 0


async def test_a_request_that_is_not_an_upgrade_gets_400_and_starts_no_call(
    no_task_leaks: None,
) -> None:
    roster = CallRoster(shutdown_timeout=GUARD)
    async with (
        served(roster, echo_until_closed) as base,
        aiohttp.ClientSession() as http,
        http.get(f"{base}/media") as response,
    ):
        assert response.status == 400
        assert await response.text() == "expected a WebSocket upgrade\n"
    assert (roster.calls_started, roster.calls_rejected) == (0, 1)


@pytest.mark.parametrize("max_calls", [0, -1, 1.5, True, "10"])
def test_a_bad_max_calls_is_refused(max_calls: object) -> None:
    with pytest.raises(ConfigError) as info:
        CallRoster(max_calls=max_calls)  # type: ignore[arg-type]
    assert info.value.field == "max_calls"


@pytest.mark.parametrize("timeout", [-1, float("nan"), float("inf"), True, "30"])
def test_a_bad_shutdown_timeout_is_refused(timeout: object) -> None:
    with pytest.raises(ConfigError) as info:
        CallRoster(shutdown_timeout=timeout)  # type: ignore[arg-type]
    assert info.value.field == "shutdown_timeout"


def test_the_repr_shows_counts_only() -> None:
    roster = CallRoster(secrets=(SECRET,))
    assert repr(roster) == "<CallRoster active_calls=0 started=0 draining=False>"
    assert roster.shutdown_timeout == 30.0
    assert roster.max_calls is None
