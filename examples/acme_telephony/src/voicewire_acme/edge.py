"""``AcmeEdge``: the Acme Voice dialect as a ``voicewire.bridge.TelephonyEdge``.

Everything that is the same for every provider (format conversion, playback tracking, barge-in,
truncation, padding, closing) is the call bridge's job, and reading and writing the socket is
``voicewire.bridge.DialectEdge``'s. What is Acme's is :class:`~voicewire_acme.protocol.AcmeCall`.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.client_ws import ClientWebSocketResponse

from voicewire.bridge import DialectEdge
from voicewire.bridge.aiohttp_socket import AiohttpMediaSocket
from voicewire_acme.protocol import DEFAULT_MAX_FRAME_BYTES, AcmeCall

__all__ = ["AcmeEdge"]


class AcmeEdge(DialectEdge):
    """An Acme Voice media stream as the telephony edge of a call bridge.

    Capabilities: acknowledgements (Acme's marks) and the codec announced by ``hello`` (A-law
    8 kHz until then). Build the edge on the accepted WebSocket; call :meth:`accept` before
    building the bridge when the call may announce another codec, so the bridge sees it.

    ``play`` sends at once and waits for the socket (back-pressure); commands after the call
    ended do nothing. Frames that break the dialect become ``EdgeError`` and the call goes on.

    Args:
        websocket: The prepared aiohttp WebSocket (server response or client connection).
        max_frame_bytes: Largest inbound frame accepted.
    """

    def __init__(
        self,
        websocket: web.WebSocketResponse | ClientWebSocketResponse,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        super().__init__(AcmeCall(max_frame_bytes=max_frame_bytes), AiohttpMediaSocket(websocket))
