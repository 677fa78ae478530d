"""Fault matrix through the real Twilio bridge server (``create_app``) over loopback.

A simulated Twilio caller (or a hand-written slow one) talks to the aiohttp server, which
bridges each call to the real ``openai_ws`` transport and ``FakeRealtimeServer``. For each
fault: the server process stays up and ``/healthz`` answers, the affected call ends cleanly (or
goes on), a concurrent healthy call completes its turn, and the outcome is an error event on the
affected call's bridge.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from voicewire.audio.formats import MULAW_8K
from voicewire.bridge import CallBridge
from voicewire.testing import (
    CloseBeforeSessionCreated,
    CloseMidResponse,
    RefuseConnection,
    Script,
    SendGarbage,
    Stall,
    speech_like,
)
from voicewire.testing.fake_realtime import Fault
from voicewire.testing.telephony import SimulatedCaller
from voicewire_twilio.caller import TwilioDialect
from voicewire_twilio.edge import TwilioEdge

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from tests.hardening.conftest import Kit, TwilioServerEnv

    EnvFactory = Callable[..., AbstractAsyncContextManager[TwilioServerEnv]]

pytestmark = pytest.mark.usefixtures("no_task_leaks")

KEEPALIVE = {"ping_interval": 0.05, "ping_timeout": 0.1}
SPEED = 8.0


def utterance(seed: str) -> bytes:
    return speech_like(500, MULAW_8K, seed=seed)


async def healthy_turn(env: TwilioServerEnv, caller: SimulatedCaller, seed: str) -> None:
    """The caller says something and hears the echo of it (it is in what it sent)."""
    await caller.say(utterance(seed))
    await caller.wait_for(lambda: len(caller.heard) > 0, timeout=20.0, what="an answer")
    await caller.wait_idle(timeout=20.0)
    assert caller.heard in caller.sent
    assert caller.violations == ()


async def assert_healthy(env: TwilioServerEnv, active: int) -> None:
    health = await env.healthz()
    assert health["status"] == "ok"
    assert health["active_calls"] == active


# --- the model misbehaves ----------------------------------------------------------------------

ENDING: list[tuple[Fault, str]] = [
    (RefuseConnection(status=503, sessions={0}), "model_connect_failed"),
    (CloseBeforeSessionCreated(sessions={0}), "model_connect_failed"),
    (CloseBeforeSessionCreated(abrupt=True, sessions={0}), "model_connect_failed"),
    (CloseMidResponse(after_audio_deltas=2, sessions={0}), "model_disconnected"),
    (CloseMidResponse(after_audio_deltas=2, abrupt=True, sessions={0}), "model_disconnected"),
    (Stall(after_events=1, sessions={0}), "keepalive_timeout"),
]


@pytest.mark.parametrize(
    ("fault", "code"),
    ENDING,
    ids=["refused", "closed-early", "dropped-early", "closed-mid", "dropped-mid", "stalled"],
)
async def test_model_fault_ends_only_its_call(
    twilio_env: EnvFactory, kit: type[Kit], fault: Fault, code: str
) -> None:
    async with twilio_env(fake={"faults": [fault]}, model_options=KEEPALIVE) as env:
        bad = SimulatedCaller(env.ws_url, TwilioDialect(), speed=SPEED)
        good = SimulatedCaller(env.ws_url, TwilioDialect(), speed=SPEED)
        try:
            await bad.start()
            await env.fake.wait_for_session(0)
            await good.start()
            await env.fake.wait_for_session(1)
            bad.queue_audio(utterance("bad"))  # needed by the mid-response faults
            await bad.wait_closed(timeout=kit.GUARD)
            # The bridge closed the caller's stream: a normal close, not a crash.
            assert bad.close_code == 1000
            await env.waker.until(lambda: bool(env.errors(0, code)), f"error {code}")
            await assert_healthy(env, active=1)
            await healthy_turn(env, good, "good")
            assert env.errors(1) == []
        finally:
            await bad.close()
            await good.hang_up()
            await good.close()
        await env.server.wait_for_calls(0, timeout=kit.GUARD)
        await assert_healthy(env, active=0)
        for bridge in env.bridges:
            kit.assert_balanced(bridge.stats)


@pytest.mark.parametrize("kind", ["invalid_json", "binary"])
async def test_model_garbage_is_reported_and_the_call_goes_on(
    twilio_env: EnvFactory, kit: type[Kit], kind: str
) -> None:
    fault = SendGarbage(after_events=2, kind=kind, sessions={0})  # type: ignore[arg-type]
    async with twilio_env(fake={"faults": [fault]}) as env:
        async with SimulatedCaller(env.ws_url, TwilioDialect(), speed=SPEED) as caller:
            await env.waker.until(lambda: bool(env.errors(0)), "the garbage reported")
            await healthy_turn(env, caller, "after-garbage")
            await assert_healthy(env, active=1)
        codes = [e.code for e in env.errors(0)]
        assert codes == ["invalid_json" if kind == "invalid_json" else "unexpected_binary_frame"]


async def test_model_drop_with_reconnect_policy_keeps_the_call(
    twilio_env: EnvFactory, kit: type[Kit]
) -> None:
    fault = CloseMidResponse(after_audio_deltas=2, sessions={0})
    options = {"reconnect": kit.FAST_RECONNECT}
    async with twilio_env(fake={"faults": [fault]}, model_options=options) as env:
        async with SimulatedCaller(env.ws_url, TwilioDialect(), speed=SPEED) as caller:
            await caller.say(utterance("first"))
            await env.waker.until(
                lambda: any(name == "reconnected" for name, _ in env.events.get(0, [])),
                "the reconnect",
            )
            await healthy_turn(env, caller, "second")
            assert not caller.closed
        assert env.errors(0, "connection_lost")
        assert env.errors(0, "model_disconnected") == []


# --- the caller misbehaves ---------------------------------------------------------------------


async def test_caller_vanishing_without_stop_ends_its_call(
    twilio_env: EnvFactory, kit: type[Kit]
) -> None:
    async with twilio_env() as env:
        gone = SimulatedCaller(env.ws_url, TwilioDialect(), speed=SPEED)
        async with SimulatedCaller(env.ws_url, TwilioDialect(), speed=SPEED) as good:
            await gone.start()
            await env.fake.wait_for_session(1)
            gone.queue_audio(utterance("mid-sentence"))
            await gone.wait_for(lambda: gone.counts["media_sent"] >= 5, what="some audio sent")
            await gone.drop()  # TCP gone, no stop message
            await env.server.wait_for_calls(1, timeout=kit.GUARD)
            stops = [e for name, e in env.events[1] if name == "call_stop"]
            assert [s.reason for s in stops] == ["connection_closed"]
            assert (await env.fake.wait_closed(1)).closed
            await assert_healthy(env, active=1)
            await healthy_turn(env, good, "good")
        kit.assert_balanced(env.bridges[1].stats)


async def test_caller_stopping_mid_turn_is_padded_and_answered(
    twilio_env: EnvFactory, kit: type[Kit]
) -> None:
    options = {"inactivity_timeout_ms": 150.0}
    async with twilio_env(bridge_options=options) as env:
        # keepalive=False: between utterances the caller sends no frames at all.
        caller = SimulatedCaller(env.ws_url, TwilioDialect(), speed=SPEED, keepalive=False)
        async with caller:
            await caller.say(speech_like(600, MULAW_8K, seed="then-nothing"))
            await caller.wait_for(lambda: len(caller.heard) > 0, timeout=kit.GUARD)
            await caller.wait_idle(timeout=kit.GUARD)
        stats = env.bridges[0].stats
        assert stats.protocol.padding.inactivity_fills >= 1
        kit.assert_balanced(stats)


def _ws_frame(text: str) -> bytes:
    """One masked client text frame (RFC 6455)."""
    payload = text.encode()
    header = bytearray([0x81])
    size = len(payload)
    if size < 126:
        header.append(0x80 | size)
    elif size < 65536:
        header += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header += bytes([0x80 | 127]) + size.to_bytes(8, "big")
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes(header) + mask + masked


class NonReadingCaller:
    """A Twilio caller that sends, but never reads what the bridge sends (tiny receive buffer)."""

    def __init__(self, url: str) -> None:
        rest = url.removeprefix("ws://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.rpartition(":")
        self.host, self.port, self.path = host, int(port), "/" + path
        self.dialect = TwilioDialect()
        self.writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (self.host, self.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        self.writer = writer
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert b" 101 " in head.split(b"\r\n", 1)[0], head
        for frame in self.dialect.opening():
            writer.write(_ws_frame(frame))
        await writer.drain()

    async def say(self, audio: bytes) -> None:
        assert self.writer is not None
        for index, offset in enumerate(range(0, len(audio), 160)):
            self.writer.write(
                _ws_frame(self.dialect.media(audio[offset : offset + 160], 20 * index))
            )
        await self.writer.drain()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()


def _small_send_buffers(bridge: CallBridge) -> None:
    # The server side of the slow caller's connection: small buffers, so that back-pressure
    # reaches the edge in seconds instead of after megabytes of kernel buffering.
    edge = bridge.edge
    assert isinstance(edge, TwilioEdge)
    ws: Any = getattr(edge.socket, "websocket", None)
    transport = getattr(getattr(ws, "_req", None), "transport", None)
    if transport is not None:
        transport.set_write_buffer_limits(high=4096)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def test_caller_not_reading_gets_bounded_buffers_and_counted_drops(
    twilio_env: EnvFactory, kit: type[Kit]
) -> None:
    # Loopback kernel buffers absorbed some 200 kB of frames (about 15 s of audio) here even
    # with small socket buffers; most of a 60 s answer has to go through the edge's bound.
    reply_ms = 60_000
    script = Script.from_obj({"turns": [], "fallback": [{"say": "A long answer.", "ms": reply_ms}]})
    edge_options = {"outbound_buffer_ms": 200.0, "send_timeout": 0.001}
    async with twilio_env(
        fake={"mode": "script", "script": script},
        edge_options=edge_options,
        on_call=_small_send_buffers,
    ) as env:
        slow = NonReadingCaller(env.ws_url)
        try:
            await slow.start()
            await env.fake.wait_for_session(0)
            await slow.say(utterance("question") + MULAW_8K.silence(800))
            await env.fake.wait_for_server_event("response.done", session=0, timeout=kit.GUARD)
            bridge = env.bridges[0]
            edge = bridge.edge
            assert isinstance(edge, TwilioEdge)
            reply = len(kit.deltas_of(env.fake.session(0)))
            # The bridge keeps handing audio to the edge, which drops what it cannot queue:
            # nothing waits forever, and the wait is bounded by the edge's send timeout.
            await env.waker.until(
                lambda: bridge.stats.model_bytes_played == reply, "the reply through the edge"
            )
            stats, edge_stats = bridge.stats, edge.stats
            assert stats.model_bytes_pending == 0
            assert edge_stats.audio_bytes_dropped > 0
            assert edge_stats.audio_chunks_dropped > 0
            handed = stats.edge_bytes_played
            through = edge_stats.audio_bytes_sent + edge_stats.audio_bytes_dropped
            # What is neither sent nor dropped is still in the edge: at most its bound (200 ms),
            # the audio its writer took from the queue at once and is blocked on (at most the
            # bound and one 40 ms delta more) and a partial frame.
            assert through <= handed <= through + MULAW_8K.nbytes_for_ms(2 * 200 + 40) + 160
            # The edge's own events ride with the next inbound frame (Twilio sends one every
            # 20 ms); this caller writes although it never reads.
            await slow.say(MULAW_8K.silence(20))
            await env.waker.until(
                lambda: bool(env.errors(0, "outbound_overflow")), "the overflow reported"
            )
            overflow = env.errors(0, "outbound_overflow")
            assert overflow
            assert overflow[0].source == "telephony"
            # Reported once per episode, not once per dropped chunk.
            assert len(overflow) < edge_stats.audio_chunks_dropped
            await assert_healthy(env, active=1)
            async with SimulatedCaller(env.ws_url, TwilioDialect(), speed=SPEED) as good:
                # Its answer is the same long one: hearing the start of it is enough here.
                await good.say(utterance("good"))
                await good.wait_heard(MULAW_8K.nbytes_for_ms(500), timeout=kit.GUARD)
                assert good.violations == ()
        finally:
            slow.abort()
        await env.server.wait_for_calls(0, timeout=kit.GUARD)
        kit.assert_balanced(env.bridges[0].stats)


# --- both at once ------------------------------------------------------------------------------


async def test_caller_and_model_failing_together(twilio_env: EnvFactory, kit: type[Kit]) -> None:
    fault = CloseMidResponse(after_audio_deltas=1, sessions={0})
    async with twilio_env(fake={"faults": [fault]}) as env:
        bad = SimulatedCaller(env.ws_url, TwilioDialect(), speed=SPEED)
        good = SimulatedCaller(env.ws_url, TwilioDialect(), speed=SPEED)
        try:
            await bad.start()
            await env.fake.wait_for_session(0)
            await good.start()
            bad.queue_audio(utterance("both"))
            await env.fake.wait_for_server_event("response.output_audio.delta", session=0)
            await bad.drop()  # the caller's line goes as the model's connection does
            await env.server.wait_for_calls(1, timeout=kit.GUARD)
            stops = [e for name, e in env.events[0] if name == "call_stop"]
            assert len(stops) == 1
            await assert_healthy(env, active=1)
            await healthy_turn(env, good, "good")
        finally:
            await bad.close()
            await good.hang_up()
            await good.close()
        await env.server.wait_for_calls(0, timeout=kit.GUARD)
        for bridge in env.bridges:
            kit.assert_balanced(bridge.stats)
