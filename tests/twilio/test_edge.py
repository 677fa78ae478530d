"""TwilioEdge over a real aiohttp server and a real aiohttp client (loopback, port 0).

The client plays Twilio by hand (with ``TwilioDialect`` to build and check frames), so each test
controls exactly what arrives when. Tests wait on events; timeouts are hang guards only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from voicewire.audio.formats import MULAW_8K
from voicewire.bridge.edge import (
    CallerAudio,
    CallStarted,
    CallStopped,
    Dtmf,
    EdgeError,
    EdgeEvent,
    PlaybackAcknowledged,
    RawEdgeMessage,
    TelephonyEdge,
)
from voicewire.errors import ConfigError, TransportStateError
from voicewire.testing.telephony import OutboundAudio, OutboundClear, OutboundMark
from voicewire_twilio.caller import TwilioDialect
from voicewire_twilio.edge import TwilioEdge
from voicewire_twilio.events import TwilioMessageEvent
from voicewire_twilio.protocol import CALL_TOKEN_PARAMETER, CallTokens
from voicewire_twilio.websocket import AiohttpMediaSocket, MessageRateLimit

pytestmark = pytest.mark.usefixtures("no_task_leaks")

GUARD = 10.0


class Recorder:
    """Consumes one edge's events inside the server's request handler."""

    def __init__(self, edge: TwilioEdge) -> None:
        self.edge = edge
        self.events: list[EdgeEvent] = []
        self.changed = asyncio.Event()
        self.done = asyncio.Event()

    async def run(self) -> None:
        try:
            async for event in self.edge.events():
                self.events.append(event)
                self.changed.set()
        finally:
            self.done.set()
            self.changed.set()

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait(self, predicate: Callable[[], bool], what: str = "condition") -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(loop(), GUARD)
        except asyncio.TimeoutError:
            raise AssertionError(f"{what}; events: {self.events[-10:]}") from None

    async def wait_count(self, kind: type[Any], count: int = 1) -> list[Any]:
        await self.wait(lambda: len(self.of(kind)) >= count, f"{count} x {kind.__name__}")
        return self.of(kind)


class Harness:
    def __init__(
        self,
        *,
        edge_options: dict[str, Any] | None = None,
        max_msg_size: int = 4 * 1024 * 1024,
        rate_limit: MessageRateLimit | None = None,
        small_buffers: bool = False,
    ) -> None:
        self.edge_options = edge_options or {}
        self.max_msg_size = max_msg_size
        self.rate_limit = rate_limit
        self.small_buffers = small_buffers
        self.recorders: asyncio.Queue[Recorder] = asyncio.Queue()
        self.all: list[Recorder] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=self.max_msg_size)
        await ws.prepare(request)
        if self.small_buffers and request.transport is not None:
            request.transport.set_write_buffer_limits(high=4096)
            sock = request.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        media = AiohttpMediaSocket(ws, rate_limit=self.rate_limit)
        edge = TwilioEdge(media, **self.edge_options)
        recorder = Recorder(edge)
        self.all.append(recorder)
        self.recorders.put_nowait(recorder)
        try:
            await recorder.run()
        finally:
            await edge.close()
        return ws

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/media-stream", self.handler)
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/media-stream"

    async def next_edge(self) -> Recorder:
        return await asyncio.wait_for(self.recorders.get(), GUARD)

    async def close(self) -> None:
        for recorder in self.all:
            await recorder.edge.close()
        if self.runner is not None:
            await self.runner.cleanup()


class Twilio:
    """A hand-driven Twilio client."""

    def __init__(self, session: aiohttp.ClientSession, ws: Any) -> None:
        self.session = session
        self.ws = ws
        self.dialect = TwilioDialect(custom_parameters={"tenant": "acme"})
        self.timestamp = 0

    async def open(self) -> None:
        for frame in self.dialect.opening():
            await self.ws.send_str(frame)

    async def media(self, audio: bytes) -> None:
        await self.ws.send_str(self.dialect.media(audio, self.timestamp))
        self.timestamp += 20

    async def receive(self) -> Any:
        msg = await asyncio.wait_for(self.ws.receive(), GUARD)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        return self.dialect.decode(msg.data)

    async def receive_until(self, count: int) -> list[Any]:
        return [await self.receive() for _ in range(count)]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    await h.start()
    yield h
    await h.close()


@contextlib.asynccontextmanager
async def twilio_client(harness: Harness, *, open_stream: bool = True) -> AsyncIterator[Twilio]:
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(harness.url, max_msg_size=0)
        client = Twilio(session, ws)
        if open_stream:
            await client.open()
        try:
            yield client
        finally:
            await ws.close()


def audio(n: int, start: int = 0) -> bytes:
    return bytes((start + i) % 251 for i in range(n))


# ---------------------------------------------------------------------------------------------
# inbound
# ---------------------------------------------------------------------------------------------


async def test_start_yields_raw_then_call_started(harness: Harness) -> None:
    async with twilio_client(harness) as client:
        rec = await harness.next_edge()
        (started,) = await rec.wait_count(CallStarted)
        assert isinstance(rec.edge, TelephonyEdge)
        assert started.call_id == client.dialect.call_sid
        assert started.stream_id == client.dialect.stream_sid
        assert started.audio_format == MULAW_8K
        assert dict(started.custom_parameters) == {"tenant": "acme"}
        raws = rec.of(RawEdgeMessage)
        assert [r.event.message["event"] for r in raws] == ["connected", "start"]
        assert all(isinstance(r.event, TwilioMessageEvent) for r in raws)
        assert raws[0].event.type == "twilio_message"
        assert TwilioMessageEvent.channel == "*"
        # The raw event comes right before its typed event.
        index = rec.events.index(started)
        assert isinstance(rec.events[index - 1], RawEdgeMessage)
        caps = rec.edge.capabilities
        assert caps.acknowledgements is True
        assert caps.audio_format == MULAW_8K
        assert caps.provider == "twilio"
        assert caps.checks_call_start is False  # no account or token to check
        assert rec.edge.call_sid == client.dialect.call_sid
        assert "acme" not in repr(raws[1].event)  # parameter values stay out of reprs


async def test_caller_audio_dtmf_and_stop(harness: Harness) -> None:
    async with twilio_client(harness) as client:
        rec = await harness.next_edge()
        await client.media(audio(160))
        await client.media(audio(160, 7))
        await client.ws.send_str(client.dialect.dtmf("5"))
        await client.ws.send_str(client.dialect.stop())
        await rec.wait_count(CallStopped)
    await rec.wait(rec.done.is_set, "end of events")
    chunks = rec.of(CallerAudio)
    assert [c.data for c in chunks] == [audio(160), audio(160, 7)]
    assert [c.timestamp_ms for c in chunks] == [0, 20]
    assert rec.of(Dtmf) == [Dtmf(digit="5")]
    stops = rec.of(CallStopped)
    assert stops == [CallStopped(reason="stop")]
    assert rec.edge.stats.media_received == 2
    assert rec.edge.stats.audio_bytes_received == 320
    assert "bytes>" in repr(chunks[0])  # audio never in a repr


async def test_raw_messages_only_while_wanted(harness: Harness) -> None:
    async with twilio_client(harness) as client:
        rec = await harness.next_edge()
        assert rec.edge.raw_messages_wanted is None  # the default: every frame's raw message
        await rec.wait_count(CallStarted)
        wanted = False
        rec.edge.raw_messages_wanted = lambda: wanted
        await client.media(audio(160))
        await client.ws.send_str(client.dialect.dtmf("7"))
        await rec.wait_count(Dtmf)
        wanted = True
        await client.media(audio(160, 1))
        await rec.wait_count(CallerAudio, 2)
    raws = [r.event.message["event"] for r in rec.of(RawEdgeMessage)]
    assert raws == ["connected", "start", "media"]
    # Typed events come either way, and audio is the same with or without its raw message.
    assert [c.data for c in rec.of(CallerAudio)] == [audio(160), audio(160, 1)]
    assert rec.of(Dtmf) == [Dtmf(digit="7")]


async def test_connection_loss_yields_one_call_stopped(harness: Harness) -> None:
    async with twilio_client(harness):
        rec = await harness.next_edge()
        await rec.wait_count(CallStarted)
    await rec.wait(rec.done.is_set, "end of events")
    assert rec.of(CallStopped) == [CallStopped(reason="connection_closed")]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ('{"event":"bogus","streamSid":"x"}', "unknown_event"),
        ("[1,2]", "not_an_object"),
    ],
)
async def test_bad_frames_yield_errors_and_the_call_goes_on(
    harness: Harness, frame: str, code: str
) -> None:
    async with twilio_client(harness) as client:
        rec = await harness.next_edge()
        await rec.wait_count(CallStarted)
        await client.ws.send_str(frame)
        await client.media(audio(160))
        await rec.wait_count(CallerAudio)
    errors = rec.of(EdgeError)
    assert [e.code for e in errors] == [code]
    assert rec.of(CallerAudio)[0].data == audio(160)


async def test_bad_base64_binary_wrong_sid_and_early_media(harness: Harness) -> None:
    async with twilio_client(harness, open_stream=False) as client:
        rec = await harness.next_edge()
        await client.ws.send_str(client.dialect.media(audio(160), 0))  # before start
        await client.open()
        await rec.wait_count(CallStarted)
        bad = json.loads(client.dialect.media(audio(160), 20))
        bad["media"]["payload"] = "not*base64"
        await client.ws.send_str(json.dumps(bad))
        await client.ws.send_bytes(b"\x00\x01binary")
        other = json.loads(client.dialect.media(audio(160), 40))
        other["streamSid"] = "MZ" + "0" * 32
        await client.ws.send_str(json.dumps(other))
        await client.ws.send_str(client.dialect.mark_played("vw:99:1"))
        await client.ws.send_str(client.dialect.mark_played("someone-else"))
        await client.media(audio(160, 3))
        await rec.wait_count(CallerAudio)
        await rec.wait_count(EdgeError, 6)
    codes = [e.code for e in rec.of(EdgeError)]
    assert codes == [
        "not_started",
        "invalid_base64",
        "binary_frame",
        "stream_sid_mismatch",
        "unknown_mark",
        "unknown_mark",
    ]
    assert rec.of(CallerAudio)[0].data == audio(160, 3)
    assert rec.edge.stats.unknown_marks == 2
    for error in rec.of(EdgeError):
        assert "binary" not in error.message or "bytes" in error.message


async def test_media_of_another_track_is_refused_and_the_call_goes_on(harness: Harness) -> None:
    async with twilio_client(harness) as client:
        rec = await harness.next_edge()
        await rec.wait_count(CallStarted)
        echo = json.loads(client.dialect.media(audio(160), 0))
        echo["media"]["track"] = "outbound"  # a unidirectional stream's other track
        await client.ws.send_str(json.dumps(echo))
        await client.media(audio(160, 7))
        await rec.wait_count(CallerAudio)
    assert [e.code for e in rec.of(EdgeError)] == ["unexpected_track"]
    assert [a.data for a in rec.of(CallerAudio)] == [audio(160, 7)]


class _BrokenSocket:
    """A media socket adapter with a bug: its third frame raises something it should not."""

    def __init__(self, frames: list[str]) -> None:
        self._frames = frames
        self.closed_with: tuple[int, str] | None = None

    async def receive_frame(self) -> str | bytes | None:
        if not self._frames:
            raise RuntimeError("adapter bug: internal buffer state lost")
        return self._frames.pop(0)

    async def send_text(self, text: str) -> None:
        del text

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = (code, reason)


async def test_a_broken_socket_adapter_ends_the_stream_with_an_error() -> None:
    dialect = TwilioDialect()
    media = _BrokenSocket([*dialect.opening(), dialect.media(audio(160), 0)])
    edge = TwilioEdge(media)
    rec = Recorder(edge)
    await asyncio.wait_for(rec.run(), GUARD)  # the stream ends instead of hanging
    await edge.close()
    assert [type(e).__name__ for e in rec.events if not isinstance(e, RawEdgeMessage)] == [
        "CallStarted",
        "CallerAudio",
        "EdgeError",
        "CallStopped",
    ]
    (error,) = rec.of(EdgeError)
    assert error.code == "connection_error"
    assert "RuntimeError" in error.message
    assert "buffer state" not in error.message  # the adapter's text is not the caller's
    assert media.closed_with is not None


async def test_oversized_frame_within_the_socket_limit_is_refused_by_the_parser() -> None:
    h = Harness(edge_options={"max_message_bytes": 2048})
    await h.start()
    try:
        async with twilio_client(h) as client:
            rec = await h.next_edge()
            await client.ws.send_str('{"event":"media","pad":"' + "x" * 4096 + '"}')
            await client.media(audio(160))
            await rec.wait_count(CallerAudio)
        assert [e.code for e in rec.of(EdgeError)] == ["message_too_large"]
    finally:
        await h.close()


async def test_a_start_of_another_account_ends_the_call_before_anything_else() -> None:
    h = Harness(edge_options={"account_sid": "AC" + "1" * 32})
    await h.start()
    try:
        async with twilio_client(h) as client:  # the client's account is a random one
            rec = await h.next_edge()
            await rec.wait_count(CallStopped)
            # No second chance on the same connection, with our own account this time.
            other = TwilioDialect(account_sid="AC" + "1" * 32)
            await client.ws.send_str(other.opening()[-1])
            await client.media(audio(160))
            await rec.wait(lambda: len(rec.of(EdgeError)) >= 3, "three errors")
        assert rec.of(CallStarted) == []
        assert rec.of(CallerAudio) == []
        assert rec.of(CallStopped) == [CallStopped(reason="account_mismatch")]
        assert [e.code for e in rec.of(EdgeError)] == [
            "account_mismatch",
            "account_mismatch",
            "not_started",
        ]
        assert client.dialect.account_sid not in repr(rec.events)  # the peer's text stays out
        assert rec.edge.stream_sid is None
    finally:
        await h.close()


async def test_a_start_of_the_expected_account_starts_the_call() -> None:
    sid = "AC" + "2" * 32
    h = Harness(edge_options={"account_sid": sid})
    await h.start()
    try:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(h.url)
            client = Twilio(session, ws)
            client.dialect = TwilioDialect(account_sid=sid)
            await client.open()
            rec = await h.next_edge()
            await client.media(audio(160))
            await rec.wait_count(CallerAudio)
            await ws.close()
        assert len(rec.of(CallStarted)) == 1
        assert rec.edge.account_sid == sid
        assert rec.edge.capabilities.checks_call_start  # a bridge connects after 'start'
        assert rec.of(EdgeError) == []
    finally:
        await h.close()


async def started_with(h: Harness, dialect: TwilioDialect) -> Recorder:
    """Open a call with ``dialect``'s ``start``, send one media frame, hang up; the recorder."""
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(h.url)
        client = Twilio(session, ws)
        client.dialect = dialect
        await client.open()
        rec = await h.next_edge()
        await client.media(audio(160))
        await rec.wait(lambda: bool(rec.of(CallerAudio) or rec.of(CallStopped)), "audio or stop")
        await ws.close()
    return rec


async def test_a_valid_call_token_starts_the_call_and_is_taken_out_of_the_parameters() -> None:
    tokens = CallTokens("auth-token-for-the-edge")
    call_sid, parameters = "CA" + "3" * 32, {"From": "+15550001111"}
    token = tokens.mint(call_sid, parameters, time.time())
    h = Harness(edge_options={"call_tokens": tokens})
    await h.start()
    try:
        dialect = TwilioDialect(
            call_sid=call_sid, custom_parameters={**parameters, CALL_TOKEN_PARAMETER: token}
        )
        rec = await started_with(h, dialect)
        (started,) = rec.of(CallStarted)
        assert started.custom_parameters == parameters
        assert rec.edge.custom_parameters == parameters
        assert len(rec.of(CallerAudio)) == 1
        assert rec.of(EdgeError) == []
        # The same token on a second connection: a replay of that start.
        replay = await started_with(h, dialect)
        assert replay.of(CallStarted) == []
        assert replay.of(CallerAudio) == []
        assert replay.of(CallStopped) == [CallStopped(reason="call_token_refused")]
        assert [e.message for e in replay.of(EdgeError)] == [
            "'start' without a valid call token refused (reused)",
            "'media' before 'start' ignored",
        ]
    finally:
        await h.close()


@pytest.mark.parametrize(
    ("parameters", "verdict"),
    [
        ({}, "missing"),
        ({CALL_TOKEN_PARAMETER: "v1.1." + "A" * 43}, "forged"),
        ({CALL_TOKEN_PARAMETER: "not a token"}, "malformed"),
    ],
)
async def test_a_start_without_a_valid_call_token_ends_the_call_before_any_audio(
    parameters: dict[str, str], verdict: str
) -> None:
    h = Harness(edge_options={"call_tokens": CallTokens("auth-token-for-the-edge")})
    await h.start()
    try:
        rec = await started_with(h, TwilioDialect(custom_parameters=parameters))
        assert rec.of(CallStarted) == []
        assert rec.of(CallerAudio) == []
        assert rec.of(CallStopped) == [CallStopped(reason="call_token_refused")]
        assert [e.code for e in rec.of(EdgeError)][:1] == ["call_token_refused"]
        assert verdict in rec.of(EdgeError)[0].message
        assert rec.edge.stream_sid is None
    finally:
        await h.close()


async def test_frame_above_the_socket_limit_closes_with_1009() -> None:
    h = Harness(max_msg_size=64 * 1024)
    await h.start()
    try:
        async with twilio_client(h) as client:
            rec = await h.next_edge()
            await rec.wait_count(CallStarted)
            await client.ws.send_str("x" * (1024 * 1024))
            msg = await asyncio.wait_for(client.ws.receive(), GUARD)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert client.ws.close_code == 1009
            await rec.wait(rec.done.is_set, "end of events")
        assert [e.code for e in rec.of(EdgeError)] == ["message_too_large"]
        assert rec.of(CallStopped) == [CallStopped(reason="connection_closed")]
    finally:
        await h.close()


async def test_rate_limit_closes_with_1008() -> None:
    h = Harness(rate_limit=MessageRateLimit(rate=0.001, burst=5))
    await h.start()
    try:
        async with twilio_client(h) as client:  # connected + start: 2 of the 5
            rec = await h.next_edge()
            for _ in range(10):
                with contextlib.suppress(ConnectionResetError):
                    await client.media(audio(160))
            msg = await asyncio.wait_for(client.ws.receive(), GUARD)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert client.ws.close_code == 1008
            await rec.wait(rec.done.is_set, "end of events")
        assert len(rec.of(CallerAudio)) == 3
        assert [e.code for e in rec.of(EdgeError)] == ["rate_limited"]
    finally:
        await h.close()


def test_rate_limit_refills_over_time() -> None:
    limit = MessageRateLimit(rate=10, burst=2)
    assert [limit.allow(0.0) for _ in range(3)] == [True, True, False]
    assert limit.allow(0.1) is True
    assert limit.allow(0.1) is False
    with pytest.raises(ConfigError):
        MessageRateLimit(rate=0, burst=1)
    with pytest.raises(ConfigError):
        MessageRateLimit(rate=1, burst=0.5)


# ---------------------------------------------------------------------------------------------
# outbound
# ---------------------------------------------------------------------------------------------


async def test_play_frames_audio_and_marks_map_back_to_tokens(harness: Harness) -> None:
    async with twilio_client(harness) as client:
        rec = await harness.next_edge()
        await rec.wait_count(CallStarted)
        data = audio(1000)
        await rec.edge.play(data)
        await rec.edge.acknowledge_when_played("token-1")
        received = await client.receive_until(3)
        media = [m for m in received if isinstance(m, OutboundAudio)]
        # The whole frames of a chunk in one message; the partial frame before the mark.
        assert [len(m.data) for m in media] == [960, 40]
        assert b"".join(m.data for m in media) == data
        mark = received[-1]
        assert isinstance(mark, OutboundMark)
        assert mark.name.startswith("vw:")
        await client.ws.send_str(client.dialect.mark_played(mark.name))
        (ack,) = await rec.wait_count(PlaybackAcknowledged)
        assert ack.token == "token-1"
        stats = rec.edge.stats
        assert (stats.media_sent, stats.audio_bytes_sent, stats.marks_sent) == (2, 1000, 1)
        assert stats.marks_played == 1


async def test_play_nowait_sends_what_play_then_acknowledge_send(harness: Harness) -> None:
    async with twilio_client(harness) as client:
        rec = await harness.next_edge()
        await rec.wait_count(CallStarted)
        data = audio(1000)
        assert rec.edge.play_nowait(data, "token-1")
        assert rec.edge.play_nowait(b"", "token-2")  # a token alone: a mark alone
        received = await client.receive_until(4)
        assert [type(m).__name__ for m in received] == [
            "OutboundAudio",
            "OutboundAudio",
            "OutboundMark",
            "OutboundMark",
        ]
        assert [len(m.data) for m in received[:2]] == [960, 40]
        assert b"".join(m.data for m in received[:2]) == data
        for mark in received[2:]:
            await client.ws.send_str(client.dialect.mark_played(mark.name))
        acks = await rec.wait_count(PlaybackAcknowledged, 2)
        assert [a.token for a in acks] == ["token-1", "token-2"]
        with pytest.raises(TypeError):
            rec.edge.play_nowait(data, 7)  # type: ignore[arg-type]


async def test_play_nowait_takes_nothing_when_the_queue_has_no_room() -> None:
    h = Harness(edge_options={"outbound_buffer_ms": 100})  # 800 bytes of mu-law
    await h.start()
    try:
        async with twilio_client(h, open_stream=False) as client:
            rec = await h.next_edge()
            # Before 'start' nothing is written, so the queue holds what it took.
            first, second = audio(800), audio(160, start=7)
            assert rec.edge.play_nowait(first, "t1")
            assert not rec.edge.play_nowait(second, "t2")
            await client.open()
            await rec.wait_count(CallStarted)
            received = await client.receive_until(2)
            assert isinstance(received[0], OutboundAudio)
            assert received[0].data == first
            assert isinstance(received[1], OutboundMark)
            # Nothing of the refused call went out, and nothing was counted as dropped.
            await rec.edge.acknowledge_when_played("probe")
            (probe,) = await client.receive_until(1)
            assert isinstance(probe, OutboundMark)
            stats = rec.edge.stats
            assert (stats.audio_bytes_sent, stats.marks_sent) == (800, 2)
            assert stats.audio_chunks_dropped == 0
    finally:
        await h.close()


async def test_a_play_cancelled_as_room_appears_queues_nothing() -> None:
    """A barge-in abandons a waiting play in the same turn of the loop as a frame leaves.

    Before Python 3.12, ``asyncio.wait_for`` returned normally in that case and dropped the
    cancellation, so the audio went into the queue behind the clear.
    """
    h = Harness(edge_options={"outbound_buffer_ms": 100})  # 800 bytes of mu-law
    await h.start()
    try:
        async with twilio_client(h, open_stream=False) as client:
            rec = await h.next_edge()
            first = audio(800)
            assert rec.edge.play_nowait(first, None)  # the queue is full: 'start' not yet seen
            waiting = asyncio.create_task(rec.edge.play(audio(160, start=7)))
            await asyncio.sleep(0.05)
            assert not waiting.done()
            rec.edge._space.set()  # what the writer does when a frame leaves ...
            waiting.cancel()  # ... and the bridge's barge-in, in the same turn
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await client.open()
            await rec.wait_count(CallStarted)
            await rec.edge.acknowledge_when_played("probe")
            received = await client.receive_until(2)
            assert [type(m).__name__ for m in received] == ["OutboundAudio", "OutboundMark"]
            assert isinstance(received[0], OutboundAudio)
            assert received[0].data == first
            assert rec.edge.stats.audio_bytes_sent == 800
    finally:
        await h.close()


async def test_mark_waits_for_the_frame_that_completes_its_audio(harness: Harness) -> None:
    async with twilio_client(harness, open_stream=False) as client:
        rec = await harness.next_edge()
        # Queued before 'start': the writer finds all three at once.
        await rec.edge.play(audio(100))
        await rec.edge.acknowledge_when_played("a")
        await rec.edge.play(audio(100, 100))
        await rec.edge.acknowledge_when_played("b")
        await client.open()
        received = await client.receive_until(4)
    kinds = [
        (type(m).__name__, len(m.data) if isinstance(m, OutboundAudio) else None) for m in received
    ]
    assert kinds == [
        ("OutboundAudio", 160),
        ("OutboundMark", None),
        ("OutboundAudio", 40),
        ("OutboundMark", None),
    ]


async def test_pad_final_frame_option() -> None:
    h = Harness(edge_options={"pad_final_frame": True})
    await h.start()
    try:
        async with twilio_client(h) as client:
            rec = await h.next_edge()
            await rec.wait_count(CallStarted)
            await rec.edge.play(audio(100))
            (media,) = await client.receive_until(1)
            assert media.data == audio(100) + b"\xff" * 60
    finally:
        await h.close()


async def test_clear_drops_queue_and_acknowledges_every_outstanding_token(
    harness: Harness,
) -> None:
    async with twilio_client(harness, open_stream=False) as client:
        rec = await harness.next_edge()
        # Sent before the clear: two chunks with marks (queued before start, written at start).
        await rec.edge.play(audio(320))
        await rec.edge.acknowledge_when_played("sent-1")
        await client.open()
        first = await client.receive_until(2)  # both frames in one message, then the mark
        assert isinstance(first[-1], OutboundMark)
        # Queued but never written: the writer is held up by nothing, so queue without yielding.
        rec.edge._started.clear()  # hold the writer back, as a slow socket would
        await rec.edge.play(audio(480))
        await rec.edge.acknowledge_when_played("queued-1")
        await rec.edge.clear()
        rec.edge._started.set()
        rec.edge._kick()
        clear = await client.receive()
        assert isinstance(clear, OutboundClear)
        # Twilio echoes the pending mark after a clear.
        await client.ws.send_str(client.dialect.mark_played(first[-1].name))
        acks = await rec.wait_count(PlaybackAcknowledged, 2)
        assert sorted(a.token for a in acks) == ["queued-1", "sent-1"]
        stats = rec.edge.stats
        assert stats.clears == 1
        assert stats.marks_cleared == 2
        assert stats.marks_played == 0
        assert stats.audio_bytes_cleared == 480
        # After the clear, audio and marks flow again in a new generation.
        await rec.edge.play(audio(160))
        await rec.edge.acknowledge_when_played("after")
        media, mark = await client.receive_until(2)
        assert isinstance(media, OutboundAudio)
        assert isinstance(mark, OutboundMark)
        assert mark.name != first[-1].name
        await client.ws.send_str(client.dialect.mark_played(mark.name))
        acks = await rec.wait_count(PlaybackAcknowledged, 3)
        assert acks[-1].token == "after"
        assert rec.edge.stats.marks_played == 1


async def test_slow_reader_gets_back_pressure_then_counted_drops() -> None:
    h = Harness(edge_options={"outbound_buffer_ms": 100, "send_timeout": 0.05}, small_buffers=True)
    await h.start()
    try:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(h.url, max_msg_size=0)
            transport: Any = ws._response.connection.transport  # type: ignore[union-attr]
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client = Twilio(session, ws)
            await client.open()
            rec = await h.next_edge()
            await rec.wait_count(CallStarted)
            # The client never reads: the socket fills, then the edge's queue, then drops.
            chunk = audio(8000)
            for _ in range(400):
                await rec.edge.play(chunk)
                if rec.edge.stats.audio_chunks_dropped >= 3:
                    break
            stats = rec.edge.stats
            assert stats.audio_chunks_dropped >= 3
            assert stats.audio_bytes_dropped == 8000 * stats.audio_chunks_dropped
            # The edge's own events ride with the next inbound frame (Twilio sends one every
            # 20 ms); this caller writes although it never reads.
            await client.media(audio(160))
            await rec.wait_count(EdgeError)
            overflow = [e for e in rec.of(EdgeError) if e.code == "outbound_overflow"]
            assert len(overflow) == 1  # one report per episode, not one per chunk
            # A caller that never reads never completes a closing handshake: drop the line.
            transport.abort()
            await rec.wait(rec.done.is_set, "end of events")
    finally:
        await h.close()


async def test_commands_after_the_stream_ended_are_counted_not_sent(harness: Harness) -> None:
    async with twilio_client(harness):
        rec = await harness.next_edge()
        await rec.wait_count(CallStarted)
    await rec.wait(rec.done.is_set, "end of events")
    await rec.edge.play(audio(160))
    await rec.edge.acknowledge_when_played("late")
    assert rec.edge.play_nowait(audio(80), "later")  # taken, as play() returns: and counted
    await rec.edge.clear()
    assert rec.edge.stats.audio_bytes_after_close == 240
    assert rec.edge.stats.marks_sent == 0


async def test_events_iterate_once_and_close_is_idempotent(harness: Harness) -> None:
    async with twilio_client(harness):
        rec = await harness.next_edge()
        with pytest.raises(TransportStateError):
            rec.edge.events()
        await rec.edge.close()
        await rec.edge.close()
        await rec.wait(rec.done.is_set, "end of events")
        assert rec.edge.closed


def test_options_are_checked() -> None:
    with pytest.raises(TypeError, match="MediaSocket"):
        TwilioEdge(object())
    ws = web.WebSocketResponse()
    with pytest.raises(ConfigError, match="outbound_buffer_ms"):
        TwilioEdge(ws, outbound_buffer_ms=0)
    with pytest.raises(ConfigError, match="send_timeout"):
        TwilioEdge(ws, send_timeout=float("nan"))
    with pytest.raises(ConfigError, match="max_message_bytes"):
        TwilioEdge(ws, max_message_bytes=0)
    with pytest.raises(ConfigError, match="account_sid"):
        TwilioEdge(ws, account_sid="")


async def test_logs_name_the_call_and_never_payloads(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="voicewire_twilio")
    async with twilio_client(harness) as client:
        rec = await harness.next_edge()
        await rec.wait_count(CallStarted)
        secret_audio = audio(160, 42)
        await client.media(secret_audio)
        bad = json.loads(client.dialect.media(secret_audio, 20))
        bad["media"]["payload"] += "!"
        await client.ws.send_str(json.dumps(bad))
        await rec.wait_count(EdgeError)
    text = caplog.text
    assert client.dialect.call_sid in text
    assert base64.b64encode(secret_audio).decode() not in text
    assert "acme" not in text  # custom parameter values
