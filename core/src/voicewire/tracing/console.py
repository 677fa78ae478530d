"""A readable span tree on the console, for ``voicewire ... --trace console``.

:class:`ConsoleSpanTreeExporter` is an OpenTelemetry SDK span exporter that keeps finished spans
until the root of their trace ends, then prints the whole trace as an indented tree: one line per
span with its name, duration and key attributes, and its span events underneath. The rendering
itself is :func:`render_span_tree`, usable on any finished SDK spans (an in-memory exporter's, for
instance). :func:`render_metrics` prints a short summary of collected metrics.

This module needs ``opentelemetry-sdk`` (the core's ``cli`` extra); libraries and plugins use the
API only.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TextIO

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricsData
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["ConsoleSpanTreeExporter", "render_metrics", "render_span_tree"]

# (attribute, label, unit) shown on a span's line, per span name; other spans show everything.
_KEY_ATTRIBUTES: Final[Mapping[str, tuple[tuple[str, str, str], ...]]] = {
    "voicewire.session": (
        ("voicewire.transport", "transport", ""),
        ("gen_ai.system", "system", ""),
        ("gen_ai.request.model", "model", ""),
        ("voicewire.call_sid", "call", ""),
        ("voicewire.stream_sid", "stream", ""),
        ("voicewire.session.turns", "turns", ""),
        ("voicewire.session.interruptions", "interruptions", ""),
        ("voicewire.session.reconnects", "reconnects", ""),
        ("voicewire.session.errors", "errors", ""),
        ("voicewire.close_reason", "closed", ""),
    ),
    "voicewire.turn": (
        ("gen_ai.response.id", "response", ""),
        ("voicewire.turn.status", "status", ""),
        ("voicewire.turn.time_to_first_audio_ms", "first_audio", " ms"),
        ("voicewire.turn.interrupted", "interrupted", ""),
        ("voicewire.turn.truncated_at_ms", "truncated_at", " ms"),
        ("voicewire.turn.audio_sent_ms", "sent", " ms"),
        ("voicewire.turn.audio_heard_ms", "heard", " ms"),
        ("gen_ai.usage.input_tokens", "tokens_in", ""),
        ("gen_ai.usage.output_tokens", "tokens_out", ""),
        ("voicewire.turn.ended_by", "ended_by", ""),
    ),
    "voicewire.function_call": (
        ("gen_ai.tool.name", "tool", ""),
        ("gen_ai.tool.call.id", "call_id", ""),
        ("voicewire.function_call.answered", "answered", ""),
    ),
}

_HIDDEN_WHEN_ZERO: Final = frozenset({"interruptions", "reconnects", "errors"})

# Events too frequent to list one by one; their count is an attribute of the span.
_QUIET_EVENTS: Final = frozenset({"voicewire.playback_acknowledged"})

_VALUE_LIMIT: Final = 60
_PREFIXES: Final = ("voicewire.", "gen_ai.")


def _short(name: str) -> str:
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:.1f}"
    elif isinstance(value, (list, tuple)):
        text = ",".join(_value(v) for v in value)
    else:
        text = str(value)
    if len(text) > _VALUE_LIMIT:
        text = text[: _VALUE_LIMIT - 3] + "..."
    if not text or any(c.isspace() for c in text):
        text = json.dumps(text, ensure_ascii=False)
    return text


def _duration(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return "open"
    ms = (end - start) / 1_000_000
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def _offset(start: int | None, at: int) -> str:
    if start is None:
        return ""
    ms = (at - start) / 1_000_000
    return f"+{ms:.0f} ms" if ms < 1000 else f"+{ms / 1000:.2f} s"


def _span_line(span: ReadableSpan) -> str:
    attributes: Mapping[str, object] = span.attributes or {}
    keys = _KEY_ATTRIBUTES.get(span.name)
    shown: list[str] = []
    if keys is None:
        shown = [f"{_short(k)}={_value(v)}" for k, v in attributes.items()]
    else:
        for key, label, unit in keys:
            if key not in attributes:
                continue
            value = attributes[key]
            if value is False and label == "interrupted":
                continue  # "interrupted=no" on every turn is noise
            if value == 0 and (unit == " ms" or label in _HIDDEN_WHEN_ZERO):
                continue
            shown.append(f"{label}={_value(value)}{unit}")
    head = f"{span.name}  {_duration(span.start_time, span.end_time)}"
    return head + ("  " + " ".join(shown) if shown else "")


def _event_lines(span: ReadableSpan, *, quiet: bool) -> list[str]:
    lines = []
    for event in span.events:
        if quiet and event.name in _QUIET_EVENTS:
            continue
        attributes: Mapping[str, object] = event.attributes or {}
        details = " ".join(f"{_short(k)}={_value(v)}" for k, v in attributes.items())
        text = f"* {_offset(span.start_time, event.timestamp)} {_short(event.name)}"
        lines.append(text + (f"  {details}" if details else ""))
    return lines


def render_span_tree(spans: Iterable[ReadableSpan], *, events: bool = True) -> str:
    """Render finished spans as indented trees, one per root, children in start order.

    A span whose parent is not among ``spans`` is shown as a root.

    Args:
        spans: Finished SDK spans (e.g. from an ``InMemorySpanExporter``).
        events: Also list each span's events (playback acknowledgements are left out; their
            count is on the turn).

    Returns:
        The text, ending with a newline, or ``""`` when there is no span.
    """
    spans = list(spans)
    ids = {span.context.span_id for span in spans if span.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        if parent not in ids:
            parent = None
        children.setdefault(parent, []).append(span)
    for siblings in children.values():
        siblings.sort(key=lambda s: s.start_time or 0)

    lines: list[str] = []

    def walk(span: ReadableSpan, lead: str, branch: str) -> None:
        lines.append(lead + branch + _span_line(span))
        below = lead + ("   " if branch == "`- " else "|  " if branch else "")
        kids = children.get(span.context.span_id if span.context is not None else None, [])
        event_lines = _event_lines(span, quiet=True) if events else []
        for text in event_lines:
            lines.append(below + ("|  " if kids else "   ") + text)
        for index, kid in enumerate(kids):
            walk(kid, below, "`- " if index == len(kids) - 1 else "|- ")

    for root in children.get(None, []):
        walk(root, "", "")
    return "\n".join(lines) + "\n" if lines else ""


def render_metrics(data: MetricsData | None) -> str:
    """Summarise collected metrics: one line per metric and attribute set.

    Histograms show count, mean, min and max; counters their total.

    Args:
        data: What a metric reader collected (``InMemoryMetricReader.get_metrics_data()``).

    Returns:
        The text, ending with a newline, or ``""`` when nothing was recorded.
    """
    lines: list[str] = []
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                # Annotations such as "{token}" say what is counted; the name says it already.
                unit = f" {metric.unit}" if metric.unit and not metric.unit.startswith("{") else ""
                points: Sequence[Any] = metric.data.data_points
                for point in points:
                    labels = ",".join(
                        f"{_short(k)}={_value(v)}"
                        for k, v in (point.attributes or {}).items()
                        if k not in ("voicewire.transport", "gen_ai.system")
                    )
                    name = metric.name + (f"{{{labels}}}" if labels else "")
                    if hasattr(point, "bucket_counts"):
                        if not point.count:
                            continue
                        mean = point.sum / point.count
                        lines.append(
                            f"{name}: count={point.count} mean={mean:.1f}{unit}"
                            f" min={point.min:.1f}{unit} max={point.max:.1f}{unit}"
                        )
                    elif hasattr(point, "value"):
                        lines.append(f"{name}: {point.value}{unit}")
    return "\n".join(lines) + "\n" if lines else ""


class ConsoleSpanTreeExporter(SpanExporter):
    """Prints each finished trace as a tree once its root span ends.

    Spans are held per trace until a span without a local parent (the session span, normally)
    ends; :meth:`shutdown` prints whatever is left. Use it with a ``SimpleSpanProcessor``.

    Args:
        stream: Where to print; standard error (looked up at each write) by default.
        events: List span events under each span.
    """

    def __init__(self, stream: TextIO | None = None, *, events: bool = True) -> None:
        self._stream = stream
        self._events = events
        self._pending: dict[int, list[ReadableSpan]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _write(self, text: str) -> None:
        if not text:
            return
        stream = self._stream if self._stream is not None else sys.stderr
        stream.write(text)
        stream.flush()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Keep the spans; print every trace whose root is among them.

        Args:
            spans: Finished spans.

        Returns:
            ``SUCCESS``, or ``FAILURE`` after shutdown.
        """
        if self._closed:
            return SpanExportResult.FAILURE
        ready: list[list[ReadableSpan]] = []
        with self._lock:
            for span in spans:
                trace_id = span.context.trace_id if span.context is not None else 0
                self._pending.setdefault(trace_id, []).append(span)
                if span.parent is None or span.parent.is_remote:
                    ready.append(self._pending.pop(trace_id))
        for group in ready:
            self._write(render_span_tree(group, events=self._events))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Print the traces whose root never ended, then refuse further spans."""
        with self._lock:
            self._closed = True
            groups = list(self._pending.values())
            self._pending.clear()
        for group in groups:
            self._write(render_span_tree(group, events=self._events))

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered that could be written early; always ``True``."""
        return True
