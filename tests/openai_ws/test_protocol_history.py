"""History diff: deletes then creates, and the refusal that comes before anything is produced."""

from __future__ import annotations

import logging

import pytest

from voicewire.items import (
    AssistantMessageItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputText,
    McpCallItem,
    OutputAudio,
    OutputText,
    RealtimeItem,
    SystemMessageItem,
    UserMessageItem,
)
from voicewire_openai_ws.protocol import RealtimeProtocol
from voicewire_openai_ws.protocol.errors import HistoryReplayError
from voicewire_openai_ws.protocol.history import diff_history


def user(item_id: str, text: str = "hi", status: str | None = "completed") -> UserMessageItem:
    return UserMessageItem(item_id=item_id, status=status, content=[InputText(text=text)])  # type: ignore[arg-type]


def assistant_audio(item_id: str, transcript: str = "said") -> AssistantMessageItem:
    return AssistantMessageItem(
        item_id=item_id, status="completed", content=[OutputAudio(transcript=transcript)]
    )


def test_no_change_no_events() -> None:
    history: list[RealtimeItem] = [user("u1"), assistant_audio("a1")]
    assert diff_history(history, list(history)) == []


def test_removal_addition_and_update_in_order() -> None:
    old = [user("u1"), user("u2"), user("u3")]
    new = [user("u1", "changed"), user("u3"), user("u4", "new")]
    events = diff_history(old, new)
    assert [(e["type"], e.get("item_id") or e["item"]["id"]) for e in events] == [
        ("conversation.item.delete", "u2"),
        ("conversation.item.delete", "u1"),
        ("conversation.item.create", "u4"),
        ("conversation.item.create", "u1"),
    ]
    assert events[3]["item"]["content"] == [{"type": "input_text", "text": "changed"}]
    assert all("previous_item_id" not in e for e in events)


def test_groups_follow_list_order() -> None:
    old = [user("a"), user("b"), user("c"), user("d")]
    new = [user("d", "x"), user("c", "x"), user("n2"), user("n1")]
    events = diff_history(old, new)
    ids = [e.get("item_id") or e["item"]["id"] for e in events]
    assert ids == ["a", "b", "d", "c", "n2", "n1", "d", "c"]


def test_created_message_shapes_status_rules() -> None:
    system = SystemMessageItem(item_id="s", content=[InputText(text="rules")])
    no_status = user("u", status=None)
    events = diff_history([], [system, no_status, user("v")])
    assert events[0]["item"] == {
        "type": "message",
        "role": "system",
        "content": [{"type": "input_text", "text": "rules"}],
        "id": "s",
    }
    assert "status" not in events[1]["item"]
    assert events[2]["item"]["status"] == "completed"


def test_item_without_id_is_always_added_without_one() -> None:
    events = diff_history([user("u1")], [user("u1"), user("")])
    assert len(events) == 1
    assert "id" not in events[0]["item"]


def test_repeated_id_counts_once() -> None:
    events = diff_history([], [user("u1"), user("u1", "again")])
    assert len(events) == 1


def test_refuses_added_assistant_audio_before_producing_anything() -> None:
    protocol = RealtimeProtocol()
    old = [user("u1"), user("u2")]
    new: list[RealtimeItem] = [user("u1", "changed"), assistant_audio("a1")]
    with pytest.raises(HistoryReplayError, match="output_audio") as info:
        protocol.reset_history(old, new)
    assert info.value.item_id == "a1"
    assert protocol.data_to_send() == []  # not even the deletes that came first in the diff


def test_refuses_changed_assistant_audio() -> None:
    with pytest.raises(HistoryReplayError):
        diff_history([assistant_audio("a1", "one")], [assistant_audio("a1", "two")])


def test_unchanged_assistant_audio_is_fine_and_removal_works() -> None:
    assert diff_history([assistant_audio("a1")], [assistant_audio("a1")]) == []
    assert diff_history([assistant_audio("a1")], []) == [
        {"type": "conversation.item.delete", "item_id": "a1"}
    ]


def test_assistant_text_is_recreated() -> None:
    item = AssistantMessageItem(item_id="a1", status="completed", content=[OutputText(text="t")])
    [event] = diff_history([], [item])
    assert event["item"]["content"] == [{"type": "output_text", "text": "t"}]


def test_function_calls_and_mcp_are_not_recreated_nor_deleted_when_changed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = FunctionCallItem(item_id="f", name="n", call_id="c", arguments="{}")
    output = FunctionCallOutputItem(item_id="o", call_id="c", output="1")
    mcp = McpCallItem(item_id="m", name="n", arguments="{}")
    changed_call = FunctionCallItem(item_id="f", name="n", call_id="c", arguments="{}", output="x")
    with caplog.at_level(logging.WARNING):
        events = diff_history([call], [changed_call, output, mcp])
    assert events == []
    assert caplog.text.count("cannot be added or changed") == 3


def test_removed_function_call_is_deleted() -> None:
    call = FunctionCallItem(item_id="f", name="n", call_id="c", arguments="{}")
    assert diff_history([call], []) == [{"type": "conversation.item.delete", "item_id": "f"}]
