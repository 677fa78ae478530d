"""``voicewire serve --telephony telnyx`` in-process: the factory's runner, over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from voicewire_telnyx.app import (
    DEFAULT_MESSAGE_BURST,
    HEALTH_PATH,
    MEDIA_PATH,
    ROSTER,
    create_app,
)
from voicewire_telnyx.caller import TelnyxDialect
from voicewire_telnyx.plugin import TelnyxEdgeFactory
from voicewire_telnyx.protocol import DEFAULT_MAX_FRAME_BYTES

from voicewire.bridge.aiohttp_server import run_app
from voicewire.cli.serve import ServeSettings
from voicewire.errors import ConfigError
from voicewire.testing import FakeRealtimeServer, speech_like
from voicewire.testing.telephony import SimulatedCaller
from voicewire.transport import ConnectOptions
from voicewire_openai_ws import OpenAIRealtimeWebSocket

pytest_plugins = ["voicewire.testing.pytest_plugin"]

GUARD = 15.0


@asynccontextmanager
async def serving(
    server: FakeRealtimeServer, **settings: Any
) -> AsyncIterator[tuple[str, asyncio.Task[None]]]:
    """Run the plugin's ``voicewire_serve`` runner; yield its base URL and its task."""
    options = ServeSettings(
        port=0, realtime_url=server.url, api_key="sk-test", telephony="telnyx", **settings
    )
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(TelnyxEdgeFactory.voicewire_serve(options, ready.set_result))
    try:
        yield await asyncio.wait_for(ready, GUARD), task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_serve_bridges_an_l16_call(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    async with serving(fake_realtime_server, auth_token="stream-secret") as (base, _):
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as response:
                assert await response.json() == {
                    "status": "ok",
                    "active_calls": 0,
                    "max_calls": None,
                    "calls_started": 0,
                    "calls_rejected": 0,
                }
            async with http.get(f"{base}/media-stream") as response:
                assert response.status == 403  # no streaming auth token
            async with http.get(f"{base}/healthz") as response:
                assert (await response.json())["calls_rejected"] == 1
        url = base.replace("http://", "ws://") + "/media-stream"
        dialect = TelnyxDialect(codec="L16", auth_token="stream-secret")
        async with SimulatedCaller(url, dialect, speed=2.0) as caller:
            speech = speech_like(500, dialect.audio_format, seed="telnyx")
            await caller.say(speech[: len(speech) - len(speech) % 640])
            await fake_realtime_server.wait_for_server_event("response.done", timeout=GUARD)
            session = fake_realtime_server.session(0).session
            assert session is not None
            assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
            answer = len(fake_realtime_server.session(0).audio_sent())
            # 24 kHz from the model, 16 kHz to the caller: two thirds of the bytes, less a frame.
            await caller.wait_heard(answer * 2 // 3 - 640, timeout=GUARD)
            await caller.hang_up()
        await fake_realtime_server.wait_closed(0, timeout=GUARD)
        assert fake_realtime_server.session(0).errors() == []
        assert caller.violations == ()


async def test_a_call_past_max_calls_is_answered_503(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    async with app_served(fake_realtime_server, max_calls=1) as base:
        url = base.replace("http://", "ws://") + MEDIA_PATH
        async with (
            SimulatedCaller(url, TelnyxDialect(), speed=4.0) as caller,
            aiohttp.ClientSession() as http,
        ):
            await fake_realtime_server.wait_for_session(0, timeout=GUARD)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url)
            assert refused.value.status == 503
            async with http.get(base + HEALTH_PATH) as response:
                body = await response.json()
            assert (body["active_calls"], body["calls_rejected"]) == (1, 1)
            await caller.hang_up()
        assert caller.violations == ()


@asynccontextmanager
async def app_served(server: FakeRealtimeServer, **options: Any) -> AsyncIterator[str]:
    """``create_app`` on loopback through ``run_app``; yield its base URL (``http://...``)."""
    app = create_app(
        model_factory=lambda: OpenAIRealtimeWebSocket(plugin_observers=False),
        connect_options=ConnectOptions(url=server.url, api_key="sk-test"),
        **options,
    )
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_app(app, app[ROSTER], host="127.0.0.1", port=0, ready=ready.set_result)
    )
    try:
        yield await asyncio.wait_for(ready, GUARD)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_flood_closes_that_call_with_1008_and_a_huge_frame_with_1009(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    async with app_served(fake_realtime_server) as base, aiohttp.ClientSession() as http:
        url = base.replace("http://", "ws://") + MEDIA_PATH
        async with http.ws_connect(url) as flood:
            for _ in range(DEFAULT_MESSAGE_BURST + 50):
                await flood.send_str('{"event":"noise"}')
            await asyncio.wait_for(flood.receive(), GUARD)
            assert flood.close_code == 1008
        async with http.ws_connect(url, max_msg_size=0) as huge:
            await huge.send_str("x" * (DEFAULT_MAX_FRAME_BYTES + 1))
            await asyncio.wait_for(huge.receive(), GUARD)
            assert huge.close_code == 1009
        async with SimulatedCaller(url, TelnyxDialect(), speed=4.0) as caller:  # next call fine
            await caller.say(speech_like(400, TelnyxDialect().audio_format, seed="after"))
            await fake_realtime_server.wait_for_server_event("response.done", timeout=GUARD)
            await caller.hang_up()
        assert caller.violations == ()


@pytest.mark.parametrize("rate", [0, -1.0, float("nan"), True])
def test_a_bad_message_rate_is_refused(rate: object) -> None:
    with pytest.raises(ConfigError) as info:
        create_app(
            model_factory=lambda: OpenAIRealtimeWebSocket(plugin_observers=False),
            connect_options=ConnectOptions(),
            max_messages_per_second=rate,  # type: ignore[arg-type]
        )
    assert info.value.field == "max_messages_per_second"


async def test_serve_refuses_a_call_token_it_cannot_check(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    settings = ServeSettings(
        port=0, realtime_url=fake_realtime_server.url, auth_token="t", require_call_token=True
    )
    with pytest.raises(ConfigError) as info:
        await TelnyxEdgeFactory.voicewire_serve(settings, lambda url: None)
    assert info.value.field == "require_call_token"
