"""OpenAIRealtimeWebSocket: connect, close, and everything that can go wrong while connecting.

Real loopback sockets against FakeRealtimeServer (or, to read handshake headers, a bare
``websockets`` server). Waits are on events; every timeout is a hang guard.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

import voicewire
from voicewire import ConnectOptions, SessionConfig
from voicewire.errors import MuteNotSupportedError, TransportStateError
from voicewire.testing import CloseBeforeSessionCreated, RefuseConnection, Stall
from voicewire_openai_ws import (
    ConnectFailedError,
    OpenAIRealtimeWebSocket,
    ReconnectPolicy,
    default_url,
)

if TYPE_CHECKING:
    from tests.openai_ws.conftest import EventLog, ServerFactory, TransportFactory

pytestmark = pytest.mark.usefixtures("no_task_leaks")

GUARD = 10.0
KEY = "sk-test-connect-0123456789"

Record = Callable[[OpenAIRealtimeWebSocket], "EventLog"]


def status_of(transport: OpenAIRealtimeWebSocket) -> str:
    # Read through a call, so the type checker does not narrow the status across awaits.
    return transport.status


class Gate:
    """An async API-key callable that waits until the test opens it; counts its calls."""

    def __init__(self, key: str = KEY) -> None:
        self.key = key
        self.calls = 0
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()

    async def __call__(self) -> str:
        self.calls += 1
        self.entered.set()
        await self.opened.wait()
        return self.key


async def test_connect_sends_the_full_session_update_first_then_closes_cleanly(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(api_key=KEY)
    transport = make_transport(api_key=KEY, url=server.url)
    log = record(transport)
    config = SessionConfig(
        instructions="Be brief.",
        voice="marin",
        input_audio_format="audio/pcmu",
        output_audio_format="audio/pcmu",
    )

    await transport.connect(ConnectOptions(initial_session_config=config))

    assert transport.status == "connected"
    assert log.statuses() == ["connecting", "connected"]
    assert log.raw_types()[0] == "session.created"  # connected means the server made a session
    # The server sends session.created without waiting for it, so the update may still be in
    # flight when connect() returns.
    first = await server.wait_for_client_event("session.update", timeout=GUARD)
    session = server.session(0)
    assert session.auth == "matched"
    assert session.client_events[0] == first
    assert first["type"] == "session.update"
    assert first["session"]["instructions"] == "Be brief."
    assert first["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert first["session"]["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert first["session"]["audio"]["output"]["voice"] == "marin"
    assert first["session"]["model"] == "gpt-realtime"

    await transport.close()
    assert status_of(transport) == "disconnected"
    assert log.statuses() == ["connecting", "connected", "disconnecting", "disconnected"]
    assert (await server.wait_closed(0, timeout=GUARD)).closed
    await transport.close()  # idempotent: nothing more happens
    assert log.statuses()[-1] == "disconnected"
    assert len(log.statuses()) == 4

    await transport.connect()  # a closed transport connects again, as a new session
    await server.wait_for_client_event("session.update", session=1, timeout=GUARD)
    assert server.session(1).client_types()[0] == "session.update"
    assert transport.status == "connected"


async def test_url_precedence_model_and_default_url(
    fake_server: ServerFactory, make_transport: TransportFactory
) -> None:
    first = await fake_server()
    second = await fake_server()
    transport = make_transport(url=first.url, model="gpt-realtime-mini")

    await transport.connect()
    update = await first.wait_for_client_event("session.update", timeout=GUARD)
    assert update["session"]["model"] == "gpt-realtime-mini"
    await transport.close()

    # ConnectOptions.url beats the constructor's, and becomes the default for later connects.
    other = f"{second.url}?model=gpt-realtime-2"
    await transport.connect(ConnectOptions(url=other, model="gpt-realtime-2"))
    assert second.session(0).model == "gpt-realtime-2"
    update = await second.wait_for_client_event("session.update", timeout=GUARD)
    assert update["session"]["model"] == "gpt-realtime-2"
    assert transport.model == "gpt-realtime-2"
    assert transport.url == other
    await transport.close()

    assert default_url("gpt-realtime") == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert default_url("a b/c") == "wss://api.openai.com/v1/realtime?model=a%20b%2Fc"


async def test_connect_is_refused_while_connecting_or_connected(
    fake_server: ServerFactory, make_transport: TransportFactory
) -> None:
    server = await fake_server(api_key=KEY)
    gate = Gate()
    transport = make_transport(api_key=gate, url=server.url, model="m1")
    attempt = asyncio.create_task(transport.connect())
    await asyncio.wait_for(gate.entered.wait(), GUARD)
    assert transport.status == "connecting"

    with pytest.raises(TransportStateError, match="connecting"):
        await transport.connect(ConnectOptions(model="m2"))
    assert transport.model == "m1"  # the refused call changed nothing

    gate.opened.set()
    await asyncio.wait_for(attempt, GUARD)
    with pytest.raises(TransportStateError, match="connected"):
        await transport.connect()
    assert len(server.sessions) == 1


async def test_failed_connect_restores_model_and_url_and_reports(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    good = await fake_server()
    busy = await fake_server(faults=[RefuseConnection(status=503)])
    transport = make_transport(url=good.url, model="model-a")
    log = record(transport)

    with pytest.raises(ConnectFailedError) as caught:
        await transport.connect(ConnectOptions(url=busy.url, model="model-b"))

    exc = caught.value
    assert exc.code == "http_error"
    assert exc.http_status == 503
    assert not exc.fatal  # 503 is worth retrying
    assert "HTTP 503" in str(exc)
    assert transport.model == "model-a"
    assert transport.url == good.url
    assert transport.status == "disconnected"
    assert log.statuses() == ["connecting", "disconnected"]
    [error] = log.errors()
    assert error.code == "http_error"
    assert error.error is exc

    await transport.connect()  # the restored defaults work
    update = await good.wait_for_client_event("session.update", timeout=GUARD)
    assert update["session"]["model"] == "model-a"


async def test_api_key_as_async_callable_is_awaited_at_connect(
    fake_server: ServerFactory, make_transport: TransportFactory
) -> None:
    server = await fake_server(api_key=KEY)
    calls: list[int] = []

    async def fetch_key() -> str:
        calls.append(1)
        await asyncio.sleep(0)
        return KEY

    transport = make_transport(url=server.url)
    await transport.connect(ConnectOptions(api_key=fetch_key))
    assert calls == [1]
    assert server.session(0).auth == "matched"


async def test_wrong_key_gives_a_clear_401_error_without_the_key(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(api_key=KEY)
    wrong = "sk-wrong-key-must-not-leak-42"
    transport = make_transport(api_key=wrong, url=server.url)
    log = record(transport)

    with pytest.raises(ConnectFailedError) as caught:
        await transport.connect()

    exc = caught.value
    assert exc.http_status == 401
    assert exc.code == "invalid_api_key"
    assert exc.fatal
    assert "HTTP 401" in str(exc)
    assert "API key" in str(exc)
    for text in (str(exc), repr(exc), repr(transport), *map(repr, log.events)):
        assert wrong not in text
    assert server.session(0).auth == "mismatched"
    assert transport.status == "disconnected"


async def test_a_missing_key_for_the_openai_api_fails_before_anything_happens(
    make_transport: TransportFactory, record: Record
) -> None:
    transport = make_transport()
    log = record(transport)
    with pytest.raises(ConnectFailedError) as caught:
        await transport.connect()
    assert caught.value.code == "missing_api_key"
    assert transport.status == "disconnected"
    assert log.events == []

    with pytest.raises(ConnectFailedError) as bad_url:
        await transport.connect(ConnectOptions(url="https://example.invalid/v1/realtime"))
    assert bad_url.value.code == "invalid_url"
    assert log.events == []


async def test_an_empty_key_from_the_callable_is_a_clear_error(
    fake_server: ServerFactory, make_transport: TransportFactory
) -> None:
    server = await fake_server()

    async def empty() -> str:
        return ""

    transport = make_transport(api_key=empty, url=server.url)
    with pytest.raises(ConnectFailedError) as caught:
        await transport.connect()
    assert caught.value.code == "missing_api_key"
    assert server.sessions == ()


async def test_close_while_fetching_the_key_aborts_without_a_socket(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(api_key=KEY)
    gate = Gate()
    transport = make_transport(api_key=gate, url=server.url, model="before")
    log = record(transport)
    attempt = asyncio.create_task(transport.connect(ConnectOptions(model="during")))
    await asyncio.wait_for(gate.entered.wait(), GUARD)

    await transport.close()

    with pytest.raises(ConnectFailedError) as caught:
        await asyncio.wait_for(attempt, GUARD)
    assert caught.value.code == "aborted"
    assert transport.status == "disconnected"
    assert transport.model == "before"
    assert log.statuses() == ["connecting", "disconnecting", "disconnected"]
    gate.opened.set()
    assert server.sessions == ()  # no socket was ever opened


async def test_close_while_waiting_for_session_created_aborts(
    fake_server: ServerFactory, make_transport: TransportFactory
) -> None:
    server = await fake_server(faults=[Stall(after_events=0)])
    transport = make_transport(url=server.url)
    attempt = asyncio.create_task(transport.connect())
    await server.wait_for_client_event("session.update", timeout=GUARD)
    assert transport.status == "connecting"

    await transport.close()

    with pytest.raises(ConnectFailedError, match="close"):
        await asyncio.wait_for(attempt, GUARD)
    assert (await server.wait_closed(0, timeout=GUARD)).closed
    assert status_of(transport) == "disconnected"


async def test_close_as_the_attempt_completes_aborts_without_an_internal_error(
    fake_server: ServerFactory,
    make_transport: TransportFactory,
    record: Record,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """close() lands just as the session is ready, and the attempt returns anyway.

    Before Python 3.12, ``asyncio.wait_for`` returns its inner call's result and drops a
    cancellation that arrives in the same turn of the loop. The stand-in below does that on
    every Python, for the attempt only; the attempt's socket must then be dropped, not declared
    connected.
    """
    server = await fake_server()
    transport = make_transport(url=server.url)
    log = record(transport)
    closing: list[asyncio.Task[None]] = []
    real_wait_for = asyncio.wait_for

    async def wait_for(awaitable: Any, timeout: float | None) -> Any:
        if getattr(getattr(awaitable, "cr_code", None), "co_name", None) != "_open":
            return await real_wait_for(awaitable, timeout)
        result = await awaitable
        closing.append(asyncio.create_task(transport.close()))
        try:
            await asyncio.sleep(0)  # close(): 'disconnecting', and this task is cancelled
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()  # dropped, as wait_for did
        return result

    monkeypatch.setattr(asyncio, "wait_for", wait_for)
    with pytest.raises(ConnectFailedError) as caught:
        await real_wait_for(transport.connect(), GUARD)
    await real_wait_for(closing[0], GUARD)
    assert caught.value.code == "aborted"
    assert log.statuses() == ["connecting", "disconnecting", "disconnected"]
    assert (await server.wait_closed(0, timeout=GUARD)).closed
    assert "the connection task failed" not in caplog.text
    assert not log.errors()


async def test_no_session_created_within_connect_timeout(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(faults=[Stall(after_events=0)])
    transport = make_transport(url=server.url, connect_timeout=0.3)
    log = record(transport)
    with pytest.raises(ConnectFailedError) as caught:
        await transport.connect()
    assert caught.value.code == "timeout"
    assert log.statuses() == ["connecting", "disconnected"]
    assert (await server.wait_closed(0, timeout=GUARD)).closed


async def test_server_closing_before_session_created(
    fake_server: ServerFactory, make_transport: TransportFactory
) -> None:
    server = await fake_server(faults=[CloseBeforeSessionCreated(code=1011)])
    transport = make_transport(url=server.url)
    with pytest.raises(ConnectFailedError) as caught:
        await transport.connect()
    assert caught.value.code == "closed_before_ready"
    assert caught.value.close_code == 1011
    assert "session.created" in str(caught.value)


async def test_cancelling_connect_leaves_a_disconnected_transport(
    fake_server: ServerFactory, make_transport: TransportFactory
) -> None:
    server = await fake_server(faults=[Stall(after_events=0)])
    transport = make_transport(url=server.url)
    attempt = asyncio.create_task(transport.connect())
    await server.wait_for_client_event("session.update", timeout=GUARD)
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    assert transport.status == "disconnected"
    assert (await server.wait_closed(0, timeout=GUARD)).closed


async def test_mute_is_not_supported(make_transport: TransportFactory) -> None:
    transport = make_transport()
    assert transport.muted is None
    with pytest.raises(MuteNotSupportedError, match="openai_ws"):
        transport.mute(True)


@pytest.mark.filterwarnings("ignore::voicewire.plugins.PluginLoadWarning")
async def test_registry_builds_the_transport_with_keyword_options(
    fake_server: ServerFactory,
) -> None:
    server = await fake_server()
    assert voicewire.available_transports()["openai_ws"] == "model_transport"
    transport = voicewire.create_transport(
        "openai_ws",
        url=server.url,
        model="gpt-realtime-mini",
        reconnect=ReconnectPolicy(max_attempts=2),
        plugin_observers=False,
    )
    assert isinstance(transport, OpenAIRealtimeWebSocket)
    assert isinstance(transport, voicewire.RealtimeTransportLayer)
    assert transport.reconnect_policy == ReconnectPolicy(max_attempts=2)
    try:
        await transport.connect()
        assert transport.status == "connected"
    finally:
        await transport.close()


async def test_handshake_headers(make_transport: TransportFactory) -> None:
    """Bearer key, extra headers (options over constructor), trace headers, user agent."""
    seen: list[Headers] = []

    def capture(connection: ServerConnection, request: Request) -> Response:
        seen.append(request.headers)
        return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "busy\n")

    def trace_headers() -> dict[str, str]:
        return {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}

    def broken_provider() -> dict[str, str]:
        raise RuntimeError("tracing is broken")

    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=capture) as srv:
        port = srv.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/v1/realtime"
        transport = make_transport(
            api_key=KEY,
            url=url,
            extra_headers={"X-Team": "a", "X-Site": "s"},
            headers_provider=trace_headers,
        )
        with pytest.raises(ConnectFailedError):
            await transport.connect(ConnectOptions(extra_headers={"X-Team": "b"}))
        azure = make_transport(
            api_key=KEY,
            url=url,
            extra_headers={"api-key": "azure"},
            headers_provider=broken_provider,
        )
        with pytest.raises(ConnectFailedError):
            await azure.connect()

    first, second = seen
    assert first["Authorization"] == f"Bearer {KEY}"
    assert first["X-Team"] == "b"
    assert first["X-Site"] == "s"
    assert first["traceparent"].startswith("00-0af7")
    assert first["User-Agent"].startswith("voicewire-openai-ws/")
    assert "OpenAI-Beta" not in first  # GA protocol: no beta header
    # An explicit credential header replaces the Bearer one; a failing provider is ignored.
    assert second["api-key"] == "azure"
    assert "Authorization" not in second
    assert "traceparent" not in second


async def test_constructor_validates_its_options() -> None:
    from voicewire.errors import ConfigError

    bad: list[dict[str, Any]] = [
        {"model": ""},
        {"max_message_size": 10},
        {"ping_interval": 0},
        {"connect_timeout": -1},
        {"audio_buffer_limit": -1},
        {"reconnect": "yes"},
        {"url": ""},
    ]
    for options in bad:
        with pytest.raises(ConfigError):
            OpenAIRealtimeWebSocket(plugin_observers=False, **options)


async def test_unreachable_server_and_failing_key_callable(
    make_transport: TransportFactory, record: Record
) -> None:
    with socket.socket() as probe:  # a port nothing listens on any more
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = make_transport(url=f"ws://127.0.0.1:{port}/v1/realtime?key=hidden")
    log = record(transport)
    with pytest.raises(ConnectFailedError) as caught:
        await transport.connect()
    assert caught.value.code == "network_error"
    assert not caught.value.fatal  # worth retrying
    assert "127.0.0.1" in str(caught.value)
    assert "hidden" not in repr(transport)  # queries are not shown: credentials hide there
    assert log.statuses() == ["connecting", "disconnected"]

    async def broken_key() -> str:
        raise RuntimeError("vault unavailable")

    with pytest.raises(ConnectFailedError) as key_error:
        await transport.connect(ConnectOptions(api_key=broken_key))
    assert key_error.value.code == "api_key_error"
    assert "RuntimeError" in str(key_error.value)
    assert isinstance(key_error.value.__cause__, RuntimeError)
