"""The WebSocket the Twilio edge runs on: a three-method adapter protocol and its aiohttp form.

:class:`TwilioEdge` talks to Twilio through :class:`MediaSocket`, three coroutines, so that any
web server can host it: aiohttp (built in, :class:`AiohttpMediaSocket`), Starlette/FastAPI, or a
``websockets`` server, each with a few lines of adapter (see ``docs/twilio/guide.md``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NoReturn, Protocol, runtime_checkable

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.client_ws import ClientWebSocketResponse

from voicewire.errors import ConfigError, VoicewireError

__all__ = [
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_POLICY_VIOLATION",
    "AiohttpMediaSocket",
    "MediaSocket",
    "MediaSocketError",
    "MessageRateLimit",
    "as_media_socket",
]

CLOSE_POLICY_VIOLATION = 1008
"""Close code sent when a peer exceeds the message-rate limit."""

CLOSE_MESSAGE_TOO_BIG = 1009
"""Close code sent when a peer sends a frame above the size limit."""


@runtime_checkable
class MediaSocket(Protocol):
    """What the Twilio edge needs from a WebSocket server connection.

    Implement it to host the edge on a web server other than aiohttp. Only one task calls
    :meth:`receive_frame`; :meth:`send_text` is called by one task at a time; :meth:`close` may be
    called from any task, also while :meth:`receive_frame` waits.
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

    Twilio sends 50 media frames a second plus a few marks; frames can arrive bunched after a
    network stall, which the burst absorbs. Time enters as ``now`` (seconds, monotonic).

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


class AiohttpMediaSocket:
    """:class:`MediaSocket` over an aiohttp WebSocket (server response or client connection).

    The size limit is aiohttp's own ``max_msg_size`` (set it on the ``WebSocketResponse``): a
    bigger frame makes aiohttp close the connection with 1009, reported here as a
    ``MediaSocketError`` with code ``"message_too_large"``. The optional rate limit closes the
    connection with 1008 when exceeded.

    Args:
        websocket: A prepared ``aiohttp.web.WebSocketResponse`` or a ``ClientWebSocketResponse``.
        rate_limit: Inbound message-rate limit, or ``None`` for none.
        clock: Monotonic seconds, for the rate limit (tests may pass their own).
    """

    def __init__(
        self,
        websocket: web.WebSocketResponse | ClientWebSocketResponse,
        *,
        rate_limit: MessageRateLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ws = websocket
        self._rate_limit = rate_limit
        self._clock = clock
        self._refused = False

    def __repr__(self) -> str:
        return f"<AiohttpMediaSocket closed={self._ws.closed}>"

    @property
    def websocket(self) -> web.WebSocketResponse | ClientWebSocketResponse:
        """The wrapped aiohttp WebSocket."""
        return self._ws

    @property
    def close_code(self) -> int | None:
        """The close code once closed (aiohttp's view), else ``None``."""
        return self._ws.close_code

    async def receive_frame(self) -> str | bytes | None:
        """See :meth:`MediaSocket.receive_frame`."""
        while True:
            if self._refused or self._ws.closed:
                return None
            msg = await self._ws.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                # Data frames first: all but a handful of a call's frames are text.
                limit = self._rate_limit
                if limit is not None and not limit.allow(self._clock()):
                    self._refused = True
                    await self._ws.close(code=CLOSE_POLICY_VIOLATION, message=b"message rate limit")
                    raise MediaSocketError(
                        "the peer exceeded the message-rate limit; closed with 1008",
                        code="rate_limited",
                    )
                data: str | bytes = msg.data
                return data
            if kind in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return None
            if kind == WSMsgType.ERROR:
                return self._refuse_error(msg.data)
            if kind in (WSMsgType.PING, WSMsgType.PONG):
                continue  # autoping is on; these only surface when a caller turned it off
            # CONTINUATION frames are reassembled by aiohttp; anything else is unexpected.
            raise MediaSocketError(
                f"unexpected WebSocket frame type {kind!r}", code="websocket_error"
            )

    def _refuse_error(self, error: object) -> NoReturn:
        # aiohttp turns a frame above max_msg_size into an ERROR message and closes with 1009.
        code = getattr(error, "code", None)
        self._refused = True
        if code == WSCloseCode.MESSAGE_TOO_BIG:
            raise MediaSocketError(
                "a frame exceeded the size limit; closed with 1009", code="message_too_large"
            )
        raise MediaSocketError(
            f"WebSocket protocol error ({type(error).__name__})", code="websocket_error"
        )

    async def send_text(self, text: str) -> None:
        """See :meth:`MediaSocket.send_text`."""
        await self._ws.send_str(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """See :meth:`MediaSocket.close`."""
        await self._ws.close(code=code, message=reason.encode("utf-8")[:123])


def as_media_socket(websocket: object) -> MediaSocket:
    """Wrap an aiohttp WebSocket; pass anything already satisfying :class:`MediaSocket` through.

    Raises:
        TypeError: ``websocket`` is neither.
    """
    if isinstance(websocket, (web.WebSocketResponse, ClientWebSocketResponse)):
        return AiohttpMediaSocket(websocket)
    if isinstance(websocket, MediaSocket):
        return websocket
    raise TypeError(
        "twilio_websocket must be an aiohttp WebSocketResponse/ClientWebSocketResponse or an"
        " object with async receive_frame(), send_text(text) and close(code, reason)"
        f" (voicewire_twilio.MediaSocket), got {type(websocket).__name__}"
    )
