"""``OpenAIRealtimeWebSocket``: the OpenAI Realtime API (GA) over a ``websockets`` client.

The transport owns the socket, the clock and the tasks; everything the protocol knows lives in
:class:`~voicewire_openai_ws.protocol.RealtimeProtocol`, which it drives:

* one *connection task* reads frames, feeds each one to ``protocol.receive(frame, now_ms)``,
  emits the events that come back, and writes what the protocol queued in reaction. After an
  unexpected drop the same task reconnects (when a :class:`ReconnectPolicy` is set), so there is
  never a second reader or a reconnect racing the reader;
* every write, from that task or from the application's ``send_*`` calls, goes through one
  lock that takes the protocol's queued frames and writes them in order.

See ``docs/openai/transport.md`` for the options, the events and how this differs from the
reference transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)
from websockets.protocol import State
from websockets.uri import parse_uri

from voicewire.errors import (
    ConfigError,
    ConnectionClosedError,
    NotConnectedError,
    TransportStateError,
)
from voicewire.events import (
    AudioEvent,
    AudioInterruptedEvent,
    ErrorEvent,
    FunctionCallEvent,
    RawServerEvent,
    ReconnectedEvent,
    SpeechStartedEvent,
    SpeechStoppedEvent,
    TurnDoneEvent,
    TurnStartedEvent,
)
from voicewire.transport import ConnectOptions, TransportBase
from voicewire_openai_ws._version import __version__
from voicewire_openai_ws.errors import ConnectFailedError
from voicewire_openai_ws.pending_audio import PendingAudio
from voicewire_openai_ws.protocol import RealtimeProtocol
from voicewire_openai_ws.reconnect import ReconnectPolicy

if TYPE_CHECKING:
    from voicewire.audio.formats import AudioFormat
    from voicewire.config import SessionConfig
    from voicewire.events import TransportEvent
    from voicewire.items import RealtimeItem, UserMessageItem
    from voicewire.transport import ApiKey

    _LoggerAdapter = logging.LoggerAdapter[logging.Logger]
else:
    _LoggerAdapter = logging.LoggerAdapter

__all__ = [
    "DEFAULT_AUDIO_BUFFER_LIMIT",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MODEL",
    "HeadersProvider",
    "OpenAIRealtimeWebSocket",
    "default_url",
]

logger = logging.getLogger("voicewire.openai_ws")

DEFAULT_MODEL: Final = "gpt-realtime"
"""The model used when neither the constructor nor ``connect()`` names one."""

DEFAULT_BASE_URL: Final = "wss://api.openai.com/v1/realtime"
"""The Realtime endpoint; ``?model=<model>`` is appended when no URL is given."""

DEFAULT_MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
"""Largest server message accepted (16 MiB), bigger than any event the API sends in a call:
``conversation.item.retrieved`` with a few minutes of PCM audio is the largest."""

DEFAULT_AUDIO_BUFFER_LIMIT: Final = 1024 * 1024
"""Input audio held while (re)connecting: 1 MiB, about 21 s of PCM16 at 24 kHz or 2 min of G.711."""

HeadersProvider = Callable[[], Mapping[str, str]]
"""Returns extra handshake headers for each connection attempt (e.g. W3C ``traceparent``)."""

_USER_AGENT: Final = f"voicewire-openai-ws/{__version__}"
_AUTH_HEADERS: Final = frozenset({"authorization", "api-key"})
_REDACTED: Final = "***"
_BODY_PREVIEW: Final = 300
_CLOSE_MESSAGE_TOO_BIG: Final = 1009
_CLOSE_INTERNAL_ERROR: Final = 1011
# Client frames built by the protocol start with their type; reading it there saves a JSON parse
# per frame when an observer wants the type of every client event.
_TYPE_PREFIX: Final = '{"type":"'
_RESPONSE_CREATE_PREFIX: Final = '{"type":"response.create"'


def default_url(model: str) -> str:
    """The OpenAI Realtime URL for ``model``: ``wss://api.openai.com/v1/realtime?model=<model>``.

    Args:
        model: The model name.

    Returns:
        The URL, with the model quoted for a query string.
    """
    return f"{DEFAULT_BASE_URL}?model={quote(model, safe='')}"


def _scrub(text: str, secrets: Sequence[str]) -> str:
    # Server messages and library errors are shown to users; credentials must not travel with
    # them. Secrets come longest first, so none is left half-replaced by a shorter one.
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, _REDACTED)
    return text


def _secrets_of(key: str | None, headers: Mapping[str, str]) -> tuple[str, ...]:
    """The strings to hide: the key, and the credential of every credential header."""
    found: set[str] = set()
    for name, value in headers.items():
        if name.lower() in _AUTH_HEADERS and value:
            # "Bearer <token>" hides the token only, so a log still shows the scheme used.
            scheme, _, token = value.partition(" ")
            found.add(token.strip() if scheme.lower() == "bearer" and token.strip() else value)
    if key:
        found.add(key)
    return tuple(sorted(found, key=len, reverse=True))


class _RedactingLogger(_LoggerAdapter):
    """The ``websockets`` logger, with every credential removed from every message.

    ``websockets`` logs each handshake header at DEBUG level, ``Authorization`` and ``api-key``
    included; an application that turns on debug logging must not find its key in the log.
    """

    def __init__(self, target: logging.Logger, secrets: Sequence[str]) -> None:
        super().__init__(target, {})
        self._secrets = tuple(secrets)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        secrets = self._secrets
        if secrets:
            msg = _scrub(str(msg), secrets)
            args = tuple(_scrub(a, secrets) if isinstance(a, str) else a for a in args)
        # stacklevel: the record points at the websockets line that logged, not at this adapter.
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.log(level, msg, *args, **kwargs)


def _display_url(url: str | None) -> str | None:
    """``scheme://host/path`` of a URL: no query, no user info, where credentials could hide."""
    if url is None:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def _has_auth_header(headers: Mapping[str, str]) -> bool:
    return any(name.lower() in _AUTH_HEADERS for name in headers)


def _is_openai_host(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "api.openai.com" or host.endswith(".openai.com")


def _frame_type(frame: str) -> str:
    if frame.startswith(_TYPE_PREFIX):
        end = frame.find('"', len(_TYPE_PREFIX))
        if end > 0:
            return frame[len(_TYPE_PREFIX) : end]
    try:
        kind = json.loads(frame).get("type")
    except (ValueError, AttributeError):
        return "unknown"
    return kind if isinstance(kind, str) else "unknown"


def _positive(name: str, value: float | None, *, allow_none: bool) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise ConfigError(name, "must be a number > 0")
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(
            name, f"must be a number > 0{' or None' if allow_none else ''}, got {value!r}"
        )
    return float(value)


def _size(name: str, value: int, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(name, f"must be an int >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(name, f"must be at most {maximum}, got {value!r}")
    return value


class _Target:
    """Where and how one session connects; kept for its reconnects. Never shows the key."""

    __slots__ = ("api_key", "headers", "initial_config", "url")

    def __init__(
        self,
        url: str,
        api_key: ApiKey | None,
        headers: Mapping[str, str],
        initial_config: SessionConfig | None,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.headers = dict(headers)
        self.initial_config = initial_config

    def __repr__(self) -> str:
        return f"<_Target url={_display_url(self.url)!r} headers={len(self.headers)}>"


class _Drop:
    """Why a connection ended, as the connection task saw it."""

    __slots__ = ("close_code", "code", "message")

    def __init__(self, code: str, message: str, close_code: int | None) -> None:
        self.code = code
        self.message = message
        self.close_code = close_code


class OpenAIRealtimeWebSocket(TransportBase):
    """The OpenAI Realtime API (GA protocol) over WebSocket.

    Args:
        model: The model of the session (``connect(ConnectOptions(model=...))`` overrides it).
        api_key: An API key, or a zero-argument coroutine function returning one (awaited at
            every connection attempt, so short-lived keys stay fresh). ``ConnectOptions.api_key``
            overrides it. Never logged, never in a ``repr``.
        url: The endpoint. Precedence: ``ConnectOptions.url``, then this, then
            ``wss://api.openai.com/v1/realtime?model=<model>``. The URL is used as given.
        reconnect: Reconnect after an unexpected drop (see :class:`ReconnectPolicy`); ``None``
            (the default) reports the drop and goes ``disconnected``, like the reference.
        max_message_size: Largest server message accepted, in bytes. A larger one closes the
            connection (code 1009) and is reported as ``message_too_big``.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds to wait for a pong before the connection counts as dead;
            ``None`` waits forever.
        connect_timeout: Seconds allowed for one connection attempt: API key, handshake, first
            ``session.update`` and the server's ``session.created``.
        close_timeout: Seconds allowed for the closing handshake.
        audio_buffer_limit: Bytes of input audio held while connecting or reconnecting (0: none;
            every chunk sent then is dropped and reported).
        extra_headers: Headers added to every handshake (``ConnectOptions.extra_headers`` adds to
            and overrides them). An ``Authorization`` or ``api-key`` header here replaces the
            ``Authorization: Bearer`` one built from the key.
        headers_provider: Called at every connection attempt for more headers, e.g. the W3C
            ``traceparent`` of the current span; an exception in it is logged and ignored.
        compression: Offer permessage-deflate, as the official SDK does. It saves about a
            quarter of the bytes of base64 audio and costs CPU on every frame (see
            ``bench/openai_ws.py``); turn it off for many calls per process on a fast network.
        automatic_barge_in: Interrupt playback when the server hears the user start speaking;
            a call bridge that tracks playback itself turns it off.
        observers: Session observers attached for the transport's whole life.
        plugin_observers: Ask the plugins for session observers when a session starts.

    Raises:
        ConfigError: An option is out of range.
    """

    transport_id: ClassVar[str] = "openai_ws"

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        api_key: ApiKey | None = None,
        url: str | None = None,
        reconnect: ReconnectPolicy | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        connect_timeout: float = 15.0,
        close_timeout: float = 5.0,
        audio_buffer_limit: int = DEFAULT_AUDIO_BUFFER_LIMIT,
        extra_headers: Mapping[str, str] | None = None,
        headers_provider: HeadersProvider | None = None,
        compression: bool = True,
        automatic_barge_in: bool = True,
        observers: Iterable[object] = (),
        plugin_observers: bool = True,
    ) -> None:
        super().__init__(observers=observers, plugin_observers=plugin_observers)
        if not isinstance(model, str) or not model:
            raise ConfigError("model", f"must be a non-empty string, got {model!r}")
        if url is not None and (not isinstance(url, str) or not url):
            raise ConfigError("url", "must be a non-empty string or None")
        if reconnect is not None and not isinstance(reconnect, ReconnectPolicy):
            raise ConfigError("reconnect", "must be a ReconnectPolicy or None")
        if api_key is not None and not isinstance(api_key, str) and not callable(api_key):
            raise ConfigError(
                "api_key", "must be a string, an async callable returning one, or None"
            )
        if headers_provider is not None and not callable(headers_provider):
            raise ConfigError("headers_provider", "must be a callable or None")
        self._model = model
        self._api_key = api_key
        self._url = url
        self._reconnect = reconnect
        self._max_message_size = _size("max_message_size", max_message_size, minimum=1024)
        self._ping_interval = _positive("ping_interval", ping_interval, allow_none=True)
        self._ping_timeout = _positive("ping_timeout", ping_timeout, allow_none=True)
        self._connect_timeout = _positive("connect_timeout", connect_timeout, allow_none=False)
        self._close_timeout = _positive("close_timeout", close_timeout, allow_none=False)
        self._audio_buffer_limit = _size("audio_buffer_limit", audio_buffer_limit, minimum=0)
        self._extra_headers = dict(extra_headers or {})
        self._headers_provider = headers_provider
        self._compression: str | None = "deflate" if compression else None
        self._automatic_barge_in = bool(automatic_barge_in)

        self._protocol = RealtimeProtocol(model=model, automatic_barge_in=self._automatic_barge_in)
        self._pending = PendingAudio(self._audio_buffer_limit)
        self._overflow_reported = False
        self._overflow_first_bytes = 0
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._target: _Target | None = None
        self._send_lock = asyncio.Lock()
        self._closing = False
        self._close_done: asyncio.Future[None] | None = None
        self._last_server_error: tuple[str | None, str] | None = None
        # Observer bookkeeping for on_first_audio: when the current turn started, and which
        # response already reported its first audio.
        self._turn_origin_ms: float | None = None
        self._first_audio_response: str | None = None

    # -- state ----------------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The model of the current (or next) session."""
        return self._model

    @property
    def url(self) -> str | None:
        """The default URL (constructor's, or the last ``ConnectOptions.url`` that connected)."""
        return self._url

    @property
    def reconnect_policy(self) -> ReconnectPolicy | None:
        """The reconnect policy, if any."""
        return self._reconnect

    @property
    def protocol(self) -> RealtimeProtocol:
        """The session's protocol state, for inspection (drive it through the transport)."""
        return self._protocol

    @property
    def automatic_barge_in(self) -> bool:
        """Whether the transport interrupts playback itself when the server hears the user speak.

        On (the default), ``input_audio_buffer.speech_started`` truncates the audio being played
        at the transport's estimate of what was heard (and cancels the response unless the
        server does). A call bridge that tracks playback from the telephony side's
        acknowledgements sets it to ``False`` and calls :meth:`cancel_response` and
        :meth:`truncate` itself. Settable at any time; it also applies to later sessions.
        """
        return self._automatic_barge_in

    @automatic_barge_in.setter
    def automatic_barge_in(self, value: bool) -> None:
        self._automatic_barge_in = bool(value)
        self._protocol.automatic_barge_in = self._automatic_barge_in

    @property
    def server_interrupts_response(self) -> bool:
        """Whether the server cancels its own response when it hears the user speak.

        The session's ``turn_detection.interrupt_response`` as the server last reported it
        (``False`` while unknown).
        """
        return self._protocol.interrupt_response

    @property
    def output_format(self) -> AudioFormat:
        """The format of model audio, as the server last reported it."""
        return self._protocol.output_format

    @property
    def response_active(self) -> bool:
        """Whether a model response is in progress."""
        return self._protocol.response_active

    @property
    def pending_audio_bytes(self) -> int:
        """Input audio held until the connection is ready, in bytes."""
        return self._pending.size

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} model={self._model!r} url={_display_url(self._url)!r} "
            f"status={self._status!r} reconnect={'on' if self._reconnect else 'off'}>"
        )

    # -- connect --------------------------------------------------------------------------------

    async def connect(self, options: ConnectOptions | None = None) -> None:
        """Open the connection: handshake, first ``session.update``, wait for ``session.created``.

        Status goes ``connecting`` at once and ``connected`` once the server created the session
        and the audio buffered meanwhile was sent. Calling ``close()`` meanwhile aborts the
        attempt. On failure the model and URL of before the call are restored, an ``error`` event
        is emitted, the status goes back to ``disconnected`` and the exception is raised.

        Args:
            options: Key, model, URL, initial session configuration and extra headers; every
                field falls back to the constructor's value.

        Raises:
            TransportStateError: Already connected or connecting, or closing.
            ConnectFailedError: The connection could not be opened (the ``code`` says why).
        """
        opts = options if options is not None else ConnectOptions()
        if self._status != "disconnected" or self._task is not None or self._closing:
            raise TransportStateError(
                f"connect() called while the transport is {self._status}"
                f"{' and closing' if self._closing else ''}; close() it first"
            )
        model = opts.model or self._model
        url = opts.url or self._url or default_url(model)
        key = opts.api_key if opts.api_key is not None else self._api_key
        headers = {**self._extra_headers, **dict(opts.extra_headers)}
        try:
            parse_uri(url)
        except InvalidURI:
            raise ConnectFailedError(
                f"not a WebSocket URL (ws:// or wss://): {_display_url(url)!r}",
                code="invalid_url",
                fatal=True,
            ) from None
        if key is None and not _has_auth_header(headers) and _is_openai_host(url):
            raise ConnectFailedError(
                "no API key: pass api_key= to the transport or ConnectOptions(api_key=...)",
                code="missing_api_key",
                fatal=True,
            )
        previous = (self._model, self._url)
        self._model = model
        if opts.url:
            self._url = opts.url
        self._protocol = RealtimeProtocol(model=model, automatic_barge_in=self._automatic_barge_in)
        self._pending = PendingAudio(self._audio_buffer_limit)
        self._overflow_reported = False
        self._turn_origin_ms = None
        self._first_audio_response = None
        self._target = _Target(url, key, headers, opts.initial_session_config)
        self._send_lock = asyncio.Lock()
        self._set_status("connecting")
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        task = loop.create_task(self._run(ready, previous), name="voicewire-openai-ws")
        self._task = task
        try:
            await asyncio.shield(ready)
        except asyncio.CancelledError:
            if not ready.done():
                # connect() itself was cancelled: nobody will use this connection.
                await self.close()
                if ready.done() and not ready.cancelled():
                    ready.exception()  # retrieved, so asyncio does not warn about it
            raise
        finally:
            if task.done() and self._task is task:
                self._task = None

    async def _run(self, ready: asyncio.Future[None], previous: tuple[str, str | None]) -> None:
        """The connection task: connect, read until the connection drops, reconnect or end."""
        try:
            await self._run_session(ready, previous)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must still end the session cleanly, and say why
            logger.exception("%s: the connection task failed", self.transport_id)
            ws = self._ws
            if ws is not None:
                await self._drop_socket(ws)
            if self._status != "disconnected":
                self._end_session(
                    f"internal error: {type(exc).__name__}: {exc}", code="internal_error", error=exc
                )
            if not ready.done():
                self._restore(previous)
                ready.set_exception(
                    ConnectFailedError(f"internal error: {exc}", code="internal_error")
                )

    async def _run_session(
        self, ready: asyncio.Future[None], previous: tuple[str, str | None]
    ) -> None:
        try:
            ws = await self._attempt(first=True)
        except asyncio.CancelledError:
            self._restore(previous)
            if not ready.done():
                ready.set_exception(
                    ConnectFailedError("close() was called while connecting", code="aborted")
                )
            raise
        except ConnectFailedError as exc:
            self._restore(previous)
            self._end_session(
                f"connect failed: {exc}", code=exc.code, error=exc, details=self._details(exc)
            )
            if not ready.done():
                ready.set_exception(exc)
            return
        self._set_status("connected")
        logger.info(
            "%s: connected to %s (model %s)", self.transport_id, self._url_shown(), self._model
        )
        ready.set_result(None)
        current: ClientConnection | None = ws
        while current is not None:
            drop = await self._read(current)
            current = await self._recover(drop)

    def _restore(self, previous: tuple[str, str | None]) -> None:
        self._model, self._url = previous

    def _url_shown(self) -> str:
        target = self._target
        if target is None:
            return "?"
        return _display_url(target.url) or "?"

    async def _attempt(self, *, first: bool) -> ClientConnection:
        """One connection attempt, under ``connect_timeout``; then the buffered audio."""
        try:
            ws = await asyncio.wait_for(self._open(first=first), self._connect_timeout)
        except asyncio.TimeoutError:
            raise ConnectFailedError(
                f"no session within connect_timeout ({self._connect_timeout:g} s)",
                code="timeout",
                fatal=self._is_fatal("timeout", None),
            ) from None
        if self._closing:
            # close() began as the attempt finished: before Python 3.12, wait_for can return
            # the result and drop the cancellation that came with it. Nobody wants this socket.
            await self._drop_socket(ws)
            raise asyncio.CancelledError
        # Outside the timeout, and with no await between the last check of the buffer and the
        # status change, so audio sent meanwhile is either flushed here or sent directly.
        try:
            await self._flush_pending(ws)
        except (ConnectionClosed, ConnectionClosedError):
            await self._drop_socket(ws)
            raise ConnectFailedError(
                "the connection closed while sending the buffered audio",
                code="closed_before_ready",
            ) from None
        return ws

    async def _open(self, *, first: bool) -> ClientConnection:
        """Key, handshake, first frames, then frames until ``session.created``."""
        target = self._target
        assert target is not None
        key = await self._resolve_key(target)
        headers = self._handshake_headers(target, key)
        secrets = _secrets_of(key, headers)
        try:
            ws = await ws_connect(
                target.url,
                additional_headers=headers,
                user_agent_header=_USER_AGENT,
                open_timeout=None,  # connect_timeout covers the whole attempt
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                close_timeout=self._close_timeout,
                max_size=self._max_message_size,
                compression=self._compression,
                logger=_RedactingLogger(logging.getLogger("websockets.client"), secrets),
            )
        except InvalidStatus as exc:
            raise self._refused(exc, secrets) from None
        except InvalidURI:
            raise ConnectFailedError(
                "not a WebSocket URL (ws:// or wss://)", code="invalid_url", fatal=True
            ) from None
        except InvalidHandshake as exc:
            raise ConnectFailedError(
                f"WebSocket handshake failed: {_scrub(str(exc), secrets)}",
                code="handshake_error",
                fatal=self._is_fatal("handshake_error", None),
            ) from None
        except OSError as exc:
            raise ConnectFailedError(
                f"cannot reach {urlsplit(target.url).hostname}: {_scrub(str(exc), secrets)}",
                code="network_error",
                fatal=self._is_fatal("network_error", None),
            ) from None
        self._ws = ws
        self._last_server_error = None
        try:
            protocol = self._protocol
            if first:
                protocol.initial_frames(target.initial_config, self._model)
            else:
                protocol.initial_frames(protocol.config, self._model)
                if self._reconnect is not None and self._reconnect.restore_state:
                    protocol.replay_history()
                else:
                    protocol.conversation.clear()
            # recv() below reports how it closed
            with contextlib.suppress(ConnectionClosed, ConnectionClosedError):
                await self._flush(ws)
            await self._until_session_created(ws)
        except BaseException:
            await self._drop_socket(ws)
            raise
        return ws

    async def _until_session_created(self, ws: ClientConnection) -> None:
        while True:
            try:
                frame = await ws.recv()
            except ConnectionClosed as exc:
                raise self._closed_early(exc) from None
            kind = self._handle_frame(frame)
            try:
                await self._flush(ws)
            except (ConnectionClosed, ConnectionClosedError):
                continue  # the next recv() reports how it closed
            if kind == "session.created":
                return

    def _closed_early(self, exc: ConnectionClosed) -> ConnectFailedError:
        close_code = exc.rcvd.code if exc.rcvd is not None else None
        reason = f" (close code {close_code})" if close_code is not None else " (no close frame)"
        code, message = (
            "closed_before_ready",
            "the server closed the connection before session.created",
        )
        if self._last_server_error is not None:
            server_code, server_message = self._last_server_error
            message += f"; its last error: {server_message}"
            code = server_code or code
        return ConnectFailedError(
            message + reason,
            code=code,
            close_code=close_code,
            fatal=self._is_fatal(code, None),
        )

    def _refused(self, exc: InvalidStatus, secrets: Sequence[str]) -> ConnectFailedError:
        status = exc.response.status_code
        body = bytes(exc.response.body or b"")
        code: str | None = None
        detail = ""
        try:
            payload = json.loads(body.decode("utf-8", "replace")) if body else None
        except ValueError:
            payload = None
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            raw_code, raw_message = error.get("code"), error.get("message")
            code = raw_code if isinstance(raw_code, str) and raw_code else None
            if isinstance(raw_message, str):
                detail = raw_message
        elif body:
            detail = body[:_BODY_PREVIEW].decode("utf-8", "replace")
        detail = _scrub(detail, secrets)[:_BODY_PREVIEW]
        hint = " (check the API key)" if status in (401, 403) else ""
        message = f"the server refused the WebSocket upgrade: HTTP {status}{hint}"
        if detail:
            message += f": {detail}"
        final_code = code or "http_error"
        return ConnectFailedError(
            message,
            code=final_code,
            http_status=status,
            fatal=self._is_fatal(code, status),
        )

    def _is_fatal(self, code: str | None, http_status: int | None) -> bool:
        policy = self._reconnect if self._reconnect is not None else ReconnectPolicy()
        return policy.is_fatal(code=code, http_status=http_status)

    async def _resolve_key(self, target: _Target) -> str | None:
        source = target.api_key
        if source is None or isinstance(source, str):
            key = source
        else:
            try:
                value: object = source()
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                raise ConnectFailedError(
                    f"the api_key callable raised {type(exc).__name__}", code="api_key_error"
                ) from exc
            if not isinstance(value, str):
                raise ConnectFailedError(
                    f"the api_key callable returned {type(value).__name__}, not a str",
                    code="api_key_error",
                    fatal=True,
                )
            key = value
        if not key and source is not None:
            raise ConnectFailedError("the API key is empty", code="missing_api_key", fatal=True)
        return key or None

    def _handshake_headers(self, target: _Target, key: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        provider = self._headers_provider
        if provider is not None:
            try:
                headers.update(provider())
            except Exception:
                logger.warning(
                    "%s: headers_provider raised; connecting without its headers",
                    self.transport_id,
                    exc_info=True,
                )
        headers.update(target.headers)
        if key is not None and not _has_auth_header(headers):
            headers["Authorization"] = f"Bearer {key}"
        return headers

    async def _drop_socket(self, ws: ClientConnection) -> None:
        if self._ws is ws:
            self._ws = None
        try:
            await ws.close()
        except Exception:  # closing a broken socket may fail; it is being dropped anyway
            logger.debug(
                "%s: error while closing a dropped socket", self.transport_id, exc_info=True
            )

    # -- reading --------------------------------------------------------------------------------

    async def _read(self, ws: ClientConnection) -> _Drop:
        """Read and dispatch frames until the connection ends; say how it ended."""
        while True:
            try:
                frame = await ws.recv()
            except ConnectionClosed as exc:
                return self._drop_of(exc)
            self._handle_frame(frame)
            try:
                await self._flush(ws)
            except (ConnectionClosed, ConnectionClosedError):
                continue  # the next recv() reports how it closed

    def _drop_of(self, exc: ConnectionClosed) -> _Drop:
        rcvd, sent = exc.rcvd, exc.sent
        if sent is not None and sent.code == _CLOSE_MESSAGE_TOO_BIG:
            return _Drop(
                "message_too_big",
                f"the server sent a message larger than max_message_size "
                f"({self._max_message_size} bytes); the connection was closed (code 1009)",
                _CLOSE_MESSAGE_TOO_BIG,
            )
        if sent is not None and sent.code == _CLOSE_INTERNAL_ERROR and "keepalive" in sent.reason:
            return _Drop(
                "keepalive_timeout",
                f"the server did not answer a keepalive ping within {self._ping_timeout:g} s",
                None,
            )
        if rcvd is not None:
            reason = f": {rcvd.reason}" if rcvd.reason else ""
            return _Drop(
                "connection_lost",
                f"the server closed the connection (code {rcvd.code}{reason})",
                rcvd.code,
            )
        return _Drop("connection_lost", "the connection was lost without a closing handshake", None)

    def _handle_frame(self, frame: str | bytes) -> str | None:
        """Feed one frame to the protocol and emit its events; return the server event's type."""
        if not isinstance(frame, str):
            self._report_error(
                "the server sent a binary frame; the Realtime API only sends JSON text frames",
                source="transport",
                code="unexpected_binary_frame",
                details={"frame_length": len(frame)},
            )
            return None
        try:
            events = self._protocol.receive(frame, time.monotonic() * 1000.0)
        except Exception as exc:  # a bug in the protocol layer must not end the session
            self._report_error(
                f"processing a server frame failed: {type(exc).__name__}: {exc}",
                source="transport",
                code="internal_error",
                error=exc,
            )
            return None
        kind: str | None = None
        if not self._observers:
            for event in events:
                if type(event) is ErrorEvent:
                    self._on_error_event(event)
                elif type(event) is RawServerEvent:
                    raw_type = event.message.get("type")
                    kind = raw_type if isinstance(raw_type, str) else None
                    self._emit(event)
                else:
                    self._emit(event)
            return kind
        for event in events:
            if type(event) is RawServerEvent:
                raw_type = event.message.get("type")
                kind = raw_type if isinstance(raw_type, str) else None
                self._observe_server_event(kind, frame, event.message)
            self._dispatch(event)
        return kind

    def _observe_server_event(
        self, kind: str | None, frame: str, message: Mapping[str, Any]
    ) -> None:
        observers = self._observers
        if observers.has("on_server_event"):
            # The message is already parsed: handing it over costs nothing, and the observer
            # decides what it may keep (content only when capture is on).
            observers.notify("on_server_event", kind or "unknown", len(frame.encode()), message)

    def _dispatch(self, event: TransportEvent) -> None:
        """Emit one event, telling the observers what it means first."""
        observers = self._observers
        if isinstance(event, ErrorEvent):
            self._on_error_event(event)
            return
        if isinstance(event, AudioEvent):
            observers.notify("on_audio_from_model", event.response_id, len(event.data))
            if event.response_id != self._first_audio_response and observers.has("on_first_audio"):
                self._first_audio_response = event.response_id
                origin = self._turn_origin_ms
                latency = None if origin is None else time.monotonic() * 1000.0 - origin
                observers.notify("on_first_audio", event.response_id, latency)
        elif isinstance(event, TurnStartedEvent):
            observers.notify("on_turn_started", event.response_id)
        elif isinstance(event, TurnDoneEvent):
            observers.notify("on_turn_done", event)
        elif isinstance(event, FunctionCallEvent):
            observers.notify("on_function_call", event)
        elif isinstance(event, AudioInterruptedEvent):
            observers.notify("on_interruption", event)
        elif isinstance(event, SpeechStartedEvent):
            observers.notify("on_speech_started")
        elif isinstance(event, SpeechStoppedEvent):
            # The user's turn ended: the first audio of the answer is measured from here.
            self._turn_origin_ms = time.monotonic() * 1000.0
            observers.notify("on_speech_stopped")
        self._emit(event)

    def _on_error_event(self, event: ErrorEvent) -> None:
        # Errors from the protocol (server errors, unusable frames) get the same treatment as the
        # transport's own: observers, a warning when nobody listens, then the "error" channel.
        if event.source == "server":
            self._last_server_error = (event.code, event.message)
        self._observers.notify("on_error", event)
        if not self._emitter.has_subscribers("error"):
            logger.warning(
                "%s error (%s) with no error listener: %s",
                self.transport_id,
                event.source,
                event.message,
            )
        else:
            # As TransportBase._report_error does: a listened-to error still leaves a DEBUG
            # record, so that an unusable server frame is in the logs, not only in the event.
            logger.debug("%s error (%s): %s", self.transport_id, event.source, event.message)
        self._emit(event)

    # -- recovering from a drop -----------------------------------------------------------------

    async def _recover(self, drop: _Drop) -> ClientConnection | None:
        """After a drop: report it, then reconnect per the policy or end the session."""
        self._ws = None
        protocol = self._protocol
        active, response_id = protocol.response_active, protocol.active_response_id
        protocol.connection_lost()
        if active:
            # The response.done of this response will never come; say so, so that nobody
            # waits for it (a known hang of other transports after a mid-response drop).
            self._dispatch(TurnDoneEvent(response_id=response_id, status="failed"))
        policy = self._reconnect
        server_error = self._last_server_error
        server_code = server_error[0] if server_error is not None else None
        details: dict[str, Any] = {"close_code": drop.close_code}
        if server_error is not None:
            details["last_server_error"] = {"code": server_code, "message": server_error[1]}
        if policy is None or policy.is_fatal(code=server_code):
            why = "" if policy is None else f" (not retried: server error {server_code})"
            self._end_session(drop.message + why, code=drop.code, details=details)
            return None
        details["reconnecting"] = True
        self._report_error(
            drop.message + "; reconnecting", source="transport", code=drop.code, details=details
        )
        logger.warning("%s: %s; reconnecting", self.transport_id, drop.message)
        self._set_status("connecting")
        self._overflow_reported = False
        return await self._reconnect_loop(policy)

    async def _reconnect_loop(self, policy: ReconnectPolicy) -> ClientConnection | None:
        last: ConnectFailedError | None = None
        delays = policy.delays()
        attempts = 0
        for attempt, delay in enumerate(delays, start=1):
            attempts = attempt
            await asyncio.sleep(delay)
            try:
                ws = await self._attempt(first=False)
            except ConnectFailedError as exc:
                last = exc
                logger.warning(
                    "%s: reconnect attempt %d/%d failed: %s",
                    self.transport_id,
                    attempt,
                    len(delays),
                    exc,
                )
                if policy.is_fatal(code=exc.code, http_status=exc.http_status):
                    break
                continue
            restored = policy.restore_state
            self._set_status("connected")
            logger.info("%s: reconnected (attempt %d)", self.transport_id, attempt)
            self._observers.notify("on_reconnect", attempt, restored)
            self._emit(ReconnectedEvent(attempt=attempt, state_restored=restored))
            return ws
        discarded = self._pending.clear()
        message = f"reconnecting failed after {attempts} attempt{'s' if attempts != 1 else ''}"
        if last is not None:
            message += f": {last}"
        details: dict[str, Any] = {"attempts": attempts, "discarded_audio_bytes": discarded}
        if last is not None:
            details.update(self._details(last))
        self._end_session(message, code="reconnect_failed", error=last, details=details)
        return None

    @staticmethod
    def _details(exc: ConnectFailedError) -> dict[str, Any]:
        return {
            "failure_code": exc.code,
            "http_status": exc.http_status,
            "close_code": exc.close_code,
            "fatal": exc.fatal,
        }

    def _end_session(
        self,
        message: str,
        *,
        code: str,
        error: BaseException | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """The session is over without close(): report why, go disconnected, tell observers."""
        self._ws = None
        self._task = None  # connect() may be called again from a listener of what follows
        merged = dict(details or {})
        discarded = self._pending.clear()
        if discarded:
            # Held audio dies with the session; the report says how much.
            merged["discarded_audio_bytes"] = merged.get("discarded_audio_bytes", 0) + discarded
        self._report_error(message, source="transport", code=code, error=error, details=merged)
        self._set_status("disconnected")
        self._observers.notify("on_close", message)

    # -- writing --------------------------------------------------------------------------------

    async def _flush(self, ws: ClientConnection) -> None:
        """Write every frame the protocol queued, in order, through the one write lock."""
        async with self._send_lock:
            if ws is not self._ws:
                # A socket that was replaced: the queue belongs to the new one.
                raise ConnectionClosedError("the connection was replaced")
            frames = self._protocol.data_to_send()
            if not frames:
                return
            observers = self._observers
            if not observers:
                for frame in frames:
                    await ws.send(frame)
                return
            for frame in frames:
                await ws.send(frame)
                self._observe_client_frame(frame)

    def _observe_client_frame(self, frame: str) -> None:
        observers = self._observers
        if observers.has("on_client_event"):
            observers.notify("on_client_event", _frame_type(frame), len(frame.encode()), None)
        if frame.startswith(_RESPONSE_CREATE_PREFIX) and observers.has("on_first_audio"):
            self._turn_origin_ms = time.monotonic() * 1000.0

    def _writable_now(self) -> ClientConnection | None:
        """The socket, if frames written to it now go out without waiting for anything."""
        ws = self._ws
        if (
            ws is None
            or self._status != "connected"
            or self._send_lock.locked()
            or self._pending
            or ws.protocol.state is not State.OPEN
            # websockets' own flow control: a paused transport means send() would wait.
            or getattr(ws, "paused", True)
            or ws.transport.is_closing()
        ):
            return None
        return ws

    async def _flush_pending(self, ws: ClientConnection) -> None:
        while self._pending:
            for data, commit in self._pending.take():
                self._protocol.send_audio(data, commit=commit)
            await self._flush(ws)
        self._report_overflow_summary()

    def _connected_socket(self, operation: str) -> ClientConnection:
        ws = self._ws
        if self._status != "connected" or ws is None:
            hint = (
                "wait for the connection (or reconnection) to finish"
                if self._status == "connecting"
                else "call connect() first"
            )
            raise NotConnectedError(
                f"{operation} needs a connected transport, but it is {self._status}; {hint}"
            )
        return ws

    async def _send_now(self, ws: ClientConnection, operation: str) -> None:
        try:
            await self._flush(ws)
        except (ConnectionClosed, ConnectionClosedError) as exc:
            raise ConnectionClosedError(
                f"{operation}: the connection closed while sending ({exc})"
            ) from None

    # -- sending --------------------------------------------------------------------------------

    async def send_audio(self, audio: bytes, *, commit: bool = False) -> None:
        """Append input audio (in the session's input format); ``commit`` ends the user turn.

        While connecting or reconnecting the audio is held (up to ``audio_buffer_limit`` bytes,
        oldest dropped first and reported as ``audio_buffer_overflow``) and sent in order once
        the session is ready.

        Args:
            audio: Audio bytes.
            commit: Also send ``input_audio_buffer.commit``.

        Raises:
            TypeError: ``audio`` is not bytes-like.
            NotConnectedError: The transport is neither connected nor connecting.
            ConnectionClosedError: The connection closed while sending (without a reconnect
                policy; with one, the audio is held for the new connection instead).
        """
        if not isinstance(audio, bytes | bytearray | memoryview):
            raise TypeError(f"audio must be bytes, got {type(audio).__name__}")
        status = self._status
        if status == "connecting":
            self._hold(bytes(audio), commit)
            return
        ws = self._connected_socket("send_audio()")
        self._protocol.send_audio(audio, commit=commit)
        self._observers.notify("on_audio_to_model", len(audio))
        try:
            await self._flush(ws)
        except (ConnectionClosed, ConnectionClosedError) as exc:
            if self._reconnect is None or self._closing:
                raise ConnectionClosedError(
                    f"send_audio(): the connection closed while sending ({exc})"
                ) from None
            if self._status == "connected" and self._ws is not None and self._ws is not ws:
                # A new connection is already up: send there rather than hold it.
                await self.send_audio(audio, commit=commit)
                return
            # The connection task reconnects; until then, hold the chunk like any other.
            self._hold(bytes(audio), commit)

    def send_audio_nowait(self, audio: bytes) -> bool:
        """Send input audio now if that needs no waiting; otherwise send nothing.

        The audio is written to the socket at once, without a task or a turn of the event loop,
        when the transport is connected, no other send is in progress, no audio is held from
        a reconnect, and the socket's write buffer is below its high-water mark. Otherwise
        nothing is sent and ``False`` comes back: the caller then uses :meth:`send_audio`,
        which waits for room. The call bridge sends each caller frame this way when its own
        queue is empty, so a frame reaches the model without a task switch.

        Args:
            audio: Audio bytes in the session's input format.

        Returns:
            Whether the audio was sent.

        Raises:
            TypeError: ``audio`` is not bytes-like.
        """
        if not isinstance(audio, bytes | bytearray | memoryview):
            raise TypeError(f"audio must be bytes, got {type(audio).__name__}")
        ws = self._writable_now()
        send_data = getattr(ws, "send_data", None)
        if ws is None or send_data is None:
            return False
        protocol = self._protocol
        protocol.send_audio(audio)
        frames = protocol.data_to_send()
        framer = ws.protocol
        try:
            for frame in frames:
                framer.send_text(frame.encode())
            # What send() does after framing, less the wait: the buffer had room.
            send_data()
        except Exception as exc:  # the socket failed under us: the reader reports the drop
            logger.debug("send_audio_nowait: the write failed: %s", type(exc).__name__)
            return False
        observers = self._observers
        if observers:
            observers.notify("on_audio_to_model", len(audio))
            for frame in frames:
                self._observe_client_frame(frame)
        return True

    def _hold(self, audio: bytes, commit: bool) -> None:
        dropped = self._pending.add(audio, commit)
        if dropped and not self._overflow_reported:
            self._overflow_reported = True
            self._overflow_first_bytes = dropped
            self._report_error(
                f"input audio held while connecting exceeded audio_buffer_limit "
                f"({self._pending.limit} bytes); dropped {dropped} bytes, oldest first",
                source="overflow",
                code="audio_buffer_overflow",
                details={"dropped_bytes": dropped, "limit": self._pending.limit},
            )

    def _report_overflow_summary(self) -> None:
        pending = self._pending
        total = pending.dropped_bytes
        # The first drop was reported when it happened; more drops since get one summary.
        if self._overflow_reported and total > self._overflow_first_bytes:
            self._report_error(
                f"{total} bytes of input audio were dropped in all while connecting "
                f"({pending.dropped_chunks} chunks)",
                source="overflow",
                code="audio_buffer_overflow",
                details={
                    "dropped_bytes": total,
                    "dropped_chunks": pending.dropped_chunks,
                    "limit": pending.limit,
                    "final": True,
                },
            )
        pending.reset_counters()
        self._overflow_reported = False

    async def send_event(self, event: Mapping[str, Any]) -> None:
        """Send a raw client event.

        ``response.create`` goes through the response sequencer (it may wait for the active
        response to finish); everything else goes out at once. Prefer the typed methods: a raw
        ``session.update`` is not remembered, so a reconnect does not replay it.

        Args:
            event: A mapping with a non-empty string ``type``, serialisable as JSON.

        Raises:
            NotConnectedError: Not connected.
            InvalidClientEventError: No usable ``type``, or not serialisable as JSON.
            ConnectionClosedError: The connection closed while sending.
        """
        ws = self._connected_socket("send_event()")
        self._protocol.send_event(event)
        await self._send_now(ws, "send_event()")

    async def send_message(
        self,
        message: str | UserMessageItem,
        other_event_data: Mapping[str, Any] | None = None,
        *,
        trigger_response: bool = True,
    ) -> None:
        """Add a user message to the conversation and (by default) ask for a response.

        Args:
            message: Text, or a user message item.
            other_event_data: Extra top-level fields of the ``conversation.item.create`` event.
            trigger_response: Ask for a response afterwards.

        Raises:
            NotConnectedError: Not connected.
            InvalidClientEventError: ``other_event_data`` is unusable.
            ConnectionClosedError: The connection closed while sending.
        """
        ws = self._connected_socket("send_message()")
        self._protocol.send_message(message, other_event_data, trigger_response=trigger_response)
        await self._send_now(ws, "send_message()")

    async def send_function_call_output(
        self, tool_call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> None:
        """Answer a function call; emits the call's ``item_update`` (now completed).

        Args:
            tool_call: The ``function_call`` event being answered.
            output: The result, as text.
            start_response: Ask for a follow-up response.

        Raises:
            NotConnectedError: Not connected.
            ConnectionClosedError: The connection closed while sending.
        """
        ws = self._connected_socket("send_function_call_output()")
        update = self._protocol.send_function_call_output(tool_call, output, start_response)
        await self._send_now(ws, "send_function_call_output()")
        self._observers.notify("on_function_call_output", tool_call.call_id, output)
        if update is not None:
            self._emit(update)

    async def request_response(self, response: Mapping[str, Any] | None = None) -> None:
        """Ask for a model response (sequenced: it waits for the active one to finish).

        Args:
            response: ``None`` for an automatic request (coalesced with others), or one-off
                response parameters (a manual request, never merged).

        Raises:
            NotConnectedError: Not connected.
            ConnectionClosedError: The connection closed while sending.
        """
        ws = self._connected_socket("request_response()")
        self._protocol.request_response(response)
        await self._send_now(ws, "request_response()")

    async def interrupt(self) -> None:
        """Stop the model's turn: cancel the response and truncate what was not heard.

        Emits ``audio_interrupted`` with the truncation point when audio was still being heard.
        Does nothing when not connected (a dropped connection already ended the response).

        Raises:
            ConnectionClosedError: The connection closed while sending.
        """
        if self._status != "connected" or self._ws is None:
            return
        ws = self._ws
        events = self._protocol.interrupt(time.monotonic() * 1000.0)
        for event in events:
            self._dispatch(event)
        await self._send_now(ws, "interrupt()")

    async def cancel_response(self) -> bool:
        """Cancel the active response, if there is one and no cancel is already on its way.

        Returns:
            Whether ``response.cancel`` was sent (``False`` when not connected).

        Raises:
            ConnectionClosedError: The connection closed while sending.
        """
        if self._status != "connected" or self._ws is None:
            return False
        ws = self._ws
        sent = self._protocol.cancel_response()
        if sent:
            await self._send_now(ws, "cancel_response()")
        return sent

    async def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        """Cut an assistant item's audio at ``audio_end_ms`` (what the listener heard).

        Args:
            item_id: The assistant message item.
            content_index: Its audio content part (0 in practice).
            audio_end_ms: Milliseconds heard: an int >= 0, within the audio sent.

        Raises:
            NotConnectedError: Not connected.
            ValueError: An argument is out of range.
            ConnectionClosedError: The connection closed while sending.
        """
        ws = self._connected_socket("truncate()")
        self._protocol.truncate(item_id, content_index, audio_end_ms)
        await self._send_now(ws, "truncate()")

    async def update_session_config(self, config: SessionConfig) -> None:
        """Merge ``config`` over the session's configuration and send the full result.

        The merged configuration is what a reconnect restores.

        Raises:
            NotConnectedError: Not connected.
            ConnectionClosedError: The connection closed while sending.
        """
        ws = self._connected_socket("update_session_config()")
        self._protocol.update_session_config(config)
        await self._send_now(ws, "update_session_config()")

    async def reset_history(self, old: Sequence[RealtimeItem], new: Sequence[RealtimeItem]) -> None:
        """Make the server's conversation match ``new`` (deletes, then creates).

        Raises:
            NotConnectedError: Not connected.
            HistoryReplayError: ``new`` adds or changes assistant audio; nothing was sent.
            ConnectionClosedError: The connection closed while sending.
        """
        ws = self._connected_socket("reset_history()")
        self._protocol.reset_history(old, new)
        await self._send_now(ws, "reset_history()")

    # -- close ----------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connection: stop the connection task, close the socket, go ``disconnected``.

        Idempotent, and safe while connecting (the attempt is aborted: ``connect()`` raises
        ``ConnectFailedError`` with code ``aborted``) or reconnecting. Audio still held is
        discarded. ``events()`` iterators end and async listeners finish their backlog.
        """
        if self._close_done is not None:
            await asyncio.shield(self._close_done)
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._close_done = done
        self._closing = True
        try:
            await self._close_connection()
        finally:
            self._closing = False
            self._close_done = None
            done.set_result(None)
        await self.aclose_emitter()

    async def _close_connection(self) -> None:
        task, self._task = self._task, None
        active = self._status != "disconnected"
        if active:
            self._set_status("disconnecting")
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                await ws.close()
            except Exception:
                logger.debug("%s: error while closing the socket", self.transport_id, exc_info=True)
        self._protocol.connection_lost()
        discarded = self._pending.clear()
        if discarded:
            logger.info(
                "%s: %d bytes of held input audio discarded by close()",
                self.transport_id,
                discarded,
            )
        if active:
            self._set_status("disconnected")
            logger.info("%s: closed", self.transport_id)
            self._observers.notify("on_close", "closed by the application")
