"""The bridge server behind ``voicewire serve``: an aiohttp application for Twilio calls.

Routes:

* ``POST /twiml``: the voice webhook. Answers TwiML that connects the call to
  ``wss://PUBLIC/media-stream``, with the configured ``<Parameter>`` elements.
* ``GET /media-stream``: Twilio's Media Streams WebSocket. One call bridge per connection, each
  in its own request task: a call that fails is logged and closed, and no other call notices.
* ``GET /healthz``: JSON with the number of active calls.

``X-Twilio-Signature`` is verified on the webhook and on the WebSocket upgrade (403 otherwise).
The public WebSocket has a frame-size limit (close code 1009) and a message-rate limit (close
code 1008). On shutdown the server stops taking calls, lets the active ones finish for up to
``shutdown_timeout`` seconds, then closes them (the core's
:class:`~voicewire.bridge.aiohttp_server.CallRoster`).
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from voicewire.audio.formats import AudioFormat
from voicewire.bridge.aiohttp_server import (
    DEFAULT_SHUTDOWN_TIMEOUT,
    ActiveCall,
    CallRoster,
    run_app,
)
from voicewire.bridge.call import CallBridge
from voicewire.config import SessionConfig
from voicewire.errors import ConfigError
from voicewire.registry import create_edge, create_transport
from voicewire.transport import ConnectOptions
from voicewire_twilio.protocol import (
    CALL_TOKEN_PARAMETER,
    DEFAULT_MAX_BYTES,
    SIGNATURE_HEADER,
    CallTokens,
    SignatureValidator,
    TwilioBuildError,
    connect_stream_twiml,
    websocket_signature_url,
)
from voicewire_twilio.transport import model_format
from voicewire_twilio.websocket import AiohttpMediaSocket, MessageRateLimit

if TYPE_CHECKING:
    from voicewire.cli.serve import ServeSettings

__all__ = [
    "APP_KEY",
    "DEFAULT_MAX_MESSAGES_PER_SECOND",
    "DEFAULT_MESSAGE_BURST",
    "DEFAULT_REALTIME_URL",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "BridgeServer",
    "create_app",
    "serve",
]

logger = logging.getLogger("voicewire_twilio.server")

DEFAULT_REALTIME_URL: Final = "wss://api.openai.com/v1/realtime"
"""Where the model lives unless told otherwise (``VOICEWIRE_REALTIME_URL``)."""

DEFAULT_MAX_MESSAGES_PER_SECOND: Final = 200.0
"""Sustained inbound messages per second per call (Twilio sends about 50)."""

DEFAULT_MESSAGE_BURST: Final = 1000
"""Messages accepted at once after a quiet spell (20 s of bunched media frames)."""

TWIML_PATH: Final = "/twiml"
MEDIA_STREAM_PATH: Final = "/media-stream"
HEALTH_PATH: Final = "/healthz"

ModelFactory = Callable[[], Any]
"""Builds the model transport of one call (used instead of a registry name)."""

CallHook = Callable[[CallBridge], Awaitable[None] | None]
"""Called with each call's bridge before it runs, e.g. to attach listeners."""


def _check_public_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError("public_url", f"must be a str, got {type(value).__name__}")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http", "wss", "ws") or not parts.netloc:
        raise ConfigError(
            "public_url", "must be an absolute https:// URL (the address Twilio reaches)"
        )
    if parts.query or parts.fragment:
        raise ConfigError("public_url", "must not carry a query string or a fragment")
    return value.rstrip("/")


def _model_url(realtime_url: str, model: str | None) -> str:
    # The OpenAI endpoint takes the model as a query parameter; a URL that names one keeps it.
    parts = urlsplit(realtime_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if model is None or any(name == "model" for name, _ in query):
        return realtime_url
    query.append(("model", model))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _positive_number(name: str, value: object, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, f"must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(name, f"must be a finite number > 0, got {value!r}")
    return float(value)


class BridgeServer:
    """The state behind one application built by :func:`create_app` (see there for arguments).

    Never shows the API key or the auth token in its repr, its logs or its errors.
    """

    def __init__(
        self,
        *,
        realtime_url: str,
        api_key: str | None,
        model: str | None,
        instructions: str | None,
        voice: str | None,
        public_url: str | None,
        twilio_auth_token: str | None,
        twilio_account_sid: str | None,
        insecure_skip_signature: bool,
        telephony: str,
        model_transport: str | ModelFactory,
        model_options: Mapping[str, Any] | None,
        model_audio_format: AudioFormat | str | None,
        session_config: SessionConfig | None,
        stream_parameters: Mapping[str, str] | None,
        webhook_parameters: Sequence[str],
        require_call_token: bool,
        max_message_bytes: int,
        max_messages_per_second: float | None,
        message_burst: float,
        shutdown_timeout: float,
        max_calls: int | None,
        edge_options: Mapping[str, Any] | None,
        bridge_options: Mapping[str, Any] | None,
        on_call: CallHook | None,
    ) -> None:
        if twilio_auth_token is not None and not isinstance(twilio_auth_token, str):
            raise ConfigError("twilio_auth_token", "must be a str")
        if not twilio_auth_token and not insecure_skip_signature:
            raise ConfigError(
                "twilio_auth_token",
                "a Twilio auth token is required to verify that requests come from Twilio"
                " (X-Twilio-Signature); pass insecure_skip_signature=True only for local tests",
            )
        if not isinstance(realtime_url, str) or urlsplit(realtime_url).scheme not in (
            "ws",
            "wss",
        ):
            raise ConfigError("realtime_url", "must be a ws:// or wss:// URL")
        host = urlsplit(realtime_url).hostname or ""
        if not api_key and (host == "api.openai.com" or host.endswith(".openai.com")):
            raise ConfigError(
                "api_key", "an OpenAI API key is required for api.openai.com (OPENAI_API_KEY)"
            )
        if isinstance(max_message_bytes, bool) or not isinstance(max_message_bytes, int):
            raise ConfigError("max_message_bytes", "must be an int")
        if max_message_bytes < 1024:
            raise ConfigError("max_message_bytes", f"must be >= 1024, got {max_message_bytes}")
        rate = _positive_number("max_messages_per_second", max_messages_per_second, allow_none=True)
        self._rate = rate
        self._burst = float(message_burst)
        if rate is not None:
            MessageRateLimit(rate, self._burst)  # validates both
        self._roster = CallRoster(
            shutdown_timeout=shutdown_timeout,
            max_calls=max_calls,
            logger=logger,
            secrets=(api_key, twilio_auth_token),
        )
        self._public_url = _check_public_url(public_url)
        self._validator = (
            SignatureValidator(twilio_auth_token)
            if twilio_auth_token and not insecure_skip_signature
            else None
        )
        self._api_key = api_key
        self._model = model
        self._connect_url = _model_url(realtime_url, model)
        self._realtime_url = realtime_url
        config = session_config if session_config is not None else SessionConfig()
        overrides: dict[str, Any] = {}
        if instructions is not None:
            overrides["instructions"] = instructions
        if voice is not None:
            overrides["voice"] = voice
        if model is not None:
            overrides["model"] = model
        self._session_config = config.merge(SessionConfig(**overrides)) if overrides else config
        self._telephony = telephony
        self._model_transport = model_transport
        self._model_options = dict(model_options or {})
        self._model_audio_format = model_format(model_audio_format)
        self._stream_parameters = dict(stream_parameters or {})
        self._webhook_parameters = _webhook_parameters(webhook_parameters)
        if CALL_TOKEN_PARAMETER in self._stream_parameters:
            raise ConfigError("stream_parameters", f"{CALL_TOKEN_PARAMETER!r} is reserved")
        self._tokens: CallTokens | None = None
        if require_call_token:
            if self._validator is None or not twilio_auth_token:
                raise ConfigError(
                    "require_call_token",
                    "needs signature checks: a token minted for an unsigned webhook proves nothing",
                )
            if telephony != "twilio":
                raise ConfigError("require_call_token", f"checks Twilio streams, not {telephony!r}")
            self._tokens = CallTokens(twilio_auth_token)
        self._max_message_bytes = max_message_bytes
        self._edge_options = dict(edge_options or {})
        if twilio_account_sid is not None:
            if telephony != "twilio":
                raise ConfigError(
                    "twilio_account_sid", f"checks Twilio streams, not {telephony!r} ones"
                )
            if not isinstance(twilio_account_sid, str) or not twilio_account_sid:
                raise ConfigError("twilio_account_sid", "must be a non-empty str (AC...)")
            self._edge_options["account_sid"] = twilio_account_sid
        if self._tokens is not None:
            self._edge_options["call_tokens"] = self._tokens
        self._bridge_options = dict(bridge_options or {})
        self._on_call = on_call
        if self._public_url is not None:
            # Checked now, so that a bad URL fails at start-up and not on the first call.
            connect_stream_twiml(
                self._stream_url(None), self._stream_parameters, allow_insecure=True
            )

    def __repr__(self) -> str:
        return (
            f"<BridgeServer telephony={self._telephony!r} public_url={self._public_url!r}"
            f" signature={'on' if self._validator else 'off'}"
            f" active_calls={self._roster.active_calls}>"
        )

    # -- state ----------------------------------------------------------------------------------

    @property
    def roster(self) -> CallRoster:
        """The calls the server carries."""
        return self._roster

    @property
    def active_calls(self) -> int:
        """Calls currently connected."""
        return self._roster.active_calls

    @property
    def calls_started(self) -> int:
        """Calls accepted since the server started."""
        return self._roster.calls_started

    @property
    def draining(self) -> bool:
        """The server is shutting down and takes no new calls."""
        return self._roster.draining

    async def wait_for_calls(self, count: int = 0, *, timeout: float = 10.0) -> None:
        """Wait until exactly ``count`` calls are active; ``timeout`` is a hang guard.

        Raises:
            TimeoutError: The count was not reached in time.
        """
        await self._roster.wait_for_calls(count, timeout=timeout)

    @property
    def bridges(self) -> list[CallBridge]:
        """The bridges of the active calls."""
        return self._roster.bridges

    async def drain(self, timeout: float | None = None) -> int:
        """Stop taking calls, let the active ones finish for up to ``timeout`` (default
        ``shutdown_timeout``), close the rest; how many had to be closed. See
        :meth:`CallRoster.drain <voicewire.bridge.aiohttp_server.CallRoster.drain>`."""
        return await self._roster.drain(timeout)

    # -- URLs -----------------------------------------------------------------------------------

    def _stream_url(self, request: web.Request | None) -> str:
        if self._public_url is not None:
            base = self._public_url
            scheme = urlsplit(base).scheme
            ws_scheme = "wss" if scheme in ("https", "wss") else "ws"
            return ws_scheme + base[len(scheme) :] + MEDIA_STREAM_PATH
        assert request is not None
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        secure = request.secure or forwarded in ("https", "wss")
        return f"{'wss' if secure else 'ws'}://{request.host}{MEDIA_STREAM_PATH}"

    def _webhook_url(self, request: web.Request) -> str:
        if self._public_url is None:
            return str(request.url)
        base = self._public_url
        scheme = urlsplit(base).scheme
        if scheme in ("ws", "wss"):
            base = ("https" if scheme == "wss" else "http") + base[len(scheme) :]
        query = request.query_string
        return base + request.path + (f"?{query}" if query else "")

    def _upgrade_url(self, request: web.Request) -> str:
        if self._public_url is None:
            return websocket_signature_url(str(request.url))
        return websocket_signature_url(self._public_url + request.path)

    def _signature(self, request: web.Request) -> str | None:
        # Twilio sends the header once; a request that repeats it is not Twilio's, whichever
        # copy a proxy or a framework would pick.
        values = request.headers.getall(SIGNATURE_HEADER, [])
        return values[0] if len(values) == 1 else None

    def _refuse(self, request: web.Request, route: str) -> web.Response:
        # Never the signature itself or the token: only that it failed, and from where.
        count = len(request.headers.getall(SIGNATURE_HEADER, []))
        logger.warning(
            "rejected %s from %s: %s X-Twilio-Signature (check the auth token and public_url)",
            route,
            request.remote,
            "missing" if count == 0 else "invalid" if count == 1 else "repeated",
        )
        return web.Response(status=403, text="invalid or missing X-Twilio-Signature\n")

    # -- handlers -------------------------------------------------------------------------------

    async def twiml(self, request: web.Request) -> web.Response:
        """``POST /twiml``: verify the signature, answer ``<Connect><Stream>`` TwiML."""
        if self._roster.draining:
            return web.Response(status=503, text="shutting down\n")
        # Twilio posts plain form fields; a file upload cannot be part of a signed webhook.
        form = await request.post()
        params = {name: [v for v in form.getall(name) if isinstance(v, str)] for name in form}
        if self._validator is not None:
            signature = self._signature(request)
            if not self._validator.validate(self._webhook_url(request), params, signature):
                return self._refuse(request, TWIML_PATH)
        parameters = dict(self._stream_parameters)
        for name in self._webhook_parameters:
            values = params.get(name)
            if values:
                parameters[name] = values[0]
        if self._tokens is not None:
            call_sid = params.get("CallSid")
            if not call_sid:
                return web.Response(status=400, text="CallSid missing from the webhook\n")
            parameters[CALL_TOKEN_PARAMETER] = self._tokens.mint(
                call_sid[0], parameters, time.time()
            )
        stream_url = self._stream_url(request)
        try:
            body = connect_stream_twiml(
                stream_url, parameters, allow_insecure=stream_url.startswith("ws:")
            )
        except TwilioBuildError as exc:
            # A webhook field that TwiML cannot carry (a control character): the peer's text.
            return web.Response(status=400, text=f"{exc.field}: cannot be put in TwiML\n")
        return web.Response(text=body, content_type="text/xml")

    async def healthz(self, request: web.Request) -> web.Response:
        """``GET /healthz``: status, active calls and totals, as JSON (503 while draining)."""
        del request
        status, body = self._roster.health()
        body["telephony"] = self._telephony
        transport = self._model_transport
        body["model_transport"] = transport if isinstance(transport, str) else "custom"
        return web.json_response(status=status, data=body)

    async def media_stream(self, request: web.Request) -> web.StreamResponse:
        """``GET /media-stream``: verify the upgrade, then carry one call until it ends."""
        if self._validator is not None:
            signature = self._signature(request)
            if not self._validator.validate(self._upgrade_url(request), None, signature):
                self._roster.reject()
                return self._refuse(request, MEDIA_STREAM_PATH)
        ws = web.WebSocketResponse(max_msg_size=self._max_message_bytes, autoping=True)
        return await self._roster.carry(request, ws, self._run_call)

    async def _run_call(self, call: ActiveCall) -> None:
        limit = MessageRateLimit(self._rate, self._burst) if self._rate is not None else None
        socket = AiohttpMediaSocket(call.ws, rate_limit=limit)
        edge: Any = create_edge(self._telephony, websocket=socket, **self._edge_options)
        if isinstance(self._model_transport, str):
            model: Any = create_transport(self._model_transport, **self._model_options)
        else:
            model = self._model_transport()
        bridge = CallBridge(
            edge, model, model_audio_format=self._model_audio_format, **self._bridge_options
        )
        call.bridge = bridge
        if self._on_call is not None:
            result = self._on_call(bridge)
            if inspect.isawaitable(result):
                await result
        logger.info("call %d: connected", call.number)
        await bridge.run(
            ConnectOptions(
                api_key=self._api_key,
                model=self._model,
                url=self._connect_url,
                initial_session_config=self._session_config,
            )
        )
        logger.info("call %d: ended (call_sid=%s)", call.number, getattr(bridge, "call_id", None))

    async def on_shutdown(self, app: web.Application) -> None:
        """aiohttp ``on_shutdown`` handler: :meth:`drain` with ``shutdown_timeout``."""
        await self._roster.on_shutdown(app)


APP_KEY: Final = web.AppKey("voicewire_twilio.server", BridgeServer)
"""Where the application keeps its :class:`BridgeServer` (``app[APP_KEY]``)."""


def _webhook_parameters(names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str) or not all(isinstance(name, str) and name for name in names):
        raise ConfigError("webhook_parameters", "must be a sequence of field names, not a str")
    if CALL_TOKEN_PARAMETER in names:
        raise ConfigError("webhook_parameters", f"{CALL_TOKEN_PARAMETER!r} is reserved")
    return tuple(names)


def create_app(
    *,
    realtime_url: str = DEFAULT_REALTIME_URL,
    api_key: str | None = None,
    model: str | None = None,
    instructions: str | None = None,
    voice: str | None = None,
    public_url: str | None = None,
    twilio_auth_token: str | None = None,
    twilio_account_sid: str | None = None,
    insecure_skip_signature: bool = False,
    telephony: str = "twilio",
    model_transport: str | ModelFactory = "openai_ws",
    model_options: Mapping[str, Any] | None = None,
    model_audio_format: AudioFormat | str | None = None,
    session_config: SessionConfig | None = None,
    stream_parameters: Mapping[str, str] | None = None,
    webhook_parameters: Sequence[str] = (),
    require_call_token: bool = False,
    max_message_bytes: int = DEFAULT_MAX_BYTES,
    max_messages_per_second: float | None = DEFAULT_MAX_MESSAGES_PER_SECOND,
    message_burst: float = DEFAULT_MESSAGE_BURST,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    max_calls: int | None = None,
    edge_options: Mapping[str, Any] | None = None,
    bridge_options: Mapping[str, Any] | None = None,
    on_call: CallHook | None = None,
) -> web.Application:
    """Build the aiohttp application that bridges Twilio calls to a realtime model.

    Args:
        realtime_url: The model's WebSocket endpoint; ``?model=<model>`` is appended when the
            URL names no model.
        api_key: The model's API key (required for ``*.openai.com``). Never logged.
        model: The model name.
        instructions: The session's instructions.
        voice: The output voice.
        public_url: The public base URL Twilio reaches (``https://bridge.example.com``): the
            TwiML points at ``wss://<host>/media-stream`` and signatures are checked against
            it. Without it, both are derived from each request's ``Host`` (and
            ``X-Forwarded-Proto``), which is wrong behind most proxies.
        twilio_auth_token: The account's auth token, to verify ``X-Twilio-Signature``. Required
            unless ``insecure_skip_signature``. Never logged.
        twilio_account_sid: The account's SID (``AC...``). Each stream's ``start`` must name it,
            or the call is ended before it reaches the model (``TwilioEdge(account_sid=...)``):
            this is what stops a replayed upgrade, whose signature is valid. ``None``: any.
            With this or ``require_call_token``, each call's model connects only once the
            ``start`` was accepted (the edge declares ``checks_call_start``), so a refused
            stream opens no model session.
        insecure_skip_signature: Accept unsigned requests (local testing only).
        telephony: The telephony edge's registry name; its factory is called with
            ``websocket=<MediaSocket>`` plus ``edge_options``.
        model_transport: The model transport's registry name, or a zero-argument factory.
        model_options: Keyword options for the model transport's factory.
        model_audio_format: ``None`` (pass-through in the edge's format) or the model session's
            format, which makes the bridge transcode.
        session_config: Base session configuration; ``instructions``, ``voice`` and ``model``
            override its fields.
        stream_parameters: ``<Parameter>`` elements of the TwiML ``<Stream>`` (they arrive in
            the call's ``start.customParameters``).
        webhook_parameters: Fields of Twilio's webhook request (``From``, ``To``,
            ``CallerName``, ...) copied into ``<Parameter>`` elements of the same name, so that
            the call's ``custom_parameters`` carry them; a field the request lacks is left out.
        require_call_token: Bind each stream to the webhook Twilio signed for its call: the
            TwiML carries a call token (:class:`~voicewire_twilio.protocol.CallTokens`, keyed
            from the auth token) and a stream whose ``start`` lacks a valid one for its
            ``callSid`` and parameters is ended before it reaches the model. Stops a replayed
            upgrade, and makes ``custom_parameters`` as trustworthy as the webhook. Needs the
            auth token, and this server's ``/twiml`` as the call's TwiML.
        max_message_bytes: Largest WebSocket frame accepted from the media stream; a larger one
            closes the call with code 1009. A media frame is about 400 bytes.
        max_messages_per_second: Sustained inbound message rate per call; exceeding it (beyond
            ``message_burst``) closes the call with code 1008. ``None`` disables the limit.
        message_burst: Messages accepted at once after a quiet spell.
        shutdown_timeout: Seconds active calls get to finish when the application shuts down.
        max_calls: Calls accepted at once; more are answered 503. ``None``: no limit.
        edge_options: Keyword options for the edge (e.g. ``outbound_buffer_ms``).
        bridge_options: Keyword options for :class:`~voicewire.bridge.CallBridge`.
        on_call: Called with each call's bridge before it runs (sync or async), e.g. to attach
            listeners or tools.

    Returns:
        The application; its :class:`BridgeServer` is ``app[APP_KEY]``.

    Raises:
        ConfigError: The configuration is unusable (no auth token and no
            ``insecure_skip_signature``, no API key for OpenAI, a bad URL or limit, a call
            token required without signature checks).
    """
    server = BridgeServer(
        realtime_url=realtime_url,
        api_key=api_key,
        model=model,
        instructions=instructions,
        voice=voice,
        public_url=public_url,
        twilio_auth_token=twilio_auth_token,
        twilio_account_sid=twilio_account_sid,
        insecure_skip_signature=insecure_skip_signature,
        telephony=telephony,
        model_transport=model_transport,
        model_options=model_options,
        model_audio_format=model_audio_format,
        session_config=session_config,
        stream_parameters=stream_parameters,
        webhook_parameters=webhook_parameters,
        require_call_token=require_call_token,
        max_message_bytes=max_message_bytes,
        max_messages_per_second=max_messages_per_second,
        message_burst=message_burst,
        shutdown_timeout=shutdown_timeout,
        max_calls=max_calls,
        edge_options=edge_options,
        bridge_options=bridge_options,
        on_call=on_call,
    )
    app = web.Application()
    app[APP_KEY] = server
    app.router.add_post(TWIML_PATH, server.twiml)
    app.router.add_get(MEDIA_STREAM_PATH, server.media_stream)
    app.router.add_get(HEALTH_PATH, server.healthz)
    app.on_shutdown.append(server.on_shutdown)
    return app


async def serve(settings: ServeSettings, ready: Callable[[str], None]) -> None:
    """Run :func:`create_app` from ``voicewire serve`` settings until cancelled.

    Calls ``ready("http://HOST:PORT")`` once listening. Cancelling the coroutine shuts the
    server down gracefully (see :meth:`BridgeServer.on_shutdown`).
    """
    app = create_app(
        realtime_url=settings.realtime_url,
        api_key=settings.api_key,
        model=settings.model,
        instructions=settings.instructions,
        voice=settings.voice,
        public_url=settings.public_url,
        twilio_auth_token=settings.auth_token,
        twilio_account_sid=settings.account_sid,
        require_call_token=settings.require_call_token,
        insecure_skip_signature=settings.insecure_skip_signature,
        telephony=settings.telephony,
        model_transport=settings.model_transport,
        shutdown_timeout=settings.shutdown_timeout,
        max_calls=settings.max_calls,
    )
    await run_app(app, app[APP_KEY].roster, host=settings.host, port=settings.port, ready=ready)
