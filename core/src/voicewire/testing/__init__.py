"""The public test kit for plugin authors and applications.

Names are loaded on first use, so importing :mod:`voicewire.testing` does not pull in the
optional server dependency (``aiohttp``) until a server is actually needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicewire.testing.conformance import (
        ConformanceError,
        check_bridge_with_edge,
        check_entry_point,
        check_model_transport,
        check_telephony_edge,
    )
    from voicewire.testing.fake_realtime import (
        CloseBeforeSessionCreated,
        CloseMidResponse,
        FakeRealtimeServer,
        Fault,
        RefuseConnection,
        Script,
        SendGarbage,
        SessionRecord,
        Stall,
        VadSettings,
        speech_like,
    )

__all__ = [
    "CloseBeforeSessionCreated",
    "CloseMidResponse",
    "ConformanceError",
    "FakeRealtimeServer",
    "Fault",
    "RefuseConnection",
    "Script",
    "SendGarbage",
    "SessionRecord",
    "Stall",
    "VadSettings",
    "check_bridge_with_edge",
    "check_entry_point",
    "check_model_transport",
    "check_telephony_edge",
    "speech_like",
]

_CONFORMANCE = (
    "ConformanceError",
    "check_bridge_with_edge",
    "check_entry_point",
    "check_model_transport",
    "check_telephony_edge",
)
_LAZY = {
    name: "voicewire.testing.conformance"
    if name in _CONFORMANCE
    else "voicewire.testing.fake_realtime"
    for name in __all__
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
