"""Client event builders, and every frame the protocol layer builds, against the official models.

The ``openai`` package's pydantic models accept unknown keys (``extra="allow"``), so the strict
validator (the ``validate_client_event`` fixture of ``conftest.py``, shared with the transport
tests) also walks ``model_extra`` recursively: a key the official model does not declare fails
the test.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from voicewire.config import (
    DISABLED,
    FunctionTool,
    NoiseReduction,
    SessionConfig,
    TracingConfig,
    Transcription,
    TurnDetection,
)
from voicewire.events import FunctionCallEvent
from voicewire.items import (
    AssistantMessageItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputAudio,
    InputImage,
    InputText,
    OutputAudio,
    OutputText,
    RealtimeItem,
    SystemMessageItem,
    UserMessageItem,
)
from voicewire_openai_ws.protocol import RealtimeProtocol
from voicewire_openai_ws.protocol import client_events as ce
from voicewire_openai_ws.protocol.conversation import ConversationState
from voicewire_openai_ws.protocol.frames import encode_frame
from voicewire_openai_ws.protocol.history import diff_history
from voicewire_openai_ws.protocol.session_payload import build_session_payload
from voicewire_openai_ws.protocol.tracing import decide_tracing_update, desired_tracing

if TYPE_CHECKING:
    from tests.openai_ws.conftest import EventValidator


# --- the validator itself can fail ------------------------------------------------------------


def test_validator_rejects_unknown_type_missing_field_and_extra_key(
    validate_client_event: EventValidator,
) -> None:
    with pytest.raises(KeyError):
        validate_client_event({"type": "response.audio.delta"})
    with pytest.raises(ValidationError):
        validate_client_event({"type": "input_audio_buffer.append"})
    with pytest.raises(AssertionError, match=r"\$\.response\.modalities"):
        validate_client_event({"type": "response.create", "response": {"modalities": ["audio"]}})


# --- every builder ----------------------------------------------------------------------------


def test_session_update(validate_client_event: EventValidator) -> None:
    event = ce.session_update({"type": "realtime", "instructions": "hi"}, event_id="e1")
    assert event == {
        "type": "session.update",
        "event_id": "e1",
        "session": {"type": "realtime", "instructions": "hi"},
    }
    validate_client_event(event)


def test_session_update_requires_session_type() -> None:
    with pytest.raises(ValueError, match=r"session\.type"):
        ce.session_update({"instructions": "hi"})


def test_input_audio_buffer_append_encodes_base64(validate_client_event: EventValidator) -> None:
    event = ce.input_audio_buffer_append(b"\x00\x01\xff")
    assert event == {"type": "input_audio_buffer.append", "audio": "AAH/"}
    assert base64.b64decode(event["audio"]) == b"\x00\x01\xff"
    validate_client_event(event)
    validate_client_event(ce.input_audio_buffer_append(memoryview(b"ab"), event_id="x"))


def test_input_audio_buffer_append_refuses_non_bytes_and_oversize() -> None:
    with pytest.raises(TypeError):
        ce.input_audio_buffer_append("AAAA")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="per append"):
        ce.input_audio_buffer_append(bytes(ce.MAX_APPEND_BYTES + 1))


def test_append_chunks_split_large_audio_and_skip_empty(
    validate_client_event: EventValidator,
) -> None:
    assert ce.input_audio_buffer_append_chunks(b"") == []
    data = bytes(range(256)) * ((ce.MAX_APPEND_BYTES * 2) // 256 + 1)
    events = ce.input_audio_buffer_append_chunks(data)
    assert len(events) == 3
    assert b"".join(base64.b64decode(e["audio"]) for e in events) == data
    for event in events:
        validate_client_event(event)


@pytest.mark.parametrize(
    "audio",
    [b"", b"\xff", bytes(range(256)) * 5, bytearray(b"\x01\x02\x03"), memoryview(bytes(160))],
)
def test_append_frames_are_the_encoded_append_events(audio: bytes) -> None:
    expected = [encode_frame(event) for event in ce.input_audio_buffer_append_chunks(audio)]
    assert ce.input_audio_buffer_append_frames(audio) == expected


def test_append_frames_split_large_audio_like_the_events() -> None:
    data = bytes(range(256)) * ((ce.MAX_APPEND_BYTES * 2) // 256 + 1)
    frames = ce.input_audio_buffer_append_frames(data)
    assert len(frames) == 3
    assert b"".join(base64.b64decode(json.loads(f)["audio"]) for f in frames) == data
    with pytest.raises(TypeError):
        ce.input_audio_buffer_append_frames("AAAA")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "event",
    [
        ce.input_audio_buffer_commit(),
        ce.input_audio_buffer_commit(event_id="c"),
        ce.input_audio_buffer_clear(),
        ce.output_audio_buffer_clear(),
        ce.response_cancel(),
        ce.response_cancel("resp_1", event_id="x"),
        ce.response_create(),
        ce.response_create({"instructions": "Be brief.", "output_modalities": ["text"]}),
        ce.response_create({"conversation": "none", "metadata": {"k": "v"}}, event_id="r"),
        ce.conversation_item_retrieve("item_1"),
        ce.conversation_item_delete("item_1", event_id="d"),
        ce.conversation_item_truncate("item_1", 0, 1840),
    ],
)
def test_simple_builders_validate(
    event: dict[str, Any], validate_client_event: EventValidator
) -> None:
    validate_client_event(event)


def test_simple_builders_shapes() -> None:
    assert ce.input_audio_buffer_commit() == {"type": "input_audio_buffer.commit"}
    assert ce.response_cancel("r") == {"type": "response.cancel", "response_id": "r"}
    assert ce.response_create() == {"type": "response.create"}
    assert ce.conversation_item_truncate("i", 0, 5) == {
        "type": "conversation.item.truncate",
        "item_id": "i",
        "content_index": 0,
        "audio_end_ms": 5,
    }


@pytest.mark.parametrize("bad", [-1, 1.5, 2.0, True, "3", None])
def test_truncate_refuses_non_integer_or_negative(bad: Any) -> None:
    with pytest.raises(ValueError, match="audio_end_ms"):
        ce.conversation_item_truncate("i", 0, bad)


def test_ids_must_be_non_empty() -> None:
    with pytest.raises(ValueError, match="item_id"):
        ce.conversation_item_delete("")
    with pytest.raises(ValueError, match="item_id"):
        ce.conversation_item_retrieve(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="call_id"):
        ce.function_call_output_item("", "out")
    with pytest.raises(TypeError):
        ce.function_call_output_item("c", {"not": "a string"})  # type: ignore[arg-type]


def test_user_text_message(validate_client_event: EventValidator) -> None:
    event = ce.conversation_item_create(ce.user_message_item("hello"))
    assert event == {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hello"}],
        },
    }
    validate_client_event(event)


def test_user_message_item_with_every_part(validate_client_event: EventValidator) -> None:
    item = UserMessageItem(
        item_id="",
        content=[
            InputText(text="look"),
            InputImage(image_url="data:image/png;base64,AAAA", detail="low"),
            InputAudio(audio="AAAA"),
        ],
    )
    event = ce.conversation_item_create(ce.user_message_item(item), previous_item_id="root")
    assert event["previous_item_id"] == "root"
    assert "id" not in event["item"]
    validate_client_event(event)


def test_user_message_item_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        ce.user_message_item(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "item",
    [
        SystemMessageItem(item_id="s1", content=[InputText(text="be kind")]),
        AssistantMessageItem(item_id="a1", status="completed", content=[OutputText(text="ok")]),
        FunctionCallItem(item_id="f1", name="get_weather", call_id="c1", arguments="{}"),
        FunctionCallOutputItem(item_id="o1", call_id="c1", output='{"t":21}'),
    ],
)
def test_conversation_item_create_from_items(
    item: Any, validate_client_event: EventValidator
) -> None:
    event = ce.conversation_item_create(item, event_id="e")
    assert event["item"]["id"] == item.item_id
    validate_client_event(event)


def test_function_call_output_item(validate_client_event: EventValidator) -> None:
    event = ce.conversation_item_create(ce.function_call_output_item("call_1", '{"ok":true}'))
    assert event["item"] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"ok":true}',
    }
    validate_client_event(event)


# --- everything else the layer puts on the wire -----------------------------------------------

_CONFIGS = [
    None,
    SessionConfig(),
    SessionConfig(
        instructions="",
        model="gpt-realtime",
        voice="marin",
        output_modalities="text",
        input_audio_format="audio/pcmu",
        output_audio_format="g711_alaw",
        turn_detection=TurnDetection(
            type="server_vad",
            threshold=0.0,
            prefix_padding_ms=0,
            silence_duration_ms=500,
            idle_timeout_ms=0,
            create_response=False,
            interrupt_response=False,
        ),
        transcription=Transcription(model="gpt-4o-transcribe", language="fr", prompt=""),
        noise_reduction=NoiseReduction(type="far_field"),
        speed=1.5,
        tools=(
            FunctionTool(
                name="get_weather",
                description="Weather for a city",
                parameters={"type": "object", "properties": {"city": {"type": "string"}}},
            ),
            {
                "type": "mcp",
                "server_label": "docs",
                "server_url": "https://example.invalid/mcp",
                "require_approval": "never",
                "handler": "dropped",
            },
        ),
        tool_choice="required",
    ),
    SessionConfig(
        turn_detection=DISABLED,
        transcription=DISABLED,
        noise_reduction=DISABLED,
        tools=(),
        tool_choice={"type": "function", "name": "x"},
    ),
    SessionConfig(
        turn_detection=TurnDetection(eagerness="high", extras={"interrupt_response": True}),
        transcription=Transcription(model="gpt-4o-transcribe", extras={"delay": "low"}),
        provider_extras={"max_output_tokens": 512, "truncation": "disabled"},
    ),
]


@pytest.mark.parametrize("config", _CONFIGS)
def test_session_payloads_validate(
    config: SessionConfig | None, validate_client_event: EventValidator
) -> None:
    validate_client_event(ce.session_update(build_session_payload(config, model="gpt-realtime")))


@pytest.mark.parametrize(
    "tracing",
    ["auto", None, DISABLED, TracingConfig(workflow_name="w", group_id="g", metadata={"k": 1})],
)
def test_tracing_updates_validate(tracing: Any, validate_client_event: EventValidator) -> None:
    decision = decide_tracing_update(desired_tracing(tracing), None)
    assert decision.event is not None
    validate_client_event(decision.event)


def test_history_and_replay_events_validate(
    validate_client_event: EventValidator,
) -> None:
    old = [SystemMessageItem(item_id="s", content=[InputText(text="a")])]
    new: list[RealtimeItem] = [
        SystemMessageItem(item_id="s", content=[InputText(text="b")]),
        UserMessageItem(item_id="u", status="completed", content=[InputText(text="hi")]),
        AssistantMessageItem(item_id="a", status="completed", content=[OutputText(text="yo")]),
    ]
    for event in diff_history(old, new):
        validate_client_event(event)
    state = ConversationState()
    items: list[RealtimeItem] = [
        *new,
        UserMessageItem(item_id="v", content=[InputAudio(transcript="spoken")]),
        AssistantMessageItem(
            item_id="b", status="in_progress", content=[OutputAudio(transcript="said")]
        ),
        FunctionCallItem(item_id="f", status="completed", name="n", call_id="c", arguments="{}"),
        FunctionCallOutputItem(item_id="o", call_id="c", output="1"),
    ]
    for item in items:
        state.upsert(item)
    frames = state.replay_frames(SessionConfig(voice="marin"), model="gpt-realtime")
    assert len(frames) == 1 + 7
    for event in frames:
        validate_client_event(event)


def test_protocol_frames_validate(validate_client_event: EventValidator) -> None:
    protocol = RealtimeProtocol(model="gpt-realtime")
    protocol.initial_frames(SessionConfig(input_audio_format="audio/pcmu"))
    protocol.send_audio(b"\xff" * 160, commit=True)
    protocol.send_message("hi", {"event_id": "m1"})
    protocol.receive(json.dumps({"type": "response.created", "response": {"id": "r1"}}), 0)
    protocol.send_function_call_output(
        FunctionCallEvent(name="n", call_id="c", arguments="{}", item_id="f"), "out"
    )
    protocol.request_response({"instructions": "short"})
    protocol.cancel_response()
    protocol.truncate("item_1", 0, 10)
    protocol.update_session_config(SessionConfig(voice="cedar"))
    frames = protocol.data_to_send()
    assert len(frames) == 9
    for frame in frames:
        validate_client_event(json.loads(frame))
