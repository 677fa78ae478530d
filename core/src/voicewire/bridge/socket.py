"""The socket an edge runs on: a three-method adapter protocol, its errors, a rate limit.

An edge (:class:`voicewire.bridge.DialectEdge`, ``voicewire_twilio.TwilioEdge``) talks to the
provider through :class:`MediaSocket`, three coroutines, so that any web server can host it:
aiohttp (built in, :class:`voicewire.bridge.aiohttp_socket.AiohttpMediaSocket`),
Starlette/FastAPI, or a ``websockets`` server, each with a few lines of adapter (see
``docs/twilio/guide.md``). Nothing here does I/O or imports a web framework.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from voicewire.errors import ConfigError, VoicewireError

__all__ = [
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_POLICY_VIOLATION",
    "MediaSocket",
    "MediaSocketError",
    "MessageRateLimit",
]

CLOSE_POLICY_VIOLATION = 1008
"""Close code sent when a peer exceeds the message-rate limit."""

CLOSE_MESSAGE_TOO_BIG = 1009
"""Close code sent when a peer sends a frame above the size limit."""


@runtime_checkable
class MediaSocket(Protocol):
    """What a telephony edge needs from the WebSocket a provider streams a call over.

    Implement it to host an edge on a web server other than aiohttp (aiohttp's is
    :class:`voicewire.bridge.aiohttp_socket.AiohttpMediaSocket`). Only one task calls
    :meth:`receive_frame`; :meth:`send_text` is called by one task at a time; :meth:`close` may be
    called from any task, also while :meth:`receive_frame` waits. A dialect that sends binary
    frames also needs ``async send_bytes(data)`` (:class:`voicewire.bridge.DialectEdge` calls it
    only for those).
    """

    async def receive_frame(self) -> str | bytes | None:
        """Wait for the next data frame.

        Returns:
            A text frame as ``str``, a binary frame as ``bytes`` (the edge reports it as an
            error), or ``None`` once the connection is closed (by either side).

        Raises:
            MediaSocketError: The socket layer refused a frame (too large, too many, broken
                framing). The edge reports it and reads on; a socket that closed itself in the
                process returns ``None`` on the next call.
        """
        ...

    async def send_text(self, text: str) -> None:
        """Send one text frame. May raise once the connection is closed."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (idempotent). ``reason`` is at most 123 bytes of UTF-8."""
        ...


class MediaSocketError(VoicewireError):
    """The socket layer refused an inbound frame.

    Attributes:
        code: Machine-readable reason, e.g. ``"message_too_large"``, ``"rate_limited"``,
            ``"websocket_error"``.
    """

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class MessageRateLimit:
    """A token bucket over inbound messages: ``rate`` per second, bursts up to ``burst``.

    A media stream carries 50 frames a second (20 ms each) plus a few control messages; frames
    can arrive bunched after a network stall, which the burst absorbs. Time enters as ``now`` (seconds, monotonic).

    Args:
        rate: Sustained messages per second (> 0).
        burst: Bucket size: messages accepted at once after a quiet period (>= 1).

    Raises:
        ConfigError: A value is out of range.
    """

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: float) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate):
            raise ConfigError("max_messages_per_second", f"must be a finite number, got {rate!r}")
        if rate <= 0:
            raise ConfigError("max_messages_per_second", f"must be > 0, got {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, (int, float)) or not burst >= 1:
            raise ConfigError("message_burst", f"must be a number >= 1, got {burst!r}")
        if not math.isfinite(burst):
            raise ConfigError("message_burst", f"must be finite, got {burst!r}")
        self._rate = float(rate)
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None

    def __repr__(self) -> str:
        return f"MessageRateLimit(rate={self._rate}, burst={self._burst})"

    def allow(self, now: float) -> bool:
        """Take one message's token at time ``now``; ``False`` when the bucket is empty."""
        if self._last is not None and now > self._last:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now if self._last is None else max(self._last, now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
