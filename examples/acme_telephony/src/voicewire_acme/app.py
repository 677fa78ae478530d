"""The aiohttp route Acme dials: one WebSocket per call, bridged to a model transport.

::

    from aiohttp import web
    import voicewire
    from voicewire.transport import ConnectOptions
    from voicewire_acme.app import create_app

    app = create_app(
        model_factory=lambda: voicewire.create_transport("openai_ws"),
        connect_options=ConnectOptions(api_key=key),
    )
    web.run_app(app, port=8080)   # Acme dials ws://HOST:8080/acme/media
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web

from voicewire.audio.formats import AudioFormat
from voicewire.bridge import BridgeableModel, CallBridge
from voicewire.errors import ProtocolError
from voicewire.transport import ConnectOptions
from voicewire_acme.edge import AcmeEdge

__all__ = ["MEDIA_PATH", "create_app"]

logger = logging.getLogger("voicewire_acme")

MEDIA_PATH: Final = "/acme/media"
"""Where Acme's media WebSocket is served."""


def create_app(
    *,
    model_factory: Callable[[], BridgeableModel],
    connect_options: ConnectOptions,
    model_audio_format: AudioFormat | None = None,
    bridge_options: Mapping[str, Any] | None = None,
    path: str = MEDIA_PATH,
) -> web.Application:
    """An aiohttp application that bridges every Acme call to a fresh model transport.

    Args:
        model_factory: Builds one unconnected model transport per call.
        connect_options: How the bridge connects it.
        model_audio_format: The model session's format; ``None`` passes Acme's G.711 through.
        bridge_options: More keyword arguments of :class:`~voicewire.bridge.CallBridge`.
        path: The route of the media WebSocket.

    Returns:
        The application.
    """
    options = dict(bridge_options or {})

    async def media(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        edge = AcmeEdge(ws)
        try:
            # The bridge reads the edge's format once: let hello announce it first.
            await edge.accept()
        except ProtocolError as exc:
            logger.info("acme: %s", exc)
            await edge.close("no hello")
            return ws
        bridge = CallBridge(edge, model_factory(), model_audio_format=model_audio_format, **options)
        logger.info("acme: call %s started", edge.call_id)
        await bridge.run(connect_options)
        logger.info("acme: call %s ended", edge.call_id)
        return ws

    app = web.Application()
    app.router.add_get(path, media)
    return app
