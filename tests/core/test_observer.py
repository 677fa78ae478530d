"""ObserverFanout: optional methods, cached dispatch, and observers that raise."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from voicewire.events import TurnDoneEvent
from voicewire.observer import OBSERVER_METHODS, ObserverFanout, SessionObserver


class TurnCounter:
    """Implements two methods only."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def on_turn_started(self, response_id: str | None) -> None:
        self.calls.append(("on_turn_started", (response_id,)))

    def on_turn_done(self, event: TurnDoneEvent) -> None:
        self.calls.append(("on_turn_done", (event,)))


class CountingLookups:
    """Answers every ``on_*`` name, counting how often the fan-out looks a method up."""

    def __init__(self) -> None:
        self.lookups = 0
        self.calls = 0

    def __getattr__(self, name: str) -> Callable[..., None]:
        if not name.startswith("on_"):
            raise AttributeError(name)
        self.lookups += 1

        def method(*args: object) -> None:
            self.calls += 1

        return method


class Broken:
    def __init__(self) -> None:
        self.calls = 0

    def on_speech_started(self) -> None:
        self.calls += 1
        raise RuntimeError("observer bug")


def test_observer_methods_lists_the_contract() -> None:
    assert {
        "on_connection_change",
        "on_client_event",
        "on_server_event",
        "on_speech_started",
        "on_speech_stopped",
        "on_turn_started",
        "on_turn_done",
        "on_first_audio",
        "on_call_start",
        "on_audio_to_model",
        "on_audio_from_model",
        "on_audio_to_caller",
        "on_playback_acknowledged",
        "on_interruption",
        "on_function_call",
        "on_function_call_output",
        "on_reconnect",
        "on_error",
        "on_close",
    } == OBSERVER_METHODS


def test_notify_calls_only_observers_that_implement_the_method_in_order() -> None:
    first, second = TurnCounter(), TurnCounter()
    order: list[str] = []

    class Tail:
        def on_turn_started(self, response_id: str | None) -> None:
            order.append("tail")

    fanout = ObserverFanout([first, object(), Tail(), second])
    done = TurnDoneEvent(response_id="r1", status="completed")

    fanout.notify("on_turn_started", "r1")
    fanout.notify("on_turn_done", done)
    fanout.notify("on_speech_started")  # nobody implements it: nothing happens

    assert first.calls == [("on_turn_started", ("r1",)), ("on_turn_done", (done,))]
    assert second.calls == first.calls
    assert order == ["tail"]
    assert fanout.has("on_turn_started")
    assert not fanout.has("on_speech_started")


def test_dispatch_is_cached_until_the_observer_set_changes() -> None:
    counting = CountingLookups()
    fanout = ObserverFanout([counting])

    for _ in range(5):
        fanout.notify("on_audio_to_caller", 160)
    assert counting.calls == 5
    assert counting.lookups == 1

    fanout.add(TurnCounter())  # the set changed: the next call collects the methods again
    fanout.notify("on_audio_to_caller", 160)
    fanout.notify("on_audio_to_caller", 160)
    assert counting.lookups == 2

    fanout.remove(counting)
    fanout.notify("on_audio_to_caller", 160)
    assert counting.calls == 7


def test_raising_observer_is_dropped_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    broken = Broken()
    healthy = CountingLookups()
    fanout = ObserverFanout([broken, healthy])

    with caplog.at_level(logging.WARNING, logger="voicewire.observer"):
        fanout.notify("on_speech_started")
        fanout.notify("on_speech_started")
        fanout.notify("on_speech_started")

    assert broken.calls == 1
    assert healthy.calls == 3  # the observer after the broken one was called every time
    assert fanout.observers == (healthy,)
    warnings = [r for r in caplog.records if r.name == "voicewire.observer"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "Broken" in warnings[0].getMessage()
    assert "on_speech_started" in warnings[0].getMessage()


def test_inherited_protocol_stubs_are_not_called() -> None:
    class Partial(SessionObserver):
        def __init__(self) -> None:
            self.closed: list[str | None] = []

        def on_close(self, reason: str | None) -> None:
            self.closed.append(reason)

    partial = Partial()
    fanout = ObserverFanout([partial])

    fanout.notify("on_close", "bye")

    assert partial.closed == ["bye"]
    assert fanout.has("on_close")
    assert not fanout.has("on_speech_started")
    assert not fanout.has("on_error")
    # What it inherits are harmless no-ops, callable directly.
    for name in OBSERVER_METHODS - {"on_close"}:
        method = getattr(partial, name)
        arity = method.__code__.co_argcount - 1
        assert method(*([None] * arity)) is None


def test_add_remove_clear_and_none() -> None:
    observer = TurnCounter()
    fanout = ObserverFanout([None, observer, observer])
    assert len(fanout) == 1
    assert fanout

    fanout.add(observer)
    assert fanout.observers == (observer,)
    assert fanout.remove(observer)
    assert not fanout.remove(observer)
    assert not fanout

    fanout.add(observer)
    fanout.clear()
    fanout.notify("on_turn_started", "r")
    assert observer.calls == []
    assert not fanout.has("on_turn_started")


def test_plugins_may_add_their_own_method_names() -> None:
    dtmf: list[str] = []

    class Edge:
        def on_dtmf(self, digit: str) -> None:
            dtmf.append(digit)

    fanout = ObserverFanout([Edge()])
    fanout.notify("on_dtmf", "5")

    assert dtmf == ["5"]
