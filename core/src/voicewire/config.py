"""Session configuration: a partial, mergeable description of how a model session should behave.

Every field of :class:`SessionConfig` defaults to ``None``, which means *not set*: the transport
keeps its own default, or what the session already has. Some settings can also be switched
*off*, which is different from leaving them alone; that is :data:`DISABLED`, sent as JSON
``null`` on the wire.

Configs are validated when they are built: a bad value raises
:class:`~voicewire.errors.ConfigError` (a ``ValueError``) whose ``field`` names the offending field.
They are provider-neutral: a transport translates them into its own wire shape, and may reject
what its provider cannot express (e.g. an audio format it does not speak).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal, get_args

import attrs

from voicewire.audio.formats import AudioFormat
from voicewire.errors import ConfigError

__all__ = [
    "DISABLED",
    "Disabled",
    "FunctionTool",
    "Modality",
    "NoiseReduction",
    "SessionConfig",
    "Tool",
    "TracingConfig",
    "Transcription",
    "TurnDetection",
]


class Disabled(enum.Enum):
    """The type of :data:`DISABLED`: an explicit "off", distinct from ``None`` ("not set")."""

    DISABLED = "disabled"

    def __repr__(self) -> str:
        return "DISABLED"


DISABLED: Final = Disabled.DISABLED
"""Switch a setting off (turn detection, transcription, noise reduction, tracing).

``None`` leaves the setting as it is; ``DISABLED`` turns it off, and is sent as JSON ``null``.
"""

Modality = Literal["audio", "text"]
"""An output modality."""

_MODALITIES: tuple[str, ...] = get_args(Modality)
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


# --- shared checks ---------------------------------------------------------------------------


def _type_name(value: object) -> str:
    return type(value).__name__


def _check_opt_str(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(attribute.name, f"expected a string or None, got {_type_name(value)}")


def _check_opt_nonempty_str(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_opt_str(_, attribute, value)
    if value == "":
        raise ConfigError(attribute.name, "must not be empty (use None to leave it unset)")


def _check_opt_bool(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise ConfigError(attribute.name, f"expected a bool or None, got {_type_name(value)}")


def _check_opt_ms(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            attribute.name, f"expected an int (milliseconds), got {_type_name(value)}"
        )
    if value < 0:
        raise ConfigError(attribute.name, f"must be >= 0, got {value}")


def _check_choice(choices: tuple[str, ...], *, optional: bool) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if value not in choices:
            raise ConfigError(attribute.name, f"{value!r} is not one of {list(choices)}")

    return check


def _mapping(field: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def convert(value: Mapping[str, Any]) -> dict[str, Any]:
        # A private copy: mutating the caller's mapping afterwards must not change a frozen config.
        if not isinstance(value, Mapping):
            raise ConfigError(field, f"expected a mapping, got {_type_name(value)}")
        return dict(value)

    return convert


def _extras(value: Mapping[str, Any]) -> dict[str, Any]:
    return _mapping("extras")(value)


def _provider_extras(value: Mapping[str, Any]) -> dict[str, Any]:
    return _mapping("provider_extras")(value)


def _opt_metadata(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else _mapping("metadata")(value)


def _check_string_keys(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise ConfigError(attribute.name, f"keys must be strings, got {key!r}")


def _number(field: str, value: object, *, low: float, high: float, low_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, f"expected a number, got {_type_name(value)}")
    number = float(value)
    below = number <= low if low_open else number < low
    if not math.isfinite(number) or below or number > high:
        bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ConfigError(field, f"must be within {bounds}, got {value!r}")
    return number


# --- parts of a session ----------------------------------------------------------------------


def _threshold(value: float | None) -> float | None:
    if value is None:
        return None
    return _number("threshold", value, low=0.0, high=1.0, low_open=False)


@attrs.frozen(kw_only=True)
class TurnDetection:
    """How the model decides that the user finished (or started) speaking.

    ``server_vad`` detects turns from silence and takes ``threshold``, ``prefix_padding_ms``,
    ``silence_duration_ms`` and ``idle_timeout_ms``; ``semantic_vad`` judges from what was said
    and takes ``eagerness``. Setting a knob the chosen ``type`` does not have is a
    :class:`~voicewire.errors.ConfigError`. ``None`` leaves a knob at the provider's default.

    Attributes:
        type: ``"server_vad"`` or ``"semantic_vad"`` (the default).
        threshold: Voice-activity sensitivity in [0, 1]; higher needs louder speech.
        prefix_padding_ms: Audio kept from before speech started, in ms (>= 0).
        silence_duration_ms: Silence that ends a turn, in ms (>= 0).
        idle_timeout_ms: Silence after which the server prompts the model to respond, in ms.
        create_response: Whether the end of a user turn starts a response automatically.
        interrupt_response: Whether the user starting to speak interrupts the model.
        eagerness: How quickly ``semantic_vad`` ends a turn: low, medium, high or auto.
        extras: Further provider keys, passed through into the turn-detection object.
    """

    type: Literal["server_vad", "semantic_vad"] = attrs.field(
        default="semantic_vad",
        validator=_check_choice(("server_vad", "semantic_vad"), optional=False),
    )
    threshold: float | None = attrs.field(default=None, converter=_threshold)
    prefix_padding_ms: int | None = attrs.field(default=None, validator=_check_opt_ms)
    silence_duration_ms: int | None = attrs.field(default=None, validator=_check_opt_ms)
    idle_timeout_ms: int | None = attrs.field(default=None, validator=_check_opt_ms)
    create_response: bool | None = attrs.field(default=None, validator=_check_opt_bool)
    interrupt_response: bool | None = attrs.field(default=None, validator=_check_opt_bool)
    eagerness: Literal["low", "medium", "high", "auto"] | None = attrs.field(
        default=None, validator=_check_choice(("low", "medium", "high", "auto"), optional=True)
    )
    extras: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_extras, validator=_check_string_keys
    )

    def __attrs_post_init__(self) -> None:
        # The provider rejects knobs of the other VAD type; saying so here names the real mistake
        # (usually a forgotten type="server_vad", since semantic_vad is the default).
        if self.type == "semantic_vad":
            for name in (
                "threshold",
                "prefix_padding_ms",
                "silence_duration_ms",
                "idle_timeout_ms",
            ):
                if getattr(self, name) is not None:
                    raise ConfigError(
                        name, "applies to server_vad only; set type='server_vad' to use it"
                    )
        elif self.eagerness is not None:
            raise ConfigError("eagerness", "applies to semantic_vad only")


@attrs.frozen(kw_only=True)
class Transcription:
    """Transcription of the user's input audio (transcripts arrive on user message items).

    Attributes:
        model: The transcription model, e.g. ``"gpt-4o-mini-transcribe"``.
        language: The input language as an ISO-639-1 code (``"en"``), to improve accuracy.
        prompt: Text that guides the transcription (vocabulary, style).
        extras: Further provider keys, passed through into the transcription object.
    """

    model: str | None = attrs.field(default=None, validator=_check_opt_nonempty_str)
    language: str | None = attrs.field(default=None, validator=_check_opt_nonempty_str)
    prompt: str | None = attrs.field(default=None, validator=_check_opt_str)
    extras: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_extras, validator=_check_string_keys
    )


@attrs.frozen(kw_only=True)
class NoiseReduction:
    """Input noise reduction, tuned for the kind of microphone.

    Attributes:
        type: ``"near_field"`` (headset, phone held to the ear) or ``"far_field"`` (laptop,
            conference-room microphone).
    """

    type: Literal["near_field", "far_field"] = attrs.field(
        validator=_check_choice(("near_field", "far_field"), optional=False)
    )


def _empty_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


def _check_tool_name(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(attribute.name, f"expected a string, got {_type_name(value)}")
    if not _TOOL_NAME.fullmatch(value):
        raise ConfigError(
            attribute.name,
            f"{value!r} must be 1 to 64 characters of letters, digits, '_' or '-'",
        )


def _check_str(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(attribute.name, f"expected a string, got {_type_name(value)}")


def _schema(value: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError("parameters", f"expected a JSON Schema mapping, got {_type_name(value)}")
    return dict(value)


@attrs.frozen(kw_only=True)
class FunctionTool:
    """A function the model may call.

    Attributes:
        name: The function's name: 1 to 64 letters, digits, ``_`` or ``-``.
        description: What the function does and when to call it; the model reads this.
        parameters: A JSON Schema for the arguments; defaults to an object without properties.
    """

    name: str = attrs.field(validator=_check_tool_name)
    description: str = attrs.field(default="", validator=_check_str)
    parameters: Mapping[str, Any] = attrs.field(factory=_empty_schema, converter=_schema)


@attrs.frozen(kw_only=True)
class TracingConfig:
    """Provider-side tracing of the session (for OpenAI, traces in the platform dashboard).

    Attributes:
        workflow_name: The workflow the traces are filed under.
        group_id: Groups the traces of related sessions.
        metadata: Arbitrary metadata attached to the traces.
    """

    workflow_name: str | None = attrs.field(default=None, validator=_check_opt_str)
    group_id: str | None = attrs.field(default=None, validator=_check_opt_str)
    metadata: Mapping[str, Any] | None = attrs.field(
        default=None, converter=_opt_metadata, validator=_check_string_keys
    )


# --- session config converters ---------------------------------------------------------------


def _audio_format(field: str, value: object) -> AudioFormat | None:
    if value is None or isinstance(value, AudioFormat):
        return value
    if isinstance(value, str | Mapping):
        try:
            return AudioFormat.from_wire(value)
        except ValueError as exc:
            raise ConfigError(field, str(exc)) from exc
    raise ConfigError(
        field, f"expected an AudioFormat, a format name or a format object, got {_type_name(value)}"
    )


def _input_format(value: AudioFormat | str | Mapping[str, Any] | None) -> AudioFormat | None:
    return _audio_format("input_audio_format", value)


def _output_format(value: AudioFormat | str | Mapping[str, Any] | None) -> AudioFormat | None:
    return _audio_format("output_audio_format", value)


def _modalities(value: Iterable[Modality] | Modality | None) -> tuple[Modality, ...] | None:
    if value is None:
        return None
    # A bare string is one modality, not an iterable of letters.
    if not isinstance(value, Iterable):
        raise ConfigError("output_modalities", f"expected a sequence, got {_type_name(value)}")
    items: list[object] = [value] if isinstance(value, str) else list(value)
    if not items:
        raise ConfigError("output_modalities", "must name at least one modality (or be None)")
    result: list[Modality] = []
    for item in items:
        if item not in _MODALITIES:
            raise ConfigError("output_modalities", f"unknown modality {item!r}; use 'audio'/'text'")
        if item in result:
            raise ConfigError("output_modalities", f"{item!r} is listed twice")
        modality: Modality = "audio" if item == "audio" else "text"
        result.append(modality)
    return tuple(result)


def _speed(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError("speed", f"expected a number, got {_type_name(value)}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError("speed", f"must be a finite number > 0, got {value!r}")
    return float(value)


Tool = FunctionTool | Mapping[str, Any]
"""A tool definition: a :class:`FunctionTool`, or a mapping in the provider's own shape."""


def _tools(value: Iterable[Tool] | None) -> tuple[Tool, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | Mapping | FunctionTool) or not isinstance(value, Iterable):
        raise ConfigError("tools", f"expected a sequence of tools, got {_type_name(value)}")
    result: list[Tool] = []
    seen: set[str] = set()
    for index, tool in enumerate(value):
        if isinstance(tool, FunctionTool):
            name: object = tool.name
            result.append(tool)
        elif isinstance(tool, Mapping):
            if not isinstance(tool.get("type"), str):
                raise ConfigError("tools", f"tool {index} is a mapping without a string 'type'")
            name = tool.get("name")
            result.append(dict(tool))
        else:
            raise ConfigError(
                "tools", f"tool {index} is a {_type_name(tool)}; use FunctionTool or a mapping"
            )
        # Hosted tools (MCP) are identified by server_label and may have no name.
        if isinstance(name, str):
            if name in seen:
                raise ConfigError("tools", f"duplicate tool name {name!r}")
            seen.add(name)
    return tuple(result)


def _tool_choice(value: str | Mapping[str, Any] | None) -> str | Mapping[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise ConfigError("tool_choice", "must not be empty (use None to leave it unset)")
        return value
    if isinstance(value, Mapping):
        return dict(value)
    raise ConfigError("tool_choice", f"expected a string or a mapping, got {_type_name(value)}")


def _check_kind(*kinds: type, extra: tuple[object, ...] = (), label: str) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None or value is DISABLED or value in extra or isinstance(value, kinds):
            return
        raise ConfigError(attribute.name, f"expected {label}, DISABLED or None, got {value!r}")

    return check


# --- the session config ----------------------------------------------------------------------


@attrs.frozen(kw_only=True, repr=False)
class SessionConfig:
    """A partial session configuration. Every field defaults to ``None``: not set.

    A transport sends only what is set, over its own defaults; :meth:`merge` layers one partial
    config over another. ``DISABLED`` (where allowed) switches a setting off.

    Attributes:
        instructions: The system instructions of the model (``""`` clears them).
        model: The model name. Most providers fix it at connect time.
        voice: The output voice, e.g. ``"marin"``.
        output_modalities: What the model answers with: ``("audio",)`` or ``("text",)``; a
            bare string is accepted for one modality.
        input_audio_format: The format of the audio the application sends. Accepts an
            :class:`~voicewire.audio.formats.AudioFormat`, a name (``"audio/pcmu"``, ``"pcm16"``)
            or a GA format object (``{"type": "audio/pcm", "rate": 24000}``).
        output_audio_format: The format of the audio the model sends back; same inputs.
        turn_detection: Automatic turn detection, or ``DISABLED`` for manual turns
            (commit the input audio and ask for responses yourself).
        transcription: Transcription of the input audio, or ``DISABLED``.
        noise_reduction: Input noise reduction, or ``DISABLED``.
        speed: Speaking speed of the output voice (1.0 is normal; > 0; providers narrow the
            range, OpenAI to 0.25..1.5).
        tools: The tools the model may call: :class:`FunctionTool` values, or mappings in the
            provider's shape (e.g. an OpenAI ``{"type": "mcp", ...}`` tool). ``()`` clears them.
        tool_choice: ``"auto"``, ``"none"``, ``"required"``, or a mapping naming a tool.
        tracing: ``"auto"``, a :class:`TracingConfig`, or ``DISABLED``.
        provider_extras: Further top-level keys of the provider's session object, passed
            through as they are (and winning over voicewire's own keys).

    Raises:
        ConfigError: A field is invalid; ``field`` names it.
    """

    instructions: str | None = attrs.field(default=None, validator=_check_opt_str)
    model: str | None = attrs.field(default=None, validator=_check_opt_nonempty_str)
    voice: str | None = attrs.field(default=None, validator=_check_opt_nonempty_str)
    output_modalities: tuple[Modality, ...] | None = attrs.field(
        default=None, converter=_modalities
    )
    input_audio_format: AudioFormat | None = attrs.field(default=None, converter=_input_format)
    output_audio_format: AudioFormat | None = attrs.field(default=None, converter=_output_format)
    turn_detection: TurnDetection | Disabled | None = attrs.field(
        default=None, validator=_check_kind(TurnDetection, label="a TurnDetection")
    )
    transcription: Transcription | Disabled | None = attrs.field(
        default=None, validator=_check_kind(Transcription, label="a Transcription")
    )
    noise_reduction: NoiseReduction | Disabled | None = attrs.field(
        default=None, validator=_check_kind(NoiseReduction, label="a NoiseReduction")
    )
    speed: float | None = attrs.field(default=None, converter=_speed)
    tools: tuple[Tool, ...] | None = attrs.field(default=None, converter=_tools)
    tool_choice: str | Mapping[str, Any] | None = attrs.field(default=None, converter=_tool_choice)
    tracing: Literal["auto"] | TracingConfig | Disabled | None = attrs.field(
        default=None,
        validator=_check_kind(TracingConfig, extra=("auto",), label="'auto', a TracingConfig"),
    )
    provider_extras: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_provider_extras, validator=_check_string_keys
    )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of every field, in declaration order."""
        return tuple(a.name for a in attrs.fields(cls))

    def is_set(self, name: str) -> bool:
        """Whether a field is set: not ``None`` (``DISABLED`` counts as set).

        ``provider_extras`` counts as set when it holds at least one key.

        Raises:
            ConfigError: ``name`` is not a field of ``SessionConfig``.
        """
        if name not in _FIELD_NAMES:
            raise ConfigError(name, "not a SessionConfig field")
        value = getattr(self, name)
        if name == "provider_extras":
            return bool(value)
        return value is not None

    def fields_set(self) -> tuple[str, ...]:
        """The names of the fields that are set (see :meth:`is_set`), in declaration order."""
        return tuple(name for name in _FIELD_NAMES if self.is_set(name))

    def merge(self, other: SessionConfig) -> SessionConfig:
        """Layer ``other`` over this config and return the result.

        Every field set in ``other`` (``DISABLED`` included) replaces this config's value as a
        whole: a ``TurnDetection`` in ``other`` is not combined knob by knob with this one's.
        ``provider_extras`` is merged key by key, ``other``'s keys winning.

        Args:
            other: The config to layer on top.

        Returns:
            A new config; neither input changes.
        """
        if not isinstance(other, SessionConfig):
            raise TypeError(f"can only merge a SessionConfig, got {_type_name(other)}")
        changes: dict[str, Any] = {
            name: getattr(other, name) for name in other.fields_set() if name != "provider_extras"
        }
        changes["provider_extras"] = {**self.provider_extras, **other.provider_extras}
        return attrs.evolve(self, **changes)

    def __repr__(self) -> str:
        # Only the set fields: a partial config is mostly None and the rest is what matters.
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.fields_set())
        return f"SessionConfig({shown})"


_FIELD_NAMES: Final = SessionConfig.field_names()
