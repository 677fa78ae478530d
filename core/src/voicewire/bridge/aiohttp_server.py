"""What every telephony plugin's aiohttp server needs besides its routes: the calls it carries.

A server that answers phone calls must keep one call's failure to that call, say how many calls
it carries, and on shutdown stop taking calls, let the active ones finish for a while and only
then close them, so that a deploy does not hang up on anyone. :class:`CallRoster` does that for
the media route of any telephony plugin; :func:`run_app` runs an application until cancelled and
shuts it down in the order that lets calls finish. The Twilio plugin's server is built on them::

    roster = CallRoster(shutdown_timeout=30.0, max_calls=200, logger=logger)

    async def media(request: web.Request) -> web.StreamResponse:
        ...  # the provider's signature or token check: on failure roster.reject(), 403
        return await roster.carry(request, web.WebSocketResponse(), run_call)

``run_call(call)`` builds ``call.bridge`` and runs it; ``carry`` answers 503 itself while the
roster drains or carries ``max_calls`` calls.

Importing this module imports aiohttp, which the core does not require.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from voicewire._change import wait_for_change
from voicewire.bridge.call import CallBridge
from voicewire.errors import ConfigError

__all__ = ["DEFAULT_SHUTDOWN_TIMEOUT", "ActiveCall", "CallRoster", "run_app"]

DEFAULT_SHUTDOWN_TIMEOUT: Final = 30.0
"""Seconds active calls get to finish on shutdown before they are closed."""

_CLOSE_WAIT = 5.0  # seconds a closed call gets to unwind before the shutdown goes on


class ActiveCall:
    """One call a :class:`CallRoster` carries: its number, its WebSocket and its bridge.

    The function that runs the call sets :attr:`bridge` as soon as it has built one, so that a
    shutdown can close the call through its bridge (which closes the model and the edge) rather
    than by dropping the socket.
    """

    __slots__ = ("_done", "bridge", "number", "ws")

    def __init__(self, number: int, ws: web.WebSocketResponse) -> None:
        self.number = number
        """Calls are numbered from 1 in the order they were accepted."""
        self.ws = ws
        """The call's media WebSocket, prepared."""
        self.bridge: CallBridge | None = None
        """The call's bridge, once built."""
        self._done = asyncio.Event()

    def __repr__(self) -> str:
        return f"<ActiveCall {self.number} bridge={self.bridge is not None}>"


class CallRoster:
    """The calls one server carries: counts, isolation and a graceful shutdown.

    Args:
        shutdown_timeout: Seconds active calls get to finish on :meth:`drain` (0: none).
        max_calls: Calls carried at once; :meth:`carry` answers more with 503. ``None``: no
            limit.
        logger: Where the roster logs calls that fail and the shutdown; the plugin's own.
        secrets: Strings (API key, auth token) replaced by ``***`` in what the roster logs of a
            call's failure; ``None`` entries are ignored.

    Raises:
        ConfigError: ``shutdown_timeout`` is not a number >= 0, or ``max_calls`` not an int >= 1.
    """

    def __init__(
        self,
        *,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        max_calls: int | None = None,
        logger: logging.Logger | None = None,
        secrets: tuple[str | None, ...] = (),
    ) -> None:
        if (
            isinstance(shutdown_timeout, bool)
            or not isinstance(shutdown_timeout, int | float)
            or not shutdown_timeout >= 0
            or shutdown_timeout == float("inf")
        ):
            raise ConfigError(
                "shutdown_timeout", f"must be a finite number >= 0, got {shutdown_timeout!r}"
            )
        if max_calls is not None and (
            isinstance(max_calls, bool) or not isinstance(max_calls, int) or max_calls < 1
        ):
            raise ConfigError("max_calls", f"must be an int >= 1 or None, got {max_calls!r}")
        self._shutdown_timeout = float(shutdown_timeout)
        self._max_calls = max_calls
        self._log = logger if logger is not None else logging.getLogger(__name__)
        self._secrets = tuple(secret for secret in secrets if secret)
        self._calls: dict[int, ActiveCall] = {}
        self._calls_started = 0
        self._calls_rejected = 0
        self._draining = False
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return (
            f"<CallRoster active_calls={len(self._calls)} started={self._calls_started}"
            f" draining={self._draining}>"
        )

    # -- state ----------------------------------------------------------------------------------

    @property
    def active_calls(self) -> int:
        """Calls being carried now."""
        return len(self._calls)

    @property
    def calls_started(self) -> int:
        """Calls accepted since the roster was made."""
        return self._calls_started

    @property
    def calls_rejected(self) -> int:
        """Calls refused (:meth:`reject`)."""
        return self._calls_rejected

    @property
    def draining(self) -> bool:
        """:meth:`drain` was called: the server takes no new calls."""
        return self._draining

    @property
    def shutdown_timeout(self) -> float:
        """Seconds active calls get to finish on :meth:`drain`."""
        return self._shutdown_timeout

    @property
    def max_calls(self) -> int | None:
        """Calls carried at once, or ``None`` for no limit."""
        return self._max_calls

    @property
    def bridges(self) -> list[CallBridge]:
        """The bridges of the active calls."""
        return [call.bridge for call in self._calls.values() if call.bridge is not None]

    def health(self) -> tuple[int, dict[str, Any]]:
        """A health answer: HTTP status (503 while draining, so that a load balancer stops
        sending calls before the process exits) and a JSON body with ``status``,
        ``active_calls``, ``max_calls`` (``null``: no limit), ``calls_started`` and
        ``calls_rejected``. A full server stays 200: it is healthy, and a probe that failed
        it could have it restarted with its calls."""
        return 503 if self._draining else 200, {
            "status": "draining" if self._draining else "ok",
            "active_calls": len(self._calls),
            "max_calls": self._max_calls,
            "calls_started": self._calls_started,
            "calls_rejected": self._calls_rejected,
        }

    async def wait_for_calls(self, count: int = 0, *, timeout: float = 10.0) -> None:
        """Wait until exactly ``count`` calls are active; ``timeout`` is a hang guard.

        Raises:
            TimeoutError: The count was not reached in time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self._calls) != count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._calls)} calls active, waited for {count}")
            self._changed.clear()
            await wait_for_change(self._changed, remaining)

    # -- calls ----------------------------------------------------------------------------------

    def reject(self) -> None:
        """Count a call the server refused (bad signature or token; :meth:`carry` counts its own
        refusals)."""
        self._calls_rejected += 1
        self._changed.set()

    async def carry(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        run: Callable[[ActiveCall], Awaitable[None]],
    ) -> web.StreamResponse:
        """Carry one call: answer the upgrade on ``ws`` and run ``run(call)`` until it returns.

        Returns what the route answers: ``ws``, or a refusal, counted in ``calls_rejected``:
        503 while draining or with ``max_calls`` calls active, 400 for a request that is not a
        WebSocket upgrade. The call is counted before the upgrade is answered, so ``max_calls``
        holds however many upgrades arrive at once.

        ``run`` builds the call's bridge, sets ``call.bridge``, and runs it. If it raises, the
        failure is this call's alone: it is logged (secrets replaced), the bridge is closed and
        the WebSocket is closed with code 1011; nothing is raised. If the handler is cancelled,
        the bridge is closed before the cancellation goes on. Either way the WebSocket is closed
        when this returns.
        """
        refusal = self._refusal(request, ws)
        if refusal is not None:
            self.reject()
            return refusal
        self._calls_started += 1
        call = ActiveCall(self._calls_started, ws)
        self._calls[call.number] = call
        self._changed.set()
        try:
            await ws.prepare(request)
            await run(call)
        except asyncio.CancelledError:
            if call.bridge is not None:
                await call.bridge.close()
            raise
        except Exception as exc:
            self._log.error(
                "call %d failed: %s: %s", call.number, type(exc).__name__, self._redacted(str(exc))
            )
            if call.bridge is not None:
                with contextlib.suppress(Exception):
                    await call.bridge.close()
            with contextlib.suppress(Exception):
                await ws.close(code=1011, message=b"internal error")
        finally:
            del self._calls[call.number]
            call._done.set()
            self._changed.set()
            if ws.prepared and not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close()
        return ws

    def _refusal(self, request: web.Request, ws: web.WebSocketResponse) -> web.Response | None:
        if self._draining:
            return web.Response(status=503, text="shutting down\n")
        if self._max_calls is not None and len(self._calls) >= self._max_calls:
            self._log.warning("rejected a call: %d calls active (max_calls)", len(self._calls))
            return web.Response(status=503, text="too many calls\n")
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="expected a WebSocket upgrade\n")
        return None

    def _redacted(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # -- shutdown -------------------------------------------------------------------------------

    async def drain(self, timeout: float | None = None) -> int:
        """Stop taking calls, let the active ones finish for up to ``timeout``, close the rest
        (all at once, through their bridges).

        Call it while the server still reads its connections, i.e. before aiohttp's own
        shutdown (``AppRunner.cleanup``): once that starts, aiohttp drops every inbound frame,
        so a caller's audio and hang-up no longer arrive. :func:`run_app` does this; the
        :meth:`on_shutdown` handler drains again, as a fallback, for applications run otherwise.

        Args:
            timeout: Seconds to wait; default ``shutdown_timeout``.

        Returns:
            How many calls had to be closed.
        """
        self._draining = True
        self._changed.set()
        wait = self._shutdown_timeout if timeout is None else timeout
        calls = list(self._calls.values())
        if not calls:
            return 0
        self._log.info("shutting down: waiting up to %.1f s for %d call(s)", wait, len(calls))
        await _until_done(calls, wait)
        remaining = [call for call in calls if not call._done.is_set()]
        if not remaining:
            return 0
        self._log.info("shutting down: closing %d call(s)", len(remaining))
        # All at once: each close waits on two closing handshakes, and a hundred calls closed
        # one after the other would outlast any shutdown timeout.
        await asyncio.gather(*(_close(call) for call in remaining), return_exceptions=True)
        await _until_done(remaining, _CLOSE_WAIT)
        return len(remaining)

    async def on_shutdown(self, app: web.Application) -> None:
        """aiohttp ``on_shutdown`` handler: :meth:`drain` with ``shutdown_timeout``."""
        del app
        await self.drain()


async def _until_done(calls: list[ActiveCall], timeout: float) -> None:
    waiters = [asyncio.ensure_future(call._done.wait()) for call in calls]
    try:
        await asyncio.wait(waiters, timeout=timeout)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


async def _close(call: ActiveCall) -> None:
    if call.bridge is not None:
        await call.bridge.close()
    else:
        await call.ws.close(code=1001, message=b"server shutting down")


async def run_app(
    app: web.Application,
    roster: CallRoster,
    *,
    host: str,
    port: int,
    ready: Callable[[str], None],
) -> None:
    """Serve ``app`` on ``host:port`` until cancelled, then shut down without dropping calls.

    Calls ``ready("http://HOST:PORT")`` once listening (the port actually bound, for port 0).
    Cancelled (``voicewire serve`` cancels on SIGINT and SIGTERM), it stops listening, drains
    ``roster`` while the established calls are still read, and then shuts aiohttp down.
    """
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=roster.shutdown_timeout + _CLOSE_WAIT,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else str(bound_host)
        ready(f"http://{shown}:{bound_port}")
        await asyncio.Event().wait()  # until cancelled
    finally:
        # aiohttp stops reading every connection once its own shutdown starts: drain first.
        for running in list(runner.sites):
            await running.stop()
        await roster.drain()
        await runner.cleanup()
