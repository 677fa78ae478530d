"""The fake realtime server's sans-I/O parts: speech generator, VAD, scripts, schema, sessions."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voicewire.audio.formats import ALAW_8K, MULAW_8K, PCM16_24K, AudioFormat
from voicewire.errors import ConfigError
from voicewire.testing.fake_realtime import (
    DEMO_SCRIPT,
    Echo,
    FunctionCall,
    Say,
    Script,
    SessionRecord,
    speech_like,
    speech_like_samples,
)
from voicewire.testing.fake_realtime.audio import convert, decode, rms_dbfs
from voicewire.testing.fake_realtime.schema import make_validator
from voicewire.testing.fake_realtime.scripts import ScriptCursor
from voicewire.testing.fake_realtime.vad import EnergyVad, VadEvent, threshold_to_dbfs
from voicewire.testing.fake_realtime.wire import default_session, merge_session

FORMATS = [
    MULAW_8K,
    ALAW_8K,
    PCM16_24K,
    AudioFormat(encoding="pcm16", sample_rate=16000, channels=2),
]

# ---------------------------------------------------------------------------------------------
# speech generator
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.encoding}-{f.sample_rate}-{f.channels}")
def test_speech_like_has_the_exact_length_and_is_deterministic(fmt: AudioFormat) -> None:
    audio = speech_like(1234, fmt, seed="hello")
    assert len(audio) == fmt.nbytes_for_ms(1234)
    assert audio == speech_like(1234, fmt, seed="hello")
    assert audio != speech_like(1234, fmt, seed="other")
    assert rms_dbfs(decode(audio, fmt)) > -35


def test_speech_like_peaks_at_the_requested_level_and_pauses() -> None:
    samples = speech_like_samples(3000, 24000, seed=1, level_dbfs=-6.0)
    assert float(np.max(np.abs(samples))) == pytest.approx(10 ** (-6 / 20), rel=1e-3)
    frames = samples[: len(samples) // 480 * 480].reshape(-1, 480)
    levels = [rms_dbfs(f) for f in frames]
    assert min(levels) < -50  # gaps between syllables and words
    assert max(levels) > -25


def test_speech_like_handles_tiny_and_zero_lengths() -> None:
    assert speech_like(0, MULAW_8K) == b""
    assert len(speech_like(0.1, PCM16_24K)) == 4
    assert not np.isnan(speech_like_samples(0.2, 24000)).any()


def test_convert_between_openai_formats_keeps_duration() -> None:
    audio = speech_like(500, MULAW_8K, seed=2)
    up = convert(audio, MULAW_8K, PCM16_24K)
    assert PCM16_24K.duration_ms(len(up)) == 500
    down = convert(up, PCM16_24K, ALAW_8K)
    assert ALAW_8K.duration_ms(len(down)) == 500
    assert rms_dbfs(decode(down, ALAW_8K)) > -35


# ---------------------------------------------------------------------------------------------
# VAD
# ---------------------------------------------------------------------------------------------


def _vad(fmt: AudioFormat = MULAW_8K, **kwargs: Any) -> EnergyVad:
    options: dict[str, Any] = {
        "threshold_dbfs": threshold_to_dbfs(0.5),
        "min_speech_ms": 60,
        "silence_ms": 400,
        "prefix_padding_ms": 300,
    }
    options.update(kwargs)
    return EnergyVad(fmt, **options)


def test_vad_ignores_silence_and_reports_offsets_on_the_audio_clock() -> None:
    vad = _vad()
    assert vad.feed(MULAW_8K.silence(2000)) == []
    events = vad.feed(speech_like(800, MULAW_8K, seed=3) + MULAW_8K.silence(600))
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"]
    start, stop = events
    onset = start.speech_end_ms
    assert 2000 <= onset <= 2100
    assert start.audio_ms == onset - 300
    assert stop.audio_ms == stop.speech_end_ms + 400
    assert 2600 <= stop.speech_end_ms <= 2800


def test_vad_results_do_not_depend_on_chunking() -> None:
    audio = MULAW_8K.silence(300) + speech_like(1200, MULAW_8K, seed=4) + MULAW_8K.silence(700)
    whole = _vad().feed(audio)
    vad = _vad()
    pieces: list[VadEvent] = []
    for i in range(0, len(audio), 37):
        pieces += vad.feed(audio[i : i + 37])
    assert pieces == whole
    assert len(whole) == 2


def test_vad_threshold_mapping_and_floor() -> None:
    assert threshold_to_dbfs(0.5) == -35.0
    assert threshold_to_dbfs(2.0) == -10.0
    vad = _vad(floor_ms=1000.0, start_ms=900.0)
    events = vad.feed(speech_like(300, MULAW_8K, seed=5))
    assert events[0].audio_ms >= 1000  # never before the end of the last commit


def test_vad_is_deaf_below_its_threshold() -> None:
    quiet = speech_like(1000, MULAW_8K, seed=6, level_dbfs=-50)
    assert _vad().feed(quiet + MULAW_8K.silence(600)) == []


# ---------------------------------------------------------------------------------------------
# scripts
# ---------------------------------------------------------------------------------------------

EXAMPLE = {
    "turns": [
        {
            "user": "what time is it?",
            "reply": [
                {"function_call": {"name": "get_time", "arguments": {}}},
                {"say": "It is twelve o'clock.", "ms": 1500},
            ],
        },
        {"reply": [{"say": "A long story.", "ms": 9000}, {"echo": True}]},
    ],
    "fallback": [{"say": "That is all I know."}],
}


def test_script_parses_the_documented_format(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(EXAMPLE), encoding="utf-8")
    script = Script.load(path)
    assert script == Script.from_obj(EXAMPLE) == Script.from_json(json.dumps(EXAMPLE))
    first, second = script.turns
    assert first.user == "what time is it?"
    assert first.reply == (
        FunctionCall(name="get_time", arguments="{}"),
        Say(text="It is twelve o'clock.", ms=1500),
    )
    assert second.reply == (Say(text="A long story.", ms=9000), Echo())
    assert script.fallback[0].duration_ms >= 300  # type: ignore[union-attr]
    assert Script.from_obj(EXAMPLE["turns"]).turns == script.turns


def test_the_docs_example_script_parses() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "testing" / "fake-model.md"
    text = docs.read_text(encoding="utf-8")
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    script = Script.from_json(block)
    assert any(isinstance(s, FunctionCall) for s in script.turns[0].reply)


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"turns": [{"reply": [{"sing": "la"}]}]}, "script.turns[0].reply[0]"),
        ({"turns": [{"reply": [{"say": "x", "ms": -1}]}]}, "script.turns[0].reply[0].ms"),
        (
            {"turns": [{"reply": [{"function_call": {}}]}]},
            "script.turns[0].reply[0].function_call.name",
        ),
        ({"turns": [{"user": "hi"}]}, "script.turns[0]"),
        ({"turns": "nope"}, "script.turns"),
        ({"turns": [], "extra": 1}, "script"),
        (42, "script"),
    ],
)
def test_script_errors_name_the_bad_part(obj: Any, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Script.from_obj(obj)
    assert info.value.field == field


def test_script_errors_for_files() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        Script.load("/nonexistent/script.json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        Script.from_json("{")


def test_cursor_splits_turns_at_function_calls() -> None:
    cursor = ScriptCursor(DEMO_SCRIPT)
    assert cursor.peek_user_text() == "What time is it?"
    first = cursor.next_steps(new_user_input=True)
    assert [type(s) for s in first] == [FunctionCall]
    second = cursor.next_steps(new_user_input=False)
    assert [type(s) for s in second] == [Say]
    third = cursor.next_steps(new_user_input=True)
    assert third[0].duration_ms == 9000  # type: ignore[union-attr]
    assert cursor.next_steps(new_user_input=True) == DEMO_SCRIPT.fallback
    assert cursor.next_steps(new_user_input=False) == DEMO_SCRIPT.fallback


def test_cursor_new_input_abandons_the_rest_of_a_turn() -> None:
    script = Script.from_obj(
        [
            {"reply": [{"function_call": {"name": "f"}}, {"say": "rest"}]},
            {"reply": [{"say": "next"}]},
        ]
    )
    cursor = ScriptCursor(script)
    cursor.next_steps(new_user_input=True)
    assert cursor.next_steps(new_user_input=True) == (Say(text="next"),)


# ---------------------------------------------------------------------------------------------
# schema and session merging
# ---------------------------------------------------------------------------------------------

VALID = [
    {"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "evt_1"},
    {"type": "input_audio_buffer.commit"},
    {
        "type": "response.create",
        "response": {"output_modalities": ["text"], "metadata": {"a": "b"}},
    },
    {"type": "response.cancel", "response_id": "resp_1"},
    {"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, "audio_end_ms": 5},
    {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "c", "output": "{}"},
    },
    {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "instructions": "x",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
            },
            "tools": [
                {
                    "type": "function",
                    "name": "get_time",
                    "description": "d",
                    "parameters": {"type": "object", "properties": {}},
                }
            ],
        },
    },
]


@pytest.mark.parametrize("backend", ["openai", "builtin"])
@pytest.mark.parametrize("event", VALID)
def test_valid_events_pass_both_validators(backend: Any, event: dict[str, Any]) -> None:
    if backend == "openai":
        pytest.importorskip("openai")
    assert make_validator(backend)(event) is None


def test_merge_session_semantics() -> None:
    base = default_session(model="m", session_id="sess_1", expires_at=0, instructions="hi")
    merged = merge_session(
        base,
        {
            "type": "realtime",
            "instructions": "",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm"},
                    "turn_detection": {"type": "semantic_vad"},
                },
                "output": {"voice": "cedar"},
            },
        },
    )
    assert merged["instructions"] == ""
    assert merged["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert merged["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    }
    assert merged["audio"]["output"]["voice"] == "cedar"
    assert merged["audio"]["output"]["speed"] == 1.0
    assert base["audio"]["output"]["voice"] == "alloy"  # the input is not modified


def test_a_record_joins_the_audio_both_ways() -> None:
    def delta(response_id: str, audio: bytes) -> dict[str, Any]:
        return {
            "type": "response.output_audio.delta",
            "response_id": response_id,
            "delta": base64.b64encode(audio).decode("ascii"),
        }

    def append(audio: str) -> dict[str, Any]:
        return {"type": "input_audio_buffer.append", "audio": audio}

    record = SessionRecord(
        index=0,
        model=None,
        auth="not_required",
        http_status=None,
        client_events=(
            append(base64.b64encode(b"ab").decode("ascii")),
            append("not base64!"),  # refused by the server: left out
            {"type": "response.create"},
            append(base64.b64encode(b"cd").decode("ascii")),
        ),
        unparsed_frames=(),
        server_events=(delta("r1", b"12"), {"type": "response.done"}, delta("r2", b"34")),
        truncations=(),
        faults_triggered=(),
        session=None,
        closed=True,
    )
    assert record.audio_received() == b"abcd"
    assert record.audio_sent() == b"1234"
    assert record.audio_sent("r2") == b"34"
    assert record.audio_sent("r3") == b""
