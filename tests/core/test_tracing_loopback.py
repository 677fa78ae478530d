"""A bridged call traced end to end: in-memory edge, the real OpenAI transport, the fake server.

The tracing plugin is registered in the process-wide plugin manager with explicit in-memory
providers (the global OpenTelemetry providers stay untouched), and both the bridge and the model
transport ask the plugins for observers as they would in production. Waits are on conditions;
the timeouts are hang guards only.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from voicewire.audio import MULAW_8K
from voicewire.bridge import CallBridge, CallerAudio
from voicewire.events import AudioInterruptedEvent, MarkEvent
from voicewire.plugins import PluginLoadWarning, get_plugin_manager
from voicewire.testing import FakeRealtimeServer, Script, speech_like
from voicewire.tracing import TracingPlugin
from voicewire.transport import ConnectOptions

if TYPE_CHECKING:
    from tests.core.conftest import EdgeFactory

from voicewire_openai_ws import OpenAIRealtimeWebSocket

GUARD = 10.0
API_KEY = "sk-loopback-4f9a8b7c6d5e"
PLUGIN_ID = "tracing_loopback_test"


@pytest.fixture
def traced() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        manager = get_plugin_manager()
    plugin = TracingPlugin(
        tracer_provider=tracer_provider, meter_provider=meter_provider, capture_content=True
    )
    manager.register(plugin, name=PLUGIN_ID)
    try:
        yield exporter, reader
    finally:
        manager.unregister(PLUGIN_ID)
        tracer_provider.shutdown()
        meter_provider.shutdown()


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_barged_in_call_is_one_trace(
    traced: tuple[InMemorySpanExporter, InMemoryMetricReader],
    make_edge: EdgeFactory,
    no_task_leaks: None,
) -> None:
    exporter, reader = traced
    script = Script.from_obj({"turns": [{"reply": [{"say": "a long answer", "ms": 3000}]}]})
    server = FakeRealtimeServer(api_key=API_KEY, mode="script", script=script, pace=1.0)
    await server.start()
    edge = make_edge()
    model = OpenAIRealtimeWebSocket(url=server.url, api_key=API_KEY, automatic_barge_in=False)
    bridge = CallBridge(edge, model)
    seen: list[object] = []

    def keep(event: object) -> None:
        seen.append(event)
        edge.pulse()

    for channel in ("audio_interrupted", "mark", "connection_change"):
        bridge.on(channel, keep)
    task = asyncio.get_running_loop().create_task(bridge.run(ConnectOptions()))
    try:
        edge.start_call()
        await edge.pulse.until(lambda: bridge.status == "connected", "the model to connect")
        await bridge.send_message("tell me everything")
        await edge.pulse.until(lambda: len(edge.outstanding) >= 5, "answer audio at the edge")
        edge.ack(3)
        await edge.pulse.until(
            lambda: sum(isinstance(e, MarkEvent) for e in seen) == 3, "three marks"
        )
        audio = speech_like(400, MULAW_8K, seed=3) + b"\xff" * 8000
        for offset in range(0, len(audio), 160):
            edge.feed(CallerAudio(data=audio[offset : offset + 160], timestamp_ms=offset // 8))
        await edge.pulse.until(
            lambda: any(isinstance(e, AudioInterruptedEvent) for e in seen), "the barge-in"
        )
        await server.wait_for(lambda: bool(server.session(0).truncations))
        edge.hang_up()
        await asyncio.wait_for(task, GUARD)
    finally:
        await bridge.close()
        await asyncio.wait_for(task, GUARD)
        await server.close()

    (truncation,) = server.session(0).truncations
    spans = exporter.get_finished_spans()
    sessions = {
        attributes(s)["voicewire.transport"]: s for s in spans if s.name == "voicewire.session"
    }
    assert set(sessions) == {"bridge", "openai_ws"}
    call, model_session = sessions["bridge"], sessions["openai_ws"]
    assert call.parent is None
    assert call.context is not None
    assert model_session.context is not None
    assert model_session.parent is not None
    assert model_session.parent.span_id == call.context.span_id
    assert {s.context.trace_id for s in spans if s.context} == {call.context.trace_id}

    assert attributes(call)["voicewire.call_sid"] == "CA1"
    assert attributes(call)["voicewire.close_reason"] == "caller hung up"
    assert attributes(model_session)["gen_ai.system"] == "openai"
    assert attributes(model_session)["gen_ai.request.model"] == model.model

    turns = [s for s in spans if s.name == "voicewire.turn"]
    assert turns
    for turn in turns:
        assert turn.parent is not None
        assert turn.parent.span_id == model_session.context.span_id
    (interrupted,) = [t for t in turns if attributes(t)["voicewire.turn.interrupted"]]
    interrupted_attributes = attributes(interrupted)
    assert interrupted_attributes["voicewire.turn.truncated_at_ms"] == truncation.audio_end_ms
    assert interrupted_attributes["voicewire.turn.audio_heard_ms"] == truncation.audio_end_ms
    assert interrupted_attributes["voicewire.turn.playback_acks"] >= 3
    assert interrupted_attributes["voicewire.turn.audio_sent_ms"] > truncation.audio_end_ms
    assert "voicewire.turn.time_to_first_audio_ms" in interrupted_attributes
    assert [e.name for e in interrupted.events].count("voicewire.interruption") == 1

    # The key never becomes telemetry, wherever it might have leaked from.
    for span in spans:
        texts = [str(v) for v in (span.attributes or {}).values()]
        texts += [str(v) for e in span.events for v in (e.attributes or {}).values()]
        assert not any(API_KEY in text for text in texts)

    data = reader.get_metrics_data()
    assert data is not None
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert {
        "voicewire.interruptions",
        "voicewire.turn.time_to_first_audio",
        "voicewire.interruption.clear_latency",
    } <= names
