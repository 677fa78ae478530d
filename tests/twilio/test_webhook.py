"""``ring``: the webhook, then the stream its TwiML names, as Twilio starts a call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from voicewire.audio.formats import MULAW_8K
from voicewire.testing.fake_realtime import FakeRealtimeServer, speech_like
from voicewire.testing.telephony import SimulatedCaller
from voicewire_twilio.protocol import CALL_TOKEN_PARAMETER
from voicewire_twilio.server import APP_KEY, create_app
from voicewire_twilio.webhook import WebhookError, ring

GUARD = 10.0
TOKEN = "webhook-test-auth-token"


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_a_rung_call_carries_its_token_and_parameters_to_the_model(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    started: list[dict[str, str]] = []
    app = create_app(
        realtime_url=fake_realtime_server.url,
        twilio_auth_token=TOKEN,
        require_call_token=True,
        webhook_parameters=("From",),
        stream_parameters={"tenant": "acme"},
        on_call=lambda bridge: bridge.on(
            "call_start", lambda event: started.append(dict(event.custom_parameters))
        ),
    )
    async with serving(app) as base:
        stream_url, dialect = await ring(f"{base}/twiml", auth_token=TOKEN, from_number="+1555")
        assert stream_url == base.replace("http://", "ws://") + "/media-stream"
        assert set(dialect.custom_parameters) == {"tenant", "From", CALL_TOKEN_PARAMETER}
        async with SimulatedCaller(stream_url, dialect, speed=4.0) as caller:
            await caller.say(speech_like(500, MULAW_8K))
            await caller.wait_for(lambda: len(caller.heard) > 0, timeout=GUARD)
            await caller.hang_up()
        await app[APP_KEY].wait_for_calls(0, timeout=GUARD)
    assert started == [{"tenant": "acme", "From": "+1555"}]


async def test_signing_over_the_public_url_behind_a_proxy(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    public = "https://bridge.example.com"
    app = create_app(
        realtime_url=fake_realtime_server.url, twilio_auth_token=TOKEN, public_url=public
    )
    async with serving(app) as base:
        with pytest.raises(WebhookError, match="HTTP 403"):
            await ring(f"{base}/twiml", auth_token=TOKEN)  # signed over the local URL
        stream_url, dialect = await ring(
            f"{base}/twiml", auth_token=TOKEN, signed_url=f"{public}/twiml"
        )
        assert stream_url == "wss://bridge.example.com/media-stream"
        # Where the proxy would forward it: the upgrade is signed over the TwiML's URL.
        local = base.replace("http://", "ws://") + "/media-stream"
        async with SimulatedCaller(local, dialect, speed=4.0) as caller:
            await caller.say(speech_like(400, MULAW_8K))
            await caller.wait_for(lambda: len(caller.heard) > 0, timeout=GUARD)
            await caller.hang_up()
        await app[APP_KEY].wait_for_calls(0, timeout=GUARD)


def answering(body: bytes | str, status: int = 200) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        await request.post()
        return web.Response(
            body=body.encode() if isinstance(body, str) else body,
            status=status,
            content_type="text/xml",
        )

    app = web.Application()
    app.router.add_post("/twiml", handler)
    return app


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ("<Response/>", 500, "answered HTTP 500"),
        ("not xml at all", 200, "not XML"),
        ("<Response><Say>hello</Say></Response>", 200, "no <Connect><Stream"),
        ("<Other><Connect><Stream url='wss://x/y'/></Connect></Other>", 200, "no <Connect>"),
        ("<Response><Connect><Stream/></Connect></Response>", 200, "no <Connect><Stream url"),
        (
            "<Response><Connect><Stream url='wss://x/y'><Parameter name='a'/></Stream>"
            "</Connect></Response>",
            200,
            "lacks its name or value",
        ),
        ("<Response>" + " " * 70_000 + "</Response>", 200, "larger than 65536 bytes"),
    ],
    ids=["status", "junk", "no-stream", "root", "no-url", "parameter", "oversized"],
)
async def test_an_answer_that_does_not_connect_a_stream_is_named(
    body: str, status: int, reason: str
) -> None:
    async with serving(answering(body, status)) as base:
        with pytest.raises(WebhookError, match=reason) as caught:
            await ring(f"{base}/twiml", auth_token=TOKEN)
    assert TOKEN not in str(caught.value)


async def test_an_unreachable_webhook_is_a_client_error() -> None:
    async with serving(answering("")) as base:
        pass  # closed again: the port is free now
    with pytest.raises(aiohttp.ClientError):
        await ring(f"{base}/twiml", timeout=2.0)
