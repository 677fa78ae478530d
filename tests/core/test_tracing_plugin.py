"""The ``tracing`` plugin: its entry point, its hook, and blocking it like any other plugin.

In-process tests use a fresh ``PluginManager`` and explicit providers; the tests that need the
global OpenTelemetry providers (which can be set once per process) run in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import entry_points

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import voicewire.tracing.plugin as tracing_plugin
from voicewire.plugins import DISABLE_ENV_VAR, PluginManager
from voicewire.tracing import TracingObserver, TracingPlugin


class FakeTransport:
    transport_id = "openai_ws"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def plugin(exporter: InMemorySpanExporter, reader: InMemoryMetricReader) -> Iterator[TracingPlugin]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[reader])
    yield TracingPlugin(
        tracer_provider=tracer_provider, meter_provider=meter_provider, capture_content=False
    )
    tracer_provider.shutdown()
    meter_provider.shutdown()


def drive(observers: list[object]) -> None:
    for observer in observers:
        assert isinstance(observer, TracingObserver)
        observer.on_connection_change("connecting")
        observer.on_turn_started("resp_1")
        observer.on_close("done")


def test_the_entry_point_is_declared_by_the_core() -> None:
    found = entry_points(group="voicewire.plugins", name="tracing")
    assert found, (
        "the core distribution must declare the entry point"
        ' tracing = "voicewire.tracing.plugin" in [project.entry-points."voicewire.plugins"]'
    )
    (entry_point,) = found
    assert entry_point.value == "voicewire.tracing.plugin"
    assert entry_point.dist is not None
    assert entry_point.dist.metadata["Name"] == "voicewire"


def test_the_plugin_module_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, voicewire.tracing.plugin;"
        " print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_hook_offers_nothing_without_an_sdk() -> None:
    assert tracing_plugin.voicewire_session_observer(FakeTransport()) is None


def test_registered_plugin_offers_a_tracing_observer(
    plugin: TracingPlugin, exporter: InMemorySpanExporter
) -> None:
    pm = PluginManager(disabled=())
    assert pm.register(plugin, name="tracing") == "tracing"
    observers = pm.session_observers(FakeTransport())
    assert len(observers) == 1
    drive(observers)
    assert sorted(s.name for s in exporter.get_finished_spans()) == [
        "voicewire.session",
        "voicewire.turn",
    ]


def test_blocked_plugin_records_nothing(
    plugin: TracingPlugin, exporter: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    pm = PluginManager(disabled={"tracing"})
    assert pm.register(plugin, name="tracing") is None
    assert pm.session_observers(FakeTransport()) == []
    assert exporter.get_finished_spans() == ()
    data = reader.get_metrics_data()
    assert data is None or not data.resource_metrics
    (info,) = [i for i in pm.plugin_infos() if i.id == "tracing"]
    assert info.status == "blocked"


def test_blocked_by_the_environment_variable(
    plugin: TracingPlugin, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DISABLE_ENV_VAR, "something_else, tracing")
    pm = PluginManager()
    assert pm.register(plugin, name="tracing") is None
    assert pm.session_observers(FakeTransport()) == []
    assert exporter.get_finished_spans() == ()


# A transport session through TransportBase and the process-wide plugin manager, with the
# global SDK providers installed as an application would.
SESSION_SCRIPT = textwrap.dedent(
    """
    import asyncio, json
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    from voicewire.plugins import get_plugin_manager
    from voicewire.tracing import TracingObserver
    from voicewire.transport import TransportBase

    class Loopback(TransportBase):
        transport_id = "loopback"

        async def connect(self, options):
            self._set_status("connecting")
            self._set_status("connected")

        async def close(self):
            self._set_status("disconnected")
            self._observers.notify("on_close", "closed by the script")

        async def send_audio(self, audio, *, commit=False): ...
        async def send_event(self, event): ...
        async def send_message(self, message, other_event_data=None): ...
        async def send_function_call_output(self, tool_call, output, start_response=True): ...
        async def interrupt(self): ...
        async def reset_history(self, old, new): ...
        async def update_session_config(self, config): ...

    async def main():
        transport = Loopback()
        await transport.connect(None)
        attached = [o for o in transport._observers.observers if isinstance(o, TracingObserver)]
        await transport.close()
        return len(attached)

    attached = asyncio.run(main())
    status = {info.id: info.status for info in get_plugin_manager().plugin_infos()}
    print(json.dumps({
        "attached": attached,
        "spans": [span.name for span in exporter.get_finished_spans()],
        "status": status.get("tracing"),
    }))
    """
)


def run_session(env: dict[str, str]) -> dict[str, object]:
    environment = {k: v for k, v in os.environ.items() if k != DISABLE_ENV_VAR}
    environment.update(env)
    result = subprocess.run(
        [sys.executable, "-c", SESSION_SCRIPT],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output: dict[str, object] = json.loads(result.stdout)
    return output


def test_a_session_is_traced_through_the_entry_point_plugin() -> None:
    assert run_session({}) == {
        "attached": 1,
        "spans": ["voicewire.session"],
        "status": "loaded",
    }


def test_nothing_is_recorded_when_blocked_through_the_environment() -> None:
    assert run_session({DISABLE_ENV_VAR: "tracing"}) == {
        "attached": 0,
        "spans": [],
        "status": "blocked",
    }
