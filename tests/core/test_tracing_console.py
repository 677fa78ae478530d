"""``--trace`` support: the console span tree and ``configure_tracing``.

Providers are built with ``set_global=False`` and passed on explicitly; the one test that installs
the global providers runs in a subprocess.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from voicewire.errors import VoicewireError
from voicewire.events import AudioInterruptedEvent, FunctionCallEvent, Truncation, TurnDoneEvent
from voicewire.tracing import TracingObserver
from voicewire.tracing.console import ConsoleSpanTreeExporter, render_metrics, render_span_tree
from voicewire.tracing.sdk import TRACE_MODES, TracingSetupError, configure_tracing


class FakeTransport:
    transport_id = "openai_ws"
    model = "gpt-realtime"


def run_session(observer: TracingObserver) -> None:
    observer.on_connection_change("connecting")
    observer.on_connection_change("connected")
    observer.on_call_start("CA1", "MZ1")
    observer.on_turn_started("resp_1")
    observer.on_first_audio("resp_1", 350.0)
    observer.on_audio_to_caller(1600)
    observer.on_playback_acknowledged("vw-1")
    observer.on_turn_done(TurnDoneEvent(response_id="resp_1", status="completed"))
    observer.on_speech_started()
    observer.on_interruption(
        AudioInterruptedEvent(
            response_id="resp_1",
            truncations=(Truncation(item_id="item_1", content_index=0, audio_end_ms=120),),
        )
    )
    observer.on_turn_started("resp_2")
    observer.on_function_call(
        FunctionCallEvent(name="lookup", call_id="call_1", arguments="{}", response_id="resp_2")
    )
    observer.on_turn_done(TurnDoneEvent(response_id="resp_2", status="completed"))
    observer.on_function_call_output("call_1", "{}")
    observer.on_connection_change("disconnected")
    observer.on_close("caller hung up")


def normalise(text: str) -> str:
    text = re.sub(r"\+?\d+(\.\d+)? (ms|s)\b", "<t>", text)
    return re.sub(r"clear_latency_ms=[\d.]+", "clear_latency_ms=<t>", text)


def heads(text: str) -> list[str]:
    """Each line up to the end of its span name (or event name)."""
    return [re.sub(r"(\S)  .*$", r"\1", line, count=1) for line in text.splitlines()]


EXPECTED_TREE = """\
voicewire.session  <t>  transport=openai_ws system=openai model=gpt-realtime call=CA1 stream=MZ1 \
turns=2 interruptions=1 closed="caller hung up"
|  * <t> connection  connection.status=connecting
|  * <t> connection  connection.status=connected
|  * <t> speech_started
|  * <t> connection  connection.status=disconnected
|- voicewire.turn  <t>  response=resp_1 status=completed first_audio=<t> interrupted=yes \
truncated_at=<t> heard=<t>
|     * <t> first_audio  turn.time_to_first_audio_ms=350.0
|     * <t> interruption  response.id=resp_1 truncation.item_ids=item_1 \
truncation.audio_end_ms=120 interruption.clear_latency_ms=<t>
`- voicewire.turn  <t>  response=resp_2 status=completed
   `- voicewire.function_call  <t>  tool=lookup call_id=call_1 answered=yes
"""


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    run_session(TracingObserver(FakeTransport(), tracer_provider=provider))
    yield exporter
    provider.shutdown()


def test_render_span_tree(spans: InMemorySpanExporter) -> None:
    assert normalise(render_span_tree(spans.get_finished_spans())) == EXPECTED_TREE


def test_render_without_events(spans: InMemorySpanExporter) -> None:
    text = render_span_tree(spans.get_finished_spans(), events=False)
    assert heads(text) == [
        "voicewire.session",
        "|- voicewire.turn",
        "`- voicewire.turn",
        "   `- voicewire.function_call",
    ]


def test_render_nothing() -> None:
    assert render_span_tree([]) == ""
    assert render_metrics(None) == ""


def test_console_exporter_prints_a_trace_when_its_root_ends() -> None:
    stream = io.StringIO()
    exporter = ConsoleSpanTreeExporter(stream)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = TracingObserver(FakeTransport(), tracer_provider=provider)
    observer.on_turn_started("resp_1")
    observer.on_turn_done(TurnDoneEvent(response_id="resp_1", status="completed"))
    assert stream.getvalue() == ""  # the turn waits for its session
    observer.on_close(None)
    assert heads(stream.getvalue()) == [
        "voicewire.session",
        "`- voicewire.turn",
    ]
    provider.shutdown()


def test_console_exporter_prints_unfinished_traces_at_shutdown() -> None:
    stream = io.StringIO()
    exporter = ConsoleSpanTreeExporter(stream, events=False)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    root = tracer.start_span("root")
    tracer.start_span("child", context=trace.set_span_in_context(root)).end()
    assert stream.getvalue() == ""
    provider.shutdown()
    assert stream.getvalue() == "child  " + stream.getvalue().split("  ", 1)[1]


# -- configure_tracing -------------------------------------------------------------------------


def test_modes() -> None:
    assert TRACE_MODES == ("none", "console", "otlp")


def test_none_installs_nothing() -> None:
    with configure_tracing("none") as handle:
        assert handle.mode == "none"
        assert not handle.active
        assert handle.tracer_provider is None


def test_unknown_mode_is_a_one_line_error() -> None:
    with pytest.raises(TracingSetupError) as info:
        configure_tracing("jaeger")
    assert isinstance(info.value, VoicewireError)
    assert str(info.value) == "unknown trace mode 'jaeger'; choose one of: none, console, otlp"


def test_sdk_disabled_by_the_environment() -> None:
    handle = configure_tracing("console", environ={"OTEL_SDK_DISABLED": "true"})
    assert handle.mode == "none"


def test_console_mode_prints_spans_and_metrics() -> None:
    stream = io.StringIO()
    handle = configure_tracing("console", stream=stream, set_global=False, environ={})
    assert handle.active
    assert handle.tracer_provider is not None
    assert handle.tracer_provider.resource.attributes["service.name"] == "voicewire"
    observer = TracingObserver(
        FakeTransport(),
        tracer_provider=handle.tracer_provider,
        meter_provider=handle.meter_provider,
    )
    run_session(observer)
    assert normalise(stream.getvalue()) == EXPECTED_TREE
    handle.shutdown()
    handle.shutdown()  # once is enough
    summary = stream.getvalue()[len(EXPECTED_TREE) - 20 :]
    assert "metrics:\n" in summary
    assert "voicewire.turn.time_to_first_audio: count=1 mean=350.0 ms" in summary
    assert "voicewire.interruptions: 1" in summary


def test_service_name_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "phone-agent")
    handle = configure_tracing(
        "console",
        stream=io.StringIO(),
        set_global=False,
        environ={"OTEL_SERVICE_NAME": "phone-agent"},
    )
    assert handle.tracer_provider is not None
    assert handle.tracer_provider.resource.attributes["service.name"] == "phone-agent"
    handle.shutdown()


@pytest.mark.skipif(
    importlib.util.find_spec("opentelemetry.exporter") is not None,
    reason="the OTLP exporter is installed",
)
def test_otlp_without_the_exporter_is_a_one_line_error() -> None:
    with pytest.raises(TracingSetupError) as info:
        configure_tracing("otlp", set_global=False, environ={})
    message = str(info.value)
    assert "\n" not in message
    assert "pip install opentelemetry-exporter-otlp" in message


def test_otlp_rejects_an_unsupported_protocol() -> None:
    with pytest.raises(TracingSetupError, match="http/json"):
        configure_tracing(
            "otlp", set_global=False, environ={"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
        )


GLOBAL_SCRIPT = textwrap.dedent(
    """
    from voicewire.tracing import create_observer
    from voicewire.tracing.sdk import TracingSetupError, configure_tracing

    class Transport:
        transport_id = "openai_ws"

    assert create_observer(Transport()) is None
    handle = configure_tracing("console")
    observer = create_observer(Transport())
    assert observer is not None
    observer.on_turn_started("resp_1")
    observer.on_close("done")
    try:
        configure_tracing("console")
    except TracingSetupError as exc:
        print(exc)
    handle.shutdown()
    """
)


def test_console_mode_installs_the_global_providers() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", GLOBAL_SCRIPT],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "--trace console: an OpenTelemetry SDK is already configured in this process"
        " (by opentelemetry-instrument, for instance); leave out --trace to use that one\n"
    )
    lines = result.stderr.splitlines()
    assert lines[0].startswith("voicewire.session  ")
    assert lines[1].startswith("`- voicewire.turn  ")
    assert "metrics:" in lines
