"""The WebSocket the Twilio edge runs on: the core's three-method adapter protocol.

:class:`TwilioEdge` talks to Twilio through :class:`MediaSocket`, three coroutines, so that any
web server can host it: aiohttp (built in, :class:`AiohttpMediaSocket`), Starlette/FastAPI, or a
``websockets`` server, each with a few lines of adapter (see ``docs/twilio/guide.md``). The
protocol, its aiohttp form and the rate limit live in the core (``voicewire.bridge``), where
every telephony plugin finds them; they are re-exported here under their old names.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.client_ws import ClientWebSocketResponse

from voicewire.bridge.aiohttp_socket import AiohttpMediaSocket
from voicewire.bridge.socket import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_POLICY_VIOLATION,
    MediaSocket,
    MediaSocketError,
    MessageRateLimit,
)

__all__ = [
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_POLICY_VIOLATION",
    "AiohttpMediaSocket",
    "MediaSocket",
    "MediaSocketError",
    "MessageRateLimit",
    "as_media_socket",
]


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
