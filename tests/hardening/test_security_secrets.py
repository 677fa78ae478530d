"""Secrets never leak: not into logs, exceptions, events, spans or reprs, across calls with errors.

A distinctive model API key and a distinctive Twilio auth token are configured on the real
bridge server (signatures on). Then, with every logger at DEBUG (``websockets`` and ``aiohttp``
included, which log handshake headers there) and the tracing plugin recording spans with content
capture on:

* a forged upgrade and a forged webhook are refused;
* a signed call goes through garbage from the model, a model drop and a reconnect (the key is
  sent again), a barge-in, bad frames from the caller, and a hang-up;
* a second call's model connection is refused (an exception with an HTTP status behind it).

Neither secret may appear in the captured log records (messages, arguments, formatted
tracebacks), in any event the bridges emitted, in the exceptions they carry (with their causes
and contexts), in any span name, attribute or event, in the reprs of the server, bridges, edges
and transports, or in ``/healthz``. Under tox the log is also kept in
``$VOICEWIRE_TEST_SECRETS_LOG`` for review.
"""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from voicewire.audio.formats import MULAW_8K
from voicewire.plugins import PluginLoadWarning, get_plugin_manager
from voicewire.testing import CloseMidResponse, RefuseConnection, SendGarbage, speech_like
from voicewire.testing.telephony import SimulatedCaller
from voicewire.tracing import TracingPlugin
from voicewire_twilio.caller import TwilioDialect
from voicewire_twilio.protocol import compute_signature

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from tests.hardening.conftest import Kit, TwilioServerEnv

    EnvFactory = Callable[..., AbstractAsyncContextManager[TwilioServerEnv]]

pytestmark = pytest.mark.usefixtures("no_task_leaks")

API_KEY = "sk-proj-HARDEN-secret-4c3b2a1f0e9d"
AUTH_TOKEN = "twilio-HARDEN-token-8e7d6c5b4a39"
PUBLIC = "https://bridge.hardening.example"
LOGGERS = ("", "websockets", "websockets.client", "aiohttp", "aiohttp.access", "voicewire")
PLUGIN_ID = "hardening_secrets_tracer"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        manager = get_plugin_manager()
    manager.register(TracingPlugin(tracer_provider=provider, capture_content=True), name=PLUGIN_ID)
    try:
        yield exporter
    finally:
        manager.unregister(name=PLUGIN_ID)
        provider.shutdown()


@pytest.fixture
def debug_everything() -> Iterator[None]:
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _exception_texts(error: BaseException | None) -> list[str]:
    texts: list[str] = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        texts += [repr(error), str(error), "".join(traceback.format_exception(error))]
        error = error.__cause__ or error.__context__
    return texts


def _keep_for_review(captured: str) -> None:
    target = os.environ.get("VOICEWIRE_TEST_SECRETS_LOG")
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(f"--- {__name__}\n{captured}\n")


async def test_secrets_never_leak_across_calls_with_errors(
    twilio_env: EnvFactory,
    kit: type[Kit],
    spans: InMemorySpanExporter,
    debug_everything: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    faults = [
        SendGarbage(after_events=3, sessions={0}),
        CloseMidResponse(after_audio_deltas=3, sessions={0}),  # session 1 is the reconnect
        RefuseConnection(status=503, sessions={2}),  # the second call's model connection
    ]
    events: list[Any] = []

    def on_call(bridge: Any) -> None:
        for channel in ("*", "error", "call_start", "call_stop", "mark", "audio_interrupted"):
            bridge.on(channel, events.append)

    async with twilio_env(
        fake={"api_key": API_KEY, "faults": faults, "pace": 2.0},
        api_key=API_KEY,
        twilio_auth_token=AUTH_TOKEN,
        insecure_skip_signature=False,
        public_url=PUBLIC,
        stream_parameters={"tenant": "acme"},
        model_options={"plugin_observers": True, "reconnect": kit.FAST_RECONNECT},
        bridge_options={"plugin_observers": True},
        on_call=on_call,
    ) as env:
        signed = f"{PUBLIC.replace('https', 'wss')}/media-stream"
        # Forged: a webhook and an upgrade signed with another token.
        async with aiohttp.ClientSession() as session:
            forged = compute_signature("not-the-token", f"{PUBLIC}/twiml", {"CallSid": "CA1"})
            response = await session.post(
                env.base + "/twiml", data={"CallSid": "CA1"}, headers={"X-Twilio-Signature": forged}
            )
            assert response.status == 403
        intruder = SimulatedCaller(env.ws_url, TwilioDialect(auth_token="not-the-token"))
        with pytest.raises(Exception, match="403"):
            await intruder.start()
        await intruder.close()

        dialect = TwilioDialect(auth_token=AUTH_TOKEN, signed_url=signed)
        async with SimulatedCaller(env.ws_url, dialect, speed=4.0) as caller:
            await caller.say(speech_like(600, MULAW_8K, seed="secret"))
            await env.waker.until(lambda: bool(env.errors(0, "connection_lost")), "the drop")
            await env.waker.until(
                lambda: any(n == "reconnected" for n, _ in env.events[0]), "the reconnect"
            )
            await caller.send_raw("{not json")
            await caller.send_raw(b"\x00binary")
            await caller.say(speech_like(600, MULAW_8K, seed="again"))
            await caller.wait_for(lambda: len(caller.heard) > 0, timeout=kit.GUARD)
            await caller.say(speech_like(400, MULAW_8K, seed="barge"))
            await caller.hang_up()
        refused = SimulatedCaller(
            env.ws_url, TwilioDialect(auth_token=AUTH_TOKEN, signed_url=signed), speed=4.0
        )
        async with refused:
            await refused.wait_closed(timeout=kit.GUARD)
        await env.server.wait_for_calls(0, timeout=kit.GUARD)
        assert env.errors(1, "model_connect_failed")
        health = str(await env.healthz())
        reprs = [repr(env.server), repr(caller), repr(dialect)]
        for bridge in env.bridges:
            reprs += [repr(bridge), repr(bridge.edge), repr(bridge.model), repr(bridge.stats)]
        assert env.fake.session(0).auth == "matched"

    await asyncio.sleep(0)
    records = caplog.records
    captured = "\n".join(
        [caplog.text]
        + [record.getMessage() for record in records]
        + [str(record.args) for record in records]
        + [
            "".join(traceback.format_exception(*record.exc_info))
            for record in records
            if record.exc_info
        ]
    )
    _keep_for_review(captured)
    # The logs were really verbose: the model handshake and its headers were logged.
    assert any(r.name.startswith("websockets") for r in records)
    assert "rejected /media-stream" in captured

    texts = [captured, health, *reprs]
    for event in events:
        texts += [repr(event), str(event)]
        texts += _exception_texts(getattr(event, "error", None))
    finished = spans.get_finished_spans()
    assert finished, "the tracing plugin recorded nothing"
    for span in finished:
        texts.append(span.name)
        texts += [f"{k}={v!r}" for k, v in (span.attributes or {}).items()]
        for span_event in span.events:
            texts.append(span_event.name)
            texts += [f"{k}={v!r}" for k, v in (span_event.attributes or {}).items()]
        texts.append(str(span.status.description))
    for text in texts:
        assert API_KEY not in text
        assert AUTH_TOKEN not in text
