"""Conversation items: the messages, tool calls and tool results a realtime conversation holds.

Every item and content part is an attrs frozen class, validated when it is built: a value the
model could not have produced (an assistant message holding ``input_text``, an unknown status)
raises :class:`~voicewire.errors.ConfigError`, which is a ``ValueError`` naming the field.

Two functions translate between these classes and the OpenAI Realtime (GA) wire shape:
:func:`item_from_wire` reads a server item and :func:`item_to_wire` builds the ``item`` of a
``conversation.item.create`` client event.

An empty ``item_id`` means "no id yet": :func:`item_to_wire` then leaves ``id`` out so the server
picks one (the usual case for a message the application sends).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal, cast

import attrs

from voicewire.errors import ConfigError, ProtocolError

__all__ = [
    "AssistantContent",
    "AssistantMessageItem",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "InputAudio",
    "InputImage",
    "InputText",
    "ItemStatus",
    "McpApprovalRequestItem",
    "McpCallItem",
    "MessageItem",
    "OutputAudio",
    "OutputText",
    "RealtimeItem",
    "SystemMessageItem",
    "UserContent",
    "UserMessageItem",
    "item_from_wire",
    "item_to_wire",
]

ItemStatus = Literal["in_progress", "completed", "incomplete"]
"""Life-cycle status of an item as the server reports it."""

_STATUSES: frozenset[str] = frozenset({"in_progress", "completed", "incomplete"})


# --- field helpers ---------------------------------------------------------------------------


def _b64_repr(value: str | None) -> str:
    # Base64 audio can be megabytes; a repr that prints it makes logs useless and leaks content.
    return "None" if value is None else f"<{len(value)} base64 chars>"


def _url_repr(value: str) -> str:
    # Images are often inlined as data: URLs, which are as large and as private as audio.
    if value.startswith("data:"):
        head = value.split(",", 1)[0]
        return f"<{head},... {len(value)} chars>"
    return repr(value)


def _check_str(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(attribute.name, f"expected a string, got {type(value).__name__}")


def _check_opt_str(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(attribute.name, f"expected a string or None, got {type(value).__name__}")


def _check_status(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or value not in _STATUSES):
        raise ConfigError(
            attribute.name,
            f"{value!r} is not one of {sorted(_STATUSES)} (or None)",
        )


def _check_parts(allowed: tuple[type, ...], role: str) -> Any:
    names = ", ".join(cls.__name__ for cls in allowed)

    def check(_: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]) -> None:
        for index, part in enumerate(value):
            if not isinstance(part, allowed):
                raise ConfigError(
                    attribute.name,
                    f"part {index} is {type(part).__name__}, but {role} messages allow "
                    f"only {names}",
                )

    return check


def _arguments(value: Mapping[str, Any]) -> dict[str, Any]:
    # A private copy, so that mutating the mapping a caller passed in cannot change the item.
    if not isinstance(value, Mapping):
        raise ConfigError("arguments", f"expected a mapping, got {type(value).__name__}")
    return dict(value)


# --- content parts ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class InputText:
    """Text the user (or the system) put into the conversation.

    Attributes:
        type: Always ``"input_text"``.
        text: The text.
    """

    type: Literal["input_text"] = attrs.field(default="input_text", init=False)
    text: str = attrs.field(validator=_check_str)


@attrs.frozen(kw_only=True)
class InputAudio:
    """Audio the user sent, and/or the server's transcript of it.

    Attributes:
        type: Always ``"input_audio"``.
        audio: Base64 audio in the session's input format, or ``None`` when the server left it
            out (it usually does, except for ``conversation.item.retrieve``). Its repr shows
            only its length.
        transcript: The transcript, once the server has one.
    """

    type: Literal["input_audio"] = attrs.field(default="input_audio", init=False)
    audio: str | None = attrs.field(default=None, validator=_check_opt_str, repr=_b64_repr)
    transcript: str | None = attrs.field(default=None, validator=_check_opt_str)


@attrs.frozen(kw_only=True)
class InputImage:
    """An image in a user message.

    Attributes:
        type: Always ``"input_image"``.
        image_url: An ``https:`` URL or a ``data:`` URL (base64 image); a ``data:`` URL's repr
            shows only its media type and length.
        detail: The detail level the model should use (``"auto"``, ``"low"``, ``"high"``), or
            ``None`` for the server's default.
    """

    type: Literal["input_image"] = attrs.field(default="input_image", init=False)
    image_url: str = attrs.field(validator=_check_str, repr=_url_repr)
    detail: str | None = attrs.field(default=None, validator=_check_opt_str)


@attrs.frozen(kw_only=True)
class OutputText:
    """Text the model produced.

    Attributes:
        type: Always ``"output_text"``.
        text: The text (possibly partial while the item is ``in_progress``).
    """

    type: Literal["output_text"] = attrs.field(default="output_text", init=False)
    text: str = attrs.field(validator=_check_str)


@attrs.frozen(kw_only=True)
class OutputAudio:
    """Audio the model produced, and/or its transcript.

    Attributes:
        type: Always ``"output_audio"``.
        audio: Base64 audio in the session's output format, or ``None`` (servers omit it from
            most item events). Its repr shows only its length.
        transcript: The transcript of what the model said.
    """

    type: Literal["output_audio"] = attrs.field(default="output_audio", init=False)
    audio: str | None = attrs.field(default=None, validator=_check_opt_str, repr=_b64_repr)
    transcript: str | None = attrs.field(default=None, validator=_check_opt_str)


UserContent = InputText | InputAudio | InputImage
"""A content part allowed in a user message."""

AssistantContent = OutputText | OutputAudio
"""A content part allowed in an assistant message."""


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    # A lone part (or a string, which is iterable) is a mistake worth naming, not iterating.
    if isinstance(value, str | Mapping) or not isinstance(value, Iterable):
        raise ConfigError("content", f"expected a sequence of parts, got {type(value).__name__}")
    return tuple(value)


def _system_content(value: Iterable[InputText]) -> tuple[InputText, ...]:
    return _tuple(value)


def _user_content(value: Iterable[UserContent]) -> tuple[UserContent, ...]:
    return _tuple(value)


def _assistant_content(value: Iterable[AssistantContent]) -> tuple[AssistantContent, ...]:
    return _tuple(value)


# --- items -----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SystemMessageItem:
    """A system message: instructions placed in the conversation itself.

    Attributes:
        item_id: The item's id (``""``: not assigned yet).
        previous_item_id: The item this one follows, when known.
        content: Text parts only.
        type: Always ``"message"``.
        role: Always ``"system"``.
    """

    item_id: str = attrs.field(validator=_check_str)
    previous_item_id: str | None = attrs.field(default=None, validator=_check_opt_str)
    content: tuple[InputText, ...] = attrs.field(
        default=(),
        converter=_system_content,
        validator=_check_parts((InputText,), "system"),
    )
    type: Literal["message"] = attrs.field(default="message", init=False)
    role: Literal["system"] = attrs.field(default="system", init=False)


@attrs.frozen(kw_only=True)
class UserMessageItem:
    """A user message: text, audio or images from the person talking to the model.

    Attributes:
        item_id: The item's id (``""``: not assigned yet).
        previous_item_id: The item this one follows, when known.
        status: The server's status for the item, if reported.
        content: ``InputText``, ``InputAudio`` and ``InputImage`` parts.
        type: Always ``"message"``.
        role: Always ``"user"``.
    """

    item_id: str = attrs.field(validator=_check_str)
    previous_item_id: str | None = attrs.field(default=None, validator=_check_opt_str)
    status: ItemStatus | None = attrs.field(default=None, validator=_check_status)
    content: tuple[UserContent, ...] = attrs.field(
        default=(),
        converter=_user_content,
        validator=_check_parts((InputText, InputAudio, InputImage), "user"),
    )
    type: Literal["message"] = attrs.field(default="message", init=False)
    role: Literal["user"] = attrs.field(default="user", init=False)


@attrs.frozen(kw_only=True)
class AssistantMessageItem:
    """A message the model produced.

    Attributes:
        item_id: The item's id.
        previous_item_id: The item this one follows, when known.
        status: ``in_progress`` while the model is still producing it, then ``completed`` or
            ``incomplete`` (e.g. interrupted).
        content: ``OutputText`` and ``OutputAudio`` parts.
        type: Always ``"message"``.
        role: Always ``"assistant"``.
    """

    item_id: str = attrs.field(validator=_check_str)
    previous_item_id: str | None = attrs.field(default=None, validator=_check_opt_str)
    status: ItemStatus | None = attrs.field(default=None, validator=_check_status)
    content: tuple[AssistantContent, ...] = attrs.field(
        default=(),
        converter=_assistant_content,
        validator=_check_parts((OutputText, OutputAudio), "assistant"),
    )
    type: Literal["message"] = attrs.field(default="message", init=False)
    role: Literal["assistant"] = attrs.field(default="assistant", init=False)


@attrs.frozen(kw_only=True)
class FunctionCallItem:
    """A call the model made to a function tool, and (once sent) its output.

    Attributes:
        item_id: The item's id.
        previous_item_id: The item this one follows, when known.
        status: The server's status for the call.
        name: The function's name.
        call_id: The id that ties the call to its ``FunctionCallOutputItem``.
        arguments: The arguments as a JSON **string**, exactly as the model wrote them.
        output: The output the application returned, once it has (not part of the wire item).
        type: Always ``"function_call"``.
    """

    item_id: str = attrs.field(validator=_check_str)
    previous_item_id: str | None = attrs.field(default=None, validator=_check_opt_str)
    status: ItemStatus | None = attrs.field(default=None, validator=_check_status)
    name: str = attrs.field(validator=_check_str)
    call_id: str = attrs.field(validator=_check_str)
    arguments: str = attrs.field(validator=_check_str)
    output: str | None = attrs.field(default=None, validator=_check_opt_str)
    type: Literal["function_call"] = attrs.field(default="function_call", init=False)


@attrs.frozen(kw_only=True)
class FunctionCallOutputItem:
    """The result of a function call, sent back to the model.

    Attributes:
        item_id: The item's id (``""``: not assigned yet).
        previous_item_id: The item this one follows, when known.
        call_id: The ``call_id`` of the ``FunctionCallItem`` it answers.
        output: The result, as a string (often JSON).
        type: Always ``"function_call_output"``.
    """

    item_id: str = attrs.field(validator=_check_str)
    previous_item_id: str | None = attrs.field(default=None, validator=_check_opt_str)
    call_id: str = attrs.field(validator=_check_str)
    output: str = attrs.field(validator=_check_str)
    type: Literal["function_call_output"] = attrs.field(default="function_call_output", init=False)


def _check_mcp_type(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ("mcp_call", "mcp_tool_call"):
        raise ConfigError(attribute.name, f"{value!r} is not 'mcp_call' or 'mcp_tool_call'")


@attrs.frozen(kw_only=True)
class McpCallItem:
    """A call the model made to a tool of a hosted MCP server.

    Attributes:
        item_id: The item's id.
        previous_item_id: The item this one follows, when known.
        type: ``"mcp_call"`` (GA name) or ``"mcp_tool_call"`` (older name); kept as received.
        status: The server's status for the call.
        name: The tool's name.
        arguments: The arguments as a JSON string.
        output: The tool's output, once the server has it.
    """

    item_id: str = attrs.field(validator=_check_str)
    previous_item_id: str | None = attrs.field(default=None, validator=_check_opt_str)
    type: Literal["mcp_call", "mcp_tool_call"] = attrs.field(
        default="mcp_call", validator=_check_mcp_type
    )
    status: ItemStatus | None = attrs.field(default=None, validator=_check_status)
    name: str = attrs.field(validator=_check_str)
    arguments: str = attrs.field(validator=_check_str)
    output: str | None = attrs.field(default=None, validator=_check_opt_str)


def _check_opt_bool(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise ConfigError(attribute.name, f"expected a bool or None, got {type(value).__name__}")


@attrs.frozen(kw_only=True)
class McpApprovalRequestItem:
    """A hosted MCP server asks the application to approve a tool call.

    Attributes:
        item_id: The item's id.
        previous_item_id: The item this one follows, when known.
        server_label: The label of the MCP server that asks.
        name: The tool it wants to call.
        arguments: The call's arguments, decoded from the wire's JSON string.
        approved: The application's answer once given; ``None`` while pending. Not part of the
            wire item (the answer is a separate ``mcp_approval_response`` item).
        type: Always ``"mcp_approval_request"``.
    """

    item_id: str = attrs.field(validator=_check_str)
    previous_item_id: str | None = attrs.field(default=None, validator=_check_opt_str)
    server_label: str = attrs.field(validator=_check_str)
    name: str = attrs.field(validator=_check_str)
    arguments: Mapping[str, Any] = attrs.field(factory=dict, converter=_arguments)
    approved: bool | None = attrs.field(default=None, validator=_check_opt_bool)
    type: Literal["mcp_approval_request"] = attrs.field(default="mcp_approval_request", init=False)


MessageItem = SystemMessageItem | UserMessageItem | AssistantMessageItem
"""Any message item."""

RealtimeItem = (
    SystemMessageItem
    | UserMessageItem
    | AssistantMessageItem
    | FunctionCallItem
    | FunctionCallOutputItem
    | McpCallItem
    | McpApprovalRequestItem
)
"""Any conversation item voicewire represents."""


# --- wire -> items ---------------------------------------------------------------------------


def _get_str(data: Mapping[str, Any], key: str, where: str, *, default: str | None = None) -> str:
    value = data.get(key)
    if value is None:
        if default is not None:
            return default
        raise ProtocolError(f"{where} has no {key!r}")
    if not isinstance(value, str):
        raise ProtocolError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    return value


def _get_opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    return value


def _status(data: Mapping[str, Any], where: str, default: ItemStatus | None) -> ItemStatus | None:
    value = data.get("status")
    if value is None:
        return default
    # A wire value may be a list or an object, which the set lookup cannot hash: that was a
    # TypeError instead of the documented ProtocolError (found by tests/hardening).
    if not isinstance(value, str) or value not in _STATUSES:
        raise ProtocolError(f"{where}: unknown status {value!r}")
    return cast("ItemStatus", value)


def _parts(data: Mapping[str, Any], where: str) -> list[Mapping[str, Any]]:
    content = data.get("content")
    if content is None:
        return []
    if not isinstance(content, list | tuple):
        raise ProtocolError(f"{where}: 'content' must be a list, got {type(content).__name__}")
    for index, part in enumerate(content):
        if not isinstance(part, Mapping):
            raise ProtocolError(f"{where}: content part {index} is not an object")
    return list(content)


def _user_part(part: Mapping[str, Any], where: str) -> UserContent:
    kind = part.get("type")
    if kind == "input_text":
        return InputText(text=_get_str(part, "text", where, default=""))
    if kind == "input_audio":
        return InputAudio(
            audio=_get_opt_str(part, "audio", where),
            transcript=_get_opt_str(part, "transcript", where),
        )
    if kind == "input_image":
        return InputImage(
            image_url=_get_str(part, "image_url", where),
            detail=_get_opt_str(part, "detail", where),
        )
    raise ProtocolError(f"{where}: content part type {kind!r} cannot be represented")


def _assistant_part(part: Mapping[str, Any], where: str) -> AssistantContent:
    kind = part.get("type")
    # GA items say output_text/output_audio; beta items and content-part events say text/audio.
    if kind in ("output_text", "text"):
        return OutputText(text=_get_str(part, "text", where, default=""))
    if kind in ("output_audio", "audio"):
        return OutputAudio(
            audio=_get_opt_str(part, "audio", where),
            transcript=_get_opt_str(part, "transcript", where),
        )
    raise ProtocolError(f"{where}: content part type {kind!r} cannot be represented")


def _message_from_wire(
    data: Mapping[str, Any],
    item_id: str,
    previous: str | None,
    default_status: ItemStatus | None,
) -> MessageItem:
    role = data.get("role")
    where = f"{role} message {item_id!r}"
    parts = _parts(data, where)
    if role == "system":
        texts: list[InputText] = []
        for index, part in enumerate(parts):
            parsed = _user_part(part, f"{where} part {index}")
            if not isinstance(parsed, InputText):
                raise ProtocolError(f"{where}: part {index} of a system message is not input_text")
            texts.append(parsed)
        return SystemMessageItem(item_id=item_id, previous_item_id=previous, content=texts)
    status = _status(data, where, default_status)
    if role == "user":
        return UserMessageItem(
            item_id=item_id,
            previous_item_id=previous,
            status=status,
            content=[_user_part(p, f"{where} part {i}") for i, p in enumerate(parts)],
        )
    if role == "assistant":
        return AssistantMessageItem(
            item_id=item_id,
            previous_item_id=previous,
            status=status,
            content=[_assistant_part(p, f"{where} part {i}") for i, p in enumerate(parts)],
        )
    raise ProtocolError(f"message item {item_id!r} has unknown role {role!r}")


def _approval_arguments(data: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    raw = data.get("arguments")
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Mapping):
        return raw
    if not isinstance(raw, str):
        raise ProtocolError(f"{where}: 'arguments' must be a JSON string or an object")
    try:
        decoded = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError(f"{where}: 'arguments' is not valid JSON ({exc})") from exc
    if not isinstance(decoded, Mapping):
        raise ProtocolError(f"{where}: 'arguments' must decode to a JSON object")
    return decoded


def _item_from_wire(
    data: Mapping[str, Any], item_id: str, default_status: ItemStatus | None
) -> RealtimeItem:
    kind = data.get("type")
    where = f"{kind} item {item_id!r}"
    previous = _get_opt_str(data, "previous_item_id", where)
    if kind == "message":
        return _message_from_wire(data, item_id, previous, default_status)
    if kind == "function_call":
        return FunctionCallItem(
            item_id=item_id,
            previous_item_id=previous,
            status=_status(data, where, default_status),
            name=_get_str(data, "name", where),
            call_id=_get_str(data, "call_id", where),
            # In-progress calls may not carry arguments yet.
            arguments=_get_str(data, "arguments", where, default=""),
            output=_get_opt_str(data, "output", where),
        )
    if kind == "function_call_output":
        return FunctionCallOutputItem(
            item_id=item_id,
            previous_item_id=previous,
            call_id=_get_str(data, "call_id", where),
            output=_get_str(data, "output", where, default=""),
        )
    if kind in ("mcp_call", "mcp_tool_call"):
        return McpCallItem(
            item_id=item_id,
            previous_item_id=previous,
            type=kind,
            status=_status(data, where, default_status),
            name=_get_str(data, "name", where),
            arguments=_get_str(data, "arguments", where, default=""),
            output=_get_opt_str(data, "output", where),
        )
    if kind == "mcp_approval_request":
        return McpApprovalRequestItem(
            item_id=item_id,
            previous_item_id=previous,
            server_label=_get_str(data, "server_label", where, default=""),
            name=_get_str(data, "name", where),
            arguments=_approval_arguments(data, where),
        )
    raise ProtocolError(f"item {item_id!r} has a type voicewire cannot represent: {kind!r}")


def item_from_wire(
    data: Mapping[str, Any], *, default_status: ItemStatus | None = None
) -> RealtimeItem:
    """Parse a server item (GA shape; beta ``text``/``audio`` assistant parts accepted).

    Args:
        data: The ``item`` object of a server event. ``previous_item_id`` is read from it when
            present; server events carry it beside the item, so merge it in to keep it.
        default_status: The status to use when the item has none (transports pass
            ``"in_progress"`` for ``added`` events and ``"completed"`` for ``done`` ones).
            Ignored for kinds without a status.

    Returns:
        The item. Assistant ``audio``/``output_audio`` parts become :class:`OutputAudio`,
        ``text``/``output_text`` parts :class:`OutputText`; unknown keys are ignored.

    Raises:
        ProtocolError: The item cannot be represented: not an object, no ``id``, an unknown item
            type, role, content part type or status, or a field of the wrong type.
    """
    if not isinstance(data, Mapping):
        raise ProtocolError(f"an item must be a JSON object, got {type(data).__name__}")
    item_id = data.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise ProtocolError(f"{data.get('type')!r} item has no string 'id'")
    try:
        return _item_from_wire(data, item_id, default_status)
    except ConfigError as exc:
        # Construction-time validation failing here means the peer sent a bad value.
        raise ProtocolError(f"item {item_id!r}: {exc}") from exc


# --- items -> wire ---------------------------------------------------------------------------


def _part_to_wire(part: UserContent | AssistantContent) -> dict[str, Any]:
    if isinstance(part, InputText | OutputText):
        return {"type": part.type, "text": part.text}
    if isinstance(part, InputImage):
        image: dict[str, Any] = {"type": part.type, "image_url": part.image_url}
        if part.detail is not None:
            image["detail"] = part.detail
        return image
    audio: dict[str, Any] = {"type": part.type}
    if part.audio is not None:
        audio["audio"] = part.audio
    if part.transcript is not None:
        audio["transcript"] = part.transcript
    return audio


def _with_id(wire: dict[str, Any], item_id: str) -> dict[str, Any]:
    if item_id:
        wire["id"] = item_id
    return wire


def item_to_wire(item: RealtimeItem) -> dict[str, Any]:
    """Build the client wire shape of an item: the ``item`` of ``conversation.item.create``.

    ``id`` is included when ``item_id`` is not empty; ``status`` only when set and the item is
    not a system message. ``previous_item_id`` is not part of the item on the wire (it goes on
    the event), so it is left out; so are ``FunctionCallItem.output`` and
    ``McpApprovalRequestItem.approved``, which the wire item has no room for.

    Args:
        item: Any :data:`RealtimeItem`.

    Returns:
        A new JSON-ready dict.
    """
    wire: dict[str, Any]
    if isinstance(item, SystemMessageItem | UserMessageItem | AssistantMessageItem):
        wire = {
            "type": "message",
            "role": item.role,
            "content": [_part_to_wire(part) for part in item.content],
        }
        _with_id(wire, item.item_id)
        if not isinstance(item, SystemMessageItem) and item.status is not None:
            wire["status"] = item.status
        return wire
    if isinstance(item, FunctionCallItem):
        wire = _with_id({"type": "function_call"}, item.item_id)
        if item.status is not None:
            wire["status"] = item.status
        wire.update(name=item.name, call_id=item.call_id, arguments=item.arguments)
        return wire
    if isinstance(item, FunctionCallOutputItem):
        wire = {"type": "function_call_output", "call_id": item.call_id, "output": item.output}
        return _with_id(wire, item.item_id)
    if isinstance(item, McpCallItem):
        wire = _with_id({"type": item.type}, item.item_id)
        if item.status is not None:
            wire["status"] = item.status
        wire.update(name=item.name, arguments=item.arguments)
        if item.output is not None:
            wire["output"] = item.output
        return wire
    if isinstance(item, McpApprovalRequestItem):
        wire = _with_id({"type": "mcp_approval_request"}, item.item_id)
        wire.update(
            server_label=item.server_label,
            name=item.name,
            arguments=json.dumps(dict(item.arguments)),
        )
        return wire
    raise TypeError(f"not a RealtimeItem: {type(item).__name__}")
