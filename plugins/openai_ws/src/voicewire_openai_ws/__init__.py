"""voicewire-openai-ws: the OpenAI Realtime API over WebSocket.

:class:`OpenAIRealtimeWebSocket` is the transport (registered as ``openai_ws``);
:mod:`voicewire_openai_ws.protocol` is the sans-I/O protocol layer it drives.
"""

from __future__ import annotations

from voicewire_openai_ws._version import __version__
from voicewire_openai_ws.errors import ConnectFailedError
from voicewire_openai_ws.reconnect import ReconnectPolicy
from voicewire_openai_ws.transport import (
    DEFAULT_AUDIO_BUFFER_LIMIT,
    DEFAULT_BASE_URL,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MODEL,
    OpenAIRealtimeWebSocket,
    default_url,
)

__all__ = [
    "DEFAULT_AUDIO_BUFFER_LIMIT",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MODEL",
    "ConnectFailedError",
    "OpenAIRealtimeWebSocket",
    "ReconnectPolicy",
    "__version__",
    "default_url",
]
