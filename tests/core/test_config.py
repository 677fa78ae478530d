"""Session configuration: unset vs DISABLED, merging, converters and validation."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicewire.audio.formats import MULAW_8K, PCM16_24K, AudioFormat
from voicewire.config import (
    DISABLED,
    Disabled,
    FunctionTool,
    NoiseReduction,
    SessionConfig,
    TracingConfig,
    Transcription,
    TurnDetection,
)
from voicewire.errors import ConfigError

# --- unset vs DISABLED -----------------------------------------------------------------------


def test_every_field_defaults_to_unset() -> None:
    config = SessionConfig()
    assert config.fields_set() == ()
    for name in SessionConfig.field_names():
        assert not config.is_set(name)
        if name != "provider_extras":
            assert getattr(config, name) is None
    assert config.provider_extras == {}


def test_disabled_is_set_and_distinct_from_none() -> None:
    config = SessionConfig(turn_detection=DISABLED, transcription=None)
    assert config.is_set("turn_detection")
    assert not config.is_set("transcription")
    assert config.turn_detection is Disabled.DISABLED
    assert DISABLED is not None
    assert repr(DISABLED) == "DISABLED"
    assert len(Disabled) == 1


@pytest.mark.parametrize("name", ["turn_detection", "transcription", "noise_reduction", "tracing"])
def test_fields_that_can_be_disabled(name: str) -> None:
    kwargs: dict[str, Any] = {name: DISABLED}
    config = SessionConfig(**kwargs)
    assert getattr(config, name) is DISABLED
    assert config.fields_set() == (name,)


def test_is_set_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError) as info:
        SessionConfig().is_set("temperature")
    assert info.value.field == "temperature"


def test_fields_set_in_declaration_order() -> None:
    config = SessionConfig(speed=1.0, voice="marin", instructions="", provider_extras={"a": 1})
    assert config.fields_set() == ("instructions", "voice", "speed", "provider_extras")


def test_empty_instructions_are_set() -> None:
    # "" clears the instructions on the server, which is different from leaving them alone.
    assert SessionConfig(instructions="").is_set("instructions")


def test_empty_tools_are_set() -> None:
    config = SessionConfig(tools=[])
    assert config.tools == ()
    assert config.is_set("tools")


# --- merge -----------------------------------------------------------------------------------


def test_merge_set_fields_win_and_unset_fields_keep() -> None:
    base = SessionConfig(voice="alloy", speed=1.0, instructions="be brief")
    top = SessionConfig(voice="marin", turn_detection=DISABLED)
    merged = base.merge(top)
    assert merged == SessionConfig(
        voice="marin", speed=1.0, instructions="be brief", turn_detection=DISABLED
    )
    # Neither input changes.
    assert base.voice == "alloy"
    assert top.speed is None


def test_merge_disabled_replaces_a_value_and_a_value_replaces_disabled() -> None:
    on = SessionConfig(turn_detection=TurnDetection(type="server_vad"))
    off = SessionConfig(turn_detection=DISABLED)
    assert on.merge(off).turn_detection is DISABLED
    assert off.merge(on).turn_detection == TurnDetection(type="server_vad")
    assert off.merge(SessionConfig()).turn_detection is DISABLED


def test_merge_replaces_nested_objects_whole() -> None:
    base = SessionConfig(turn_detection=TurnDetection(type="server_vad", threshold=0.3))
    top = SessionConfig(turn_detection=TurnDetection(type="server_vad", silence_duration_ms=800))
    merged = base.merge(top).turn_detection
    assert isinstance(merged, TurnDetection)
    assert merged.threshold is None
    assert merged.silence_duration_ms == 800


def test_merge_provider_extras_key_by_key() -> None:
    base = SessionConfig(provider_extras={"a": 1, "b": 2})
    top = SessionConfig(provider_extras={"b": 3, "c": 4})
    assert base.merge(top).provider_extras == {"a": 1, "b": 3, "c": 4}
    assert base.provider_extras == {"a": 1, "b": 2}


def test_merge_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        SessionConfig().merge({"voice": "x"})  # type: ignore[arg-type]


configs = st.builds(
    SessionConfig,
    instructions=st.none() | st.text(max_size=5),
    voice=st.none() | st.sampled_from(["alloy", "marin"]),
    speed=st.none() | st.floats(min_value=0.25, max_value=1.5),
    turn_detection=st.none() | st.just(DISABLED) | st.just(TurnDetection()),
    tool_choice=st.none() | st.sampled_from(["auto", "none"]),
    provider_extras=st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=3),
)


@given(configs, configs, configs)
def test_merge_is_associative(a: SessionConfig, b: SessionConfig, c: SessionConfig) -> None:
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@given(configs)
def test_empty_config_is_a_merge_identity(a: SessionConfig) -> None:
    assert a.merge(SessionConfig()) == a
    assert SessionConfig().merge(a) == a


@given(configs, configs)
def test_merge_result_fields(a: SessionConfig, b: SessionConfig) -> None:
    merged = a.merge(b)
    for name in SessionConfig.field_names():
        if name == "provider_extras":
            continue
        expected = getattr(b, name) if b.is_set(name) else getattr(a, name)
        assert getattr(merged, name) == expected


# --- converters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_format", "expected"),
    [
        ("audio/pcmu", MULAW_8K),
        ("g711_ulaw", MULAW_8K),
        ("audio/pcm", PCM16_24K),
        ("pcm16", PCM16_24K),
        ({"type": "audio/pcm", "rate": 24000}, PCM16_24K),
        ({"type": "audio/pcma"}, AudioFormat(encoding="alaw", sample_rate=8000)),
        (MULAW_8K, MULAW_8K),
    ],
)
def test_audio_formats_accept_names_objects_and_values(
    given_format: Any, expected: AudioFormat
) -> None:
    config = SessionConfig(input_audio_format=given_format, output_audio_format=given_format)
    assert config.input_audio_format == expected
    assert config.output_audio_format == expected


@pytest.mark.parametrize("field", ["input_audio_format", "output_audio_format"])
@pytest.mark.parametrize(
    "bad", ["audio/wav", {"type": "audio/pcm", "rate": 12}, {"rate": 8000}, 8000]
)
def test_bad_audio_formats_name_the_field(field: str, bad: Any) -> None:
    with pytest.raises(ConfigError) as info:
        SessionConfig(**{field: bad})
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_output_modalities_accept_a_list_or_a_bare_string() -> None:
    assert SessionConfig(output_modalities=["text"]).output_modalities == ("text",)
    assert SessionConfig(output_modalities="audio").output_modalities == ("audio",)


def test_tools_accept_function_tools_and_mappings() -> None:
    mcp = {"type": "mcp", "server_label": "docs", "server_url": "https://example.invalid"}
    config = SessionConfig(tools=[FunctionTool(name="weather"), mcp])
    assert config.tools == (FunctionTool(name="weather"), mcp)
    mcp["server_label"] = "changed"
    assert config.tools is not None
    assert config.tools[1]["server_label"] == "docs"


def test_function_tool_defaults() -> None:
    tool = FunctionTool(name="get-time_2")
    assert tool.description == ""
    assert tool.parameters == {"type": "object", "properties": {}}
    # Each tool owns its default schema.
    assert FunctionTool(name="a").parameters is not FunctionTool(name="b").parameters


def test_speed_int_becomes_float() -> None:
    speed = SessionConfig(speed=1).speed
    assert speed == 1.0
    assert isinstance(speed, float)


def test_mappings_are_copied() -> None:
    extras: dict[str, Any] = {"truncation": "auto"}
    config = SessionConfig(provider_extras=extras, tool_choice={"type": "function", "name": "f"})
    extras["truncation"] = "disabled"
    assert config.provider_extras == {"truncation": "auto"}


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"speed": 0}, "speed"),
        ({"speed": -1.0}, "speed"),
        ({"speed": math.inf}, "speed"),
        ({"speed": math.nan}, "speed"),
        ({"speed": "fast"}, "speed"),
        ({"speed": True}, "speed"),
        ({"output_modalities": ["video"]}, "output_modalities"),
        ({"output_modalities": []}, "output_modalities"),
        ({"output_modalities": ["audio", "audio"]}, "output_modalities"),
        (
            {"tools": [FunctionTool(name="a"), {"type": "function", "name": "a"}]},
            "tools",
        ),
        ({"tools": [FunctionTool(name="a"), FunctionTool(name="a")]}, "tools"),
        ({"tools": [42]}, "tools"),
        ({"tools": [{"name": "no_type"}]}, "tools"),
        ({"tools": FunctionTool(name="a")}, "tools"),
        ({"tool_choice": ""}, "tool_choice"),
        ({"tool_choice": 3}, "tool_choice"),
        ({"model": ""}, "model"),
        ({"voice": ""}, "voice"),
        ({"voice": 7}, "voice"),
        ({"instructions": 7}, "instructions"),
        ({"turn_detection": "server_vad"}, "turn_detection"),
        ({"turn_detection": {"type": "server_vad"}}, "turn_detection"),
        ({"transcription": "whisper-1"}, "transcription"),
        ({"noise_reduction": "near_field"}, "noise_reduction"),
        ({"tracing": "on"}, "tracing"),
        ({"tracing": True}, "tracing"),
        ({"provider_extras": {1: "x"}}, "provider_extras"),
        ({"provider_extras": ["x"]}, "provider_extras"),
        ({"output_modalities": 5}, "output_modalities"),
    ],
)
def test_session_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        SessionConfig(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_duplicate_tool_message_names_the_tool() -> None:
    with pytest.raises(ValueError, match="duplicate tool name 'lookup'"):
        SessionConfig(tools=[FunctionTool(name="lookup"), FunctionTool(name="lookup")])


def test_tools_without_names_are_not_duplicates() -> None:
    mcp = {"type": "mcp", "server_label": "a"}
    assert SessionConfig(tools=[mcp, {**mcp, "server_label": "b"}]).tools is not None


def test_tracing_values() -> None:
    assert SessionConfig(tracing="auto").tracing == "auto"
    traced = SessionConfig(tracing=TracingConfig(workflow_name="calls", metadata={"k": "v"}))
    assert isinstance(traced.tracing, TracingConfig)
    assert traced.tracing.metadata == {"k": "v"}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": "server_vad", "threshold": 1.5}, "threshold"),
        ({"type": "server_vad", "threshold": -0.1}, "threshold"),
        ({"type": "server_vad", "threshold": math.nan}, "threshold"),
        ({"type": "server_vad", "prefix_padding_ms": -1}, "prefix_padding_ms"),
        ({"type": "server_vad", "silence_duration_ms": -5}, "silence_duration_ms"),
        ({"type": "server_vad", "idle_timeout_ms": 1.5}, "idle_timeout_ms"),
        ({"type": "server_vad", "silence_duration_ms": True}, "silence_duration_ms"),
        ({"type": "client_vad"}, "type"),
        ({"eagerness": "eager"}, "eagerness"),
        ({"create_response": "yes"}, "create_response"),
        ({"threshold": 0.5}, "threshold"),
        ({"silence_duration_ms": 500}, "silence_duration_ms"),
        ({"type": "server_vad", "eagerness": "low"}, "eagerness"),
    ],
)
def test_turn_detection_validation(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        TurnDetection(**kwargs)
    assert info.value.field == field


def test_semantic_knob_on_server_vad_says_what_to_do() -> None:
    with pytest.raises(ValueError, match="type='server_vad'"):
        TurnDetection(threshold=0.5)


def test_turn_detection_accepts_bounds() -> None:
    low = TurnDetection(type="server_vad", threshold=0, prefix_padding_ms=0, idle_timeout_ms=0)
    assert low.threshold == 0.0
    assert TurnDetection(type="server_vad", threshold=1).threshold == 1.0
    assert TurnDetection().type == "semantic_vad"
    assert TurnDetection(eagerness="auto", create_response=False).create_response is False


@pytest.mark.parametrize("name", ["", "a" * 65, "has space", "dot.ted", "émoji", 5])
def test_function_tool_name_validation(name: Any) -> None:
    with pytest.raises(ConfigError) as info:
        FunctionTool(name=name)
    assert info.value.field == "name"


def test_function_tool_name_bounds_accepted() -> None:
    assert FunctionTool(name="a" * 64).name == "a" * 64
    assert FunctionTool(name="A-b_9").name == "A-b_9"


def test_function_tool_parameters_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError) as info:
        FunctionTool(name="f", parameters=["x"])  # type: ignore[arg-type]
    assert info.value.field == "parameters"


def test_other_parts_validate() -> None:
    with pytest.raises(ConfigError) as info:
        NoiseReduction(type="mid_field")  # type: ignore[arg-type]
    assert info.value.field == "type"
    with pytest.raises(ConfigError) as info:
        Transcription(model="")
    assert info.value.field == "model"
    with pytest.raises(ConfigError) as info:
        TracingConfig(group_id=3)  # type: ignore[arg-type]
    assert info.value.field == "group_id"


# --- repr and value semantics ----------------------------------------------------------------


def test_repr_shows_only_set_fields() -> None:
    config = SessionConfig(voice="marin", turn_detection=DISABLED)
    assert repr(config) == "SessionConfig(voice='marin', turn_detection=DISABLED)"
    assert repr(SessionConfig()) == "SessionConfig()"


def test_configs_are_frozen_values() -> None:
    config = SessionConfig(voice="marin")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.voice = "alloy"  # type: ignore[misc]
    assert config == SessionConfig(voice="marin")
    assert config != SessionConfig(voice="alloy")
    assert attrs.evolve(config, speed=1.1).speed == 1.1


def test_evolve_still_validates() -> None:
    with pytest.raises(ConfigError):
        attrs.evolve(SessionConfig(), speed=-2)
