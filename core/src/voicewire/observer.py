"""Session observers: how plugins watch a transport without a pluggy call per frame.

A plugin's ``voicewire_session_observer(transport)`` hook runs once per session and returns an
observer object (or ``None``). The transport then calls the observer's methods directly, through
an :class:`ObserverFanout`, as things happen: connection changes, every client and server event,
speech start and stop, turns, first audio, audio played to the caller, interruptions, function
calls, reconnects, errors, close.

Every method of :class:`SessionObserver` is optional: an observer implements the ones it needs
and the fan-out never calls the others. Methods are synchronous and run on the transport's hot
path, so they must be quick and must not block; an observer that needs I/O should hand the work
to a queue or task of its own. An observer that raises is detached (one warning, naming it) and
the transport goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from voicewire.audio.formats import AudioFormat
    from voicewire.events import (
        AudioInterruptedEvent,
        ErrorEvent,
        FunctionCallEvent,
        TurnDoneEvent,
    )
    from voicewire.transport import TransportStatus

__all__ = ["OBSERVER_METHODS", "ObserverFanout", "SessionObserver"]

logger = logging.getLogger("voicewire.observer")


class SessionObserver(Protocol):
    """The methods a session observer may implement. All are optional.

    An observer does not need to inherit from this class: any object works, and only the methods
    it defines are called. Inheriting is allowed too (for the type checker's help); the
    fan-out recognises the inherited empty methods and skips them, so inheriting costs nothing.

    ``size`` arguments are the length in bytes of the encoded wire message. ``payload``
    arguments are the decoded message, or ``None`` when the transport did not decode it (binary
    frames, or messages it only forwards); observers must not mutate them.
    """

    # The explicit ``return None`` bodies keep the type checker from treating these methods as
    # abstract, so that a class inheriting from this protocol only writes what it needs.

    def on_connection_change(self, status: TransportStatus) -> None:
        """The transport's status changed.

        Args:
            status: The new status.
        """
        return None

    def on_client_event(
        self, event_type: str, size: int, payload: Mapping[str, Any] | None
    ) -> None:
        """The transport sent a message to the model (a client event).

        Args:
            event_type: The message's ``type``, e.g. ``"input_audio_buffer.append"``.
            size: Encoded size in bytes.
            payload: The message, or ``None`` if it was not kept.
        """
        return None

    def on_server_event(
        self, event_type: str, size: int, payload: Mapping[str, Any] | None
    ) -> None:
        """The transport received a message from the model (a server event).

        Args:
            event_type: The message's ``type``, e.g. ``"response.output_audio.delta"``.
            size: Encoded size in bytes.
            payload: The message, or ``None`` if it was not decoded.
        """
        return None

    def on_speech_started(self) -> None:
        """The model's voice activity detection heard the caller start speaking."""
        return None

    def on_speech_stopped(self) -> None:
        """The model's voice activity detection heard the caller stop speaking."""
        return None

    def on_turn_started(self, response_id: str | None) -> None:
        """The model started a response.

        Args:
            response_id: The response's id, when the provider gives one.
        """
        return None

    def on_turn_done(self, event: TurnDoneEvent) -> None:
        """The model finished a response (completed, cancelled, failed or incomplete).

        Args:
            event: The ``turn_done`` event, with status and usage.
        """
        return None

    def on_first_audio(self, response_id: str | None, latency_ms: float | None) -> None:
        """The first audio chunk of a response arrived.

        Args:
            response_id: The response's id.
            latency_ms: Milliseconds since the caller stopped speaking (or since the response was
                requested), or ``None`` when the transport has no starting point.
        """
        return None

    def on_call_start(
        self, call_id: str | None, stream_id: str | None, audio_format: AudioFormat | None
    ) -> None:
        """A telephony call started streaming (fired by a call bridge).

        Args:
            call_id: The provider's call id (Twilio: the call SID).
            stream_id: The provider's media stream id (Twilio: the stream SID).
            audio_format: The caller's audio format.
        """
        return None

    def on_audio_to_model(self, nbytes: int) -> None:
        """Input audio was sent to the model.

        Args:
            nbytes: Size of the chunk in bytes, in the session's input format.
        """
        return None

    def on_audio_from_model(self, response_id: str | None, nbytes: int) -> None:
        """Output audio arrived from the model.

        Args:
            response_id: The response the audio belongs to.
            nbytes: Size of the chunk in bytes, in the session's output format.
        """
        return None

    def on_audio_to_caller(self, nbytes: int) -> None:
        """Audio was handed to the caller's side (the telephony edge or the local player).

        Args:
            nbytes: Size of the chunk in bytes, in the caller's format.
        """
        return None

    def on_playback_acknowledged(self, token: str) -> None:
        """The caller's side confirmed playback up to a token (Twilio: a mark came back).

        Args:
            token: The acknowledgement token.
        """
        return None

    def on_interruption(self, event: AudioInterruptedEvent) -> None:
        """Playback was interrupted (barge-in or ``interrupt()``).

        Args:
            event: The ``audio_interrupted`` event, with the truncation points.
        """
        return None

    def on_function_call(self, event: FunctionCallEvent) -> None:
        """The model called a function.

        Args:
            event: The ``function_call`` event.
        """
        return None

    def on_function_call_output(self, call_id: str, output: str) -> None:
        """The application answered a function call.

        Args:
            call_id: The call being answered.
            output: The result sent to the model.
        """
        return None

    def on_reconnect(self, attempt: int, state_restored: bool) -> None:
        """The transport reconnected after losing its connection.

        Args:
            attempt: Which attempt succeeded (1 for the first).
            state_restored: Whether the session configuration and history were restored.
        """
        return None

    def on_error(self, event: ErrorEvent) -> None:
        """An error was reported on the ``error`` channel by the transport.

        Args:
            event: The error event.
        """
        return None

    def on_close(self, reason: str | None) -> None:
        """The session ended; no method is called after this one.

        Args:
            reason: Why, when known (e.g. ``"caller hung up"``).
        """
        return None


OBSERVER_METHODS: Final[frozenset[str]] = frozenset(
    name for name in vars(SessionObserver) if name.startswith("on_")
)
"""The names of the methods documented on :class:`SessionObserver`."""

_Handlers = tuple[tuple[object, Callable[..., object]], ...]


def _observer_name(observer: object) -> str:
    cls = type(observer)
    return f"{cls.__module__}.{cls.__qualname__}"


class ObserverFanout:
    """Calls one method on every observer that implements it.

    The bound methods for each method name are collected once into a tuple and reused until the
    set of observers changes, so a call costs a dictionary lookup plus the calls themselves, and
    nearly nothing when no observer implements the method. An observer that raises is removed
    with one warning and the remaining observers are still called.

    Method names are not restricted to :data:`OBSERVER_METHODS`: a plugin may define further
    notifications (e.g. a telephony edge's ``on_dtmf``) and call them the same way.
    """

    __slots__ = ("_cache", "_observers")

    def __init__(self, observers: Iterable[object] = ()) -> None:
        """Create a fan-out.

        Args:
            observers: Initial observers; ``None`` entries are ignored.
        """
        self._observers: list[object] = []
        self._cache: dict[str, _Handlers] = {}
        for observer in observers:
            self.add(observer)

    @property
    def observers(self) -> tuple[object, ...]:
        """The attached observers, in attachment order."""
        return tuple(self._observers)

    def __len__(self) -> int:
        """Number of attached observers."""
        return len(self._observers)

    def __bool__(self) -> bool:
        """Whether any observer is attached."""
        return bool(self._observers)

    def add(self, observer: object) -> None:
        """Attach an observer. ``None`` and an observer already attached are ignored.

        Args:
            observer: Any object; its ``on_*`` methods are looked up by name.
        """
        if observer is None or any(o is observer for o in self._observers):
            return
        self._observers.append(observer)
        self._cache.clear()

    def remove(self, observer: object) -> bool:
        """Detach an observer.

        Args:
            observer: An attached observer.

        Returns:
            Whether it was attached.
        """
        for index, candidate in enumerate(self._observers):
            if candidate is observer:
                del self._observers[index]
                self._cache.clear()
                return True
        return False

    def clear(self) -> None:
        """Detach every observer."""
        self._observers.clear()
        self._cache.clear()

    def has(self, method_name: str) -> bool:
        """Whether any observer implements ``method_name``.

        A transport can test this before building an expensive argument (a decoded payload, a
        size computation) that nobody would receive.

        Args:
            method_name: The method's name, e.g. ``"on_server_event"``.

        Returns:
            ``True`` if at least one observer would be called.
        """
        if not self._observers:
            return False
        return bool(self._handlers(method_name))

    def notify(self, method_name: str, *args: object) -> None:
        """Call ``method_name(*args)`` on every observer that implements it.

        Args:
            method_name: The method's name, e.g. ``"on_turn_started"``.
            *args: Positional arguments of the method.
        """
        if not self._observers:
            return
        for observer, method in self._handlers(method_name):
            try:
                method(*args)
            except Exception:
                self._drop(observer, method_name)

    def _handlers(self, method_name: str) -> _Handlers:
        handlers = self._cache.get(method_name)
        if handlers is None:
            handlers = self._cache[method_name] = self._collect(method_name)
        return handlers

    def _collect(self, method_name: str) -> _Handlers:
        # The protocol's own empty method, inherited by an observer that subclasses it, is not
        # an implementation: calling it would only cost time.
        stub = getattr(SessionObserver, method_name, None)
        found: list[tuple[object, Callable[..., object]]] = []
        for observer in self._observers:
            method = getattr(observer, method_name, None)
            if method is None or not callable(method):
                continue
            if stub is not None and getattr(type(observer), method_name, None) is stub:
                continue
            found.append((observer, method))
        return tuple(found)

    def _drop(self, observer: object, method_name: str) -> None:
        if not self.remove(observer):
            return  # already dropped by a re-entrant call; it was reported there
        logger.warning(
            "session observer %s raised in %s and was detached; the session goes on without it",
            _observer_name(observer),
            method_name,
            exc_info=True,
        )

    def __repr__(self) -> str:
        names = ", ".join(_observer_name(o) for o in self._observers)
        return f"<ObserverFanout [{names}]>"
