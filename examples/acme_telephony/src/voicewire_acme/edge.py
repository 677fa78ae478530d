"""``AcmeEdge``: the Acme Voice dialect as a ``voicewire.bridge.TelephonyEdge``.

Everything that is the same for every provider (format conversion, playback tracking, barge-in,
truncation, padding, closing) is the call bridge's job. The edge only moves Acme's frames
between an aiohttp WebSocket and :class:`~voicewire_acme.protocol.AcmeCall`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web
from aiohttp.client_ws import ClientWebSocketResponse

from voicewire.bridge.edge import (
    CallerAudio,
    CallStarted,
    CallStopped,
    Dtmf,
    EdgeCapabilities,
    EdgeError,
    EdgeEvent,
    PlaybackAcknowledged,
)
from voicewire.errors import ProtocolError, TransportStateError
from voicewire_acme.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    Acknowledged,
    AcmeCall,
    CallEvent,
    Ended,
    Media,
    Pressed,
    Refused,
    Started,
)

__all__ = ["AcmeEdge"]

_CLOSE_REASON_BYTES = 123  # the WebSocket limit of a close reason


def _to_edge_event(event: CallEvent) -> EdgeEvent:
    if isinstance(event, Media):
        return CallerAudio(data=event.data, timestamp_ms=event.timestamp_ms)
    if isinstance(event, Acknowledged):
        return PlaybackAcknowledged(token=event.token)
    if isinstance(event, Started):
        return CallStarted(
            call_id=event.call_id,
            stream_id=None,
            audio_format=event.audio_format,
            custom_parameters=event.params,
        )
    if isinstance(event, Pressed):
        return Dtmf(digit=event.digit)
    if isinstance(event, Ended):
        return CallStopped(reason=event.reason)
    assert isinstance(event, Refused)
    return EdgeError(message=event.message, code=event.code)


class AcmeEdge:
    """An Acme Voice media stream as the telephony edge of a call bridge.

    Capabilities: acknowledgements (Acme's marks) and the codec announced by ``hello`` (A-law
    8 kHz until then). Build the edge on the accepted WebSocket; call :meth:`accept` before
    building the bridge when the call may announce another codec, so the bridge sees it.

    ``play`` sends at once and waits for the socket (back-pressure); commands after the
    connection ended do nothing. Frames that break the dialect become ``EdgeError`` and the
    call goes on.

    Args:
        websocket: The prepared aiohttp WebSocket (server response or client connection).
        max_frame_bytes: Largest inbound frame accepted.
    """

    provider = "acme"

    def __init__(
        self,
        websocket: web.WebSocketResponse | ClientWebSocketResponse,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self._ws = websocket
        self._call = AcmeCall(max_frame_bytes=max_frame_bytes)
        self._early: deque[EdgeEvent] = deque()
        self._send_lock = asyncio.Lock()
        self._iterated = False
        self._stopped = False
        self._reading_done = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<AcmeEdge call={self._call.call_id} closed={self._closed}>"

    @property
    def capabilities(self) -> EdgeCapabilities:
        """Acknowledgements supported; the call's codec."""
        return EdgeCapabilities(
            acknowledgements=True, audio_format=self._call.audio_format, provider="acme"
        )

    @property
    def call_id(self) -> str | None:
        """Acme's call id, once ``hello`` arrived."""
        return self._call.call_id

    async def accept(self) -> CallStarted:
        """Read until ``hello``; what came before it is yielded first by :meth:`events`.

        Raises:
            ProtocolError: The connection ended before ``hello``.
        """
        while self._call.call_id is None:
            event = await self._next()
            if event is None:
                raise ProtocolError("the Acme connection ended before hello")
            self._early.append(event)
        started = next(e for e in self._early if isinstance(e, CallStarted))
        return started

    def events(self) -> AsyncIterator[EdgeEvent]:
        """Inbound events until the connection ends. Iterate once.

        Raises:
            TransportStateError: Iterated a second time.
        """
        if self._iterated:
            raise TransportStateError("AcmeEdge.events() can be iterated only once")
        self._iterated = True
        return self._events()

    async def _events(self) -> AsyncIterator[EdgeEvent]:
        while self._early:
            yield self._early.popleft()
        while (event := await self._next()) is not None:
            yield event
        if not self._stopped:
            # Acme vanished without bye: the call is over all the same.
            self._stopped = True
            yield CallStopped(reason="connection_closed")

    async def _next(self) -> EdgeEvent | None:
        if self._reading_done:
            return None
        message = await self._ws.receive()
        if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            event = _to_edge_event(self._call.receive(message.data))
            if isinstance(event, CallStopped):
                self._stopped = True
            return event
        if message.type == WSMsgType.ERROR:
            self._reading_done = True
            return EdgeError(message=f"the Acme connection failed: {message.data}", code="socket")
        # CLOSE, CLOSING, CLOSED: aiohttp answers the close handshake itself.
        self._reading_done = True
        return None

    async def play(self, data: bytes) -> None:
        """Send audio (in ``capabilities.audio_format``) to the caller."""
        for frame in self._call.play(bytes(data)):
            await self._send(frame)

    async def acknowledge_when_played(self, token: str) -> None:
        """Send a mark; ``PlaybackAcknowledged(token)`` follows when Acme reports it played."""
        await self._send(self._call.mark(token))

    async def clear(self) -> None:
        """Make Acme drop its queued audio; it reports the marks it dropped as played."""
        await self._send(self._call.flush())

    async def close(self, reason: str | None = None) -> None:
        """Close the WebSocket (normal closure). Idempotent."""
        if self._closed:
            return
        self._closed = True
        message = (reason or "").encode()[:_CLOSE_REASON_BYTES]
        await self._ws.close(code=1000, message=message)

    async def _send(self, frame: str) -> None:
        async with self._send_lock:
            if self._closed or self._ws.closed:
                return  # the call is over: nothing left to play to
            try:
                await self._ws.send_str(frame)
            except ConnectionError:
                # The peer went away mid-send; the reader sees the end of the stream.
                return
