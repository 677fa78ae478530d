"""Hook implementations of the built-in ``tracing`` plugin.

Declared in the core distribution as the entry point ``tracing`` of the ``voicewire.plugins``
group, so it is blocked like any plugin with ``VOICEWIRE_DISABLE_PLUGINS=tracing``. This module
imports nothing from OpenTelemetry: discovery stays cheap, and the hook imports the observer
only when a session starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voicewire.hookspecs import hookimpl

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["TracingPlugin", "voicewire_session_observer"]


@hookimpl
def voicewire_session_observer(transport: object) -> object | None:
    """Offer a :class:`~voicewire.tracing.TracingObserver` using the global OpenTelemetry providers.

    Returns ``None`` (and the session carries no tracing cost) when no SDK is configured.
    """
    from voicewire.tracing.observer import create_observer

    return create_observer(transport)


class TracingPlugin:
    """The tracing plugin with explicit providers, for registering in-process.

    Register it under the id ``tracing`` on a :class:`voicewire.plugins.PluginManager` that has
    not loaded the entry-point plugin of that id (or after unregistering it), e.g. in tests or in
    an application that keeps its OpenTelemetry providers out of the global ones.

    Args:
        tracer_provider: Where spans go; the global provider by default.
        meter_provider: Where metrics go; the global provider by default.
        capture_content: Record transcripts, message text and tool I/O; ``None`` reads
            ``VOICEWIRE_TRACE_CAPTURE_CONTENT``.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        capture_content: bool | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.capture_content = capture_content

    @hookimpl
    def voicewire_session_observer(self, transport: object) -> object | None:
        """Offer a :class:`~voicewire.tracing.TracingObserver` using this plugin's providers."""
        from voicewire.tracing.observer import create_observer

        return create_observer(
            transport,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            capture_content=self.capture_content,
        )
