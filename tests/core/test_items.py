"""Conversation items: construction checks, reprs, and the wire translation both ways."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicewire.errors import ConfigError, ProtocolError
from voicewire.items import (
    AssistantMessageItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputAudio,
    InputImage,
    InputText,
    McpApprovalRequestItem,
    McpCallItem,
    OutputAudio,
    OutputText,
    RealtimeItem,
    SystemMessageItem,
    UserMessageItem,
    item_from_wire,
    item_to_wire,
)

# --- construction ----------------------------------------------------------------------------


def test_content_parts_carry_their_discriminator() -> None:
    assert InputText(text="a").type == "input_text"
    assert InputAudio().type == "input_audio"
    assert InputImage(image_url="https://x/y.png").type == "input_image"
    assert OutputText(text="a").type == "output_text"
    assert OutputAudio().type == "output_audio"


def test_discriminator_cannot_be_passed() -> None:
    with pytest.raises(TypeError):
        InputText(type="output_text", text="a")  # type: ignore[call-arg]


def test_message_items_have_fixed_type_and_role() -> None:
    assert (SystemMessageItem(item_id="s").type, SystemMessageItem(item_id="s").role) == (
        "message",
        "system",
    )
    assert UserMessageItem(item_id="u").role == "user"
    assert AssistantMessageItem(item_id="a").role == "assistant"
    assert FunctionCallItem(item_id="f", name="n", call_id="c", arguments="{}").type == (
        "function_call"
    )
    assert FunctionCallOutputItem(item_id="o", call_id="c", output="x").type == (
        "function_call_output"
    )
    assert McpApprovalRequestItem(item_id="m", server_label="s", name="n").type == (
        "mcp_approval_request"
    )


def test_content_list_becomes_tuple() -> None:
    item = UserMessageItem(item_id="u", content=[InputText(text="hi")])
    assert item.content == (InputText(text="hi"),)
    assert isinstance(item.content, tuple)


def test_items_are_frozen() -> None:
    item = UserMessageItem(item_id="u")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        item.item_id = "v"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: AssistantMessageItem(item_id="a", content=[InputText(text="x")]), "content"),  # type: ignore[list-item]
        (lambda: UserMessageItem(item_id="u", content=[OutputAudio()]), "content"),  # type: ignore[list-item]
        (lambda: SystemMessageItem(item_id="s", content=[InputAudio()]), "content"),  # type: ignore[list-item]
        (lambda: UserMessageItem(item_id="u", status="done"), "status"),  # type: ignore[arg-type]
        (lambda: UserMessageItem(item_id=3), "item_id"),  # type: ignore[arg-type]
        (lambda: UserMessageItem(item_id="u", content=InputText(text="x")), "content"),  # type: ignore[arg-type]
        (lambda: UserMessageItem(item_id="u", content="hello"), "content"),  # type: ignore[arg-type]
        (lambda: UserMessageItem(item_id="u", content=5), "content"),  # type: ignore[arg-type]
        (
            lambda: McpApprovalRequestItem(item_id="m", server_label="s", name="n", arguments="{}"),  # type: ignore[arg-type]
            "arguments",
        ),
        (lambda: InputText(text=None), "text"),  # type: ignore[arg-type]
        (lambda: McpCallItem(item_id="m", type="tool", name="n", arguments=""), "type"),  # type: ignore[arg-type]
        (
            lambda: McpApprovalRequestItem(item_id="m", server_label="s", name="n", approved=1),  # type: ignore[arg-type]
            "approved",
        ),
    ],
)
def test_invalid_values_raise_config_error_naming_the_field(build: Any, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_wrong_part_message_names_the_part() -> None:
    with pytest.raises(ValueError, match=r"part 1 is InputText.*OutputText, OutputAudio"):
        AssistantMessageItem(
            item_id="a",
            content=[OutputText(text="ok"), InputText(text="x")],  # type: ignore[list-item]
        )


def test_reprs_hide_base64_audio() -> None:
    secret = "QUJD" * 500
    for part in (InputAudio(audio=secret, transcript="hello"), OutputAudio(audio=secret)):
        text = repr(part)
        assert secret not in text
        assert "<2000 base64 chars>" in text
    assert "hello" in repr(InputAudio(audio=secret, transcript="hello"))
    item = UserMessageItem(item_id="u", content=[InputAudio(audio=secret)])
    assert secret not in repr(item)


def test_repr_hides_data_url_payload_but_shows_plain_urls() -> None:
    payload = "iVBORw0KGgo" * 100
    image = InputImage(image_url=f"data:image/png;base64,{payload}")
    assert payload not in repr(image)
    assert "data:image/png;base64" in repr(image)
    assert "https://example.invalid/a.png" in repr(
        InputImage(image_url="https://example.invalid/a.png")
    )


def test_approval_arguments_are_copied() -> None:
    arguments = {"q": 1}
    item = McpApprovalRequestItem(item_id="m", server_label="s", name="n", arguments=arguments)
    arguments["q"] = 2
    assert item.arguments == {"q": 1}


# --- item_from_wire --------------------------------------------------------------------------


def test_assistant_audio_and_text_parts_from_ga_and_beta_names() -> None:
    item = item_from_wire(
        {
            "id": "item_1",
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "incomplete",
            "content": [
                {"type": "audio", "transcript": "hi"},
                {"type": "output_audio", "audio": "AAAA", "transcript": "there"},
                {"type": "text", "text": "a"},
                {"type": "output_text", "text": "b"},
            ],
        }
    )
    assert item == AssistantMessageItem(
        item_id="item_1",
        status="incomplete",
        content=[
            OutputAudio(transcript="hi"),
            OutputAudio(audio="AAAA", transcript="there"),
            OutputText(text="a"),
            OutputText(text="b"),
        ],
    )


def test_user_audio_keeps_transcript_and_status_defaults() -> None:
    wire = {
        "id": "item_2",
        "type": "message",
        "role": "user",
        "previous_item_id": "item_1",
        "content": [{"type": "input_audio", "transcript": "hello there"}],
    }
    item = item_from_wire(wire, default_status="completed")
    assert item == UserMessageItem(
        item_id="item_2",
        previous_item_id="item_1",
        status="completed",
        content=[InputAudio(transcript="hello there")],
    )
    assert isinstance(item_from_wire(wire), UserMessageItem)
    assert item_from_wire(wire).status is None  # type: ignore[union-attr]


def test_explicit_status_beats_default() -> None:
    wire = {"id": "i", "type": "message", "role": "assistant", "status": "in_progress"}
    item = item_from_wire(wire, default_status="completed")
    assert isinstance(item, AssistantMessageItem)
    assert item.status == "in_progress"
    assert item.content == ()


def test_system_message_drops_status() -> None:
    wire = {
        "id": "s",
        "type": "message",
        "role": "system",
        "status": "completed",
        "content": [{"type": "input_text", "text": "be brief"}],
    }
    assert item_from_wire(wire) == SystemMessageItem(
        item_id="s", content=[InputText(text="be brief")]
    )


def test_function_call_and_output() -> None:
    call = item_from_wire(
        {
            "id": "fc",
            "type": "function_call",
            "status": "completed",
            "name": "weather",
            "call_id": "call_1",
            "arguments": '{"city":"Paris"}',
        }
    )
    assert call == FunctionCallItem(
        item_id="fc",
        status="completed",
        name="weather",
        call_id="call_1",
        arguments='{"city":"Paris"}',
    )
    out = item_from_wire(
        {"id": "fo", "type": "function_call_output", "call_id": "call_1", "output": "sunny"}
    )
    assert out == FunctionCallOutputItem(item_id="fo", call_id="call_1", output="sunny")


def test_in_progress_function_call_without_arguments() -> None:
    item = item_from_wire(
        {"id": "fc", "type": "function_call", "name": "n", "call_id": "c"},
        default_status="in_progress",
    )
    assert isinstance(item, FunctionCallItem)
    assert (item.arguments, item.status) == ("", "in_progress")


def test_mcp_items() -> None:
    call = item_from_wire(
        {
            "id": "m1",
            "type": "mcp_tool_call",
            "server_label": "docs",
            "name": "search",
            "arguments": "{}",
            "output": "found",
        },
        default_status="completed",
    )
    assert call == McpCallItem(
        item_id="m1",
        type="mcp_tool_call",
        status="completed",
        name="search",
        arguments="{}",
        output="found",
    )
    request = item_from_wire(
        {
            "id": "m2",
            "type": "mcp_approval_request",
            "server_label": "docs",
            "name": "delete",
            "arguments": '{"path": "/x"}',
        }
    )
    assert request == McpApprovalRequestItem(
        item_id="m2", server_label="docs", name="delete", arguments={"path": "/x"}
    )
    empty = item_from_wire(
        {
            "id": "m3",
            "type": "mcp_approval_request",
            "server_label": "d",
            "name": "n",
            "arguments": "",
        }
    )
    assert isinstance(empty, McpApprovalRequestItem)
    assert empty.arguments == {}


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        ({"type": "message", "role": "user", "content": []}, "no string 'id'"),
        ({"id": "x", "type": "mcp_list_tools"}, "cannot represent.*mcp_list_tools"),
        ({"id": "x", "type": "message", "role": "developer"}, "unknown role 'developer'"),
        (
            {"id": "x", "type": "message", "role": "user", "content": [{"type": "item_reference"}]},
            "'item_reference' cannot be represented",
        ),
        (
            {
                "id": "x",
                "type": "message",
                "role": "assistant",
                "content": [{"type": "input_text"}],
            },
            "'input_text' cannot be represented",
        ),
        (
            {"id": "x", "type": "message", "role": "system", "content": [{"type": "input_audio"}]},
            "not input_text",
        ),
        ({"id": "x", "type": "message", "role": "user", "status": "weird"}, "unknown status"),
        ({"id": "x", "type": "message", "role": "user", "content": "hi"}, "must be a list"),
        ({"id": "x", "type": "function_call", "call_id": "c"}, "no 'name'"),
        ({"id": "x", "type": "function_call", "name": 5, "call_id": "c"}, "must be a string"),
        (
            {"id": "x", "type": "mcp_approval_request", "name": "n", "arguments": "{not json"},
            "not valid JSON",
        ),
        (
            {"id": "x", "type": "mcp_approval_request", "name": "n", "arguments": "[1]"},
            "JSON object",
        ),
    ],
)
def test_unrepresentable_shapes_raise_protocol_error(wire: dict[str, Any], match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        item_from_wire(wire)


def test_not_a_mapping_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        item_from_wire(["id", "x"])  # type: ignore[arg-type]


# --- item_to_wire ----------------------------------------------------------------------------


def test_message_wire_shape() -> None:
    item = UserMessageItem(
        item_id="u1",
        previous_item_id="p",
        status="completed",
        content=[
            InputText(text="look"),
            InputImage(image_url="https://example.invalid/i.png", detail="low"),
            InputAudio(audio="AAAA"),
        ],
    )
    assert item_to_wire(item) == {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "https://example.invalid/i.png", "detail": "low"},
            {"type": "input_audio", "audio": "AAAA"},
        ],
        "id": "u1",
        "status": "completed",
    }


def test_status_left_out_when_unset_and_id_left_out_when_empty() -> None:
    wire = item_to_wire(AssistantMessageItem(item_id="", content=[OutputText(text="x")]))
    assert wire == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "x"}],
    }


def test_function_call_output_wire_shape() -> None:
    assert item_to_wire(FunctionCallOutputItem(item_id="", call_id="c", output="42")) == {
        "type": "function_call_output",
        "call_id": "c",
        "output": "42",
    }


def test_function_call_wire_shape_omits_local_output() -> None:
    item = FunctionCallItem(
        item_id="f", status="completed", name="n", call_id="c", arguments="{}", output="done"
    )
    assert item_to_wire(item) == {
        "type": "function_call",
        "id": "f",
        "status": "completed",
        "name": "n",
        "call_id": "c",
        "arguments": "{}",
    }


def test_approval_request_arguments_are_a_json_string_on_the_wire() -> None:
    wire = item_to_wire(
        McpApprovalRequestItem(item_id="m", server_label="s", name="n", arguments={"a": [1, 2]})
    )
    assert isinstance(wire["arguments"], str)
    assert json.loads(wire["arguments"]) == {"a": [1, 2]}


def test_to_wire_output_is_json_serialisable_and_fresh() -> None:
    item = UserMessageItem(item_id="u", content=[InputText(text="x")])
    first = item_to_wire(item)
    first["content"].append({"type": "input_text", "text": "mutated"})
    assert item_to_wire(item)["content"] == [{"type": "input_text", "text": "x"}]
    json.dumps(item_to_wire(item))


def test_to_wire_rejects_non_items() -> None:
    with pytest.raises(TypeError):
        item_to_wire(InputText(text="x"))  # type: ignore[arg-type]


# --- round trip ------------------------------------------------------------------------------

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
texts = st.text(max_size=20)
opt_texts = st.none() | texts
b64 = st.none() | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/=", max_size=24)
statuses = st.none() | st.sampled_from(["in_progress", "completed", "incomplete"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)

input_text = st.builds(InputText, text=texts)
input_audio = st.builds(InputAudio, audio=b64, transcript=opt_texts)
input_image = st.builds(
    InputImage,
    image_url=st.sampled_from(["https://example.invalid/a.png", "data:image/png;base64,AAAA"]),
    detail=st.none() | st.sampled_from(["auto", "low", "high"]),
)
output_text = st.builds(OutputText, text=texts)
output_audio = st.builds(OutputAudio, audio=b64, transcript=opt_texts)

items: st.SearchStrategy[RealtimeItem] = st.one_of(
    st.builds(SystemMessageItem, item_id=ids, content=st.lists(input_text, max_size=3)),
    st.builds(
        UserMessageItem,
        item_id=ids,
        status=statuses,
        content=st.lists(input_text | input_audio | input_image, max_size=3),
    ),
    st.builds(
        AssistantMessageItem,
        item_id=ids,
        status=statuses,
        content=st.lists(output_text | output_audio, max_size=3),
    ),
    st.builds(
        FunctionCallItem, item_id=ids, status=statuses, name=ids, call_id=ids, arguments=texts
    ),
    st.builds(FunctionCallOutputItem, item_id=ids, call_id=ids, output=texts),
    st.builds(
        McpCallItem,
        item_id=ids,
        type=st.sampled_from(["mcp_call", "mcp_tool_call"]),
        status=statuses,
        name=ids,
        arguments=texts,
        output=opt_texts,
    ),
    st.builds(
        McpApprovalRequestItem,
        item_id=ids,
        server_label=ids,
        name=ids,
        arguments=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    ),
)


@given(items)
def test_round_trip_through_the_wire(item: RealtimeItem) -> None:
    wire = item_to_wire(item)
    # What goes on the wire must survive JSON, as it will in a real session.
    assert item_from_wire(json.loads(json.dumps(wire))) == item


@given(items, ids)
def test_previous_item_id_is_read_when_merged_in(item: RealtimeItem, previous: str) -> None:
    wire = {**item_to_wire(item), "previous_item_id": previous}
    assert item_from_wire(wire) == attrs.evolve(item, previous_item_id=previous)
