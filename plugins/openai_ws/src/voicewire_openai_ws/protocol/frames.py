"""JSON text frames: the only unit the OpenAI Realtime WebSocket carries in either direction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from voicewire_openai_ws.protocol.errors import InvalidClientEventError, InvalidServerEventError

__all__ = ["FRAME_PREVIEW_CHARS", "decode_frame", "encode_frame", "frame_preview"]

FRAME_PREVIEW_CHARS = 500
"""How much of an unusable frame an error report keeps (frames may hold megabytes of audio)."""


def encode_frame(event: Mapping[str, Any]) -> str:
    """Serialise a client event as one compact JSON text frame.

    Args:
        event: The event; its ``type`` must be a non-empty string.

    Returns:
        The frame text.

    Raises:
        InvalidClientEventError: ``event`` is not a mapping, has no non-empty string ``type``, or
            holds something JSON cannot represent (bytes, sets, NaN, non-string keys, ...).
    """
    if not isinstance(event, Mapping):
        raise InvalidClientEventError(
            f"a client event must be a mapping, got {type(event).__name__}"
        )
    kind = event.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidClientEventError(
            f"a client event needs a non-empty string 'type', got {kind!r}"
        )
    try:
        # allow_nan=False: NaN/Infinity are not JSON and the server rejects them anyway.
        return json.dumps(dict(event), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidClientEventError(
            f"client event {kind!r} is not serialisable as JSON: {exc}"
        ) from exc


def frame_preview(frame: str | bytes) -> str:
    """The start of a frame, for error details; never the whole of a large frame."""
    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
    if len(text) <= FRAME_PREVIEW_CHARS:
        return text
    return text[:FRAME_PREVIEW_CHARS] + "..."


def decode_frame(frame: str | bytes) -> dict[str, Any]:
    """Parse one server frame into a JSON object.

    Args:
        frame: The frame as received: text, or bytes holding UTF-8 text.

    Returns:
        The object.

    Raises:
        InvalidServerEventError: ``invalid_json`` if the frame is not UTF-8 or not JSON,
            ``invalid_event`` if it is JSON but not an object.
    """
    if isinstance(frame, bytes | bytearray | memoryview):
        try:
            text = bytes(frame).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidServerEventError(
                "invalid_json", f"frame is not UTF-8 text: {exc}"
            ) from exc
    elif isinstance(frame, str):
        text = frame
    else:
        raise InvalidServerEventError(
            "invalid_json", f"a frame must be str or bytes, got {type(frame).__name__}"
        )
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidServerEventError("invalid_json", f"frame is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidServerEventError(
            "invalid_event", f"frame is JSON but not an object (got {type(value).__name__})"
        )
    return value
