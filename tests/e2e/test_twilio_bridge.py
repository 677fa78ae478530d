"""End to end over loopback: simulated Twilio caller -> aiohttp bridge server -> fake model.

Everything is real: the bridge server of ``voicewire serve`` (``create_app``), the ``openai_ws``
transport over ``websockets``, ``FakeRealtimeServer`` and the simulated caller with the strict
Twilio dialect. Tests wait on events; timeouts are hang guards, never timing assertions.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from voicewire.audio.formats import MULAW_8K, PCM16_24K
from voicewire.audio.g711 import mulaw_decode
from voicewire.bridge.call import CallBridge
from voicewire.testing.fake_realtime import (
    CloseMidResponse,
    FakeRealtimeServer,
    Script,
    SessionRecord,
    speech_like,
)
from voicewire.testing.telephony import SimulatedCaller
from voicewire_twilio.caller import TwilioDialect
from voicewire_twilio.server import APP_KEY, BridgeServer, create_app

GUARD = 20.0


CHANNELS = (
    "error",
    "dtmf",
    "call_start",
    "call_stop",
    "audio_interrupted",
    "mark",
    "turn_started",
    "turn_done",
    "speech_started",
)

pytestmark = pytest.mark.usefixtures("no_task_leaks")


class CallLog:
    def __init__(self, bridge: CallBridge, changed: asyncio.Event) -> None:
        self.bridge = bridge
        self.events: list[Any] = []
        self._changed = changed
        for channel in CHANNELS:
            bridge.on(channel, self._record)

    def _record(self, event: Any) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if getattr(e, "type", None) == kind]


class Env:
    def __init__(self, fake: FakeRealtimeServer, app: web.Application, url: str) -> None:
        self.fake = fake
        self.app = app
        self.url = url
        self.calls: list[CallLog] = []
        self.changed = asyncio.Event()

    @property
    def server(self) -> BridgeServer:
        return self.app[APP_KEY]

    def on_call(self, bridge: CallBridge) -> None:
        self.calls.append(CallLog(bridge, self.changed))
        self.changed.set()

    async def wait(self, predicate: Any, what: str) -> None:
        # Every bridge event wakes the predicate up (marks included, for playback state).
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(loop(), GUARD)
        except asyncio.TimeoutError:
            raise AssertionError(f"{what} not reached") from None


@contextlib.asynccontextmanager
async def bridge_env(
    *, fake: Mapping[str, Any] | None = None, app: Mapping[str, Any] | None = None
) -> AsyncIterator[Env]:
    options = {"pace": 0.0, **(fake or {})}
    async with FakeRealtimeServer(**options) as fake_server:
        env_holder: list[Env] = []
        app_options: dict[str, Any] = {
            "realtime_url": fake_server.url,
            "api_key": "sk-test",
            "model": "gpt-realtime",
            "insecure_skip_signature": True,
            "on_call": lambda bridge: env_holder[0].on_call(bridge),
            **(app or {}),
        }
        application = create_app(**app_options)
        runner = web.AppRunner(application, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            env = Env(fake_server, application, f"ws://{host}:{port}/media-stream")
            env_holder.append(env)
            yield env
        finally:
            await runner.cleanup()


def deltas(record: SessionRecord) -> bytes:
    return b"".join(
        base64.b64decode(e["delta"]) for e in record.server_events_of("response.output_audio.delta")
    )


def appended(record: SessionRecord) -> bytes:
    return b"".join(
        base64.b64decode(e["audio"]) for e in record.client_events_of("input_audio_buffer.append")
    )


def _heard_something(caller: SimulatedCaller) -> Callable[[], bool]:
    return lambda: len(caller.heard) > 0


def long_reply(ms: int = 4000) -> Script:
    return Script.from_obj(
        {
            "turns": [{"reply": [{"say": "A long answer to talk over.", "ms": ms}]}],
            "fallback": [{"say": "Yes?", "ms": 300}],
        }
    )


# ---------------------------------------------------------------------------------------------


async def test_full_turn_is_byte_exact_both_ways() -> None:
    async with bridge_env() as env:
        async with SimulatedCaller(env.url, TwilioDialect(), speed=4.0) as caller:
            speech = speech_like(800, MULAW_8K, seed="turn")
            await caller.say(speech)
            record = await env.fake.wait_for_server_event("response.done", session=0)
            reply = deltas(env.fake.session(0))
            assert reply
            await caller.wait_heard(len(reply), timeout=GUARD)
            await caller.wait_idle(timeout=GUARD)
            # Model -> caller: every byte, in order, nothing more.
            assert caller.received == reply
            assert caller.heard == reply
            # Caller -> model: what the model got is exactly what the caller sent, in order.
            sent_to_model = appended(env.fake.session(0))
            assert sent_to_model
            assert caller.sent.startswith(sent_to_model)
            assert speech in caller.sent
            # Pass-through: the session was forced to mu-law both ways.
            session = env.fake.session(0).session
            assert session is not None
            assert session["audio"]["input"]["format"]["type"] == "audio/pcmu"
            assert session["audio"]["output"]["format"]["type"] == "audio/pcmu"
            counts = caller.counts
            assert counts["clears"] == 0
            assert counts["marks_played"] == counts["marks_received"] > 0
            del record
        assert caller.violations == ()
        await env.server.wait_for_calls(0, timeout=GUARD)
        await env.fake.wait_closed(0, timeout=GUARD)
        bridge = env.calls[0].bridge
        stats = bridge.stats
        assert stats.model_unaccounted_bytes == 0
        assert stats.caller_unaccounted_bytes == 0
        assert stats.model_bytes_played == len(reply)


async def _barge_in(env: Env, caller: SimulatedCaller, *, after_ms: float) -> None:
    await caller.say(speech_like(600, MULAW_8K, seed="question"))
    await caller.wait_heard(MULAW_8K.nbytes_for_ms(after_ms), timeout=GUARD)
    await caller.say(speech_like(500, MULAW_8K, seed="barge-in"))


def _heard_at_clear(caller: SimulatedCaller) -> float:
    stops = [e for e in caller.entries("playback_stopped") if e.detail.get("cleared")]
    assert stops, caller.timeline
    heard = stops[0].detail["heard"]
    assert isinstance(heard, int)
    return MULAW_8K.duration_ms(heard)


async def test_barge_in_mid_playback_clears_and_truncates_at_what_was_heard() -> None:
    async with bridge_env(fake={"mode": "script", "script": long_reply(), "pace": 1.0}) as env:
        async with SimulatedCaller(env.url, TwilioDialect(), speed=1.0) as caller:
            await _barge_in(env, caller, after_ms=800)
            await caller.wait_entry("clear_received", timeout=GUARD)
            await env.fake.wait_for(lambda: bool(env.fake.session(0).truncations), timeout=GUARD)
            (truncation,) = env.fake.session(0).truncations
            assert truncation.accepted
            heard = _heard_at_clear(caller)
            assert abs(truncation.audio_end_ms - heard) <= 50, (truncation, heard)
            # The model was still sending: its response was cut short (the server cancelled it).
            assert truncation.audio_sent_ms is not None
            assert truncation.audio_sent_ms < 4000
            await env.wait(lambda: bool(env.calls[0].of("audio_interrupted")), "interrupted")
        assert caller.violations == ()


async def test_barge_in_after_the_model_finished_sending() -> None:
    async with bridge_env(fake={"mode": "script", "script": long_reply(), "pace": 0.0}) as env:
        async with SimulatedCaller(env.url, TwilioDialect(), speed=1.0) as caller:
            await caller.say(speech_like(600, MULAW_8K, seed="question"))
            await env.fake.wait_for_server_event("response.done", session=0, timeout=GUARD)
            await caller.wait_heard(MULAW_8K.nbytes_for_ms(800), timeout=GUARD)
            # The whole answer is at the caller's side; only a fraction was played.
            assert caller.queued_ms > 2000
            await caller.say(speech_like(500, MULAW_8K, seed="barge-in"))
            await caller.wait_entry("clear_received", timeout=GUARD)
            await env.fake.wait_for(lambda: bool(env.fake.session(0).truncations), timeout=GUARD)
            (truncation,) = env.fake.session(0).truncations
            assert truncation.accepted
            assert truncation.audio_sent_ms == 4000
            heard = _heard_at_clear(caller)
            assert abs(truncation.audio_end_ms - heard) <= 50, (truncation, heard)
            # The rest of the answer was dropped at the caller's side, never heard.
            assert caller.counts["audio_bytes_cleared"] > MULAW_8K.nbytes_for_ms(1000)
        assert caller.violations == ()


async def test_without_automatic_barge_in_the_answer_is_heard_whole() -> None:
    async with bridge_env(
        fake={"mode": "script", "script": long_reply(2000), "pace": 0.0},
        app={"bridge_options": {"automatic_barge_in": False}},
    ) as env:
        async with SimulatedCaller(env.url, TwilioDialect(), speed=4.0) as caller:
            await caller.say(speech_like(600, MULAW_8K, seed="question"))
            await env.fake.wait_for_server_event("response.done", session=0, timeout=GUARD)
            answer = deltas(env.fake.session(0))
            await caller.wait_heard(MULAW_8K.nbytes_for_ms(500), timeout=GUARD)
            await caller.say(speech_like(500, MULAW_8K, seed="talking-over"))
            await env.fake.wait_for_server_event("input_audio_buffer.speech_started", count=2)
            await caller.wait_heard(len(answer), timeout=GUARD)
            assert caller.heard[: len(answer)] == answer
            assert caller.counts["clears"] == 0
            assert env.fake.session(0).truncations == ()
            assert env.calls[0].of("audio_interrupted") == []
        assert caller.violations == ()


async def test_no_spurious_interrupt_when_nothing_is_playing() -> None:
    script = Script.from_obj(
        {
            "turns": [{"reply": [{"say": "Short.", "ms": 400}]}],
            "fallback": [{"say": "Again.", "ms": 300}],
        }
    )
    async with bridge_env(fake={"mode": "script", "script": script}) as env:
        async with SimulatedCaller(env.url, TwilioDialect(), speed=2.0) as caller:
            await caller.say(speech_like(500, MULAW_8K, seed="one"))
            await env.fake.wait_for_server_event("response.done", session=0, timeout=GUARD)
            reply = deltas(env.fake.session(0))
            await caller.wait_heard(len(reply), timeout=GUARD)
            await caller.wait_idle(timeout=GUARD)
            await env.wait(
                lambda: env.calls[0].bridge.protocol.playback.items() == (), "fully heard"
            )
            await caller.say(speech_like(500, MULAW_8K, seed="two"))
            await env.fake.wait_for_server_event("response.done", session=0, count=2, timeout=GUARD)
            assert (
                len(env.fake.session(0).server_events_of("input_audio_buffer.speech_started")) == 2
            )
        assert caller.counts["clears"] == 0
        assert env.fake.session(0).truncations == ()
        assert "response.cancel" not in env.fake.session(0).client_types()
        assert env.calls[0].of("audio_interrupted") == []


async def test_dtmf_reaches_the_application() -> None:
    async with bridge_env() as env:
        async with SimulatedCaller(env.url, TwilioDialect(), speed=4.0) as caller:
            await env.wait(lambda: bool(env.calls and env.calls[0].of("call_start")), "start")
            await caller.press("7")
            await caller.press("#")
            await env.wait(lambda: len(env.calls[0].of("dtmf")) == 2, "dtmf")
        assert [e.digit for e in env.calls[0].of("dtmf")] == ["7", "#"]


async def test_hang_up_closes_the_model_socket() -> None:
    async with bridge_env() as env:
        caller = SimulatedCaller(env.url, TwilioDialect(), speed=4.0)
        await caller.start()
        try:
            await env.fake.wait_for_session(0, timeout=GUARD)
            await caller.say(speech_like(200, MULAW_8K))
            await caller.hang_up()
        finally:
            await caller.close()
        record = await env.fake.wait_closed(0, timeout=GUARD)
        assert record.closed
        await env.server.wait_for_calls(0, timeout=GUARD)
        (stop,) = env.calls[0].of("call_stop")
        assert stop.reason == "stop"
        assert env.calls[0].bridge.status == "disconnected"


async def test_model_drop_mid_response_ends_the_call_cleanly() -> None:
    async with bridge_env(fake={"faults": [CloseMidResponse(after_audio_deltas=3)]}) as env:
        async with SimulatedCaller(env.url, TwilioDialect(), speed=4.0) as caller:
            await caller.say(speech_like(600, MULAW_8K, seed="drop"))
            await caller.wait_closed(timeout=GUARD)
        await env.server.wait_for_calls(0, timeout=GUARD)
        codes = [e.code for e in env.calls[0].of("error")]
        assert "model_disconnected" in codes
        assert caller.violations == ()
        # What arrived before the drop was played whole.
        assert len(caller.received) == 3 * MULAW_8K.nbytes_for_ms(40)


def _bad_frames(dialect: TwilioDialect) -> list[tuple[str | bytes, str]]:
    bad_base64 = json.loads(dialect.media(b"\xff" * 160, 0))
    bad_base64["media"]["payload"] = "%%%"
    other_stream = json.loads(dialect.media(b"\xff" * 160, 0))
    other_stream["streamSid"] = "MZ" + "f" * 32
    return [
        ("{malformed", "invalid_json"),
        ('{"event":"teleport","streamSid":"x"}', "unknown_event"),
        (json.dumps(bad_base64), "invalid_base64"),
        (b"\x00\x01\x02", "binary_frame"),
        (json.dumps(other_stream), "stream_sid_mismatch"),
    ]


async def test_bad_input_is_reported_and_the_call_goes_on_while_another_is_unaffected() -> None:
    async with bridge_env() as env:
        bad_dialect = TwilioDialect()
        async with (
            SimulatedCaller(env.url, bad_dialect, speed=4.0) as bad,
            SimulatedCaller(env.url, TwilioDialect(), speed=4.0) as good,
        ):
            await env.wait(lambda: len(env.calls) == 2, "two calls")
            frames = _bad_frames(bad_dialect)
            for frame, _ in frames:
                await bad.send_raw(frame)
            good_speech = speech_like(600, MULAW_8K, seed="good")
            bad_speech = speech_like(600, MULAW_8K, seed="bad")
            await asyncio.gather(good.say(good_speech), bad.say(bad_speech))
            await env.fake.wait_for_server_event("response.done", session=0, timeout=GUARD)
            await env.fake.wait_for_server_event("response.done", session=1, timeout=GUARD)
            for caller in (good, bad):
                await caller.wait_for(_heard_something(caller), timeout=GUARD)
                await caller.wait_idle(timeout=GUARD)
        bad_log = next(c for c in env.calls if c.of("error"))
        errors = [e for e in bad_log.of("error") if e.source == "telephony"]
        assert [e.code for e in errors] == [code for _, code in frames]
        good_log = next(c for c in env.calls if c is not bad_log)
        assert good_log.of("error") == []
        # Both calls completed their turn, each hearing only its own echo.
        assert good.heard
        assert good.heard in good.sent
        assert bad.heard
        assert bad.heard in bad.sent
        assert good.violations == bad.violations == ()


async def test_a_1mb_frame_ends_that_call_only() -> None:
    async with bridge_env() as env:
        async with (
            SimulatedCaller(env.url, TwilioDialect(), speed=4.0) as big,
            SimulatedCaller(env.url, TwilioDialect(), speed=4.0) as good,
        ):
            await env.wait(lambda: len(env.calls) == 2, "two calls")
            await big.send_raw('{"event":"media","x":"' + "A" * (1024 * 1024) + '"}')
            await big.wait_closed(timeout=GUARD)
            # The server closes with 1009; when the kernel resets the connection because the
            # rest of the 1 MB frame was never read, the client sees an abnormal close instead.
            assert big.close_code in (1009, 1006)
            await good.say(speech_like(600, MULAW_8K, seed="good"))
            await good.wait_for(lambda: len(good.heard) > 0, timeout=GUARD)
            await good.wait_idle(timeout=GUARD)
            assert not good.closed
        assert good.heard in good.sent
        codes = [e.code for log in env.calls for e in log.of("error")]
        assert codes.count("message_too_large") == 1


async def test_twenty_concurrent_calls_are_isolated() -> None:
    async with bridge_env() as env:
        callers = [SimulatedCaller(env.url, TwilioDialect(), speed=4.0) for _ in range(20)]
        try:
            await asyncio.gather(*(c.start() for c in callers))
            await asyncio.gather(
                *(
                    c.say(speech_like(500, MULAW_8K, seed=f"caller-{i}"))
                    for i, c in enumerate(callers)
                )
            )
            for caller in callers:
                await caller.wait_for(_heard_something(caller), timeout=GUARD)
                await caller.wait_idle(timeout=GUARD)
            assert env.server.active_calls == 20
            await asyncio.gather(*(c.hang_up() for c in callers))
        finally:
            await asyncio.gather(*(c.close() for c in callers))
        await env.server.wait_for_calls(0, timeout=GUARD)
        heard = [c.heard for c in callers]
        for index, caller in enumerate(callers):
            assert caller.violations == ()
            # Each caller heard the echo of its own words, and nobody else's.
            assert heard[index] in caller.sent
            others = [h for j, h in enumerate(heard) if j != index]
            assert heard[index] not in others
        for index in range(20):
            assert (await env.fake.wait_closed(index, timeout=GUARD)).closed


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


async def test_transcoding_round_trip() -> None:
    async with bridge_env(app={"model_audio_format": "audio/pcm"}) as env:
        async with SimulatedCaller(env.url, TwilioDialect(), speed=4.0) as caller:
            speech = speech_like(800, MULAW_8K, seed="transcode")
            await caller.say(speech)
            await env.fake.wait_for_server_event("response.done", session=0, timeout=GUARD)
            record = env.fake.session(0)
            assert record.session is not None
            assert record.session["audio"]["input"]["format"] == {
                "type": "audio/pcm",
                "rate": 24000,
            }
            assert record.session["audio"]["output"]["format"] == {
                "type": "audio/pcm",
                "rate": 24000,
            }
            reply = deltas(record)
            reply_ms = PCM16_24K.duration_ms(len(reply))
            await caller.wait_heard(MULAW_8K.nbytes_for_ms(reply_ms - 20), timeout=GUARD)
            await caller.wait_idle(timeout=GUARD)
        assert env.calls[0].bridge.transcoding
        # Same duration (within a frame of resampler edge), same loudness (within 2 dB).
        assert abs(caller.heard_ms - reply_ms) <= 20
        heard_rms = _rms(mulaw_decode(caller.heard))
        speech_rms = _rms(mulaw_decode(speech))
        assert heard_rms > 0
        assert abs(20 * np.log10(heard_rms / speech_rms)) < 2.0


async def test_secrets_never_reach_logs_reprs_or_events(caplog: pytest.LogCaptureFixture) -> None:
    api_key = "sk-test-SECRET-a1b2c3"
    token = "twilio-token-SECRET-d4e5f6"
    caplog.set_level(logging.DEBUG)
    async with bridge_env(
        fake={"api_key": api_key},
        app={"api_key": api_key, "twilio_auth_token": token, "insecure_skip_signature": False},
    ) as env:
        # A forged upgrade is refused (and logged without secrets).
        forged = SimulatedCaller(env.url, TwilioDialect(auth_token="wrong-token"))
        with pytest.raises(Exception, match="403"):
            await forged.start()
        await forged.close()
        async with SimulatedCaller(env.url, TwilioDialect(auth_token=token), speed=4.0) as caller:
            await caller.say(speech_like(600, MULAW_8K, seed="secret"))
            await env.fake.wait_for_server_event("response.done", session=0, timeout=GUARD)
            await caller.wait_for(lambda: len(caller.heard) > 0, timeout=GUARD)
            await caller.send_raw("{bad json")
            await env.wait(lambda: bool(env.calls[0].of("error")), "error event")
        assert env.fake.session(0).auth == "matched"
        texts = [
            caplog.text,
            repr(env.server),
            repr(env.calls[0].bridge),
            repr(env.calls[0].bridge.edge),
            repr(env.calls[0].bridge.model),
            *(repr(e) for e in env.calls[0].events),
            *(str(e.error) for e in env.calls[0].of("error") if e.error is not None),
            repr(caller),
            repr(TwilioDialect(auth_token=token)),
        ]
        for text in texts:
            assert api_key not in text
            assert token not in text
        assert "rejected /media-stream" in caplog.text
