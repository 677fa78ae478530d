"""The transport protocol: what every realtime model transport (and the call bridge) offers.

``TransportBase`` (further down) owns the status transitions, the event emitter and the observer
fan-out, so that a concrete transport only does protocol work.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Protocol, runtime_checkable

import attrs

from voicewire.emitter import DEFAULT_EVENTS_MAXSIZE, EventEmitter, EventStream, Listener
from voicewire.errors import MuteNotSupportedError, TransportStateError
from voicewire.events import ConnectionChangeEvent, ErrorEvent, channel_of
from voicewire.observer import ObserverFanout

if TYPE_CHECKING:
    from voicewire.config import SessionConfig
    from voicewire.emitter import OverflowPolicy
    from voicewire.events import FunctionCallEvent, TransportEvent
    from voicewire.items import RealtimeItem, UserMessageItem

__all__ = [
    "STATUS_TRANSITIONS",
    "ApiKey",
    "ConnectOptions",
    "RealtimeTransportLayer",
    "TransportBase",
    "TransportStatus",
]

logger = logging.getLogger("voicewire.transport")

TransportStatus = Literal["connecting", "connected", "disconnecting", "disconnected"]
"""Life-cycle status of a transport."""

ApiKey = str | Callable[[], Awaitable[str]]
"""A credential, or a zero-argument coroutine function that returns one at connect time."""


def _redact(value: object) -> str:
    # A key must never reach a log line through a repr.
    return "None" if value is None else "'***'"


@attrs.frozen(kw_only=True)
class ConnectOptions:
    """What ``connect()`` needs. Every field is optional; transports fall back to their own defaults.

    ``api_key`` is a string or a zero-argument async callable (awaited at connect time, so short-lived
    keys can be fetched fresh); it never appears in ``repr``.
    """

    api_key: ApiKey | None = attrs.field(default=None, repr=_redact)
    model: str | None = None
    url: str | None = None
    initial_session_config: SessionConfig | None = None
    extra_headers: Mapping[str, str] = attrs.field(
        factory=dict, repr=lambda h: f"<{len(h)} headers>"
    )


@runtime_checkable
class RealtimeTransportLayer(Protocol):
    """A connection to a realtime voice model, or anything that behaves like one.

    I/O methods are coroutines. Events are consumed with ``on``/``off``/``once`` or with
    ``events()``; see :mod:`voicewire.events` for the event types and their channels.
    """

    @property
    def status(self) -> TransportStatus:
        """``connecting``, ``connected``, ``disconnecting`` or ``disconnected``."""
        ...

    @property
    def muted(self) -> bool | None:
        """Whether input is muted; ``None`` when muting is not the transport's job."""
        ...

    async def connect(self, options: ConnectOptions) -> None:
        """Open the connection and apply ``options.initial_session_config``."""
        ...

    async def close(self) -> None:
        """Close the connection. Idempotent."""
        ...

    async def send_audio(self, audio: bytes, *, commit: bool = False) -> None:
        """Append input audio; ``commit=True`` also closes the input turn."""
        ...

    async def send_event(self, event: Mapping[str, Any]) -> None:
        """Send a raw client event (a mapping with a string ``type``)."""
        ...

    async def send_message(
        self,
        message: str | UserMessageItem,
        other_event_data: Mapping[str, Any] | None = None,
    ) -> None:
        """Add a user message to the conversation and ask for a response."""
        ...

    async def send_function_call_output(
        self, tool_call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> None:
        """Return a tool result; optionally ask for a follow-up response."""
        ...

    async def interrupt(self) -> None:
        """Stop the current model turn and truncate it at what was heard."""
        ...

    def mute(self, muted: bool) -> None:
        """Mute or unmute input; WebSocket-family transports raise ``MuteNotSupportedError``."""
        ...

    async def reset_history(self, old: Sequence[RealtimeItem], new: Sequence[RealtimeItem]) -> None:
        """Make the server-side conversation match ``new``."""
        ...

    async def update_session_config(self, config: SessionConfig) -> None:
        """Push a new (partial) session configuration."""
        ...

    def on(self, channel: str, listener: Listener) -> None:
        """Call ``listener`` for every event on ``channel`` (``"*"``: raw wire messages)."""
        ...

    def off(self, channel: str, listener: Listener) -> None:
        """Stop calling ``listener`` for ``channel``."""
        ...

    def once(self, channel: str, listener: Listener) -> None:
        """Call ``listener`` for the next event on ``channel`` only."""
        ...

    def emit(self, channel: str, event: Any) -> None:
        """Deliver ``event`` to the listeners of ``channel``."""
        ...

    def events(self, *channels: str) -> AsyncIterator[TransportEvent]:
        """Iterate over events of the given channels (none: every channel, ``*`` included).

        Backed by a bounded queue whose overflow is counted and reported, never silent.
        """
        ...


STATUS_TRANSITIONS: Final[Mapping[TransportStatus, frozenset[TransportStatus]]] = {
    "disconnected": frozenset({"connecting"}),
    "connecting": frozenset({"connected", "disconnecting", "disconnected"}),
    # connected -> connecting is a reconnect within the same session.
    "connected": frozenset({"connecting", "disconnecting", "disconnected"}),
    "disconnecting": frozenset({"disconnected"}),
}
"""The status changes :meth:`TransportBase._set_status` allows, from each status.

A transport starts ``disconnected``. ``disconnected -> connecting`` starts a new session;
``connected -> connecting`` is a reconnect inside the same session. ``disconnecting`` is optional:
a transport may go straight to ``disconnected``.
"""


class TransportBase(abc.ABC):
    """Base class for transports: owns the status, the events and the observers.

    A concrete transport implements the I/O coroutines (``connect``, ``close``, ``send_*``,
    ``interrupt``, ``reset_history``, ``update_session_config``) and reports what happens through
    the protected helpers:

    * :meth:`_set_status` for every status change (it emits ``connection_change`` and notifies
      observers; the first change of a session also collects the plugins' observers);
    * :meth:`_emit` for every event (on :func:`~voicewire.events.channel_of` the event);
    * :meth:`_report_error` for errors;
    * ``self._observers.notify("on_...", ...)`` for the other observer notifications (see
      :class:`~voicewire.observer.SessionObserver`), guarded by ``self._observers.has(...)``
      when an argument is costly to build;
    * :meth:`aclose_emitter` once the transport is finished with, to end ``events()`` iterators
      and async listener tasks.

    ``muted`` is ``None`` and :meth:`mute` raises, as befits a transport that does not own the
    microphone; one that does overrides both.
    """

    transport_id: ClassVar[str] = "base"
    """Short name of the transport kind, as in the registry (e.g. ``"openai_ws"``)."""

    def __init__(self, *, observers: Iterable[object] = (), plugin_observers: bool = True) -> None:
        """Set up a disconnected transport.

        Args:
            observers: Session observers attached for the transport's whole life, in addition to
                those the plugins offer.
            plugin_observers: Whether to ask the plugins (the ``voicewire_session_observer``
                hook) for observers when a session starts. Tests and embedded uses turn it off.
        """
        self._status: TransportStatus = "disconnected"
        self._emitter = EventEmitter()
        self._observers = ObserverFanout(observers)
        self._use_plugin_observers = plugin_observers
        self._plugin_observers: tuple[object, ...] = ()

    # -- state ----------------------------------------------------------------------------------

    @property
    def status(self) -> TransportStatus:
        """``connecting``, ``connected``, ``disconnecting`` or ``disconnected``."""
        return self._status

    @property
    def muted(self) -> bool | None:
        """Always ``None``: this transport does not own the microphone."""
        return None

    def mute(self, muted: bool) -> None:
        """Refuse to mute: the application owns the audio input and must stop sending it itself.

        Args:
            muted: The requested state (ignored).

        Raises:
            MuteNotSupportedError: Always, unless a subclass that owns a microphone overrides it.
        """
        raise MuteNotSupportedError(
            f"mute() is not supported by the {self.transport_id!r} transport: it does not own "
            "the microphone, so stop calling send_audio() while the user is muted"
        )

    def _set_status(self, status: TransportStatus) -> bool:
        """Move to ``status``, notify observers, then emit ``ConnectionChangeEvent``.

        Args:
            status: The new status.

        Returns:
            ``False`` (and nothing is emitted) when the status is unchanged, else ``True``.

        Raises:
            TransportStateError: :data:`STATUS_TRANSITIONS` does not allow the change; this is a
                bug in the transport, not a runtime condition.
        """
        previous = self._status
        if status == previous:
            return False
        if status not in STATUS_TRANSITIONS.get(previous, frozenset()):
            raise TransportStateError(
                f"{self.transport_id}: status cannot change from {previous!r} to {status!r}"
            )
        if previous == "disconnected":
            # Observers are per session, and a session starts here.
            self._load_observers()
        self._status = status
        # Observers first: a listener reacting to "connected" may already send events, and an
        # observer (a tracer) must know of the connection before it sees them.
        self._observers.notify("on_connection_change", status)
        self._emit(ConnectionChangeEvent(status=status))
        return True

    # -- observers ------------------------------------------------------------------------------

    def _attach_observers(self, observers: Iterable[object]) -> None:
        """Attach observers (``None`` entries and duplicates are ignored).

        Args:
            observers: Objects implementing any subset of
                :class:`~voicewire.observer.SessionObserver`.
        """
        for observer in observers:
            self._observers.add(observer)

    def _load_observers(self) -> None:
        """Replace the previous session's plugin observers with the plugins' current offer.

        Called when a session starts (``disconnected -> connecting``); a transport whose session
        starts otherwise (a call bridge, when a call starts) may call it itself. A plugin manager
        that cannot be imported or fails is logged, and the session goes on without plugin
        observers: observing must never stop a call.
        """
        for observer in self._plugin_observers:
            self._observers.remove(observer)
        self._plugin_observers = ()
        if not self._use_plugin_observers:
            return
        try:
            # Imported here: the plugin manager imports much of the core, this module included.
            from voicewire.plugins import get_plugin_manager
        except ModuleNotFoundError as exc:
            if exc.name != "voicewire.plugins":
                logger.warning("voicewire.plugins cannot be imported", exc_info=True)
            return
        except Exception:
            logger.warning("voicewire.plugins cannot be imported", exc_info=True)
            return
        try:
            offered = list(get_plugin_manager().session_observers(self))
        except Exception:
            logger.warning(
                "collecting session observers for %s failed; going on without plugin observers",
                self.transport_id,
                exc_info=True,
            )
            return
        known = self._observers.observers
        added = [
            observer
            for observer in offered
            if observer is not None and not any(observer is k for k in known)
        ]
        self._attach_observers(added)
        self._plugin_observers = tuple(added)

    # -- events ---------------------------------------------------------------------------------

    def on(self, channel: str, listener: Listener) -> None:
        """Call ``listener`` for every event on ``channel`` (``"*"``: raw wire messages).

        Args:
            channel: The channel name (an event type, ``"*"`` or ``"error"``).
            listener: A function of one event, sync (run inline) or ``async def`` (run in order
                in a task of its own).
        """
        self._emitter.on(channel, listener)

    def off(self, channel: str, listener: Listener) -> None:
        """Stop calling ``listener`` for ``channel``.

        Args:
            channel: The channel name.
            listener: The listener given to :meth:`on` or :meth:`once`.
        """
        self._emitter.off(channel, listener)

    def once(self, channel: str, listener: Listener) -> None:
        """Call ``listener`` for the next event on ``channel`` only.

        Args:
            channel: The channel name.
            listener: A function of one event.
        """
        self._emitter.once(channel, listener)

    def emit(self, channel: str, event: Any) -> None:
        """Deliver ``event`` to the listeners of ``channel``.

        Transports use :meth:`_emit`, which picks the channel from the event.

        Args:
            channel: The channel name.
            event: The event.
        """
        self._emitter.emit(channel, event)

    def events(
        self,
        *channels: str,
        maxsize: int = DEFAULT_EVENTS_MAXSIZE,
        overflow: OverflowPolicy = "drop_oldest",
    ) -> EventStream[TransportEvent]:
        """Iterate over events through a bounded queue; see :meth:`EventEmitter.events`.

        Args:
            *channels: Channels to receive; none means every event, raw ``"*"`` ones included.
            maxsize: Capacity of the queue.
            overflow: ``"drop_oldest"`` or ``"drop_newest"``; drops are counted and reported.

        Returns:
            An async iterator that is also an async context manager.
        """
        return self._emitter.events(*channels, maxsize=maxsize, overflow=overflow)

    def listener_count(self, channel: str) -> int:
        """Number of listeners registered on ``channel``.

        Args:
            channel: The channel name.

        Returns:
            The count (``events()`` iterators are not counted).
        """
        return self._emitter.listener_count(channel)

    def _emit(self, event: Any) -> None:
        """Emit ``event`` on its own channel (:func:`~voicewire.events.channel_of`).

        Args:
            event: A transport event.
        """
        self._emitter.emit(channel_of(event), event)

    def _report_error(
        self,
        message: str,
        *,
        source: str,
        code: str | None = None,
        error: BaseException | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> ErrorEvent:
        """Notify observers of an error and emit it on ``"error"``.

        An error nobody listens to is logged as a warning rather than lost.

        Args:
            message: What went wrong, for a human.
            source: ``"server"``, ``"transport"``, ``"telephony"``, ... (see ``ErrorEvent``).
            code: A stable machine-readable code, when there is one.
            error: The exception behind it, if any.
            details: Extra data, e.g. the server's raw error event.

        Returns:
            The emitted event.
        """
        event = ErrorEvent(message=message, source=source, code=code, error=error, details=details)
        self._observers.notify("on_error", event)
        if self._emitter.has_subscribers("error"):
            logger.debug("%s error (%s): %s", self.transport_id, source, message)
        else:
            logger.warning(
                "%s error (%s) with no error listener: %s",
                self.transport_id,
                source,
                message,
                exc_info=error,
            )
        self._emit(event)
        return event

    async def aclose_emitter(self, *, drain_timeout: float | None = 5.0) -> None:
        """End ``events()`` iterators and finish async listener tasks, leaving no task behind.

        See :meth:`voicewire.emitter.EventEmitter.aclose`. Listeners stay registered, so the
        transport may connect again afterwards.

        Args:
            drain_timeout: Seconds async listeners get to finish their backlog.
        """
        await self._emitter.aclose(drain_timeout=drain_timeout)

    # -- I/O, implemented by concrete transports ------------------------------------------------

    @abc.abstractmethod
    async def connect(self, options: ConnectOptions) -> None:
        """Open the connection and apply ``options.initial_session_config``.

        Args:
            options: Credentials, model, URL and initial configuration.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection. Idempotent."""

    @abc.abstractmethod
    async def send_audio(self, audio: bytes, *, commit: bool = False) -> None:
        """Append input audio.

        Args:
            audio: Audio bytes in the session's input format.
            commit: Also close the input turn.
        """

    @abc.abstractmethod
    async def send_event(self, event: Mapping[str, Any]) -> None:
        """Send a raw client event.

        Args:
            event: A mapping with a string ``type``.
        """

    @abc.abstractmethod
    async def send_message(
        self,
        message: str | UserMessageItem,
        other_event_data: Mapping[str, Any] | None = None,
    ) -> None:
        """Add a user message and ask for a response.

        Args:
            message: Text, or a full user message item.
            other_event_data: Extra fields merged into the client event.
        """

    @abc.abstractmethod
    async def send_function_call_output(
        self, tool_call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> None:
        """Return a tool result.

        Args:
            tool_call: The call being answered.
            output: The result.
            start_response: Also ask for a follow-up response.
        """

    @abc.abstractmethod
    async def interrupt(self) -> None:
        """Stop the current model turn and truncate it at what was heard."""

    @abc.abstractmethod
    async def reset_history(self, old: Sequence[RealtimeItem], new: Sequence[RealtimeItem]) -> None:
        """Make the server-side conversation match ``new``.

        Args:
            old: The history as the application last knew it.
            new: The history wanted.
        """

    @abc.abstractmethod
    async def update_session_config(self, config: SessionConfig) -> None:
        """Push a new (partial) session configuration.

        Args:
            config: The settings to change.
        """
