"""voicewire's conformance checks against the Telnyx edge, for PCMU and L16 16 kHz."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

import pytest
from aiohttp import web
from voicewire_telnyx import TelnyxEdge, plugin
from voicewire_telnyx.caller import TelnyxDialect

from voicewire.audio import PCM16_24K
from voicewire.registry import Registry
from voicewire.testing import FakeRealtimeServer
from voicewire.testing.conformance import (
    check_bridge_with_edge,
    check_entry_point,
    check_serve_runner,
    check_telephony_edge,
)

pytest_plugins = ["voicewire.testing.pytest_plugin"]


def pcmu() -> TelnyxDialect:
    return TelnyxDialect(codec="PCMU")


def l16() -> TelnyxDialect:
    return TelnyxDialect(codec="L16", sample_rate=16000)


async def accepted_edge(ws: web.WebSocketResponse) -> TelnyxEdge:
    edge = TelnyxEdge(ws)
    await edge.accept()  # so the bridge sees the format announced by start
    return edge


@pytest.mark.parametrize("dialect", [pcmu, l16])
async def test_the_edge_conforms(no_task_leaks: None, dialect: type[TelnyxDialect]) -> None:
    await check_telephony_edge(TelnyxEdge, dialect)


async def test_a_bridged_pcmu_call_passes_through(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    await check_bridge_with_edge(accepted_edge, pcmu, fake_server=fake_realtime_server)


async def test_a_bridged_l16_call_is_transcoded(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer
) -> None:
    await check_bridge_with_edge(
        accepted_edge, l16, fake_server=fake_realtime_server, model_audio_format=PCM16_24K
    )


def installed() -> bool:
    try:
        distribution("voicewire-telnyx")
    except PackageNotFoundError:
        return False
    return True


@pytest.mark.parametrize("dialect", [pcmu, l16])
async def test_voicewire_serve_carries_a_call_and_drains(
    no_task_leaks: None, fake_realtime_server: FakeRealtimeServer, dialect: type[TelnyxDialect]
) -> None:
    registry = Registry()
    plugin.voicewire_register_transports(registry)  # what loading the entry point does
    await check_serve_runner("telnyx", dialect, fake_server=fake_realtime_server, registry=registry)


@pytest.mark.skipif(not installed(), reason="voicewire-telnyx is not installed")
def test_the_entry_point_registers_the_edge() -> None:
    spec = check_entry_point("telnyx", "telnyx", "telephony_edge")
    assert spec.description.startswith("Telnyx")
    assert callable(getattr(spec.factory, "voicewire_serve", None))
    assert callable(getattr(spec.factory, "voicewire_caller_dialect", None))
