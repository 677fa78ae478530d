"""The bridge server (``create_app``): TwiML, health, signatures, limits, isolation, shutdown.

Real aiohttp server on loopback, real clients, a real fake model where a call needs one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from voicewire.audio.formats import MULAW_8K
from voicewire.cli.serve import ServeSettings
from voicewire.errors import ConfigError
from voicewire.testing.fake_realtime import FakeRealtimeServer, speech_like
from voicewire.testing.telephony import SimulatedCaller
from voicewire_twilio.caller import TwilioDialect
from voicewire_twilio.protocol import CALL_TOKEN_PARAMETER, compute_signature
from voicewire_twilio.server import APP_KEY, BridgeServer, create_app, serve

pytestmark = pytest.mark.usefixtures("no_task_leaks")

GUARD = 10.0


TOKEN = "test-auth-token-0123"
PUBLIC = "https://bridge.example.com"
FORM = {"CallSid": "CA" + "1" * 32, "From": "+15550001111", "To": "+15550002222"}


class Served:
    def __init__(self, app: web.Application, runner: web.AppRunner, base: str) -> None:
        self.app = app
        self.runner = runner
        self.base = base

    @property
    def server(self) -> BridgeServer:
        return self.app[APP_KEY]

    @property
    def ws_url(self) -> str:
        return self.base.replace("http://", "ws://") + "/media-stream"


@contextlib.asynccontextmanager
async def served(**options: Any) -> AsyncIterator[Served]:
    app = create_app(**options)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield Served(app, runner, f"http://{host}:{port}")
    finally:
        await runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer(pace=0) as server:
        yield server


def signed_options(fake: FakeRealtimeServer, **extra: Any) -> dict[str, Any]:
    return {
        "realtime_url": fake.url,
        "api_key": "sk-test",
        "twilio_auth_token": TOKEN,
        "public_url": PUBLIC,
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------


def test_refuses_to_build_without_a_token() -> None:
    with pytest.raises(ConfigError, match="twilio_auth_token") as info:
        create_app(realtime_url="ws://127.0.0.1:1/v1/realtime")
    assert "insecure_skip_signature" in str(info.value)
    app = create_app(realtime_url="ws://127.0.0.1:1/v1/realtime", insecure_skip_signature=True)
    assert "signature=off" in repr(app[APP_KEY])


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"realtime_url": "https://api.openai.com/v1/realtime"}, "realtime_url"),
        ({"realtime_url": "wss://api.openai.com/v1/realtime"}, "api_key"),
        ({"public_url": "bridge.example.com"}, "public_url"),
        ({"public_url": "https://bridge.example.com/?x=1"}, "public_url"),
        ({"max_message_bytes": 10}, "max_message_bytes"),
        ({"max_messages_per_second": 0}, "max_messages_per_second"),
        ({"message_burst": 0}, "message_burst"),
        ({"shutdown_timeout": -1}, "shutdown_timeout"),
        ({"max_calls": 0}, "max_calls"),
    ],
)
def test_unusable_configuration_is_refused(options: dict[str, Any], field: str) -> None:
    base: dict[str, Any] = {
        "realtime_url": "ws://127.0.0.1:1/v1/realtime",
        "twilio_auth_token": TOKEN,
    }
    with pytest.raises(ConfigError) as info:
        create_app(**{**base, **options})
    assert info.value.field == field


def test_repr_hides_secrets() -> None:
    app = create_app(
        realtime_url="wss://api.openai.com/v1/realtime",
        api_key="sk-very-secret",
        twilio_auth_token=TOKEN,
        public_url=PUBLIC,
    )
    text = repr(app[APP_KEY])
    assert "sk-very-secret" not in text
    assert TOKEN not in text
    assert "signature=on" in text


# ---------------------------------------------------------------------------------------------
# the webhook
# ---------------------------------------------------------------------------------------------


async def post_twiml(
    served: Served, *, signature: str | None, header: str = "X-Twilio-Signature", query: str = ""
) -> aiohttp.ClientResponse:
    headers = {header: signature} if signature is not None else {}
    async with aiohttp.ClientSession() as session:
        response = await session.post(f"{served.base}/twiml{query}", data=FORM, headers=headers)
        await response.read()
        return response


@pytest.mark.parametrize(
    "header", ["X-Twilio-Signature", "x-twilio-signature", "X-TWILIO-SIGNATURE"]
)
async def test_twiml_with_a_valid_signature(fake: FakeRealtimeServer, header: str) -> None:
    parameters = {"tenant": "acme", "note": 'a "quoted" <value>'}
    async with served(**signed_options(fake, stream_parameters=parameters)) as srv:
        signature = compute_signature(TOKEN, f"{PUBLIC}/twiml", FORM)
        async with aiohttp.ClientSession() as session:
            response = await session.post(
                f"{srv.base}/twiml", data=FORM, headers={header: signature}
            )
            body = await response.text()
        assert response.status == 200
        assert response.content_type == "text/xml"
        root = ET.fromstring(body)
        stream = root.find("./Connect/Stream")
        assert stream is not None
        assert stream.get("url") == "wss://bridge.example.com/media-stream"
        assert {p.get("name"): p.get("value") for p in stream.findall("Parameter")} == parameters


async def test_twiml_signature_covers_the_query_string(fake: FakeRealtimeServer) -> None:
    async with served(**signed_options(fake)) as srv:
        good = compute_signature(TOKEN, f"{PUBLIC}/twiml?tenant=acme", FORM)
        assert (await post_twiml(srv, signature=good, query="?tenant=acme")).status == 200
        assert (await post_twiml(srv, signature=good, query="?tenant=evil")).status == 403


async def test_twiml_refuses_missing_or_bad_signatures(
    fake: FakeRealtimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voicewire_twilio")
    async with served(**signed_options(fake)) as srv:
        assert (await post_twiml(srv, signature=None)).status == 403
        wrong = compute_signature("another-token", f"{PUBLIC}/twiml", FORM)
        assert (await post_twiml(srv, signature=wrong)).status == 403
        # Signed for the address the server sees, not the public one: refused too.
        local = compute_signature(TOKEN, f"{srv.base}/twiml", FORM)
        assert (await post_twiml(srv, signature=local)).status == 403
    assert "rejected /twiml" in caplog.text
    assert "missing X-Twilio-Signature" in caplog.text
    assert TOKEN not in caplog.text
    assert wrong not in caplog.text


async def test_twiml_without_public_url_follows_the_request() -> None:
    async with (
        served(realtime_url="ws://127.0.0.1:1/v1/realtime", insecure_skip_signature=True) as srv,
        aiohttp.ClientSession() as session,
    ):
        plain = await (await session.post(f"{srv.base}/twiml", data=FORM)).text()
        proxied = await (
            await session.post(
                f"{srv.base}/twiml",
                data=FORM,
                headers={"X-Forwarded-Proto": "https", "Host": "tunnel.example.com"},
            )
        ).text()
    host = srv.base.removeprefix("http://")
    assert f'url="ws://{host}/media-stream"' in plain
    assert 'url="wss://tunnel.example.com/media-stream"' in proxied


# ---------------------------------------------------------------------------------------------
# the media stream upgrade
# ---------------------------------------------------------------------------------------------


async def upgrade_status(srv: Served, headers: Mapping[str, str]) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(srv.ws_url, headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


@pytest.mark.parametrize("header", ["X-Twilio-Signature", "x-twilio-signature"])
async def test_upgrade_with_a_valid_signature_is_accepted(
    fake: FakeRealtimeServer, header: str
) -> None:
    async with served(**signed_options(fake)) as srv:
        signature = compute_signature(TOKEN, "wss://bridge.example.com/media-stream")
        assert await upgrade_status(srv, {header: signature}) == 101
        await srv.server.wait_for_calls(0, timeout=GUARD)
        assert srv.server.calls_started == 1


async def test_upgrade_without_or_with_a_bad_signature_is_refused(
    fake: FakeRealtimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voicewire_twilio")
    async with served(**signed_options(fake)) as srv:
        assert await upgrade_status(srv, {}) == 403
        bad = compute_signature(TOKEN, "wss://elsewhere.example.com/media-stream")
        assert await upgrade_status(srv, {"X-Twilio-Signature": bad}) == 403
        # https:// is not what Twilio signs for a stream: wss:// is.
        https = compute_signature(TOKEN, "https://bridge.example.com/media-stream")
        assert await upgrade_status(srv, {"X-Twilio-Signature": https}) == 403
        assert srv.server.calls_started == 0
    assert "rejected /media-stream" in caplog.text
    assert TOKEN not in caplog.text


async def test_a_repeated_signature_header_is_refused_even_when_each_copy_is_valid(
    fake: FakeRealtimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voicewire_twilio")
    signature = compute_signature(TOKEN, "wss://bridge.example.com/media-stream")
    bad = compute_signature(TOKEN, "wss://elsewhere.example.com/media-stream")
    webhook = compute_signature(TOKEN, f"{PUBLIC}/twiml", FORM)
    async with served(**signed_options(fake)) as srv:
        for second in (signature, bad):
            twice = CIMultiDict([("X-Twilio-Signature", signature), ("X-Twilio-Signature", second)])
            assert await upgrade_status(srv, twice) == 403
        async with aiohttp.ClientSession() as session:
            twice = CIMultiDict([("X-Twilio-Signature", webhook), ("X-Twilio-Signature", webhook)])
            response = await session.post(f"{srv.base}/twiml", data=FORM, headers=twice)
            assert response.status == 403
            once = {"X-Twilio-Signature": webhook}
            assert (await session.post(f"{srv.base}/twiml", data=FORM, headers=once)).status == 200
        assert srv.server.calls_started == 0
    assert caplog.text.count("repeated X-Twilio-Signature") == 3
    assert signature not in caplog.text


async def test_a_stream_of_another_account_never_reaches_the_model(
    fake: FakeRealtimeServer,
) -> None:
    ours = "AC" + "3" * 32
    async with served(
        realtime_url=fake.url, insecure_skip_signature=True, twilio_account_sid=ours
    ) as srv:
        await only_our_account_is_bridged(srv.ws_url, fake, ours)
        await srv.server.wait_for_calls(0, timeout=GUARD)


async def test_voicewire_serve_checks_the_account_it_is_given(
    no_task_leaks: None, fake: FakeRealtimeServer
) -> None:
    ours = "AC" + "3" * 32
    settings = ServeSettings(
        port=0, realtime_url=fake.url, insecure_skip_signature=True, account_sid=ours
    )
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    serving = asyncio.ensure_future(serve(settings, ready.set_result))
    try:
        base = await asyncio.wait_for(ready, GUARD)
        await only_our_account_is_bridged(f"ws{base[4:]}/media-stream", fake, ours)
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


async def test_voicewire_serve_mints_call_tokens_when_asked(
    no_task_leaks: None, fake: FakeRealtimeServer
) -> None:
    settings = ServeSettings(
        port=0,
        realtime_url=fake.url,
        auth_token=TOKEN,
        public_url=PUBLIC,
        require_call_token=True,
    )
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    serving = asyncio.ensure_future(serve(settings, ready.set_result))
    try:
        base = await asyncio.wait_for(ready, GUARD)
        signature = compute_signature(TOKEN, f"{PUBLIC}/twiml", FORM)
        async with aiohttp.ClientSession() as session:
            response = await session.post(
                f"{base}/twiml", data=FORM, headers={"X-Twilio-Signature": signature}
            )
            body = await response.text()
        assert f'<Parameter name="{CALL_TOKEN_PARAMETER}" value="v1.' in body
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


async def only_our_account_is_bridged(url: str, fake: FakeRealtimeServer, ours: str) -> None:
    """A stream of another account is ended at 'start', before any model session; ours is
    answered."""
    sessions = len(fake.sessions)
    async with SimulatedCaller(url, TwilioDialect(), speed=4.0) as stranger:
        await stranger.wait_closed(timeout=GUARD)  # the bridge ended the call at 'start'
    assert len(fake.sessions) == sessions  # no model session was opened for it
    async with SimulatedCaller(url, TwilioDialect(account_sid=ours), speed=4.0) as ok:
        await ok.say(speech_like(500, MULAW_8K))
        await ok.wait_for(lambda: len(ok.heard) > 0, timeout=GUARD)
        await ok.hang_up()


def test_an_account_check_is_for_twilio_streams() -> None:
    with pytest.raises(ConfigError) as info:
        create_app(
            realtime_url="ws://127.0.0.1:1/v1/realtime",
            insecure_skip_signature=True,
            telephony="acme",
            twilio_account_sid="AC" + "3" * 32,
        )
    assert info.value.field == "twilio_account_sid"


async def test_a_signed_simulated_call_runs(fake: FakeRealtimeServer) -> None:
    async with served(**signed_options(fake)) as srv:
        dialect = TwilioDialect(
            auth_token=TOKEN, signed_url="wss://bridge.example.com/media-stream"
        )
        async with SimulatedCaller(srv.ws_url, dialect, speed=4.0) as caller:
            await caller.say(speech_like(500, MULAW_8K))
            await caller.wait_for(lambda: len(caller.heard) > 0, timeout=GUARD)
            async with aiohttp.ClientSession() as session:
                health = await (await session.get(f"{srv.base}/healthz")).json()
            assert health["active_calls"] == 1
            assert health["status"] == "ok"
            await caller.hang_up()
        await srv.server.wait_for_calls(0, timeout=GUARD)


async def signed_twiml_parameters(srv: Served, form: Mapping[str, str]) -> dict[str, str]:
    """POST a signed webhook with ``form``; the ``<Parameter>``s of the TwiML it answers."""
    signature = compute_signature(TOKEN, f"{PUBLIC}/twiml", form)
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{srv.base}/twiml", data=form, headers={"X-Twilio-Signature": signature}
        )
        assert response.status == 200, await response.text()
        stream = ET.fromstring(await response.text()).find("./Connect/Stream")
    assert stream is not None
    return {str(p.get("name")): str(p.get("value")) for p in stream.findall("Parameter")}


async def test_a_call_token_binds_the_stream_to_the_signed_webhook(
    fake: FakeRealtimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    started: list[Mapping[str, str]] = []

    def on_call(bridge: Any) -> None:
        bridge.on("call_start", lambda event: started.append(event.custom_parameters))

    options = signed_options(
        fake,
        require_call_token=True,
        stream_parameters={"tenant": "acme"},
        webhook_parameters=("From", "To", "CallerName"),
        on_call=on_call,
    )
    async with served(**options) as srv:
        parameters = await signed_twiml_parameters(srv, FORM)
        assert set(parameters) == {"tenant", "From", "To", CALL_TOKEN_PARAMETER}
        signed_url = "wss://bridge.example.com/media-stream"

        def dialect(call_sid: str, custom: Mapping[str, str]) -> TwilioDialect:
            return TwilioDialect(
                auth_token=TOKEN, signed_url=signed_url, call_sid=call_sid, custom_parameters=custom
            )

        # A replayed upgrade (its signature is valid for every call) with made-up parameters,
        # with the token of the real call but another caller number, or with no token at all.
        forged = {**parameters, "From": "+15559999999"}
        no_token = {"tenant": "acme", "From": "+15559999999"}
        for call_sid, custom in ((FORM["CallSid"], forged), (FORM["CallSid"], no_token)):
            async with SimulatedCaller(srv.ws_url, dialect(call_sid, custom), speed=4.0) as bad:
                await bad.wait_closed(timeout=GUARD)  # ended at 'start'
        await srv.server.wait_for_calls(0, timeout=GUARD)
        assert started == []
        assert fake.sessions == ()  # the refused streams opened no model session
        # Twilio's own stream, with what the webhook put in the TwiML.
        genuine = dialect(FORM["CallSid"], parameters)
        async with SimulatedCaller(srv.ws_url, genuine, speed=4.0) as caller:
            await caller.say(speech_like(500, MULAW_8K))
            await caller.wait_for(lambda: len(caller.heard) > 0, timeout=GUARD)
            await caller.hang_up()
        await srv.server.wait_for_calls(0, timeout=GUARD)
    assert started == [{"tenant": "acme", "From": FORM["From"], "To": FORM["To"]}]
    assert caplog.text.count("without a valid call token refused") >= 2
    assert TOKEN not in caplog.text
    assert parameters[CALL_TOKEN_PARAMETER] not in caplog.text  # nor the token itself
    # A call ended while its model was still connecting is not an internal error.
    assert "the connection task failed" not in caplog.text


async def test_webhook_fields_reach_the_twiml_without_signature_checks(
    fake: FakeRealtimeServer,
) -> None:
    options = {"webhook_parameters": ["From"], "stream_parameters": {"From": "overridden"}}
    async with (
        served(realtime_url=fake.url, insecure_skip_signature=True, **options) as srv,
        aiohttp.ClientSession() as session,
    ):
        response = await session.post(f"{srv.base}/twiml", data=FORM)
        stream = ET.fromstring(await response.text()).find("./Connect/Stream")
        assert stream is not None
        assert [(p.get("name"), p.get("value")) for p in stream.findall("Parameter")] == [
            ("From", FORM["From"])
        ]
        # A field TwiML cannot carry is refused, not passed on or crashed on.
        bad = await session.post(f"{srv.base}/twiml", data={**FORM, "From": "+1\x00"})
        assert bad.status == 400
        assert "cannot be put in TwiML" in await bad.text()


async def test_a_call_token_needs_the_call_sid(fake: FakeRealtimeServer) -> None:
    async with served(**signed_options(fake, require_call_token=True)) as srv:
        form = {"From": FORM["From"]}
        signature = compute_signature(TOKEN, f"{PUBLIC}/twiml", form)
        async with aiohttp.ClientSession() as session:
            response = await session.post(
                f"{srv.base}/twiml", data=form, headers={"X-Twilio-Signature": signature}
            )
            assert response.status == 400
            assert await response.text() == "CallSid missing from the webhook\n"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"require_call_token": True, "insecure_skip_signature": True}, "require_call_token"),
        ({"require_call_token": True, "twilio_auth_token": None}, "twilio_auth_token"),
        ({"webhook_parameters": "From"}, "webhook_parameters"),
        ({"webhook_parameters": ["From", ""]}, "webhook_parameters"),
        ({"webhook_parameters": [CALL_TOKEN_PARAMETER]}, "webhook_parameters"),
        ({"stream_parameters": {CALL_TOKEN_PARAMETER: "x"}}, "stream_parameters"),
    ],
)
def test_call_token_and_webhook_parameter_options_are_checked(
    options: dict[str, Any], field: str
) -> None:
    base = {
        "realtime_url": "ws://127.0.0.1:1/v1/realtime",
        "twilio_auth_token": TOKEN,
        "public_url": PUBLIC,
    }
    with pytest.raises(ConfigError) as caught:
        create_app(**{**base, **options})
    assert caught.value.field == field
    assert TOKEN not in str(caught.value)


async def test_healthz(fake: FakeRealtimeServer) -> None:
    async with served(**signed_options(fake)) as srv, aiohttp.ClientSession() as session:
        response = await session.get(f"{srv.base}/healthz")
        body = await response.json()
    assert response.status == 200
    assert body == {
        "status": "ok",
        "active_calls": 0,
        "max_calls": None,
        "calls_started": 0,
        "calls_rejected": 0,
        "telephony": "twilio",
        "model_transport": "openai_ws",
    }


async def test_the_call_ends_after_the_caller_heard_the_goodbye(fake: FakeRealtimeServer) -> None:
    async with served(realtime_url=fake.url, insecure_skip_signature=True) as srv:
        async with SimulatedCaller(srv.ws_url, TwilioDialect(), speed=2.0) as caller:
            await caller.say(speech_like(600, MULAW_8K, seed="goodbye"))
            await fake.wait_for_server_event("response.done", timeout=GUARD)
            (bridge,) = srv.server.bridges
            # The model has said everything; the caller, at real time, has not heard it all yet.
            assert await bridge.close_after_playback(timeout=GUARD) is True
            await caller.wait_closed(timeout=GUARD)
        answer = fake.session(0).audio_sent()
        assert caller.heard == answer  # every byte, then the hang-up
        assert caller.close_code == 1000
        assert caller.violations == ()
        await srv.server.wait_for_calls(0, timeout=GUARD)


# ---------------------------------------------------------------------------------------------
# limits
# ---------------------------------------------------------------------------------------------


async def test_frame_size_limit_closes_with_1009(fake: FakeRealtimeServer) -> None:
    async with served(realtime_url=fake.url, insecure_skip_signature=True) as srv:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(srv.ws_url)
            for frame in TwilioDialect().opening():
                await ws.send_str(frame)
            await ws.send_str("x" * (100 * 1024))  # the default limit is 64 KiB
            msg = await asyncio.wait_for(ws.receive(), GUARD)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 1009
        await srv.server.wait_for_calls(0, timeout=GUARD)


async def test_message_rate_limit_closes_with_1008(fake: FakeRealtimeServer) -> None:
    async with served(
        realtime_url=fake.url,
        insecure_skip_signature=True,
        max_messages_per_second=0.01,
        message_burst=10,
    ) as srv:
        dialect = TwilioDialect()
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(srv.ws_url)
            for frame in dialect.opening():
                await ws.send_str(frame)
            for index in range(20):
                with contextlib.suppress(ConnectionResetError):
                    await ws.send_str(dialect.media(b"\xff" * 160, index * 20))
            msg = await asyncio.wait_for(ws.receive(), GUARD)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 1008
        await srv.server.wait_for_calls(0, timeout=GUARD)


async def test_max_calls(fake: FakeRealtimeServer) -> None:
    async with served(realtime_url=fake.url, insecure_skip_signature=True, max_calls=1) as srv:
        async with SimulatedCaller(srv.ws_url, TwilioDialect(), speed=4.0):
            await srv.server.wait_for_calls(1, timeout=GUARD)
            assert await upgrade_status(srv, {}) == 503
            async with aiohttp.ClientSession() as session:
                health = await (await session.get(f"{srv.base}/healthz")).json()
            assert (health["status"], health["active_calls"], health["max_calls"]) == ("ok", 1, 1)
            assert health["calls_rejected"] == 1
        await srv.server.wait_for_calls(0, timeout=GUARD)


# ---------------------------------------------------------------------------------------------
# isolation and shutdown
# ---------------------------------------------------------------------------------------------


async def test_one_failing_call_does_not_touch_another(
    fake: FakeRealtimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    from voicewire_openai_ws import OpenAIRealtimeWebSocket

    built: list[int] = []

    def model_factory() -> Any:
        built.append(1)
        if len(built) == 1:
            raise RuntimeError("model factory exploded for the first call")
        return OpenAIRealtimeWebSocket()

    async with served(
        realtime_url=fake.url,
        insecure_skip_signature=True,
        model_transport=model_factory,
    ) as srv:
        async with (
            SimulatedCaller(srv.ws_url, TwilioDialect(), speed=4.0) as broken,
        ):
            await broken.wait_closed(timeout=GUARD)
            assert broken.close_code == 1011
        async with SimulatedCaller(srv.ws_url, TwilioDialect(), speed=4.0) as good:
            await good.say(speech_like(500, MULAW_8K))
            await good.wait_for(lambda: len(good.heard) > 0, timeout=GUARD)
            assert not good.closed
    assert "call 1 failed: RuntimeError" in caplog.text


async def test_shutdown_lets_calls_finish_then_closes_them(fake: FakeRealtimeServer) -> None:
    async with served(
        realtime_url=fake.url, insecure_skip_signature=True, shutdown_timeout=0.2
    ) as srv:
        caller = SimulatedCaller(srv.ws_url, TwilioDialect(), speed=4.0)
        await caller.start()
        try:
            await srv.server.wait_for_calls(1, timeout=GUARD)
            # The call does not end by itself: shutdown waits 0.2 s, then closes it.
            await asyncio.wait_for(srv.runner.cleanup(), GUARD)
            assert srv.server.draining
            await caller.wait_closed(timeout=GUARD)
            assert srv.server.active_calls == 0
        finally:
            await caller.close()
        await fake.wait_closed(0, timeout=GUARD)


async def test_drain_waits_for_a_call_that_ends(fake: FakeRealtimeServer) -> None:
    async with served(
        realtime_url=fake.url, insecure_skip_signature=True, shutdown_timeout=GUARD
    ) as srv:
        caller = SimulatedCaller(srv.ws_url, TwilioDialect(), speed=4.0)
        await caller.start()
        try:
            await srv.server.wait_for_calls(1, timeout=GUARD)
            for site in list(srv.runner.sites):
                await site.stop()  # no new connections; established calls are still read
            drain = asyncio.ensure_future(srv.server.drain())
            await asyncio.sleep(0)
            assert srv.server.draining
            assert not drain.done()
            await caller.hang_up()  # Twilio's 'stop' arrives and ends the call
            assert await asyncio.wait_for(drain, GUARD) == 0
        finally:
            await caller.close()
        assert srv.server.active_calls == 0
        assert caller.close_code == 1000


async def test_draining_server_refuses_new_calls(fake: FakeRealtimeServer) -> None:
    async with served(realtime_url=fake.url, insecure_skip_signature=True) as srv:
        assert await srv.server.drain() == 0
        assert await upgrade_status(srv, {}) == 503
        async with aiohttp.ClientSession() as session:
            assert (await session.post(f"{srv.base}/twiml", data=FORM)).status == 503
            health = await (await session.get(f"{srv.base}/healthz")).json()
        assert health["status"] == "draining"
        assert health["calls_rejected"] == 1
