"""The aiohttp server Telnyx streams to, and the ``voicewire serve --telephony telnyx`` runner.

Routes: ``GET /media-stream`` (Telnyx's media WebSocket: one :class:`CallBridge` per
connection) and ``GET /healthz`` (JSON with the number of active calls; 503 while shutting
down). The calls are carried by the core's :class:`~voicewire.bridge.aiohttp_server.CallRoster`:
a call that fails is logged and closed without touching the others, past ``max_calls`` a new call
is answered 503, and on shutdown the server stops taking calls and lets the active ones finish
for up to ``shutdown_timeout`` seconds.

Telnyx documents one check for the stream: with a streaming auth token configured, it sends
``x-telnyx-streaming-auth-token`` on the upgrade (and in ``connected``). Given ``auth_token``,
the upgrade is refused (403) unless that header matches. No request signature is documented
for the stream itself.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

import voicewire
from voicewire.audio.formats import PCM16_24K, AudioFormat
from voicewire.bridge import BridgeableModel, CallBridge
from voicewire.bridge.aiohttp_server import (
    DEFAULT_SHUTDOWN_TIMEOUT,
    ActiveCall,
    CallRoster,
    run_app,
)
from voicewire.bridge.socket import MessageRateLimit
from voicewire.config import SessionConfig
from voicewire.errors import ConfigError, ProtocolError
from voicewire.transport import ConnectOptions
from voicewire_telnyx.caller import AUTH_HEADER
from voicewire_telnyx.edge import TelnyxEdge
from voicewire_telnyx.protocol import DEFAULT_MAX_FRAME_BYTES

if TYPE_CHECKING:
    from voicewire.cli.serve import ServeSettings

__all__ = ["DEFAULT_MESSAGE_BURST", "HEALTH_PATH", "MEDIA_PATH", "ROSTER", "create_app", "serve"]

logger = logging.getLogger("voicewire_telnyx")

MEDIA_PATH: Final = "/media-stream"
HEALTH_PATH: Final = "/healthz"
DEFAULT_MESSAGE_BURST: Final = 1000
"""Messages a call may send at once after a quiet spell: 20 s of 20 ms frames."""
ROSTER: Final = web.AppKey("voicewire_telnyx_roster", CallRoster)
"""Where the application keeps the calls it carries (``app[ROSTER]``)."""


def create_app(
    *,
    model_factory: Callable[[], BridgeableModel],
    connect_options: ConnectOptions,
    model_audio_format: AudioFormat | None = None,
    bridge_options: Mapping[str, Any] | None = None,
    auth_token: str | None = None,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    max_calls: int | None = None,
    max_messages_per_second: float | None = 200.0,
) -> web.Application:
    """An aiohttp application that bridges every Telnyx stream to a fresh model transport.

    Args:
        model_factory: Builds one unconnected model transport per call.
        connect_options: How the bridge connects it.
        model_audio_format: The model session's format. ``None`` passes G.711 through, and
            has L16 calls transcoded to PCM16 24 kHz (what realtime models take).
        bridge_options: More keyword arguments of :class:`~voicewire.bridge.CallBridge`.
        auth_token: Telnyx's streaming auth token; ``None`` accepts every upgrade.
        shutdown_timeout: Seconds active calls get to finish when the application shuts down.
        max_calls: Calls carried at once; more are answered 503. ``None``: no limit.
        max_messages_per_second: Each call's inbound message rate (bursts up to
            :data:`DEFAULT_MESSAGE_BURST`); a call past it is closed with 1008. Telnyx sends 50
            frames a second. ``None``: no limit. Frames above the protocol's size limit are
            refused by aiohttp (closed with 1009) before they are buffered.

    Raises:
        ConfigError: ``max_messages_per_second`` is not a finite number > 0.
    """
    options = dict(bridge_options or {})
    if max_messages_per_second is not None:
        MessageRateLimit(max_messages_per_second, DEFAULT_MESSAGE_BURST)  # refuses a bad rate now
    key = connect_options.api_key
    secrets = (auth_token, key if isinstance(key, str) else None)
    roster = CallRoster(
        shutdown_timeout=shutdown_timeout, max_calls=max_calls, logger=logger, secrets=secrets
    )

    async def media(request: web.Request) -> web.StreamResponse:
        if auth_token is not None and not hmac.compare_digest(
            request.headers.get(AUTH_HEADER, "").encode(), auth_token.encode()
        ):
            roster.reject()
            raise web.HTTPForbidden(text="bad or missing streaming auth token")
        ws = web.WebSocketResponse(max_msg_size=DEFAULT_MAX_FRAME_BYTES)
        return await roster.carry(request, ws, run_call)

    async def run_call(call: ActiveCall) -> None:
        limit = (
            MessageRateLimit(max_messages_per_second, DEFAULT_MESSAGE_BURST)
            if max_messages_per_second is not None
            else None
        )
        edge = TelnyxEdge(call.ws, rate_limit=limit)
        try:
            await edge.accept()  # the bridge reads the edge's format once
        except ProtocolError as exc:
            logger.info("telnyx: %s", exc)
            await edge.close("no start")
            return
        fmt = model_audio_format
        edge_format = edge.capabilities.audio_format
        if fmt is None and edge_format.encoding == "pcm16be":
            fmt = PCM16_24K  # L16 is big-endian: the bridge converts it to what models take
        call.bridge = CallBridge(edge, model_factory(), model_audio_format=fmt, **options)
        logger.info("telnyx: call %s started", edge.call_id)
        await call.bridge.run(connect_options)
        logger.info("telnyx: call %s ended", edge.call_id)

    async def healthz(request: web.Request) -> web.Response:
        status, body = roster.health()
        return web.json_response(status=status, data=body)

    app = web.Application()
    app[ROSTER] = roster
    app.router.add_get(MEDIA_PATH, media)
    app.router.add_get(HEALTH_PATH, healthz)
    app.on_shutdown.append(roster.on_shutdown)
    return app


async def serve(settings: ServeSettings, ready: Callable[[str], None]) -> None:
    """Run :func:`create_app` from ``voicewire serve`` settings until cancelled.

    ``settings.auth_token`` is Telnyx's streaming auth token here.

    Raises:
        ConfigError: No auth token and no ``insecure_skip_signature``, or
            ``require_call_token`` (a Twilio protection).
    """
    if settings.auth_token is None and not settings.insecure_skip_signature:
        raise ConfigError("auth_token", "set Telnyx's streaming auth token, or skip the check")
    if settings.require_call_token:
        # Refused rather than ignored: the operator asked for a protection this server lacks.
        raise ConfigError("require_call_token", "Telnyx streams carry no voicewire call token")
    name = settings.model_transport

    def model() -> BridgeableModel:
        transport = voicewire.create_transport(name)
        if not isinstance(transport, BridgeableModel):
            raise ConfigError("model_transport", f"{name!r} cannot be bridged")
        return transport

    app = create_app(
        model_factory=model,
        connect_options=ConnectOptions(
            api_key=settings.api_key,
            model=settings.model,
            url=settings.realtime_url,
            initial_session_config=SessionConfig(
                instructions=settings.instructions, voice=settings.voice, model=settings.model
            ),
        ),
        auth_token=settings.auth_token,
        shutdown_timeout=settings.shutdown_timeout,
        max_calls=settings.max_calls,
    )
    await run_app(app, app[ROSTER], host=settings.host, port=settings.port, ready=ready)
