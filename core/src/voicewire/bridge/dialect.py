"""A telephony edge from a provider's dialect: the part of an edge that every provider repeats.

A provider's media stream differs from another's only in its messages. :class:`Dialect` is that
part, sans-I/O: frames in, :mod:`edge events <voicewire.bridge.edge>` out, commands to frames.
:class:`DialectEdge` is the rest of a :class:`~voicewire.bridge.TelephonyEdge`, written once:
reading frames from a :class:`~voicewire.bridge.MediaSocket`, holding what arrives before the call
starts, ending the event stream when the connection ends without a stop, keeping outbound frames
in order, and closing. A telephony plugin then writes its dialect and builds
``DialectEdge(dialect, socket)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from voicewire.bridge.edge import (
    CallStarted,
    CallStopped,
    EdgeCapabilities,
    EdgeError,
    EdgeEvent,
    RawEdgeMessage,
)
from voicewire.bridge.socket import MediaSocket, MediaSocketError
from voicewire.errors import ProtocolError, TransportStateError
from voicewire.events import RawEdgeFrameEvent

__all__ = ["Dialect", "DialectEdge"]

logger = logging.getLogger(__name__)


@runtime_checkable
class Dialect(Protocol):
    """One call in a provider's media-stream dialect, sans-I/O.

    It reads no clock and does no I/O, so it is tested with plain function calls. Its frames are
    ``str`` (text) or ``bytes`` (binary) WebSocket frames.
    """

    @property
    def capabilities(self) -> EdgeCapabilities:
        """What the edge can do; ``audio_format`` may change when the call's start names it."""
        ...

    @property
    def call_id(self) -> str | None:
        """The provider's id of the call, once its start arrived; ``None`` before."""
        ...

    def receive(self, frame: str | bytes) -> EdgeEvent | None:
        """Interpret one inbound frame. Never raises.

        Returns:
            The event it means for the bridge: :class:`~voicewire.bridge.CallStarted` for the
            start of the call, :class:`~voicewire.bridge.EdgeError` for a frame that breaks the
            dialect (the call goes on), or ``None`` for a frame that means nothing to the bridge
            (a greeting, another track).
        """
        ...

    def play(self, data: bytes) -> Sequence[str | bytes]:
        """The frames that play ``data`` (in ``capabilities.audio_format``) to the caller."""
        ...

    def mark(self, token: str) -> str | bytes:
        """The frame that asks the provider to report when playback reaches this point; the
        report comes back from :meth:`receive` as ``PlaybackAcknowledged(token)``."""
        ...

    def clear(self) -> str | bytes:
        """The frame that makes the provider drop the audio it has queued."""
        ...


class DialectEdge:
    """A :class:`~voicewire.bridge.TelephonyEdge` over a :class:`Dialect` and a
    :class:`~voicewire.bridge.MediaSocket`.

    Commands are sent at once, one frame at a time and in order, and wait for the socket
    (back-pressure). Commands after the call ended (the dialect's stop, the end of the
    connection, a send the socket refused) do nothing. A frame the socket layer refuses
    (:class:`~voicewire.bridge.MediaSocketError`) becomes an ``EdgeError`` and reading goes on.
    The event stream ends after the dialect's ``CallStopped``; a connection that ends without
    one still ends it with ``CallStopped(reason="connection_closed")``.

    Call :meth:`accept` before building the bridge when the call's start names its audio
    format: the bridge reads ``capabilities.audio_format`` once, when it is built.

    Every frame received is also yielded raw, first, as
    ``RawEdgeMessage(RawEdgeFrameEvent(provider, frame))`` while :attr:`raw_messages_wanted` says
    so (under a bridge: while something listens on ``"*"``).

    Args:
        dialect: The call's dialect state.
        socket: The connection the provider streams the call over (for aiohttp,
            :class:`voicewire.bridge.aiohttp_socket.AiohttpMediaSocket`).
    """

    def __init__(self, dialect: Dialect, socket: MediaSocket) -> None:
        self._dialect = dialect
        self._socket = socket
        # Events read but not yet yielded: those before the start (accept) and a frame's own
        # event behind its raw one.
        self._held: deque[EdgeEvent] = deque()
        self._send_lock = asyncio.Lock()
        self._iterated = False
        self._stopped = False
        self._reading_done = False
        self._send_failed = False
        self._closed = False
        self.raw_messages_wanted: Callable[[], bool] | None = None
        """Says whether anyone wants a raw event per frame now; ``None``: always.

        :class:`~voicewire.bridge.CallBridge` sets it to whether anything listens on ``"*"``, so
        that a call nobody inspects does not build a raw event for every frame.
        """

    def __repr__(self) -> str:
        provider = self._dialect.capabilities.provider
        return f"<{type(self).__name__} {provider} call={self.call_id} closed={self._closed}>"

    @property
    def capabilities(self) -> EdgeCapabilities:
        """The dialect's capabilities, as they stand now."""
        return self._dialect.capabilities

    @property
    def call_id(self) -> str | None:
        """The provider's id of the call, once its start arrived."""
        return self._dialect.call_id

    @property
    def dialect(self) -> Dialect:
        """The call's dialect state."""
        return self._dialect

    async def accept(self) -> CallStarted:
        """Read until the call's start; what came before it is yielded first by :meth:`events`.

        Raises:
            ProtocolError: The connection ended before the call started.
        """
        read: list[EdgeEvent] = []
        while True:
            event = await self._next()
            if event is None:
                self._held.extendleft(reversed(read))
                provider = self._dialect.capabilities.provider
                raise ProtocolError(f"the {provider} connection ended before the call started")
            read.append(event)
            if isinstance(event, CallStarted):
                self._held.extendleft(reversed(read))
                return event

    def events(self) -> AsyncIterator[EdgeEvent]:
        """Inbound events until the connection ends. Iterate once.

        Raises:
            TransportStateError: Iterated a second time.
        """
        if self._iterated:
            raise TransportStateError(f"{type(self).__name__}.events() can be iterated only once")
        self._iterated = True
        return self._events()

    async def _events(self) -> AsyncIterator[EdgeEvent]:
        while (event := await self._next()) is not None:
            yield event
        if not self._stopped:
            # The provider vanished without its stop: the call is over all the same.
            self._stopped = True
            yield CallStopped(reason="connection_closed")

    async def _next(self) -> EdgeEvent | None:
        if self._held:
            return self._held.popleft()
        while not self._reading_done:
            try:
                frame = await self._socket.receive_frame()
            except MediaSocketError as exc:
                return EdgeError(message=str(exc), code=exc.code)
            if frame is None:
                self._reading_done = True
                return None
            event = self._dialect.receive(frame)
            if isinstance(event, CallStopped):
                # The provider ended the call: nothing it sends after that matters, and nothing
                # is sent to it any more.
                self._stopped = self._reading_done = True
            wanted = self.raw_messages_wanted
            if wanted is None or wanted():
                if event is not None:
                    self._held.append(event)
                provider = self._dialect.capabilities.provider
                return RawEdgeMessage(event=RawEdgeFrameEvent(provider=provider, frame=frame))
            if event is not None:
                return event
        return None

    async def play(self, data: bytes) -> None:
        """Send audio (in ``capabilities.audio_format``) to the caller."""
        for frame in self._dialect.play(bytes(data)):
            await self._send(frame)

    async def acknowledge_when_played(self, token: str) -> None:
        """Send a mark; ``PlaybackAcknowledged(token)`` follows when the provider reports it."""
        await self._send(self._dialect.mark(token))

    async def clear(self) -> None:
        """Make the provider drop its queued audio."""
        await self._send(self._dialect.clear())

    async def close(self, reason: str | None = None) -> None:
        """Close the connection (normal closure). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._socket.close(1000, reason or "")

    async def _send(self, frame: str | bytes) -> None:
        send_bytes: Callable[[bytes], Awaitable[None]] | None = None
        if not isinstance(frame, str):
            send_bytes = getattr(self._socket, "send_bytes", None)
            if send_bytes is None:
                raise TypeError(
                    f"the dialect made a binary frame, but {type(self._socket).__name__} has no"
                    " send_bytes()"
                )
        async with self._send_lock:
            if self._closed or self._reading_done or self._send_failed:
                return  # the call is over: nothing left to play to
            try:
                if isinstance(frame, str):
                    await self._socket.send_text(frame)
                elif send_bytes is not None:
                    await send_bytes(frame)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The peer went away mid-send (each web server says so its own way); the reader
                # sees the end of the stream, and nothing more is sent.
                self._send_failed = True
                logger.debug("the media connection refused a send; outbound stopped", exc_info=True)
