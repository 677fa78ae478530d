"""The floor of ``bench/bridge_load.py``: a minimal Twilio <-> Realtime pass-through relay.

A bare aiohttp WebSocket server on ``/media-stream``. On ``start`` it opens a ``websockets``
connection to the model (the library and the default options voicewire's model transport uses,
permessage-deflate offered) and sends one ``session.update`` that selects mu-law both ways. Then
it forwards each caller ``media`` payload, as it arrives, as ``input_audio_buffer.append``, and
each model ``response.output_audio.delta`` as a Twilio ``media`` message, reusing the base64
text both ways. Nothing else: no validation, no marks, no re-framing, no barge-in handling.

Run by ``bridge_load.py`` as its own process; prints ``listening on http://HOST:PORT`` first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any

import websockets
from aiohttp import WSMsgType, web
from websockets.asyncio.client import ClientConnection, connect

SESSION_UPDATE = json.dumps(
    {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {
                "input": {"format": {"type": "audio/pcmu"}},
                "output": {"format": {"type": "audio/pcmu"}},
            },
        },
    }
)
MODEL_URL = web.AppKey("model_url", str)
# Loopback goes direct, whatever HTTPS_PROXY says (websockets >= 15 reads it).
NO_PROXY: dict[str, Any] = (
    {"proxy": None} if "proxy" in inspect.signature(connect).parameters else {}
)


async def _to_caller(model: ClientConnection, caller: web.WebSocketResponse, sid: str) -> None:
    prefix = '{"event":"media","streamSid":' + json.dumps(sid) + ',"media":{"payload":"'
    with contextlib.suppress(websockets.ConnectionClosed, ConnectionError):
        async for message in model:
            event = json.loads(message)
            if event.get("type") == "response.output_audio.delta":
                await caller.send_str(prefix + event["delta"] + '"}}')


async def media_stream(request: web.Request) -> web.WebSocketResponse:
    """One call: caller frames to the model, model audio to the caller."""
    caller = web.WebSocketResponse()
    await caller.prepare(request)
    model: ClientConnection | None = None
    pump: asyncio.Task[None] | None = None
    try:
        async for message in caller:
            if message.type is not WSMsgType.TEXT:
                break
            event = json.loads(message.data)
            kind = event.get("event")
            if kind == "media" and model is not None:
                payload = event["media"]["payload"]
                await model.send('{"type":"input_audio_buffer.append","audio":"' + payload + '"}')
            elif kind == "start":
                model = await connect(request.app[MODEL_URL], max_size=None, **NO_PROXY)
                await model.send(SESSION_UPDATE)
                pump = asyncio.create_task(_to_caller(model, caller, event["streamSid"]))
            elif kind == "stop":
                break
    except (websockets.ConnectionClosed, ConnectionError):
        pass
    finally:
        if model is not None:
            await model.close()
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
        await caller.close()
    return caller


async def serve(model_url: str) -> None:
    """Listen on a free loopback port until SIGTERM."""
    app = web.Application()
    app[MODEL_URL] = model_url
    app.router.add_get("/media-stream", media_stream)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(f"listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """``--realtime-url URL``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--realtime-url", required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.realtime_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
