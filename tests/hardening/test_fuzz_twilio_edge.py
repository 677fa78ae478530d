"""Fuzzing the Twilio edge: any mix of frames and commands, and the edge neither raises nor lies.

``tests/twilio`` fuzzes the sans-I/O parser frame by frame. Here the whole ``TwilioEdge`` (parser,
mark naming, framing, clear handling, its reader and writer tasks) runs over an in-memory
``MediaSocket`` while hypothesis interleaves what Twilio sends (valid, mutated, garbage, binary,
echoes of real, stale, repeated and invented marks, ``stop``) with what the bridge commands
(``play``, ``acknowledge_when_played``, ``clear``), with the peer sometimes not reading
(the edge's bounded queue then drops, and counts). Whatever the order:

* nothing raises out of ``events()`` or a command, and the stream ends when the socket does;
* every frame the edge sends is one Twilio accepts (checked by the strict ``TwilioDialect``);
* exactly one ``CallStopped`` is yielded; every ``EdgeError`` carries a code and is counted;
* a token is acknowledged only if the bridge asked for it, and at most once;
* outbound audio is sent, cleared, dropped or still queued: never more than was played.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voicewire.bridge.edge import (
    CallerAudio,
    CallStarted,
    CallStopped,
    EdgeError,
    EdgeEvent,
    PlaybackAcknowledged,
    RawEdgeMessage,
)
from voicewire.testing.telephony import OutboundMark
from voicewire_twilio.caller import TwilioDialect
from voicewire_twilio.edge import TwilioEdge
from voicewire_twilio.protocol import CALL_TOKEN_PARAMETER, CallTokens

SID = "MZ" + "0" * 32


class QueueSocket:
    """A ``MediaSocket`` in memory: the test queues inbound frames; ``None`` ends the stream."""

    def __init__(self) -> None:
        self.inbound: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.sent: list[str] = []
        self.closed = False
        self.writable = asyncio.Event()  # cleared: the peer stopped reading
        self.writable.set()

    async def receive_frame(self) -> str | bytes | None:
        if self.closed:
            return None
        frame = await self.inbound.get()
        return frame

    async def send_text(self, text: str) -> None:
        await self.writable.wait()
        if self.closed:
            raise ConnectionResetError("closed")
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        del code, reason
        if not self.closed:
            self.closed = True
            self.writable.set()
            self.inbound.put_nowait(None)


CALL = "CA" + "1" * 32
ACCOUNT = "AC" + "2" * 32

START_CHECKS = ("none", "account_ok", "account_bad", "token_ok", "token_bad")
"""What the edge checks at 'start', and whether the dialect's 'start' passes."""


def _dialect(parameters: dict[str, str] | None = None) -> TwilioDialect:
    return TwilioDialect(
        stream_sid=SID, call_sid=CALL, account_sid=ACCOUNT, custom_parameters=parameters
    )


def _edge_and_dialect(check: str, socket: QueueSocket) -> tuple[TwilioEdge, TwilioDialect]:
    options: dict[str, Any] = {"outbound_buffer_ms": 400, "send_timeout": 0.01}
    parameters: dict[str, str] = {"tenant": "acme"}
    if check.startswith("account"):
        options["account_sid"] = ACCOUNT if check == "account_ok" else "AC" + "9" * 32
    elif check.startswith("token"):
        tokens = CallTokens("fuzz-auth-token")
        options["call_tokens"] = tokens
        call = CALL if check == "token_ok" else "CA" + "8" * 32
        parameters[CALL_TOKEN_PARAMETER] = tokens.mint(call, parameters, time.time())
    return TwilioEdge(socket, **options), _dialect(parameters)


def _mutate(frame: str, data: st.DataObject) -> str:
    obj = json.loads(frame)
    key = data.draw(st.sampled_from(sorted(obj)))
    choice = data.draw(st.integers(0, 2))
    if choice == 0:
        del obj[key]
    elif choice == 1:
        obj[key] = data.draw(st.none() | st.integers() | st.text(max_size=8) | st.just([]))
    elif isinstance(obj[key], dict) and obj[key]:
        inner = data.draw(st.sampled_from(sorted(obj[key])))
        obj[key][inner] = data.draw(st.none() | st.integers() | st.text(max_size=8))
    return json.dumps(obj)


operation = st.one_of(
    st.tuples(st.just("media"), st.integers(0, 400)),
    st.tuples(st.just("mutated"), st.sampled_from(["media", "mark", "dtmf", "stop", "start"])),
    st.tuples(st.just("garbage"), st.text(max_size=40) | st.binary(max_size=40)),
    st.tuples(st.just("echo"), st.integers(0, 50)),
    st.tuples(st.just("foreign_mark"), st.text(max_size=20)),
    st.tuples(st.just("dtmf"), st.sampled_from("0123456789*#")),
    st.tuples(st.just("stop"), st.just(0)),
    st.tuples(st.just("play"), st.integers(0, 900)),
    st.tuples(st.just("play"), st.integers(0, 900)),
    st.tuples(st.just("token"), st.just(0)),
    st.tuples(st.just("token"), st.just(0)),
    st.tuples(st.just("clear"), st.just(0)),
    st.tuples(st.just("stall"), st.booleans()),
)


async def _scenario(
    ops: list[tuple[str, Any]], opened: bool, check: str, data: st.DataObject
) -> None:
    socket = QueueSocket()
    edge, dialect = _edge_and_dialect(check, socket)
    accepted = check in ("none", "account_ok", "token_ok")
    events: list[EdgeEvent] = []

    async def consume() -> None:
        async for event in edge.events():
            events.append(event)

    consumer = asyncio.get_running_loop().create_task(consume())
    fed = 0
    valid_media = 0
    requested: list[str] = []
    played = 0
    stopped_by_peer = False

    def feed(frame: str | bytes) -> None:
        nonlocal fed
        fed += 1
        socket.inbound.put_nowait(frame)

    if opened:
        for frame in dialect.opening():
            feed(frame)
    for kind, arg in ops:
        if kind == "media":
            feed(dialect.media(bytes([0x55]) * arg, 20 * valid_media))
            valid_media += 1
        elif kind == "mutated":
            frames = {
                "media": dialect.media(b"\x7f" * 160, 0),
                "mark": dialect.mark_played("vw:1:1"),
                "dtmf": dialect.dtmf("5"),
                "stop": dialect.stop(),
                "start": dialect.opening()[1],
            }
            feed(_mutate(frames[arg], data))
        elif kind == "garbage":
            feed(arg)
        elif kind == "echo":
            names = [
                m.name for m in map(dialect.decode, socket.sent) if isinstance(m, OutboundMark)
            ]
            if names:
                feed(dialect.mark_played(names[arg % len(names)]))
        elif kind == "foreign_mark":
            feed(dialect.mark_played(arg or "x"))
        elif kind == "dtmf":
            feed(dialect.dtmf(arg))
        elif kind == "stop":
            feed(dialect.stop())
            stopped_by_peer = True
        elif kind == "play":
            await edge.play(bytes([0x2A]) * arg)
            played += arg
        elif kind == "stall":
            if arg:
                socket.writable.clear()
            else:
                socket.writable.set()
        elif kind == "token":
            token = f"tok-{len(requested)}"
            requested.append(token)
            await edge.acknowledge_when_played(token)
        else:
            await edge.clear()
        for _ in range(3):
            await asyncio.sleep(0)
    # The peer goes away; the stream must end by itself.
    await socket.close()
    await asyncio.wait_for(consumer, 10.0)
    await edge.close()

    # Every frame the edge sent is one Twilio accepts.
    for frame in socket.sent:
        dialect.decode(frame)
    stops = [e for e in events if isinstance(e, CallStopped)]
    assert len(stops) == 1, stops
    # The socket may close before the edge read the opening frames ('connected', 'start').
    start_read = opened and edge.stats.frames_received >= 2
    if start_read and not accepted:
        # Refused at 'start': the call ends there, and no audio of it gets through.
        assert stops[0].reason in ("account_mismatch", "call_token_refused")
        assert [e for e in events if isinstance(e, CallerAudio)] == []
    elif opened and accepted and stopped_by_peer:
        assert stops[0].reason in ("stop", "connection_closed")
    errors = [e for e in events if isinstance(e, EdgeError)]
    stats = edge.stats
    assert all(isinstance(e.code, str) and e.code for e in errors)
    assert stats.errors == len(errors)
    assert stats.frames_received <= fed
    acked = [e.token for e in events if isinstance(e, PlaybackAcknowledged)]
    assert set(acked) <= set(requested)
    assert len(acked) == len(set(acked)), "a token was acknowledged twice"
    audio = [e for e in events if isinstance(e, CallerAudio)]
    if opened and accepted:
        # Valid media frames of the stream are never lost among the garbage.
        assert len(audio) >= valid_media
        if start_read:
            started = [e for e in events if isinstance(e, CallStarted)]
            assert started[0].custom_parameters == {"tenant": "acme"}  # the token taken out
    elif not opened:
        assert audio == [] or any(kind == "mutated" for kind, _ in ops)
    assert all(isinstance(e.event, object) for e in events if isinstance(e, RawEdgeMessage))
    accounted = (
        stats.audio_bytes_sent
        + stats.audio_bytes_cleared
        + stats.audio_bytes_dropped
        + stats.audio_bytes_after_close
    )
    assert accounted <= played
    sent_audio = sum(
        len(base64.b64decode(json.loads(f)["media"]["payload"]))
        for f in socket.sent
        if json.loads(f)["event"] == "media"
    )
    assert sent_audio == stats.audio_bytes_sent


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=40), st.booleans(), st.sampled_from(START_CHECKS), st.data())
def test_edge_survives_any_interleaving(
    ops: list[tuple[str, Any]], opened: bool, check: str, data: st.DataObject
) -> None:
    asyncio.run(_scenario(ops, opened, check, data))
