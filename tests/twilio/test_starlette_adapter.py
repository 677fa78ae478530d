"""The Twilio guide's Starlette ``MediaSocket`` adapter, run as written, under a real uvicorn.

The adapter class is read from ``docs/twilio/guide.md`` itself, so the page cannot drift from
what works: a whole call (start, speech, the model's answer with marks, hang-up) goes through a
Starlette WebSocket route served by uvicorn on loopback, to the embedded fake model.
"""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from voicewire.testing import FakeRealtimeServer, speech_like
from voicewire.testing.telephony import SimulatedCaller
from voicewire.transport import ConnectOptions
from voicewire_twilio import MediaSocket, TwilioRealtimeTransportLayer
from voicewire_twilio.caller import TwilioDialect

GUARD = 15.0
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "twilio" / "guide.md"


def documented_adapter() -> Any:
    """The ``StarletteMediaSocket`` class of the guide, defined from the page's own code."""
    match = re.search(
        r"```python\n(from starlette\.websockets import .*?\nclass StarletteMediaSocket:.*?)\n\n\n",
        GUIDE.read_text(encoding="utf-8"),
        re.S,
    )
    assert match is not None, "the guide's Starlette adapter example is gone"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), str(GUIDE), "exec"), namespace)
    return namespace["StarletteMediaSocket"]


async def test_the_guides_starlette_adapter_carries_a_whole_call(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    adapter = documented_adapter()
    ended: asyncio.Future[TwilioRealtimeTransportLayer] = asyncio.get_running_loop().create_future()

    async def media_stream(websocket: WebSocket) -> None:
        await websocket.accept()
        media = adapter(websocket)
        assert isinstance(media, MediaSocket)
        bridge = TwilioRealtimeTransportLayer(twilio_websocket=media)
        await bridge.run(ConnectOptions(api_key="sk-test", url=fake_realtime_server.url))
        ended.set_result(bridge)

    app = Starlette(routes=[WebSocketRoute("/media-stream", media_stream)])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            assert not serving.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        dialect = TwilioDialect()
        url = f"ws://127.0.0.1:{port}/media-stream"
        async with SimulatedCaller(url, dialect, speed=4.0) as caller:
            await caller.say(speech_like(600, dialect.audio_format, seed="starlette"))
            await fake_realtime_server.wait_for_server_event("response.done", timeout=GUARD)
            answer = len(fake_realtime_server.session(0).audio_sent())
            await caller.wait_heard(answer, timeout=GUARD)
            await caller.hang_up()
        bridge = await asyncio.wait_for(ended, GUARD)
        await fake_realtime_server.wait_closed(0, timeout=GUARD)
        assert caller.violations == ()
        assert fake_realtime_server.session(0).errors() == []
        assert bridge.status == "disconnected"
        assert sum(bridge.stats.model_bytes_dropped.values()) == 0
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, GUARD)
        listener.close()
