"""In-memory doubles registered by the test plugins: no sockets, no clocks.

:class:`EchoTransport` is a complete ``RealtimeTransportLayer`` that answers every audio chunk with
the same bytes as model audio. :class:`LoopbackEdge` records the commands a bridge gives a
telephony edge. Both are deliberately standalone (plain lists of listeners) so that the plugin
machinery can be tested without the rest of voicewire.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from voicewire.errors import MuteNotSupportedError, NotConnectedError, TransportStateError
from voicewire.events import (
    AudioDoneEvent,
    AudioEvent,
    AudioInterruptedEvent,
    ConnectionChangeEvent,
    channel_of,
)

if TYPE_CHECKING:
    from voicewire.config import SessionConfig
    from voicewire.events import FunctionCallEvent, TransportEvent
    from voicewire.items import RealtimeItem, UserMessageItem
    from voicewire.transport import ConnectOptions, TransportStatus

__all__ = ["EchoTransport", "LoopbackEdge"]

Listener = Callable[[Any], object]

_EVENTS_MAXSIZE = 256


class EchoTransport:
    """A model transport whose "model" repeats every input audio chunk back as an ``audio`` event.

    Args:
        label: Free text kept on the instance, so tests can check that options reach the factory.
        plugin_observers: Ask the plugins for session observers on ``connect`` (the
            ``voicewire_session_observer`` hook) and tell them about status changes.
    """

    def __init__(self, *, label: str = "echo", plugin_observers: bool = True) -> None:
        self.label = label
        self.received_audio: list[bytes] = []
        self.sent_events: list[Mapping[str, Any]] = []
        self.session_configs: list[SessionConfig] = []
        self.observers: list[object] = []
        self._plugin_observers = plugin_observers
        self._status: TransportStatus = "disconnected"
        self._listeners: dict[str, list[tuple[Listener, bool]]] = {}
        self._streams: list[tuple[frozenset[str], asyncio.Queue[TransportEvent | None]]] = []
        self._tasks: set[asyncio.Task[object]] = set()
        self._responses = 0

    @property
    def status(self) -> TransportStatus:
        return self._status

    @property
    def muted(self) -> bool | None:
        return None  # the application owns the microphone

    def _set_status(self, status: TransportStatus) -> None:
        self._status = status
        for observer in self.observers:
            method = getattr(observer, "on_connection_change", None)
            if method is not None:
                method(status)
        self.emit("connection_change", ConnectionChangeEvent(status=status))

    def _require_connected(self) -> None:
        if self._status != "connected":
            raise NotConnectedError(f"echo transport is {self._status}")

    async def connect(self, options: ConnectOptions) -> None:
        del options  # nothing to dial
        if self._status != "disconnected":
            raise TransportStateError(f"connect() while {self._status}")
        if self._plugin_observers:
            from voicewire.plugins import get_plugin_manager

            self.observers = get_plugin_manager().session_observers(self)
        self._set_status("connecting")
        self._set_status("connected")

    async def close(self) -> None:
        if self._status == "disconnected":
            return
        self._set_status("disconnecting")
        self._set_status("disconnected")
        for _, queue in self._streams:
            queue.put_nowait(None)  # ends the iterators; None never counts against the bound
        self._streams.clear()

    async def send_audio(self, audio: bytes, *, commit: bool = False) -> None:
        self._require_connected()
        self.received_audio.append(audio)
        response_id = f"resp_echo_{self._responses}"
        self.emit("audio", AudioEvent(data=audio, response_id=response_id, item_id="item_echo"))
        if commit:
            self.emit("audio_done", AudioDoneEvent(response_id=response_id, item_id="item_echo"))
            self._responses += 1

    async def send_event(self, event: Mapping[str, Any]) -> None:
        self._require_connected()
        self.sent_events.append(dict(event))

    async def send_message(
        self,
        message: str | UserMessageItem,
        other_event_data: Mapping[str, Any] | None = None,
    ) -> None:
        self._require_connected()
        self.sent_events.append({"type": "message", "message": message, **(other_event_data or {})})

    async def send_function_call_output(
        self, tool_call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> None:
        self._require_connected()
        self.sent_events.append(
            {"type": "function_call_output", "call_id": tool_call.call_id, "output": output}
        )

    async def interrupt(self) -> None:
        self._require_connected()
        self.emit("audio_interrupted", AudioInterruptedEvent(response_id=None))

    def mute(self, muted: bool) -> None:
        raise MuteNotSupportedError("the echo transport does not own the microphone")

    async def reset_history(self, old: Sequence[RealtimeItem], new: Sequence[RealtimeItem]) -> None:
        self._require_connected()

    async def update_session_config(self, config: SessionConfig) -> None:
        self.session_configs.append(config)

    def on(self, channel: str, listener: Listener) -> None:
        self._listeners.setdefault(channel, []).append((listener, False))

    def off(self, channel: str, listener: Listener) -> None:
        entries = self._listeners.get(channel, [])
        self._listeners[channel] = [entry for entry in entries if entry[0] != listener]

    def once(self, channel: str, listener: Listener) -> None:
        self._listeners.setdefault(channel, []).append((listener, True))

    def emit(self, channel: str, event: Any) -> None:
        entries = self._listeners.get(channel, [])
        self._listeners[channel] = [entry for entry in entries if not entry[1]]
        for listener, _ in entries:
            result = listener(event)
            if inspect.isawaitable(result):
                task: asyncio.Task[object] = asyncio.ensure_future(result)
                self._tasks.add(task)  # a task nobody references may be collected mid-run
                task.add_done_callback(self._tasks.discard)
        for channels, queue in self._streams:
            if channels and channel_of(event) not in channels:
                continue
            if queue.qsize() >= _EVENTS_MAXSIZE:
                queue.get_nowait()  # a slow reader loses the oldest events, not the newest
            queue.put_nowait(event)

    def events(self, *channels: str) -> AsyncIterator[TransportEvent]:
        # Subscribed here, not on the first __anext__, so no event emitted after this call is lost.
        queue: asyncio.Queue[TransportEvent | None] = asyncio.Queue(
            _EVENTS_MAXSIZE + 1
        )  # +1: end marker
        entry = (frozenset(channels), queue)
        self._streams.append(entry)
        return _Stream(queue)


class _Stream(AsyncIterator["TransportEvent"]):
    """Reads one subscriber queue until the transport closes (the ``None`` marker)."""

    def __init__(self, queue: asyncio.Queue[TransportEvent | None]) -> None:
        self._queue = queue

    async def __anext__(self) -> TransportEvent:
        event = await self._queue.get()
        if event is None:
            self._queue.put_nowait(None)  # later calls end too
            raise StopAsyncIteration
        return event


class LoopbackEdge:
    """A telephony-edge double: records what it is asked to play, acknowledge and clear.

    Args:
        provider: Free text kept on the instance, so tests can check that options reach the
            factory.
    """

    def __init__(self, *, provider: str = "loopback") -> None:
        self.provider = provider
        self.played: list[bytes] = []
        self.acknowledgement_requests: list[str] = []
        self.clears = 0
        self.closed_reason: str | None = None
        self.closed = False

    async def play(self, data: bytes) -> None:
        self.played.append(data)

    async def acknowledge_when_played(self, token: str) -> None:
        self.acknowledgement_requests.append(token)

    async def clear(self) -> None:
        self.clears += 1

    async def close(self, reason: str | None = None) -> None:
        self.closed = True
        self.closed_reason = reason
