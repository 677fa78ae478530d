"""The Twilio edge's own typed event: every Twilio message, raw, on the ``"*"`` channel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import attrs

from voicewire.events import WILDCARD

__all__ = ["TwilioMessageEvent"]


def _message_repr(message: Mapping[str, Any]) -> str:
    # A raw frame carries caller audio (media.payload) and <Parameter> values, where applications
    # put per-call credentials; a repr (and so a log line) shows only the event name and the keys.
    event = message.get("event")
    shown = event if isinstance(event, str) and len(event) <= 40 else "?"
    return f"<twilio {shown!r} keys={sorted(str(key) for key in message)!r}>"


@attrs.frozen(kw_only=True)
class TwilioMessageEvent:
    """A message Twilio sent, exactly as decoded from JSON, emitted on the ``"*"`` channel.

    The edge yields it (wrapped in ``RawEdgeMessage``) before the typed edge event of the same
    message, for every frame that is a JSON object, including frames the strict parser then
    refuses (an unknown ``event``, a missing field). Frames that are not JSON objects at all have
    no raw form and only produce an ``EdgeError``.

    Attributes:
        message: The decoded JSON object. Its repr shows only the event name and the keys, never
            the audio payload or the custom parameter values.
    """

    type: Literal["twilio_message"] = attrs.field(default="twilio_message", init=False)
    channel: ClassVar[str] = WILDCARD
    message: Mapping[str, Any] = attrs.field(repr=_message_repr)
