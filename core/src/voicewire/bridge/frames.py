"""Reading a provider's JSON text frames, the way most media-stream dialects are written.

A :class:`~voicewire.bridge.Dialect`'s ``receive`` never raises: a frame that breaks the dialect
becomes an :class:`~voicewire.bridge.EdgeError` and the call goes on. :class:`FrameError` carries
that error's message and code through the dialect's own checks, and :func:`json_object` does the
checks every JSON dialect starts with. Sans-I/O: no clock, no I/O.

::

    def receive(self, frame: str | bytes) -> EdgeEvent | None:
        try:
            obj = json_object(frame, provider="acme", max_chars=self._max_frame_chars)
            ...
        except FrameError as bad:
            return bad.event()
"""

from __future__ import annotations

import json
from typing import Any

from voicewire.bridge.edge import EdgeError

__all__ = ["FrameError", "json_object"]


class FrameError(Exception):
    """A frame that breaks the dialect: the message and code of the ``EdgeError`` it becomes.

    The message is shown to whoever handles the error event and logged: describe the frame's
    shape (which key, which limit), never its content, which carries caller audio and often
    per-call parameters.

    Args:
        message: What is wrong with the frame.
        code: A short machine-readable code (``EdgeError.code``).
    """

    def __init__(self, message: str, code: str = "bad_message") -> None:
        super().__init__(message)
        self.code = code

    def event(self) -> EdgeError:
        """The edge event this error becomes."""
        return EdgeError(message=str(self), code=self.code)


def json_object(frame: str | bytes, *, provider: str, max_chars: int) -> dict[str, Any]:
    """The JSON object a text frame holds.

    Args:
        frame: The WebSocket frame as received.
        provider: The provider's name, for the messages.
        max_chars: The longest frame read; a longer one is refused unread.

    Returns:
        The decoded object.

    Raises:
        FrameError: With code ``binary_frame`` (a binary frame), ``too_large`` (longer than
            ``max_chars``), ``invalid_json`` (not JSON) or ``not_an_object`` (JSON, but not an
            object).
    """
    if not isinstance(frame, str):
        raise FrameError(
            f"binary frame of {len(frame)} bytes: {provider} frames are text", "binary_frame"
        )
    if len(frame) > max_chars:
        raise FrameError(f"frame of {len(frame)} characters is over the limit", "too_large")
    try:
        obj = json.loads(frame)
    except ValueError:
        raise FrameError("frame is not JSON", "invalid_json") from None
    if not isinstance(obj, dict):
        raise FrameError(f"frame must be a JSON object, got {type(obj).__name__}", "not_an_object")
    return obj
