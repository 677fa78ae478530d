"""Outbound messages: the three frames an application may send on a bidirectional stream.

Each builder returns the JSON text to send as one WebSocket text frame, with exactly the fields
Twilio accepts: Twilio reports any extra field as error 31951 and drops the message.
"""

from __future__ import annotations

import base64
import functools
import json

from voicewire_twilio.protocol._rules import mark_name_problem, sid_problem
from voicewire_twilio.protocol.errors import TwilioBuildError

__all__ = ["clear_message", "mark_message", "media_message"]


# Compact and ASCII-only, so the frame is valid whatever the text-frame encoder does with
# non-ASCII. The messages are assembled from JSON-encoded strings rather than through json.dumps:
# media and marks go out dozens of times a second per call, and their shapes never change.
_json_string = json.encoder.encode_basestring_ascii


@functools.lru_cache(maxsize=256)
def _sid_json(stream_sid: str) -> str:
    # A stream sends one sid for its whole life: check and encode it once.
    problem = sid_problem(stream_sid)
    if problem is not None:
        raise TwilioBuildError("stream_sid", problem)
    return _json_string(stream_sid)


def _sid_field(stream_sid: str) -> str:
    # The sid, checked, as the JSON string that goes into the message.
    if not isinstance(stream_sid, str):
        raise TypeError(f"stream_sid must be a str, got {type(stream_sid).__name__}")
    return _sid_json(stream_sid)


def media_message(stream_sid: str, payload: bytes | bytearray | memoryview) -> str:
    """Build a ``media`` message that queues audio for playback to the caller.

    Args:
        stream_sid: The stream, from :attr:`Start.stream_sid`.
        payload: Raw audio in the stream's format (mu-law 8 kHz, no file header). Twilio
            plays chunks of any size, but see :class:`~voicewire_twilio.protocol.Framer` for why
            20 ms frames sound better.

    Returns:
        ``{"event":"media","streamSid":…,"media":{"payload":<base64>}}``.

    Raises:
        TwilioBuildError: ``stream_sid`` is empty or malformed, or ``payload`` is empty.
        TypeError: ``payload`` is not bytes-like (a base64 ``str`` is refused: decode it first,
            or it would be encoded twice and play as noise).
    """
    sid = _sid_field(stream_sid)
    checked: object = payload  # typed bytes, but base64 text is the likely mistake
    if isinstance(checked, str):
        raise TypeError("payload must be raw audio bytes, got str (decode base64 first)")
    try:
        raw = memoryview(payload)
    except TypeError:
        raise TypeError(
            f"payload must be a bytes-like object, got {type(payload).__name__}"
        ) from None
    if raw.nbytes == 0:
        raise TwilioBuildError("payload", "must not be empty")
    encoded = base64.b64encode(raw).decode("ascii")
    return '{"event":"media","streamSid":' + sid + ',"media":{"payload":"' + encoded + '"}}'


def mark_message(stream_sid: str, name: str) -> str:
    """Build a ``mark`` message: Twilio echoes it once the audio queued before it has played.

    Args:
        stream_sid: The stream.
        name: The mark's name, echoed back verbatim; see
            :class:`~voicewire_twilio.protocol.MarkNamer`.

    Returns:
        ``{"event":"mark","streamSid":…,"mark":{"name":…}}``.

    Raises:
        TwilioBuildError: ``stream_sid`` is empty or malformed, or ``name`` is empty, longer than
            :data:`MAX_MARK_NAME_LENGTH` or not valid Unicode.
        TypeError: ``name`` is not a str.
    """
    sid = _sid_field(stream_sid)
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    problem = mark_name_problem(name)
    if problem is not None:
        raise TwilioBuildError("name", problem)
    return '{"event":"mark","streamSid":' + sid + ',"mark":{"name":' + _json_string(name) + "}}"


def clear_message(stream_sid: str) -> str:
    """Build a ``clear`` message: Twilio drops all queued audio and echoes every pending mark.

    Args:
        stream_sid: The stream.

    Returns:
        ``{"event":"clear","streamSid":…}``.

    Raises:
        TwilioBuildError: ``stream_sid`` is empty or malformed.
    """
    return '{"event":"clear","streamSid":' + _sid_field(stream_sid) + "}"
