"""voicewire plugin ``openai_ws``: the hook implementations of voicewire-openai-ws.

This module is the value of the distribution's ``voicewire.plugins`` entry point. It registers
the ``openai_ws`` model transport, so that ``voicewire.create_transport("openai_ws", **options)``
builds an :class:`~voicewire_openai_ws.transport.OpenAIRealtimeWebSocket` with those keyword
options.
"""

from __future__ import annotations

from typing import Any

from voicewire.hookspecs import hookimpl
from voicewire.registry import Registry
from voicewire_openai_ws.transport import OpenAIRealtimeWebSocket

__all__ = ["create_openai_ws", "voicewire_register_transports"]


def create_openai_ws(**options: Any) -> OpenAIRealtimeWebSocket:
    """Build the transport from the keyword options of ``OpenAIRealtimeWebSocket``.

    Args:
        **options: Any keyword argument of :class:`OpenAIRealtimeWebSocket` (``model``,
            ``api_key``, ``url``, ``reconnect``, ...).

    Returns:
        An unconnected transport.
    """
    return OpenAIRealtimeWebSocket(**options)


@hookimpl
def voicewire_register_transports(registry: Registry) -> None:
    """Register the ``openai_ws`` model transport."""
    registry.add_model_transport(
        "openai_ws",
        create_openai_ws,
        description="OpenAI Realtime API (GA) over WebSocket, with optional reconnection",
    )
