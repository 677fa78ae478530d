"""Server frames -> typed events: the mapping table and every kind of unusable input."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from voicewire.events import (
    AudioDoneEvent,
    AudioEvent,
    AudioTranscriptDeltaEvent,
    ErrorEvent,
    FunctionCallEvent,
    ItemDeletedEvent,
    ItemUpdateEvent,
    OutputTextDeltaEvent,
    RawServerEvent,
    TurnDoneEvent,
    TurnStartedEvent,
    Usage,
    UsageUpdateEvent,
)
from voicewire.items import (
    AssistantMessageItem,
    FunctionCallItem,
    McpApprovalRequestItem,
    McpCallItem,
    OutputAudio,
    UserMessageItem,
)
from voicewire_openai_ws.protocol.errors import InvalidServerEventError
from voicewire_openai_ws.protocol.frames import FRAME_PREVIEW_CHARS
from voicewire_openai_ws.protocol.server_events import KNOWN_TYPES, parse_server_frame

IDS = {"response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0}


def parse(event: dict[str, Any]) -> list[Any]:
    parsed = parse_server_frame(json.dumps(event))
    assert isinstance(parsed.events[0], RawServerEvent)
    assert parsed.events[0].source == "openai"
    assert parsed.events[0].message == event
    return list(parsed.events[1:])


def only(events: list[Any]) -> Any:
    assert len(events) == 1, events
    return events[0]


# --- the mapping table ------------------------------------------------------------------------


def test_audio_delta_decodes_bytes_and_carries_ids() -> None:
    payload = bytes(range(10))
    event = only(
        parse(
            {
                "type": "response.output_audio.delta",
                **IDS,
                "delta": base64.b64encode(payload).decode(),
            }
        )
    )
    assert event == AudioEvent(
        data=payload, response_id="resp_1", item_id="item_1", content_index=0
    )


def test_audio_delta_without_response_id_is_still_audio() -> None:
    event = only(
        parse(
            {"type": "response.output_audio.delta", "item_id": "i", "content_index": 2, "delta": ""}
        )
    )
    assert event == AudioEvent(data=b"", response_id=None, item_id="i", content_index=2)


def test_audio_done() -> None:
    event = only(parse({"type": "response.output_audio.done", **IDS}))
    assert event == AudioDoneEvent(response_id="resp_1", item_id="item_1", content_index=0)


def test_transcript_and_text_deltas() -> None:
    transcript = only(
        parse(
            {
                "type": "response.output_audio_transcript.delta",
                **IDS,
                "delta": "Sure",
                "obfuscation": "x",
            }
        )
    )
    assert transcript == AudioTranscriptDeltaEvent(
        item_id="item_1", delta="Sure", response_id="resp_1"
    )
    text = only(parse({"type": "response.output_text.delta", **IDS, "delta": "Hi"}))
    assert text == OutputTextDeltaEvent(item_id="item_1", delta="Hi", response_id="resp_1")


def test_response_created_is_turn_started_with_the_raw_event() -> None:
    raw = {
        "type": "response.created",
        "event_id": "e",
        "response": {"id": "resp_1", "status": "in_progress"},
    }
    event = only(parse(raw))
    assert isinstance(event, TurnStartedEvent)
    assert event.response_id == "resp_1"
    assert event.provider_data == raw


def test_response_done_gives_usage_then_turn_done() -> None:
    usage = {
        "total_tokens": 320,
        "input_tokens": 132,
        "output_tokens": 188,
        "input_token_details": {"text_tokens": 59, "audio_tokens": 73},
        "output_token_details": {"text_tokens": 41, "audio_tokens": 147},
    }
    output = [{"id": "item_1", "type": "message", "role": "assistant", "content": []}]
    events = parse(
        {
            "type": "response.done",
            "response": {"id": "resp_1", "status": "cancelled", "output": output, "usage": usage},
        }
    )
    expected_usage = Usage(
        input_tokens=132,
        output_tokens=188,
        input_token_details={"text_tokens": 59, "audio_tokens": 73},
        output_token_details={"text_tokens": 41, "audio_tokens": 147},
    )
    assert events == [
        UsageUpdateEvent(usage=expected_usage),
        TurnDoneEvent(
            response_id="resp_1", status="cancelled", output=tuple(output), usage=expected_usage
        ),
    ]
    assert expected_usage.total_tokens == 320


def test_response_done_without_usage_reports_zeros() -> None:
    usage_event, done = parse({"type": "response.done", "response": {"usage": None}})
    assert usage_event == UsageUpdateEvent(usage=Usage())
    assert done == TurnDoneEvent(response_id=None, status=None, output=(), usage=Usage())


def test_turn_events_do_not_share_state_with_the_raw_event() -> None:
    parsed = parse_server_frame(
        json.dumps({"type": "response.done", "response": {"id": "r", "output": [{"id": "x"}]}})
    )
    raw, _usage, done = parsed.events
    assert isinstance(raw, RawServerEvent)
    assert isinstance(done, TurnDoneEvent)
    raw.message["response"]["output"][0]["id"] = "mutated"
    assert done.output[0]["id"] == "x"


def _message(
    item_id: str, role: str, content: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": role, "content": content, **extra}


@pytest.mark.parametrize(
    ("kind", "status"),
    [("conversation.item.added", "in_progress"), ("conversation.item.done", "completed")],
)
def test_conversation_item_message_with_previous_and_default_status(kind: str, status: str) -> None:
    event = only(
        parse(
            {
                "type": kind,
                "previous_item_id": "item_0",
                "item": _message("item_1", "assistant", [{"type": "audio", "transcript": "Hi"}]),
            }
        )
    )
    assert event == ItemUpdateEvent(
        item=AssistantMessageItem(
            item_id="item_1",
            previous_item_id="item_0",
            status=status,  # type: ignore[arg-type]
            content=[OutputAudio(transcript="Hi")],
        )
    )


def test_conversation_item_status_from_the_item_wins() -> None:
    event = only(
        parse(
            {
                "type": "conversation.item.added",
                "previous_item_id": None,
                "item": _message(
                    "u", "user", [{"type": "input_audio", "transcript": None}], status="completed"
                ),
            }
        )
    )
    assert isinstance(event.item, UserMessageItem)
    assert event.item.status == "completed"


def test_retrieved_item_has_no_previous_and_is_completed() -> None:
    event = only(
        parse(
            {
                "type": "conversation.item.retrieved",
                "item": _message(
                    "a", "assistant", [{"type": "output_audio", "audio": "AAAA", "transcript": "x"}]
                ),
            }
        )
    )
    assert event.item.previous_item_id is None
    assert event.item.status == "completed"
    assert event.item.content == (OutputAudio(audio="AAAA", transcript="x"),)


def test_conversation_item_function_call_and_output_are_not_announced() -> None:
    call = {
        "id": "f",
        "type": "function_call",
        "status": "completed",
        "name": "n",
        "call_id": "c",
        "arguments": "{}",
    }
    assert parse({"type": "conversation.item.done", "previous_item_id": None, "item": call}) == []
    out = {"id": "o", "type": "function_call_output", "call_id": "c", "output": "1"}
    assert parse({"type": "conversation.item.added", "previous_item_id": "f", "item": out}) == []


def test_conversation_item_mcp_call() -> None:
    item = {
        "id": "m",
        "type": "mcp_call",
        "name": "search",
        "arguments": "{}",
        "server_label": "docs",
    }
    event = only(parse({"type": "conversation.item.done", "previous_item_id": None, "item": item}))
    assert event == ItemUpdateEvent(
        item=McpCallItem(
            item_id="m", type="mcp_call", status="completed", name="search", arguments="{}"
        )
    )


def test_mcp_approval_request_only_on_done() -> None:
    item = {
        "id": "q",
        "type": "mcp_approval_request",
        "server_label": "docs",
        "name": "search",
        "arguments": '{"q":1}',
    }
    assert parse({"type": "conversation.item.added", "previous_item_id": None, "item": item}) == []
    event = only(parse({"type": "conversation.item.done", "previous_item_id": None, "item": item}))
    assert event == ItemUpdateEvent(
        item=McpApprovalRequestItem(
            item_id="q", server_label="docs", name="search", arguments={"q": 1}
        )
    )


def test_items_voicewire_does_not_represent_reach_wildcard_only() -> None:
    tools = {"id": "l", "type": "mcp_list_tools", "server_label": "docs", "tools": []}
    assert parse({"type": "conversation.item.done", "previous_item_id": None, "item": tools}) == []


def test_output_item_completed_function_call() -> None:
    call = {
        "id": "f",
        "type": "function_call",
        "status": "completed",
        "name": "get_weather",
        "call_id": "c1",
        "arguments": '{"city":"Paris"}',
    }
    events = parse(
        {"type": "response.output_item.done", "response_id": "r", "output_index": 0, "item": call}
    )
    assert events == [
        ItemUpdateEvent(
            item=FunctionCallItem(
                item_id="f",
                status="in_progress",
                name="get_weather",
                call_id="c1",
                arguments='{"city":"Paris"}',
            )
        ),
        FunctionCallEvent(
            name="get_weather",
            call_id="c1",
            arguments='{"city":"Paris"}',
            item_id="f",
            response_id="r",
        ),
    ]


def test_output_item_in_progress_function_call_is_silent() -> None:
    call = {
        "id": "f",
        "type": "function_call",
        "status": "in_progress",
        "name": "n",
        "call_id": "c",
        "arguments": "",
    }
    assert (
        parse(
            {
                "type": "response.output_item.added",
                "response_id": "r",
                "output_index": 0,
                "item": call,
            }
        )
        == []
    )


def test_output_item_message_and_mcp_call() -> None:
    message = _message("a", "assistant", [])
    event = only(
        parse(
            {
                "type": "response.output_item.added",
                "response_id": "r",
                "output_index": 0,
                "item": message,
            }
        )
    )
    assert event == ItemUpdateEvent(item=AssistantMessageItem(item_id="a", status="in_progress"))
    mcp = {"id": "m", "type": "mcp_call", "name": "s", "arguments": "{}"}
    event = only(
        parse(
            {
                "type": "response.output_item.done",
                "response_id": "r",
                "output_index": 0,
                "item": mcp,
            }
        )
    )
    assert event.item.status == "completed"


def test_item_deleted() -> None:
    assert only(parse({"type": "conversation.item.deleted", "item_id": "x"})) == ItemDeletedEvent(
        item_id="x"
    )


def test_server_error() -> None:
    raw = {
        "type": "error",
        "event_id": "event_E3",
        "error": {
            "type": "invalid_request_error",
            "code": "response_cancel_not_active",
            "message": "Cancellation failed: no active response found",
            "param": None,
            "event_id": None,
        },
    }
    event = only(parse(raw))
    assert event == ErrorEvent(
        message="Cancellation failed: no active response found",
        source="server",
        code="response_cancel_not_active",
        details=raw,
    )


def test_server_error_without_message_or_code() -> None:
    event = only(parse({"type": "error", "error": {"type": "server_error", "code": None}}))
    assert event.message == "server error (server_error)"
    assert event.code is None
    assert only(parse({"type": "error"})).message == "server error"


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "rate_limits.updated", "rate_limits": []},
        {"type": "response.content_part.added", **IDS, "part": {"type": "audio"}},
        {"type": "input_audio_buffer.committed", "item_id": "i", "previous_item_id": None},
        {"type": "response.function_call_arguments.delta", **IDS, "call_id": "c", "delta": "{"},
        {"type": "something.new", "anything": [1, 2]},
        {"type": "session.created", "session": {"type": "realtime"}},
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 1, "item_id": "i"},
        {
            "type": "conversation.item.truncated",
            "item_id": "i",
            "content_index": 0,
            "audio_end_ms": 5,
        },
    ],
)
def test_other_events_reach_wildcard_only(raw: dict[str, Any]) -> None:
    parsed = parse_server_frame(json.dumps(raw))
    assert parsed.usable
    assert parse(raw) == []


# --- unusable input ---------------------------------------------------------------------------


def _single_error(frame: str | bytes, code: str) -> tuple[Any, ErrorEvent]:
    parsed = parse_server_frame(frame)
    error = parsed.events[-1]
    assert isinstance(error, ErrorEvent)
    assert error.source == "transport"
    assert error.code == code
    assert isinstance(error.error, InvalidServerEventError)
    assert error.error.code == code
    assert parsed.error is error.error
    assert not parsed.usable
    return parsed, error


@pytest.mark.parametrize("frame", ["", "nope", '{"type": "error"', b"\xff\xfe\x00"])
def test_invalid_json(frame: str | bytes) -> None:
    parsed, error = _single_error(frame, "invalid_json")
    assert parsed.events == (error,)
    assert parsed.message is None
    assert error.details["frame_length"] == len(frame)


def test_invalid_json_keeps_only_a_preview_of_a_large_frame() -> None:
    frame = "x" * (FRAME_PREVIEW_CHARS * 3)
    _, error = _single_error(frame, "invalid_json")
    assert len(error.details["frame"]) <= FRAME_PREVIEW_CHARS + 3
    assert error.details["frame_length"] == len(frame)


@pytest.mark.parametrize("frame", ["[1, 2]", "42", '"text"', "null", "true"])
def test_json_that_is_not_an_object(frame: str) -> None:
    parsed, _ = _single_error(frame, "invalid_event")
    assert len(parsed.events) == 1


@pytest.mark.parametrize("raw", [{}, {"type": 5}, {"type": ""}, {"event_id": "e"}])
def test_object_without_a_type_is_delivered_then_reported(raw: dict[str, Any]) -> None:
    parsed, _ = _single_error(json.dumps(raw), "invalid_event")
    assert isinstance(parsed.events[0], RawServerEvent)
    assert len(parsed.events) == 2


def test_bytes_frame_is_read_as_utf8() -> None:
    parsed = parse_server_frame('{"type":"conversation.item.deleted","item_id":"é"}'.encode())
    assert parsed.events[1] == ItemDeletedEvent(item_id="é")


def test_bad_base64_audio() -> None:
    raw = {"type": "response.output_audio.delta", **IDS, "delta": "not base64!"}
    parsed, error = _single_error(json.dumps(raw), "invalid_base64")
    assert isinstance(parsed.events[0], RawServerEvent)
    assert error.details == {"event": raw}
    assert not any(isinstance(e, AudioEvent) for e in parsed.events)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "response.output_audio.delta", "item_id": "i", "content_index": 0}, "delta"),
        ({"type": "response.output_audio.delta", "item_id": "i", "delta": ""}, "content_index"),
        (
            {
                "type": "response.output_audio.delta",
                "item_id": "i",
                "content_index": "0",
                "delta": "",
            },
            "content_index",
        ),
        (
            {
                "type": "response.output_audio.delta",
                "item_id": "i",
                "content_index": True,
                "delta": "",
            },
            "content_index",
        ),
        ({"type": "response.output_audio.delta", "content_index": 0, "delta": ""}, "item_id"),
        (
            {"type": "response.output_audio.delta", **IDS, "response_id": 7, "delta": ""},
            "response_id",
        ),
        ({"type": "response.output_audio.done", "item_id": "i"}, "content_index"),
        ({"type": "response.output_audio_transcript.delta", "item_id": "i"}, "delta"),
        ({"type": "response.output_text.delta", "delta": "x"}, "item_id"),
        ({"type": "response.created"}, "response"),
        ({"type": "response.done", "response": None}, "response"),
        ({"type": "conversation.item.added", "item": "x"}, "item"),
        ({"type": "conversation.item.done"}, "item"),
        ({"type": "conversation.item.deleted"}, "item_id"),
        ({"type": "response.output_item.done", "response_id": "r"}, "item"),
        ({"type": "session.updated"}, "session"),
        ({"type": "session.created", "session": []}, "session"),
        ({"type": "conversation.item.truncated", "content_index": 0}, "item_id"),
        ({"type": "conversation.item.input_audio_transcription.completed"}, "item_id"),
    ],
)
def test_known_type_missing_or_mistyped_field(raw: dict[str, Any], field: str) -> None:
    parsed, error = _single_error(json.dumps(raw), "invalid_event")
    assert repr(field) in error.message
    assert error.details == {"event": raw}
    assert len(parsed.events) == 2


@pytest.mark.parametrize(
    "item",
    [
        {"type": "message", "role": "user", "content": []},
        {"id": "x", "type": "message", "role": "robot", "content": []},
        {"id": "x", "type": "message", "role": "user", "status": "weird", "content": []},
        {
            "id": "x",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "input_text", "text": "?"}],
        },
        {"id": "x", "type": "function_call", "call_id": "c"},
    ],
)
def test_unrepresentable_item_is_reported(item: dict[str, Any]) -> None:
    raw = {"type": "conversation.item.done", "previous_item_id": None, "item": item}
    _, error = _single_error(json.dumps(raw), "invalid_event")
    assert "item" in error.message


def test_known_types_listed() -> None:
    assert "response.output_audio.delta" in KNOWN_TYPES
    assert "response.audio.delta" not in KNOWN_TYPES  # beta names are not GA
