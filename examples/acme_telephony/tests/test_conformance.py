"""voicewire's conformance checks against the Acme edge: alone, and in a whole bridged call."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

import pytest
from aiohttp import web
from voicewire_acme import AcmeEdge
from voicewire_acme.caller import AcmeDialect

from voicewire.audio import PCM16_24K
from voicewire.testing import FakeRealtimeServer
from voicewire.testing.conformance import (
    check_bridge_with_edge,
    check_entry_point,
    check_telephony_edge,
)

# Opts into voicewire's pytest plugin (fake_realtime_server, no_task_leaks).
pytest_plugins = ["voicewire.testing.pytest_plugin"]


def mulaw_dialect() -> AcmeDialect:
    return AcmeDialect(codec="pcmu")


async def accepted_edge(ws: web.WebSocketResponse) -> AcmeEdge:
    # As the app does: read hello first, so a bridge built on the edge sees the call's codec.
    edge = AcmeEdge(ws)
    await edge.accept()
    return edge


async def test_the_edge_conforms(no_task_leaks: None) -> None:
    await check_telephony_edge(AcmeEdge, AcmeDialect)


async def test_the_edge_conforms_with_mulaw_calls(no_task_leaks: None) -> None:
    await check_telephony_edge(AcmeEdge, mulaw_dialect)


async def test_the_edge_conforms_when_accepted_first(no_task_leaks: None) -> None:
    await check_telephony_edge(accepted_edge, mulaw_dialect)


async def test_a_bridged_call_passes_alaw_through(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    await check_bridge_with_edge(AcmeEdge, AcmeDialect, fake_server=fake_realtime_server)


async def test_a_bridged_call_transcodes_to_pcm(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    await check_bridge_with_edge(
        AcmeEdge, AcmeDialect, fake_server=fake_realtime_server, model_audio_format=PCM16_24K
    )


async def test_a_bridged_mulaw_call(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    await check_bridge_with_edge(accepted_edge, mulaw_dialect, fake_server=fake_realtime_server)


def installed() -> bool:
    try:
        distribution("voicewire-acme")
    except PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not installed(), reason="voicewire-acme is not installed")
def test_the_entry_point_registers_the_edge() -> None:
    spec = check_entry_point("acme", "acme", "telephony_edge")
    assert spec.description.startswith("Acme Voice")
