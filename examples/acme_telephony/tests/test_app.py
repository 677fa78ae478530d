"""The route Acme dials, end to end: simulated Acme caller -> app -> bridge -> fake model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from voicewire_acme.app import MEDIA_PATH, create_app
from voicewire_acme.caller import AcmeDialect
from voicewire_acme.protocol import MAX_BUFFERED_MS

import voicewire
from voicewire.bridge import BridgeableModel
from voicewire.testing import FakeRealtimeServer, speech_like
from voicewire.testing.telephony import SimulatedCaller
from voicewire.transport import ConnectOptions

# Opts into voicewire's pytest plugin (fake_realtime_server, no_task_leaks).
pytest_plugins = ["voicewire.testing.pytest_plugin"]

GUARD = 15.0


def model() -> BridgeableModel:
    transport = voicewire.create_transport("openai_ws", plugin_observers=False)
    assert isinstance(transport, BridgeableModel)
    return transport


@pytest.fixture
async def serve(
    fake_realtime_server: FakeRealtimeServer,
) -> AsyncIterator[Callable[..., object]]:
    """Start the Acme app on loopback; return its media URL."""
    runners: list[web.AppRunner] = []

    async def start(**options: object) -> str:
        app = create_app(
            model_factory=model,
            connect_options=ConnectOptions(url=fake_realtime_server.url, api_key="sk-test"),
            bridge_options={"plugin_observers": False},
            **options,  # type: ignore[arg-type]
        )
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"ws://{host}:{port}{MEDIA_PATH}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_a_call_through_the_app(
    no_task_leaks: None,
    fake_realtime_server: FakeRealtimeServer,
    serve: Callable[..., object],
) -> None:
    url = await serve()  # type: ignore[misc]
    dialect = AcmeDialect(codec="pcmu", params={"lang": "en"})
    async with SimulatedCaller(url, dialect, speed=2.0) as caller:
        speech = speech_like(500, dialect.audio_format, seed="acme")
        speech = speech[: len(speech) - len(speech) % 160]
        await caller.say(speech)
        response = await fake_realtime_server.wait_for_server_event("response.done", timeout=GUARD)
        assert response["response"]["status"] == "completed"
        answer = fake_realtime_server.session(0).audio_sent()
        await caller.wait_heard(len(answer), timeout=GUARD)
        # mu-law announced by hello, so the session is mu-law and nothing is converted.
        session = fake_realtime_server.session(0).session
        assert session is not None
        assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        assert caller.heard[: len(answer)] == answer
        assert speech in fake_realtime_server.session(0).audio_received()
        await caller.hang_up()
    await fake_realtime_server.wait_closed(0, timeout=GUARD)
    assert fake_realtime_server.session(0).errors() == []


async def test_a_connection_without_hello_is_closed(
    no_task_leaks: None, serve: Callable[..., object]
) -> None:
    url = await serve()  # type: ignore[misc]

    class Silent(AcmeDialect):
        def opening(self) -> list[str]:
            return []

    async with SimulatedCaller(url, Silent(), keepalive=False) as caller:
        await caller.hang_up()  # "bye" before "hello": the app gives up on the connection
        await caller.wait_closed(timeout=GUARD)


@pytest.mark.voicewire_fake_server(pace=0)  # the model sends its whole answer at once
async def test_the_answer_reaches_acme_no_faster_than_it_plays(
    no_task_leaks: None,
    fake_realtime_server: FakeRealtimeServer,
    serve: Callable[..., object],
) -> None:
    # Acme drops what comes more than MAX_BUFFERED_MS ahead of its playback: the bridge paces
    # the answer. Checked from below only (a slow machine can make audio later, never earlier):
    # a burst handed on as it came would arrive within a few milliseconds.
    url = await serve()  # type: ignore[misc]
    dialect = AcmeDialect(codec="pcmu")
    async with SimulatedCaller(url, dialect) as caller:
        speech = speech_like(1500, dialect.audio_format, seed="acme-paced")
        await caller.say(speech[: len(speech) - len(speech) % 160])
        await fake_realtime_server.wait_for_server_event("response.done", timeout=GUARD)
        answer = len(fake_realtime_server.session(0).audio_sent())
        await caller.wait_heard(answer, timeout=GUARD)
        received = caller.entries("audio_received")
        total_ms = sum(int(str(entry.detail["nbytes"])) for entry in received) / 8.0
        assert total_ms >= answer / 8.0
        spread_ms = received[-1].at_ms - received[0].at_ms
        assert answer / 8.0 >= 1200  # enough audio for the bound below to mean something
        # Less the buffer, less a generous allowance for the first piece's own delay (the bound
        # is met unless that one piece takes over 600 ms to arrive).
        assert spread_ms >= answer / 8.0 - MAX_BUFFERED_MS - 600, (spread_ms, answer)
        assert all(int(str(e.detail["nbytes"])) <= MAX_BUFFERED_MS * 8 for e in received)
        await caller.hang_up()
    await fake_realtime_server.wait_closed(0, timeout=GUARD)
