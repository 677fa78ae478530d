"""The telephony edge: the provider-facing half of a call.

An edge speaks one provider's media-stream dialect and nothing else. It turns the provider's
messages into the provider-neutral inbound events below, and carries out the bridge's commands
(``play``, ``acknowledge_when_played``, ``clear``, ``close``). Everything that is the same for
every provider (format conversion, playback tracking, barge-in, truncation, padding) lives in
:class:`voicewire.bridge.CallBridge`, which is why an edge is small.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from voicewire.audio.formats import AudioFormat
from voicewire.errors import ConfigError

__all__ = [
    "CallStarted",
    "CallStopped",
    "CallerAudio",
    "Dtmf",
    "EdgeCapabilities",
    "EdgeError",
    "EdgeEvent",
    "PlaybackAcknowledged",
    "RawEdgeMessage",
    "TelephonyEdge",
]


def _bytes_repr(data: bytes) -> str:
    return f"<{len(data)} bytes>"


def _names_only(params: Mapping[str, Any]) -> str:
    # Applications pass credentials as stream parameters; a repr shows only their names.
    return "{" + ", ".join(f"{name!r}: '***'" for name in params) + "}"


def _dict(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value) if value is not None else {}


# Two 20 ms frames: one playing while the next is on its way (the bridge hands over pieces of
# half the buffer, so that the provider never runs dry waiting for the next).
_MIN_BUFFERED_MS = 40


def _check_max_buffered(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _max_buffered_ms(value)


def _max_buffered_ms(value: object) -> float | None:
    # Also used by the bridge, whose edge may declare its capabilities with another class.
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not _MIN_BUFFERED_MS <= value < math.inf
    ):
        raise ConfigError(
            "max_buffered_ms",
            f"must be None or a finite number >= {_MIN_BUFFERED_MS}, got {value!r}",
        )
    return float(value)


@attrs.frozen(kw_only=True)
class EdgeCapabilities:
    """What an edge can do, declared once.

    Attributes:
        acknowledgements: the provider tells when queued audio has been played up to a token
            (Twilio: marks). Without them the bridge estimates playback from the wall clock.
        audio_format: the native audio format of the provider's media stream, both ways.
        provider: a short provider name used in logs, spans and events (``"twilio"``).
        checks_call_start: the edge may refuse a call's start (a foreign account, a missing
            call token) and end the connection. A bridge then connects the model only once the
            edge reported ``CallStarted``, so a refused connection opens no model session.
        max_buffered_ms: how far ahead of playback the provider takes audio, in milliseconds.
            ``None`` (the default): as far as it is sent; a model speaks faster than real time,
            and the provider queues the rest (Twilio holds minutes). A number, for a provider
            that plays what arrives and drops or garbles what comes too early (an RTP gateway,
            many SIP media servers): the bridge paces the model's audio to real time itself,
            handing the edge at most this much beyond what the wall clock says has played
            (corrected by each acknowledgement), in pieces of half of it; what it holds back is
            dropped on a barge-in without reaching the provider. At least 40; declare a little
            less than the provider holds, for the network's jitter.
    """

    acknowledgements: bool
    audio_format: AudioFormat
    provider: str
    checks_call_start: bool = False
    max_buffered_ms: float | None = attrs.field(default=None, validator=_check_max_buffered)


@attrs.frozen(kw_only=True)
class CallStarted:
    """The provider started streaming a call. ``audio_format`` is what the provider announced."""

    call_id: str | None
    stream_id: str | None
    audio_format: AudioFormat
    custom_parameters: Mapping[str, str] = attrs.field(
        factory=dict, converter=_dict, repr=_names_only
    )


@attrs.frozen(kw_only=True)
class CallerAudio:
    """Caller audio in the edge's format; ``timestamp_ms`` is the provider's media clock, if any."""

    data: bytes = attrs.field(repr=_bytes_repr)
    timestamp_ms: int | None = None


@attrs.frozen(kw_only=True)
class PlaybackAcknowledged:
    """The provider played everything queued before ``token``."""

    token: str


@attrs.frozen(kw_only=True)
class Dtmf:
    """The caller pressed a key."""

    digit: str


@attrs.frozen(kw_only=True)
class CallStopped:
    """The call's media stream ended (hang-up, or the provider stopped the stream)."""

    reason: str | None = None


@attrs.frozen(kw_only=True)
class EdgeError:
    """The provider sent something the edge could not use. The call goes on."""

    message: str
    code: str | None = None


@attrs.frozen(kw_only=True)
class RawEdgeMessage:
    """A provider message as received, to be emitted unchanged on the bridge's ``*`` channel.

    ``event`` is the edge's own typed raw event (Twilio: ``TwilioMessageEvent``).
    """

    event: object


EdgeEvent = (
    CallStarted
    | CallerAudio
    | PlaybackAcknowledged
    | Dtmf
    | CallStopped
    | EdgeError
    | RawEdgeMessage
)
"""Everything an edge yields from ``events()``."""


@runtime_checkable
class TelephonyEdge(Protocol):
    """The provider-facing half of one call.

    ``events()`` yields inbound events in arrival order and ends when the provider's connection
    ends. Commands may be called concurrently with the iteration. ``play`` applies back-pressure:
    it waits while the edge's bounded outbound buffer is full, and an edge that must drop instead
    counts the drop and yields an ``EdgeError`` saying so, never silently.

    Optional: an edge with an attribute ``raw_messages_wanted`` (``Callable[[], bool] | None``)
    has it set by :class:`~voicewire.bridge.CallBridge` to a function that says whether anything
    listens on ``"*"`` at that moment; while it returns ``False`` the edge may skip building
    ``RawEdgeMessage`` events, which nobody would see.

    Optional: an edge with a method ``play_nowait(data: bytes, token: str | None) -> bool``
    lets the bridge hand it model audio without a task switch. The method queues ``data``
    and, when ``token`` is given, an acknowledgement request after it (as ``play`` followed by
    ``acknowledge_when_played`` would) if that needs no waiting, and returns ``True``; when its
    buffer has no room it queues nothing and returns ``False``, and the bridge falls back to
    ``play``. The bridge calls it only while none of its own commands are waiting, so order is
    kept.
    """

    @property
    def capabilities(self) -> EdgeCapabilities:
        """What this edge supports (acknowledgements, native audio format)."""
        ...

    def events(self) -> AsyncIterator[EdgeEvent]:
        """Inbound events until the call's media connection ends."""
        ...

    async def play(self, data: bytes) -> None:
        """Queue audio (in ``capabilities.audio_format``) for playback to the caller."""
        ...

    async def acknowledge_when_played(self, token: str) -> None:
        """Ask the provider to report ``PlaybackAcknowledged(token)`` once queued audio is played."""
        ...

    async def clear(self) -> None:
        """Drop every queued, not yet played, audio (barge-in)."""
        ...

    async def close(self, reason: str | None = None) -> None:
        """End the call's media connection. Idempotent."""
        ...
