"""The aiohttp route Acme dials: one WebSocket per call, bridged to a model transport.

The calls are carried by the core's :class:`~voicewire.bridge.aiohttp_server.CallRoster`: a call
that fails is closed alone, past ``max_calls`` a call is answered 503, and a shutdown lets the
calls in progress finish first. Serve it with :func:`~voicewire.bridge.aiohttp_server.run_app`,
which drains the calls while they are still read::

    import asyncio
    import voicewire
    from voicewire.bridge.aiohttp_server import run_app
    from voicewire.transport import ConnectOptions
    from voicewire_acme.app import ROSTER, create_app

    app = create_app(
        model_factory=lambda: voicewire.create_transport("openai_ws"),
        connect_options=ConnectOptions(api_key=key),
        max_calls=200,
    )
    # Acme dials ws://HOST:8080/acme/media; Ctrl-C drains, then stops.
    asyncio.run(run_app(app, app[ROSTER], host="0.0.0.0", port=8080, ready=print))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web

from voicewire.audio.formats import AudioFormat
from voicewire.bridge import BridgeableModel, CallBridge
from voicewire.bridge.aiohttp_server import DEFAULT_SHUTDOWN_TIMEOUT, ActiveCall, CallRoster
from voicewire.errors import ProtocolError
from voicewire.transport import ConnectOptions
from voicewire_acme.edge import AcmeEdge

__all__ = ["MEDIA_PATH", "ROSTER", "create_app"]

logger = logging.getLogger("voicewire_acme")

MEDIA_PATH: Final = "/acme/media"
"""Where Acme's media WebSocket is served."""

ROSTER: Final = web.AppKey("voicewire_acme_roster", CallRoster)
"""Where the application keeps the calls it carries (``app[ROSTER]``)."""


def create_app(
    *,
    model_factory: Callable[[], BridgeableModel],
    connect_options: ConnectOptions,
    model_audio_format: AudioFormat | None = None,
    bridge_options: Mapping[str, Any] | None = None,
    path: str = MEDIA_PATH,
    max_calls: int | None = None,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
) -> web.Application:
    """An aiohttp application that bridges every Acme call to a fresh model transport.

    Args:
        model_factory: Builds one unconnected model transport per call.
        connect_options: How the bridge connects it.
        model_audio_format: The model session's format; ``None`` passes Acme's G.711 through.
        bridge_options: More keyword arguments of :class:`~voicewire.bridge.CallBridge`.
        path: The route of the media WebSocket.
        max_calls: Calls carried at once; more are answered 503. ``None``: no limit.
        shutdown_timeout: Seconds active calls get to finish when the application shuts down.

    Returns:
        The application.
    """
    options = dict(bridge_options or {})
    key = connect_options.api_key
    roster = CallRoster(
        shutdown_timeout=shutdown_timeout,
        max_calls=max_calls,
        logger=logger,
        secrets=(key if isinstance(key, str) else None,),
    )

    async def media(request: web.Request) -> web.StreamResponse:
        return await roster.carry(request, web.WebSocketResponse(), run_call)

    async def run_call(call: ActiveCall) -> None:
        edge = AcmeEdge(call.ws)
        try:
            # The bridge reads the edge's format once: let hello announce it first.
            await edge.accept()
        except ProtocolError as exc:
            logger.info("acme: %s", exc)
            await edge.close("no hello")
            return
        call.bridge = CallBridge(
            edge, model_factory(), model_audio_format=model_audio_format, **options
        )
        logger.info("acme: call %s started", edge.call_id)
        await call.bridge.run(connect_options)
        logger.info("acme: call %s ended", edge.call_id)

    app = web.Application()
    app[ROSTER] = roster
    app.router.add_get(path, media)
    app.on_shutdown.append(roster.on_shutdown)
    return app
