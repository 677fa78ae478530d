"""OpenAIRealtimeWebSocket: sending (while connecting and while connected), responses,
function calls, interruption and truncation, over loopback against FakeRealtimeServer."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from voicewire import ConnectOptions, SessionConfig, TurnDetection, UserMessageItem
from voicewire.audio.formats import PCM16_24K
from voicewire.config import DISABLED
from voicewire.errors import NotConnectedError
from voicewire.events import (
    AudioEvent,
    AudioInterruptedEvent,
    ErrorEvent,
    FunctionCallEvent,
    ItemUpdateEvent,
    SpeechStartedEvent,
    TurnDoneEvent,
)
from voicewire.items import FunctionCallItem, InputText
from voicewire.testing import Script, speech_like
from voicewire_openai_ws import OpenAIRealtimeWebSocket
from voicewire_openai_ws.protocol import InvalidClientEventError

if TYPE_CHECKING:
    from tests.openai_ws.conftest import EventLog, ServerFactory, TransportFactory

pytestmark = pytest.mark.usefixtures("no_task_leaks")

GUARD = 10.0
Record = Callable[[OpenAIRealtimeWebSocket], "EventLog"]
# Quiet PCM16 (24 kHz, 20 ms): low enough that the fake's VAD never hears speech.
QUIET = 960
NO_VAD = SessionConfig(turn_detection=DISABLED)


def chunk(n: int) -> bytes:
    """20 ms of near-silent PCM16 whose bytes say which chunk it is."""
    return bytes([n % 7, 0]) * (QUIET // 2)


def appended(events: Any) -> bytes:
    """The audio of every ``input_audio_buffer.append`` a server recorded, in order."""
    return b"".join(
        base64.b64decode(e["audio"]) for e in events if e["type"] == "input_audio_buffer.append"
    )


class Gate:
    """An async API-key callable that waits until the test opens it."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()

    async def __call__(self) -> str:
        self.entered.set()
        await self.opened.wait()
        return "sk-gate"


async def test_audio_sent_while_connecting_is_flushed_in_order_after_the_session_update(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server()
    gate = Gate()
    transport = make_transport(api_key=gate, url=server.url)
    log = record(transport)
    attempt = asyncio.create_task(transport.connect(ConnectOptions(initial_session_config=NO_VAD)))
    await asyncio.wait_for(gate.entered.wait(), GUARD)

    for n in range(5):
        await transport.send_audio(chunk(n), commit=n == 4)
    assert transport.pending_audio_bytes == 5 * QUIET

    # Everything else needs a connection and says so; stopping what is not playing is a no-op.
    calls: list[Any] = [
        transport.send_event({"type": "input_audio_buffer.clear"}),
        transport.send_message("hi"),
        transport.request_response(),
        transport.update_session_config(SessionConfig(voice="marin")),
        transport.truncate("item_1", 0, 10),
        transport.reset_history([], []),
        transport.send_function_call_output(
            FunctionCallEvent(name="f", call_id="c", arguments="{}"), "out"
        ),
    ]
    for call in calls:
        with pytest.raises(NotConnectedError, match="connecting"):
            await call
    await transport.interrupt()
    assert await transport.cancel_response() is False

    gate.opened.set()
    await asyncio.wait_for(attempt, GUARD)
    assert transport.pending_audio_bytes == 0
    await transport.send_audio(chunk(5))
    await server.wait_for(
        lambda: len(appended(server.session(0).client_events)) == 6 * QUIET, timeout=GUARD
    )

    events = server.session(0).client_events
    assert events[0]["type"] == "session.update"
    assert appended(events) == b"".join(chunk(n) for n in range(6))
    types = [e["type"] for e in events]
    # The held chunks and their commit went out before the chunk sent once connected.
    commit = types.index("input_audio_buffer.commit")
    assert appended(events[:commit]) == b"".join(chunk(n) for n in range(5))
    assert appended(events[commit:]) == chunk(5)
    assert log.errors() == []


async def test_buffer_overflow_drops_the_oldest_audio_and_says_so(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server()
    gate = Gate()
    transport = make_transport(api_key=gate, url=server.url, audio_buffer_limit=2 * QUIET)
    log = record(transport)
    attempt = asyncio.create_task(transport.connect(ConnectOptions(initial_session_config=NO_VAD)))
    await asyncio.wait_for(gate.entered.wait(), GUARD)

    for n in range(4):
        await transport.send_audio(chunk(n))
    [first] = log.errors("audio_buffer_overflow")  # one report per burst, not one per chunk
    assert first.source == "overflow"
    assert first.details["dropped_bytes"] == QUIET

    gate.opened.set()
    await asyncio.wait_for(attempt, GUARD)
    _, summary = log.errors("audio_buffer_overflow")
    assert summary.details["dropped_bytes"] == 2 * QUIET
    assert summary.details["final"] is True
    await server.wait_for(
        lambda: len(appended(server.session(0).client_events)) == 2 * QUIET, timeout=GUARD
    )
    assert appended(server.session(0).client_events) == chunk(2) + chunk(3)


async def test_sending_before_connect_raises_not_connected(
    make_transport: TransportFactory,
) -> None:
    transport = make_transport()
    with pytest.raises(NotConnectedError, match=r"connect\(\)"):
        await transport.send_audio(b"\x00\x00")
    with pytest.raises(NotConnectedError):
        await transport.send_event({"type": "response.create"})
    with pytest.raises(TypeError):
        await transport.send_audio("not bytes")  # type: ignore[arg-type]


async def test_send_event_checks_type_and_json_before_sending(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server()
    transport = make_transport(url=server.url)
    log = record(transport)
    await transport.connect()

    with pytest.raises(InvalidClientEventError, match="type"):
        await transport.send_event({"audio": "AAAA"})
    with pytest.raises(InvalidClientEventError, match="type"):
        await transport.send_event({"type": ""})
    with pytest.raises(InvalidClientEventError, match="JSON"):
        await transport.send_event({"type": "input_audio_buffer.append", "audio": b"raw"})
    with pytest.raises(InvalidClientEventError, match="JSON"):
        await transport.send_event({"type": "session.update", "session": {"speed": float("nan")}})

    await transport.send_event({"type": "input_audio_buffer.clear", "event_id": "mine"})
    await log.wait_raw("input_audio_buffer.cleared")
    assert server.session(0).client_types()[-1] == "input_audio_buffer.clear"
    assert log.errors() == []


async def test_text_message_gets_an_audio_answer(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server()
    transport = make_transport(url=server.url)
    log = record(transport)
    await transport.connect()

    await transport.send_message("hello there")
    done = await log.wait_event("turn_done")

    assert isinstance(done, TurnDoneEvent)
    assert done.status == "completed"
    assert done.usage.output_tokens > 0
    audio = [e for e in log.events if isinstance(e, AudioEvent)]
    sent = b"".join(
        base64.b64decode(e["delta"])
        for e in server.session(0).server_events_of("response.output_audio.delta")
    )
    assert b"".join(e.data for e in audio) == sent
    assert {e.response_id for e in audio} == {done.response_id}
    transcript = "".join(e.delta for e in log.of("audio_transcript_delta"))
    assert transcript == "You said: hello there"
    assert log.count("audio_done") == 1
    assert log.count("usage_update") == 1
    assert log.of("turn_started")[0].response_id == done.response_id
    assert transport.output_format == PCM16_24K
    assert not transport.response_active
    assert server.session(0).client_types()[-2:] == ["conversation.item.create", "response.create"]


SCRIPT = Script.from_obj(
    {
        "turns": [
            {
                "user": "What time is it?",
                "reply": [
                    {"function_call": {"name": "get_time", "arguments": {"tz": "UTC"}}},
                    {"say": "It is noon.", "ms": 300},
                ],
            }
        ]
    }
)


async def test_function_call_round_trip_in_script_mode(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(mode="script", script=SCRIPT)
    transport = make_transport(url=server.url)
    log = record(transport)
    await transport.connect()

    await transport.send_message("What time is it?")
    call = await log.wait_event("function_call")
    assert isinstance(call, FunctionCallEvent)
    assert call.name == "get_time"
    assert json.loads(call.arguments) == {"tz": "UTC"}
    await log.wait_event("turn_done")

    await transport.send_function_call_output(call, '{"time": "12:00"}')
    updates = [
        e.item
        for e in log.of("item_update")
        if isinstance(e.item, FunctionCallItem) and e.item.output is not None
    ]
    assert updates[-1].call_id == call.call_id
    assert updates[-1].status == "completed"
    assert updates[-1].output == '{"time": "12:00"}'

    second = await log.wait_event("turn_done", count=2)
    assert second.status == "completed"
    transcript = "".join(e.delta for e in log.of("audio_transcript_delta"))
    assert transcript == "It is noon."
    outputs = server.session(0).client_events_of("conversation.item.create")
    assert outputs[-1]["item"] == {
        "type": "function_call_output",
        "call_id": call.call_id,
        "output": '{"time": "12:00"}',
    }
    assert server.session(0).client_types()[-1] == "response.create"


LONG_ANSWER = Script.from_obj({"turns": [{"reply": [{"say": "A long story.", "ms": 6000}]}]})


async def test_interrupt_truncates_at_what_was_heard_and_the_server_accepts_it(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    # Real-time pacing, so that the interruption lands in the middle of the answer.
    server = await fake_server(mode="script", script=LONG_ANSWER, pace=1.0)
    transport = make_transport(url=server.url)
    log = record(transport)
    await transport.connect(ConnectOptions(initial_session_config=NO_VAD))
    await transport.send_message("tell me a story")
    await log.wait_event("audio", count=3)
    assert transport.response_active

    await transport.interrupt()

    [interrupted] = log.of("audio_interrupted")
    assert isinstance(interrupted, AudioInterruptedEvent)
    [cut] = interrupted.truncations
    received_ms = sum(len(e.data) for e in log.of("audio") if e.item_id == cut.item_id) // 48
    assert 0 <= cut.audio_end_ms <= received_ms
    done = await log.wait_event("turn_done")
    assert done.status == "cancelled"
    await server.wait_for(lambda: bool(server.session(0).truncations), timeout=GUARD)
    [truncation] = server.session(0).truncations
    assert truncation.accepted
    assert (truncation.item_id, truncation.audio_end_ms) == (cut.item_id, cut.audio_end_ms)
    types = server.session(0).client_types()
    assert types.index("response.cancel") < types.index("conversation.item.truncate")
    assert log.errors() == []

    await transport.interrupt()  # nothing left to cut
    assert log.count("audio_interrupted") == 1


async def test_barge_in_from_server_vad_truncates_automatically(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(mode="script", script=LONG_ANSWER, pace=1.0)
    transport = make_transport(url=server.url)
    log = record(transport)
    vad = SessionConfig(turn_detection=TurnDetection(type="server_vad", create_response=False))
    await transport.connect(ConnectOptions(initial_session_config=vad))
    await transport.send_message("tell me a story")
    await log.wait_event("audio", count=3)

    await transport.send_audio(speech_like(400, PCM16_24K, seed="caller"))

    started = await log.wait_event("speech_started")
    assert isinstance(started, SpeechStartedEvent)
    assert started.item_id is not None
    interrupted = await log.wait_event("audio_interrupted")
    # The typed speech event comes first, then the interruption it caused.
    assert log.events.index(started) < log.events.index(interrupted)
    assert interrupted.truncations
    await log.wait_event("turn_done")
    await server.wait_for(lambda: bool(server.session(0).truncations), timeout=GUARD)
    assert all(t.accepted for t in server.session(0).truncations)
    assert not [e for e in log.errors() if e.source == "server"]


async def test_cancel_response_only_while_one_is_active(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(mode="script", script=LONG_ANSWER, pace=1.0)
    transport = make_transport(url=server.url)
    log = record(transport)
    await transport.connect(ConnectOptions(initial_session_config=NO_VAD))
    assert await transport.cancel_response() is False

    await transport.send_message("tell me a story")
    await log.wait_event("turn_started")
    assert await transport.cancel_response() is True
    assert await transport.cancel_response() is False  # one is already on its way
    done = await log.wait_event("turn_done")
    assert done.status == "cancelled"
    assert server.session(0).client_types().count("response.cancel") == 1


async def test_update_session_config_truncate_and_reset_history(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server()
    transport = make_transport(url=server.url)
    log = record(transport)
    initial = SessionConfig(input_audio_format="audio/pcmu", output_audio_format="audio/pcmu")
    await transport.connect(ConnectOptions(initial_session_config=initial))

    await transport.update_session_config(SessionConfig(voice="marin"))
    # The second session.update is the tracing one that follows session.created.
    update = await server.wait_for_client_event("session.update", count=3, timeout=GUARD)
    # Merged over the first config: a voice change does not reset the G.711 formats.
    assert update["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert update["session"]["audio"]["output"]["voice"] == "marin"

    item = UserMessageItem(item_id="item_note", content=(InputText(text="remember blue"),))
    await transport.reset_history([], [item])
    await log.wait_for(
        lambda: any(
            isinstance(e, ItemUpdateEvent) and e.item.item_id == "item_note" for e in log.events
        ),
        "item_update of the recreated item",
    )
    await transport.reset_history([item], [])
    deleted = await log.wait_event("item_deleted")
    assert deleted.item_id == "item_note"

    with pytest.raises(ValueError, match="audio_end_ms"):
        await transport.truncate("item_x", 0, -1)
    await transport.truncate("item_unknown", 0, 0)
    error = await log.wait_event("error")
    assert isinstance(error, ErrorEvent)
    assert error.source == "server"  # the server's own answer, passed through
    assert transport.status == "connected"


async def test_send_audio_nowait_sends_only_what_needs_no_waiting(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server()
    gate = Gate()
    transport = make_transport(api_key=gate, url=server.url)
    log = record(transport)
    with pytest.raises(TypeError):
        transport.send_audio_nowait("not bytes")  # type: ignore[arg-type]
    assert not transport.send_audio_nowait(chunk(0))  # not connected: nothing sent, no error
    attempt = asyncio.create_task(transport.connect(ConnectOptions(initial_session_config=NO_VAD)))
    await asyncio.wait_for(gate.entered.wait(), GUARD)
    assert not transport.send_audio_nowait(chunk(0))  # connecting: send_audio holds it instead
    assert transport.pending_audio_bytes == 0
    await transport.send_audio(chunk(0))
    gate.opened.set()
    await asyncio.wait_for(attempt, GUARD)

    assert transport.send_audio_nowait(chunk(1))
    ws: Any = transport._ws  # white box: the two waits the method must not risk
    async with transport._send_lock:  # another send in progress
        assert not transport.send_audio_nowait(chunk(9))
    ws.pause_writing()  # the socket's buffer above its high-water mark
    try:
        assert not transport.send_audio_nowait(chunk(9))
    finally:
        ws.resume_writing()
    assert transport.send_audio_nowait(chunk(2))
    await server.wait_for(
        lambda: len(appended(server.session(0).client_events)) == 3 * QUIET, timeout=GUARD
    )
    assert appended(server.session(0).client_events) == chunk(0) + chunk(1) + chunk(2)
    await transport.close()
    assert not transport.send_audio_nowait(chunk(3))
    assert log.errors() == []
