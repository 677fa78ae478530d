"""The fake realtime server's fault knobs, each over a real socket and a real client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from voicewire.errors import ConfigError
from voicewire.testing.fake_realtime import (
    CloseBeforeSessionCreated,
    CloseMidResponse,
    FakeRealtimeServer,
    RefuseConnection,
    SendGarbage,
    Stall,
)

GUARD = 10.0  # seconds; a hang guard, never a timing assertion


@pytest.fixture
async def make_server() -> AsyncIterator[Any]:
    servers: list[FakeRealtimeServer] = []

    async def make(*faults: Any, **kwargs: Any) -> FakeRealtimeServer:
        server = FakeRealtimeServer(faults=faults, pace=kwargs.pop("pace", 0), **kwargs)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


async def connect(url: str) -> ClientConnection:
    return await websockets.connect(
        url, ping_interval=None, open_timeout=GUARD, close_timeout=GUARD
    )


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), GUARD))  # type: ignore[no-any-return]


async def ask_for_speech(ws: ClientConnection) -> None:
    await ws.send(
        json.dumps(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "talk to me for a while"}],
                },
            }
        )
    )
    await ws.send(json.dumps({"type": "response.create"}))


async def test_refuse_connection_only_for_the_chosen_sessions(make_server: Any) -> None:
    server = await make_server(RefuseConnection(sessions={0}))
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(server.url)
    assert info.value.response.status_code == 503
    ws = await connect(server.url)
    assert (await recv_json(ws))["type"] == "session.created"
    first, second = server.sessions
    assert (first.http_status, first.faults_triggered, first.server_events) == (
        503,
        ("refuse_connection",),
        (),
    )
    assert (second.http_status, second.faults_triggered) == (None, ())


async def test_refuse_connection_with_another_status(make_server: Any) -> None:
    server = await make_server(RefuseConnection(status=429))
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(server.url)
    assert info.value.response.status_code == 429


@pytest.mark.parametrize("abrupt", [False, True])
async def test_close_before_session_created(make_server: Any, abrupt: bool) -> None:
    server = await make_server(CloseBeforeSessionCreated(code=1013, abrupt=abrupt))
    ws = await connect(server.url)
    with pytest.raises(websockets.ConnectionClosed) as info:
        await recv_json(ws)
    if abrupt:
        assert info.value.rcvd is None  # no close frame: the client sees 1006
    else:
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1013
    record = await server.wait_closed(0, timeout=GUARD)
    assert record.server_events == ()
    assert record.faults_triggered == ("close_before_session_created",)


@pytest.mark.parametrize("abrupt", [False, True])
async def test_close_mid_response_after_n_audio_deltas(make_server: Any, abrupt: bool) -> None:
    server = await make_server(CloseMidResponse(after_audio_deltas=3, abrupt=abrupt))
    ws = await connect(server.url)
    assert (await recv_json(ws))["type"] == "session.created"
    await ask_for_speech(ws)
    received: list[str] = []

    async def read_until_closed() -> None:
        while True:
            received.append((await recv_json(ws))["type"])

    with pytest.raises(websockets.ConnectionClosed) as info:
        await read_until_closed()
    assert received.count("response.output_audio.delta") == 3
    assert received[-1] == "response.output_audio.delta"
    assert "response.done" not in received
    if abrupt:
        assert info.value.rcvd is None
    else:
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1011
    record = await server.wait_closed(0, timeout=GUARD)
    assert record.faults_triggered == ("close_mid_response",)


async def test_close_mid_response_counts_over_the_whole_session(make_server: Any) -> None:
    server = await make_server(CloseMidResponse(after_audio_deltas=10_000), chunk_ms=100)
    ws = await connect(server.url)
    await recv_json(ws)
    await ask_for_speech(ws)
    while (await recv_json(ws))["type"] != "response.done":
        pass
    assert server.session(0).faults_triggered == ()


async def test_stall_stops_sending_and_answering_pings(make_server: Any) -> None:
    server = await make_server(Stall(after_events=2))
    ws = await connect(server.url)
    assert (await recv_json(ws))["type"] == "session.created"
    await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
    assert (await recv_json(ws))["type"] == "session.updated"
    pong = await ws.ping()
    await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
    await ask_for_speech(ws)
    # The server has read everything sent after the ping (so the ping too) and answered nothing.
    await server.wait_for_client_event("response.create", timeout=GUARD)
    record = server.session(0)
    assert record.faults_triggered == ("stall",)
    assert record.server_types() == ["session.created", "session.updated"]
    assert isinstance(pong, asyncio.Future)
    assert not pong.done()
    # A closing handshake started by the client still completes.
    await asyncio.wait_for(ws.close(), GUARD)
    assert (await server.wait_closed(0, timeout=GUARD)).closed


async def test_stall_before_session_created(make_server: Any) -> None:
    server = await make_server(Stall(after_events=0))
    ws = await connect(server.url)
    await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
    await server.wait_for_client_event("session.update", timeout=GUARD)
    assert server.session(0).server_events == ()
    await asyncio.wait_for(ws.close(), GUARD)


@pytest.mark.parametrize("kind", ["invalid_json", "binary"])
async def test_send_garbage_once_then_carry_on(
    make_server: Any, kind: Literal["invalid_json", "binary"]
) -> None:
    server = await make_server(SendGarbage(after_events=1, kind=kind))
    ws = await connect(server.url)
    assert (await recv_json(ws))["type"] == "session.created"
    garbage = await asyncio.wait_for(ws.recv(), GUARD)
    if kind == "binary":
        assert isinstance(garbage, bytes)
    else:
        assert isinstance(garbage, str)
        with pytest.raises(json.JSONDecodeError):
            json.loads(garbage)
    await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
    assert (await recv_json(ws))["type"] == "session.updated"
    record = server.session(0)
    assert record.faults_triggered == ("send_garbage",)
    assert record.server_types() == ["session.created", "session.updated"]


async def test_garbage_before_anything(make_server: Any) -> None:
    server = await make_server(SendGarbage(after_events=0))
    ws = await connect(server.url)
    with pytest.raises(json.JSONDecodeError):
        json.loads(await asyncio.wait_for(ws.recv(), GUARD))
    assert (await recv_json(ws))["type"] == "session.created"
    assert server.session(0).faults_triggered == ("send_garbage",)


async def test_one_sessions_fault_does_not_touch_another(make_server: Any) -> None:
    server = await make_server(Stall(after_events=1, sessions={0}), SendGarbage(sessions={5}))
    stalled = await connect(server.url)
    healthy = await connect(server.url)
    assert (await recv_json(stalled))["type"] == "session.created"
    assert (await recv_json(healthy))["type"] == "session.created"
    await stalled.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
    await healthy.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
    assert (await recv_json(healthy))["type"] == "session.updated"
    pong = await healthy.ping()
    await asyncio.wait_for(pong, GUARD)
    await server.wait_for_client_event("session.update", session=0, timeout=GUARD)
    assert server.session(0).server_types() == ["session.created"]
    assert server.session(1).faults_triggered == ()
    await stalled.close()


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: RefuseConnection(status=200), "status"),
        (lambda: CloseBeforeSessionCreated(code=999), "code"),
        (lambda: CloseMidResponse(after_audio_deltas=0), "after_audio_deltas"),
        (lambda: Stall(after_events=-1), "after_events"),
        (lambda: SendGarbage(kind="html"), "kind"),  # type: ignore[arg-type]
        (lambda: Stall(sessions=[-1]), "sessions"),
    ],
)
def test_fault_knobs_validate_their_fields(factory: Any, field: str) -> None:
    with pytest.raises((ConfigError, ValueError), match=field):
        factory()


def test_fault_knobs_are_frozen_values() -> None:
    import attrs

    knob = Stall(after_events=3, sessions=[0, 2])
    assert knob.sessions == frozenset({0, 2})
    assert knob == Stall(after_events=3, sessions={0, 2})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        knob.after_events = 4  # type: ignore[misc]
