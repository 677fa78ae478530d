"""``X-Twilio-Signature`` cannot be bypassed on the real bridge server.

``tests/twilio`` checks the happy paths, header-name casing and wrong tokens. Here an attacker
who has captured one genuine signature (for the webhook with its parameters, or for the stream
upgrade) tries to make it, or no signature at all, pass somewhere else: repeated headers, empty
or look-alike headers, the signature in the query or the body, another scheme, port, host case,
trailing slash, query order, extra, repeated or renamed form parameters, a spoofed ``Host`` or
``X-Forwarded-*``. Every such request is refused with 403 (or never reaches a handler), and no
call is started; the documented equivalences (an explicit default port; a query string on the
upgrade, which Twilio does not sign) are accepted.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from multidict import CIMultiDict

from voicewire_twilio.protocol import compute_signature

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from tests.hardening.conftest import Kit, TwilioServerEnv

    EnvFactory = Callable[..., AbstractAsyncContextManager[TwilioServerEnv]]

pytestmark = pytest.mark.usefixtures("no_task_leaks")

TOKEN = "sig-hardening-token-77aa"
PUBLIC = "https://bridge.example.com"
WEBHOOK = f"{PUBLIC}/twiml"
STREAM = "wss://bridge.example.com/media-stream"
FORM = {"CallSid": "CA" + "1" * 32, "From": "+15550001111", "To": "+15550002222"}
GOOD_WEBHOOK = compute_signature(TOKEN, WEBHOOK, FORM)
GOOD_STREAM = compute_signature(TOKEN, STREAM)


@pytest.fixture
async def env(twilio_env: EnvFactory) -> AsyncIterator[TwilioServerEnv]:
    async with twilio_env(
        twilio_auth_token=TOKEN, insecure_skip_signature=False, public_url=PUBLIC
    ) as served:
        yield served


async def post(
    env: TwilioServerEnv,
    *,
    headers: Sequence[tuple[str, str]] = (),
    form: Mapping[str, str] | Sequence[tuple[str, str]] = FORM,
    path: str = "/twiml",
) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(env.base + path, data=form, headers=CIMultiDict(headers)) as response,
    ):
        await response.read()
        return response.status


async def upgrade(
    env: TwilioServerEnv, *, headers: Sequence[tuple[str, str]] = (), path: str = "/media-stream"
) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(
                env.base.replace("http", "ws", 1) + path, headers=CIMultiDict(headers)
            )
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


def sig(value: str) -> tuple[str, str]:
    return ("X-Twilio-Signature", value)


# --- the webhook -------------------------------------------------------------------------------


async def test_webhook_baseline(env: TwilioServerEnv) -> None:
    assert await post(env, headers=[sig(GOOD_WEBHOOK)]) == 200
    # Port variants are documented equivalences (Twilio is inconsistent about them).
    with_port = compute_signature(TOKEN, "https://bridge.example.com:443/twiml", FORM)
    assert await post(env, headers=[sig(with_port)]) == 200


WEBHOOK_ATTACKS: dict[str, dict[str, Any]] = {
    "no header": {},
    "empty header": {"headers": [sig("")]},
    "whitespace header": {"headers": [sig("   ")]},
    "look-alike header name": {"headers": [("X-Twilio-Signature-2", GOOD_WEBHOOK)]},
    "plural header name": {"headers": [("X-Twilio-Signatures", GOOD_WEBHOOK)]},
    "signature in the query": {"path": f"/twiml?X-Twilio-Signature={GOOD_WEBHOOK}"},
    "signature as a form field": {"form": {**FORM, "X-Twilio-Signature": GOOD_WEBHOOK}},
    "repeated, forged first": {"headers": [sig("Zm9yZ2Vk"), sig(compute_signature("x", WEBHOOK))]},
    "signed over http": {
        "headers": [sig(compute_signature(TOKEN, WEBHOOK.replace("https", "http"), FORM))]
    },
    "signed over another port": {
        "headers": [sig(compute_signature(TOKEN, "https://bridge.example.com:8443/twiml", FORM))]
    },
    "signed over another host case": {
        "headers": [sig(compute_signature(TOKEN, "https://BRIDGE.example.com/twiml", FORM))]
    },
    "signed with a trailing slash": {
        "headers": [sig(compute_signature(TOKEN, WEBHOOK + "/", FORM))]
    },
    "trailing slash on the request": {"headers": [sig(GOOD_WEBHOOK)], "path": "/twiml/"},
    "extra form parameter": {"headers": [sig(GOOD_WEBHOOK)], "form": {**FORM, "Digits": "1"}},
    "changed form value": {"headers": [sig(GOOD_WEBHOOK)], "form": {**FORM, "To": "+15559999999"}},
    "renamed form parameter": {
        "headers": [sig(GOOD_WEBHOOK)],
        "form": {("callsid" if k == "CallSid" else k): v for k, v in FORM.items()},
    },
    "repeated form parameter": {
        "headers": [sig(GOOD_WEBHOOK)],
        "form": [*FORM.items(), ("CallSid", "CA" + "2" * 32)],
    },
    "missing form parameter": {
        "headers": [sig(GOOD_WEBHOOK)],
        "form": {k: v for k, v in FORM.items() if k != "From"},
    },
    "query added to a signed url": {"headers": [sig(GOOD_WEBHOOK)], "path": "/twiml?x=1"},
    "spoofed host": {
        "headers": [
            sig(compute_signature(TOKEN, "https://evil.example.com/twiml", FORM)),
            ("Host", "evil.example.com"),
        ]
    },
    "spoofed forwarded headers": {
        "headers": [
            sig(compute_signature(TOKEN, "https://evil.example.com/twiml", FORM)),
            ("X-Forwarded-Host", "evil.example.com"),
            ("X-Forwarded-Proto", "https"),
        ]
    },
}


@pytest.mark.parametrize("attack", sorted(WEBHOOK_ATTACKS))
async def test_webhook_attacks_are_refused(env: TwilioServerEnv, attack: str) -> None:
    status = await post(env, **WEBHOOK_ATTACKS[attack])
    assert status in (403, 404, 405), status


async def test_query_order_is_part_of_the_signature(env: TwilioServerEnv) -> None:
    signed = compute_signature(TOKEN, f"{WEBHOOK}?a=1&b=2", FORM)
    assert await post(env, headers=[sig(signed)], path="/twiml?a=1&b=2") == 200
    assert await post(env, headers=[sig(signed)], path="/twiml?b=2&a=1") == 403
    assert await post(env, headers=[sig(signed)], path="/twiml?a=1&b=2&a=1") == 403


# --- the media-stream upgrade ------------------------------------------------------------------


async def test_upgrade_baseline(env: TwilioServerEnv, kit: type[Kit]) -> None:
    assert await upgrade(env, headers=[sig(GOOD_STREAM)]) == 101
    port = compute_signature(TOKEN, "wss://bridge.example.com:443/media-stream")
    assert await upgrade(env, headers=[sig(port)]) == 101
    # Twilio signs the stream URL without its query string, so a query changes nothing.
    assert await upgrade(env, headers=[sig(GOOD_STREAM)], path="/media-stream?x=1") == 101
    await env.server.wait_for_calls(0, timeout=kit.GUARD)
    assert env.server.calls_started == 3


UPGRADE_ATTACKS: dict[str, dict[str, Any]] = {
    "no header": {},
    "empty header": {"headers": [sig("")]},
    "webhook signature replayed": {"headers": [sig(GOOD_WEBHOOK)]},
    "look-alike header name": {"headers": [("X-Twilio-Signature-2", GOOD_STREAM)]},
    "signature in the query": {"path": f"/media-stream?X-Twilio-Signature={GOOD_STREAM}"},
    "repeated, forged first": {"headers": [sig("Zm9yZ2Vk"), sig(GOOD_STREAM)]},
    "signed over ws": {"headers": [sig(compute_signature(TOKEN, STREAM.replace("wss", "ws")))]},
    "signed over https": {
        "headers": [sig(compute_signature(TOKEN, STREAM.replace("wss", "https")))]
    },
    "signed over another port": {
        "headers": [sig(compute_signature(TOKEN, "wss://bridge.example.com:444/media-stream"))]
    },
    "signed with a trailing slash": {"headers": [sig(compute_signature(TOKEN, STREAM + "/"))]},
    "signed over another path": {
        "headers": [sig(compute_signature(TOKEN, "wss://bridge.example.com/other"))]
    },
    "signed with a query": {"headers": [sig(compute_signature(TOKEN, STREAM + "?x=1"))]},
    "trailing slash on the request": {"headers": [sig(GOOD_STREAM)], "path": "/media-stream/"},
    "case of the path": {"headers": [sig(GOOD_STREAM)], "path": "/Media-Stream"},
    "spoofed host": {
        "headers": [
            sig(compute_signature(TOKEN, "wss://evil.example.com/media-stream")),
            ("Host", "evil.example.com"),
        ]
    },
}


@pytest.mark.parametrize("attack", sorted(UPGRADE_ATTACKS))
async def test_upgrade_attacks_are_refused(
    env: TwilioServerEnv, kit: type[Kit], attack: str
) -> None:
    status = await upgrade(env, **UPGRADE_ATTACKS[attack])
    assert status in (403, 404), status
    with contextlib.suppress(Exception):
        await env.server.wait_for_calls(0, timeout=kit.GUARD)
    assert env.server.calls_started == 0
    assert (await env.healthz())["active_calls"] == 0
