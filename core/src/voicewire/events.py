"""Typed transport events.

Every event is an attrs frozen class with a ``type`` discriminator. Transports emit them on a
*channel*: the channel is the event's ``type`` except for raw wire messages, which travel on the
``"*"`` channel (``RawServerEvent`` for a model's server events; telephony plugins add their own raw
type, e.g. Twilio's ``twilio_message``). Raw wire dicts are only found on ``"*"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

if TYPE_CHECKING:
    from voicewire.audio.formats import AudioFormat
    from voicewire.items import RealtimeItem
    from voicewire.transport import TransportStatus

__all__ = [
    "WILDCARD",
    "AudioDoneEvent",
    "AudioEvent",
    "AudioInterruptedEvent",
    "AudioTranscriptDeltaEvent",
    "CallStartEvent",
    "CallStopEvent",
    "ConnectionChangeEvent",
    "DtmfEvent",
    "ErrorEvent",
    "FunctionCallEvent",
    "ItemDeletedEvent",
    "ItemUpdateEvent",
    "MarkEvent",
    "OutputTextDeltaEvent",
    "RawEdgeFrameEvent",
    "RawServerEvent",
    "ReconnectedEvent",
    "SpeechStartedEvent",
    "SpeechStoppedEvent",
    "TransportEvent",
    "Truncation",
    "TurnDoneEvent",
    "TurnStartedEvent",
    "Usage",
    "UsageUpdateEvent",
    "channel_of",
]

WILDCARD = "*"
"""The channel of raw wire messages (every server or telephony message, unparsed)."""


def _bytes_repr(data: bytes) -> str:
    # Audio never goes into logs or reprs; its size is what a reader needs.
    return f"<{len(data)} bytes>"


def _names_only(params: Mapping[str, Any]) -> str:
    # Applications pass credentials as stream parameters; a repr shows only their names.
    return "{" + ", ".join(f"{name!r}: '***'" for name in params) + "}"


def _frame_repr(frame: str | bytes) -> str:
    # A provider frame carries caller audio and often per-call parameters, where applications put
    # credentials: a repr shows its kind and size only.
    kind = "text" if isinstance(frame, str) else "binary"
    return f"<{kind} frame of {len(frame)} {'characters' if kind == 'text' else 'bytes'}>"


def _frozen_dict(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value) if value is not None else {}


@attrs.frozen(kw_only=True)
class Usage:
    """Token usage of one response (or accumulated over several)."""

    input_tokens: int = 0
    output_tokens: int = 0
    input_token_details: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    output_token_details: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)

    @property
    def total_tokens(self) -> int:
        """``input_tokens + output_tokens``."""
        return self.input_tokens + self.output_tokens


@attrs.frozen(kw_only=True)
class Truncation:
    """Where an interrupted item was cut: what the model should believe the listener heard."""

    item_id: str
    content_index: int
    audio_end_ms: int


@attrs.frozen(kw_only=True)
class AudioEvent:
    """A chunk of model audio, in the session's output format."""

    type: Literal["audio"] = attrs.field(default="audio", init=False)
    data: bytes = attrs.field(repr=_bytes_repr)
    response_id: str | None = None
    item_id: str | None = None
    content_index: int = 0


@attrs.frozen(kw_only=True)
class AudioDoneEvent:
    """The model finished streaming the audio of one content part."""

    type: Literal["audio_done"] = attrs.field(default="audio_done", init=False)
    response_id: str | None = None
    item_id: str | None = None
    content_index: int = 0


@attrs.frozen(kw_only=True)
class AudioInterruptedEvent:
    """Playback was interrupted: stop local playback. ``truncations`` says where each item was cut."""

    type: Literal["audio_interrupted"] = attrs.field(default="audio_interrupted", init=False)
    response_id: str | None = None
    truncations: tuple[Truncation, ...] = ()


@attrs.frozen(kw_only=True)
class AudioTranscriptDeltaEvent:
    """A piece of the transcript of the model's audio output."""

    type: Literal["audio_transcript_delta"] = attrs.field(
        default="audio_transcript_delta", init=False
    )
    item_id: str
    delta: str
    response_id: str | None = None


@attrs.frozen(kw_only=True)
class OutputTextDeltaEvent:
    """A piece of the model's text output."""

    type: Literal["output_text_delta"] = attrs.field(default="output_text_delta", init=False)
    item_id: str
    delta: str
    response_id: str | None = None


@attrs.frozen(kw_only=True)
class FunctionCallEvent:
    """The model completed a function call; answer it with ``send_function_call_output``."""

    type: Literal["function_call"] = attrs.field(default="function_call", init=False)
    name: str
    call_id: str
    arguments: str
    item_id: str | None = None
    previous_item_id: str | None = None
    response_id: str | None = None


@attrs.frozen(kw_only=True)
class ItemUpdateEvent:
    """A conversation item was added or changed."""

    type: Literal["item_update"] = attrs.field(default="item_update", init=False)
    item: RealtimeItem


@attrs.frozen(kw_only=True)
class ItemDeletedEvent:
    """A conversation item was deleted."""

    type: Literal["item_deleted"] = attrs.field(default="item_deleted", init=False)
    item_id: str


@attrs.frozen(kw_only=True)
class TurnStartedEvent:
    """The model started a response. ``provider_data`` is the provider's raw event."""

    type: Literal["turn_started"] = attrs.field(default="turn_started", init=False)
    response_id: str | None = None
    provider_data: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)


@attrs.frozen(kw_only=True)
class TurnDoneEvent:
    """The model finished a response (completed, cancelled, failed or incomplete)."""

    type: Literal["turn_done"] = attrs.field(default="turn_done", init=False)
    response_id: str | None = None
    status: str | None = None
    output: tuple[Mapping[str, Any], ...] = ()
    usage: Usage = attrs.field(factory=Usage)


@attrs.frozen(kw_only=True)
class UsageUpdateEvent:
    """Token usage reported for one response."""

    type: Literal["usage_update"] = attrs.field(default="usage_update", init=False)
    usage: Usage


@attrs.frozen(kw_only=True)
class ConnectionChangeEvent:
    """The transport's status changed."""

    type: Literal["connection_change"] = attrs.field(default="connection_change", init=False)
    status: TransportStatus


@attrs.frozen(kw_only=True)
class ErrorEvent:
    """Something went wrong; the transport keeps going unless a ``connection_change`` says otherwise.

    ``source`` says where: ``"server"`` (the model's error event, raw event in ``details``),
    ``"transport"`` (socket or protocol trouble), ``"listener"`` (an event listener raised),
    ``"telephony"`` (the telephony edge), ``"overflow"`` (a bounded buffer dropped data).
    """

    type: Literal["error"] = attrs.field(default="error", init=False)
    message: str
    source: str = "transport"
    code: str | None = None
    error: BaseException | None = attrs.field(default=None, eq=False)
    details: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)


@attrs.frozen(kw_only=True)
class ReconnectedEvent:
    """The transport reconnected after losing its connection (reconnect policy on)."""

    type: Literal["reconnected"] = attrs.field(default="reconnected", init=False)
    attempt: int
    state_restored: bool


@attrs.frozen(kw_only=True)
class SpeechStartedEvent:
    """The model's speech detection heard the user start speaking (the barge-in trigger)."""

    type: Literal["speech_started"] = attrs.field(default="speech_started", init=False)
    item_id: str | None = None
    audio_start_ms: int | None = None


@attrs.frozen(kw_only=True)
class SpeechStoppedEvent:
    """The model's speech detection heard the user stop speaking."""

    type: Literal["speech_stopped"] = attrs.field(default="speech_stopped", init=False)
    item_id: str | None = None
    audio_end_ms: int | None = None


@attrs.frozen(kw_only=True)
class RawServerEvent:
    """A raw server message of a model transport, exactly as parsed from the wire (channel ``*``)."""

    type: Literal["server_event"] = attrs.field(default="server_event", init=False)
    channel: ClassVar[str] = WILDCARD
    source: str
    message: Mapping[str, Any]


@attrs.frozen(kw_only=True)
class RawEdgeFrameEvent:
    """A telephony provider's frame as received, before its dialect read it (channel ``*``).

    :class:`~voicewire.bridge.DialectEdge` emits it for every frame, including frames its dialect
    then refuses or ignores, while something listens on ``"*"``. Its repr shows the frame's kind
    and size, never its content (caller audio, custom parameters).

    Attributes:
        provider: The dialect's ``capabilities.provider``.
        frame: The WebSocket frame: ``str`` for a text frame, ``bytes`` for a binary one.
    """

    type: Literal["edge_frame"] = attrs.field(default="edge_frame", init=False)
    channel: ClassVar[str] = WILDCARD
    provider: str
    frame: str | bytes = attrs.field(repr=_frame_repr)


@attrs.frozen(kw_only=True)
class CallStartEvent:
    """A telephony call started streaming media (Twilio: the ``start`` message)."""

    type: Literal["call_start"] = attrs.field(default="call_start", init=False)
    call_id: str | None
    stream_id: str | None
    audio_format: AudioFormat | None = None
    custom_parameters: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen_dict, repr=_names_only
    )


@attrs.frozen(kw_only=True)
class CallStopEvent:
    """The telephony call stopped streaming (hang-up or end of the stream)."""

    type: Literal["call_stop"] = attrs.field(default="call_stop", init=False)
    call_id: str | None = None
    reason: str | None = None


@attrs.frozen(kw_only=True)
class DtmfEvent:
    """The caller pressed a key."""

    type: Literal["dtmf"] = attrs.field(default="dtmf", init=False)
    digit: str


@attrs.frozen(kw_only=True)
class MarkEvent:
    """The telephony side acknowledged playback up to a token (Twilio: a ``mark`` echo)."""

    type: Literal["mark"] = attrs.field(default="mark", init=False)
    token: str
    cleared: bool = False


TransportEvent = (
    AudioEvent
    | AudioDoneEvent
    | AudioInterruptedEvent
    | AudioTranscriptDeltaEvent
    | OutputTextDeltaEvent
    | FunctionCallEvent
    | ItemUpdateEvent
    | ItemDeletedEvent
    | TurnStartedEvent
    | TurnDoneEvent
    | UsageUpdateEvent
    | ConnectionChangeEvent
    | ErrorEvent
    | ReconnectedEvent
    | SpeechStartedEvent
    | SpeechStoppedEvent
    | RawServerEvent
    | RawEdgeFrameEvent
    | CallStartEvent
    | CallStopEvent
    | DtmfEvent
    | MarkEvent
)
"""Every event a core transport or the call bridge emits. Plugins may emit more types of their own."""


def channel_of(event: Any) -> str:
    """The channel an event is emitted on: its class's ``channel`` if set, else its ``type``."""
    channel = getattr(type(event), "channel", None)
    if isinstance(channel, str):
        return channel
    return str(event.type)
