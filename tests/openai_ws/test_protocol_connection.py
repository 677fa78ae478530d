"""RealtimeProtocol: frames queued by each method, side effects of received events."""

from __future__ import annotations

import base64
import json
import logging
import math
from typing import Any

import pytest

from voicewire.audio.formats import MULAW_8K, PCM16_24K
from voicewire.config import DISABLED, SessionConfig, TracingConfig, TurnDetection
from voicewire.events import (
    AudioEvent,
    AudioInterruptedEvent,
    ErrorEvent,
    FunctionCallEvent,
    ItemUpdateEvent,
    SpeechStartedEvent,
    Truncation,
)
from voicewire.items import FunctionCallItem, InputText, UserMessageItem
from voicewire_openai_ws.protocol import RealtimeProtocol
from voicewire_openai_ws.protocol.errors import InvalidClientEventError


def sent(protocol: RealtimeProtocol) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in protocol.data_to_send()]


def types(protocol: RealtimeProtocol) -> list[str]:
    return [event["type"] for event in sent(protocol)]


def feed(protocol: RealtimeProtocol, event: dict[str, Any], now_ms: float = 0.0) -> list[Any]:
    return protocol.receive(json.dumps(event), now_ms)


def session_event(kind: str = "session.updated", **session: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": "e", "session": {"type": "realtime", **session}}


def ulaw_session(interrupt_response: bool) -> dict[str, Any]:
    return session_event(
        audio={
            "input": {
                "turn_detection": {"type": "server_vad", "interrupt_response": interrupt_response}
            },
            "output": {"format": {"type": "audio/pcmu"}},
        }
    )


def audio(nbytes: int, item_id: str = "a1", response_id: str = "r1") -> dict[str, Any]:
    return {
        "type": "response.output_audio.delta",
        "response_id": response_id,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(b"\xff" * nbytes).decode(),
    }


def created(response_id: str = "r1") -> dict[str, Any]:
    return {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}


def done(response_id: str = "r1") -> dict[str, Any]:
    return {"type": "response.done", "response": {"id": response_id, "status": "completed"}}


def speaking(protocol: RealtimeProtocol, interrupt_response: bool = False) -> None:
    """A response is active and 200 ms of mu-law audio arrived at t=1000."""
    feed(protocol, ulaw_session(interrupt_response))
    feed(protocol, created())
    feed(protocol, audio(1600), 1000)
    protocol.data_to_send()


# --- frames out ---------------------------------------------------------------------------------


def test_data_to_send_drains_in_order() -> None:
    protocol = RealtimeProtocol()
    protocol.send_event({"type": "input_audio_buffer.clear"})
    protocol.send_event({"type": "input_audio_buffer.commit"})
    assert types(protocol) == ["input_audio_buffer.clear", "input_audio_buffer.commit"]
    assert protocol.data_to_send() == []


def test_frames_are_compact_json_text() -> None:
    protocol = RealtimeProtocol()
    protocol.send_event({"type": "x", "text": "é"})
    assert protocol.data_to_send() == ['{"type":"x","text":"é"}']


def test_initial_frames_and_model() -> None:
    protocol = RealtimeProtocol(model="gpt-realtime")
    protocol.initial_frames(None)
    [update] = sent(protocol)
    assert update["session"]["model"] == "gpt-realtime"
    protocol.initial_frames(SessionConfig(voice="marin"), "gpt-realtime-mini")
    [update] = sent(protocol)
    assert update["session"]["model"] == "gpt-realtime-mini"
    assert protocol.model == "gpt-realtime-mini"


def test_update_session_config_merges_over_what_was_sent() -> None:
    protocol = RealtimeProtocol()
    protocol.initial_frames(
        SessionConfig(input_audio_format="audio/pcmu", output_audio_format="audio/pcmu")
    )
    protocol.data_to_send()
    protocol.update_session_config(SessionConfig(voice="cedar"))
    [update] = sent(protocol)
    assert update["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert update["session"]["audio"]["output"]["voice"] == "cedar"
    assert protocol.config.voice == "cedar"


def test_send_audio() -> None:
    protocol = RealtimeProtocol()
    protocol.send_audio(b"\x01\x02")
    assert sent(protocol) == [{"type": "input_audio_buffer.append", "audio": "AQI="}]
    protocol.send_audio(b"\x01", commit=True)
    assert types(protocol) == ["input_audio_buffer.append", "input_audio_buffer.commit"]
    protocol.send_audio(b"", commit=True)
    assert types(protocol) == ["input_audio_buffer.commit"]


@pytest.mark.parametrize(
    ("event", "match"),
    [
        ({}, "type"),
        ({"type": ""}, "type"),
        ({"type": 3}, "type"),
        ({"type": "x", "data": b"bytes"}, "JSON"),
        ({"type": "x", "data": {1, 2}}, "JSON"),
        ({"type": "x", "value": math.nan}, "JSON"),
        ({"type": "response.create", "response": {"x": object()}}, "JSON"),
        (["type", "x"], "mapping"),
    ],
)
def test_send_event_refuses_bad_events_and_queues_nothing(event: Any, match: str) -> None:
    protocol = RealtimeProtocol()
    with pytest.raises(InvalidClientEventError, match=match):
        protocol.send_event(event)
    assert protocol.data_to_send() == []


def test_send_event_response_create_is_sequenced_as_manual() -> None:
    protocol = RealtimeProtocol()
    feed(protocol, created())
    protocol.send_event({"type": "response.create", "response": {"instructions": "later"}})
    assert protocol.data_to_send() == []
    feed(protocol, done())
    [create] = sent(protocol)
    assert create["response"] == {"instructions": "later"}
    assert create["event_id"].startswith("voicewire_response_create_")


def test_send_event_response_cancel_goes_at_once_and_holds_creates() -> None:
    protocol = RealtimeProtocol()
    feed(protocol, created())
    protocol.send_event({"type": "response.cancel"})
    assert types(protocol) == ["response.cancel"]
    assert not protocol.cancel_response()  # one cancel in flight is enough
    assert protocol.data_to_send() == []


def test_send_message_then_automatic_response() -> None:
    protocol = RealtimeProtocol()
    protocol.send_message("hello", {"event_id": "m1", "previous_item_id": "root"})
    item_create, response_create = sent(protocol)
    assert item_create == {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hello"}],
        },
        "event_id": "m1",
        "previous_item_id": "root",
    }
    assert response_create["type"] == "response.create"
    assert "response" not in response_create


def test_send_message_item_without_response() -> None:
    protocol = RealtimeProtocol()
    item = UserMessageItem(item_id="", content=[InputText(text="x")])
    protocol.send_message(item, trigger_response=False)
    assert types(protocol) == ["conversation.item.create"]


def test_send_message_extras_cannot_replace_type_or_item() -> None:
    protocol = RealtimeProtocol()
    with pytest.raises(InvalidClientEventError, match="item"):
        protocol.send_message("x", {"item": {}})
    with pytest.raises(InvalidClientEventError, match="type"):
        protocol.send_message("x", {"type": "other"})
    assert protocol.data_to_send() == []


def test_send_function_call_output() -> None:
    protocol = RealtimeProtocol()
    call = FunctionCallEvent(
        name="get_weather", call_id="c1", arguments="{}", item_id="f1", previous_item_id="u1"
    )
    update = protocol.send_function_call_output(call, '{"t":21}')
    assert update == ItemUpdateEvent(
        item=FunctionCallItem(
            item_id="f1",
            previous_item_id="u1",
            status="completed",
            name="get_weather",
            call_id="c1",
            arguments="{}",
            output='{"t":21}',
        )
    )
    item_create, response_create = sent(protocol)
    assert item_create["item"] == {
        "type": "function_call_output",
        "call_id": "c1",
        "output": '{"t":21}',
    }
    assert response_create["type"] == "response.create"


def test_send_function_call_output_without_item_id_or_response() -> None:
    protocol = RealtimeProtocol()
    call = FunctionCallEvent(name="n", call_id="c", arguments="{}")
    assert protocol.send_function_call_output(call, "x", start_response=False) is None
    assert types(protocol) == ["conversation.item.create"]


def test_follow_up_requests_coalesce_while_a_response_is_active() -> None:
    protocol = RealtimeProtocol()
    feed(protocol, created())
    call = FunctionCallEvent(name="n", call_id="c", arguments="{}", item_id="f")
    protocol.send_function_call_output(call, "1")
    protocol.send_message("and also")
    assert types(protocol) == ["conversation.item.create", "conversation.item.create"]
    assert protocol.response_active
    feed(protocol, done())
    assert types(protocol) == ["response.create"]
    assert not protocol.response_active


def test_request_response_manual_refuses_bad_json_at_once() -> None:
    protocol = RealtimeProtocol()
    feed(protocol, created())
    with pytest.raises(InvalidClientEventError):
        protocol.request_response({"metadata": {"k": b"bytes"}})
    assert protocol.sequencer.pending == 0


def test_cancel_response_only_when_active() -> None:
    protocol = RealtimeProtocol()
    assert not protocol.cancel_response()
    feed(protocol, created())
    assert protocol.cancel_response()
    assert types(protocol) == ["response.cancel"]
    feed(protocol, done())
    assert not protocol.cancel_response()


def test_truncate_validates_and_drops_own_estimate() -> None:
    protocol = RealtimeProtocol()
    speaking(protocol)
    protocol.truncate("a1", 0, 120)
    assert sent(protocol) == [
        {
            "type": "conversation.item.truncate",
            "item_id": "a1",
            "content_index": 0,
            "audio_end_ms": 120,
        }
    ]
    assert protocol.playback is None
    with pytest.raises(ValueError, match="audio_end_ms"):
        protocol.truncate("a1", 0, 12.5)  # type: ignore[arg-type]


# --- interrupt ---------------------------------------------------------------------------------


def test_interrupt_cancels_then_truncates() -> None:
    protocol = RealtimeProtocol()
    speaking(protocol)
    events = protocol.interrupt(1150)
    assert events == [
        AudioInterruptedEvent(
            response_id="r1",
            truncations=(Truncation(item_id="a1", content_index=0, audio_end_ms=150),),
        )
    ]
    assert sent(protocol) == [
        {"type": "response.cancel"},
        {
            "type": "conversation.item.truncate",
            "item_id": "a1",
            "content_index": 0,
            "audio_end_ms": 150,
        },
    ]
    assert protocol.interrupt(1160) == []  # nothing left to cut, cancel already in flight
    assert protocol.data_to_send() == []


def test_interrupt_without_cancel() -> None:
    protocol = RealtimeProtocol()
    speaking(protocol)
    protocol.interrupt(2000, cancel=False)
    assert sent(protocol) == [
        {
            "type": "conversation.item.truncate",
            "item_id": "a1",
            "content_index": 0,
            "audio_end_ms": 200,
        }
    ]


def test_interrupt_with_nothing_playing_or_active_does_nothing() -> None:
    protocol = RealtimeProtocol()
    assert protocol.interrupt(0) == []
    assert protocol.data_to_send() == []


def test_interrupt_cancels_an_active_response_before_any_audio() -> None:
    protocol = RealtimeProtocol()
    feed(protocol, created())
    assert protocol.interrupt(0) == []
    assert types(protocol) == ["response.cancel"]


def test_interrupt_after_audio_done_while_still_playing() -> None:
    protocol = RealtimeProtocol()
    speaking(protocol)
    feed(
        protocol,
        {
            "type": "response.output_audio.done",
            "response_id": "r1",
            "item_id": "a1",
            "content_index": 0,
        },
    )
    feed(protocol, done())
    events = protocol.interrupt(1100)
    assert [e.type for e in events] == ["audio_interrupted"]
    assert sent(protocol) == [
        {
            "type": "conversation.item.truncate",
            "item_id": "a1",
            "content_index": 0,
            "audio_end_ms": 100,
        }
    ]


def test_interrupt_rejects_a_bad_clock() -> None:
    with pytest.raises(ValueError, match="now_ms"):
        RealtimeProtocol().interrupt(math.nan)
    with pytest.raises(ValueError, match="now_ms"):
        RealtimeProtocol().receive("{}", math.inf)


# --- barge-in ---------------------------------------------------------------------------------

SPEECH = {"type": "input_audio_buffer.speech_started", "audio_start_ms": 10, "item_id": "u2"}


def test_barge_in_cancels_when_the_server_does_not() -> None:
    protocol = RealtimeProtocol()
    speaking(protocol, interrupt_response=False)
    events = feed(protocol, SPEECH, 1120)
    assert isinstance(events[-1], AudioInterruptedEvent)
    assert types(protocol) == ["response.cancel", "conversation.item.truncate"]


def test_barge_in_only_truncates_when_the_server_interrupts() -> None:
    protocol = RealtimeProtocol()
    speaking(protocol, interrupt_response=True)
    assert protocol.interrupt_response
    feed(protocol, SPEECH, 1120)
    assert sent(protocol) == [
        {
            "type": "conversation.item.truncate",
            "item_id": "a1",
            "content_index": 0,
            "audio_end_ms": 120,
        }
    ]


def test_barge_in_when_nothing_plays_is_silent() -> None:
    protocol = RealtimeProtocol()
    feed(protocol, ulaw_session(True))
    events = feed(protocol, SPEECH)
    assert events[1:] == [SpeechStartedEvent(item_id="u2", audio_start_ms=10)]
    assert protocol.data_to_send() == []


def test_automatic_barge_in_can_be_switched_off() -> None:
    protocol = RealtimeProtocol(automatic_barge_in=False)
    speaking(protocol)
    events = feed(protocol, SPEECH, 1100)
    assert events[1:] == [SpeechStartedEvent(item_id="u2", audio_start_ms=10)]
    assert protocol.data_to_send() == []
    assert protocol.playback is not None


# --- received events drive state -----------------------------------------------------------------


def test_session_updates_output_format_and_exposes_session_read_only() -> None:
    protocol = RealtimeProtocol()
    assert protocol.output_format == PCM16_24K
    assert protocol.session is None
    feed(protocol, ulaw_session(False))
    assert protocol.output_format == MULAW_8K
    session: Any = protocol.session
    assert session["type"] == "realtime"
    with pytest.raises(TypeError):
        session["type"] = "x"


@pytest.mark.parametrize(
    "fmt", [{"type": "audio/unknown"}, {"type": "audio/pcm", "rate": "fast"}, 42, None]
)
def test_unreadable_output_format_falls_back_to_pcm24k(fmt: Any) -> None:
    protocol = RealtimeProtocol()
    feed(protocol, ulaw_session(False))
    feed(protocol, session_event(audio={"output": {"format": fmt}}))
    assert protocol.output_format == PCM16_24K


def test_audio_is_accounted_in_the_negotiated_format() -> None:
    protocol = RealtimeProtocol()
    feed(protocol, session_event(audio={"output": {"format": {"type": "audio/pcma"}}}))
    [_, chunk] = feed(protocol, audio(800), 5)
    assert isinstance(chunk, AudioEvent)
    assert protocol.playback is not None
    assert protocol.playback.received_ms == 100
    assert protocol.playback.first_audio_ms == 5


@pytest.mark.parametrize(
    "event",
    [
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "content_index": 0,
            "transcript": "hi",
        },
        {
            "type": "conversation.item.truncated",
            "item_id": "u1",
            "content_index": 0,
            "audio_end_ms": 5,
        },
        {"type": "response.mcp_call.in_progress", "item_id": "u1", "output_index": 0},
        {"type": "mcp_list_tools.in_progress", "item_id": "u1"},
    ],
)
def test_item_is_retrieved_again(event: dict[str, Any]) -> None:
    protocol = RealtimeProtocol()
    feed(protocol, event)
    assert sent(protocol) == [{"type": "conversation.item.retrieve", "item_id": "u1"}]


def test_response_lifecycle_and_active_id() -> None:
    protocol = RealtimeProtocol()
    feed(protocol, created("r9"))
    assert (protocol.response_active, protocol.active_response_id) == (True, "r9")
    feed(protocol, done("r9"))
    assert (protocol.response_active, protocol.active_response_id) == (False, None)


def test_server_error_releases_the_matching_create() -> None:
    protocol = RealtimeProtocol()
    protocol.request_response()
    [create] = sent(protocol)
    events = feed(
        protocol,
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "x",
                "message": "m",
                "event_id": create["event_id"],
            },
        },
    )
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].source == "server"
    assert types(protocol) == ["response.create"]  # restored and retried once


def test_unusable_events_have_no_side_effects() -> None:
    protocol = RealtimeProtocol()
    feed(protocol, {"type": "response.created"})
    assert not protocol.response_active
    feed(
        protocol,
        {"type": "response.output_audio.delta", "item_id": "a", "content_index": 0, "delta": "%%%"},
    )
    assert protocol.playback is None
    events = protocol.receive(b"\x80garbage", 0)
    assert [e.code for e in events if isinstance(e, ErrorEvent)] == ["invalid_json"]
    assert protocol.data_to_send() == []


def test_conversation_follows_items() -> None:
    protocol = RealtimeProtocol()
    item = {
        "id": "u1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "x"}],
    }
    feed(protocol, {"type": "conversation.item.added", "previous_item_id": None, "item": item})
    assert [i.item_id for i in protocol.conversation.history()] == ["u1"]
    feed(protocol, {"type": "conversation.item.deleted", "item_id": "u1"})
    assert protocol.conversation.history() == []


def test_output_item_events_get_the_known_position() -> None:
    protocol = RealtimeProtocol()
    item = {"id": "a1", "type": "message", "role": "assistant", "content": []}
    output = {"type": "response.output_item.added", "response_id": "r", "output_index": 0}
    [_, before] = feed(protocol, {**output, "item": item})
    assert before.item.previous_item_id is None  # not known yet
    feed(protocol, {"type": "conversation.item.added", "previous_item_id": "u1", "item": item})
    [_, after] = feed(protocol, {**output, "type": "response.output_item.done", "item": item})
    assert after.item.previous_item_id == "u1"


def test_function_call_output_update_gets_the_known_position() -> None:
    protocol = RealtimeProtocol()
    call_item = {"id": "f", "type": "function_call", "name": "n", "call_id": "c", "arguments": "{}"}
    feed(protocol, {"type": "conversation.item.done", "previous_item_id": "u1", "item": call_item})
    update = protocol.send_function_call_output(
        FunctionCallEvent(name="n", call_id="c", arguments="{}", item_id="f"), "1"
    )
    assert update is not None
    assert update.item.previous_item_id == "u1"


# --- tracing ----------------------------------------------------------------------------------


def test_tracing_auto_after_session_created_once() -> None:
    protocol = RealtimeProtocol()
    protocol.initial_frames(None)
    protocol.data_to_send()
    feed(protocol, session_event("session.created", tracing=None))
    assert sent(protocol) == [
        {"type": "session.update", "session": {"type": "realtime", "tracing": "auto"}}
    ]
    feed(protocol, session_event("session.created", tracing=None))
    feed(protocol, session_event("session.updated", tracing="auto"))
    assert protocol.data_to_send() == []


def test_tracing_disabled_and_configured() -> None:
    protocol = RealtimeProtocol()
    protocol.initial_frames(SessionConfig(tracing=DISABLED))
    protocol.data_to_send()
    feed(protocol, session_event("session.created"))
    assert sent(protocol)[0]["session"]["tracing"] is None
    other = RealtimeProtocol()
    other.initial_frames(SessionConfig(tracing=TracingConfig(workflow_name="calls")))
    other.data_to_send()
    feed(other, session_event("session.created", tracing="auto"))
    assert sent(other)[0]["session"]["tracing"] == {"workflow_name": "calls"}


def test_tracing_already_set_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    protocol = RealtimeProtocol()
    protocol.initial_frames(SessionConfig(tracing=TracingConfig(workflow_name="mine")))
    protocol.data_to_send()
    with caplog.at_level(logging.WARNING):
        feed(protocol, session_event("session.created", tracing={"workflow_name": "theirs"}))
    assert protocol.data_to_send() == []
    assert "already configured" in caplog.text


# --- connection lost ----------------------------------------------------------------------------


def test_connection_lost_drops_connection_state_and_keeps_the_conversation() -> None:
    protocol = RealtimeProtocol(model="gpt-realtime")
    protocol.initial_frames(SessionConfig(turn_detection=TurnDetection(type="server_vad")))
    item = {
        "id": "u1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "x"}],
    }
    feed(protocol, {"type": "conversation.item.done", "previous_item_id": None, "item": item})
    feed(protocol, session_event("session.created"))
    speaking(protocol)
    protocol.request_response()
    protocol.send_audio(b"\x00")
    protocol.connection_lost()
    assert protocol.data_to_send() == []
    assert not protocol.response_active
    assert protocol.sequencer.pending == 0
    assert protocol.playback is None
    assert protocol.session is None
    assert protocol.output_format == PCM16_24K
    assert protocol.interrupt(5000) == []
    # A new connection: the config and the conversation come back, tracing applies again.
    protocol.initial_frames(protocol.config)
    assert protocol.replay_history() == 1
    assert types(protocol) == ["session.update", "conversation.item.create"]
    feed(protocol, session_event("session.created"))
    assert types(protocol) == ["session.update"]
