"""Fault knobs: small values that make one or more sessions of the fake misbehave on purpose.

Every fault names the sessions it applies to by connection index (0 for the first WebSocket
upgrade request the server sees, 1 for the next, ...); ``sessions=None`` means every session.
Counters ("after N events") are kept per session, so one session's fault never moves another's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import attrs

from voicewire.errors import ConfigError

__all__ = [
    "CloseBeforeSessionCreated",
    "CloseMidResponse",
    "Fault",
    "RefuseConnection",
    "SendGarbage",
    "Stall",
    "faults_for",
]


def _sessions(value: Iterable[int] | None) -> frozenset[int] | None:
    if value is None:
        return None
    result = frozenset(value)
    for index in result:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ConfigError("sessions", f"session indexes are ints >= 0, got {index!r}")
    return result


def _count(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(attr.name, f"must be an int >= 0, got {value!r}")


def _positive_count(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(attr.name, f"must be an int >= 1, got {value!r}")


def _close_code(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1000 <= value <= 4999:
        raise ConfigError(attr.name, f"must be a WebSocket close code 1000..4999, got {value!r}")


def _http_status(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise ConfigError(attr.name, f"must be an HTTP error status 400..599, got {value!r}")


@attrs.frozen(kw_only=True)
class RefuseConnection:
    """Answer the upgrade request with an HTTP error instead of a WebSocket.

    Attributes:
        status: The HTTP status (503 by default, as an overloaded service would).
        sessions: Connection indexes to refuse; ``None`` refuses all.
    """

    status: int = attrs.field(default=503, validator=_http_status)
    sessions: frozenset[int] | None = attrs.field(default=None, converter=_sessions)


@attrs.frozen(kw_only=True)
class CloseBeforeSessionCreated:
    """Accept the WebSocket, then close it before sending ``session.created``.

    Attributes:
        code: Close code of the closing handshake.
        abrupt: Drop the TCP connection without a close frame instead.
        sessions: Connection indexes affected; ``None`` means all.
    """

    code: int = attrs.field(default=1011, validator=_close_code)
    abrupt: bool = False
    sessions: frozenset[int] | None = attrs.field(default=None, converter=_sessions)


@attrs.frozen(kw_only=True)
class CloseMidResponse:
    """Close the connection right after the session's N-th ``response.output_audio.delta``.

    Attributes:
        after_audio_deltas: Audio deltas sent (counted over the whole session) before closing.
        code: Close code of the closing handshake.
        abrupt: Drop the TCP connection without a close frame instead.
        sessions: Connection indexes affected; ``None`` means all.
    """

    after_audio_deltas: int = attrs.field(default=1, validator=_positive_count)
    code: int = attrs.field(default=1011, validator=_close_code)
    abrupt: bool = False
    sessions: frozenset[int] | None = attrs.field(default=None, converter=_sessions)


@attrs.frozen(kw_only=True)
class Stall:
    """After N server events, go silent: send nothing, answer no event and no ping.

    The TCP connection stays open, so only the client's own liveness checks notice. A closing
    handshake started by the client is still completed, which keeps test teardown quick.

    Attributes:
        after_events: Server events sent (``session.created`` counts) before stalling; 0 stalls
            before ``session.created``.
        sessions: Connection indexes affected; ``None`` means all.
    """

    after_events: int = attrs.field(default=1, validator=_count)
    sessions: frozenset[int] | None = attrs.field(default=None, converter=_sessions)


@attrs.frozen(kw_only=True)
class SendGarbage:
    """After N server events, send one malformed frame, then carry on normally.

    Attributes:
        after_events: Server events sent before the garbage frame (0: before ``session.created``).
        kind: ``"invalid_json"`` sends a text frame that is not JSON; ``"binary"`` sends a binary
            frame (the real API only sends text).
        sessions: Connection indexes affected; ``None`` means all.
    """

    after_events: int = attrs.field(default=1, validator=_count)
    kind: Literal["invalid_json", "binary"] = attrs.field(
        default="invalid_json", validator=attrs.validators.in_(("invalid_json", "binary"))
    )
    sessions: frozenset[int] | None = attrs.field(default=None, converter=_sessions)


Fault = RefuseConnection | CloseBeforeSessionCreated | CloseMidResponse | Stall | SendGarbage
"""Any fault knob."""

_FAULT_TYPES = (RefuseConnection, CloseBeforeSessionCreated, CloseMidResponse, Stall, SendGarbage)


def check_faults(faults: Iterable[Fault]) -> tuple[Fault, ...]:
    """Return the faults as a tuple, rejecting anything that is not a fault knob."""
    result = tuple(faults)
    for fault in result:
        if not isinstance(fault, _FAULT_TYPES):
            raise ConfigError("faults", f"not a fault knob: {fault!r}")
    return result


def faults_for(faults: Iterable[Fault], index: int) -> tuple[Fault, ...]:
    """The faults that apply to the session with connection index ``index``."""
    return tuple(f for f in faults if f.sessions is None or index in f.sessions)
