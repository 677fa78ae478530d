"""Throughput of the OpenAI Realtime WebSocket transport, next to bare ``websockets`` in one run.

Rows, each run for about ``--seconds`` (best of a few batches):

* ``protocol.receive``: server frames through the sans-I/O protocol layer alone (JSON parse,
  validation, mapping to typed events, state), no sockets. Once with audio deltas only, once with
  the frames of a whole recorded answer (deltas, transcripts, items, response events).
* receive over loopback: a server pushes the same audio-delta frames. The floor is a bare
  ``websockets`` client doing nothing but ``recv()``; then ``OpenAIRealtimeWebSocket`` reading,
  parsing, emitting ``audio`` events to a listener; then the transport against
  ``FakeRealtimeServer`` (pace 0) answering text messages, which includes the fake's own cost.
* send over loopback: 20 ms mu-law chunks to a server that discards them. The floor is a bare
  ``websockets`` client sending prebuilt ``input_audio_buffer.append`` frames; then
  ``transport.send_audio`` (base64 and JSON per chunk, the write lock, observers off).
* a bare ``websockets`` echo round trip (one frame in flight), for the latency floor.

Run ``python bench/openai_ws.py [--seconds N]``. Nothing is asserted: it prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import version

import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve

from voicewire import ConnectOptions, SessionConfig
from voicewire.audio.formats import MULAW_8K
from voicewire.events import RawServerEvent
from voicewire.testing import FakeRealtimeServer, speech_like
from voicewire_openai_ws import OpenAIRealtimeWebSocket
from voicewire_openai_ws.protocol import RealtimeProtocol

BATCHES = 3
DELTA_MS = 40  # audio per server delta, as the fake (and the real service, roughly) sends
CHUNK_MS = 20  # audio per client append, as a telephony bridge sends
G711 = SessionConfig(input_audio_format="audio/pcmu", output_audio_format="audio/pcmu")

Row = tuple[str, str, float, str]


# --- frames --------------------------------------------------------------------------------


def audio_delta_frame(n: int) -> str:
    """One ``response.output_audio.delta`` of 40 ms mu-law, as the server sends it."""
    audio = speech_like(DELTA_MS, MULAW_8K, seed=n)
    return json.dumps(
        {
            "type": "response.output_audio.delta",
            "event_id": f"event_{n}",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(audio).decode(),
        },
        separators=(",", ":"),
    )


def append_frame() -> str:
    """One ``input_audio_buffer.append`` of 20 ms mu-law, as the transport builds it."""
    audio = speech_like(CHUNK_MS, MULAW_8K, seed="caller")
    event = {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}
    return json.dumps(event, separators=(",", ":"))


async def record_answer_frames() -> list[str]:
    """The server frames of one connection and one spoken answer, from the fake server."""
    frames: list[str] = []
    async with FakeRealtimeServer(pace=0) as server:
        transport = OpenAIRealtimeWebSocket(url=server.url, plugin_observers=False)
        done = asyncio.Event()

        def keep(event: RawServerEvent) -> None:
            frames.append(json.dumps(dict(event.message), separators=(",", ":")))

        transport.on("*", keep)
        transport.on("turn_done", lambda _event: done.set())
        await transport.connect(ConnectOptions(initial_session_config=G711))
        await transport.send_message("Please read me the whole list of opening hours, slowly.")
        await asyncio.wait_for(done.wait(), 30)
        await transport.close()
    return frames


# --- timing helpers --------------------------------------------------------------------------


def best_rate(run: Callable[[], int], seconds: float) -> float:
    """Items per second of the best batch; each batch runs ``run`` for ``seconds / BATCHES``."""
    best = 0.0
    for _ in range(BATCHES):
        done = 0
        start = time.perf_counter()
        deadline = start + seconds / BATCHES
        while True:
            done += run()
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, done / (now - start))
    return best


async def best_rate_async(run: Callable[[], Awaitable[int]], seconds: float) -> float:
    """As :func:`best_rate`, for a coroutine function."""
    best = 0.0
    for _ in range(BATCHES):
        done = 0
        start = time.perf_counter()
        deadline = start + seconds / BATCHES
        while True:
            done += await run()
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, done / (now - start))
    return best


# --- the protocol alone ----------------------------------------------------------------------


def bench_protocol(frames: list[str], seconds: float) -> tuple[float, float]:
    """Frames/s and typed events/s of ``RealtimeProtocol.receive`` over ``frames``, repeated."""
    protocol = RealtimeProtocol(model="gpt-realtime")
    protocol.initial_frames(G711)
    clock = [0.0]
    produced = [0]

    def run() -> int:
        for frame in frames:
            clock[0] += 1.0
            produced[0] += len(protocol.receive(frame, clock[0]))
        protocol.data_to_send()
        return len(frames)

    # Events per frame are fixed for a given list, so one rate gives the other.
    run()
    per_frame = produced[0] / len(frames)
    rate = best_rate(run, seconds)
    return rate, rate * per_frame


# --- loopback servers ------------------------------------------------------------------------

# Control messages of the bench servers, as client events a transport can send with send_event.
GO = '{"type":"bench.go"}'
SYNC = '{"type":"bench.sync"}'
SYNCED = '{"type":"bench.synced"}'


async def start(
    handler: Callable[[ServerConnection], Awaitable[None]], compression: str | None = "deflate"
) -> tuple[Server, str]:
    server = await serve(handler, "127.0.0.1", 0, max_size=None, compression=compression)
    port = server.sockets[0].getsockname()[1]
    return server, f"ws://127.0.0.1:{port}/v1/realtime"


def push_handler(
    session_created: str, frames: list[str]
) -> Callable[[ServerConnection], Awaitable[None]]:
    """Sends ``session.created``, then pushes ``frames`` on every ``bench.go``."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created)
        try:
            async for message in ws:
                if message == GO:
                    for frame in frames:
                        await ws.send(frame)
        except websockets.ConnectionClosed:
            pass

    return handler


def sink_handler(session_created: str) -> Callable[[ServerConnection], Awaitable[None]]:
    """Sends ``session.created``, then discards everything; answers ``bench.sync``."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created)
        try:
            async for message in ws:
                if message == SYNC:
                    await ws.send(SYNCED)
        except websockets.ConnectionClosed:
            pass

    return handler


async def echo_handler(ws: ServerConnection) -> None:
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass


class Waiter:
    """Counts the events a transport emits on one channel; wakes up at a target count."""

    def __init__(self, transport: OpenAIRealtimeWebSocket, channel: str) -> None:
        self.count = 0
        self.target = 0
        self.reached = asyncio.Event()
        transport.on(channel, self._seen)

    def _seen(self, _event: object) -> None:
        self.count += 1
        if self.count >= self.target:
            self.reached.set()

    async def wait_for(self, more: int) -> None:
        self.target = self.count + more
        self.reached.clear()
        if self.count < self.target:
            await asyncio.wait_for(self.reached.wait(), 60)


# --- receive ---------------------------------------------------------------------------------


async def bench_bare_receive(
    url: str, batch: int, seconds: float, compression: str | None = "deflate"
) -> float:
    async with connect(url, max_size=None, compression=compression) as ws:
        await ws.recv()  # session.created

        async def run() -> int:
            await ws.send(GO)
            for _ in range(batch):
                await ws.recv()
            return batch

        return await best_rate_async(run, seconds)


async def bench_transport_receive(
    url: str, batch: int, seconds: float, compression: bool = True
) -> float:
    transport = OpenAIRealtimeWebSocket(url=url, plugin_observers=False, compression=compression)
    audio = Waiter(transport, "audio")
    await transport.connect(ConnectOptions(initial_session_config=G711))

    async def run() -> int:
        waiting = asyncio.ensure_future(audio.wait_for(batch))
        await transport.send_event({"type": "bench.go"})
        await waiting
        return batch

    try:
        return await best_rate_async(run, seconds)
    finally:
        await transport.close()


async def bench_fake_receive(seconds: float) -> float:
    async with FakeRealtimeServer(pace=0) as server:
        transport = OpenAIRealtimeWebSocket(url=server.url, plugin_observers=False)
        frames = Waiter(transport, "*")
        turns = Waiter(transport, "turn_done")
        await transport.connect(ConnectOptions(initial_session_config=G711))

        async def run() -> int:
            before = frames.count
            waiting = asyncio.ensure_future(turns.wait_for(1))
            await transport.send_message("Tell me about the opening hours on every weekday.")
            await waiting
            return frames.count - before

        try:
            return await best_rate_async(run, seconds)
        finally:
            await transport.close()


# --- send ------------------------------------------------------------------------------------


async def bench_bare_send(url: str, batch: int, seconds: float) -> float:
    frame = append_frame()
    async with connect(url, max_size=None) as ws:
        await ws.recv()  # session.created

        async def run() -> int:
            for _ in range(batch):
                await ws.send(frame)
            await ws.send(SYNC)
            await ws.recv()
            return batch

        return await best_rate_async(run, seconds)


async def bench_transport_send(url: str, batch: int, seconds: float) -> float:
    chunk = speech_like(CHUNK_MS, MULAW_8K, seed="caller")
    transport = OpenAIRealtimeWebSocket(url=url, plugin_observers=False)
    synced = Waiter(transport, "*")
    await transport.connect(ConnectOptions(initial_session_config=G711))

    async def run() -> int:
        for _ in range(batch):
            await transport.send_audio(chunk)
        waiting = asyncio.ensure_future(synced.wait_for(1))
        await transport.send_event({"type": "bench.sync"})
        await waiting
        return batch

    try:
        return await best_rate_async(run, seconds)
    finally:
        await transport.close()


# --- echo ------------------------------------------------------------------------------------


async def bench_echo(url: str, seconds: float) -> float:
    frame = append_frame()
    async with connect(url, max_size=None) as ws:

        async def run() -> int:
            for _ in range(100):
                await ws.send(frame)
                await ws.recv()
            return 100

        return await best_rate_async(run, seconds)


# --- main ------------------------------------------------------------------------------------


async def run_all(seconds: float) -> list[Row]:
    rows: list[Row] = []
    deltas = [audio_delta_frame(n) for n in range(500)]
    answer = await record_answer_frames()
    session_created = next(f for f in answer if f.startswith('{"type":"session.created"'))
    response_frames = [f for f in answer if not f.startswith('{"type":"session.')]

    frames_s, events_s = bench_protocol(deltas, seconds)
    rows.append(
        ("protocol.receive: audio deltas", "frames/s", frames_s, f"{events_s:,.0f} events/s")
    )
    frames_s, events_s = bench_protocol(response_frames, seconds)
    rows.append(
        (
            f"protocol.receive: whole answers ({len(response_frames)} frames each)",
            "frames/s",
            frames_s,
            f"{events_s:,.0f} events/s",
        )
    )

    for deflate in (True, False):
        label = "deflate" if deflate else "no compression"
        push, push_url = await start(
            push_handler(session_created, deltas), "deflate" if deflate else None
        )
        try:
            floor = await bench_bare_receive(
                push_url, len(deltas), seconds, "deflate" if deflate else None
            )
            rows.append(
                (f"floor: websockets recv() of the deltas, {label}", "frames/s", floor, "1.00x")
            )
            rate = await bench_transport_receive(push_url, len(deltas), seconds, deflate)
            rows.append(
                (
                    f"transport: recv + protocol + emit, {label}",
                    "frames/s",
                    rate,
                    f"{rate / floor:.2f}x",
                )
            )
        finally:
            push.close()
            await push.wait_closed()
    rate = await bench_fake_receive(seconds)
    rows.append(("transport <- FakeRealtimeServer (pace 0)", "frames/s", rate, "fake included"))

    sink, sink_url = await start(sink_handler(session_created))
    try:
        floor = await bench_bare_send(sink_url, 500, seconds)
        rows.append(("floor: websockets send() of prebuilt appends", "frames/s", floor, "1.00x"))
        rate = await bench_transport_send(sink_url, 500, seconds)
        rows.append(
            ("transport.send_audio, 20 ms mu-law", "frames/s", rate, f"{rate / floor:.2f}x")
        )
    finally:
        sink.close()
        await sink.wait_closed()

    echo, echo_url = await start(echo_handler)
    try:
        rate = await bench_echo(echo_url, seconds)
        rows.append(
            ("floor: websockets echo, one in flight", "round trips/s", rate, f"{1e6 / rate:.0f} us")
        )
    finally:
        echo.close()
        await echo.wait_closed()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run every row and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="time budget per row (default 3)"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    rows = asyncio.run(run_all(args.seconds))
    print(
        f"OpenAI Realtime WebSocket transport, loopback, best of {BATCHES} batches, "
        f"Python {sys.version.split()[0]}, websockets {version('websockets')}"
    )
    print(f"{'path':<58} {'rate':>12} {'unit':<14} note")
    for name, unit, rate, note in rows:
        print(f"{name:<58} {rate:>12,.0f} {unit:<14} {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
