"""voicewire-twilio: the Twilio Media Streams edge and bridge server.

* :class:`TwilioEdge`: the Twilio dialect as a ``voicewire.bridge.TelephonyEdge``;
* :class:`TwilioRealtimeTransportLayer`: ``CallBridge(TwilioEdge(ws), model)`` in one object;
* :func:`create_app`: the aiohttp application behind ``voicewire serve``;
* :class:`MediaSocket`: the adapter protocol for hosting the edge on another web server.

The server and the transport layer are imported on first use, so that ``import voicewire_twilio``
stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from voicewire_twilio.edge import TwilioEdge, TwilioEdgeStats
from voicewire_twilio.events import TwilioMessageEvent
from voicewire_twilio.websocket import (
    AiohttpMediaSocket,
    MediaSocket,
    MediaSocketError,
    MessageRateLimit,
)

if TYPE_CHECKING:
    from voicewire_twilio.server import create_app
    from voicewire_twilio.transport import TwilioRealtimeTransportLayer

__version__ = "0.1.0"

__all__ = [
    "AiohttpMediaSocket",
    "MediaSocket",
    "MediaSocketError",
    "MessageRateLimit",
    "TwilioEdge",
    "TwilioEdgeStats",
    "TwilioMessageEvent",
    "TwilioRealtimeTransportLayer",
    "__version__",
    "create_app",
]

_LAZY = {
    "create_app": "voicewire_twilio.server",
    "TwilioRealtimeTransportLayer": "voicewire_twilio.transport",
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
