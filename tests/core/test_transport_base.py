"""TransportBase: status life cycle, events, mute, errors and observers, via a small subclass."""

from __future__ import annotations

import asyncio
import logging
import sys
import types
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from voicewire.config import SessionConfig
from voicewire.errors import MuteNotSupportedError, TransportStateError
from voicewire.events import (
    WILDCARD,
    AudioEvent,
    ConnectionChangeEvent,
    ErrorEvent,
    FunctionCallEvent,
    RawServerEvent,
)
from voicewire.items import RealtimeItem, UserMessageItem
from voicewire.transport import (
    STATUS_TRANSITIONS,
    ConnectOptions,
    RealtimeTransportLayer,
    TransportBase,
    TransportStatus,
)


class LoopbackTransport(TransportBase):
    """Implements every I/O method by recording it; no network."""

    transport_id = "loopback"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("plugin_observers", False)
        super().__init__(**kwargs)
        self.sent: list[Any] = []

    async def connect(self, options: ConnectOptions) -> None:
        self._set_status("connecting")
        self._set_status("connected")

    async def close(self) -> None:
        if self.status == "disconnected":
            return
        self._set_status("disconnecting")
        self._set_status("disconnected")
        self._observers.notify("on_close", "closed by the application")

    async def send_audio(self, audio: bytes, *, commit: bool = False) -> None:
        self.sent.append(("audio", audio, commit))

    async def send_event(self, event: Mapping[str, Any]) -> None:
        self.sent.append(("event", dict(event)))

    async def send_message(
        self, message: str | UserMessageItem, other_event_data: Mapping[str, Any] | None = None
    ) -> None:
        self.sent.append(("message", message))

    async def send_function_call_output(
        self, tool_call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> None:
        self.sent.append(("output", tool_call.call_id, output))

    async def interrupt(self) -> None:
        self.sent.append(("interrupt",))

    async def reset_history(self, old: Sequence[RealtimeItem], new: Sequence[RealtimeItem]) -> None:
        self.sent.append(("reset", len(new)))

    async def update_session_config(self, config: SessionConfig) -> None:
        self.sent.append(("config", config))


class Recorder:
    """An observer recording status changes and errors."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.log = log if log is not None else []
        self.errors: list[ErrorEvent] = []

    def on_connection_change(self, status: TransportStatus) -> None:
        self.log.append(f"observer:{status}")

    def on_error(self, event: ErrorEvent) -> None:
        self.errors.append(event)


def test_a_complete_subclass_is_a_realtime_transport_layer() -> None:
    transport: RealtimeTransportLayer = LoopbackTransport()  # also checked statically by mypy

    assert isinstance(transport, RealtimeTransportLayer)


def test_an_incomplete_subclass_cannot_be_instantiated() -> None:
    class Incomplete(TransportBase):
        async def connect(self, options: ConnectOptions) -> None:
            return None

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


async def test_status_transitions_emit_connection_change_after_notifying_observers() -> None:
    log: list[str] = []
    transport = LoopbackTransport(observers=[Recorder(log)])
    transport.on("connection_change", lambda e: log.append(f"event:{e.status}"))
    statuses = [transport.status]

    await transport.connect(ConnectOptions())
    statuses.append(transport.status)
    await transport.close()
    statuses.append(transport.status)

    assert statuses == ["disconnected", "connected", "disconnected"]

    assert log == [
        "observer:connecting",
        "event:connecting",
        "observer:connected",
        "event:connected",
        "observer:disconnecting",
        "event:disconnecting",
        "observer:disconnected",
        "event:disconnected",
    ]


def test_unchanged_status_emits_nothing() -> None:
    transport = LoopbackTransport()
    changes: list[ConnectionChangeEvent] = []
    transport.on("connection_change", changes.append)

    assert transport._set_status("disconnected") is False
    assert transport._set_status("connecting") is True
    assert transport._set_status("connecting") is False

    assert [c.status for c in changes] == ["connecting"]


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("disconnected", "connected"),
        ("disconnected", "disconnecting"),
        ("disconnecting", "connected"),
    ],
)
def test_illegal_transitions_raise(start: TransportStatus, target: TransportStatus) -> None:
    transport = LoopbackTransport()
    path: dict[TransportStatus, list[TransportStatus]] = {
        "disconnected": [],
        "disconnecting": ["connecting", "disconnecting"],
    }
    for status in path[start]:
        transport._set_status(status)

    with pytest.raises(TransportStateError, match=f"'{start}' to '{target}'"):
        transport._set_status(target)
    assert transport.status == start


def test_every_status_has_a_way_back_to_disconnected() -> None:
    assert set(STATUS_TRANSITIONS) == {"disconnected", "connecting", "connected", "disconnecting"}
    for status, targets in STATUS_TRANSITIONS.items():
        if status != "disconnected":
            assert "disconnected" in targets, status


def test_reconnect_keeps_the_session() -> None:
    transport = LoopbackTransport()
    transport._set_status("connecting")
    transport._set_status("connected")

    assert transport._set_status("connecting")  # a reconnect: allowed
    assert transport._set_status("connected")


def test_mute_is_not_supported() -> None:
    transport = LoopbackTransport()

    assert transport.muted is None
    with pytest.raises(MuteNotSupportedError, match="'loopback' transport"):
        transport.mute(True)


def test_emit_uses_the_events_channel() -> None:
    transport = LoopbackTransport()
    audio: list[Any] = []
    raw: list[Any] = []
    transport.on("audio", audio.append)
    transport.on(WILDCARD, raw.append)

    chunk = AudioEvent(data=b"\x01\x02", response_id="r1")
    wire = RawServerEvent(source="server", message={"type": "response.created"})
    transport._emit(chunk)
    transport._emit(wire)

    assert audio == [chunk]
    assert raw == [wire]


def test_on_once_off_and_listener_count_delegate() -> None:
    transport = LoopbackTransport()
    seen: list[Any] = []
    transport.on("audio", seen.append)
    transport.once("audio_done", seen.append)
    assert transport.listener_count("audio") == 1

    transport.emit("audio_done", "d1")
    transport.emit("audio_done", "d2")
    transport.off("audio", seen.append)
    transport.emit("audio", "a1")

    assert seen == ["d1"]
    assert transport.listener_count("audio") == 0


async def test_events_and_aclose_emitter() -> None:
    before = asyncio.all_tasks()
    transport = LoopbackTransport()
    stream = transport.events("connection_change")
    handled: list[str] = []

    async def slow_listener(event: ConnectionChangeEvent) -> None:
        await asyncio.sleep(0)
        handled.append(event.status)

    transport.on("connection_change", slow_listener)
    await transport.connect(ConnectOptions())
    await transport.close()
    await transport.aclose_emitter(drain_timeout=None)

    assert [e.status async for e in stream if isinstance(e, ConnectionChangeEvent)] == [
        "connecting",
        "connected",
        "disconnecting",
        "disconnected",
    ]
    assert handled == ["connecting", "connected", "disconnecting", "disconnected"]
    assert asyncio.all_tasks() == before


def test_report_error_notifies_observers_and_emits() -> None:
    recorder = Recorder()
    transport = LoopbackTransport(observers=[recorder])
    received: list[ErrorEvent] = []
    transport.on("error", received.append)
    cause = ConnectionResetError("peer went away")

    event = transport._report_error(
        "socket reset", source="transport", code="reset", error=cause, details={"attempt": 1}
    )

    assert received == [event]
    assert recorder.errors == [event]
    assert event.message == "socket reset"
    assert event.source == "transport"
    assert event.code == "reset"
    assert event.error is cause
    assert event.details == {"attempt": 1}


def test_report_error_without_listener_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    transport = LoopbackTransport()

    with caplog.at_level(logging.WARNING, logger="voicewire.transport"):
        transport._report_error("lost", source="server")

    assert any("lost" in r.getMessage() for r in caplog.records)


async def test_observer_dispatch_is_cached_on_the_transport() -> None:
    lookups: list[str] = []

    class Spy:
        def __getattr__(self, name: str) -> Any:
            if name != "on_connection_change":
                raise AttributeError(name)
            lookups.append(name)
            return lambda status: None

    transport = LoopbackTransport(observers=[Spy()])
    await transport.connect(ConnectOptions())
    await transport.close()

    # Four status changes, one method lookup.
    assert lookups == ["on_connection_change"]


async def test_raising_observer_is_dropped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Faulty:
        def on_connection_change(self, status: TransportStatus) -> None:
            raise ValueError("observer bug")

    log: list[str] = []
    transport = LoopbackTransport(observers=[Faulty(), Recorder(log)])
    changes: list[str] = []
    transport.on("connection_change", lambda e: changes.append(e.status))

    with caplog.at_level(logging.WARNING):
        await transport.connect(ConnectOptions())
        await transport.close()

    assert changes == ["connecting", "connected", "disconnecting", "disconnected"]
    assert log == [f"observer:{s}" for s in changes]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Faulty" in warnings[0].getMessage()


# -- plugin observers -----------------------------------------------------------------------------


class FakePluginManager:
    def __init__(self) -> None:
        self.calls = 0

    def session_observers(self, transport: object) -> list[object]:
        self.calls += 1
        return [Recorder(), None]


@pytest.fixture
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> FakePluginManager:
    manager = FakePluginManager()
    module = types.ModuleType("voicewire.plugins")
    module.get_plugin_manager = lambda: manager  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "voicewire.plugins", module)
    return manager


async def test_plugin_observers_are_collected_per_session(
    fake_plugins: FakePluginManager,
) -> None:
    own = Recorder()
    transport = LoopbackTransport(observers=[own], plugin_observers=True)
    assert list(transport._observers.observers) == [own]

    await transport.connect(ConnectOptions())
    first_session = list(transport._observers.observers)
    assert len(first_session) == 2
    assert isinstance(first_session[1], Recorder)
    assert first_session[1].log == ["observer:connecting", "observer:connected"]

    await transport.close()
    await transport.connect(ConnectOptions())

    # A new session: the plugins were asked again and their old observers replaced.
    assert fake_plugins.calls == 2
    second_session = list(transport._observers.observers)
    assert second_session[0] is own
    assert len(second_session) == 2
    assert second_session[1] is not first_session[1]


async def test_plugin_observers_can_be_turned_off(fake_plugins: FakePluginManager) -> None:
    transport = LoopbackTransport(plugin_observers=False)
    await transport.connect(ConnectOptions())

    assert fake_plugins.calls == 0
    assert transport._observers.observers == ()


async def test_missing_plugin_module_is_tolerated(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as if the module did not exist.
    monkeypatch.setitem(sys.modules, "voicewire.plugins", None)
    transport = LoopbackTransport(plugin_observers=True)

    await transport.connect(ConnectOptions())

    assert transport.status == "connected"
    assert transport._observers.observers == ()


async def test_failing_plugin_manager_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode() -> object:
        raise RuntimeError("manager broken")

    module = types.ModuleType("voicewire.plugins")
    module.get_plugin_manager = explode  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "voicewire.plugins", module)
    transport = LoopbackTransport(plugin_observers=True)

    with caplog.at_level(logging.WARNING, logger="voicewire.transport"):
        await transport.connect(ConnectOptions())

    assert transport.status == "connected"
    assert any("session observers" in r.getMessage() for r in caplog.records)
