"""Builders for every client event of the OpenAI Realtime GA protocol.

Each builder returns a new plain ``dict`` ready for :func:`~voicewire_openai_ws.protocol.frames.encode_frame`;
none of them sends anything. Optional fields are left out unless given, so every result validates
against the official ``openai.types.realtime`` models without extra keys. ``event_id`` is the
client's own id for an event; the server echoes it in ``error.event_id`` when that event fails.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from voicewire.items import RealtimeItem, UserMessageItem, item_to_wire

__all__ = [
    "MAX_APPEND_BYTES",
    "conversation_item_create",
    "conversation_item_delete",
    "conversation_item_retrieve",
    "conversation_item_truncate",
    "function_call_output_item",
    "input_audio_buffer_append",
    "input_audio_buffer_append_chunks",
    "input_audio_buffer_append_frames",
    "input_audio_buffer_clear",
    "input_audio_buffer_commit",
    "output_audio_buffer_clear",
    "response_cancel",
    "response_create",
    "session_update",
    "user_message_item",
]

MAX_APPEND_BYTES = 8 * 1024 * 1024
"""Raw bytes per ``input_audio_buffer.append``. The server caps an event at 15 MiB; 8 MiB of audio
is about 10.7 MiB of base64, leaving room, and is even so a PCM16 sample is never split."""


def _event(kind: str, event_id: str | None, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind}
    if event_id is not None:
        event["event_id"] = event_id
    event.update(fields)
    return event


def _check_id(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def session_update(session: Mapping[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """``session.update``: change the session's configuration.

    Args:
        session: The GA session object (see :mod:`~voicewire_openai_ws.protocol.session_payload`);
            it must hold ``type`` (``"realtime"``), which GA requires on every update.
        event_id: Optional client event id.

    Raises:
        ValueError: ``session`` has no ``type``.
    """
    if "type" not in session:
        raise ValueError("a GA session.update needs session.type (e.g. 'realtime')")
    return _event("session.update", event_id, session=dict(session))


def input_audio_buffer_append(
    audio: bytes | bytearray | memoryview, *, event_id: str | None = None
) -> dict[str, Any]:
    """``input_audio_buffer.append``: add audio (in the session's input format) to the buffer.

    Args:
        audio: Raw audio bytes; they are base64-encoded here. At most :data:`MAX_APPEND_BYTES`;
            use :func:`input_audio_buffer_append_chunks` for more.
        event_id: Optional client event id.

    Raises:
        TypeError: ``audio`` is not bytes-like.
        ValueError: ``audio`` is larger than :data:`MAX_APPEND_BYTES`.
    """
    if not isinstance(audio, bytes | bytearray | memoryview):
        raise TypeError(f"audio must be bytes, got {type(audio).__name__}")
    data = bytes(audio)
    if len(data) > MAX_APPEND_BYTES:
        raise ValueError(f"at most {MAX_APPEND_BYTES} bytes per append, got {len(data)}")
    return _event("input_audio_buffer.append", event_id, audio=base64.b64encode(data).decode())


def input_audio_buffer_append_chunks(
    audio: bytes | bytearray | memoryview,
) -> list[dict[str, Any]]:
    """Appends for audio of any size: one event per :data:`MAX_APPEND_BYTES` (none if empty).

    Raises:
        TypeError: ``audio`` is not bytes-like.
    """
    if not isinstance(audio, bytes | bytearray | memoryview):
        raise TypeError(f"audio must be bytes, got {type(audio).__name__}")
    data = bytes(audio)
    return [
        input_audio_buffer_append(data[start : start + MAX_APPEND_BYTES])
        for start in range(0, len(data), MAX_APPEND_BYTES)
    ]


_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'


def input_audio_buffer_append_frames(audio: bytes | bytearray | memoryview) -> list[str]:
    """The frames of :func:`input_audio_buffer_append_chunks`, already encoded.

    The text equals ``encode_frame`` of each event; it is assembled directly because base64
    needs no JSON escaping and this is the one event sent fifty times a second per call.

    Raises:
        TypeError: ``audio`` is not bytes-like.
    """
    if not isinstance(audio, bytes | bytearray | memoryview):
        raise TypeError(f"audio must be bytes, got {type(audio).__name__}")
    size = len(audio)
    if size <= MAX_APPEND_BYTES:
        return [_APPEND_HEAD + base64.b64encode(audio).decode("ascii") + '"}'] if size else []
    view = memoryview(audio).cast("B")
    return [
        _APPEND_HEAD
        + base64.b64encode(view[start : start + MAX_APPEND_BYTES]).decode("ascii")
        + '"}'
        for start in range(0, view.nbytes, MAX_APPEND_BYTES)
    ]


def input_audio_buffer_commit(*, event_id: str | None = None) -> dict[str, Any]:
    """``input_audio_buffer.commit``: close the user's turn (needed without turn detection)."""
    return _event("input_audio_buffer.commit", event_id)


def input_audio_buffer_clear(*, event_id: str | None = None) -> dict[str, Any]:
    """``input_audio_buffer.clear``: drop the uncommitted input audio."""
    return _event("input_audio_buffer.clear", event_id)


def user_message_item(message: str | UserMessageItem) -> dict[str, Any]:
    """The wire item of a user message: text becomes one ``input_text`` part.

    Raises:
        TypeError: ``message`` is neither a string nor a ``UserMessageItem``.
    """
    if isinstance(message, str):
        return {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": message}],
        }
    if isinstance(message, UserMessageItem):
        return item_to_wire(message)
    raise TypeError(f"message must be a str or a UserMessageItem, got {type(message).__name__}")


def function_call_output_item(call_id: str, output: str) -> dict[str, Any]:
    """The wire item that answers a function call.

    Raises:
        ValueError: ``call_id`` is empty.
        TypeError: ``output`` is not a string.
    """
    _check_id("call_id", call_id)
    if not isinstance(output, str):
        raise TypeError(f"output must be a str, got {type(output).__name__}")
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def conversation_item_create(
    item: Mapping[str, Any] | RealtimeItem,
    *,
    previous_item_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """``conversation.item.create``: add an item to the conversation.

    Args:
        item: A wire item (mapping) or a :data:`~voicewire.items.RealtimeItem`, converted with
            :func:`~voicewire.items.item_to_wire`.
        previous_item_id: Insert after this item (``"root"``: at the start); by default the item
            is appended.
        event_id: Optional client event id.
    """
    wire = dict(item) if isinstance(item, Mapping) else item_to_wire(item)
    fields: dict[str, Any] = {}
    if previous_item_id is not None:
        fields["previous_item_id"] = _check_id("previous_item_id", previous_item_id)
    return _event("conversation.item.create", event_id, **fields, item=wire)


def conversation_item_retrieve(item_id: str, *, event_id: str | None = None) -> dict[str, Any]:
    """``conversation.item.retrieve``: ask for the server's full copy of an item."""
    return _event("conversation.item.retrieve", event_id, item_id=_check_id("item_id", item_id))


def conversation_item_truncate(
    item_id: str, content_index: int, audio_end_ms: int, *, event_id: str | None = None
) -> dict[str, Any]:
    """``conversation.item.truncate``: cut an assistant item's audio where the listener stopped.

    Args:
        item_id: The assistant message item.
        content_index: The audio content part (0 in practice).
        audio_end_ms: Milliseconds of audio that were heard: an ``int`` >= 0. Floats are refused
            rather than rounded, because the API rejects fractional values and a silent rounding
            here would hide a bug in the caller's maths.
        event_id: Optional client event id.

    Raises:
        ValueError: A field is out of range or of the wrong type.
    """
    _check_id("item_id", item_id)
    for name, value in (("content_index", content_index), ("audio_end_ms", audio_end_ms)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return _event(
        "conversation.item.truncate",
        event_id,
        item_id=item_id,
        content_index=content_index,
        audio_end_ms=audio_end_ms,
    )


def conversation_item_delete(item_id: str, *, event_id: str | None = None) -> dict[str, Any]:
    """``conversation.item.delete``: remove an item from the conversation."""
    return _event("conversation.item.delete", event_id, item_id=_check_id("item_id", item_id))


def response_create(
    response: Mapping[str, Any] | None = None, *, event_id: str | None = None
) -> dict[str, Any]:
    """``response.create``: ask the model to respond.

    Args:
        response: One-off response parameters (``instructions``, ``output_modalities``,
            ``conversation``, ...) overriding the session's for this response only.
        event_id: Optional client event id.
    """
    if response is None:
        return _event("response.create", event_id)
    return _event("response.create", event_id, response=dict(response))


def response_cancel(
    response_id: str | None = None, *, event_id: str | None = None
) -> dict[str, Any]:
    """``response.cancel``: stop the active response (or the one named)."""
    if response_id is None:
        return _event("response.cancel", event_id)
    return _event("response.cancel", event_id, response_id=_check_id("response_id", response_id))


def output_audio_buffer_clear(*, event_id: str | None = None) -> dict[str, Any]:
    """``output_audio_buffer.clear``: WebRTC/SIP only; a WebSocket server may reject it.

    Provided for completeness. Over WebSocket the client owns playback, so it stops playing
    locally and truncates instead.
    """
    return _event("output_audio_buffer.clear", event_id)
