"""Install an OpenTelemetry SDK for the command line's ``--trace none|console|otlp``.

Only the CLI (and applications that want the same behaviour) import this module: libraries and
plugins depend on the OpenTelemetry API alone and leave the SDK to whoever runs the process. The
SDK and the OTLP exporter are imported when a mode needs them, so a missing package is reported as
a one-line :class:`TracingSetupError` rather than an import failure.

* ``none``: nothing is installed; the tracing plugin offers no observer.
* ``console``: spans are printed as an indented tree when each session ends
  (:class:`~voicewire.tracing.console.ConsoleSpanTreeExporter`), and a metrics summary is printed
  at shutdown. Needs ``opentelemetry-sdk`` (the core's ``cli`` extra).
* ``otlp``: spans and metrics go to the standard OTLP exporters, configured by the usual
  ``OTEL_EXPORTER_OTLP_*`` variables (endpoint, headers, protocol ``http/protobuf`` by default or
  ``grpc``); ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` describe the service. Needs
  ``opentelemetry-exporter-otlp``.

``OTEL_SDK_DISABLED=true`` turns every mode into ``none``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TextIO

from voicewire.errors import VoicewireError

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

__all__ = ["TRACE_MODES", "TraceMode", "TracingHandle", "TracingSetupError", "configure_tracing"]

TraceMode = Literal["none", "console", "otlp"]
"""The values of ``--trace``."""

TRACE_MODES: Final[tuple[TraceMode, ...]] = ("none", "console", "otlp")
"""Every :data:`TraceMode`, in the order ``--help`` lists them."""

_SDK_HINT: Final = "pip install 'voicewire[cli]' (or opentelemetry-sdk)"
_OTLP_HINT: Final = "pip install opentelemetry-exporter-otlp"

# protocol -> (module of the span exporter, module of the metric exporter)
_OTLP_MODULES: Final[Mapping[str, tuple[str, str]]] = {
    "http/protobuf": (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    ),
    "grpc": (
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
    ),
}


class TracingSetupError(VoicewireError):
    """The requested ``--trace`` mode cannot be set up; the message says why in one line."""


class TracingHandle:
    """What :func:`configure_tracing` installed; shut it down before the process exits.

    Shutting down flushes pending spans (``console`` prints the traces still open and a metrics
    summary; ``otlp`` sends what is batched). It can be used as a context manager.

    Attributes:
        mode: The mode in effect (``none`` when nothing was installed).
        tracer_provider: The SDK tracer provider, or ``None`` for ``none``.
        meter_provider: The SDK meter provider, or ``None`` for ``none``.
    """

    def __init__(
        self,
        mode: TraceMode,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        """Wrap installed providers (built by :func:`configure_tracing`).

        Args:
            mode: The mode in effect.
            tracer_provider: The tracer provider.
            meter_provider: The meter provider.
            on_shutdown: Called after the tracer provider shut down, before the meter provider.
        """
        self.mode: TraceMode = mode
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._on_shutdown = on_shutdown
        self._shut_down = False

    @property
    def active(self) -> bool:
        """Whether anything is recorded (the mode is not ``none``)."""
        return self.tracer_provider is not None

    def force_flush(self) -> None:
        """Export what is pending now, without shutting down."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()
        if self.meter_provider is not None:
            self.meter_provider.force_flush()

    def shutdown(self) -> None:
        """Flush and stop the providers; later calls do nothing."""
        if self._shut_down:
            return
        self._shut_down = True
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self._on_shutdown is not None:
            self._on_shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()

    def __enter__(self) -> TracingHandle:
        """Return the handle itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down."""
        self.shutdown()

    def __repr__(self) -> str:
        return f"<TracingHandle mode={self.mode!r}>"


def _sdk_disabled(environ: Mapping[str, str]) -> bool:
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _resource(service_name: str, environ: Mapping[str, str]) -> Resource:
    from opentelemetry.sdk.resources import Resource

    from voicewire.tracing.observer import _version

    attributes: dict[str, str] = {"service.version": _version()}
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default name.
    named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    if not named:
        attributes["service.name"] = service_name
    return Resource.create(attributes)


def _otlp_protocol(signal: str, environ: Mapping[str, str]) -> str:
    protocol = (
        environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol not in _OTLP_MODULES:
        raise TracingSetupError(
            f"--trace otlp: OTLP protocol {protocol!r} is not supported; use http/protobuf or grpc"
        )
    return protocol


def _otlp_exporter(signal: str, environ: Mapping[str, str]) -> Any:
    protocol = _otlp_protocol(signal, environ)
    span_module, metric_module = _OTLP_MODULES[protocol]
    module_name, class_name = (
        (span_module, "OTLPSpanExporter")
        if signal == "TRACES"
        else (metric_module, "OTLPMetricExporter")
    )
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise TracingSetupError(
            f"--trace otlp needs the OTLP exporter for {protocol}, which is not installed: "
            f"{_OTLP_HINT}"
        ) from None
    return getattr(module, class_name)()


def configure_tracing(
    mode: str,
    *,
    stream: TextIO | None = None,
    set_global: bool = True,
    service_name: str = "voicewire",
    environ: Mapping[str, str] | None = None,
) -> TracingHandle:
    """Install an OpenTelemetry SDK for a ``--trace`` mode.

    Args:
        mode: ``none``, ``console`` or ``otlp``.
        stream: Where ``console`` prints; standard error by default.
        set_global: Make the providers the process-wide ones, which the ``tracing`` plugin uses.
            With ``False`` nothing global changes; pass ``handle.tracer_provider`` and
            ``handle.meter_provider`` on explicitly (tests do).
        service_name: ``service.name`` of the resource, unless ``OTEL_SERVICE_NAME`` or
            ``OTEL_RESOURCE_ATTRIBUTES`` set one.
        environ: Where to read ``OTEL_*`` variables that voicewire itself looks at; ``os.environ``
            by default. (The OTLP exporters always read ``os.environ``.)

    Returns:
        A handle to shut down at exit.

    Raises:
        TracingSetupError: Unknown mode, a package the mode needs is missing, an unsupported OTLP
            protocol, or (with ``set_global``) an SDK is already installed in this process.
    """
    env = os.environ if environ is None else environ
    if mode not in TRACE_MODES:
        raise TracingSetupError(
            f"unknown trace mode {mode!r}; choose one of: {', '.join(TRACE_MODES)}"
        )
    chosen: TraceMode = mode
    if chosen == "none" or _sdk_disabled(env):
        return TracingHandle("none")
    try:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import (
            InMemoryMetricReader,
            MetricReader,
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SimpleSpanProcessor,
        )
    except ImportError:
        raise TracingSetupError(
            f"--trace {chosen} needs opentelemetry-sdk, which is not installed: {_SDK_HINT}"
        ) from None

    from voicewire.tracing.observer import tracing_active

    if set_global and tracing_active():
        raise TracingSetupError(
            f"--trace {chosen}: an OpenTelemetry SDK is already configured in this process"
            " (by opentelemetry-instrument, for instance); leave out --trace to use that one"
        )

    resource = _resource(service_name, env)
    processor: SpanProcessor
    reader: MetricReader
    on_shutdown: Callable[[], None] | None = None
    if chosen == "console":
        from voicewire.tracing.console import ConsoleSpanTreeExporter, render_metrics

        processor = SimpleSpanProcessor(ConsoleSpanTreeExporter(stream))
        memory = InMemoryMetricReader()
        reader = memory

        def print_metrics() -> None:
            text = render_metrics(memory.get_metrics_data())
            if text:
                import sys

                out = stream if stream is not None else sys.stderr
                out.write("metrics:\n" + "".join(f"  {line}\n" for line in text.splitlines()))
                out.flush()

        on_shutdown = print_metrics
    else:
        processor = BatchSpanProcessor(_otlp_exporter("TRACES", env))
        reader = PeriodicExportingMetricReader(_otlp_exporter("METRICS", env))

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return TracingHandle(chosen, tracer_provider, meter_provider, on_shutdown)
