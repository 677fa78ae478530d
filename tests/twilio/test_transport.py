"""TwilioRealtimeTransportLayer: a CallBridge of a TwilioEdge and a model transport.

Includes hosting it on a web server that is not aiohttp (a ``websockets`` server) through the
three-method ``MediaSocket`` adapter protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from voicewire.audio.formats import MULAW_8K, PCM16_24K
from voicewire.bridge.call import CallBridge
from voicewire.config import SessionConfig
from voicewire.errors import ConfigError, UnknownTransportError
from voicewire.testing.fake_realtime import FakeRealtimeServer, speech_like
from voicewire.testing.telephony import SimulatedCaller
from voicewire.transport import ConnectOptions, RealtimeTransportLayer
from voicewire_openai_ws import OpenAIRealtimeWebSocket
from voicewire_twilio import MediaSocket, TwilioEdge, TwilioRealtimeTransportLayer
from voicewire_twilio.caller import TwilioDialect

pytestmark = pytest.mark.usefixtures("no_task_leaks")

GUARD = 10.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer(pace=0) as server:
        yield server


def test_it_is_a_bridge_of_a_twilio_edge_and_the_registry_model() -> None:
    bridge = TwilioRealtimeTransportLayer(
        twilio_websocket=web.WebSocketResponse(), model_options={"model": "gpt-realtime"}
    )
    assert isinstance(bridge, CallBridge)
    assert isinstance(bridge, RealtimeTransportLayer)
    assert isinstance(bridge.edge, TwilioEdge)
    assert bridge.twilio_edge is bridge.edge
    assert isinstance(bridge.model, OpenAIRealtimeWebSocket)
    assert bridge.model_audio_format == MULAW_8K
    assert not bridge.transcoding
    assert bridge.model.automatic_barge_in is False


def test_transcoding_only_when_asked() -> None:
    bridge = TwilioRealtimeTransportLayer(
        twilio_websocket=web.WebSocketResponse(), model_audio_format="audio/pcm"
    )
    assert bridge.transcoding
    assert bridge.model_audio_format == PCM16_24K


def test_options_are_checked() -> None:
    model = OpenAIRealtimeWebSocket()
    with pytest.raises(ConfigError, match="model_options"):
        TwilioRealtimeTransportLayer(
            twilio_websocket=web.WebSocketResponse(),
            model_transport=model,
            model_options={"model": "x"},
        )
    with pytest.raises(UnknownTransportError):
        TwilioRealtimeTransportLayer(
            twilio_websocket=web.WebSocketResponse(), model_transport="no_such_model"
        )
    with pytest.raises(ConfigError):
        TwilioRealtimeTransportLayer(
            twilio_websocket=web.WebSocketResponse(), model_audio_format="audio/flac"
        )
    with pytest.raises(TypeError, match="MediaSocket"):
        TwilioRealtimeTransportLayer(twilio_websocket=object())


async def test_in_an_applications_own_aiohttp_handler(fake: FakeRealtimeServer) -> None:
    bridges: list[TwilioRealtimeTransportLayer] = []
    finished = asyncio.Event()

    async def media_stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        bridge = TwilioRealtimeTransportLayer(
            twilio_websocket=ws, model_transport=OpenAIRealtimeWebSocket(url=fake.url)
        )
        bridges.append(bridge)
        # The application asks for PCM output; the bridge forces mu-law (pass-through).
        config = SessionConfig(instructions="Be brief.", output_audio_format="audio/pcm")
        await bridge.run(ConnectOptions(api_key="sk-test", initial_session_config=config))
        finished.set()
        return ws

    app = web.Application()
    app.router.add_get("/media-stream", media_stream)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"ws://{host}:{port}/media-stream"
        async with SimulatedCaller(url, TwilioDialect(), speed=4.0) as caller:
            await caller.say(speech_like(600, MULAW_8K))
            await fake.wait_for_server_event("response.done", session=0, timeout=GUARD)
            await caller.wait_for(lambda: len(caller.heard) > 0, timeout=GUARD)
            session = fake.session(0).session
            assert session is not None
            assert session["audio"]["output"]["format"] == {"type": "audio/pcmu"}
            assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
            assert session["instructions"] == "Be brief."
            await caller.hang_up()
        await fake.wait_closed(0, timeout=GUARD)
        await asyncio.wait_for(finished.wait(), GUARD)
        assert bridges[0].status == "disconnected"
    finally:
        await runner.cleanup()


class WebsocketsMediaSocket:
    """The MediaSocket adapter for a ``websockets`` server connection (as in the guide)."""

    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection

    async def receive_frame(self) -> str | bytes | None:
        try:
            return await self._connection.recv()
        except ConnectionClosed:
            return None

    async def send_text(self, text: str) -> None:
        await self._connection.send(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._connection.close(code, reason)


async def test_hosted_on_a_websockets_server_through_the_adapter(
    fake: FakeRealtimeServer,
) -> None:
    done: list[TwilioRealtimeTransportLayer] = []
    finished = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        socket = WebsocketsMediaSocket(connection)
        assert isinstance(socket, MediaSocket)
        bridge = TwilioRealtimeTransportLayer(
            twilio_websocket=socket, model_options={"url": fake.url, "api_key": "sk-test"}
        )
        await bridge.run()
        done.append(bridge)
        finished.set()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        url = f"ws://127.0.0.1:{port}/media-stream"
        async with SimulatedCaller(url, TwilioDialect(), speed=4.0) as caller:
            await caller.say(speech_like(600, MULAW_8K, seed="adapter"))
            await fake.wait_for_server_event("response.done", session=0, timeout=GUARD)
            await caller.wait_for(lambda: len(caller.heard) > 0, timeout=GUARD)
            await caller.wait_idle(timeout=GUARD)
            assert caller.heard in caller.sent
            await caller.hang_up()
        await fake.wait_closed(0, timeout=GUARD)
        await asyncio.wait_for(finished.wait(), GUARD)
    assert done[0].status == "disconnected"
    assert caller.violations == ()
