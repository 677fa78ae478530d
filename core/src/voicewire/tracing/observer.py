"""OpenTelemetry spans and metrics for one transport session.

:class:`TracingObserver` turns the session observer notifications of
:class:`voicewire.observer.SessionObserver` into a ``voicewire.session`` span with ``voicewire.turn``
and ``voicewire.function_call`` children, span events, and a handful of metrics (meter
``voicewire``). It uses the OpenTelemetry *API* only: whoever runs the process chooses the SDK,
exporters and sampling (``voicewire serve --trace ...`` does it with :mod:`voicewire.tracing.sdk`).

Cost rules, because the transport calls these methods on its hot path:

* ``on_client_event``, ``on_server_event`` and ``on_audio_to_caller`` run once per frame. They only
  add to integers kept on the observer; byte counts reach the ``voicewire.audio.bytes`` counter in
  one call per turn and at the end of the session, and nothing creates a span per frame.
* Spans are created per session, per model response and per tool call; span events per
  connection change, speech start and stop, interruption, error and (up to a cap per turn)
  playback acknowledgement.
* :func:`create_observer` returns ``None`` when no OpenTelemetry SDK is configured, so an
  unconfigured process pays for one provider check per session and nothing per frame.

Secrets and audio never become telemetry: the observer reads only named, non-secret fields of
the messages it is shown (types, ids, sizes, statuses, token counts), never a header or a key,
and it removes anything shaped like a credential from error messages and close reasons.
Transcripts, message text, tool arguments and tool results are recorded only with
``capture_content`` on.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import weakref
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import Counter, Histogram, Meter, MeterProvider
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

    from voicewire.audio.formats import AudioFormat
    from voicewire.events import (
        AudioInterruptedEvent,
        ErrorEvent,
        FunctionCallEvent,
        TurnDoneEvent,
        Usage,
    )
    from voicewire.transport import TransportStatus

__all__ = [
    "CAPTURE_CONTENT_ENV_VAR",
    "INSTRUMENTATION_NAME",
    "METRIC_AUDIO_BYTES",
    "METRIC_ERRORS",
    "METRIC_INTERRUPTIONS",
    "METRIC_INTERRUPTION_CLEAR_LATENCY",
    "METRIC_RECONNECTS",
    "METRIC_TOKEN_USAGE",
    "METRIC_TURN_DURATION",
    "METRIC_TURN_TIME_TO_FIRST_AUDIO",
    "SPAN_FUNCTION_CALL",
    "SPAN_SESSION",
    "SPAN_TURN",
    "CallLinkObserver",
    "TracingObserver",
    "capture_content_from_env",
    "create_observer",
    "scrub",
    "traceparent_headers",
    "tracing_active",
]

CAPTURE_CONTENT_ENV_VAR: Final = "VOICEWIRE_TRACE_CAPTURE_CONTENT"
"""Set to ``true`` (or ``1``, ``yes``, ``on``) to record transcripts, message text and tool I/O."""

INSTRUMENTATION_NAME: Final = "voicewire"
"""The name of the tracer and of the meter."""

SPAN_SESSION: Final = "voicewire.session"
SPAN_TURN: Final = "voicewire.turn"
SPAN_FUNCTION_CALL: Final = "voicewire.function_call"

METRIC_TURN_TIME_TO_FIRST_AUDIO: Final = "voicewire.turn.time_to_first_audio"
METRIC_TURN_DURATION: Final = "voicewire.turn.duration"
METRIC_INTERRUPTION_CLEAR_LATENCY: Final = "voicewire.interruption.clear_latency"
METRIC_INTERRUPTIONS: Final = "voicewire.interruptions"
METRIC_RECONNECTS: Final = "voicewire.reconnects"
METRIC_ERRORS: Final = "voicewire.errors"
METRIC_AUDIO_BYTES: Final = "voicewire.audio.bytes"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"

# Span event names.
EVENT_CONNECTION: Final = "voicewire.connection"
EVENT_SPEECH_STARTED: Final = "voicewire.speech_started"
EVENT_SPEECH_STOPPED: Final = "voicewire.speech_stopped"
EVENT_FIRST_AUDIO: Final = "voicewire.first_audio"
EVENT_INTERRUPTION: Final = "voicewire.interruption"
EVENT_PLAYBACK_ACKNOWLEDGED: Final = "voicewire.playback_acknowledged"
EVENT_ERROR: Final = "voicewire.error"
EVENT_RECONNECT: Final = "voicewire.reconnect"
EVENT_INPUT_TRANSCRIPT: Final = "voicewire.input_transcript"
EVENT_USER_MESSAGE: Final = "voicewire.user_message"

MAX_ACK_EVENTS_PER_TURN: Final = 32
"""Playback acknowledgements beyond this many per turn are counted, not recorded as events."""

MAX_TEXT_LENGTH: Final = 4096
"""Longer captured text (and error messages) is cut to this many characters."""

_TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})

# Known transports whose GenAI system is fixed. A transport can also say it itself with a
# ``gen_ai_system`` attribute, which wins.
_KNOWN_SYSTEMS: Final[Mapping[str, str]] = {"openai_ws": "openai", "openai": "openai"}

# OpenAI Realtime message types the observer looks at. GA names first, beta names after.
_AUDIO_OUT_TYPES: Final = frozenset({"response.output_audio.delta", "response.audio.delta"})
_AUDIO_IN_TYPE: Final = "input_audio_buffer.append"
_SESSION_TYPES: Final = frozenset({"session.created", "session.updated"})
_INPUT_TRANSCRIPT_TYPE: Final = "conversation.item.input_audio_transcription.completed"
_USER_MESSAGE_TYPE: Final = "conversation.item.create"

# The API's proxy meter provider (what ``get_meter_provider()`` returns before an SDK is set) is
# not public; it is recognised by class name, the public no-op class by type.
_PROXY_METER_PROVIDER_NAMES: Final = frozenset({"_ProxyMeterProvider", "ProxyMeterProvider"})

_MS_BOUNDARIES: Final = (
    10.0, 25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0, 750.0,
    1000.0, 1500.0, 2000.0, 3000.0, 5000.0, 10000.0,
)  # fmt: skip
_DURATION_BOUNDARIES: Final = (
    100.0, 250.0, 500.0, 1000.0, 2000.0, 3000.0, 5000.0, 7500.0, 10000.0,
    15000.0, 20000.0, 30000.0, 60000.0, 120000.0,
)  # fmt: skip
_TOKEN_BOUNDARIES: Final = (
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0,
)  # fmt: skip

# Anything shaped like a credential, in free text that reaches telemetry (error messages, close
# reasons). Applied to a handful of strings per session, never per frame.
_SECRET_PATTERNS: Final = (
    re.compile(r"\b(?:sk|rk|ek|pk)[-_][A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=\-]{6,}"),
    re.compile(
        r"(?i)\b(api[_-]?key|auth[_-]?token|access[_-]?token|token|secret|password|"
        r"authorization|signature)(\s*[=:]\s*)[\"']?(?:(?:bearer|basic)\s+)?"
        r"[^\s\"',;&)\]}]{4,}"
    ),
)
_REDACTED: Final = "***"


def scrub(text: str, limit: int = MAX_TEXT_LENGTH) -> str:
    """Remove anything shaped like a credential from ``text`` and cut it to ``limit`` characters.

    Keys (``sk-...``), bearer and basic credentials, and ``token=...``-style pairs are replaced
    with ``***``. Used on error messages and close reasons before they become attributes.

    Args:
        text: Free text.
        limit: Maximum length of the result.

    Returns:
        The cleaned text.
    """
    text = _SECRET_PATTERNS[0].sub(_REDACTED, text)
    text = _SECRET_PATTERNS[2].sub(lambda m: m.group(1) + m.group(2) + _REDACTED, text)
    text = _SECRET_PATTERNS[1].sub(lambda m: m.group(0).split()[0] + " " + _REDACTED, text)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _limit(text: str) -> str:
    return text if len(text) <= MAX_TEXT_LENGTH else text[: MAX_TEXT_LENGTH - 3] + "..."


def capture_content_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``VOICEWIRE_TRACE_CAPTURE_CONTENT`` asks for content capture.

    Args:
        environ: Where to read the variable; ``os.environ`` by default.

    Returns:
        ``True`` for ``true``, ``1``, ``yes`` or ``on`` (any case), else ``False``.
    """
    value = (os.environ if environ is None else environ).get(CAPTURE_CONTENT_ENV_VAR, "")
    return value.strip().lower() in _TRUE_WORDS


# -- is an SDK configured? ---------------------------------------------------------------------


def _tracer_provider_active(provider: TracerProvider) -> bool:
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def _meter_provider_active(provider: MeterProvider) -> bool:
    if isinstance(provider, metrics.NoOpMeterProvider):
        return False
    return type(provider).__name__ not in _PROXY_METER_PROVIDER_NAMES


def _version() -> str:
    from voicewire import __version__  # the package is loaded by whoever created a transport

    return __version__


def _tracer_of(provider: TracerProvider) -> Tracer | None:
    if not _tracer_provider_active(provider):
        return None
    tracer = provider.get_tracer(INSTRUMENTATION_NAME, _version())
    # An SDK disabled with OTEL_SDK_DISABLED hands out no-op tracers.
    return None if isinstance(tracer, trace.NoOpTracer) else tracer


def _meter_of(provider: MeterProvider) -> Meter | None:
    if not _meter_provider_active(provider):
        return None
    meter = provider.get_meter(INSTRUMENTATION_NAME, _version())
    return None if isinstance(meter, metrics.NoOpMeter) else meter


def tracing_active(
    tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
) -> bool:
    """Whether an OpenTelemetry SDK would record anything voicewire reports.

    The API's defaults (the proxy providers returned before an SDK is installed, and the no-op
    providers) and an SDK disabled with ``OTEL_SDK_DISABLED=true`` record nothing.

    Args:
        tracer_provider: The tracer provider to check; the global one by default.
        meter_provider: The meter provider to check; the global one by default.

    Returns:
        ``True`` if spans or metrics would be recorded.
    """
    tp = trace.get_tracer_provider() if tracer_provider is None else tracer_provider
    mp = metrics.get_meter_provider() if meter_provider is None else meter_provider
    return _tracer_of(tp) is not None or _meter_of(mp) is not None


# -- metrics instruments -----------------------------------------------------------------------


@attrs.frozen
class _Instruments:
    time_to_first_audio: Histogram
    turn_duration: Histogram
    clear_latency: Histogram
    token_usage: Histogram
    interruptions: Counter
    reconnects: Counter
    errors: Counter
    audio_bytes: Counter

    @classmethod
    def create(cls, meter: Meter) -> _Instruments:
        return cls(
            time_to_first_audio=meter.create_histogram(
                METRIC_TURN_TIME_TO_FIRST_AUDIO,
                unit="ms",
                description="Time from the end of the caller's speech to the first audio of the"
                " model's response.",
                explicit_bucket_boundaries_advisory=_MS_BOUNDARIES,
            ),
            turn_duration=meter.create_histogram(
                METRIC_TURN_DURATION,
                unit="ms",
                description="Duration of a model response, until it is done or interrupted.",
                explicit_bucket_boundaries_advisory=_DURATION_BOUNDARIES,
            ),
            clear_latency=meter.create_histogram(
                METRIC_INTERRUPTION_CLEAR_LATENCY,
                unit="ms",
                description="Time from the start of the caller's speech to the interruption of"
                " playback (barge-in).",
                explicit_bucket_boundaries_advisory=_MS_BOUNDARIES,
            ),
            token_usage=meter.create_histogram(
                METRIC_TOKEN_USAGE,
                unit="{token}",
                description="Tokens used per model response.",
                explicit_bucket_boundaries_advisory=_TOKEN_BOUNDARIES,
            ),
            interruptions=meter.create_counter(
                METRIC_INTERRUPTIONS, unit="{interruption}", description="Playback interruptions."
            ),
            reconnects=meter.create_counter(
                METRIC_RECONNECTS, unit="{reconnect}", description="Successful reconnects."
            ),
            errors=meter.create_counter(
                METRIC_ERRORS, unit="{error}", description="Errors reported by transports."
            ),
            audio_bytes=meter.create_counter(
                METRIC_AUDIO_BYTES,
                unit="By",
                description="Audio bytes on the model connection: direction=in was sent to the"
                " model, direction=out was received from it.",
            ),
        )


# Instruments are created once per meter provider, not per session.
_instrument_cache: weakref.WeakKeyDictionary[object, _Instruments] = weakref.WeakKeyDictionary()


def _instruments_for(provider: MeterProvider) -> _Instruments | None:
    try:
        cached = _instrument_cache.get(provider)
    except TypeError:  # not weak-referenceable or not hashable
        cached = None
    if cached is not None:
        return cached
    meter = _meter_of(provider)
    if meter is None:
        return None
    instruments = _Instruments.create(meter)
    with contextlib.suppress(TypeError):
        _instrument_cache[provider] = instruments
    return instruments


# -- sessions per transport (for traceparent_headers and the missing-on_close safety net) -------

_sessions: weakref.WeakKeyDictionary[object, list[TracingObserver]] = weakref.WeakKeyDictionary()


def _remember(transport: object, observer: TracingObserver) -> None:
    try:
        observers = _sessions.setdefault(transport, [])
    except TypeError:
        return
    # A previous session that saw "disconnected" but never on_close ends now.
    for old in [o for o in observers if o.closed or o.disconnected]:
        old.finish(None)
        observers.remove(old)
    observers.append(observer)


def _open_observer_of(
    transport: object, tracer_provider: TracerProvider | None = None
) -> TracingObserver | None:
    try:
        observers = _sessions.get(transport)
    except TypeError:
        return None
    for observer in reversed(observers or ()):
        if observer.closed:
            continue
        if tracer_provider is None or observer.tracer_provider is tracer_provider:
            return observer
    return None


def _model_of_bridge(transport: object) -> object | None:
    # A call bridge exposes its model transport as ``model``; a model transport's ``model`` is
    # the model's name.
    inner: object = getattr(transport, "model", None)
    if inner is None or isinstance(inner, str) or inner is transport:
        return None
    return inner


# Model transport -> the open session of the bridge that drives it, when the bridge's session
# started first: the model's session span becomes its child.
_bridge_parents: weakref.WeakKeyDictionary[object, TracingObserver] = weakref.WeakKeyDictionary()


def _bridge_parent_of(transport: object, tracer_provider: TracerProvider) -> TracingObserver | None:
    try:
        parent = _bridge_parents.get(transport)
    except TypeError:
        return None
    if parent is None or parent.closed or parent.tracer_provider is not tracer_provider:
        return None
    return parent


_PROPAGATOR: Final = TraceContextTextMapPropagator()


def traceparent_headers(
    transport: object | None = None, *, context: Context | None = None
) -> dict[str, str]:
    """W3C trace-context headers (``traceparent``, ``tracestate``) for an outgoing handshake.

    Opt-in propagation: pass the result as extra handshake headers (the OpenAI transport's
    ``headers_provider`` option) so that a server which understands trace context can join the
    session's trace. Only W3C trace context is written, never baggage, whatever
    ``OTEL_PROPAGATORS`` says, so no application data leaves the process this way.

    Args:
        transport: A transport whose session is traced: its ``voicewire.session`` span becomes
            the parent. Ignored when ``context`` is given or no tracing observer is attached.
        context: An explicit OpenTelemetry context; the current context by default.

    Returns:
        The headers; empty when there is no valid span to propagate (for instance, no SDK).
    """
    if context is None and transport is not None:
        observer = _open_observer_of(transport)
        if observer is not None:
            context = observer.session_context
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return carrier


# -- the observer --------------------------------------------------------------------------------


def _gen_ai_system(transport: object) -> str | None:
    declared = getattr(transport, "gen_ai_system", None)
    if isinstance(declared, str) and declared:
        return declared
    transport_id = getattr(transport, "transport_id", None)
    if isinstance(transport_id, str):
        return _KNOWN_SYSTEMS.get(transport_id)
    return None


def _model_of(transport: object) -> str | None:
    model = getattr(transport, "model", None)
    return model if isinstance(model, str) and model else None


def _call_id_of(transport: object) -> str | None:
    call_id = getattr(transport, "call_id", None)
    return call_id if isinstance(call_id, str) and call_id else None


def _bridge_formats(bridge: object) -> tuple[AudioFormat | None, AudioFormat | None]:
    """A call bridge's caller-side format (its edge's) and model-side format, when it has them."""
    from voicewire.audio.formats import AudioFormat

    edge = getattr(bridge, "edge", None)
    caller = getattr(getattr(edge, "capabilities", None), "audio_format", None)
    model = getattr(bridge, "model_audio_format", None)
    return (
        caller if isinstance(caller, AudioFormat) else None,
        model if isinstance(model, AudioFormat) else None,
    )


def _b64_size(value: object) -> int:
    # Decoded size of base64 text, without decoding it.
    if not isinstance(value, str) or not value:
        return 0
    padding = 2 if value.endswith("==") else 1 if value.endswith("=") else 0
    return len(value) * 3 // 4 - padding


def _now_ns() -> int:
    return time.time_ns()


def _mono_ms() -> float:
    return time.perf_counter_ns() / 1_000_000


class _Turn:
    """Mutable state of one model response; owned by the observer, never shared."""

    __slots__ = (
        "ack_events",
        "acks",
        "audio_received",
        "audio_sent",
        "context",
        "done",
        "end_mono",
        "end_ns",
        "finished",
        "first_audio",
        "interrupted",
        "response_id",
        "span",
        "start_mono",
        "truncated_ms",
    )

    def __init__(self, span: Span, response_id: str | None) -> None:
        self.span = span
        self.context = trace.set_span_in_context(span)
        self.response_id = response_id
        self.start_mono = _mono_ms()
        self.end_ns: int | None = None
        self.end_mono: float | None = None
        self.done = False
        self.finished = False
        self.interrupted = False
        self.first_audio = False
        self.truncated_ms: int | None = None
        self.audio_received = 0
        self.audio_sent = 0
        self.acks = 0
        self.ack_events = 0

    def mark_end(self) -> None:
        self.end_ns = _now_ns()
        self.end_mono = _mono_ms()


class TracingObserver:
    """Records one transport session as OpenTelemetry spans, span events and metrics.

    Create one per session (the ``tracing`` plugin does, through :func:`create_observer`) and let
    the transport call its methods. The ``voicewire.session`` span starts when the observer is
    created and ends at :meth:`on_close`; each model response is a ``voicewire.turn`` child and
    each tool call a ``voicewire.function_call`` child of its turn.

    For a call bridge, the model transport's session (created after the bridge's) becomes a
    child of the bridge's session and owns the turns; the bridge's playback notifications
    (audio to the caller, acknowledgements, interruptions) are passed on to it.

    A turn span normally ends when the model finishes the response. When the response's audio
    may still be playing (the model usually generates faster than real time), the span stays
    open until it is known whether the caller heard it to the end: it is closed by an
    interruption (then it ends at the interruption, marked interrupted, with the truncation
    point), the end of the caller's next speech, the next response, or the end of the session;
    otherwise its end time is that of the response.

    Args:
        transport: The transport (or call bridge) whose session this is. Only these
            attributes are read, when present: ``transport_id``, ``gen_ai_system``, ``model``
            (a model name, or a bridge's model transport), ``call_id``, and a bridge's
            ``model_audio_format`` and ``edge.capabilities.audio_format``.
        tracer_provider: Where spans go; the global provider by default.
        meter_provider: Where metrics go; the global provider by default. With an inactive
            provider no instrument is created.
        capture_content: Record transcripts, message text and tool arguments and results.
            ``None`` reads ``VOICEWIRE_TRACE_CAPTURE_CONTENT``.
    """

    def __init__(
        self,
        transport: object = None,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        capture_content: bool | None = None,
    ) -> None:
        tp = trace.get_tracer_provider() if tracer_provider is None else tracer_provider
        mp = metrics.get_meter_provider() if meter_provider is None else meter_provider
        tracer = _tracer_of(tp) or trace.NoOpTracer()
        self._tracer_provider = tp
        self._instruments = _instruments_for(mp)
        self._capture = _capture_from_option(capture_content)
        transport_id = getattr(transport, "transport_id", None)
        self._transport_id = transport_id if isinstance(transport_id, str) else None
        self._system = _gen_ai_system(transport)
        self._model: str | None = None
        self._transport_ref = _weak(transport)
        self._tracer = tracer

        self._metric_attributes: dict[str, AttributeValue] = {}
        if self._transport_id is not None:
            self._metric_attributes["voicewire.transport"] = self._transport_id
        if self._system is not None:
            self._metric_attributes["gen_ai.system"] = self._system

        attributes: dict[str, AttributeValue] = dict(self._metric_attributes)
        if self._system is not None:
            attributes["gen_ai.provider.name"] = self._system
        bridge = _bridge_parent_of(transport, tp) if transport is not None else None
        self._session = tracer.start_span(
            SPAN_SESSION,
            context=bridge.session_context if bridge is not None else None,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        self._session_context = trace.set_span_in_context(self._session)
        self._set_model(_model_of(transport))

        # Session state.
        self._status: str | None = None
        self._ever_connected = False
        self._connecting_mono: float | None = None
        self._disconnected = False
        self._closed = False
        self._turns: dict[str | None, _Turn] = {}
        self._pending: list[_Turn] = []  # done, but their audio may still be playing
        self._latest: _Turn | None = None  # the turn whose audio reaches the caller now
        self._calls: dict[str, Span] = {}
        self._finished_ids: deque[str] = deque(maxlen=16)  # to ignore a repeated turn_done
        self._speech_started_mono: float | None = None
        self._speech_stopped_mono: float | None = None
        self._output_format: AudioFormat | None = None
        self._caller_format: AudioFormat | None = None

        self._link: CallLinkObserver | None = None  # a bridge feeding this session
        # The model transport's session under this bridge session: it owns the turns, so the
        # bridge's playback notifications go there.
        self._delegate: TracingObserver | None = None
        self._close_reason: str | None = None  # on_close waiting for the bridge's

        # Counts kept on the hot path and published in bulk.
        self.client_events = 0
        self.server_events = 0
        self._audio_in = 0  # unpublished bytes sent to the model
        self._audio_out = 0  # unpublished bytes received from the model
        self._audio_in_total = 0
        self._audio_out_total = 0
        self._audio_in_reported = False  # on_audio_to_model is called: payloads are not counted
        self._audio_out_reported = False  # likewise for on_audio_from_model
        self._caller_bytes = 0
        self._turn_count = 0
        self._interruption_count = 0
        self._reconnect_count = 0
        self._error_count = 0

        self._server_handlers: dict[str, Any] = dict.fromkeys(_SESSION_TYPES, self._session_info)
        if self._capture:
            self._server_handlers[_INPUT_TRANSCRIPT_TYPE] = self._input_transcript

        if transport is not None:
            _remember(transport, self)
            inner = _model_of_bridge(transport)
            if inner is not None:
                with contextlib.suppress(TypeError):
                    _bridge_parents[inner] = self
                self._caller_format, self._output_format = _bridge_formats(transport)
            if bridge is not None:
                bridge._adopt(self)
            call_id = _call_id_of(transport)
            if call_id is not None:
                self._session.set_attribute("voicewire.call_sid", call_id)

    # -- public state ----------------------------------------------------------------------------

    @property
    def capture_content(self) -> bool:
        """Whether transcripts, message text and tool I/O are recorded."""
        return self._capture

    @property
    def tracer_provider(self) -> TracerProvider:
        """The tracer provider the session's spans come from."""
        return self._tracer_provider

    @property
    def session_span(self) -> Span:
        """The ``voicewire.session`` span."""
        return self._session

    @property
    def session_context(self) -> Context:
        """An OpenTelemetry context whose current span is the session span."""
        return self._session_context

    @property
    def closed(self) -> bool:
        """Whether the session span has ended."""
        return self._closed

    @property
    def disconnected(self) -> bool:
        """Whether the transport reported ``disconnected`` (``on_close`` may still follow)."""
        return self._disconnected

    def traceparent_headers(self) -> dict[str, str]:
        """W3C trace-context headers whose parent is this session's span.

        Returns:
            ``traceparent`` (and ``tracestate`` when set); empty when nothing is recorded.
        """
        return traceparent_headers(context=self._session_context)

    # -- helpers ---------------------------------------------------------------------------------

    def _set_model(self, model: str | None) -> None:
        if model and model != self._model:
            self._model = model
            self._session.set_attribute("gen_ai.request.model", model)

    def _refresh_from_transport(self) -> None:
        transport = self._transport_ref() if self._transport_ref is not None else None
        if transport is not None and self._model is None:
            self._set_model(_model_of(transport))

    def _turn_for(self, response_id: str | None) -> _Turn | None:
        if response_id is not None:
            turn = self._turns.get(response_id)
            if turn is not None:
                return turn
            for pending in self._pending:
                if pending.response_id == response_id:
                    return pending
        return self._latest

    def _event_target(self) -> Span:
        latest = self._latest
        if latest is not None and not latest.finished:
            return latest.span
        return self._session

    def _publish_audio(self) -> None:
        instruments = self._instruments
        if instruments is None:
            self._audio_in = self._audio_out = 0
            return
        if self._audio_in:
            instruments.audio_bytes.add(
                self._audio_in, {**self._metric_attributes, "direction": "in"}
            )
            self._audio_in = 0
        if self._audio_out:
            instruments.audio_bytes.add(
                self._audio_out, {**self._metric_attributes, "direction": "out"}
            )
            self._audio_out = 0

    def _finish_turn(self, turn: _Turn, ended_by: str | None = None) -> None:
        if turn.finished:
            return
        turn.finished = True
        if turn.response_id is not None:
            self._finished_ids.append(turn.response_id)
        if self._turns.get(turn.response_id) is turn:
            del self._turns[turn.response_id]
        if turn in self._pending:
            self._pending.remove(turn)
        if turn.end_ns is None:
            turn.mark_end()
        span = turn.span
        attributes: dict[str, AttributeValue] = {
            "voicewire.turn.interrupted": turn.interrupted,
            "voicewire.turn.audio_received_bytes": turn.audio_received,
            "voicewire.turn.audio_sent_bytes": turn.audio_sent,
            "voicewire.turn.playback_acks": turn.acks,
        }
        received_ms = sent_ms = None
        if self._output_format is not None:
            received_ms = round(self._output_format.duration_ms(turn.audio_received), 1)
            attributes["voicewire.turn.audio_received_ms"] = received_ms
        if self._caller_format is not None:
            sent_ms = round(self._caller_format.duration_ms(turn.audio_sent), 1)
            attributes["voicewire.turn.audio_sent_ms"] = sent_ms
        # Heard: up to the truncation point, or all of it when the turn ended normally; unknown
        # when the connection or the session ended under it.
        if turn.truncated_ms is not None:
            attributes["voicewire.turn.audio_heard_ms"] = float(turn.truncated_ms)
        elif ended_by is None and sent_ms is not None and turn.audio_sent:
            attributes["voicewire.turn.audio_heard_ms"] = sent_ms
        elif ended_by is None and received_ms is not None and turn.audio_received:
            attributes["voicewire.turn.audio_heard_ms"] = received_ms
        if ended_by is not None:
            attributes["voicewire.turn.ended_by"] = ended_by
        span.set_attributes(attributes)
        span.end(end_time=turn.end_ns)
        if self._instruments is not None and turn.end_mono is not None:
            self._instruments.turn_duration.record(
                max(0.0, turn.end_mono - turn.start_mono),
                {**self._metric_attributes, "voicewire.turn.interrupted": turn.interrupted},
            )
        self._publish_audio()

    def _finish_pending(self) -> None:
        for turn in list(self._pending):
            self._finish_turn(turn)

    def _finish_open_turns(self, ended_by: str) -> None:
        for turn in list(self._turns.values()):
            self._finish_turn(turn, ended_by)

    # -- connection ------------------------------------------------------------------------------

    def on_connection_change(self, status: TransportStatus) -> None:
        """Record the status as a session span event; a drop ends the responses in flight.

        Args:
            status: The new status.
        """
        if self._closed:
            return
        previous, self._status = self._status, status
        self._session.add_event(EVENT_CONNECTION, {"voicewire.connection.status": status})
        if status == "connecting":
            self._connecting_mono = _mono_ms()
            if previous == "connected":  # the connection dropped; a reconnect follows
                self._finish_open_turns("connection_lost")
        elif status == "connected":
            if not self._ever_connected and self._connecting_mono is not None:
                self._session.set_attribute(
                    "voicewire.session.connect_ms", round(_mono_ms() - self._connecting_mono, 1)
                )
            self._ever_connected = True
            self._refresh_from_transport()
        elif status == "disconnected":
            self._disconnected = True
            self._finish_open_turns("disconnected")
            self._finish_pending()

    def _adopt(self, model_session: TracingObserver) -> None:
        # A model transport's session started under this bridge session.
        self._delegate = model_session
        if self._caller_format is not None:
            model_session._caller_format = self._caller_format
        if self._output_format is not None and model_session._output_format is None:
            model_session._output_format = self._output_format

    def _turn_owner(self) -> TracingObserver | None:
        delegate = self._delegate
        return delegate if delegate is not None and not delegate._closed else None

    def on_call_start(
        self, call_id: str | None, stream_id: str | None, audio_format: AudioFormat | None = None
    ) -> None:
        """A telephony call started: record its ids and the caller's audio format.

        Args:
            call_id: The provider's call id (Twilio: the call SID).
            stream_id: The provider's media stream id (Twilio: the stream SID).
            audio_format: The caller's audio format, used to turn audio bytes into milliseconds.
        """
        if self._closed:
            return
        owner = self._turn_owner()
        if owner is not None:
            owner.on_call_start(call_id, stream_id, audio_format)
        if call_id:
            self._session.set_attribute("voicewire.call_sid", call_id)
        if stream_id:
            self._session.set_attribute("voicewire.stream_sid", stream_id)
        if audio_format is not None:
            self._caller_format = audio_format

    def on_reconnect(self, attempt: int, state_restored: bool) -> None:
        """Count the reconnect and record it as a session span event.

        Args:
            attempt: Which attempt succeeded.
            state_restored: Whether configuration and history were restored.
        """
        if self._closed:
            return
        self._reconnect_count += 1
        self._session.add_event(
            EVENT_RECONNECT,
            {
                "voicewire.reconnect.attempt": attempt,
                "voicewire.reconnect.state_restored": state_restored,
            },
        )
        if self._instruments is not None:
            self._instruments.reconnects.add(
                1, {**self._metric_attributes, "voicewire.reconnect.state_restored": state_restored}
            )

    def on_close(self, reason: str | None) -> None:
        """End every open span and the session span.

        When a call bridge feeds this session (see :func:`create_observer`) and is still open,
        the session ends when the bridge closes, with the bridge's reason (the call's).

        Args:
            reason: Why the session ended.
        """
        link = self._link
        if link is not None and not link.closed:
            self._close_reason = reason
            self._finish_open_turns("closed")
            return
        self.finish(reason)

    def _bridge_closed(self, reason: str | None, call_id: str | None) -> None:
        self._link = None
        if call_id is not None and not self._closed:
            self._session.set_attribute("voicewire.call_sid", call_id)
        if self._close_reason is not None or self._disconnected:
            self.finish(reason or self._close_reason)

    def finish(self, reason: str | None) -> None:
        """End the session now (what :meth:`on_close` does); later calls do nothing.

        Args:
            reason: Why the session ended, recorded (cleaned of credentials) as
                ``voicewire.close_reason``.
        """
        if self._closed:
            return
        self._closed = True
        transport = self._transport_ref() if self._transport_ref is not None else None
        call_id = _call_id_of(transport) if transport is not None else None
        if call_id is not None:
            self._session.set_attribute("voicewire.call_sid", call_id)
        self._finish_open_turns("closed")
        self._finish_pending()
        for call_id in list(self._calls):
            span = self._calls.pop(call_id)
            span.set_attribute("voicewire.function_call.answered", False)
            span.end()
        self._publish_audio()
        attributes: dict[str, AttributeValue] = {
            "voicewire.session.errors": self._error_count,
            "voicewire.session.audio_to_caller_bytes": self._caller_bytes,
        }
        if self._delegate is None:
            # A bridge session with a model session under it leaves these to that session.
            attributes.update(
                {
                    "voicewire.session.turns": self._turn_count,
                    "voicewire.session.interruptions": self._interruption_count,
                    "voicewire.session.reconnects": self._reconnect_count,
                    "voicewire.session.client_events": self.client_events,
                    "voicewire.session.server_events": self.server_events,
                    "voicewire.session.audio_in_bytes": self._audio_in_total,
                    "voicewire.session.audio_out_bytes": self._audio_out_total,
                }
            )
        if reason:
            attributes["voicewire.close_reason"] = scrub(reason)
        self._session.set_attributes(attributes)
        self._session.end()

    # -- per-frame notifications -----------------------------------------------------------------

    def on_client_event(
        self, event_type: str, size: int, payload: Mapping[str, Any] | None
    ) -> None:
        """Count a client message; for audio appends, count the audio bytes.

        Args:
            event_type: The message type.
            size: Encoded size in bytes.
            payload: The message, if kept.
        """
        self.client_events += 1
        if payload is None:
            return
        if event_type == _AUDIO_IN_TYPE:
            if self._audio_in_reported:
                return
            n = _b64_size(payload.get("audio"))
            self._audio_in += n
            self._audio_in_total += n
        elif event_type == _USER_MESSAGE_TYPE and self._capture:
            self._user_message(payload)

    def on_server_event(
        self, event_type: str, size: int, payload: Mapping[str, Any] | None
    ) -> None:
        """Count a server message; for audio deltas, count the audio bytes of the response.

        Args:
            event_type: The message type.
            size: Encoded size in bytes.
            payload: The message, if decoded.
        """
        self.server_events += 1
        if payload is None:
            return
        if event_type in _AUDIO_OUT_TYPES:
            if self._audio_out_reported:
                return
            n = _b64_size(payload.get("delta"))
            self._audio_out += n
            self._audio_out_total += n
            response_id = payload.get("response_id")
            turn = self._turns.get(response_id) if isinstance(response_id, str) else None
            if turn is None:
                turn = self._latest
            if turn is not None:
                turn.audio_received += n
            return
        handler = self._server_handlers.get(event_type)
        if handler is not None:
            handler(payload)

    def on_audio_to_model(self, nbytes: int) -> None:
        """Count audio sent to the model (decoded bytes, the session's input format).

        Once a transport calls this, audio in ``on_client_event`` payloads is no longer counted.

        Args:
            nbytes: Size of the chunk.
        """
        self._audio_in_reported = True
        self._audio_in += nbytes
        self._audio_in_total += nbytes

    def on_audio_from_model(self, response_id: str | None, nbytes: int) -> None:
        """Count audio received from the model (decoded bytes, the session's output format).

        Once a transport calls this, audio in ``on_server_event`` payloads is no longer counted.

        Args:
            response_id: The response the audio belongs to.
            nbytes: Size of the chunk.
        """
        self._audio_out_reported = True
        self._audio_out += nbytes
        self._audio_out_total += nbytes
        turn = self._turns.get(response_id) if response_id is not None else None
        if turn is None:
            turn = self._latest
        if turn is not None:
            turn.audio_received += nbytes

    def on_audio_to_caller(self, nbytes: int) -> None:
        """Add a chunk handed to the caller to the current turn's audio.

        Args:
            nbytes: Chunk size, in the caller's format.
        """
        self._caller_bytes += nbytes
        if self._delegate is not None:
            owner = self._turn_owner()
            if owner is not None:
                owner.on_audio_to_caller(nbytes)
                return
        turn = self._latest
        if turn is not None:
            turn.audio_sent += nbytes

    def on_playback_acknowledged(self, token: str) -> None:
        """Record the acknowledgement on the current turn (events are capped per turn).

        Args:
            token: The acknowledgement token (Twilio: the mark name).
        """
        if self._closed:
            return
        owner = self._turn_owner()
        if owner is not None:
            owner.on_playback_acknowledged(token)
            return
        turn = self._latest
        if turn is None or turn.finished:
            self._session.add_event(EVENT_PLAYBACK_ACKNOWLEDGED, {"voicewire.mark": token})
            return
        turn.acks += 1
        if turn.ack_events < MAX_ACK_EVENTS_PER_TURN:
            turn.ack_events += 1
            turn.span.add_event(EVENT_PLAYBACK_ACKNOWLEDGED, {"voicewire.mark": token})

    # -- speech and turns ------------------------------------------------------------------------

    def on_speech_started(self) -> None:
        """Remember when the caller started speaking (for the barge-in clear latency)."""
        if self._closed:
            return
        self._speech_started_mono = _mono_ms()
        self._session.add_event(EVENT_SPEECH_STARTED)

    def on_speech_stopped(self) -> None:
        """Remember when the caller stopped speaking; earlier responses were heard to the end."""
        if self._closed:
            return
        self._speech_started_mono = None
        self._speech_stopped_mono = _mono_ms()
        self._session.add_event(EVENT_SPEECH_STOPPED)
        # A barge-in would have interrupted them by now.
        self._finish_pending()

    def on_turn_started(self, response_id: str | None) -> None:
        """Start a ``voicewire.turn`` span under the session span.

        Args:
            response_id: The response's id.
        """
        if self._closed or (response_id in self._turns):
            return
        self._finish_pending()
        attributes: dict[str, AttributeValue] = {}
        if response_id is not None:
            attributes["gen_ai.response.id"] = response_id
        if self._model is not None:
            attributes["gen_ai.request.model"] = self._model
        span = self._tracer.start_span(
            SPAN_TURN, context=self._session_context, attributes=attributes
        )
        turn = _Turn(span, response_id)
        self._turns[response_id] = turn
        self._latest = turn
        self._turn_count += 1

    def on_first_audio(self, response_id: str | None, latency_ms: float | None) -> None:
        """Record the time to first audio on the turn and in its histogram.

        Args:
            response_id: The response's id.
            latency_ms: Milliseconds since the caller stopped speaking, if the transport knows;
                otherwise the observer uses its own record of ``on_speech_stopped``.
        """
        if self._closed:
            return
        turn = self._turn_for(response_id)
        if turn is None or turn.first_audio or turn.finished:
            return
        turn.first_audio = True
        if latency_ms is None and self._speech_stopped_mono is not None:
            latency_ms = _mono_ms() - self._speech_stopped_mono
        self._speech_stopped_mono = None
        attributes: dict[str, AttributeValue] = {}
        if latency_ms is not None:
            latency_ms = round(max(0.0, float(latency_ms)), 1)
            attributes["voicewire.turn.time_to_first_audio_ms"] = latency_ms
            turn.span.set_attribute("voicewire.turn.time_to_first_audio_ms", latency_ms)
            if self._instruments is not None:
                self._instruments.time_to_first_audio.record(latency_ms, self._metric_attributes)
        turn.span.add_event(EVENT_FIRST_AUDIO, attributes)

    def on_turn_done(self, event: TurnDoneEvent) -> None:
        """Record the response's status and usage; end the turn span unless audio may still play.

        Args:
            event: The ``turn_done`` event.
        """
        if self._closed:
            return
        turn: _Turn | None = None
        if event.response_id is not None:
            turn = self._turns.get(event.response_id)
            if turn is None and (
                event.response_id in self._finished_ids
                or any(p.response_id == event.response_id for p in self._pending)
            ):
                return  # reported twice
            latest = self._latest
            if (
                turn is None
                and latest is not None
                and latest.response_id is None  # started without an id
                and not latest.done
                and not latest.finished
            ):
                turn = latest
        else:
            latest = self._latest
            if latest is not None and not latest.done and not latest.finished:
                turn = latest
        if turn is None:  # a response whose start was not reported
            self.on_turn_started(event.response_id)
            turn = self._latest
            if turn is None:
                return
        turn.done = True
        span = turn.span
        attributes: dict[str, AttributeValue] = {}
        if event.response_id is not None:
            attributes["gen_ai.response.id"] = event.response_id
        if event.status is not None:
            attributes["voicewire.turn.status"] = event.status
        attributes.update(self._usage_attributes(event.usage))
        if self._capture:
            messages = _output_messages(event)
            if messages is not None:
                attributes["gen_ai.output.messages"] = messages
        span.set_attributes(attributes)
        if event.status == "failed":
            span.set_status(Status(StatusCode.ERROR, "response failed"))
        self._record_usage(event.usage)
        if not turn.interrupted:
            turn.mark_end()
        if (
            turn.interrupted
            or event.status in ("cancelled", "failed")
            or not (turn.audio_received or turn.audio_sent)
        ):
            self._finish_turn(turn)
        else:
            # Its audio may still be playing; see the class docstring.
            if self._turns.get(turn.response_id) is turn:
                del self._turns[turn.response_id]
            self._pending.append(turn)

    def _usage_attributes(self, usage: Usage) -> dict[str, AttributeValue]:
        if not (usage.input_tokens or usage.output_tokens or usage.input_token_details):
            return {}
        attributes: dict[str, AttributeValue] = {
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
        }
        details_in = usage.input_token_details
        details_out = usage.output_token_details
        for key, name in (
            ("text_tokens", "voicewire.usage.input_text_tokens"),
            ("audio_tokens", "voicewire.usage.input_audio_tokens"),
            ("image_tokens", "voicewire.usage.input_image_tokens"),
        ):
            value = details_in.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                attributes[name] = value
        cached = details_in.get("cached_tokens")
        if isinstance(cached, int) and not isinstance(cached, bool):
            attributes["gen_ai.usage.cache_read.input_tokens"] = cached
            attributes["voicewire.usage.input_cached_tokens"] = cached
        cached_details = details_in.get("cached_tokens_details")
        if isinstance(cached_details, Mapping):
            for key, name in (
                ("text_tokens", "voicewire.usage.input_cached_text_tokens"),
                ("audio_tokens", "voicewire.usage.input_cached_audio_tokens"),
            ):
                value = cached_details.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    attributes[name] = value
        for key, name in (
            ("text_tokens", "voicewire.usage.output_text_tokens"),
            ("audio_tokens", "voicewire.usage.output_audio_tokens"),
        ):
            value = details_out.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                attributes[name] = value
        return attributes

    def _record_usage(self, usage: Usage) -> None:
        instruments = self._instruments
        if instruments is None or not (usage.input_tokens or usage.output_tokens):
            return
        base: dict[str, AttributeValue] = dict(self._metric_attributes)
        if self._model is not None:
            base["gen_ai.request.model"] = self._model
        instruments.token_usage.record(usage.input_tokens, {**base, "gen_ai.token.type": "input"})
        instruments.token_usage.record(usage.output_tokens, {**base, "gen_ai.token.type": "output"})

    def on_interruption(self, event: AudioInterruptedEvent) -> None:
        """Mark the playing turn interrupted, with its truncation point; count it.

        Args:
            event: The ``audio_interrupted`` event.
        """
        if self._closed:
            return
        owner = self._turn_owner()
        if owner is not None:
            owner.on_interruption(event)
            return
        self._interruption_count += 1
        attributes: dict[str, AttributeValue] = {}
        if event.response_id is not None:
            attributes["gen_ai.response.id"] = event.response_id
        if event.truncations:
            attributes["voicewire.truncation.item_ids"] = [t.item_id for t in event.truncations]
            attributes["voicewire.truncation.audio_end_ms"] = [
                t.audio_end_ms for t in event.truncations
            ]
        latency = None
        if self._speech_started_mono is not None:
            latency = round(max(0.0, _mono_ms() - self._speech_started_mono), 1)
            attributes["voicewire.interruption.clear_latency_ms"] = latency
            self._speech_started_mono = None
        if self._instruments is not None:
            self._instruments.interruptions.add(1, self._metric_attributes)
            if latency is not None:
                self._instruments.clear_latency.record(latency, self._metric_attributes)
        turn = self._turn_for(event.response_id)
        if turn is None or turn.finished:
            self._session.add_event(EVENT_INTERRUPTION, attributes)
            return
        turn.span.add_event(EVENT_INTERRUPTION, attributes)
        turn.interrupted = True
        if event.truncations:
            first = event.truncations[0]
            turn.truncated_ms = first.audio_end_ms
            turn.span.set_attributes(
                {
                    "voicewire.turn.truncated_item_id": first.item_id,
                    "voicewire.turn.truncated_at_ms": first.audio_end_ms,
                }
            )
        turn.mark_end()
        if turn.done:
            self._finish_turn(turn)

    # -- tools -----------------------------------------------------------------------------------

    def on_function_call(self, event: FunctionCallEvent) -> None:
        """Start a ``voicewire.function_call`` span under the response that made the call.

        Args:
            event: The ``function_call`` event.
        """
        if self._closed or event.call_id in self._calls:
            return
        turn = self._turn_for(event.response_id)
        parent = turn.context if turn is not None else self._session_context
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": event.name,
            "gen_ai.tool.call.id": event.call_id,
        }
        if event.response_id is not None:
            attributes["gen_ai.response.id"] = event.response_id
        if self._capture:
            attributes["gen_ai.tool.call.arguments"] = _limit(event.arguments)
        self._calls[event.call_id] = self._tracer.start_span(
            SPAN_FUNCTION_CALL, context=parent, attributes=attributes
        )

    def on_function_call_output(self, call_id: str, output: str) -> None:
        """End the call's span.

        Args:
            call_id: The call answered.
            output: The result (recorded only with content capture).
        """
        span = self._calls.pop(call_id, None)
        if span is None:
            return
        span.set_attribute("voicewire.function_call.answered", True)
        if self._capture:
            span.set_attribute("gen_ai.tool.call.result", _limit(output))
        span.end()

    # -- errors ----------------------------------------------------------------------------------

    def on_error(self, event: ErrorEvent) -> None:
        """Count the error and record it as an event on the current turn or the session.

        Args:
            event: The error event. Its message is cleaned of credentials; its details (which
                may hold raw wire messages) are not recorded.
        """
        if self._closed:
            return
        self._error_count += 1
        error_type = event.code or (type(event.error).__name__ if event.error else event.source)
        attributes: dict[str, AttributeValue] = {
            "voicewire.error.source": event.source,
            "error.type": error_type,
            "voicewire.error.message": scrub(event.message),
        }
        self._event_target().add_event(EVENT_ERROR, attributes)
        if self._instruments is not None:
            self._instruments.errors.add(
                1,
                {
                    **self._metric_attributes,
                    "voicewire.error.source": event.source,
                    "error.type": error_type,
                },
            )

    # -- server messages read once per session or per item ---------------------------------------

    def _session_info(self, payload: Mapping[str, Any]) -> None:
        session = payload.get("session")
        if not isinstance(session, Mapping):
            return
        model = session.get("model")
        if isinstance(model, str) and model:
            self._session.set_attribute("gen_ai.response.model", model)
            if self._model is None:
                self._set_model(model)
        wire_format: object = None
        audio = session.get("audio")
        if isinstance(audio, Mapping):
            output = audio.get("output")
            if isinstance(output, Mapping):
                wire_format = output.get("format")
        if wire_format is None:
            wire_format = session.get("output_audio_format")  # beta shape
        if isinstance(wire_format, (str, Mapping)):
            from voicewire.audio.formats import AudioFormat
            from voicewire.errors import VoicewireError

            with contextlib.suppress(VoicewireError):
                self._output_format = AudioFormat.from_wire(wire_format)

    def _input_transcript(self, payload: Mapping[str, Any]) -> None:
        transcript = payload.get("transcript")
        if not isinstance(transcript, str) or self._closed:
            return
        attributes: dict[str, AttributeValue] = {"voicewire.transcript": _limit(transcript)}
        item_id = payload.get("item_id")
        if isinstance(item_id, str):
            attributes["voicewire.item_id"] = item_id
        self._event_target().add_event(EVENT_INPUT_TRANSCRIPT, attributes)

    def _user_message(self, payload: Mapping[str, Any]) -> None:
        item = payload.get("item")
        if not isinstance(item, Mapping) or item.get("role") != "user" or self._closed:
            return
        texts = [
            part["text"]
            for part in item.get("content") or ()
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        ]
        if texts:
            self._session.add_event(EVENT_USER_MESSAGE, {"voicewire.text": _limit(" ".join(texts))})

    def __repr__(self) -> str:
        state = "closed" if self._closed else (self._status or "new")
        return f"<TracingObserver {self._transport_id or '?'} {state}>"


class CallLinkObserver:
    """The observer of a call bridge whose model transport's session is already traced.

    It records nothing of its own: the bridge's notifications go to the model session's
    :class:`TracingObserver`, so the call's turns carry what the caller heard (audio played,
    playback acknowledgements, interruptions and truncation points), and the session carries the
    call ids and the bridge's close reason. Only the methods a bridge reports itself are
    implemented; status changes and model events reach the model session from its own transport.

    Args:
        transport: The bridge.
        target: The model session's observer.
    """

    def __init__(self, transport: object, target: TracingObserver) -> None:
        self._target = target
        self._transport_ref = _weak(transport)
        self._closed = False
        target._link = self
        call_id = _call_id_of(transport)
        if call_id is not None:
            target.on_call_start(call_id, None)

    @property
    def target(self) -> TracingObserver:
        """The observer of the model transport's session."""
        return self._target

    @property
    def closed(self) -> bool:
        """Whether the bridge reported its close."""
        return self._closed

    @property
    def session_context(self) -> Context:
        """The context of the call's session span."""
        return self._target.session_context

    def on_call_start(
        self, call_id: str | None, stream_id: str | None, audio_format: AudioFormat | None = None
    ) -> None:
        """Record the call's ids and the caller's audio format on the session."""
        self._target.on_call_start(call_id, stream_id, audio_format)

    def on_audio_to_caller(self, nbytes: int) -> None:
        """Add audio played to the caller to the current turn."""
        self._target.on_audio_to_caller(nbytes)

    def on_playback_acknowledged(self, token: str) -> None:
        """Record a playback acknowledgement on the current turn."""
        self._target.on_playback_acknowledged(token)

    def on_interruption(self, event: AudioInterruptedEvent) -> None:
        """Mark the turn the caller interrupted."""
        self._target.on_interruption(event)

    def on_error(self, event: ErrorEvent) -> None:
        """Record an error of the bridge or the telephony edge."""
        self._target.on_error(event)

    def on_close(self, reason: str | None) -> None:
        """End the call's session with the bridge's reason."""
        if self._closed:
            return
        self._closed = True
        transport = self._transport_ref() if self._transport_ref is not None else None
        call_id = _call_id_of(transport) if transport is not None else None
        self._target._bridge_closed(reason, call_id)

    def __repr__(self) -> str:
        return f"<CallLinkObserver -> {self._target!r}>"


def _output_messages(event: TurnDoneEvent) -> str | None:
    """The response's output as GenAI semconv ``gen_ai.output.messages`` JSON (text parts only)."""
    parts: list[dict[str, Any]] = []
    items: tuple[object, ...] = event.output  # providers' dicts: check every shape
    for item in items:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                if not isinstance(part, Mapping):
                    continue
                text = part.get("transcript")
                if not isinstance(text, str):
                    text = part.get("text")
                if isinstance(text, str) and text:
                    parts.append({"type": "text", "content": _limit(text)})
        elif kind == "function_call":
            parts.append(
                {
                    "type": "tool_call",
                    "id": item.get("call_id"),
                    "name": item.get("name"),
                    "arguments": _limit(str(item.get("arguments", ""))),
                }
            )
    if not parts:
        return None
    message: dict[str, Any] = {"role": "assistant", "parts": parts}
    if event.status is not None:
        message["finish_reason"] = event.status
    return json.dumps([message], ensure_ascii=False)


def _capture_from_option(capture_content: bool | None) -> bool:
    return capture_content_from_env() if capture_content is None else capture_content


def _weak(obj: object) -> weakref.ReferenceType[Any] | None:
    if obj is None:
        return None
    try:
        return weakref.ref(obj)
    except TypeError:
        return None


def create_observer(
    transport: object,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool | None = None,
) -> TracingObserver | CallLinkObserver | None:
    """The tracing observer for a session, or ``None`` when nothing would be recorded.

    This is what the ``tracing`` plugin's ``voicewire_session_observer`` returns. With the API's
    default providers (no SDK installed or configured), no-op providers, or an SDK disabled by
    ``OTEL_SDK_DISABLED``, it returns ``None`` so the transport has nothing to call.

    One call is one trace. For a call bridge (a transport whose ``model`` attribute is another
    transport) whose model transport's session is already traced with the same tracer provider,
    the result is a :class:`CallLinkObserver` that feeds the bridge's notifications (call ids,
    audio played, acknowledgements, interruptions, errors, the close reason) into that session.
    When the bridge's session starts first, the model transport's session span becomes a child of
    the bridge's instead.

    Args:
        transport: The transport whose session starts.
        tracer_provider: The tracer provider; the global one by default.
        meter_provider: The meter provider; the global one by default.
        capture_content: Record content; ``None`` reads ``VOICEWIRE_TRACE_CAPTURE_CONTENT``.

    Returns:
        The observer, or ``None``.
    """
    tp = trace.get_tracer_provider() if tracer_provider is None else tracer_provider
    mp = metrics.get_meter_provider() if meter_provider is None else meter_provider
    if not tracing_active(tp, mp):
        return None
    inner = _model_of_bridge(transport)
    target = _open_observer_of(inner, tp) if inner is not None else None
    if target is not None:
        return CallLinkObserver(transport, target)
    return TracingObserver(
        transport, tracer_provider=tp, meter_provider=mp, capture_content=capture_content
    )
