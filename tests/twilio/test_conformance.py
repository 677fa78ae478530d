"""The Twilio plugin passes the same public conformance kit that third-party plugins use."""

from __future__ import annotations

from aiohttp import web

from voicewire.audio import PCM16_24K
from voicewire.testing import FakeRealtimeServer
from voicewire.testing.conformance import (
    check_bridge_with_edge,
    check_entry_point,
    check_telephony_edge,
)
from voicewire_twilio import TwilioEdge
from voicewire_twilio.caller import TwilioDialect
from voicewire_twilio.websocket import AiohttpMediaSocket


def twilio_edge(ws: web.WebSocketResponse) -> TwilioEdge:
    return TwilioEdge(AiohttpMediaSocket(ws))


async def test_the_twilio_edge_conforms(no_task_leaks: None) -> None:
    await check_telephony_edge(twilio_edge, TwilioDialect)


async def test_a_bridged_twilio_call_passes_mulaw_through(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    await check_bridge_with_edge(twilio_edge, TwilioDialect, fake_server=fake_realtime_server)


async def test_a_bridged_twilio_call_transcodes_to_pcm(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    await check_bridge_with_edge(
        twilio_edge, TwilioDialect, fake_server=fake_realtime_server, model_audio_format=PCM16_24K
    )


def test_the_entry_point_registers_the_twilio_edge() -> None:
    spec = check_entry_point("twilio", "twilio", "telephony_edge")
    assert spec.kind == "telephony_edge"
