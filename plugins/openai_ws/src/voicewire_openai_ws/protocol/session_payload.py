"""``SessionConfig`` -> the GA ``session`` object of ``session.update``.

The payload always carries the whole audio configuration, filled from :data:`DEFAULTS` where the
config leaves a field unset (``None``). ``DISABLED`` becomes JSON ``null`` and is never replaced by
a default: "off" and "not set" are different requests. Tracing is never part of this payload; it
is applied once, after ``session.created`` (see :mod:`~voicewire_openai_ws.protocol.tracing`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from voicewire.audio.formats import PCM16_24K, AudioFormat
from voicewire.config import (
    DISABLED,
    Disabled,
    FunctionTool,
    NoiseReduction,
    SessionConfig,
    Tool,
    Transcription,
    TurnDetection,
)
from voicewire.errors import ConfigError

__all__ = [
    "DEFAULTS",
    "DEFAULT_TRANSCRIPTION_MODEL",
    "FUNCTION_TOOL_KEYS",
    "MCP_TOOL_KEYS",
    "build_session_payload",
    "tool_to_wire",
    "turn_detection_to_wire",
]

_T = TypeVar("_T")

DEFAULT_TRANSCRIPTION_MODEL: Final = "gpt-4o-mini-transcribe"

DEFAULTS: Final = SessionConfig(
    output_modalities=("audio",),
    input_audio_format=PCM16_24K,
    output_audio_format=PCM16_24K,
    transcription=Transcription(model=DEFAULT_TRANSCRIPTION_MODEL),
    turn_detection=TurnDetection(type="semantic_vad"),
    noise_reduction=DISABLED,
    speed=1.0,
)
"""What an unset field becomes: PCM 24 kHz both ways, ``gpt-4o-mini-transcribe`` transcription,
``semantic_vad`` turn detection, no noise reduction, speed 1, audio output."""

FUNCTION_TOOL_KEYS: Final = ("type", "name", "description", "parameters")
"""The keys a function tool keeps on the wire; anything else (handlers, flags) is dropped."""

MCP_TOOL_KEYS: Final = (
    "type",
    "server_label",
    "server_url",
    "server_description",
    "connector_id",
    "authorization",
    "headers",
    "allowed_tools",
    "require_approval",
    "allowed_callers",
    "defer_loading",
    "tunnel_id",
)
"""The keys a hosted MCP tool keeps on the wire (the fields of the GA ``Mcp`` tool)."""


def turn_detection_to_wire(value: TurnDetection) -> dict[str, Any]:
    """The GA turn-detection object: set knobs in snake_case, ``extras`` passed through.

    ``extras`` go in first, so a knob voicewire models wins over the same key in ``extras``; a key
    only in ``extras`` (a newer knob, or an explicit ``None``) reaches the wire as given. Falsy
    values (``False``, ``0``) are sent: only ``None`` means "not set".
    """
    wire: dict[str, Any] = dict(value.extras)
    wire["type"] = value.type
    knobs = {
        "threshold": value.threshold,
        "prefix_padding_ms": value.prefix_padding_ms,
        "silence_duration_ms": value.silence_duration_ms,
        "idle_timeout_ms": value.idle_timeout_ms,
        "create_response": value.create_response,
        "interrupt_response": value.interrupt_response,
        "eagerness": value.eagerness,
    }
    wire.update({key: knob for key, knob in knobs.items() if knob is not None})
    return wire


def _transcription_to_wire(value: Transcription) -> dict[str, Any]:
    # Extras first, modelled fields over them: same precedence as turn detection.
    wire: dict[str, Any] = dict(value.extras)
    fields = {"model": value.model, "language": value.language, "prompt": value.prompt}
    wire.update({key: field for key, field in fields.items() if field is not None})
    return wire


def _noise_reduction_to_wire(value: NoiseReduction) -> dict[str, Any]:
    return {"type": value.type}


def _format_to_wire(value: AudioFormat) -> dict[str, Any]:
    return value.wire_dict()


def tool_to_wire(tool: Tool) -> dict[str, Any]:
    """One tool in GA shape.

    A :class:`~voicewire.config.FunctionTool` becomes ``{type, name, description, parameters}``. A
    mapping of type ``function`` keeps :data:`FUNCTION_TOOL_KEYS`, one of type ``mcp`` keeps
    :data:`MCP_TOOL_KEYS` (keys it does not hold stay absent; an explicit ``None`` is kept). A
    mapping of any other type passes through unchanged, so that a tool type newer than this code
    still reaches the server, which validates it.

    Raises:
        ConfigError: The tool is neither a ``FunctionTool`` nor a mapping with a string ``type``.
    """
    if isinstance(tool, FunctionTool):
        return {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": dict(tool.parameters),
        }
    if not isinstance(tool, Mapping) or not isinstance(tool.get("type"), str):
        raise ConfigError("tools", f"cannot send tool {tool!r}: needs a string 'type'")
    if tool["type"] == "function":
        return {key: tool[key] for key in FUNCTION_TOOL_KEYS if key in tool}
    if tool["type"] == "mcp":
        return {key: tool[key] for key in MCP_TOOL_KEYS if key in tool}
    return dict(tool)


def _switchable(
    value: _T | Disabled | None,
    default: _T | Disabled | None,
    to_wire: Callable[[_T], dict[str, Any]],
) -> dict[str, Any] | None:
    # None: take the default; DISABLED: explicit JSON null; otherwise convert.
    chosen = default if value is None else value
    if chosen is None or isinstance(chosen, Disabled):
        return None
    return to_wire(chosen)


def build_session_payload(
    config: SessionConfig | None, *, model: str | None = None
) -> dict[str, Any]:
    """Build the GA ``session`` object for ``session.update``.

    Args:
        config: The (merged) session configuration; ``None`` means all defaults.
        model: The connection's model, used when ``config.model`` is unset. The model is left out
            when both are unset.

    Returns:
        ``{"type": "realtime", ...}`` with ``model``, ``instructions`` (if set, ``""`` included),
        ``output_modalities``, the full ``audio`` block, ``tools`` (if set; ``()`` sends ``[]``,
        which clears them), ``tool_choice`` (if set), then ``provider_extras`` spread last at the
        top level, so they can override any key above. Never ``tracing``.

    Raises:
        voicewire.errors.AudioFormatError: A format OpenAI cannot carry (e.g. PCM at 16 kHz).
        ConfigError: A tool cannot be sent.
    """
    cfg = config if config is not None else SessionConfig()
    session: dict[str, Any] = {"type": "realtime"}
    chosen_model = cfg.model if cfg.model is not None else model
    if chosen_model is not None:
        session["model"] = chosen_model
    if cfg.instructions is not None:
        session["instructions"] = cfg.instructions
    modalities = cfg.output_modalities or DEFAULTS.output_modalities or ("audio",)
    session["output_modalities"] = list(modalities)

    input_format = cfg.input_audio_format or DEFAULTS.input_audio_format or PCM16_24K
    output_format = cfg.output_audio_format or DEFAULTS.output_audio_format or PCM16_24K
    audio_input: dict[str, Any] = {
        "format": _format_to_wire(input_format),
        "noise_reduction": _switchable(
            cfg.noise_reduction, DEFAULTS.noise_reduction, _noise_reduction_to_wire
        ),
        "transcription": _switchable(
            cfg.transcription, DEFAULTS.transcription, _transcription_to_wire
        ),
        "turn_detection": _switchable(
            cfg.turn_detection, DEFAULTS.turn_detection, turn_detection_to_wire
        ),
    }
    audio_output: dict[str, Any] = {"format": _format_to_wire(output_format)}
    if cfg.voice is not None:
        audio_output["voice"] = cfg.voice
    audio_output["speed"] = cfg.speed if cfg.speed is not None else DEFAULTS.speed
    session["audio"] = {"input": audio_input, "output": audio_output}

    if cfg.tools is not None:
        session["tools"] = [tool_to_wire(tool) for tool in cfg.tools]
    if cfg.tool_choice is not None:
        choice = cfg.tool_choice
        session["tool_choice"] = choice if isinstance(choice, str) else dict(choice)
    session.update(cfg.provider_extras)
    return session
