"""Typed messages Twilio sends on a bidirectional Media Stream (``<Connect><Stream>``).

One attrs frozen class per ``event``; :data:`InboundMessage` is their union. Field names are the
Python spelling of the wire's (``streamSid`` -> ``stream_sid``); counters that travel as strings
of digits (``sequenceNumber``, ``chunk``, ``timestamp``) are ints here, and the base64 payload is
decoded to bytes. Build them with :func:`~voicewire_twilio.protocol.parse_message`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Literal, TypeAlias

import attrs

from voicewire.audio.formats import AudioFormat

__all__ = ["Connected", "Dtmf", "InboundMessage", "Mark", "Media", "Start", "Stop"]


def _bytes_repr(data: bytes) -> str:
    # Caller audio never goes into a repr (and so never into a log line); its size does.
    return f"<{len(data)} bytes>"


def _read_only(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


def _parameters_repr(value: Mapping[str, str]) -> str:
    # <Parameter> values are where applications put per-call credentials (Twilio offers no custom
    # headers), so a repr shows which parameters arrived, never what they say.
    return f"<parameters {sorted(value)!r}>"


def _tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class Connected:
    """The first frame of every stream: Twilio says which protocol it speaks.

    Attributes:
        protocol: ``"Call"``.
        version: The protocol version, e.g. ``"1.0.0"``.
    """

    event: Literal["connected"] = attrs.field(default="connected", init=False)
    protocol: str
    version: str


@attrs.frozen(kw_only=True)
class Start:
    """The stream's metadata, sent once after :class:`Connected` (``sequenceNumber`` ``"1"``).

    Attributes:
        sequence_number: Twilio's per-stream message counter.
        stream_sid: The stream id (``MZ`` + 32 hex digits); every later message carries it.
        account_sid: The account (``AC…``).
        call_sid: The call (``CA…``).
        tracks: The tracks that will be sent; ``("inbound",)`` for ``<Connect><Stream>``.
        custom_parameters: The ``<Parameter>`` children of the TwiML ``<Stream>`` (read-only;
            empty when Twilio sent none or omitted the field). Its repr shows only the names.
        media_format: The inbound audio format: mu-law, 8 kHz, mono in practice.
    """

    event: Literal["start"] = attrs.field(default="start", init=False)
    sequence_number: int
    stream_sid: str
    account_sid: str
    call_sid: str
    tracks: tuple[str, ...] = attrs.field(converter=_tuple)
    custom_parameters: Mapping[str, str] = attrs.field(
        factory=dict, converter=_read_only, repr=_parameters_repr
    )
    media_format: AudioFormat


@attrs.frozen(kw_only=True)
class Media:
    """One chunk of caller audio (160 bytes, 20 ms, in practice).

    Attributes:
        sequence_number: Twilio's per-stream message counter.
        stream_sid: The stream id.
        track: ``"inbound"`` on a bidirectional stream.
        chunk: The media message counter, ``1`` for the first.
        timestamp_ms: Milliseconds since the stream started, when Twilio sent one. Trust it over
            arrival time: frames can arrive bunched.
        payload: The raw audio (base64-decoded), in :attr:`Start.media_format`. Hidden in repr.
    """

    event: Literal["media"] = attrs.field(default="media", init=False)
    sequence_number: int
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int | None = None
    payload: bytes = attrs.field(repr=_bytes_repr)


@attrs.frozen(kw_only=True)
class Mark:
    """Twilio's echo of a mark the application sent: playback reached it, or a clear dropped it.

    Attributes:
        sequence_number: Twilio's per-stream message counter.
        stream_sid: The stream id.
        name: The name given to the mark when it was sent.
    """

    event: Literal["mark"] = attrs.field(default="mark", init=False)
    sequence_number: int
    stream_sid: str
    name: str


@attrs.frozen(kw_only=True)
class Dtmf:
    """The caller pressed a key.

    Attributes:
        sequence_number: Twilio's per-stream message counter.
        stream_sid: The stream id.
        track: ``"inbound_track"``.
        digit: One key: ``0``-``9``, ``*``, ``#`` or ``A``-``D``.
    """

    event: Literal["dtmf"] = attrs.field(default="dtmf", init=False)
    sequence_number: int
    stream_sid: str
    track: str
    digit: str


@attrs.frozen(kw_only=True)
class Stop:
    """The last frame: the call ended or the stream was stopped. Twilio then closes the socket.

    Attributes:
        sequence_number: Twilio's per-stream message counter.
        stream_sid: The stream id.
        account_sid: The account.
        call_sid: The call.
    """

    event: Literal["stop"] = attrs.field(default="stop", init=False)
    sequence_number: int
    stream_sid: str
    account_sid: str
    call_sid: str


InboundMessage: TypeAlias = Connected | Start | Media | Mark | Dtmf | Stop
"""Any message Twilio sends on a bidirectional stream; narrow on ``.event`` or the class."""
