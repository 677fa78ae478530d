"""The confirmed conversation: ordering, updates, deletions, and replay on a new connection."""

from __future__ import annotations

from typing import Any

from voicewire.config import SessionConfig
from voicewire.items import (
    AssistantMessageItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputAudio,
    InputImage,
    InputText,
    McpCallItem,
    OutputAudio,
    OutputText,
    SystemMessageItem,
    UserMessageItem,
)
from voicewire_openai_ws.protocol.conversation import ConversationState, replayable


def added(item: dict[str, Any], previous: str | None, kind: str = "added") -> dict[str, Any]:
    return {"type": f"conversation.item.{kind}", "previous_item_id": previous, "item": item}


def msg(item_id: str, role: str, *content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": role, "content": list(content), **extra}


def ids(state: ConversationState) -> list[str]:
    return [item.item_id for item in state.history()]


def test_items_in_order_and_inserted_after_their_previous() -> None:
    state = ConversationState()
    assert state.apply(added(msg("u1", "user"), None))
    assert state.apply(added(msg("a1", "assistant"), "u1"))
    assert state.apply(added(msg("x", "user"), "u1"))  # inserted between u1 and a1
    assert state.apply(added(msg("late", "user"), "unknown"))  # unknown predecessor: at the end
    assert ids(state) == ["u1", "x", "a1", "late"]
    assert len(state) == 4


def test_done_and_retrieved_replace_in_place_keeping_the_predecessor() -> None:
    state = ConversationState()
    state.apply(added(msg("u1", "user"), None))
    state.apply(added(msg("a1", "assistant"), "u1"))
    state.apply(
        added(msg("a1", "assistant", {"type": "output_audio", "transcript": "Hi"}), "u1", "done")
    )
    retrieved = {
        "type": "conversation.item.retrieved",
        "item": msg("u1", "user", {"type": "input_audio", "audio": "AAAA", "transcript": "hello"}),
    }
    assert state.apply(retrieved)
    history = state.history()
    assert ids(state) == ["u1", "a1"]
    assert history[1].previous_item_id == "u1"
    assert history[1] == AssistantMessageItem(
        item_id="a1",
        previous_item_id="u1",
        status="completed",
        content=[OutputAudio(transcript="Hi")],
    )
    assert history[0] == UserMessageItem(
        item_id="u1", status="completed", content=[InputAudio(audio=None, transcript="hello")]
    )  # audio not kept


def test_deleted_and_other_events() -> None:
    state = ConversationState()
    state.apply(added(msg("u1", "user"), None))
    assert state.apply({"type": "conversation.item.deleted", "item_id": "u1"})
    assert not state.apply({"type": "conversation.item.deleted", "item_id": "u1"})
    assert not state.apply({"type": "response.done", "response": {}})
    assert not state.apply({"type": "conversation.item.added", "item": "nope"})
    assert not state.apply(added({"id": "l", "type": "mcp_list_tools"}, None))
    assert state.history() == []


def test_function_calls_and_outputs_are_tracked() -> None:
    state = ConversationState()
    call = {
        "id": "f",
        "type": "function_call",
        "status": "completed",
        "name": "n",
        "call_id": "c",
        "arguments": "{}",
    }
    state.apply(added(call, None, "done"))
    state.apply(
        added({"id": "o", "type": "function_call_output", "call_id": "c", "output": "1"}, "f")
    )
    assert [type(i) for i in state.history()] == [FunctionCallItem, FunctionCallOutputItem]


def test_clear() -> None:
    state = ConversationState()
    state.apply(added(msg("u1", "user"), None))
    state.clear()
    assert state.history() == []


def test_replayable_conversions() -> None:
    system = SystemMessageItem(item_id="s", content=[InputText(text="rules")])
    assert replayable(system) == system
    spoken = UserMessageItem(
        item_id="u",
        status="completed",
        content=[
            InputAudio(transcript="hello"),
            InputAudio(),
            InputImage(image_url="https://x/i.png"),
        ],
    )
    assert replayable(spoken) == UserMessageItem(
        item_id="u",
        status="completed",
        content=[InputText(text="hello"), InputImage(image_url="https://x/i.png")],
    )
    assert replayable(UserMessageItem(item_id="u", content=[InputAudio()])) is None
    said = AssistantMessageItem(
        item_id="a",
        status="in_progress",
        content=[OutputAudio(transcript="Sure"), OutputText(text="t")],
    )
    assert replayable(said) == AssistantMessageItem(
        item_id="a", status="incomplete", content=[OutputText(text="Sure"), OutputText(text="t")]
    )
    assert replayable(AssistantMessageItem(item_id="a", content=[OutputAudio()])) is None
    call = FunctionCallItem(item_id="f", status="completed", name="n", call_id="c", arguments="{}")
    assert replayable(call) == call
    output = FunctionCallOutputItem(item_id="o", call_id="c", output="1")
    assert replayable(output) == output
    assert replayable(McpCallItem(item_id="m", name="n", arguments="{}")) is None


def test_replay_frames_session_first_then_items_in_order() -> None:
    state = ConversationState()
    state.apply(added(msg("u1", "user", {"type": "input_text", "text": "hi"}), None))
    state.apply(
        added(msg("a1", "assistant", {"type": "output_audio", "transcript": "yo"}), "u1", "done")
    )
    state.apply(added(msg("u2", "user", {"type": "input_audio", "transcript": None}), "a1", "done"))
    frames = state.replay_frames(SessionConfig(instructions="again"), model="gpt-realtime")
    assert frames[0]["type"] == "session.update"
    assert frames[0]["session"]["instructions"] == "again"
    assert frames[0]["session"]["model"] == "gpt-realtime"
    assert frames[1:] == [
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
                "id": "u1",
                "status": "incomplete",  # added, never done: in progress when the socket went
            },
        },
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "yo"}],
                "id": "a1",
                "status": "completed",
            },
        },
    ]
