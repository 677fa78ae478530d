"""The aiohttp form of :class:`voicewire.bridge.MediaSocket`.

Imports aiohttp, which the core does not require: install ``voicewire[cli]`` or
``voicewire[testing]``, or aiohttp itself, to use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NoReturn

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.client_ws import ClientWebSocketResponse

from voicewire.bridge.socket import CLOSE_POLICY_VIOLATION, MediaSocketError, MessageRateLimit

__all__ = ["AiohttpMediaSocket"]


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

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary frame (for dialects that send binary frames). May raise once the
        connection is closed."""
        await self._ws.send_bytes(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """See :meth:`MediaSocket.close`."""
        await self._ws.close(code=code, message=reason.encode("utf-8")[:123])
