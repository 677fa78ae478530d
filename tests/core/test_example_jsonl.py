"""The example third-party plugin ``examples/jsonl_call_log``: a second tracer on the same hook.

The suite normally runs against the example installed as a wheel; when it is not installed (a
bare checkout), its source directory is put on ``sys.path`` and the entry-point test is skipped.
"""

from __future__ import annotations

import json
import logging
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import pytest

from voicewire.events import (
    AudioInterruptedEvent,
    ErrorEvent,
    FunctionCallEvent,
    Truncation,
    TurnDoneEvent,
    Usage,
)
from voicewire.observer import ObserverFanout
from voicewire.plugins import PluginManager

try:
    distribution("voicewire-jsonl-call-log")
    INSTALLED = True
except PackageNotFoundError:
    INSTALLED = False
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples/jsonl_call_log/src"))

import voicewire_jsonl_call_log.plugin as call_log_plugin
from voicewire_jsonl_call_log import ENV_VAR, CallLogObserver, JsonlWriter, writer_for


class FakeTransport:
    transport_id = "openai_ws"


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_session(observer: CallLogObserver) -> None:
    """Notify the observer the way a transport does: through a fan-out."""
    fanout = ObserverFanout([observer])
    fanout.notify("on_connection_change", "connecting")
    fanout.notify("on_connection_change", "connected")
    fanout.notify("on_call_start", "CA1", "MZ1")
    fanout.notify("on_client_event", "input_audio_buffer.append", 100, {"audio": "AAAA"})
    fanout.notify("on_turn_started", "resp_1")
    fanout.notify("on_first_audio", "resp_1", 412.5)
    fanout.notify(
        "on_turn_done",
        TurnDoneEvent(
            response_id="resp_1",
            status="completed",
            usage=Usage(input_tokens=10, output_tokens=4),
        ),
    )
    fanout.notify(
        "on_interruption",
        AudioInterruptedEvent(
            response_id="resp_1",
            truncations=(Truncation(item_id="item_1", content_index=0, audio_end_ms=150),),
        ),
    )
    fanout.notify(
        "on_function_call",
        FunctionCallEvent(name="get_weather", call_id="call_1", arguments='{"city": "Paris"}'),
    )
    fanout.notify("on_function_call_output", "call_1", '{"temperature": 21}')
    fanout.notify(
        "on_error", ErrorEvent(message="rate limited", source="server", code="rate_limit")
    )
    fanout.notify("on_connection_change", "disconnected")
    fanout.notify("on_close", "caller hung up")


def without_time(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for record in records:
        assert record.pop("time").endswith("Z")
    return records


def test_one_line_per_notable_event(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    writer = JsonlWriter(path)
    observer = CallLogObserver(FakeTransport(), writer)
    run_session(observer)
    assert writer.flush()
    writer.close()

    common = {"session": observer.session, "transport": "openai_ws"}
    assert without_time(read(path)) == [
        {**common, "event": "connection", "status": "connecting"},
        {**common, "event": "connection", "status": "connected"},
        {**common, "event": "call_start", "call_id": "CA1", "stream_id": "MZ1"},
        {**common, "event": "turn_started", "response_id": "resp_1"},
        {**common, "event": "first_audio", "response_id": "resp_1", "latency_ms": 412.5},
        {
            **common,
            "event": "turn_done",
            "response_id": "resp_1",
            "status": "completed",
            "input_tokens": 10,
            "output_tokens": 4,
        },
        {
            **common,
            "event": "interruption",
            "response_id": "resp_1",
            "truncations": [{"item_id": "item_1", "content_index": 0, "audio_end_ms": 150}],
        },
        {**common, "event": "function_call", "name": "get_weather", "call_id": "call_1"},
        {**common, "event": "function_call_output", "call_id": "call_1", "output_chars": 19},
        {
            **common,
            "event": "error",
            "source": "server",
            "code": "rate_limit",
            "message": "rate limited",
        },
        {**common, "event": "connection", "status": "disconnected"},
        {**common, "event": "close", "reason": "caller hung up"},
    ]
    assert "Paris" not in path.read_text(encoding="utf-8")


def test_frames_are_not_observed() -> None:
    # Not implementing the per-frame methods is what keeps the plugin off the hot path.
    for name in ("on_client_event", "on_server_event", "on_audio_to_caller"):
        assert not hasattr(CallLogObserver, name)


def test_sessions_share_a_file_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    writer = writer_for(path)
    assert writer_for(str(path)) is writer
    first = CallLogObserver(FakeTransport(), writer)
    second = CallLogObserver(FakeTransport(), writer)
    for _ in range(50):
        first.on_turn_started("a")
        second.on_turn_started("b")
    assert writer.flush()
    records = read(path)
    assert len(records) == 100
    assert {r["session"] for r in records} == {first.session, second.session}


def test_the_hook_needs_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert call_log_plugin.voicewire_session_observer(FakeTransport()) is None
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "log.jsonl"))
    assert isinstance(call_log_plugin.voicewire_session_observer(FakeTransport()), CallLogObserver)


def test_through_a_plugin_manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "calls.jsonl"
    monkeypatch.setenv(ENV_VAR, str(path))
    pm = PluginManager(disabled=())
    pm.register(call_log_plugin, name="jsonl_call_log")
    (observer,) = pm.session_observers(FakeTransport())
    fanout = ObserverFanout([observer])
    fanout.notify("on_turn_started", "resp_1")
    fanout.notify("on_close", None)
    assert writer_for(path).flush()
    assert [r["event"] for r in read(path)] == ["turn_started", "close"]

    blocked = PluginManager(disabled={"jsonl_call_log"})
    assert blocked.register(call_log_plugin, name="jsonl_call_log") is None
    assert blocked.session_observers(FakeTransport()) == []


def test_an_unwritable_path_drops_lines_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="voicewire_jsonl_call_log")
    writer = JsonlWriter(tmp_path / "missing-directory" / "calls.jsonl")
    observer = CallLogObserver(FakeTransport(), writer)
    observer.on_turn_started("resp_1")
    assert writer.flush()
    writer.close()
    assert "cannot be opened" in caplog.text


@pytest.mark.skipif(not INSTALLED, reason="voicewire-jsonl-call-log is not installed")
def test_the_entry_point_is_declared() -> None:
    entry_points = [
        ep
        for ep in distribution("voicewire-jsonl-call-log").entry_points
        if ep.group == "voicewire.plugins"
    ]
    assert [(ep.name, ep.value) for ep in entry_points] == [
        ("jsonl_call_log", "voicewire_jsonl_call_log.plugin")
    ]
