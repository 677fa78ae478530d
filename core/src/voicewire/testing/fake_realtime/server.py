"""``FakeRealtimeServer``: an offline, OpenAI-Realtime-compatible (GA) WebSocket server.

Point any Realtime client at :attr:`FakeRealtimeServer.url` (the official ``openai`` SDK too,
through ``websocket_base_url``) and it gets a realistic session: ``session.created``, strict
validation of client events with GA-shaped errors, a server VAD on the audio clock, paced audio
responses that can be cancelled, truncated and interrupted, and scripted function calls.
Everything the server sees and sends is recorded per session for tests to assert on.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from voicewire._change import wait_for_change
from voicewire.errors import ConfigError, TransportStateError
from voicewire.testing.fake_realtime.faults import (
    Fault,
    RefuseConnection,
    check_faults,
    faults_for,
)
from voicewire.testing.fake_realtime.record import AuthOutcome, SessionLog, SessionRecord
from voicewire.testing.fake_realtime.schema import make_validator
from voicewire.testing.fake_realtime.scripts import DEMO_SCRIPT, Script
from voicewire.testing.fake_realtime.session import FakeSession, Mode, SessionSettings
from voicewire.testing.fake_realtime.vad import VadSettings

__all__ = ["REALTIME_PATH", "FakeRealtimeServer"]

REALTIME_PATH = "/v1/realtime"
"""The WebSocket path, as on ``api.openai.com``."""

_SUBPROTOCOL_KEY_PREFIX = "openai-insecure-api-key."
# Base64 of the 15 MiB per-event audio limit, plus room for the JSON around it.
_MAX_MESSAGE_BYTES = 21 * 1024 * 1024
_DEFAULT_INSTRUCTIONS = "You are the voicewire fake realtime model. Keep answers short."


def _openai_error(message: str, code: str | None, error_type: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


class FakeRealtimeServer:
    """A Realtime-API-compatible (GA) server for offline tests and the demo.

    Args:
        host: Interface to listen on.
        port: TCP port; 0 picks a free one (read it back from :attr:`url`).
        mode: ``"echo"`` answers a spoken turn with the caller's own audio and a text turn with
            generated speech; ``"script"`` follows ``script``.
        script: The script of ``script`` mode (default: :data:`DEMO_SCRIPT`).
        api_key: When set, the upgrade must carry ``Authorization: Bearer <api_key>`` (or the
            browser subprotocol ``openai-insecure-api-key.<api_key>``); otherwise HTTP 401.
        faults: Fault knobs (see :mod:`voicewire.testing.fake_realtime.faults`).
        pace: Audio pacing: 1.0 sends response audio in real time, 2.0 twice as fast, 0 as fast
            as possible.
        chunk_ms: Duration of each ``response.output_audio.delta`` (20..100 ms).
        vad: Server-VAD tuning (the session's ``turn_detection`` still applies).
        model: Session model when the URL has no ``model`` query parameter.
        instructions: The default session instructions.
        seed: Seeds ids and generated audio, so reruns produce identical sessions.
        validation: ``"auto"`` validates client events with the ``openai`` models when
            installed, ``"openai"`` insists on them, ``"builtin"`` never uses them.
        rate_limits: Send ``rate_limits.updated`` after each ``response.done``.
        close_timeout: Seconds to wait for the client's half of a closing handshake.

    Raises:
        ConfigError: An argument is invalid.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        mode: Mode = "echo",
        script: Script | None = None,
        api_key: str | None = None,
        faults: Iterable[Fault] = (),
        pace: float = 1.0,
        chunk_ms: int = 40,
        vad: VadSettings | None = None,
        model: str = "gpt-realtime",
        instructions: str = _DEFAULT_INSTRUCTIONS,
        seed: int | str = 0,
        validation: Literal["auto", "openai", "builtin"] = "auto",
        rate_limits: bool = True,
        close_timeout: float = 2.0,
    ) -> None:
        if mode not in ("echo", "script"):
            raise ConfigError("mode", f"must be 'echo' or 'script', got {mode!r}")
        if script is not None and not isinstance(script, Script):
            raise ConfigError("script", "must be a Script (see Script.load / Script.from_obj)")
        if mode == "echo" and script is not None:
            raise ConfigError("script", "a script needs mode='script'")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError("port", f"must be an int within 0..65535, got {port!r}")
        if not isinstance(pace, (int, float)) or not math.isfinite(pace) or pace < 0:
            raise ConfigError("pace", f"must be a finite number >= 0, got {pace!r}")
        if isinstance(chunk_ms, bool) or not isinstance(chunk_ms, int) or not 20 <= chunk_ms <= 100:
            raise ConfigError("chunk_ms", f"must be an int within 20..100, got {chunk_ms!r}")
        if api_key is not None and not api_key:
            raise ConfigError("api_key", "must be a non-empty string or None")
        if close_timeout <= 0:
            raise ConfigError("close_timeout", f"must be > 0, got {close_timeout!r}")
        if validation not in ("auto", "openai", "builtin"):
            raise ConfigError(
                "validation", f"must be 'auto', 'openai' or 'builtin', got {validation!r}"
            )
        try:
            self._validator = make_validator(validation)
        except ImportError as exc:
            raise ConfigError("validation", str(exc)) from None
        self._host = host
        self._port = port
        self._mode: Mode = mode
        self._script = script if script is not None or mode == "echo" else DEMO_SCRIPT
        self._api_key = api_key.encode("utf-8") if api_key is not None else None
        self._faults = check_faults(faults)
        self._pace = float(pace)
        self._chunk_ms = chunk_ms
        self._vad = vad if vad is not None else VadSettings()
        self._model = model
        self._instructions = instructions
        self._seed = str(seed)
        self._rate_limits = rate_limits
        self._close_timeout = float(close_timeout)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._closing = False
        self._logs: list[SessionLog] = []
        self._sessions: set[FakeSession] = set()
        self._changed = asyncio.Event()

    # -----------------------------------------------------------------------------------------
    # lifecycle
    # -----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/v1/realtime``.

        Raises:
            TransportStateError: The server has not been started.
        """
        if self._url is None:
            raise TransportStateError("the fake realtime server is not started")
        return self._url

    async def start(self) -> str:
        """Start listening; return :attr:`url`.

        Raises:
            TransportStateError: Already started (or closed).
            OSError: The address cannot be bound.
        """
        if self._runner is not None or self._closing:
            raise TransportStateError("the fake realtime server can be started once")
        app = web.Application()
        app.router.add_get(REALTIME_PATH, self._handle)
        runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=self._close_timeout + 1
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        self._url = f"ws://{shown}:{port}{REALTIME_PATH}"
        return self._url

    async def close(self) -> None:
        """Close every session (close code 1001), stop listening, and wait for all of it.

        Idempotent. When it returns, no task of the server is left running.
        """
        self._closing = True
        sessions = list(self._sessions)
        if sessions:
            await asyncio.gather(*(s.shutdown() for s in sessions), return_exceptions=True)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._notify()

    async def __aenter__(self) -> FakeRealtimeServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -----------------------------------------------------------------------------------------
    # recording API
    # -----------------------------------------------------------------------------------------

    @property
    def sessions(self) -> tuple[SessionRecord, ...]:
        """Snapshots of every connection attempt so far, by connection index."""
        return tuple(log.snapshot() for log in self._logs)

    def session(self, index: int = 0) -> SessionRecord:
        """A snapshot of one session.

        Raises:
            IndexError: No such connection attempt yet.
        """
        return self._logs[index].snapshot()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` is true; it is re-evaluated after every recorded change.

        Raises:
            TimeoutError: Not true within ``timeout`` seconds (a hang guard, not a timing check).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            await wait_for_change(self._changed, remaining)

    async def wait_for_session(self, index: int = 0, *, timeout: float = 10.0) -> SessionRecord:
        """Wait until connection attempt ``index`` has arrived; return its snapshot."""
        try:
            await self.wait_for(lambda: len(self._logs) > index, timeout=timeout)
        except TimeoutError:
            raise TimeoutError(f"no connection #{index} within {timeout} s") from None
        return self.session(index)

    async def wait_for_server_event(
        self, kind: str, *, session: int = 0, count: int = 1, timeout: float = 10.0
    ) -> Mapping[str, Any]:
        """Wait until session ``session`` has sent ``count`` events of ``kind``; return the last.

        Raises:
            TimeoutError: Not within ``timeout`` seconds; the message lists what was sent.
        """
        return await self._wait_event(kind, session, count, timeout, server=True)

    async def wait_for_client_event(
        self, kind: str, *, session: int = 0, count: int = 1, timeout: float = 10.0
    ) -> Mapping[str, Any]:
        """Wait until session ``session`` has received ``count`` events of ``kind``; return the last.

        Raises:
            TimeoutError: Not within ``timeout`` seconds; the message lists what was received.
        """
        return await self._wait_event(kind, session, count, timeout, server=False)

    async def wait_closed(self, session: int = 0, *, timeout: float = 10.0) -> SessionRecord:
        """Wait until a session's connection has ended; return its final snapshot."""
        await self.wait_for_session(session, timeout=timeout)
        try:
            await self.wait_for(lambda: self._logs[session].closed, timeout=timeout)
        except TimeoutError:
            raise TimeoutError(f"session #{session} still open after {timeout} s") from None
        return self.session(session)

    async def _wait_event(
        self, kind: str, session: int, count: int, timeout: float, *, server: bool
    ) -> Mapping[str, Any]:
        await self.wait_for_session(session, timeout=timeout)
        log = self._logs[session]

        def matching() -> list[Mapping[str, Any]]:
            events = log.server_events if server else log.client_events
            return [e for e in events if e.get("type") == kind]

        try:
            await self.wait_for(lambda: len(matching()) >= count, timeout=timeout)
        except TimeoutError:
            events = log.server_events if server else log.client_events
            seen = [e.get("type") for e in events][-30:]
            side = "sent" if server else "received"
            raise TimeoutError(
                f"session #{session} {side} {len(matching())} of {count} {kind!r} within "
                f"{timeout} s; last types {side}: {seen}"
            ) from None
        return matching()[count - 1]

    # -----------------------------------------------------------------------------------------
    # the upgrade
    # -----------------------------------------------------------------------------------------

    def _check_auth(self, request: web.Request) -> AuthOutcome:
        if self._api_key is None:
            return "not_required"
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            ok = scheme.lower() == "bearer" and hmac.compare_digest(
                token.strip().encode("utf-8"), self._api_key
            )
            return "matched" if ok else "mismatched"
        offered = [
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip().startswith(_SUBPROTOCOL_KEY_PREFIX)
        ]
        if offered:
            token = offered[0][len(_SUBPROTOCOL_KEY_PREFIX) :]
            ok = hmac.compare_digest(token.encode("utf-8"), self._api_key)
            return "matched" if ok else "mismatched"
        return "missing"

    def _settings_for(self, index: int) -> SessionSettings:
        return SessionSettings(
            mode=self._mode,
            script=self._script,
            pace=self._pace,
            chunk_ms=self._chunk_ms,
            vad=self._vad,
            validator=self._validator,
            instructions=self._instructions,
            default_model=self._model,
            seed=self._seed,
            faults=faults_for(self._faults, index),
            close_timeout=self._close_timeout,
            rate_limits=self._rate_limits,
            expires_at=int(time.time()) + 3600,
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        index = len(self._logs)
        auth = self._check_auth(request)
        model = request.query.get("model")
        log = SessionLog(index, model, auth)
        self._logs.append(log)
        settings = self._settings_for(index)

        def refuse(status: int, body: dict[str, Any]) -> web.Response:
            log.http_status = status
            log.closed = True
            self._notify()
            return web.json_response(body, status=status)

        if self._closing:
            return refuse(503, _openai_error("The server is shutting down.", None, "server_error"))
        refusal = next((f for f in settings.faults if isinstance(f, RefuseConnection)), None)
        if refusal is not None:
            log.faults_triggered.append("refuse_connection")
            return refuse(
                refusal.status,
                _openai_error(
                    "The server is overloaded (fault injected by the fake).", None, "server_error"
                ),
            )
        if auth in ("missing", "mismatched"):
            message = (
                "Incorrect API key provided."
                if auth == "mismatched"
                else "You didn't provide an API key. Provide it in an Authorization header "
                "(Authorization: Bearer YOUR_KEY)."
            )
            code = "invalid_api_key" if auth == "mismatched" else None
            return refuse(401, _openai_error(message, code, "invalid_request_error"))
        if request.headers.get("OpenAI-Beta", "").strip().lower().startswith("realtime"):
            return refuse(
                400,
                _openai_error(
                    "This fake implements the GA Realtime protocol only; drop the "
                    "'OpenAI-Beta: realtime=v1' header.",
                    "beta_not_supported",
                    "invalid_request_error",
                ),
            )
        ws = web.WebSocketResponse(
            autoping=False,
            autoclose=False,
            timeout=self._close_timeout,
            max_msg_size=_MAX_MESSAGE_BYTES,
            protocols=("realtime",),
        )
        if not ws.can_prepare(request).ok:
            return refuse(
                426,
                _openai_error("Expected a WebSocket upgrade.", None, "invalid_request_error"),
            )
        await ws.prepare(request)
        session = FakeSession(ws, request, log, settings, model, self._notify)
        self._sessions.add(session)
        self._notify()
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            log.closed = True
            self._notify()
        return ws
