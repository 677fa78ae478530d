"""Server frames -> typed voicewire events (the mapping table), without side effects.

:func:`parse_server_frame` never raises. For a frame holding a JSON object it yields a
:class:`~voicewire.events.RawServerEvent` (``source="openai"``, channel ``*``) first, then the
typed events of the table below. Event types not in the table reach ``*`` only.

| server event | typed events |
|---|---|
| ``response.created`` | ``TurnStartedEvent`` |
| ``response.done`` | ``UsageUpdateEvent``, then ``TurnDoneEvent`` |
| ``response.output_audio.delta`` | ``AudioEvent`` (decoded bytes, response/item ids, content index) |
| ``response.output_audio.done`` | ``AudioDoneEvent`` |
| ``response.output_audio_transcript.delta`` | ``AudioTranscriptDeltaEvent`` |
| ``response.output_text.delta`` | ``OutputTextDeltaEvent`` |
| ``conversation.item.added/done/retrieved`` | ``ItemUpdateEvent`` for messages and MCP calls; MCP approval requests on ``done`` only |
| ``response.output_item.added/done`` | ``ItemUpdateEvent`` for messages and MCP calls; a *completed* function call gives ``ItemUpdateEvent`` (status ``in_progress``) then ``FunctionCallEvent`` |
| ``conversation.item.deleted`` | ``ItemDeletedEvent`` |
| ``error`` | ``ErrorEvent`` (``source="server"``, raw event in ``details``) |

Item statuses default to ``in_progress`` for ``added`` and ``completed`` for ``done`` and
``retrieved``; assistant ``audio`` parts become ``OutputAudio``.

Frames that cannot be used are reported, never dropped silently and never raised: the result
holds an ``ErrorEvent`` with ``source="transport"``, a ``code``, and an
:class:`~voicewire_openai_ws.protocol.errors.InvalidServerEventError` as its ``error``:

* ``invalid_json``: not UTF-8, not JSON, or nested deeper than ``MAX_FRAME_NESTING`` (128).
* ``invalid_event``: JSON but not an object; an object without a string ``type``; a known type
  missing a field voicewire needs, or holding it with the wrong JSON type; an item that cannot be
  represented.
* ``invalid_base64``: an audio delta that is not base64.

``details`` holds ``event`` (the object) when there is one, else ``frame`` (at most the first
500 characters) and ``frame_length``. An object is still delivered on ``*`` before its error. An
unusable event produces no typed events and drives no state. The fields voicewire needs are
those it reads: ``item_id``, ``content_index`` and ``delta`` of an audio delta (``response_id``
is optional everywhere), ``response`` of ``response.created``/``done``, ``item`` of item events,
``session`` of ``session.created``/``updated``, ``item_id`` of the events that trigger a
retrieve.
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from voicewire.errors import ProtocolError
from voicewire.events import (
    AudioDoneEvent,
    AudioEvent,
    AudioTranscriptDeltaEvent,
    ErrorEvent,
    FunctionCallEvent,
    ItemDeletedEvent,
    ItemUpdateEvent,
    OutputTextDeltaEvent,
    RawServerEvent,
    TransportEvent,
    TurnDoneEvent,
    TurnStartedEvent,
    Usage,
    UsageUpdateEvent,
)
from voicewire.items import FunctionCallItem, ItemStatus, RealtimeItem, item_from_wire
from voicewire_openai_ws.protocol.errors import InvalidServerEventError
from voicewire_openai_ws.protocol.frames import decode_frame, frame_preview

__all__ = ["SOURCE", "ParsedFrame", "parse_server_frame", "protocol_error_event", "usage_of"]

SOURCE: Final = "openai"
"""The ``source`` of every :class:`~voicewire.events.RawServerEvent` this module produces."""

_ITEM_KINDS: Final = frozenset(
    {
        "message",
        "function_call",
        "function_call_output",
        "mcp_call",
        "mcp_tool_call",
        "mcp_approval_request",
    }
)
_MCP_CALLS: Final = frozenset({"mcp_call", "mcp_tool_call"})


@attrs.frozen(kw_only=True)
class ParsedFrame:
    """One server frame, parsed.

    Attributes:
        message: The JSON object, or ``None`` if the frame did not hold one.
        events: What to emit, in order: ``RawServerEvent`` first (if there is an object), then the
            typed events, or an ``ErrorEvent`` if the frame could not be used.
        error: Why the frame could not be used, or ``None``.
    """

    message: Mapping[str, Any] | None
    events: tuple[TransportEvent, ...]
    error: InvalidServerEventError | None = None

    @property
    def type(self) -> str | None:
        """The event's ``type`` if it has a string one."""
        kind = None if self.message is None else self.message.get("type")
        return kind if isinstance(kind, str) else None

    @property
    def usable(self) -> bool:
        """Whether the event may drive state: an object, with a type, and no error."""
        return self.message is not None and self.error is None and self.type is not None


def protocol_error_event(exc: InvalidServerEventError, details: Mapping[str, Any]) -> ErrorEvent:
    """The ``ErrorEvent`` that reports an unusable frame (``source="transport"``)."""
    return ErrorEvent(
        message=str(exc), source="transport", code=exc.code, error=exc, details=details
    )


class _Fields:
    """Typed access to an event's fields; a missing or mistyped one is an ``invalid_event``."""

    def __init__(self, message: Mapping[str, Any]) -> None:
        self._message = message
        self._kind = message.get("type")

    def _fail(self, name: str, expected: str) -> InvalidServerEventError:
        value = self._message.get(name)
        found = "missing" if name not in self._message else f"a {type(value).__name__}"
        return InvalidServerEventError(
            "invalid_event", f"{self._kind} event: {name!r} must be {expected}, got {found}"
        )

    def text(self, name: str) -> str:
        value = self._message.get(name)
        if not isinstance(value, str):
            raise self._fail(name, "a string")
        return value

    def opt_text(self, name: str) -> str | None:
        value = self._message.get(name)
        if value is not None and not isinstance(value, str):
            raise self._fail(name, "a string or null")
        return value

    def integer(self, name: str) -> int:
        value = self._message.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(name, "an integer")
        return value

    def obj(self, name: str) -> Mapping[str, Any]:
        value = self._message.get(name)
        if not isinstance(value, Mapping):
            raise self._fail(name, "an object")
        return value


def _int_or_zero(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _mapping_or_empty(value: object) -> Mapping[str, Any]:
    return copy.deepcopy(dict(value)) if isinstance(value, Mapping) else {}


def usage_of(response: Mapping[str, Any]) -> Usage:
    """The token usage of a GA response object (zeros while the server reports none)."""
    raw = response.get("usage")
    usage = raw if isinstance(raw, Mapping) else {}
    return Usage(
        input_tokens=_int_or_zero(usage.get("input_tokens")),
        output_tokens=_int_or_zero(usage.get("output_tokens")),
        input_token_details=_mapping_or_empty(usage.get("input_token_details")),
        output_token_details=_mapping_or_empty(usage.get("output_token_details")),
    )


def _item(data: Mapping[str, Any], default_status: ItemStatus | None) -> RealtimeItem:
    try:
        return item_from_wire(data, default_status=default_status)
    except ProtocolError as exc:
        raise InvalidServerEventError("invalid_event", f"unusable item: {exc}") from exc


def _opt_response_id(response: Mapping[str, Any]) -> str | None:
    value = response.get("id")
    return value if isinstance(value, str) else None


# --- handlers: message -> typed events; raising InvalidServerEventError on unusable input ------

_Handler = Callable[[Mapping[str, Any]], list[TransportEvent]]


def _validate_only(*required: str) -> _Handler:
    def handler(message: Mapping[str, Any]) -> list[TransportEvent]:
        fields = _Fields(message)
        for name in required:
            if name == "session":
                fields.obj(name)
            else:
                fields.text(name)
        return []

    return handler


def _response_created(message: Mapping[str, Any]) -> list[TransportEvent]:
    response = _Fields(message).obj("response")
    return [
        TurnStartedEvent(
            response_id=_opt_response_id(response), provider_data=copy.deepcopy(dict(message))
        )
    ]


def _response_done(message: Mapping[str, Any]) -> list[TransportEvent]:
    response = _Fields(message).obj("response")
    usage = usage_of(response)
    output = response.get("output")
    status = response.get("status")
    return [
        UsageUpdateEvent(usage=usage),
        TurnDoneEvent(
            response_id=_opt_response_id(response),
            status=status if isinstance(status, str) else None,
            output=tuple(
                copy.deepcopy(dict(entry))
                for entry in (output if isinstance(output, list) else [])
                if isinstance(entry, Mapping)
            ),
            usage=usage,
        ),
    ]


def _decode_audio(delta: str) -> bytes:
    try:
        return base64.b64decode(delta, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidServerEventError(
            "invalid_base64", f"response.output_audio.delta: 'delta' is not base64 ({exc})"
        ) from exc


def _audio_delta(message: Mapping[str, Any]) -> list[TransportEvent]:
    fields = _Fields(message)
    item_id, content_index = fields.text("item_id"), fields.integer("content_index")
    response_id, delta = fields.opt_text("response_id"), fields.text("delta")
    return [
        AudioEvent(
            data=_decode_audio(delta),
            response_id=response_id,
            item_id=item_id,
            content_index=content_index,
        )
    ]


def _audio_done(message: Mapping[str, Any]) -> list[TransportEvent]:
    fields = _Fields(message)
    return [
        AudioDoneEvent(
            response_id=fields.opt_text("response_id"),
            item_id=fields.text("item_id"),
            content_index=fields.integer("content_index"),
        )
    ]


def _transcript_delta(message: Mapping[str, Any]) -> list[TransportEvent]:
    fields = _Fields(message)
    return [
        AudioTranscriptDeltaEvent(
            item_id=fields.text("item_id"),
            delta=fields.text("delta"),
            response_id=fields.opt_text("response_id"),
        )
    ]


def _text_delta(message: Mapping[str, Any]) -> list[TransportEvent]:
    fields = _Fields(message)
    return [
        OutputTextDeltaEvent(
            item_id=fields.text("item_id"),
            delta=fields.text("delta"),
            response_id=fields.opt_text("response_id"),
        )
    ]


def _item_deleted(message: Mapping[str, Any]) -> list[TransportEvent]:
    return [ItemDeletedEvent(item_id=_Fields(message).text("item_id"))]


def _conversation_item(phase: str) -> _Handler:
    default_status: ItemStatus = "in_progress" if phase == "added" else "completed"

    def handler(message: Mapping[str, Any]) -> list[TransportEvent]:
        fields = _Fields(message)
        raw_item = fields.obj("item")
        # Only a str can be looked up in the sets below: a list or an object as the item's
        # type would raise TypeError (found by tests/hardening); it is simply not an item kind.
        kind = raw_item.get("type")
        if not isinstance(kind, str) or kind not in _ITEM_KINDS:
            return []  # e.g. mcp_list_tools, mcp_approval_response: on "*" only
        # Added/done events carry previous_item_id beside the item; retrieved ones do not.
        previous = None if phase == "retrieved" else fields.opt_text("previous_item_id")
        item = _item({**raw_item, "previous_item_id": previous}, default_status)
        if kind == "message" or kind in _MCP_CALLS:
            return [ItemUpdateEvent(item=item)]
        if kind == "mcp_approval_request" and phase == "done":
            return [ItemUpdateEvent(item=item)]
        # Function calls are announced from response.output_item.*, their outputs by
        # send_function_call_output; the conversation state still records both.
        return []

    return handler


def _output_item(phase: str) -> _Handler:
    default_status: ItemStatus = "in_progress" if phase == "added" else "completed"

    def handler(message: Mapping[str, Any]) -> list[TransportEvent]:
        fields = _Fields(message)
        raw_item = fields.obj("item")
        response_id = fields.opt_text("response_id")
        kind = raw_item.get("type")
        if not isinstance(kind, str):
            return []  # not an item kind (and unhashable for the set lookup below)
        if kind == "function_call":
            if raw_item.get("status") != "completed":
                return []  # arguments may still be streaming; announce the call once
            item = _item({**raw_item, "previous_item_id": None}, default_status)
            if not isinstance(
                item, FunctionCallItem
            ):  # pragma: no cover - item_from_wire's contract
                raise InvalidServerEventError("invalid_event", "function_call item misread")
            # In progress until the application sends the output (send_function_call_output).
            pending = attrs.evolve(item, status="in_progress", output=None)
            call = FunctionCallEvent(
                name=item.name,
                call_id=item.call_id,
                arguments=item.arguments,
                item_id=item.item_id,
                response_id=response_id,
            )
            return [ItemUpdateEvent(item=pending), call]
        if kind == "message" or kind in _MCP_CALLS:
            return [
                ItemUpdateEvent(item=_item({**raw_item, "previous_item_id": None}, default_status))
            ]
        return []

    return handler


def _server_error(message: Mapping[str, Any]) -> list[TransportEvent]:
    error = message.get("error")
    body = error if isinstance(error, Mapping) else {}
    text = body.get("message")
    code = body.get("code")
    if not isinstance(text, str) or not text:
        kind = body.get("type")
        text = f"server error ({kind})" if isinstance(kind, str) else "server error"
    return [
        ErrorEvent(
            message=text,
            source="server",
            code=code if isinstance(code, str) else None,
            details=copy.deepcopy(dict(message)),
        )
    ]


_HANDLERS: Final[dict[str, _Handler]] = {
    "response.created": _response_created,
    "response.done": _response_done,
    "response.output_audio.delta": _audio_delta,
    "response.output_audio.done": _audio_done,
    "response.output_audio_transcript.delta": _transcript_delta,
    "response.output_text.delta": _text_delta,
    "conversation.item.added": _conversation_item("added"),
    "conversation.item.done": _conversation_item("done"),
    "conversation.item.retrieved": _conversation_item("retrieved"),
    "conversation.item.deleted": _item_deleted,
    "response.output_item.added": _output_item("added"),
    "response.output_item.done": _output_item("done"),
    "error": _server_error,
    # No typed event, but state depends on them: check what the state reads.
    "session.created": _validate_only("session"),
    "session.updated": _validate_only("session"),
    "conversation.item.truncated": _validate_only("item_id"),
    "conversation.item.input_audio_transcription.completed": _validate_only("item_id"),
    "response.mcp_call.in_progress": _validate_only("item_id"),
}

KNOWN_TYPES: Final = frozenset(_HANDLERS)
"""Server event types this module checks and maps; the others reach ``*`` only."""


def parse_server_frame(frame: str | bytes) -> ParsedFrame:
    """Parse one server frame; see the module documentation for the mapping and the errors.

    Args:
        frame: A WebSocket message as received (text, or UTF-8 bytes).

    Returns:
        The parsed frame. Never raises for anything the server sent.
    """
    try:
        message = decode_frame(frame)
    except InvalidServerEventError as exc:
        details = {"frame": frame_preview(frame), "frame_length": len(frame)}
        return ParsedFrame(message=None, events=(protocol_error_event(exc, details),), error=exc)
    raw = RawServerEvent(source=SOURCE, message=message)
    kind = message.get("type")
    handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
    try:
        if not isinstance(kind, str) or not kind:
            raise InvalidServerEventError("invalid_event", "server event has no string 'type'")
        typed = handler(message) if handler is not None else []
    except InvalidServerEventError as exc:
        error = protocol_error_event(exc, {"event": message})
        return ParsedFrame(message=message, events=(raw, error), error=exc)
    return ParsedFrame(message=message, events=(raw, *typed))
