"""TracingObserver: the span tree, attributes, events and metrics of a session, driven directly.

Every test builds its own SDK providers with an in-memory span exporter and metric reader and
passes them to the observer explicitly; the global OpenTelemetry providers are never set here.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator, Mapping
from typing import Any, cast

import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

from voicewire.audio import AudioFormat
from voicewire.events import (
    AudioInterruptedEvent,
    ErrorEvent,
    FunctionCallEvent,
    Truncation,
    TurnDoneEvent,
    Usage,
)
from voicewire.observer import ObserverFanout
from voicewire.tracing import (
    CAPTURE_CONTENT_ENV_VAR,
    CallLinkObserver,
    TracingObserver,
    capture_content_from_env,
    create_observer,
    traceparent_headers,
    tracing_active,
)
from voicewire.tracing.observer import MAX_ACK_EVENTS_PER_TURN, scrub

API_KEY = "sk-test-4f9a8b7c6d5e4f3a2b1c"
TWILIO_TOKEN = "twilio-auth-0123456789abcdef"
CALLER_AUDIO = bytes(range(256)) * 4  # 1024 bytes, recognisable once base64-encoded
MODEL_AUDIO = bytes(range(255, -1, -1)) * 19  # 4864 bytes
CALLER_B64 = base64.b64encode(CALLER_AUDIO).decode()
MODEL_B64 = base64.b64encode(MODEL_AUDIO).decode()
PCM24 = {"type": "audio/pcm", "rate": 24000}


class FakeTransport:
    """What the observer may read from a transport, plus secrets it must never read."""

    transport_id = "openai_ws"
    model = "gpt-realtime"
    api_key = API_KEY
    headers: Mapping[str, str] = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


@pytest.fixture
def make_observer(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Any:
    def make(transport: object | None = None, *, capture: bool = False) -> TracingObserver:
        return TracingObserver(
            FakeTransport() if transport is None else transport,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            capture_content=capture,
        )

    return make


def usage() -> Usage:
    return Usage(
        input_tokens=120,
        output_tokens=45,
        input_token_details={
            "text_tokens": 20,
            "audio_tokens": 100,
            "cached_tokens": 64,
            "cached_tokens_details": {"text_tokens": 16, "audio_tokens": 48},
        },
        output_token_details={"text_tokens": 9, "audio_tokens": 36},
    )


def spoken(response_id: str, text: str) -> tuple[Mapping[str, Any], ...]:
    return (
        {
            "type": "message",
            "id": f"item_{response_id}",
            "role": "assistant",
            "content": [{"type": "output_audio", "transcript": text}],
        },
    )


def append(observer: TracingObserver) -> None:
    payload = {"type": "input_audio_buffer.append", "audio": CALLER_B64}
    observer.on_client_event("input_audio_buffer.append", len(CALLER_B64) + 40, payload)


def model_audio(observer: TracingObserver, response_id: str) -> None:
    payload = {
        "type": "response.output_audio.delta",
        "response_id": response_id,
        "item_id": f"item_{response_id}",
        "delta": MODEL_B64,
    }
    observer.on_server_event("response.output_audio.delta", len(MODEL_B64) + 90, payload)


def run_call(observer: TracingObserver) -> None:
    """A call: a turn heard to the end, a barged-in turn, and a turn that calls a tool."""
    observer.on_connection_change("connecting")
    observer.on_connection_change("connected")
    session = {"model": "gpt-realtime-2025-08-28", "audio": {"output": {"format": PCM24}}}
    observer.on_server_event(
        "session.created", 300, {"type": "session.created", "session": session}
    )
    observer.on_call_start("CA0123", "MZ0456", AudioFormat.parse("audio/x-mulaw"))
    observer.on_client_event(
        "session.update",
        200,
        {"type": "session.update", "session": {"instructions": "be brief"}, "api_key": API_KEY},
    )

    # Turn 1: heard to the end.
    observer.on_speech_started()
    for _ in range(3):
        append(observer)
    observer.on_speech_stopped()
    observer.on_client_event(
        "conversation.item.create",
        120,
        {
            "type": "conversation.item.create",
            "item": {"role": "user", "content": [{"type": "input_text", "text": "call me back"}]},
        },
    )
    observer.on_server_event(
        "conversation.item.input_audio_transcription.completed",
        150,
        {"item_id": "item_user_1", "transcript": "what's the weather"},
    )
    observer.on_turn_started("resp_1")
    model_audio(observer, "resp_1")
    observer.on_first_audio("resp_1", 412.5)
    observer.on_audio_to_caller(800)  # 100 ms of 8 kHz mu-law
    observer.on_playback_acknowledged("vw-1")
    observer.on_turn_done(
        TurnDoneEvent(
            response_id="resp_1",
            status="completed",
            output=spoken("resp_1", "It is sunny."),
            usage=usage(),
        )
    )
    observer.on_playback_acknowledged("vw-2")

    # Turn 2: the caller barges in while it plays, after the model finished generating it.
    observer.on_speech_started()  # turn 1 was over by then: no interruption follows
    observer.on_speech_stopped()
    observer.on_turn_started("resp_2")
    model_audio(observer, "resp_2")
    observer.on_first_audio("resp_2", 380.0)
    observer.on_audio_to_caller(1600)
    observer.on_turn_done(
        TurnDoneEvent(response_id="resp_2", status="completed", output=spoken("resp_2", "Well"))
    )
    observer.on_speech_started()
    observer.on_interruption(
        AudioInterruptedEvent(
            response_id="resp_2",
            truncations=(Truncation(item_id="item_resp_2", content_index=0, audio_end_ms=150),),
        )
    )
    observer.on_speech_stopped()

    # Turn 3: a tool call, answered after the response is done.
    observer.on_turn_started("resp_3")
    observer.on_function_call(
        FunctionCallEvent(
            name="get_weather",
            call_id="call_7",
            arguments='{"city": "Paris"}',
            item_id="item_fc",
            response_id="resp_3",
        )
    )
    observer.on_turn_done(
        TurnDoneEvent(
            response_id="resp_3",
            status="completed",
            output=(
                {
                    "type": "function_call",
                    "call_id": "call_7",
                    "name": "get_weather",
                    "arguments": '{"city": "Paris"}',
                },
            ),
        )
    )
    observer.on_function_call_output("call_7", '{"temperature": 21}')
    observer.on_error(
        ErrorEvent(
            message=f"Incorrect API key provided: {API_KEY}",
            source="server",
            code="invalid_api_key",
            details={"raw": {"api_key": API_KEY}},
        )
    )
    observer.on_connection_change("disconnecting")
    observer.on_connection_change("disconnected")
    observer.on_close(f"caller hung up (token={TWILIO_TOKEN})")


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return {
        key: (list(v) if isinstance(v, tuple) else v) for key, v in (span.attributes or {}).items()
    }


def events(span: ReadableSpan) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            event.name,
            {
                k: (list(v) if isinstance(v, tuple) else v)
                for k, v in (event.attributes or {}).items()
            },
        )
        for event in span.events
    ]


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            assert scope_metrics.scope.name == "voicewire"
            for metric in scope_metrics.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def pop_timing(attrs: dict[str, Any], key: str) -> None:
    value = attrs.pop(key)
    assert isinstance(value, float)
    assert value >= 0


# -- the span tree -------------------------------------------------------------------------------


def test_span_tree_of_a_call(
    make_observer: Any, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    run_call(make_observer())
    spans = exporter.get_finished_spans()

    assert sorted(span.name for span in spans) == [
        "voicewire.function_call",
        "voicewire.session",
        "voicewire.turn",
        "voicewire.turn",
        "voicewire.turn",
    ]
    (session,) = by_name(spans, "voicewire.session")
    turns = sorted(by_name(spans, "voicewire.turn"), key=lambda s: s.start_time or 0)
    (call,) = by_name(spans, "voicewire.function_call")

    assert session.parent is None
    assert session.kind is SpanKind.CLIENT
    assert session.context is not None
    for span in (*turns, call):
        assert span.context is not None
        assert span.context.trace_id == session.context.trace_id
    assert [turn.parent.span_id for turn in turns if turn.parent] == [session.context.span_id] * 3
    assert call.parent is not None
    assert turns[2].context is not None
    assert call.parent.span_id == turns[2].context.span_id
    assert {span.instrumentation_scope.name for span in spans if span.instrumentation_scope} == {
        "voicewire"
    }
    # Nothing was ended twice or touched after its end.
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]


def test_session_attributes_and_events(make_observer: Any, exporter: InMemorySpanExporter) -> None:
    run_call(make_observer())
    (session,) = by_name(exporter.get_finished_spans(), "voicewire.session")

    attrs = attributes(session)
    pop_timing(attrs, "voicewire.session.connect_ms")
    assert attrs == {
        "voicewire.transport": "openai_ws",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-realtime",
        "gen_ai.response.model": "gpt-realtime-2025-08-28",
        "voicewire.call_sid": "CA0123",
        "voicewire.stream_sid": "MZ0456",
        "voicewire.close_reason": "caller hung up (token=***)",
        "voicewire.session.turns": 3,
        "voicewire.session.interruptions": 1,
        "voicewire.session.reconnects": 0,
        "voicewire.session.errors": 1,
        "voicewire.session.client_events": 5,
        "voicewire.session.server_events": 4,
        "voicewire.session.audio_in_bytes": 3 * len(CALLER_AUDIO),
        "voicewire.session.audio_out_bytes": 2 * len(MODEL_AUDIO),
        "voicewire.session.audio_to_caller_bytes": 2400,
    }
    assert events(session) == [
        ("voicewire.connection", {"voicewire.connection.status": "connecting"}),
        ("voicewire.connection", {"voicewire.connection.status": "connected"}),
        ("voicewire.speech_started", {}),
        ("voicewire.speech_stopped", {}),
        ("voicewire.speech_started", {}),
        ("voicewire.speech_stopped", {}),
        ("voicewire.speech_started", {}),
        ("voicewire.speech_stopped", {}),
        (
            "voicewire.error",
            {
                "voicewire.error.source": "server",
                "error.type": "invalid_api_key",
                "voicewire.error.message": "Incorrect API key provided: ***",
            },
        ),
        ("voicewire.connection", {"voicewire.connection.status": "disconnecting"}),
        ("voicewire.connection", {"voicewire.connection.status": "disconnected"}),
    ]


def test_turn_heard_to_the_end(make_observer: Any, exporter: InMemorySpanExporter) -> None:
    run_call(make_observer())
    turn = next(
        s
        for s in by_name(exporter.get_finished_spans(), "voicewire.turn")
        if attributes(s)["gen_ai.response.id"] == "resp_1"
    )

    assert attributes(turn) == {
        "gen_ai.response.id": "resp_1",
        "gen_ai.request.model": "gpt-realtime",
        "voicewire.turn.status": "completed",
        "voicewire.turn.time_to_first_audio_ms": 412.5,
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 45,
        "voicewire.usage.input_text_tokens": 20,
        "voicewire.usage.input_audio_tokens": 100,
        "gen_ai.usage.cache_read.input_tokens": 64,
        "voicewire.usage.input_cached_tokens": 64,
        "voicewire.usage.input_cached_text_tokens": 16,
        "voicewire.usage.input_cached_audio_tokens": 48,
        "voicewire.usage.output_text_tokens": 9,
        "voicewire.usage.output_audio_tokens": 36,
        "voicewire.turn.interrupted": False,
        "voicewire.turn.audio_received_bytes": len(MODEL_AUDIO),
        "voicewire.turn.audio_received_ms": round(len(MODEL_AUDIO) / 48, 1),
        "voicewire.turn.audio_sent_bytes": 800,
        "voicewire.turn.audio_sent_ms": 100.0,
        "voicewire.turn.audio_heard_ms": 100.0,
        "voicewire.turn.playback_acks": 2,
    }
    assert turn.status.status_code is StatusCode.UNSET
    assert events(turn) == [
        ("voicewire.first_audio", {"voicewire.turn.time_to_first_audio_ms": 412.5}),
        ("voicewire.playback_acknowledged", {"voicewire.mark": "vw-1"}),
        ("voicewire.playback_acknowledged", {"voicewire.mark": "vw-2"}),
    ]


def test_barged_in_turn_ends_at_the_interruption(
    make_observer: Any, exporter: InMemorySpanExporter
) -> None:
    run_call(make_observer())
    turn = next(
        s
        for s in by_name(exporter.get_finished_spans(), "voicewire.turn")
        if attributes(s)["gen_ai.response.id"] == "resp_2"
    )

    attrs = attributes(turn)
    assert attrs == {
        "gen_ai.response.id": "resp_2",
        "gen_ai.request.model": "gpt-realtime",
        "voicewire.turn.status": "completed",
        "voicewire.turn.time_to_first_audio_ms": 380.0,
        "voicewire.turn.interrupted": True,
        "voicewire.turn.truncated_item_id": "item_resp_2",
        "voicewire.turn.truncated_at_ms": 150,
        "voicewire.turn.audio_received_bytes": len(MODEL_AUDIO),
        "voicewire.turn.audio_received_ms": round(len(MODEL_AUDIO) / 48, 1),
        "voicewire.turn.audio_sent_bytes": 1600,
        "voicewire.turn.audio_sent_ms": 200.0,
        "voicewire.turn.audio_heard_ms": 150.0,
        "voicewire.turn.playback_acks": 0,
    }
    (first_audio, interruption) = events(turn)
    assert first_audio == (
        "voicewire.first_audio",
        {"voicewire.turn.time_to_first_audio_ms": 380.0},
    )
    name, details = interruption
    assert name == "voicewire.interruption"
    pop_timing(details, "voicewire.interruption.clear_latency_ms")
    assert details == {
        "gen_ai.response.id": "resp_2",
        "voicewire.truncation.item_ids": ["item_resp_2"],
        "voicewire.truncation.audio_end_ms": [150],
    }
    # The span ends at the interruption, which came after the model finished the response.
    assert turn.end_time is not None
    assert turn.end_time >= turn.events[1].timestamp


def test_function_call_span(make_observer: Any, exporter: InMemorySpanExporter) -> None:
    run_call(make_observer())
    spans = exporter.get_finished_spans()
    (call,) = by_name(spans, "voicewire.function_call")
    turn = next(
        s
        for s in by_name(spans, "voicewire.turn")
        if attributes(s)["gen_ai.response.id"] == "resp_3"
    )

    assert attributes(call) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": "call_7",
        "gen_ai.response.id": "resp_3",
        "voicewire.function_call.answered": True,
    }
    # A response without audio cannot be interrupted: it ends when the model is done.
    assert attributes(turn) == {
        "gen_ai.response.id": "resp_3",
        "gen_ai.request.model": "gpt-realtime",
        "voicewire.turn.status": "completed",
        "voicewire.turn.interrupted": False,
        "voicewire.turn.audio_received_bytes": 0,
        "voicewire.turn.audio_received_ms": 0.0,
        "voicewire.turn.audio_sent_bytes": 0,
        "voicewire.turn.audio_sent_ms": 0.0,
        "voicewire.turn.playback_acks": 0,
    }


def test_metrics_of_a_call(make_observer: Any, reader: InMemoryMetricReader) -> None:
    run_call(make_observer())
    points = metric_points(reader)
    base = {"voicewire.transport": "openai_ws", "gen_ai.system": "openai"}

    assert sorted(points) == sorted(
        [
            "voicewire.turn.time_to_first_audio",
            "voicewire.turn.duration",
            "voicewire.interruption.clear_latency",
            "voicewire.interruptions",
            "voicewire.errors",
            "voicewire.audio.bytes",
            "gen_ai.client.token.usage",
        ]
    )
    (ttfa,) = points["voicewire.turn.time_to_first_audio"]
    assert dict(ttfa.attributes) == base
    assert (ttfa.count, ttfa.sum) == (2, 412.5 + 380.0)
    durations = {
        p.attributes["voicewire.turn.interrupted"]: p.count
        for p in points["voicewire.turn.duration"]
    }
    assert durations == {False: 2, True: 1}
    (clear,) = points["voicewire.interruption.clear_latency"]
    assert clear.count == 1
    (interruptions,) = points["voicewire.interruptions"]
    assert interruptions.value == 1
    (errors,) = points["voicewire.errors"]
    assert dict(errors.attributes) == {
        **base,
        "voicewire.error.source": "server",
        "error.type": "invalid_api_key",
    }
    audio = {p.attributes["direction"]: p.value for p in points["voicewire.audio.bytes"]}
    assert audio == {"in": 3 * len(CALLER_AUDIO), "out": 2 * len(MODEL_AUDIO)}
    tokens = {
        p.attributes["gen_ai.token.type"]: (p.count, p.sum)
        for p in points["gen_ai.client.token.usage"]
    }
    assert tokens == {"input": (1, 120), "output": (1, 45)}
    assert "voicewire.reconnects" not in points


# -- content capture and secrets ------------------------------------------------------------------


CONTENT = ("It is sunny.", "Well", "Paris", "temperature", "what's the weather", "call me back")


def everything_recorded(exporter: InMemorySpanExporter, reader: InMemoryMetricReader) -> list[str]:
    """Every attribute key and value of every span, span event, resource and metric point."""
    texts: list[str] = []

    def add(mapping: Mapping[str, Any] | None) -> None:
        for key, value in (mapping or {}).items():
            texts.append(key)
            texts.extend(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))

    for span in exporter.get_finished_spans():
        texts.append(span.name)
        add(span.attributes)
        texts.append(str(span.status.description))
        for event in span.events:
            texts.append(event.name)
            add(event.attributes)
        for link in span.links:
            add(link.attributes)
    for points in metric_points(reader).values():
        for point in points:
            add(point.attributes)
    return texts


def test_content_is_absent_by_default(
    make_observer: Any, exporter: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    observer = make_observer()
    assert not observer.capture_content
    run_call(observer)
    recorded = "\n".join(everything_recorded(exporter, reader))
    for text in CONTENT:
        assert text not in recorded
    for key in ("gen_ai.output.messages", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result"):
        assert key not in recorded
    assert "voicewire.input_transcript" not in recorded
    assert "voicewire.user_message" not in recorded


def test_content_is_recorded_when_enabled(
    make_observer: Any, exporter: InMemorySpanExporter
) -> None:
    run_call(make_observer(capture=True))
    spans = exporter.get_finished_spans()
    turns = {attributes(s)["gen_ai.response.id"]: s for s in by_name(spans, "voicewire.turn")}
    (call,) = by_name(spans, "voicewire.function_call")
    (session,) = by_name(spans, "voicewire.session")

    assert attributes(turns["resp_1"])["gen_ai.output.messages"] == (
        '[{"role": "assistant", "parts": [{"type": "text", "content": "It is sunny."}],'
        ' "finish_reason": "completed"}]'
    )
    assert '"type": "tool_call"' in attributes(turns["resp_3"])["gen_ai.output.messages"]
    assert attributes(call)["gen_ai.tool.call.arguments"] == '{"city": "Paris"}'
    assert attributes(call)["gen_ai.tool.call.result"] == '{"temperature": 21}'
    assert ("voicewire.user_message", {"voicewire.text": "call me back"}) in events(session)
    assert (
        "voicewire.input_transcript",
        {"voicewire.transcript": "what's the weather", "voicewire.item_id": "item_user_1"},
    ) in events(session)


def test_capture_content_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tracer_provider: TracerProvider
) -> None:
    monkeypatch.delenv(CAPTURE_CONTENT_ENV_VAR, raising=False)
    assert not capture_content_from_env()
    assert not TracingObserver(tracer_provider=tracer_provider).capture_content
    for word in ("true", "1", "YES", " on "):
        monkeypatch.setenv(CAPTURE_CONTENT_ENV_VAR, word)
        assert TracingObserver(tracer_provider=tracer_provider).capture_content
    monkeypatch.setenv(CAPTURE_CONTENT_ENV_VAR, "false")
    assert not TracingObserver(tracer_provider=tracer_provider).capture_content
    # An explicit option wins over the environment.
    monkeypatch.setenv(CAPTURE_CONTENT_ENV_VAR, "true")
    assert not TracingObserver(
        tracer_provider=tracer_provider, capture_content=False
    ).capture_content


@pytest.mark.parametrize("capture", [False, True])
def test_no_secret_or_audio_in_any_attribute(
    make_observer: Any,
    exporter: InMemorySpanExporter,
    reader: InMemoryMetricReader,
    capture: bool,
) -> None:
    run_call(make_observer(capture=capture))
    recorded = everything_recorded(exporter, reader)
    assert len(recorded) > 100
    joined = "\n".join(recorded)
    for secret in (API_KEY, API_KEY[8:], TWILIO_TOKEN):
        assert secret not in joined
    for audio in (CALLER_B64, MODEL_B64, CALLER_B64[:24], MODEL_B64[:24]):
        assert audio not in joined
    assert not any(isinstance(value, bytes) for value in recorded)


def test_scrub_removes_credentials() -> None:
    assert scrub(f"bad key {API_KEY}!") == "bad key ***!"
    assert scrub("Authorization: Bearer abc.def-123456") == "Authorization: ***"
    assert scrub("header Bearer abcdef123456 rejected") == "header Bearer *** rejected"
    assert scrub("url ?token=abcd1234&x=1") == "url ?token=***&x=1"
    assert scrub('api_key="zzzz9999"') == 'api_key=***"'
    assert scrub("the connection was closed") == "the connection was closed"
    assert scrub("x" * 5000).endswith("...")
    assert len(scrub("x" * 5000)) == 4096


# -- turn boundaries -----------------------------------------------------------------------------


def test_interruption_before_the_response_is_done(
    make_observer: Any, exporter: InMemorySpanExporter
) -> None:
    observer = make_observer()
    observer.on_turn_started("resp_1")
    model_audio(observer, "resp_1")
    observer.on_speech_started()
    observer.on_interruption(AudioInterruptedEvent(response_id="resp_1"))
    observer.on_speech_stopped()
    assert not by_name(exporter.get_finished_spans(), "voicewire.turn")  # waits for turn_done
    observer.on_turn_done(TurnDoneEvent(response_id="resp_1", status="cancelled"))
    (turn,) = by_name(exporter.get_finished_spans(), "voicewire.turn")
    assert attributes(turn)["voicewire.turn.status"] == "cancelled"
    assert attributes(turn)["voicewire.turn.interrupted"] is True
    # It ends at the interruption, not when the cancelled response was reported done.
    speech_stopped = cast("ReadableSpan", observer.session_span).events[-1]
    assert speech_stopped.name == "voicewire.speech_stopped"
    assert turn.end_time is not None
    assert turn.events[-1].timestamp <= turn.end_time <= speech_stopped.timestamp


def test_a_turn_still_playing_ends_at_the_next_turn(
    make_observer: Any, exporter: InMemorySpanExporter
) -> None:
    observer = make_observer()
    observer.on_turn_started("resp_1")
    model_audio(observer, "resp_1")
    observer.on_turn_done(TurnDoneEvent(response_id="resp_1", status="completed"))
    assert not by_name(exporter.get_finished_spans(), "voicewire.turn")
    observer.on_turn_started("resp_2")
    (turn,) = by_name(exporter.get_finished_spans(), "voicewire.turn")
    assert attributes(turn)["gen_ai.response.id"] == "resp_1"
    assert attributes(turn)["voicewire.turn.interrupted"] is False


def test_failed_turn_has_error_status(make_observer: Any, exporter: InMemorySpanExporter) -> None:
    observer = make_observer()
    observer.on_turn_started("resp_1")
    observer.on_turn_done(TurnDoneEvent(response_id="resp_1", status="failed"))
    (turn,) = by_name(exporter.get_finished_spans(), "voicewire.turn")
    assert turn.status.status_code is StatusCode.ERROR


def test_turn_done_without_a_start_and_twice(
    make_observer: Any, exporter: InMemorySpanExporter
) -> None:
    observer = make_observer()
    observer.on_turn_done(TurnDoneEvent(response_id="resp_9", status="completed"))
    observer.on_turn_done(TurnDoneEvent(response_id="resp_9", status="completed"))
    (turn,) = by_name(exporter.get_finished_spans(), "voicewire.turn")
    assert attributes(turn)["gen_ai.response.id"] == "resp_9"


def test_reconnect_ends_the_response_in_flight(
    make_observer: Any, exporter: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    observer = make_observer()
    observer.on_connection_change("connecting")
    observer.on_connection_change("connected")
    observer.on_turn_started("resp_1")
    observer.on_connection_change("connecting")
    observer.on_connection_change("connected")
    observer.on_reconnect(1, True)
    observer.on_close(None)

    spans = exporter.get_finished_spans()
    (turn,) = by_name(spans, "voicewire.turn")
    assert attributes(turn)["voicewire.turn.ended_by"] == "connection_lost"
    (session,) = by_name(spans, "voicewire.session")
    assert (
        "voicewire.reconnect",
        {"voicewire.reconnect.attempt": 1, "voicewire.reconnect.state_restored": True},
    ) in events(session)
    assert attributes(session)["voicewire.session.reconnects"] == 1
    assert "voicewire.close_reason" not in attributes(session)
    (reconnects,) = metric_points(reader)["voicewire.reconnects"]
    assert reconnects.value == 1


def test_close_ends_everything_still_open(
    make_observer: Any, exporter: InMemorySpanExporter
) -> None:
    observer = make_observer()
    observer.on_turn_started("resp_1")
    observer.on_function_call(FunctionCallEvent(name="lookup", call_id="c1", arguments="{}"))
    observer.on_close("bye")
    observer.on_close("again")  # ignored
    observer.on_turn_started("resp_2")  # ignored after close
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == [
        "voicewire.function_call",
        "voicewire.session",
        "voicewire.turn",
    ]
    (turn,) = by_name(spans, "voicewire.turn")
    assert attributes(turn)["voicewire.turn.ended_by"] == "closed"
    (call,) = by_name(spans, "voicewire.function_call")
    assert attributes(call)["voicewire.function_call.answered"] is False
    assert observer.closed


def test_playback_acknowledgement_events_are_capped(
    make_observer: Any, exporter: InMemorySpanExporter
) -> None:
    observer = make_observer()
    observer.on_turn_started("resp_1")
    for index in range(MAX_ACK_EVENTS_PER_TURN + 50):
        observer.on_audio_to_caller(160)
        observer.on_playback_acknowledged(f"m{index}")
    observer.on_close(None)
    (turn,) = by_name(exporter.get_finished_spans(), "voicewire.turn")
    assert len(turn.events) == MAX_ACK_EVENTS_PER_TURN
    assert attributes(turn)["voicewire.turn.playback_acks"] == MAX_ACK_EVENTS_PER_TURN + 50


def test_frames_create_no_span_and_no_event(
    make_observer: Any, exporter: InMemorySpanExporter
) -> None:
    observer = make_observer()
    observer.on_turn_started("resp_1")
    session_span = cast("ReadableSpan", observer.session_span)
    session_events = len(session_span.events)
    for _ in range(500):
        append(observer)
        model_audio(observer, "resp_1")
        observer.on_server_event("response.output_audio_transcript.delta", 80, None)
        observer.on_client_event("input_audio_buffer.append", 4000, None)
        observer.on_audio_to_caller(160)
    assert len(session_span.events) == session_events
    assert exporter.get_finished_spans() == ()
    assert observer.client_events == 1000
    assert observer.server_events == 1000


def test_missing_on_close_is_ended_by_the_next_session(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    transport = FakeTransport()
    first = TracingObserver(transport, tracer_provider=tracer_provider)
    first.on_connection_change("connecting")
    first.on_connection_change("disconnected")
    assert not first.closed  # on_close may still come, with a reason
    second = TracingObserver(transport, tracer_provider=tracer_provider)
    assert [first.closed, second.closed] == [True, False]
    assert len(by_name(exporter.get_finished_spans(), "voicewire.session")) == 1


def test_model_and_system_come_from_the_transport(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    class Custom:
        transport_id = "acme"
        gen_ai_system = "acme_ai"
        model: str | None = None

    transport = Custom()
    observer = TracingObserver(transport, tracer_provider=tracer_provider)
    transport.model = "acme-voice-1"  # known only once connected
    observer.on_connection_change("connecting")
    observer.on_connection_change("connected")
    observer.on_close(None)
    (session,) = by_name(exporter.get_finished_spans(), "voicewire.session")
    attrs = attributes(session)
    assert attrs["voicewire.transport"] == "acme"
    assert attrs["gen_ai.system"] == "acme_ai"
    assert attrs["gen_ai.request.model"] == "acme-voice-1"


# -- no SDK, no observer --------------------------------------------------------------------------


def test_no_observer_without_an_sdk() -> None:
    # The test process never installs global providers: the API's proxies are in place.
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert not tracing_active()
    assert create_observer(FakeTransport()) is None
    assert (
        create_observer(
            FakeTransport(),
            tracer_provider=NoOpTracerProvider(),
            meter_provider=NoOpMeterProvider(),
        )
        is None
    )


def test_no_observer_when_the_sdk_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    tracer_provider = TracerProvider()
    meter_provider = MeterProvider()
    try:
        assert (
            create_observer(
                FakeTransport(), tracer_provider=tracer_provider, meter_provider=meter_provider
            )
            is None
        )
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()


def test_metrics_only(meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    observer = create_observer(FakeTransport(), meter_provider=meter_provider)
    assert isinstance(observer, TracingObserver)
    observer.on_turn_started("resp_1")
    observer.on_first_audio("resp_1", 250.0)
    observer.on_close(None)
    (ttfa,) = metric_points(reader)["voicewire.turn.time_to_first_audio"]
    assert ttfa.sum == 250.0


def test_spans_only(tracer_provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    observer = create_observer(FakeTransport(), tracer_provider=tracer_provider)
    assert isinstance(observer, TracingObserver)
    run_call(observer)
    assert len(exporter.get_finished_spans()) == 5


# -- fan-out ------------------------------------------------------------------------------------


class Broken:
    def on_turn_started(self, response_id: str | None) -> None:
        raise RuntimeError("observer bug")


def test_a_raising_observer_is_dropped_and_tracing_goes_on(
    make_observer: Any, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Broken()
    tracing = make_observer()
    fanout = ObserverFanout([broken, tracing])
    fanout.notify("on_connection_change", "connecting")
    fanout.notify("on_turn_started", "resp_1")
    fanout.notify("on_turn_done", TurnDoneEvent(response_id="resp_1", status="completed"))
    fanout.notify("on_close", "done")
    assert fanout.observers == (tracing,)
    assert "raised in on_turn_started" in caplog.text
    assert sorted(s.name for s in exporter.get_finished_spans()) == [
        "voicewire.session",
        "voicewire.turn",
    ]


def test_tracing_implements_the_observer_protocol_methods() -> None:
    from voicewire.observer import OBSERVER_METHODS

    missing = {name for name in OBSERVER_METHODS if not hasattr(TracingObserver, name)}
    assert missing == set()


# -- propagation --------------------------------------------------------------------------------


def test_traceparent_headers_name_the_session_span(make_observer: Any) -> None:
    transport = FakeTransport()
    observer = make_observer(transport)
    observer.on_connection_change("connecting")
    span_context = observer.session_span.get_span_context()

    headers = traceparent_headers(transport)
    assert headers == observer.traceparent_headers()
    assert headers == {
        "traceparent": f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
        f"-{span_context.trace_flags:02x}"
    }
    observer.on_close(None)
    assert traceparent_headers(transport) == {}


def test_traceparent_headers_never_carry_baggage(tracer_provider: TracerProvider) -> None:
    tracer = tracer_provider.get_tracer("test")
    ctx = baggage.set_baggage("user.email", "someone@example.com")
    token = otel_context.attach(ctx)
    try:
        with tracer.start_as_current_span("app"):
            headers = traceparent_headers()
    finally:
        otel_context.detach(token)
    assert set(headers) == {"traceparent"}
    assert "example.com" not in str(headers)


def test_traceparent_headers_without_an_sdk() -> None:
    assert traceparent_headers() == {}
    assert traceparent_headers(FakeTransport()) == {}


def test_session_span_is_a_child_of_the_current_span(
    make_observer: Any, tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with tracer_provider.get_tracer("app").start_as_current_span("handle call") as app:
        observer = make_observer()
    observer.on_close(None)
    (session,) = by_name(exporter.get_finished_spans(), "voicewire.session")
    assert session.parent is not None
    assert session.parent.span_id == app.get_span_context().span_id


# -- audio counts reported by the transport -----------------------------------------------------


def test_explicit_audio_counts_replace_the_payload_ones(
    make_observer: Any, reader: InMemoryMetricReader, exporter: InMemorySpanExporter
) -> None:
    observer = make_observer()
    observer.on_turn_started("resp_1")
    observer.on_audio_to_model(320)
    append(observer)  # not counted any more: the transport reports bytes itself
    observer.on_audio_from_model("resp_1", 960)
    model_audio(observer, "resp_1")  # likewise
    observer.on_close(None)
    audio = {
        p.attributes["direction"]: p.value for p in metric_points(reader)["voicewire.audio.bytes"]
    }
    assert audio == {"in": 320, "out": 960}
    (turn,) = by_name(exporter.get_finished_spans(), "voicewire.turn")
    assert attributes(turn)["voicewire.turn.audio_received_bytes"] == 960


def test_payloads_are_optional(make_observer: Any, exporter: InMemorySpanExporter) -> None:
    observer = make_observer()
    observer.on_client_event("input_audio_buffer.append", 4000, None)
    observer.on_server_event("response.output_audio.delta", 4000, None)
    observer.on_server_event("session.created", 300, None)
    observer.on_server_event("session.updated", 300, {"session": "not a mapping"})
    observer.on_server_event(
        "session.updated", 300, {"session": {"audio": {"output": {"format": {"type": "nope"}}}}}
    )
    observer.on_close(None)
    (session,) = by_name(exporter.get_finished_spans(), "voicewire.session")
    assert attributes(session)["voicewire.session.audio_out_bytes"] == 0


# -- call bridges: one call, one trace -----------------------------------------------------------


class FakeEdge:
    class capabilities:
        audio_format = AudioFormat.parse("audio/x-mulaw")


class FakeBridge:
    """What the observer reads from a call bridge: ``model``, ``edge``, formats, ``call_id``."""

    transport_id = "bridge"
    edge = FakeEdge()
    model_audio_format = AudioFormat.parse("audio/pcm")
    call_id: str | None = None

    def __init__(self, model: object) -> None:
        self.model = model


def test_bridge_session_first_nests_the_model_session(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    exporter: InMemorySpanExporter,
    reader: InMemoryMetricReader,
) -> None:
    model = FakeTransport()
    bridge = FakeBridge(model)
    bridge_observer = create_observer(
        bridge, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    model_observer = create_observer(
        model, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    assert isinstance(bridge_observer, TracingObserver)
    assert isinstance(model_observer, TracingObserver)

    # The model transport reports the turn; the bridge reports what the caller heard.
    model_observer.on_speech_started()
    model_observer.on_turn_started("resp_1")
    bridge_observer.on_audio_to_caller(1600)
    bridge_observer.on_playback_acknowledged("vw-1")
    model_observer.on_turn_done(TurnDoneEvent(response_id="resp_1", status="completed"))
    bridge_observer.on_interruption(
        AudioInterruptedEvent(
            response_id="resp_1",
            truncations=(Truncation(item_id="item_1", content_index=0, audio_end_ms=120),),
        )
    )
    bridge.call_id = "CA9"
    model_observer.on_close("closed by the application")
    bridge_observer.on_close("caller hung up")

    spans = exporter.get_finished_spans()
    sessions = {
        attributes(s)["voicewire.transport"]: s for s in by_name(spans, "voicewire.session")
    }
    outer, inner = sessions["bridge"], sessions["openai_ws"]
    (turn,) = by_name(spans, "voicewire.turn")
    assert outer.parent is None
    assert outer.context is not None
    assert inner.context is not None
    assert inner.parent is not None
    assert inner.parent.span_id == outer.context.span_id
    assert turn.parent is not None
    assert turn.parent.span_id == inner.context.span_id
    assert attributes(outer) == {
        "voicewire.transport": "bridge",
        "voicewire.call_sid": "CA9",
        "voicewire.close_reason": "caller hung up",
        "voicewire.session.errors": 0,
        "voicewire.session.audio_to_caller_bytes": 1600,
    }
    turn_attributes = attributes(turn)
    assert turn_attributes["voicewire.turn.interrupted"] is True
    assert turn_attributes["voicewire.turn.audio_sent_ms"] == 200.0  # the edge's mu-law
    assert turn_attributes["voicewire.turn.audio_heard_ms"] == 120.0
    assert turn_attributes["voicewire.turn.playback_acks"] == 1
    assert attributes(inner)["voicewire.session.interruptions"] == 1
    (interruptions,) = metric_points(reader)["voicewire.interruptions"]
    assert interruptions.value == 1  # counted once, by the session that owns the turn


def test_model_session_first_takes_the_bridge_in(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    model = FakeTransport()
    bridge = FakeBridge(model)
    bridge.call_id = "CA7"
    model_observer = create_observer(model, tracer_provider=tracer_provider)
    link = create_observer(bridge, tracer_provider=tracer_provider)
    assert isinstance(model_observer, TracingObserver)
    assert isinstance(link, CallLinkObserver)
    assert link.target is model_observer
    assert link.session_context is model_observer.session_context

    model_observer.on_turn_started("resp_1")
    link.on_call_start("CA7", "MZ7", AudioFormat.parse("audio/x-mulaw"))
    link.on_audio_to_caller(800)
    link.on_playback_acknowledged("vw-1")
    link.on_error(ErrorEvent(message="mark lost", source="telephony", code="mark_lost"))
    link.on_interruption(AudioInterruptedEvent(response_id="resp_1"))
    model_observer.on_turn_done(TurnDoneEvent(response_id="resp_1", status="cancelled"))
    model_observer.on_connection_change("disconnected")
    model_observer.on_close("closed by the application")
    closed_before = model_observer.closed  # False: the call's close reason is the bridge's
    link.on_close("caller hung up")
    link.on_close("again")
    assert [closed_before, model_observer.closed] == [False, True]

    spans = exporter.get_finished_spans()
    (session,) = by_name(spans, "voicewire.session")
    attrs = attributes(session)
    assert attrs["voicewire.call_sid"] == "CA7"
    assert attrs["voicewire.stream_sid"] == "MZ7"
    assert attrs["voicewire.close_reason"] == "caller hung up"
    (turn,) = by_name(spans, "voicewire.turn")
    assert attributes(turn)["voicewire.turn.interrupted"] is True
    assert attributes(turn)["voicewire.turn.audio_sent_ms"] == 100.0
    assert "voicewire.error" in [name for name, _ in events(turn)]  # raised during the turn


def test_a_bridge_without_a_traced_model_has_its_own_session(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    observer = create_observer(FakeBridge(object()), tracer_provider=tracer_provider)
    assert isinstance(observer, TracingObserver)
    observer.on_close("done")
    (session,) = by_name(exporter.get_finished_spans(), "voicewire.session")
    assert attributes(session)["voicewire.transport"] == "bridge"
