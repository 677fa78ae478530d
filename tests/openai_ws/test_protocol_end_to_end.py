"""The example sequences of the GA protocol (a: audio answer, b: barge-in, c: function call)
run through RealtimeProtocol, purely: frames in, events and frames out, a fake clock.

Server events are checked against the official server models (so the script is real GA), and
every frame the protocol sends against the official client models.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest

from voicewire.audio.formats import MULAW_8K
from voicewire.config import FunctionTool, SessionConfig, TurnDetection
from voicewire.events import (
    AudioEvent,
    AudioInterruptedEvent,
    FunctionCallEvent,
    ItemUpdateEvent,
    RawServerEvent,
    SpeechStartedEvent,
    SpeechStoppedEvent,
    Truncation,
    TurnDoneEvent,
    TurnStartedEvent,
    UsageUpdateEvent,
)
from voicewire.items import (
    AssistantMessageItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    OutputAudio,
    UserMessageItem,
)
from voicewire_openai_ws.protocol import RealtimeProtocol

if TYPE_CHECKING:
    from tests.openai_ws.conftest import EventValidator


class Run:
    """Drives a RealtimeProtocol like the I/O layer would, recording everything."""

    def __init__(
        self,
        config: SessionConfig,
        validate_client: EventValidator,
        validate_server: EventValidator,
    ) -> None:
        self.protocol = RealtimeProtocol(model="gpt-realtime")
        self.protocol.initial_frames(config)
        self._validate_client = validate_client
        self._validate_server = validate_server

    def server(self, event: dict[str, Any], now_ms: float = 0.0) -> list[Any]:
        self._validate_server(event)
        events = self.protocol.receive(json.dumps(event), now_ms)
        assert isinstance(events[0], RawServerEvent)
        assert events[0].message == event
        return events[1:]

    def client(self) -> list[dict[str, Any]]:
        frames = [json.loads(frame) for frame in self.protocol.data_to_send()]
        for frame in frames:
            self._validate_client(frame)
        return frames


# --- GA server events, built from their documented fields --------------------------------------

CONV = "conv_1"
_counter = iter(range(1, 10_000))


def ev(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": f"event_{next(_counter)}", **fields}


def session(fmt: dict[str, Any], vad: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": "sess_1",
        "model": "gpt-realtime",
        "output_modalities": ["audio"],
        "audio": {
            "input": {"format": fmt, "turn_detection": vad},
            "output": {"format": fmt, "voice": "marin", "speed": 1.0},
        },
        **extra,
    }


SERVER_VAD = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}


def response(resp_id: str, status: str, output: list[Any], usage: Any = None) -> dict[str, Any]:
    return {
        "object": "realtime.response",
        "id": resp_id,
        "status": status,
        "status_details": None,
        "output": output,
        "conversation_id": CONV,
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcmu"}, "voice": "marin"}},
        "usage": usage,
        "metadata": None,
    }


USAGE = {
    "total_tokens": 320,
    "input_tokens": 132,
    "output_tokens": 188,
    "input_token_details": {
        "text_tokens": 59,
        "audio_tokens": 73,
        "image_tokens": 0,
        "cached_tokens": 64,
    },
    "output_token_details": {"text_tokens": 41, "audio_tokens": 147},
}


def assistant(item_id: str, status: str, transcript: str | None) -> dict[str, Any]:
    content = [] if transcript is None else [{"type": "output_audio", "transcript": transcript}]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def user_audio(item_id: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }


def ids(resp_id: str, item_id: str) -> dict[str, Any]:
    return {"response_id": resp_id, "item_id": item_id, "output_index": 0, "content_index": 0}


def mulaw_b64(ms: int) -> str:
    return base64.b64encode(b"\xff" * (ms * 8)).decode()


CONFIG = SessionConfig(
    instructions="You are a phone agent. Be brief.",
    voice="marin",
    input_audio_format="audio/pcmu",
    output_audio_format="audio/pcmu",
    turn_detection=TurnDetection(type="server_vad", silence_duration_ms=500),
)


def connect(validate_client: EventValidator, validate_server: EventValidator) -> Run:
    run = Run(CONFIG, validate_client, validate_server)
    [update] = run.client()
    assert update["type"] == "session.update"
    assert update["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    created = session(
        {"type": "audio/pcm", "rate": 24000},
        {**SERVER_VAD, "silence_duration_ms": 200},
        tracing=None,
        expires_at=1767233035,
    )
    assert run.server(ev("session.created", session=created)) == []
    assert run.client() == [
        {"type": "session.update", "session": {"type": "realtime", "tracing": "auto"}}
    ]
    assert (
        run.server(ev("session.updated", session=session({"type": "audio/pcmu"}, SERVER_VAD))) == []
    )
    assert run.protocol.output_format == MULAW_8K
    assert run.protocol.interrupt_response
    return run


@pytest.fixture
def run(validate_client_event: EventValidator, validate_server_event: EventValidator) -> Run:
    """A protocol connected as in the GA examples; every event both ways is checked strictly."""
    return connect(validate_client_event, validate_server_event)


def audio_answer(run: Run, user_id: str, resp_id: str, item_id: str, t0: float) -> None:
    """Example (a): the caller speaks, the model answers with 600 ms of audio."""
    run.protocol.send_audio(b"\xff" * 160)
    assert run.client() == [
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\xff" * 160).decode()}
    ]
    assert run.server(
        ev("input_audio_buffer.speech_started", audio_start_ms=1236, item_id=user_id), t0
    ) == [SpeechStartedEvent(item_id=user_id, audio_start_ms=1236)]
    assert run.client() == []  # nothing was playing: no spurious interruption
    assert run.server(
        ev("input_audio_buffer.speech_stopped", audio_end_ms=3808, item_id=user_id)
    ) == [SpeechStoppedEvent(item_id=user_id, audio_end_ms=3808)]
    assert (
        run.server(ev("input_audio_buffer.committed", previous_item_id=None, item_id=user_id)) == []
    )
    [added] = run.server(
        ev("conversation.item.added", previous_item_id=None, item=user_audio(user_id))
    )
    assert isinstance(added, ItemUpdateEvent)
    assert isinstance(added.item, UserMessageItem)
    run.server(ev("conversation.item.done", previous_item_id=None, item=user_audio(user_id)))

    [started] = run.server(ev("response.created", response=response(resp_id, "in_progress", [])))
    assert isinstance(started, TurnStartedEvent)
    assert started.response_id == resp_id
    assert run.protocol.response_active
    [out_added] = run.server(
        ev(
            "response.output_item.added",
            response_id=resp_id,
            output_index=0,
            item=assistant(item_id, "in_progress", None),
        )
    )
    assert out_added == ItemUpdateEvent(
        item=AssistantMessageItem(item_id=item_id, status="in_progress")
    )
    [conv_added] = run.server(
        ev(
            "conversation.item.added",
            previous_item_id=user_id,
            item=assistant(item_id, "in_progress", None),
        )
    )
    assert conv_added.item.previous_item_id == user_id
    part = {"type": "audio", "transcript": ""}
    assert run.server(ev("response.content_part.added", **ids(resp_id, item_id), part=part)) == []
    [delta] = run.server(
        ev(
            "response.output_audio_transcript.delta",
            **ids(resp_id, item_id),
            delta="Sure",
            obfuscation="z9",
        )
    )
    assert delta.delta == "Sure"
    for step in range(3):  # 3 x 200 ms of mu-law, received 10 ms apart
        [chunk] = run.server(
            ev("response.output_audio.delta", **ids(resp_id, item_id), delta=mulaw_b64(200)),
            t0 + 5000 + 10 * step,
        )
        assert isinstance(chunk, AudioEvent)
        assert len(chunk.data) == 1600
        assert chunk.item_id == item_id


def finish_answer(
    run: Run, user_id: str, resp_id: str, item_id: str, status: str, transcript: str
) -> list[Any]:
    events: list[Any] = []
    events += run.server(ev("response.output_audio.done", **ids(resp_id, item_id)))
    events += run.server(
        ev("response.output_audio_transcript.done", **ids(resp_id, item_id), transcript=transcript)
    )
    part = {"type": "audio", "transcript": transcript}
    events += run.server(ev("response.content_part.done", **ids(resp_id, item_id), part=part))
    final = assistant(item_id, status, transcript)
    events += run.server(ev("conversation.item.done", previous_item_id=user_id, item=final))
    events += run.server(
        ev("response.output_item.done", response_id=resp_id, output_index=0, item=final)
    )
    cancelled = "cancelled" if status == "incomplete" else "completed"
    events += run.server(ev("response.done", response=response(resp_id, cancelled, [final], USAGE)))
    events += run.server(
        ev(
            "rate_limits.updated",
            rate_limits=[
                {"name": "tokens", "limit": 40000, "remaining": 38490, "reset_seconds": 2.265}
            ],
        )
    )
    return events


def test_a_audio_answer(run: Run) -> None:
    audio_answer(run, "item_U1", "resp_1", "item_A1", t0=0)
    events = finish_answer(
        run, "item_U1", "resp_1", "item_A1", "completed", "Sure, how can I help?"
    )
    assert [e.type for e in events] == [
        "audio_done",
        "item_update",
        "item_update",
        "usage_update",
        "turn_done",
    ]
    done = events[-1]
    assert isinstance(done, TurnDoneEvent)
    assert done.status == "completed"
    assert done.usage.total_tokens == 320
    assert isinstance(events[-2], UsageUpdateEvent)
    assert events[1].item == AssistantMessageItem(
        item_id="item_A1",
        previous_item_id="item_U1",
        status="completed",
        content=[OutputAudio(transcript="Sure, how can I help?")],
    )
    assert not run.protocol.response_active
    assert run.client() == []
    assert [i.item_id for i in run.protocol.conversation.history()] == ["item_U1", "item_A1"]


def test_b_barge_in_while_generating(run: Run) -> None:
    audio_answer(run, "item_U1", "resp_1", "item_A1", t0=0)
    # Audio arrived from t=5000 (600 ms of it); the caller speaks 400 ms into playback. The
    # server interrupts by itself (interrupt_response), so the client only truncates.
    events = run.server(
        ev("input_audio_buffer.speech_started", audio_start_ms=11956, item_id="item_U2"), 5400
    )
    assert events == [
        SpeechStartedEvent(item_id="item_U2", audio_start_ms=11956),
        AudioInterruptedEvent(
            response_id="resp_1",
            truncations=(Truncation(item_id="item_A1", content_index=0, audio_end_ms=400),),
        ),
    ]
    assert run.client() == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_A1",
            "content_index": 0,
            "audio_end_ms": 400,
        }
    ]
    events = finish_answer(
        run, "item_U1", "resp_1", "item_A1", "incomplete", "Sure, the opening hours are"
    )
    assert events[-1].status == "cancelled"
    assert (
        run.server(
            ev("conversation.item.truncated", item_id="item_A1", content_index=0, audio_end_ms=400)
        )
        == []
    )
    assert run.client() == [{"type": "conversation.item.retrieve", "item_id": "item_A1"}]
    run.server(ev("input_audio_buffer.speech_stopped", audio_end_ms=14720, item_id="item_U2"))
    run.server(ev("input_audio_buffer.committed", previous_item_id="item_A1", item_id="item_U2"))
    assert run.client() == []


def test_b_barge_in_without_server_interruption_cancels_first(run: Run) -> None:
    vad = {**SERVER_VAD, "interrupt_response": False}
    run.server(ev("session.updated", session=session({"type": "audio/pcmu"}, vad)))
    audio_answer(run, "item_U1", "resp_1", "item_A1", t0=0)
    run.server(
        ev("input_audio_buffer.speech_started", audio_start_ms=9000, item_id="item_U2"), 5900
    )
    assert run.client() == [
        {"type": "response.cancel"},
        {
            "type": "conversation.item.truncate",
            "item_id": "item_A1",
            "content_index": 0,
            "audio_end_ms": 600,
        },
    ]


def function_call_item(status: str, arguments: str) -> dict[str, Any]:
    return {
        "id": "item_Fn1",
        "type": "function_call",
        "status": status,
        "name": "get_weather",
        "call_id": "call_Fn1xyz",
        "arguments": arguments,
    }


def function_call_turn(run: Run) -> FunctionCallEvent:
    """Example (c) up to the model's function call (response.done not yet received)."""
    run.protocol.update_session_config(
        SessionConfig(
            tool_choice="auto",
            tools=(
                FunctionTool(
                    name="get_weather",
                    description="Current weather for a city",
                    parameters={
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                ),
            ),
        )
    )
    [update] = run.client()
    assert update["session"]["tools"][0]["name"] == "get_weather"
    assert update["session"]["audio"]["output"]["format"] == {"type": "audio/pcmu"}  # kept
    run.server(ev("response.created", response=response("resp_Fn1", "in_progress", [])))
    args = '{"city":"Paris"}'
    assert (
        run.server(
            ev(
                "response.output_item.added",
                response_id="resp_Fn1",
                output_index=0,
                item=function_call_item("in_progress", ""),
            )
        )
        == []
    )
    assert (
        run.server(
            ev(
                "conversation.item.added",
                previous_item_id="item_U1",
                item=function_call_item("in_progress", ""),
            )
        )
        == []
    )
    for piece in ('{"city":', '"Paris"}'):
        assert (
            run.server(
                ev(
                    "response.function_call_arguments.delta",
                    response_id="resp_Fn1",
                    item_id="item_Fn1",
                    output_index=0,
                    call_id="call_Fn1xyz",
                    delta=piece,
                )
            )
            == []
        )
    run.server(
        ev(
            "response.function_call_arguments.done",
            response_id="resp_Fn1",
            item_id="item_Fn1",
            output_index=0,
            call_id="call_Fn1xyz",
            name="get_weather",
            arguments=args,
        )
    )
    assert (
        run.server(
            ev(
                "conversation.item.done",
                previous_item_id="item_U1",
                item=function_call_item("completed", args),
            )
        )
        == []
    )
    update_event, call = run.server(
        ev(
            "response.output_item.done",
            response_id="resp_Fn1",
            output_index=0,
            item=function_call_item("completed", args),
        )
    )
    # The position comes from conversation.item.added; output_item events do not carry it.
    assert update_event == ItemUpdateEvent(
        item=FunctionCallItem(
            item_id="item_Fn1",
            previous_item_id="item_U1",
            status="in_progress",
            name="get_weather",
            call_id="call_Fn1xyz",
            arguments=args,
        )
    )
    assert call == FunctionCallEvent(
        name="get_weather",
        call_id="call_Fn1xyz",
        arguments=args,
        item_id="item_Fn1",
        previous_item_id="item_U1",
        response_id="resp_Fn1",
    )
    assert isinstance(call, FunctionCallEvent)
    return call


def test_c_function_call_round_trip(run: Run) -> None:
    call = function_call_turn(run)
    events = run.server(
        ev(
            "response.done",
            response=response(
                "resp_Fn1", "completed", [function_call_item("completed", '{"city":"Paris"}')]
            ),
        )
    )
    assert [e.type for e in events] == ["usage_update", "turn_done"]
    update = run.protocol.send_function_call_output(call, '{"temp_c":21,"sky":"clear"}')
    assert update is not None
    assert isinstance(update.item, FunctionCallItem)
    assert update.item.output == '{"temp_c":21,"sky":"clear"}'
    assert update.item.previous_item_id == "item_U1"
    item_create, response_create = run.client()
    assert item_create == {
        "type": "conversation.item.create",
        "item": {
            "type": "function_call_output",
            "call_id": "call_Fn1xyz",
            "output": '{"temp_c":21,"sky":"clear"}',
        },
    }
    assert response_create["type"] == "response.create"
    assert set(response_create) == {
        "type",
        "event_id",
    }
    output = {
        "id": "item_Out1",
        "type": "function_call_output",
        "call_id": "call_Fn1xyz",
        "output": '{"temp_c":21,"sky":"clear"}',
    }
    assert run.server(ev("conversation.item.added", previous_item_id="item_Fn1", item=output)) == []
    run.server(ev("conversation.item.done", previous_item_id="item_Fn1", item=output))
    [started] = run.server(ev("response.created", response=response("resp_Fn2", "in_progress", [])))
    assert started.response_id == "resp_Fn2"
    history = run.protocol.conversation.history()
    assert [type(i) for i in history] == [FunctionCallItem, FunctionCallOutputItem]


def test_c_output_sent_before_response_done_waits_for_it(run: Run) -> None:
    call = function_call_turn(run)
    run.protocol.send_function_call_output(call, "{}")
    assert [f["type"] for f in run.client()] == ["conversation.item.create"]  # create held back
    run.server(ev("response.done", response=response("resp_Fn1", "completed", [])))
    [create] = run.client()
    assert create["type"] == "response.create"
