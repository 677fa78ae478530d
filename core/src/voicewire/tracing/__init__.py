"""The built-in OpenTelemetry tracing plugin (entry point ``tracing``).

It depends on the OpenTelemetry API only. When an SDK is configured (by the application, by
``opentelemetry-instrument``, or by ``voicewire serve --trace console|otlp``), every transport
session is recorded as a ``voicewire.session`` span with ``voicewire.turn`` and
``voicewire.function_call`` children, plus metrics on the ``voicewire`` meter; otherwise the
plugin offers no observer and costs nothing. See ``docs/tracing.md``.

The names below are imported on first use, so that discovering the plugin does not import
OpenTelemetry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicewire.tracing.observer import (
        CAPTURE_CONTENT_ENV_VAR as CAPTURE_CONTENT_ENV_VAR,
    )
    from voicewire.tracing.observer import (
        CallLinkObserver as CallLinkObserver,
    )
    from voicewire.tracing.observer import (
        TracingObserver as TracingObserver,
    )
    from voicewire.tracing.observer import (
        capture_content_from_env as capture_content_from_env,
    )
    from voicewire.tracing.observer import (
        create_observer as create_observer,
    )
    from voicewire.tracing.observer import (
        traceparent_headers as traceparent_headers,
    )
    from voicewire.tracing.observer import (
        tracing_active as tracing_active,
    )
    from voicewire.tracing.plugin import TracingPlugin as TracingPlugin

__all__ = [
    "CAPTURE_CONTENT_ENV_VAR",
    "CallLinkObserver",
    "TracingObserver",
    "TracingPlugin",
    "capture_content_from_env",
    "create_observer",
    "traceparent_headers",
    "tracing_active",
]

_HOMES = dict.fromkeys(__all__, "voicewire.tracing.observer") | {
    "TracingPlugin": "voicewire.tracing.plugin"
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
