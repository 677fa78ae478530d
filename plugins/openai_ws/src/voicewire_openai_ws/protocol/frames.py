"""JSON text frames: the only unit the OpenAI Realtime WebSocket carries in either direction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from voicewire_openai_ws.protocol.errors import InvalidClientEventError, InvalidServerEventError

__all__ = [
    "FRAME_PREVIEW_CHARS",
    "MAX_FRAME_NESTING",
    "decode_frame",
    "encode_frame",
    "frame_preview",
]

FRAME_PREVIEW_CHARS = 500
"""How much of an unusable frame an error report keeps (frames may hold megabytes of audio)."""

MAX_FRAME_NESTING = 128
"""Deepest nesting of objects and arrays accepted in a server frame.

GA events nest a dozen levels at most (a tool's JSON schema inside ``session.updated`` a few
more). A deeper frame is refused as ``invalid_json`` before anything reads it: the handlers deep
copy parts of an event, and listeners may walk it recursively, which a few hundred levels are
enough to turn into a ``RecursionError`` (found by ``tests/hardening``).
"""


def _nesting_exceeds(value: object, limit: int) -> bool:
    # Iterative on purpose: a recursive walk would hit the very limit it guards against.
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: list[object] = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


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
        InvalidServerEventError: ``invalid_json`` if the frame is not UTF-8 or not JSON, or nests
            deeper than :data:`MAX_FRAME_NESTING`; ``invalid_event`` if it is JSON but not an
            object.
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
    except RecursionError:
        # json.loads itself gives up on very deep nesting; the layer must not raise.
        raise InvalidServerEventError("invalid_json", "frame is nested too deeply") from None
    # Fast path: a frame with no more opening brackets than the limit cannot nest deeper (an
    # audio delta has a handful), so only the rare large structured frame is walked.
    brackets = text.count("{") + text.count("[")
    if brackets > MAX_FRAME_NESTING and _nesting_exceeds(value, MAX_FRAME_NESTING):
        raise InvalidServerEventError(
            "invalid_json", f"frame nests deeper than {MAX_FRAME_NESTING} levels"
        )
    if not isinstance(value, dict):
        raise InvalidServerEventError(
            "invalid_event", f"frame is JSON but not an object (got {type(value).__name__})"
        )
    return value
