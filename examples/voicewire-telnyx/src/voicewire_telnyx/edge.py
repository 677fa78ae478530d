"""``TelnyxEdge``: Telnyx media streaming as a ``voicewire.bridge.TelephonyEdge``.

Format conversion, playback tracking, barge-in, truncation, padding and closing are the call
bridge's job. The edge only moves Telnyx's frames between an aiohttp WebSocket and
:class:`~voicewire_telnyx.protocol.TelnyxStream`.
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
from voicewire_telnyx.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    Acknowledged,
    CallEvent,
    Ended,
    Media,
    Pressed,
    Refused,
    Started,
    TelnyxStream,
)

__all__ = ["TelnyxEdge"]

_CLOSE_REASON_BYTES = 123  # the WebSocket limit of a close reason


def _to_edge_event(event: CallEvent) -> EdgeEvent:
    if isinstance(event, Media):
        return CallerAudio(data=event.data, timestamp_ms=event.timestamp_ms)
    if isinstance(event, Acknowledged):
        return PlaybackAcknowledged(token=event.token)
    if isinstance(event, Started):
        return CallStarted(
            call_id=event.call_id,
            stream_id=event.stream_id,
            audio_format=event.audio_format,
            custom_parameters=event.params,
        )
    if isinstance(event, Pressed):
        return Dtmf(digit=event.digit)
    if isinstance(event, Ended):
        return CallStopped(reason=event.reason)
    assert isinstance(event, Refused)
    return EdgeError(message=event.message, code=event.code)


class TelnyxEdge:
    """A Telnyx media stream as the telephony edge of a call bridge.

    Capabilities: acknowledgements (Telnyx's marks) and the format announced by ``start``
    (mu-law 8 kHz until then; L16 is presented as little-endian ``pcm16``). Build the edge on
    the accepted WebSocket; call :meth:`accept` before building the bridge, so the bridge sees
    the announced format.

    ``play`` sends at once and waits for the socket (back-pressure); commands after the
    connection ended do nothing. Frames that break the dialect become ``EdgeError`` and the
    call goes on.

    Args:
        websocket: The prepared aiohttp WebSocket (server response or client connection).
        max_frame_bytes: Largest inbound frame accepted.
    """

    provider = "telnyx"

    def __init__(
        self,
        websocket: web.WebSocketResponse | ClientWebSocketResponse,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self._ws = websocket
        self._call = TelnyxStream(max_frame_bytes=max_frame_bytes)
        self._early: deque[EdgeEvent] = deque()
        self._send_lock = asyncio.Lock()
        self._iterated = False
        self._stopped = False
        self._reading_done = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<TelnyxEdge call={self._call.call_id} closed={self._closed}>"

    @property
    def capabilities(self) -> EdgeCapabilities:
        """Acknowledgements supported; the call's codec."""
        return EdgeCapabilities(
            acknowledgements=True, audio_format=self._call.audio_format, provider="telnyx"
        )

    @property
    def call_id(self) -> str | None:
        """Telnyx's ``call_control_id``, once ``start`` arrived."""
        return self._call.call_id

    async def accept(self) -> CallStarted:
        """Read until ``start``; what came before it is yielded first by :meth:`events`.

        Raises:
            ProtocolError: The connection ended before ``start``.
        """
        while self._call.call_id is None:
            event = await self._next()
            if event is None:
                raise ProtocolError("the Telnyx connection ended before start")
            self._early.append(event)
        started = next(e for e in self._early if isinstance(e, CallStarted))
        return started

    def events(self) -> AsyncIterator[EdgeEvent]:
        """Inbound events until the connection ends. Iterate once.

        Raises:
            TransportStateError: Iterated a second time.
        """
        if self._iterated:
            raise TransportStateError("TelnyxEdge.events() can be iterated only once")
        self._iterated = True
        return self._events()

    async def _events(self) -> AsyncIterator[EdgeEvent]:
        while self._early:
            yield self._early.popleft()
        while (event := await self._next()) is not None:
            yield event
        if not self._stopped:
            # Telnyx vanished without stop: the call is over all the same.
            self._stopped = True
            yield CallStopped(reason="connection_closed")

    async def _next(self) -> EdgeEvent | None:
        if self._reading_done:
            return None
        while True:
            message = await self._ws.receive()
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                parsed = self._call.receive(message.data)
                if parsed is None:
                    continue  # connected, or the outbound track
                event = _to_edge_event(parsed)
                if isinstance(event, CallStopped):
                    self._stopped = True
                return event
            break
        if message.type == WSMsgType.ERROR:
            self._reading_done = True
            return EdgeError(message=f"the Telnyx connection failed: {message.data}", code="socket")
        # CLOSE, CLOSING, CLOSED: aiohttp answers the close handshake itself.
        self._reading_done = True
        return None

    async def play(self, data: bytes) -> None:
        """Send audio (in ``capabilities.audio_format``) to the caller."""
        for frame in self._call.media(bytes(data)):
            await self._send(frame)

    async def acknowledge_when_played(self, token: str) -> None:
        """Send a mark; ``PlaybackAcknowledged(token)`` follows when Telnyx reports it played."""
        await self._send(self._call.mark(token))

    async def clear(self) -> None:
        """Make Telnyx drop its queued audio; it sends the queued marks back."""
        await self._send(self._call.clear())

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
