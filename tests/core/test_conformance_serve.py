"""``check_serve_runner`` on the Twilio plugin's runner, and on runners that get shutdown wrong.

The runners are real servers on loopback, with the fake model and the simulated caller; the
faulty ones are small, plausible mistakes a plugin author could make.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import attrs
import pytest
from aiohttp import web

from voicewire.cli.serve import ServeSettings
from voicewire.registry import Registry
from voicewire.testing import FakeRealtimeServer
from voicewire.testing.conformance import ConformanceError, check_serve_runner
from voicewire_twilio.caller import TwilioDialect
from voicewire_twilio.server import create_app, serve

Runner = Callable[[ServeSettings, Callable[[str], None]], object]


async def test_the_twilio_runner_serves_a_call_and_drains(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    await check_serve_runner("twilio", TwilioDialect, fake_server=fake_realtime_server)


def registry_with(runner: Runner) -> Registry:
    """A registry whose edge ``hasty`` serves with ``runner``."""

    def factory(**options: object) -> object:
        raise NotImplementedError  # the check never builds an edge itself

    factory.voicewire_serve = runner  # type: ignore[attr-defined]
    registry = Registry()
    registry.add_telephony_edge("hasty", factory)
    return registry


async def hasty(settings: ServeSettings, ready: Callable[[str], None]) -> None:
    """The Twilio application under aiohttp's own runner: its shutdown stops reading calls."""
    app = create_app(
        realtime_url=settings.realtime_url,
        api_key=settings.api_key,
        insecure_skip_signature=True,
        shutdown_timeout=0.5,
        max_calls=settings.max_calls,
    )
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        ready(f"http://{host}:{port}")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def unlimited(settings: ServeSettings, ready: Callable[[str], None]) -> None:
    """The Twilio runner, but ``max_calls`` is not passed on to the application."""
    await serve(attrs.evolve(settings, telephony="twilio", max_calls=None), ready)


async def never_ready(settings: ServeSettings, ready: Callable[[str], None]) -> None:
    del settings, ready
    raise RuntimeError("port already in use")


@pytest.mark.parametrize(
    ("runner", "step", "detail"),
    [
        (hasty, "drain", "the model never answered"),
        (unlimited, "limit", "the runner ignores settings.max_calls"),
        (never_ready, "ready", "raised RuntimeError: port already in use before calling ready()"),
    ],
    ids=["calls-cut-on-shutdown", "ignores-max-calls", "fails-before-ready"],
)
async def test_a_runner_that_gets_it_wrong_is_named(
    no_task_leaks: None,
    fake_realtime_server: FakeRealtimeServer,
    runner: Runner,
    step: str,
    detail: str,
) -> None:
    with pytest.raises(ConformanceError) as caught:
        await check_serve_runner(
            "hasty",
            TwilioDialect,
            fake_server=fake_realtime_server,
            registry=registry_with(runner),
            timeout=5.0,
        )
    assert caught.value.step == step, caught.value
    assert detail in caught.value.detail, caught.value


async def test_an_edge_without_a_runner_is_named(fake_realtime_server: FakeRealtimeServer) -> None:
    registry = Registry()
    registry.add_telephony_edge("bare", lambda **options: object())
    with pytest.raises(ConformanceError, match="offers no server"):
        await check_serve_runner(
            "bare", TwilioDialect, fake_server=fake_realtime_server, registry=registry
        )
