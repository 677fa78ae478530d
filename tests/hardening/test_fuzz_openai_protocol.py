"""Fuzzing the OpenAI Realtime protocol layer: whatever the server sends, nothing raises.

``tests/openai_ws`` checks every mapping with hand-written frames; what it does not do is throw
arbitrary and mutated frames at the layer. Here:

* ``parse_server_frame`` gets arbitrary text, bytes and JSON, valid GA events with one field
  removed, retyped or replaced, byte-flipped frames, and pathological nesting. It never raises
  and its result keeps its documented shape (``RawServerEvent`` first when there is an object;
  an ``ErrorEvent`` with a documented code when the frame is unusable).
* ``RealtimeProtocol`` is driven through random interleavings of server frames (valid, mutated,
  garbage) and client calls. It never raises for what the server sent, every frame it queues is
  a JSON object with a string ``type``, and no truncation it plans goes beyond the audio the
  server sent for that item.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voicewire.events import AudioEvent, AudioInterruptedEvent, ErrorEvent, RawServerEvent
from voicewire_openai_ws.protocol import RealtimeProtocol
from voicewire_openai_ws.protocol.server_events import parse_server_frame

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ERROR_CODES = {"invalid_json", "invalid_event", "invalid_base64"}


def _audio(n: int) -> str:
    return base64.b64encode(bytes([0x7F - (n % 50)]) * 160).decode()


SESSION = {
    "type": "realtime",
    "object": "realtime.session",
    "id": "sess_1",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "audio": {
        "input": {
            "format": {"type": "audio/pcmu"},
            "turn_detection": {"type": "server_vad", "interrupt_response": True},
        },
        "output": {"format": {"type": "audio/pcmu"}, "voice": "alloy"},
    },
    "tracing": None,
}
MESSAGE = {
    "id": "item_a",
    "type": "message",
    "role": "assistant",
    "status": "in_progress",
    "content": [{"type": "output_audio", "transcript": "hi"}],
}
CALL = {
    "id": "item_f",
    "type": "function_call",
    "status": "completed",
    "name": "get_time",
    "call_id": "call_1",
    "arguments": "{}",
}

# One valid GA server event of every kind the layer maps or reads state from.
CORPUS: list[dict[str, Any]] = [
    {"type": "session.created", "event_id": "e1", "session": SESSION},
    {"type": "session.updated", "event_id": "e2", "session": SESSION},
    {"type": "input_audio_buffer.speech_started", "item_id": "user_1", "audio_start_ms": 100},
    {"type": "input_audio_buffer.speech_stopped", "item_id": "user_1", "audio_end_ms": 900},
    {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}},
    {"type": "response.output_item.added", "response_id": "resp_1", "item": MESSAGE},
    {"type": "conversation.item.added", "previous_item_id": "user_1", "item": MESSAGE},
    {
        "type": "response.output_audio.delta",
        "response_id": "resp_1",
        "item_id": "item_a",
        "output_index": 0,
        "content_index": 0,
        "delta": _audio(1),
    },
    {
        "type": "response.output_audio.delta",
        "response_id": "resp_1",
        "item_id": "item_a",
        "output_index": 0,
        "content_index": 0,
        "delta": _audio(2),
    },
    {
        "type": "response.output_audio_transcript.delta",
        "response_id": "resp_1",
        "item_id": "item_a",
        "delta": "hel",
    },
    {"type": "response.output_text.delta", "response_id": "resp_1", "item_id": "i", "delta": "x"},
    {
        "type": "response.output_audio.done",
        "response_id": "resp_1",
        "item_id": "item_a",
        "content_index": 0,
    },
    {"type": "response.output_item.done", "response_id": "resp_1", "item": CALL},
    {"type": "conversation.item.done", "item": {**MESSAGE, "status": "completed"}},
    {"type": "conversation.item.retrieved", "item": {**MESSAGE, "status": "completed"}},
    {"type": "conversation.item.truncated", "item_id": "item_a", "audio_end_ms": 10},
    {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "user_1",
        "transcript": "hello",
    },
    {"type": "conversation.item.deleted", "item_id": "item_a"},
    {
        "type": "response.done",
        "response": {
            "id": "resp_1",
            "status": "completed",
            "output": [MESSAGE],
            "usage": {"total_tokens": 3, "input_tokens": 1, "output_tokens": 2},
        },
    },
    {
        "type": "error",
        "error": {"type": "invalid_request_error", "code": "bad", "message": "no", "event_id": "x"},
    },
    {"type": "rate_limits.updated", "rate_limits": []},
]

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            paths += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += _paths(child, (*prefix, index))
    return paths


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A corpus event with one field removed or replaced by arbitrary JSON, maybe retyped."""
    event: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(CORPUS)))
    if draw(st.booleans()):
        # Another known type's name on this body: every handler meets every shape.
        event["type"] = draw(st.sampled_from([e["type"] for e in CORPUS]))
    path = draw(st.sampled_from(_paths(event)))
    parent: Any = event
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return event


def frames() -> st.SearchStrategy[str | bytes]:
    valid = st.sampled_from([json.dumps(e) for e in CORPUS])
    mutated = mutated_events().map(json.dumps)
    garbage: st.SearchStrategy[str | bytes] = st.text(max_size=60) | st.binary(max_size=60)
    arbitrary_json = json_values.map(json.dumps)
    return st.one_of(valid, valid, mutated, mutated, garbage, arbitrary_json)


def check_parsed(frame: str | bytes) -> None:
    parsed = parse_server_frame(frame)
    assert parsed.events, "a frame always produces something to emit"
    if parsed.message is None:
        (error,) = parsed.events
        assert isinstance(error, ErrorEvent)
        assert error.source == "transport"
        assert error.code in {"invalid_json", "invalid_event"}
        preview = error.details["frame"]
        assert isinstance(preview, str)
        assert len(preview) <= 503
        return
    assert isinstance(parsed.events[0], RawServerEvent)
    assert parsed.events[0].message is parsed.message
    if parsed.error is not None:
        assert not parsed.usable
        last = parsed.events[-1]
        assert isinstance(last, ErrorEvent)
        assert last.code in ERROR_CODES
        assert len(parsed.events) == 2
    else:
        assert parsed.usable == isinstance(parsed.message.get("type"), str)
        assert not any(isinstance(e, RawServerEvent) for e in parsed.events[1:])


# --- single frames -----------------------------------------------------------------------------


@SETTINGS
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    check_parsed(text)


@SETTINGS
@given(st.binary())
def test_arbitrary_bytes(data: bytes) -> None:
    check_parsed(data)


@SETTINGS
@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    check_parsed(json.dumps(value))


@SETTINGS
@given(
    st.sampled_from([e["type"] for e in CORPUS]), st.dictionaries(st.text(max_size=12), json_values)
)
def test_known_types_with_arbitrary_fields(kind: str, fields: dict[str, Any]) -> None:
    check_parsed(json.dumps({**fields, "type": kind}))


@SETTINGS
@given(mutated_events())
def test_valid_events_with_one_field_removed_or_replaced(event: dict[str, Any]) -> None:
    check_parsed(json.dumps(event))


@SETTINGS
@given(st.sampled_from([json.dumps(e).encode() for e in CORPUS]), st.data())
def test_valid_events_with_bytes_flipped(frame: bytes, data: st.DataObject) -> None:
    raw = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    check_parsed(bytes(raw))
    check_parsed(bytes(raw).decode("utf-8", "replace"))


def test_every_corpus_event_is_usable() -> None:
    for event in CORPUS:
        parsed = parse_server_frame(json.dumps(event))
        assert parsed.usable, event


def test_pathological_nesting_is_an_error_event_not_an_exception() -> None:
    # Found by this suite: json.loads raised RecursionError past ~100 000 levels, and the
    # deep copies of the error and turn handlers did past a few hundred.
    for depth in (300, 600, 1000, 5000, 200_000):
        body = "[" * depth + "]" * depth
        for kind in ("error", "response.created", "response.done", "rate_limits.updated"):
            frame = (
                f'{{"type":"{kind}","response":{{"id":"r","x":{body}}},'
                f'"error":{{"message":"m","x":{body}}},"x":{body}}}'
            )
            check_parsed(frame)
            RealtimeProtocol().receive(frame, 0.0)
        check_parsed(body)


# --- the stateful layer ------------------------------------------------------------------------

client_calls = st.sampled_from(
    ["interrupt", "interrupt_no_cancel", "cancel", "request", "audio", "lost", "message"]
)
steps = st.lists(
    st.one_of(
        frames().map(lambda f: ("frame", f)),
        client_calls.map(lambda c: ("call", c)),
        st.integers(0, 500).map(lambda n: ("wait", n)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps, st.booleans())
def test_protocol_never_raises_and_plans_only_what_was_sent(
    script: list[tuple[str, Any]], barge_in: bool
) -> None:
    protocol = RealtimeProtocol(model="gpt-realtime", automatic_barge_in=barge_in)
    protocol.initial_frames(None)
    now = 0.0
    received_ms: dict[tuple[str, int], float] = {}
    for kind, value in script:
        events: list[Any] = []
        if kind == "frame":
            fmt = protocol.output_format
            events = protocol.receive(value, now)
            for event in events:
                if isinstance(event, AudioEvent) and event.item_id is not None:
                    key = (event.item_id, event.content_index)
                    received_ms[key] = received_ms.get(key, 0.0) + fmt.duration_ms(len(event.data))
        elif kind == "wait":
            now += value
        elif value in ("interrupt", "interrupt_no_cancel"):
            events = protocol.interrupt(now, cancel=value == "interrupt")
        elif value == "cancel":
            protocol.cancel_response()
        elif value == "request":
            protocol.request_response()
        elif value == "audio":
            protocol.send_audio(b"\xff" * 160)
        elif value == "message":
            protocol.send_message("hello")
        else:
            protocol.connection_lost()
            received_ms.clear()
        for event in events:
            if isinstance(event, AudioInterruptedEvent):
                for cut in event.truncations:
                    sent = received_ms.get((cut.item_id, cut.content_index), 0.0)
                    assert 0 <= cut.audio_end_ms <= sent + 1e-9, (cut, sent)
        for out in protocol.data_to_send():
            decoded = json.loads(out)
            assert isinstance(decoded, dict)
            assert isinstance(decoded.get("type"), str)
            assert decoded["type"]
