"""OpenAIRealtimeWebSocket when the server misbehaves: drops mid-response (with and without a
reconnect policy), malformed, binary and oversized frames, a silent server, refused reconnects."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from voicewire import ConnectOptions, SessionConfig
from voicewire.config import DISABLED
from voicewire.errors import NotConnectedError
from voicewire.events import ReconnectedEvent, TurnDoneEvent
from voicewire.testing import CloseMidResponse, RefuseConnection, Script, SendGarbage, Stall
from voicewire_openai_ws import ConnectFailedError, OpenAIRealtimeWebSocket, ReconnectPolicy

if TYPE_CHECKING:
    from tests.openai_ws.conftest import EventLog, ServerFactory, TransportFactory

    from voicewire.testing import FakeRealtimeServer

pytestmark = pytest.mark.usefixtures("no_task_leaks")

GUARD = 10.0
Record = Callable[[OpenAIRealtimeWebSocket], "EventLog"]
CONFIG = SessionConfig(
    instructions="Be brief.",
    input_audio_format="audio/pcmu",
    output_audio_format="audio/pcmu",
    turn_detection=DISABLED,
)
FAST = ReconnectPolicy(initial_delay=0, jitter=0, max_attempts=3)
STORY = Script.from_obj({"turns": [], "fallback": [{"say": "Once upon a time.", "ms": 2000}]})


class KeyRing:
    """An async API-key callable: the first call returns at once, later ones wait for the test."""

    def __init__(self) -> None:
        self.calls = 0
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls > 1:
            self.waiting.set()
            await self.release.wait()
        return "sk-ring"


def appended(events: Any) -> bytes:
    return b"".join(
        base64.b64decode(e["audio"]) for e in events if e["type"] == "input_audio_buffer.append"
    )


async def test_drop_mid_response_without_policy_reports_and_disconnects(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(
        mode="script", script=STORY, faults=[CloseMidResponse(after_audio_deltas=3, sessions={0})]
    )
    transport = make_transport(url=server.url)
    log = record(transport)
    await transport.connect(ConnectOptions(initial_session_config=CONFIG))
    await transport.send_message("tell me a story")

    await log.wait_for(lambda: transport.status == "disconnected", "disconnected")

    [error] = log.errors("connection_lost")
    assert error.source == "transport"
    assert error.details["close_code"] == 1011
    assert "1011" in error.message
    # The response.done that never came is replaced, so nobody waits for it.
    [done] = log.of("turn_done")
    assert isinstance(done, TurnDoneEvent)
    assert done.status == "failed"
    assert done.response_id == log.of("turn_started")[0].response_id
    assert log.statuses() == ["connecting", "connected", "disconnected"]
    assert log.of("reconnected") == []
    with pytest.raises(NotConnectedError, match=r"connect\(\)"):
        await transport.send_audio(b"\xff" * 160)

    await transport.connect(ConnectOptions(initial_session_config=CONFIG))  # a new session
    assert len(server.sessions) == 2
    # The configuration, then the tracing update that follows session.created; no replay.
    await server.wait_for_client_event("session.update", session=1, count=2, timeout=GUARD)
    assert server.session(1).client_types() == ["session.update", "session.update"]


async def test_drop_mid_response_with_policy_reconnects_and_restores_the_session(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(
        mode="script", script=STORY, faults=[CloseMidResponse(after_audio_deltas=3, sessions={0})]
    )
    keys = KeyRing()
    transport = make_transport(url=server.url, api_key=keys, reconnect=FAST)
    log = record(transport)
    await transport.connect(ConnectOptions(initial_session_config=CONFIG))
    await transport.update_session_config(SessionConfig(voice="marin"))
    await transport.send_message("my favourite colour is blue", trigger_response=False)
    await transport.send_message("tell me a story")
    await asyncio.wait_for(keys.waiting.wait(), GUARD)  # dropped; reconnect waits for a key

    assert transport.status == "connecting"
    [lost] = log.errors("connection_lost")
    assert lost.details["reconnecting"] is True
    assert log.of("turn_done")[-1].status == "failed"
    # Audio spoken during the outage is held, then sent on the new connection.
    await transport.send_audio(b"\x7f" * 800, commit=True)
    keys.release.set()

    reconnected = await log.wait_event("reconnected")
    assert isinstance(reconnected, ReconnectedEvent)
    assert reconnected.attempt == 1
    assert reconnected.state_restored is True
    assert log.statuses() == ["connecting", "connected", "connecting", "connected"]

    await server.wait_for_client_event("input_audio_buffer.commit", session=1, timeout=GUARD)
    replay = server.session(1).client_events
    update = replay[0]
    assert update["type"] == "session.update"
    assert update["session"]["instructions"] == "Be brief."
    assert update["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert update["session"]["audio"]["output"]["voice"] == "marin"  # the merged config
    original = [
        e["item"]["id"]
        for e in server.session(0).server_events_of("conversation.item.added")
        if e["item"]["role"] == "user"
    ]
    created = [e["item"] for e in replay if e["type"] == "conversation.item.create"]
    assert [item["id"] for item in created] == original  # same ids, same order
    assert created[0]["content"] == [{"type": "input_text", "text": "my favourite colour is blue"}]
    types = [e["type"] for e in replay]
    assert types.index("input_audio_buffer.append") > max(
        i for i, t in enumerate(types) if t == "conversation.item.create"
    )
    assert appended(replay) == b"\x7f" * 800
    assert "input_audio_buffer.commit" in types

    # The restored session works.
    await transport.send_message("and now?")
    await log.wait_for(
        lambda: any(e.status == "completed" for e in log.of("turn_done")),
        "a completed turn on the new connection",
    )
    assert not [e for e in log.errors() if e.source == "server"]


async def test_policy_without_state_restore_starts_an_empty_session(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(
        mode="script", script=STORY, faults=[CloseMidResponse(after_audio_deltas=2, sessions={0})]
    )
    policy = ReconnectPolicy(initial_delay=0, jitter=0, restore_state=False)
    transport = make_transport(url=server.url, reconnect=policy)
    log = record(transport)
    await transport.connect(ConnectOptions(initial_session_config=CONFIG))
    await transport.send_message("tell me a story")

    reconnected = await log.wait_event("reconnected")
    assert reconnected.state_restored is False
    # A replay would come before the tracing update that follows session.created.
    await server.wait_for_client_event("session.update", session=1, count=2, timeout=GUARD)
    assert server.session(1).client_types()[0] == "session.update"
    assert "conversation.item.create" not in server.session(1).client_types()
    assert len(transport.protocol.conversation) == 0


async def _drop_then_refuse(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record, status: int
) -> tuple[FakeRealtimeServer, EventLog, Any]:
    """A response cut mid-audio, then every reconnect refused with ``status``; wait for the end."""
    server = await fake_server(
        mode="script",
        script=STORY,
        faults=[
            CloseMidResponse(after_audio_deltas=2, sessions={0}),
            RefuseConnection(status=status, sessions={1, 2, 3}),
        ],
    )
    transport = make_transport(url=server.url, reconnect=FAST)
    log = record(transport)
    await transport.connect(ConnectOptions(initial_session_config=CONFIG))
    await transport.send_message("tell me a story")
    await log.wait_for(lambda: transport.status == "disconnected", "gave up")
    [gave_up] = log.errors("reconnect_failed")
    return server, log, gave_up


async def test_reconnect_gives_up_after_max_attempts(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server, log, gave_up = await _drop_then_refuse(fake_server, make_transport, record, 503)
    assert gave_up.details["attempts"] == 3
    assert gave_up.details["http_status"] == 503
    assert isinstance(gave_up.error, ConnectFailedError)
    assert "3 attempts" in gave_up.message
    assert len(server.sessions) == 4
    assert log.statuses()[-1] == "disconnected"


async def test_reconnect_stops_at_a_fatal_refusal(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server, _, gave_up = await _drop_then_refuse(fake_server, make_transport, record, 403)
    assert gave_up.details["attempts"] == 1  # 403 is not worth a second try
    assert gave_up.details["fatal"] is True
    assert len(server.sessions) == 2


async def test_malformed_and_binary_frames_are_reported_and_the_session_goes_on(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(
        faults=[
            SendGarbage(after_events=1, kind="invalid_json"),
            SendGarbage(after_events=2, kind="binary"),
        ]
    )
    transport = make_transport(url=server.url)
    log = record(transport)
    await transport.connect()
    await log.wait_for(lambda: len(log.errors()) == 2, "two error events")

    invalid, binary = log.errors()
    assert invalid.code == "invalid_json"
    assert invalid.details["frame"].startswith('{"type": "response.output_audio.delta"')
    assert binary.code == "unexpected_binary_frame"
    assert binary.details["frame_length"] > 0
    assert transport.status == "connected"

    await transport.send_message("still there?")
    done = await log.wait_event("turn_done")
    assert done.status == "completed"
    assert server.session(0).faults_triggered == ("send_garbage", "send_garbage")


async def test_an_oversized_frame_is_reported_and_disconnects_without_policy(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    # Session events are under 1 KiB; a 40 ms PCM audio delta is about 2.7 KiB.
    server = await fake_server()
    transport = make_transport(url=server.url, max_message_size=2048)
    log = record(transport)
    await transport.connect()
    await transport.send_message("hello")

    await log.wait_for(lambda: transport.status == "disconnected", "disconnected")
    [error] = log.errors("message_too_big")
    assert "2048" in error.message
    assert error.details["close_code"] == 1009
    assert log.of("audio") == []


async def test_an_oversized_frame_reconnects_with_a_policy(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server()
    transport = make_transport(url=server.url, max_message_size=2048, reconnect=FAST)
    log = record(transport)
    await transport.connect()
    await transport.send_message("hello")

    reconnected = await log.wait_event("reconnected")
    assert reconnected.attempt == 1
    [error] = log.errors("message_too_big")
    assert error.details["reconnecting"] is True
    assert transport.status == "connected"
    assert len(server.sessions) == 2


async def test_a_silent_server_is_found_by_keepalive_and_replaced(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(faults=[Stall(after_events=1, sessions={0})])
    transport = make_transport(url=server.url, ping_interval=0.05, ping_timeout=0.1, reconnect=FAST)
    log = record(transport)
    await transport.connect()  # session.created arrived, then the server went silent

    reconnected = await log.wait_event("reconnected")
    assert reconnected.attempt == 1
    assert log.errors("keepalive_timeout")
    assert transport.status == "connected"
    await transport.send_message("hello")
    assert (await log.wait_event("turn_done")).status == "completed"


async def test_close_while_reconnecting_stops_the_attempts(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(
        mode="script", script=STORY, faults=[CloseMidResponse(after_audio_deltas=2, sessions={0})]
    )
    keys = KeyRing()
    transport = make_transport(url=server.url, api_key=keys, reconnect=FAST)
    log = record(transport)
    await transport.connect(ConnectOptions(initial_session_config=CONFIG))
    await transport.send_message("tell me a story")
    await asyncio.wait_for(keys.waiting.wait(), GUARD)
    await transport.send_audio(b"\x7f" * 160)  # held, then discarded by close()

    await transport.close()

    assert transport.status == "disconnected"
    assert transport.pending_audio_bytes == 0
    assert log.statuses()[-2:] == ["disconnecting", "disconnected"]
    assert log.of("reconnected") == []
    assert len(server.sessions) == 1


async def test_streaming_audio_across_a_drop_never_raises_with_a_policy(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(
        mode="script", script=STORY, faults=[CloseMidResponse(after_audio_deltas=2, sessions={0})]
    )
    transport = make_transport(url=server.url, reconnect=FAST)
    log = record(transport)
    await transport.connect(ConnectOptions(initial_session_config=CONFIG))
    await transport.send_message("tell me a story")

    sent = 0
    while not log.of("reconnected"):  # a caller keeps talking through the outage
        await transport.send_audio(b"\x7f" * 160)
        sent += 1
        await asyncio.sleep(0)
    await transport.send_audio(b"\x7e" * 160)

    await server.wait_for(
        lambda: b"\x7e" * 160 in appended(server.session(1).client_events), timeout=GUARD
    )
    assert sent > 0
    assert transport.status == "connected"
    assert not log.errors("audio_buffer_overflow")
