"""``DialectEdge``: a telephony edge made of a sans-I/O dialect and a socket.

The dialect here, "Brisk", is invented for the test and differs from the examples on purpose:
caller audio arrives in JSON text frames, but the edge plays audio in binary frames, so the
binary path of the edge (``send_bytes``) is exercised too. Everything runs over loopback: a real
aiohttp route, the real ``AiohttpMediaSocket``, and voicewire's simulated caller or a plain
aiohttp client as the provider.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from voicewire.audio.formats import MULAW_8K, AudioFormat
from voicewire.bridge import (
    CallBridge,
    CallerAudio,
    CallStarted,
    CallStopped,
    Dialect,
    DialectEdge,
    Dtmf,
    EdgeCapabilities,
    EdgeError,
    EdgeEvent,
    MessageRateLimit,
    PlaybackAcknowledged,
    RawEdgeMessage,
    TelephonyEdge,
)
from voicewire.bridge.aiohttp_socket import AiohttpMediaSocket
from voicewire.errors import ProtocolError, TransportStateError
from voicewire.events import RawEdgeFrameEvent
from voicewire.testing import FakeRealtimeServer
from voicewire.testing.conformance import check_bridge_with_edge, check_telephony_edge
from voicewire.testing.telephony import (
    DialectViolation,
    OutboundAudio,
    OutboundClear,
    OutboundMark,
    OutboundMessage,
)
from voicewire_openai_ws import OpenAIRealtimeWebSocket

pytest_plugins = ["voicewire.testing.pytest_plugin"]


class BriskCall:
    """The edge's side of Brisk: a :class:`Dialect`."""

    def __init__(self) -> None:
        self.call_id: str | None = None

    @property
    def capabilities(self) -> EdgeCapabilities:
        return EdgeCapabilities(acknowledgements=True, audio_format=MULAW_8K, provider="brisk")

    def receive(self, frame: str | bytes) -> EdgeEvent | None:
        if not isinstance(frame, str):
            return EdgeError(message="Brisk sends text frames only", code="binary_frame")
        try:
            obj = json.loads(frame)
            kind = obj["t"]
            if kind == "hi":
                return None  # a greeting before the call: nothing for the bridge
            if kind == "hello":
                self.call_id = str(obj["call"])
                return CallStarted(call_id=self.call_id, stream_id=None, audio_format=MULAW_8K)
            if kind == "audio":
                return CallerAudio(data=base64.b64decode(obj["b64"]), timestamp_ms=int(obj["ts"]))
            if kind == "played":
                return PlaybackAcknowledged(token=str(obj["n"]))
            if kind == "key":
                return Dtmf(digit=str(obj["d"]))
            if kind == "bye":
                return CallStopped(reason="bye")
        except (ValueError, KeyError, TypeError) as exc:
            return EdgeError(message=f"bad Brisk frame ({type(exc).__name__})", code="bad_frame")
        return EdgeError(message="unknown Brisk frame", code="unknown")

    def play(self, data: bytes) -> Sequence[str | bytes]:
        return [data] if data else []

    def mark(self, token: str) -> str:
        return json.dumps({"t": "mark", "n": token})

    def clear(self) -> str:
        return json.dumps({"t": "clear"})


class BriskCaller:
    """The provider's side of Brisk, for the simulated caller."""

    @property
    def audio_format(self) -> AudioFormat:
        return MULAW_8K

    def upgrade_headers(self, url: str) -> Mapping[str, str]:
        return {}

    def opening(self) -> Sequence[str]:
        return [json.dumps({"t": "hi"}), json.dumps({"t": "hello", "call": "c-1"})]

    def media(self, audio: bytes, timestamp_ms: int) -> str:
        return json.dumps(
            {"t": "audio", "ts": timestamp_ms, "b64": base64.b64encode(audio).decode()}
        )

    def dtmf(self, digit: str) -> str:
        return json.dumps({"t": "key", "d": digit})

    def mark_played(self, name: str) -> str:
        return json.dumps({"t": "played", "n": name})

    def stop(self) -> str:
        return json.dumps({"t": "bye"})

    def decode(self, frame: str | bytes) -> OutboundMessage:
        if isinstance(frame, bytes):
            return OutboundAudio(data=frame)
        obj = json.loads(frame)
        if obj == {"t": "clear"}:
            return OutboundClear()
        if set(obj) == {"t", "n"} and obj["t"] == "mark":
            return OutboundMark(name=obj["n"])
        raise DialectViolation(f"not a Brisk command: {frame[:80]!r}")


def brisk_edge(ws: web.WebSocketResponse) -> DialectEdge:
    return DialectEdge(BriskCall(), AiohttpMediaSocket(ws))


def test_the_dialect_and_the_edge_satisfy_their_protocols() -> None:
    assert isinstance(BriskCall(), Dialect)
    assert isinstance(DialectEdge(BriskCall(), _TextOnlySocket(None)), TelephonyEdge)  # type: ignore[arg-type]


async def test_the_edge_conforms(no_task_leaks: None) -> None:
    await check_telephony_edge(brisk_edge, BriskCaller)


# The model comes from the registry, whose discovery warns about the suite's broken test plugin.
@pytest.mark.filterwarnings("ignore::voicewire.plugins.PluginLoadWarning")
async def test_a_bridged_call(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    await check_bridge_with_edge(brisk_edge, BriskCaller, fake_server=fake_realtime_server)


# --- the edge alone, with a plain aiohttp client as the provider ---------------------------------

Handler = Callable[[web.WebSocketResponse], Awaitable[None]]
_ENDED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


@asynccontextmanager
async def provider_link(handler: Handler) -> AsyncIterator[aiohttp.ClientWebSocketResponse[bool]]:
    """Serve ``handler`` on a loopback route; yield a client connection to it (the provider)."""
    done = asyncio.get_running_loop().create_future()

    async def route(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            await handler(ws)
            done.set_result(None)
        except BaseException as exc:
            done.set_exception(exc)
            raise
        return ws

    app = web.Application()
    app.router.add_get("/", route)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"http://{host}:{port}/") as client,
        ):
            yield client
            await asyncio.wait_for(_read_to_the_end(client, done), 5)
    finally:
        await runner.cleanup()


async def _read_to_the_end(
    client: aiohttp.ClientWebSocketResponse[bool], done: asyncio.Future[None]
) -> None:
    # Read on until the edge's side closes (aiohttp answers the close handshake), then wait for
    # the route's handler to finish.
    while (await client.receive()).type not in _ENDED:
        pass
    await done


async def drain(edge: DialectEdge) -> list[EdgeEvent]:
    """The edge's events, without the raw frame each one comes after (tested on their own)."""
    return [event async for event in edge.events() if not isinstance(event, RawEdgeMessage)]


async def test_accept_reads_to_the_start_and_events_yield_what_came_before(
    no_task_leaks: None,
) -> None:
    seen: list[EdgeEvent] = []
    started: list[CallStarted] = []

    async def handler(ws: web.WebSocketResponse) -> None:
        edge = brisk_edge(ws)
        started.append(await edge.accept())
        assert edge.call_id == "c-7"
        seen.extend(await drain(edge))
        with pytest.raises(TransportStateError):
            edge.events()
        await edge.close()
        await edge.close()  # idempotent

    async with provider_link(handler) as client:
        await client.send_str(json.dumps({"t": "hi"}))
        await client.send_str(json.dumps({"t": "key", "d": "5"}))
        await client.send_str(json.dumps({"t": "hello", "call": "c-7"}))
        await client.send_str(json.dumps({"t": "key", "d": "6"}))
        await client.send_str(json.dumps({"t": "bye"}))
    assert started == [CallStarted(call_id="c-7", stream_id=None, audio_format=MULAW_8K)]
    assert seen == [
        Dtmf(digit="5"),
        started[0],
        Dtmf(digit="6"),
        CallStopped(reason="bye"),
    ]


async def test_a_connection_that_ends_before_the_start_fails_accept(no_task_leaks: None) -> None:
    async def handler(ws: web.WebSocketResponse) -> None:
        with pytest.raises(ProtocolError, match="brisk connection ended before the call started"):
            await brisk_edge(ws).accept()

    async with provider_link(handler) as client:
        await client.close()


async def test_a_connection_that_ends_without_bye_ends_the_call(no_task_leaks: None) -> None:
    seen: list[EdgeEvent] = []

    async def handler(ws: web.WebSocketResponse) -> None:
        seen.extend(await drain(brisk_edge(ws)))

    async with provider_link(handler) as client:
        await client.send_str(json.dumps({"t": "hello", "call": "c-1"}))
        await client.send_str("{not json")
        await client.send_bytes(b"\x00\x01")
        await client.close()
    assert [type(event) for event in seen] == [CallStarted, EdgeError, EdgeError, CallStopped]
    assert seen[-1] == CallStopped(reason="connection_closed")


async def test_commands_keep_their_order_and_audio_goes_in_binary_frames(
    no_task_leaks: None,
) -> None:
    async def handler(ws: web.WebSocketResponse) -> None:
        edge = brisk_edge(ws)
        await edge.accept()
        await edge.play(b"\x01" * 160)
        await edge.acknowledge_when_played("t1")
        await edge.play(b"")  # nothing to send
        await edge.clear()
        assert [event async for event in edge.events()][-1] == CallStopped(reason="bye")
        await edge.play(b"\x02" * 160)  # after the end of the call: nothing happens
        await edge.close()

    async with provider_link(handler) as client:
        await client.send_str(json.dumps({"t": "hello", "call": "c-1"}))
        frames = [await client.receive() for _ in range(3)]
        await client.send_str(json.dumps({"t": "bye"}))
        closing = await client.receive()
    assert frames[0].type is aiohttp.WSMsgType.BINARY
    assert frames[0].data == b"\x01" * 160
    assert json.loads(frames[1].data) == {"t": "mark", "n": "t1"}
    assert json.loads(frames[2].data) == {"t": "clear"}
    assert closing.type is aiohttp.WSMsgType.CLOSE


async def test_a_frame_the_socket_refuses_is_an_error_event(no_task_leaks: None) -> None:
    seen: list[EdgeEvent] = []

    async def handler(ws: web.WebSocketResponse) -> None:
        socket = AiohttpMediaSocket(ws, rate_limit=MessageRateLimit(rate=1.0, burst=2))
        seen.extend(await drain(DialectEdge(BriskCall(), socket)))

    async with provider_link(handler) as client:
        for _ in range(3):
            await client.send_str(json.dumps({"t": "key", "d": "1"}))
        await client.receive()  # the socket closes the connection with 1008
    assert seen == [
        Dtmf(digit="1"),
        Dtmf(digit="1"),
        EdgeError(
            message="the peer exceeded the message-rate limit; closed with 1008",
            code="rate_limited",
        ),
        CallStopped(reason="connection_closed"),
    ]


class _TextOnlySocket:
    """A MediaSocket adapter without ``send_bytes``, as a web server's adapter may be."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._inner = AiohttpMediaSocket(ws)

    async def receive_frame(self) -> str | bytes | None:
        return await self._inner.receive_frame()

    async def send_text(self, text: str) -> None:
        await self._inner.send_text(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.close(code, reason)


async def test_a_binary_frame_needs_a_socket_that_sends_bytes(no_task_leaks: None) -> None:
    async def handler(ws: web.WebSocketResponse) -> None:
        edge = DialectEdge(BriskCall(), _TextOnlySocket(ws))
        with pytest.raises(TypeError, match="_TextOnlySocket has no send_bytes"):
            await edge.play(b"\x01" * 160)
        await edge.acknowledge_when_played("t1")  # text frames still go
        await edge.close()

    async with provider_link(handler) as client:
        mark = await client.receive()
        assert json.loads(mark.data) == {"t": "mark", "n": "t1"}


async def test_a_send_to_a_vanished_peer_stops_sending_quietly(no_task_leaks: None) -> None:
    async def handler(ws: web.WebSocketResponse) -> None:
        edge = brisk_edge(ws)
        await edge.accept()
        await ws.close()  # the connection is gone under the edge
        await edge.play(b"\x01" * 160)  # neither raises nor hangs
        await edge.acknowledge_when_played("t1")
        await edge.close()

    async with provider_link(handler) as client:
        await client.send_str(json.dumps({"t": "hello", "call": "c-1"}))
        await client.receive()


# --- raw frames on "*" ---------------------------------------------------------------------------


def raw(frame: str | bytes) -> RawEdgeMessage:
    return RawEdgeMessage(event=RawEdgeFrameEvent(provider="brisk", frame=frame))


async def test_every_frame_comes_raw_first_even_one_the_dialect_ignores_or_refuses(
    no_task_leaks: None,
) -> None:
    seen: list[EdgeEvent] = []
    hi, hello = json.dumps({"t": "hi"}), json.dumps({"t": "hello", "call": "c-1"})
    key, bye = json.dumps({"t": "key", "d": "5"}), json.dumps({"t": "bye"})

    async def handler(ws: web.WebSocketResponse) -> None:
        edge = brisk_edge(ws)
        assert edge.raw_messages_wanted is None  # the default: every frame's raw event
        await edge.accept()
        seen.extend([event async for event in edge.events()])
        await edge.close()

    async with provider_link(handler) as client:
        for frame in (hi, key, hello, "{not json"):
            await client.send_str(frame)
        await client.send_bytes(b"\x00\x01")
        await client.send_str(bye)
    assert seen == [
        raw(hi),  # a greeting means nothing to the bridge, but a listener of "*" sees it
        raw(key),
        Dtmf(digit="5"),
        raw(hello),
        CallStarted(call_id="c-1", stream_id=None, audio_format=MULAW_8K),
        raw("{not json"),
        EdgeError(message="bad Brisk frame (JSONDecodeError)", code="bad_frame"),
        raw(b"\x00\x01"),
        EdgeError(message="Brisk sends text frames only", code="binary_frame"),
        raw(bye),
        CallStopped(reason="bye"),
    ]


async def test_no_raw_frames_while_nobody_wants_them(no_task_leaks: None) -> None:
    seen: list[EdgeEvent] = []
    asked: list[bool] = []

    def wanted() -> bool:
        asked.append(False)
        return False

    async def handler(ws: web.WebSocketResponse) -> None:
        edge = brisk_edge(ws)
        edge.raw_messages_wanted = wanted
        seen.extend([event async for event in edge.events()])

    async with provider_link(handler) as client:
        await client.send_str(json.dumps({"t": "hello", "call": "c-1"}))
        await client.send_str(json.dumps({"t": "bye"}))
    assert [type(event) for event in seen] == [CallStarted, CallStopped]
    assert len(asked) == 2  # asked on every frame: a listener may come and go mid-call


def test_a_raw_frame_shows_its_kind_and_size_never_its_content() -> None:
    secret = json.dumps({"t": "hello", "call": "c-1", "token": "tok-SECRET"})
    text = RawEdgeFrameEvent(provider="brisk", frame=secret)
    assert "SECRET" not in repr(text)
    assert f"text frame of {len(secret)} characters" in repr(text)
    binary = RawEdgeFrameEvent(provider="brisk", frame=b"SECRET")
    assert "SECRET" not in repr(binary)
    assert "binary frame of 6 bytes" in repr(binary)
    assert RawEdgeFrameEvent.channel == "*"


async def test_a_bridge_shows_the_frames_to_a_listener_of_star(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    frames: list[RawEdgeFrameEvent] = []
    hello, bye = json.dumps({"t": "hello", "call": "c-1"}), json.dumps({"t": "bye"})
    key = json.dumps({"t": "key", "d": "7"})

    def on_raw(event: object) -> None:
        if isinstance(event, RawEdgeFrameEvent):
            frames.append(event)

    async def handler(ws: web.WebSocketResponse) -> None:
        edge = brisk_edge(ws)
        await edge.accept()  # the start's raw frame waits with it for the bridge
        model = OpenAIRealtimeWebSocket(
            url=fake_realtime_server.url, api_key="sk-test", plugin_observers=False
        )
        bridge = CallBridge(edge, model, plugin_observers=False)
        bridge.on("*", on_raw)
        await bridge.run()

    async with provider_link(handler) as client:
        await client.send_str(hello)
        await client.send_str(key)
        await client.send_str(bye)
    assert [event.frame for event in frames] == [hello, key, bye]
    assert {event.provider for event in frames} == {"brisk"}
