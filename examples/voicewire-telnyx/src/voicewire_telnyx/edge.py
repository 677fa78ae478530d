"""``TelnyxEdge``: Telnyx media streaming as a ``voicewire.bridge.TelephonyEdge``.

Format conversion, playback tracking, barge-in, truncation, padding and closing are the call
bridge's job, and reading and writing the socket is ``voicewire.bridge.DialectEdge``'s. What is
Telnyx's is :class:`~voicewire_telnyx.protocol.TelnyxStream`.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.client_ws import ClientWebSocketResponse

from voicewire.bridge import DialectEdge
from voicewire.bridge.aiohttp_socket import AiohttpMediaSocket
from voicewire.bridge.socket import MessageRateLimit
from voicewire_telnyx.protocol import DEFAULT_MAX_FRAME_BYTES, TelnyxStream

__all__ = ["TelnyxEdge"]


class TelnyxEdge(DialectEdge):
    """A Telnyx media stream as the telephony edge of a call bridge.

    Capabilities: acknowledgements (Telnyx's marks) and the format announced by ``start``
    (mu-law 8 kHz until then; L16 is big-endian ``pcm16be``, which the bridge converts). Build
    the edge on the accepted WebSocket; call :meth:`accept` before building the bridge, so the
    bridge sees the announced format.

    Args:
        websocket: The prepared aiohttp WebSocket (server response or client connection).
        max_frame_bytes: Largest inbound frame accepted.
        rate_limit: Inbound message-rate limit (the connection is closed with 1008 past it), or
            ``None`` for none.
    """

    def __init__(
        self,
        websocket: web.WebSocketResponse | ClientWebSocketResponse,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        rate_limit: MessageRateLimit | None = None,
    ) -> None:
        super().__init__(
            TelnyxStream(max_frame_bytes=max_frame_bytes),
            AiohttpMediaSocket(websocket, rate_limit=rate_limit),
        )
