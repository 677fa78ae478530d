"""``voicewire serve`` with an OpenTelemetry SDK that records everything and exports nothing.

``bench/bridge_load.py --trace on`` runs the bridge through this launcher: before handing its
arguments to the ``voicewire`` command line, it installs the global tracer provider with a
``BatchSpanProcessor`` (the processor ``--trace otlp`` uses) whose exporter drops every batch,
and a meter provider with an in-memory reader. The tracing plugin then observes every call
exactly as with a real exporter, minus the network. ``VOICEWIRE_BENCH_SPANS_FILE``, when set,
receives the number of spans exported, written at exit.

    python bench/bridge_load_serve.py serve --port 0 --insecure-skip-signature ...
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Sequence

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from voicewire.cli import main as voicewire_main


class DroppingExporter(SpanExporter):
    """Counts the spans it is handed and forgets them."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Count and drop."""
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def install() -> TracerProvider:
    """Install the global providers; return the tracer provider."""
    exporter = DroppingExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    report = os.environ.get("VOICEWIRE_BENCH_SPANS_FILE")

    def finish() -> None:
        tracer_provider.shutdown()
        if report:
            with open(report, "w", encoding="utf-8") as out:
                out.write(f"{exporter.spans}\n")

    atexit.register(finish)
    return tracer_provider


if __name__ == "__main__":
    install()
    sys.exit(voicewire_main(sys.argv[1:]))
