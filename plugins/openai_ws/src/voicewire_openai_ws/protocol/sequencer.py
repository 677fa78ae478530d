"""``response.create`` sequencing: never ask for a response while one is active.

The server refuses a second response while one is in progress
(``conversation_already_has_active_response``), and automatic follow-ups (after a user message,
after a tool result) often arrive in bursts. The sequencer therefore holds every request and
releases one ``response.create`` at a time:

* A request is *automatic* (no parameters: "the model should answer now") or *manual* (an explicit
  ``response.create`` with parameters or an event of the caller's own). Each gets an increasing
  version and waits in order.
* The oldest pending request is dispatched only when no response is active (a
  ``response.created`` not yet followed by ``response.done``) and the control state is ``free``
  (no create awaiting its ``response.created``, no cancel in flight).
* An automatic request, when dispatched, covers every automatic request pending at that moment
  up to the next manual one: they are coalesced into one create. Manual requests are never merged.
* Each dispatched create carries an ``event_id``: the caller's, or
  ``voicewire_response_create_<n>``.
* ``response.created`` acknowledges the dispatched create; ``response.done`` frees the way for the
  next one.
* A server ``error`` naming the dispatched create (by ``event_id``; failing that, an error whose
  code mentions ``response_create`` or whose message mentions ``response.create``) releases it;
  the automatic requests it covered are restored once, so the follow-up is retried as a single
  create. A second failure drops them (the error is reported to the application either way), so
  a create the server keeps refusing cannot loop.
* ``connection_lost`` drops everything: requests are never replayed on another connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = ["EVENT_ID_PREFIX", "ControlState", "ResponseCreateSequencer"]

EVENT_ID_PREFIX = "voicewire_response_create_"
"""Prefix of the ``event_id`` stamped on creates that have none."""

ControlState = Literal["free", "create_requested", "cancel_requested"]
"""What the sequencer is waiting for, besides the end of an active response."""


@attrs.define
class _Request:
    version: int
    # None for an automatic request; the full client event for a manual one.
    event: dict[str, Any] | None
    restored: bool = False

    @property
    def manual(self) -> bool:
        return self.event is not None


@attrs.define
class _InFlight:
    event_id: object
    covered: list[_Request]


class ResponseCreateSequencer:
    """Decides when each requested ``response.create`` may go on the wire.

    Every method returns the client events to send *now*, in order (usually none or one); the
    caller sends them. Nothing here reads a clock or touches a socket.
    """

    def __init__(self) -> None:
        self._pending: list[_Request] = []
        self._in_flight: _InFlight | None = None
        self._response_active = False
        self._control: ControlState = "free"
        self._next_version = 0
        self._dispatched = 0

    @property
    def response_active(self) -> bool:
        """Whether a ``response.created`` was seen and its ``response.done`` not yet."""
        return self._response_active

    @property
    def control(self) -> ControlState:
        """``free``, ``create_requested`` (awaiting ``response.created``) or ``cancel_requested``."""
        return self._control

    @property
    def pending(self) -> int:
        """How many requests wait (not counting the dispatched one)."""
        return len(self._pending)

    @property
    def in_flight_event_id(self) -> object:
        """The ``event_id`` of the dispatched, unacknowledged create, or ``None``."""
        return None if self._in_flight is None else self._in_flight.event_id

    def request(self, event: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Queue a request; return the create to send now, if it may go at once.

        Args:
            event: ``None`` for an automatic request; otherwise the manual ``response.create``
                client event, sent as given (plus an ``event_id`` if it has none).
        """
        self._pending.append(
            _Request(version=self._next_version, event=None if event is None else dict(event))
        )
        self._next_version += 1
        return self._dispatch()

    def on_response_created(self) -> list[dict[str, Any]]:
        """The server started a response: it is active, and the dispatched create is answered."""
        self._response_active = True
        self._in_flight = None
        self._control = "free"
        return []

    def on_response_done(self) -> list[dict[str, Any]]:
        """The active response ended; the next pending request may go."""
        self._response_active = False
        self._control = "free"
        return self._dispatch()

    def on_error(self, error: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """Offer a server ``error`` object (the event's ``error`` field); see the module rules."""
        flight = self._in_flight
        if flight is None or not self._names(error, flight.event_id):
            return []
        self._in_flight = None
        self._control = "free"
        retry = [r for r in flight.covered if not r.manual and not r.restored]
        for request in retry:
            request.restored = True
        self._pending = sorted(self._pending + retry, key=lambda r: r.version)
        return self._dispatch()

    def should_cancel(self) -> bool:
        """Whether a ``response.cancel`` is useful now: a response is active, none in flight."""
        return self._response_active and self._control != "cancel_requested"

    def on_cancel_sent(self) -> None:
        """A ``response.cancel`` went out; hold new creates until the response is done."""
        if self._response_active:
            self._control = "cancel_requested"

    def connection_lost(self) -> None:
        """Forget everything: pending requests are not carried over to another connection."""
        self._pending.clear()
        self._in_flight = None
        self._response_active = False
        self._control = "free"

    @staticmethod
    def _names(error: Mapping[str, Any] | None, event_id: object) -> bool:
        if not isinstance(error, Mapping):
            return False
        echoed = error.get("event_id")
        if echoed is not None:
            return bool(echoed == event_id)
        code, message = error.get("code"), error.get("message")
        return (isinstance(code, str) and "response_create" in code) or (
            isinstance(message, str) and "response.create" in message
        )

    def _dispatch(self) -> list[dict[str, Any]]:
        if self._response_active or self._control != "free" or not self._pending:
            return []
        head = self._pending[0]
        if head.event is not None:
            covered = [head]
            event = dict(head.event)
        else:
            covered = []
            for request in self._pending:
                if request.manual:
                    break
                covered.append(request)
            event = {"type": "response.create"}
        del self._pending[: len(covered)]
        self._dispatched += 1
        if event.get("event_id") is None:
            event["event_id"] = f"{EVENT_ID_PREFIX}{self._dispatched}"
        self._in_flight = _InFlight(event_id=event["event_id"], covered=covered)
        self._control = "create_requested"
        return [event]
