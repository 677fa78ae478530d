"""SessionConfig -> GA session object: defaults, DISABLED, falsy values, extras, tools."""

from __future__ import annotations

from typing import Any

import pytest

from voicewire.audio.formats import MULAW_8K, AudioFormat
from voicewire.config import (
    DISABLED,
    FunctionTool,
    NoiseReduction,
    SessionConfig,
    TracingConfig,
    Transcription,
    TurnDetection,
)
from voicewire.errors import AudioFormatError, ConfigError
from voicewire_openai_ws.protocol.session_payload import (
    build_session_payload,
    tool_to_wire,
    turn_detection_to_wire,
)

PCM = {"type": "audio/pcm", "rate": 24000}


def test_defaults() -> None:
    assert build_session_payload(None, model="gpt-realtime") == {
        "type": "realtime",
        "model": "gpt-realtime",
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": PCM,
                "noise_reduction": None,
                "transcription": {"model": "gpt-4o-mini-transcribe"},
                "turn_detection": {"type": "semantic_vad"},
            },
            "output": {"format": PCM, "speed": 1.0},
        },
    }


def test_empty_config_equals_none() -> None:
    assert build_session_payload(SessionConfig()) == build_session_payload(None)


def test_model_precedence_and_absence() -> None:
    assert build_session_payload(SessionConfig(model="a"), model="b")["model"] == "a"
    assert build_session_payload(SessionConfig(), model="b")["model"] == "b"
    assert "model" not in build_session_payload(SessionConfig())


def test_instructions_empty_string_is_sent() -> None:
    assert build_session_payload(SessionConfig(instructions=""))["instructions"] == ""
    assert "instructions" not in build_session_payload(SessionConfig())


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("audio/pcmu", {"type": "audio/pcmu"}),
        ("g711_ulaw", {"type": "audio/pcmu"}),
        ("g711_alaw", {"type": "audio/pcma"}),
        ("audio/pcma", {"type": "audio/pcma"}),
        ("pcm16", PCM),
        ("audio/pcm", PCM),
    ],
)
def test_format_names_including_legacy(name: str, wire: dict[str, Any]) -> None:
    audio = build_session_payload(SessionConfig(input_audio_format=name, output_audio_format=name))[
        "audio"
    ]
    assert audio["input"]["format"] == wire
    assert audio["output"]["format"] == wire


def test_format_value_and_object() -> None:
    config = SessionConfig(input_audio_format=MULAW_8K, output_audio_format={"type": "audio/pcmu"})
    audio = build_session_payload(config)["audio"]
    assert audio["input"]["format"] == audio["output"]["format"] == {"type": "audio/pcmu"}


def test_format_openai_cannot_carry_is_refused() -> None:
    config = SessionConfig(input_audio_format=AudioFormat(encoding="pcm16", sample_rate=16000))
    with pytest.raises(AudioFormatError, match="24000"):
        build_session_payload(config)


def test_disabled_becomes_null_and_is_not_defaulted() -> None:
    audio_input = build_session_payload(
        SessionConfig(turn_detection=DISABLED, transcription=DISABLED, noise_reduction=DISABLED)
    )["audio"]["input"]
    assert audio_input["turn_detection"] is None
    assert audio_input["transcription"] is None
    assert audio_input["noise_reduction"] is None
    assert set(audio_input) == {"format", "turn_detection", "transcription", "noise_reduction"}


def test_noise_reduction_and_voice_and_speed() -> None:
    payload = build_session_payload(
        SessionConfig(noise_reduction=NoiseReduction(type="near_field"), voice="marin", speed=0.5)
    )
    assert payload["audio"]["input"]["noise_reduction"] == {"type": "near_field"}
    assert payload["audio"]["output"] == {"format": PCM, "voice": "marin", "speed": 0.5}


def test_turn_detection_snake_case_and_falsy_values_kept() -> None:
    wire = turn_detection_to_wire(
        TurnDetection(
            type="server_vad",
            threshold=0.0,
            prefix_padding_ms=0,
            silence_duration_ms=0,
            idle_timeout_ms=0,
            create_response=False,
            interrupt_response=False,
        )
    )
    assert wire == {
        "type": "server_vad",
        "threshold": 0.0,
        "prefix_padding_ms": 0,
        "silence_duration_ms": 0,
        "idle_timeout_ms": 0,
        "create_response": False,
        "interrupt_response": False,
    }


def test_turn_detection_unset_knobs_left_out() -> None:
    assert turn_detection_to_wire(TurnDetection(eagerness="low")) == {
        "type": "semantic_vad",
        "eagerness": "low",
    }


def test_turn_detection_extras_pass_through_but_do_not_beat_fields() -> None:
    wire = turn_detection_to_wire(
        TurnDetection(
            type="server_vad",
            silence_duration_ms=300,
            extras={"model_version": "v2", "idle_timeout_ms": None, "silence_duration_ms": 9},
        )
    )
    assert wire == {
        "type": "server_vad",
        "model_version": "v2",
        "idle_timeout_ms": None,
        "silence_duration_ms": 300,
    }


def test_transcription_verbatim_with_extras() -> None:
    payload = build_session_payload(
        SessionConfig(
            transcription=Transcription(
                model="gpt-4o-transcribe",
                language="de",
                prompt="",
                extras={"keywords": ["voicewire"], "delay": "low"},
            )
        )
    )
    assert payload["audio"]["input"]["transcription"] == {
        "keywords": ["voicewire"],
        "delay": "low",
        "model": "gpt-4o-transcribe",
        "language": "de",
        "prompt": "",
    }


def test_function_tool_whitelisted() -> None:
    tool = FunctionTool(name="f", description="d", parameters={"type": "object"})
    assert tool_to_wire(tool) == {
        "type": "function",
        "name": "f",
        "description": "d",
        "parameters": {"type": "object"},
    }
    raw = {"type": "function", "name": "g", "parameters": {}, "strict": True, "handler": "x"}
    assert tool_to_wire(raw) == {"type": "function", "name": "g", "parameters": {}}


def test_mcp_tool_whitelisted_keeping_explicit_none() -> None:
    raw = {
        "type": "mcp",
        "server_label": "docs",
        "server_url": "https://example.invalid",
        "authorization": None,
        "require_approval": {"never": {"tool_names": ["search"]}},
        "allowed_tools": ["search"],
        "on_approval": "dropped",
        "needs_approval": True,
    }
    assert tool_to_wire(raw) == {
        "type": "mcp",
        "server_label": "docs",
        "server_url": "https://example.invalid",
        "authorization": None,
        "require_approval": {"never": {"tool_names": ["search"]}},
        "allowed_tools": ["search"],
    }


def test_unknown_tool_type_passes_through() -> None:
    raw = {"type": "future_tool", "knob": 1}
    assert tool_to_wire(raw) == raw


def test_tool_without_type_is_refused() -> None:
    with pytest.raises(ConfigError):
        tool_to_wire({"name": "x"})


def test_tools_empty_tuple_clears_and_unset_is_absent() -> None:
    assert build_session_payload(SessionConfig(tools=()))["tools"] == []
    assert "tools" not in build_session_payload(SessionConfig())


def test_tool_choice() -> None:
    assert build_session_payload(SessionConfig(tool_choice="none"))["tool_choice"] == "none"
    choice = {"type": "function", "name": "f"}
    assert build_session_payload(SessionConfig(tool_choice=choice))["tool_choice"] == choice
    assert "tool_choice" not in build_session_payload(SessionConfig())


def test_output_modalities() -> None:
    assert build_session_payload(SessionConfig(output_modalities="text"))["output_modalities"] == [
        "text"
    ]


def test_provider_extras_spread_last_and_win() -> None:
    payload = build_session_payload(
        SessionConfig(
            instructions="mine",
            provider_extras={"instructions": "theirs", "truncation": "disabled"},
        )
    )
    assert payload["instructions"] == "theirs"
    assert payload["truncation"] == "disabled"
    assert list(payload)[-1] == "truncation"


def test_tracing_never_in_payload() -> None:
    for tracing in ("auto", DISABLED, TracingConfig(workflow_name="w")):
        assert "tracing" not in build_session_payload(SessionConfig(tracing=tracing))


def test_payload_is_a_fresh_copy() -> None:
    config = SessionConfig(tool_choice={"type": "function", "name": "f"})
    payload = build_session_payload(config)
    payload["tool_choice"]["name"] = "changed"
    assert config.tool_choice == {"type": "function", "name": "f"}
