"""The tracing update after session.created: the four rules."""

from __future__ import annotations

from typing import Any

import pytest

from voicewire.config import DISABLED, TracingConfig
from voicewire_openai_ws.protocol.tracing import decide_tracing_update, desired_tracing

CONFIG: dict[str, Any] = {
    "workflow_name": "calls",
    "group_id": "g1",
    "metadata": {"team": "support"},
}


def update(value: Any) -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "realtime", "tracing": value}}


def test_desired_values() -> None:
    assert desired_tracing(None) == "auto"
    assert desired_tracing("auto") == "auto"
    assert desired_tracing(DISABLED) is None
    full = TracingConfig(workflow_name="calls", group_id="g1", metadata={"team": "support"})
    assert desired_tracing(full) == CONFIG
    assert desired_tracing(TracingConfig(workflow_name="w")) == {"workflow_name": "w"}


@pytest.mark.parametrize("current", [None, "auto", CONFIG])
def test_rule_1_auto_is_always_sent(current: Any) -> None:
    assert decide_tracing_update("auto", current).event == update("auto")


@pytest.mark.parametrize("desired", [CONFIG, None])
def test_rule_2_object_already_set_sends_nothing_and_warns(desired: Any) -> None:
    decision = decide_tracing_update(desired, {"workflow_name": "other"})
    assert decision.event is None
    assert decision.warning is not None
    assert "already" in decision.warning


@pytest.mark.parametrize("current", [None, "auto", 42])
def test_rule_3_null_is_sent(current: Any) -> None:
    decision = decide_tracing_update(None, current)
    assert decision.event == update(None)
    assert decision.warning is None


@pytest.mark.parametrize("current", [None, "auto"])
def test_rule_4_object_over_null_or_string(current: Any) -> None:
    assert decide_tracing_update(CONFIG, current).event == update(CONFIG)


def test_unexpected_server_value_is_left_alone() -> None:
    decision = decide_tracing_update(CONFIG, 42)
    assert decision.event is None
    assert decision.warning is not None
