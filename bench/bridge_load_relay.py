"""The floor of ``bench/bridge_load.py``: a minimal Twilio <-> Realtime pass-through relay.

A bare aiohttp WebSocket server on ``/media-stream``. On ``start`` it opens a ``websockets``
connection to the model (the library and the default options voicewire's model transport uses,
permessage-deflate offered) and sends one ``session.update`` that selects mu-law both ways. Then
it forwards each caller ``media`` payload, as it arrives, as ``input_audio_buffer.append``, and
each model ``response.output_audio.delta`` as a Twilio ``media`` message, reusing the base64
text both ways. Nothing else: no validation, no marks, no re-framing, no barge-in handling.

With ``--marks`` it also sends a Twilio ``mark`` after each ``media`` message and takes the
echoes back (a set of names outstanding): the least a relay does that learns from marks how far
playback got, the second floor ``bridge_load.py --mark-floor`` measures.

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


MARKS = web.AppKey("marks", bool)


async def _to_caller(
    model: ClientConnection, caller: web.WebSocketResponse, sid: str, marks: set[str] | None
) -> None:
    prefix = '{"event":"media","streamSid":' + json.dumps(sid) + ',"media":{"payload":"'
    mark_prefix = '{"event":"mark","streamSid":' + json.dumps(sid) + ',"mark":{"name":"'
    sent = 0
    with contextlib.suppress(websockets.ConnectionClosed, ConnectionError):
        async for message in model:
            event = json.loads(message)
            if event.get("type") == "response.output_audio.delta":
                await caller.send_str(prefix + event["delta"] + '"}}')
                if marks is not None:
                    sent += 1
                    name = str(sent)
                    marks.add(name)
                    await caller.send_str(mark_prefix + name + '"}}')


async def media_stream(request: web.Request) -> web.WebSocketResponse:
    """One call: caller frames to the model, model audio to the caller."""
    caller = web.WebSocketResponse()
    await caller.prepare(request)
    model: ClientConnection | None = None
    pump: asyncio.Task[None] | None = None
    marks: set[str] | None = set() if request.app[MARKS] else None
    try:
        async for message in caller:
            if message.type is not WSMsgType.TEXT:
                break
            event = json.loads(message.data)
            kind = event.get("event")
            if kind == "media" and model is not None:
                payload = event["media"]["payload"]
                await model.send('{"type":"input_audio_buffer.append","audio":"' + payload + '"}')
            elif kind == "mark" and marks is not None:
                marks.discard(event["mark"]["name"])
            elif kind == "start":
                model = await connect(request.app[MODEL_URL], max_size=None, **NO_PROXY)
                await model.send(SESSION_UPDATE)
                pump = asyncio.create_task(_to_caller(model, caller, event["streamSid"], marks))
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


async def serve(model_url: str, *, marks: bool) -> None:
    """Listen on a free loopback port until SIGTERM."""
    app = web.Application()
    app[MODEL_URL] = model_url
    app[MARKS] = marks
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
    """``--realtime-url URL [--marks]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--realtime-url", required=True)
    parser.add_argument("--marks", action="store_true", help="a mark after each media message")
    args = parser.parse_args(argv)
    # The process set-up voicewire's CLI does (voicewire.allocator.warm_up), so that neither
    # side pays glibc's mmap per received message: the floor stays free of voicewire imports.
    block = bytearray(1 << 20)
    del block
    asyncio.run(serve(args.realtime_url, marks=args.marks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
