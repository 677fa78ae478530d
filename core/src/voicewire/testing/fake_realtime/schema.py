"""Validation of client events against the GA Realtime schema, with GA-shaped error details.

When the ``openai`` package is importable its pydantic client-event models are the schema, made
strict by also rejecting keys the models do not declare (they accept extra keys by default).
Without it, a built-in check covers each event's ``type``, its required and allowed top-level
fields, the session's keys and audio formats, and the shape of conversation items.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

__all__ = [
    "CLIENT_EVENT_TYPES",
    "ClientEventError",
    "Validator",
    "make_validator",
    "missing_parameter",
]

# What the GA service accepts over WebSocket. output_audio_buffer.clear exists in the SDK but is
# WebRTC/SIP only; the WebSocket endpoint rejects it, so the fake does too.
CLIENT_EVENT_TYPES: tuple[str, ...] = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
)


@attrs.frozen
class ClientEventError:
    """Why a client event was rejected, as the ``error`` object of a GA ``error`` event wants it."""

    code: str | None
    message: str
    param: str | None = None


Validator = Callable[[Mapping[str, Any]], "ClientEventError | None"]
"""Checks one parsed client event; returns ``None`` when it is valid."""


def _quote_list(values: Sequence[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 1:
        return "".join(quoted)
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def invalid_value(value: object, supported: Sequence[str], param: str) -> ClientEventError:
    """The GA ``invalid_value`` error for an enum-like field."""
    return ClientEventError(
        "invalid_value",
        f"Invalid value: '{value}'. Supported values are: {_quote_list(supported)}.",
        param,
    )


def missing_parameter(param: str) -> ClientEventError:
    """The GA ``missing_required_parameter`` error."""
    return ClientEventError(
        "missing_required_parameter", f"Missing required parameter: '{param}'.", param
    )


def unknown_parameter(param: str) -> ClientEventError:
    """The GA ``unknown_parameter`` error."""
    return ClientEventError("unknown_parameter", f"Unknown parameter: '{param}'.", param)


def invalid_type(param: str, expected: str, value: object) -> ClientEventError:
    """The GA ``invalid_type`` error."""
    return ClientEventError(
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}, but got {_json_kind(value)} instead.",
        param,
    )


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


def _check_envelope(event: Mapping[str, Any]) -> ClientEventError | None:
    kind = event.get("type")
    if kind is None:
        return missing_parameter("type")
    if not isinstance(kind, str):
        return invalid_type("type", "a string", kind)
    if kind not in CLIENT_EVENT_TYPES:
        return invalid_value(kind, CLIENT_EVENT_TYPES, "type")
    event_id = event.get("event_id")
    if event_id is not None and not isinstance(event_id, str):
        return invalid_type("event_id", "a string", event_id)
    return None


# ---------------------------------------------------------------------------------------------
# The openai-backed validator
# ---------------------------------------------------------------------------------------------

_FIELD = re.compile(r"[a-z_][a-z0-9_]*\Z")

Loc = tuple[int | str, ...]


def _is_member(segment: int | str) -> bool:
    # pydantic names union members by class name in error locations; JSON keys here are lowercase.
    return isinstance(segment, str) and not _FIELD.match(segment)


def _param(loc: Loc) -> str:
    parts: list[str] = []
    for segment in loc:
        if isinstance(segment, int):
            if parts:
                parts[-1] += f"[{segment}]"
            else:
                parts.append(f"[{segment}]")
        elif not _is_member(segment):
            parts.append(segment)
    return ".".join(parts)


def _expected_values(ctx: Mapping[str, Any] | None) -> list[str]:
    expected = str((ctx or {}).get("expected", ""))
    return re.findall(r"'([^']*)'", expected)


def _from_pydantic(errors: Sequence[Mapping[str, Any]]) -> ClientEventError:
    """Pick the error a person would blame among the errors of every union member tried."""
    locs = [tuple(e["loc"]) for e in errors]
    # A union member whose own discriminator ('type' or 'role') did not match was the wrong
    # member to try; its other complaints are noise.
    wrong: set[Loc] = set()
    for err, loc in zip(errors, locs, strict=True):
        is_literal = err["type"] == "literal_error"
        if is_literal and len(loc) >= 2 and _is_member(loc[-2]) and loc[-1] in ("type", "role"):
            wrong.add(loc[:-1])

    def inside_wrong(loc: Loc) -> bool:
        return any(len(w) < len(loc) and loc[: len(w)] == w for w in wrong)

    relevant = [(e, loc) for e, loc in zip(errors, locs, strict=True) if not inside_wrong(loc)]
    if relevant:
        err, loc = relevant[0]
        return _describe(err, loc)
    # Every member was wrong: the discriminator itself has a bad value. Report the deepest one,
    # listing what every member would have accepted there.
    candidates = [
        (e, loc)
        for e, loc in zip(errors, locs, strict=True)
        if loc[:-1] in wrong and not inside_wrong(loc[:-1])
    ]
    if not candidates:
        return _describe(errors[0], locs[0])
    depth = max(len(_param(loc).split(".")) for _, loc in candidates)
    deepest = [(e, loc) for e, loc in candidates if len(_param(loc).split(".")) == depth]
    param = _param(deepest[0][1])
    values: list[str] = []
    for e, loc in deepest:
        if _param(loc) == param:
            values += [v for v in _expected_values(e.get("ctx")) if v not in values]
    return invalid_value(deepest[0][0].get("input"), values, param)


def _describe(err: Mapping[str, Any], loc: Loc) -> ClientEventError:
    param = _param(loc)
    kind = str(err["type"])
    value = err.get("input")
    if kind == "missing":
        return missing_parameter(param)
    if kind in ("literal_error", "enum"):
        return invalid_value(value, _expected_values(err.get("ctx")), param)
    if kind.endswith(("_type", "_parsing")):
        expected = {
            "string_type": "a string",
            "int_type": "an integer",
            "int_parsing": "an integer",
            "int_from_float": "an integer",
            "float_type": "a decimal",
            "float_parsing": "a decimal",
            "bool_type": "a boolean",
            "bool_parsing": "a boolean",
            "list_type": "an array",
            "dict_type": "an object",
            "model_type": "an object",
            "model_attributes_type": "an object",
        }.get(kind, "a different type")
        return invalid_type(param, expected, value)
    if kind in ("greater_than_equal", "greater_than") and isinstance(value, int):
        limit = (err.get("ctx") or {}).get("ge", (err.get("ctx") or {}).get("gt"))
        return ClientEventError(
            "integer_below_min_value",
            f"Invalid '{param}': integer below minimum value. Expected a value >= {limit}, "
            f"but got {value} instead.",
            param,
        )
    return ClientEventError("invalid_value", f"Invalid '{param}': {err.get('msg', kind)}.", param)


def _unknown_keys(obj: object, path: str) -> list[str]:
    from pydantic import BaseModel

    found: list[str] = []
    if isinstance(obj, BaseModel):
        found += [f"{path}.{k}" if path else k for k in (obj.model_extra or {})]
        for name in type(obj).model_fields:
            found += _unknown_keys(getattr(obj, name), f"{path}.{name}" if path else name)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            found += _unknown_keys(item, f"{path}[{i}]")
    elif isinstance(obj, dict):
        # Free-form maps (metadata, JSON-schema parameters) may hold any key.
        pass
    return found


def _openai_validator() -> Validator | None:
    try:
        import pydantic
        from openai.types.realtime import RealtimeClientEvent
    except ImportError:
        return None
    union = typing.get_args(RealtimeClientEvent)[0]
    if typing.get_origin(RealtimeClientEvent) is not typing.Annotated:
        union = RealtimeClientEvent
    models: dict[str, Any] = {}
    for cls in typing.get_args(union):
        for literal in typing.get_args(cls.model_fields["type"].annotation):
            models[literal] = cls

    def validate(event: Mapping[str, Any]) -> ClientEventError | None:
        problem = _check_envelope(event)
        if problem is not None:
            return problem
        model_cls = models.get(event["type"])
        if model_cls is None:  # the installed SDK predates an event type the fake accepts
            return _builtin_validate(event)
        try:
            model = model_cls.model_validate(dict(event))
        except pydantic.ValidationError as exc:
            return _from_pydantic(exc.errors())
        unknown = _unknown_keys(model, "")
        if unknown:
            return unknown_parameter(unknown[0])
        return None

    return validate


# ---------------------------------------------------------------------------------------------
# The built-in validator (no openai package)
# ---------------------------------------------------------------------------------------------

_STR, _INT, _OBJ = "a string", "an integer", "an object"

# type -> {field: (required, expected kind)}
_FIELDS: dict[str, dict[str, tuple[bool, str]]] = {
    "session.update": {"session": (True, _OBJ)},
    "input_audio_buffer.append": {"audio": (True, _STR)},
    "input_audio_buffer.commit": {},
    "input_audio_buffer.clear": {},
    "conversation.item.create": {"item": (True, _OBJ), "previous_item_id": (False, _STR)},
    "conversation.item.retrieve": {"item_id": (True, _STR)},
    "conversation.item.truncate": {
        "item_id": (True, _STR),
        "content_index": (True, _INT),
        "audio_end_ms": (True, _INT),
    },
    "conversation.item.delete": {"item_id": (True, _STR)},
    "response.create": {"response": (False, _OBJ)},
    "response.cancel": {"response_id": (False, _STR)},
}

_SESSION_KEYS = frozenset(
    {
        "type", "model", "instructions", "output_modalities", "audio", "tools", "tool_choice",
        "tracing", "truncation", "max_output_tokens", "include", "prompt", "reasoning",
        "parallel_tool_calls",
    }
)  # fmt: skip
_AUDIO_INPUT_KEYS = frozenset({"format", "noise_reduction", "transcription", "turn_detection"})
_AUDIO_OUTPUT_KEYS = frozenset({"format", "voice", "speed"})
_FORMAT_TYPES = ("audio/pcm", "audio/pcmu", "audio/pcma")
_ITEM_TYPES = (
    "message", "function_call", "function_call_output", "mcp_approval_response",
    "mcp_list_tools", "mcp_call", "mcp_approval_request",
)  # fmt: skip
_CONTENT_TYPES: dict[str, tuple[str, ...]] = {
    "system": ("input_text",),
    "user": ("input_text", "input_audio", "input_image"),
    "assistant": ("output_text", "output_audio"),
}


def _kind_ok(value: object, kind: str) -> bool:
    if kind == _STR:
        return isinstance(value, str)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, Mapping)


def _check_format(fmt: object, param: str) -> ClientEventError | None:
    if not isinstance(fmt, Mapping):
        return invalid_type(param, _OBJ, fmt)
    kind = fmt.get("type")
    if kind not in _FORMAT_TYPES:
        return invalid_value(kind, _FORMAT_TYPES, f"{param}.type")
    rate = fmt.get("rate")
    if kind == "audio/pcm" and rate is not None and rate != 24000:
        return invalid_value(rate, ("24000",), f"{param}.rate")
    for key in fmt:
        if key not in ("type", "rate"):
            return unknown_parameter(f"{param}.{key}")
    return None


_RESPONSE_KEYS = frozenset(
    {
        "audio", "conversation", "input", "instructions", "max_output_tokens", "metadata",
        "output_modalities", "parallel_tool_calls", "prompt", "reasoning", "tool_choice", "tools",
    }
)  # fmt: skip
_MODALITIES = ("text", "audio")


def _check_common(obj: Mapping[str, Any], prefix: str) -> ClientEventError | None:
    instructions = obj.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        return invalid_type(f"{prefix}.instructions", _STR, instructions)
    modalities = obj.get("output_modalities")
    if modalities is not None:
        if not isinstance(modalities, list):
            return invalid_type(f"{prefix}.output_modalities", "an array", modalities)
        for i, value in enumerate(modalities):
            if value not in _MODALITIES:
                return invalid_value(value, _MODALITIES, f"{prefix}.output_modalities[{i}]")
    return None


def _check_response(response: Mapping[str, Any]) -> ClientEventError | None:
    for key in response:
        if key not in _RESPONSE_KEYS:
            return unknown_parameter(f"response.{key}")
    problem = _check_common(response, "response")
    if problem is not None:
        return problem
    audio = response.get("audio")
    if isinstance(audio, Mapping) and isinstance(audio.get("output"), Mapping):
        fmt = audio["output"].get("format")
        if fmt is not None:
            return _check_format(fmt, "response.audio.output.format")
    return None


def _check_session(session: Mapping[str, Any]) -> ClientEventError | None:
    if "type" not in session:
        return missing_parameter("session.type")
    if session["type"] not in ("realtime", "transcription"):
        return invalid_value(session["type"], ("realtime", "transcription"), "session.type")
    for key in session:
        if key not in _SESSION_KEYS:
            return unknown_parameter(f"session.{key}")
    problem = _check_common(session, "session")
    if problem is not None:
        return problem
    audio = session.get("audio")
    if audio is None:
        return None
    if not isinstance(audio, Mapping):
        return invalid_type("session.audio", _OBJ, audio)
    for key, allowed in (("input", _AUDIO_INPUT_KEYS), ("output", _AUDIO_OUTPUT_KEYS)):
        part = audio.get(key)
        if part is None:
            continue
        if not isinstance(part, Mapping):
            return invalid_type(f"session.audio.{key}", _OBJ, part)
        for sub in part:
            if sub not in allowed:
                return unknown_parameter(f"session.audio.{key}.{sub}")
        if "format" in part:
            problem = _check_format(part["format"], f"session.audio.{key}.format")
            if problem is not None:
                return problem
    for key in audio:
        if key not in ("input", "output"):
            return unknown_parameter(f"session.audio.{key}")
    return None


def _check_item(item: Mapping[str, Any]) -> ClientEventError | None:
    kind = item.get("type")
    if kind is None:
        return missing_parameter("item.type")
    if kind not in _ITEM_TYPES:
        return invalid_value(kind, _ITEM_TYPES, "item.type")
    if kind == "message":
        role = item.get("role")
        if role is None:
            return missing_parameter("item.role")
        if role not in _CONTENT_TYPES:
            return invalid_value(role, tuple(_CONTENT_TYPES), "item.role")
        content = item.get("content")
        if content is None:
            return missing_parameter("item.content")
        if not isinstance(content, list):
            return invalid_type("item.content", "an array", content)
        for i, part in enumerate(content):
            if not isinstance(part, Mapping):
                return invalid_type(f"item.content[{i}]", _OBJ, part)
            if part.get("type") not in _CONTENT_TYPES[role]:
                return invalid_value(
                    part.get("type"), _CONTENT_TYPES[role], f"item.content[{i}].type"
                )
    elif kind == "function_call":
        for key in ("name", "arguments"):
            if not isinstance(item.get(key), str):
                return missing_parameter(f"item.{key}")
    elif kind == "function_call_output":
        for key in ("call_id", "output"):
            if not isinstance(item.get(key), str):
                return missing_parameter(f"item.{key}")
    return None


def _builtin_validate(event: Mapping[str, Any]) -> ClientEventError | None:
    problem = _check_envelope(event)
    if problem is not None:
        return problem
    fields = _FIELDS[event["type"]]
    for key, (required, kind) in fields.items():
        if key not in event or event[key] is None:
            if required:
                return missing_parameter(key)
            continue
        if not _kind_ok(event[key], kind):
            return invalid_type(key, kind, event[key])
    for key in event:
        if key not in fields and key not in ("type", "event_id"):
            return unknown_parameter(key)
    if event["type"] == "session.update":
        return _check_session(event["session"])
    if event["type"] == "conversation.item.create":
        return _check_item(event["item"])
    if event["type"] == "response.create" and event.get("response") is not None:
        return _check_response(event["response"])
    return None


def make_validator(backend: Literal["auto", "openai", "builtin"] = "auto") -> Validator:
    """Return the client-event validator of the chosen backend.

    Args:
        backend: ``"openai"`` requires the ``openai`` package, ``"builtin"`` never uses it,
            ``"auto"`` uses it when importable.

    Raises:
        ImportError: ``backend="openai"`` and the package is missing.
    """
    if backend != "builtin":
        validator = _openai_validator()
        if validator is not None:
            return validator
        if backend == "openai":
            raise ImportError("the 'openai' package is needed for backend='openai'")
    return _builtin_validate
