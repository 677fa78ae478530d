"""``CallBridge`` when one of its own parts breaks: an edge or a model transport that raises.

The provider's and the model's bad input are the other suites' (the edges and transports turn
them into events); here the part itself fails, as a plugin with a bug or a socket torn down
under it would. Each fault is reported as an ``error`` event with a code, the call goes on when
it can and ends cleanly when it cannot, and no task is left (the ``rig`` fixture checks).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from voicewire.bridge import CallerAudio, Dtmf
from voicewire.events import AudioInterruptedEvent, CallStopEvent, DtmfEvent, MarkEvent
from voicewire.transport import ConnectOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.core.conftest import Rig, RigFactory

    from voicewire.bridge import CallBridgeStats

    Balanced = Callable[[CallBridgeStats], None]


def loud(nbytes: int) -> bytes:
    return b"\x55" * nbytes


async def heard_one_of_three(r: Rig) -> None:
    """The model sends three 100 ms chunks of r1/i1; the caller has heard the first."""
    r.model.respond("r1")
    for _ in range(3):
        r.model.speak("r1", "i1", loud(800))
    await r.until(lambda: len(r.edge.outstanding) == 3, "the chunks' tokens")
    r.edge.ack(1)
    await r.until(lambda: len(r.log.of(MarkEvent)) == 1, "the first mark")


async def still_carried(r: Rig) -> None:
    """Caller audio still reaches the model, and the bridge is connected."""
    before = len(r.model.received)
    r.edge.feed(CallerAudio(data=loud(160)))
    await r.until(lambda: len(r.model.received) == before + 160, "caller audio afterwards")
    assert r.bridge.status == "connected"
    assert not r.edge.closed


# --- the edge ----------------------------------------------------------------------------------


async def test_an_edge_whose_events_fail_ends_the_call(rig: RigFactory, balanced: Balanced) -> None:
    r = await rig.started()
    r.edge.faults["events"] = ConnectionResetError("provider socket reset")
    r.edge.feed(CallerAudio(data=loud(160)))
    await r.finished()
    (error,) = r.log.errors("edge_failed")
    assert error.source == "telephony"
    assert "provider socket reset" in error.message
    assert isinstance(error.error, ConnectionResetError)
    assert r.model.status == "disconnected"
    assert r.log.of(CallStopEvent) == [CallStopEvent(call_id="CA1", reason="telephony edge failed")]
    assert r.bridge.status == "disconnected"
    balanced(r.stats)


async def test_a_failing_clear_still_fixes_the_model_and_the_call_goes_on(
    rig: RigFactory, balanced: Balanced
) -> None:
    r = await rig.started()
    await heard_one_of_three(r)
    r.edge.faults["clear"] = OSError("clear not sent")
    r.model.speech_started()
    await r.until(lambda: bool(r.model.truncations), "the truncation")
    (error,) = r.log.errors("edge_clear_failed")
    assert (error.source, isinstance(error.error, OSError)) == ("telephony", True)
    # The model's memory is still cut at what the caller heard.
    assert r.model.cancels == 1
    assert r.model.truncations == [("i1", 0, 150)]
    assert len(r.log.of(AudioInterruptedEvent)) == 1
    await still_carried(r)
    balanced(r.stats)


@pytest.mark.parametrize("command", ["cancel_response", "truncate"])
async def test_a_failing_model_command_is_reported_and_the_call_goes_on(
    rig: RigFactory, balanced: Balanced, command: str
) -> None:
    r = await rig.started()
    await heard_one_of_three(r)
    r.model.faults[command] = RuntimeError(f"{command} refused")
    r.model.speech_started()
    await r.until(lambda: bool(r.log.errors(f"model_{command}_failed")), "the error")
    (error,) = r.log.errors(f"model_{command}_failed")
    assert error.source == "transport"
    assert f"{command} refused" in error.message
    assert r.edge.commands("clear") == [None]  # the caller stops hearing the answer anyway
    if command == "cancel_response":
        # One command failing does not stop the next: the item is still truncated.
        await r.until(lambda: bool(r.model.truncations), "the truncation")
        assert r.model.truncations == [("i1", 0, 150)]
    await still_carried(r)
    balanced(r.stats)


@pytest.mark.parametrize(
    ("command", "played", "tokens"),
    [("acknowledge_when_played", (800, 1600), 1), ("play", (0, 800), 2)],
)
async def test_a_failing_edge_command_loses_that_chunk_only(
    rig: RigFactory,
    balanced: Balanced,
    command: str,
    played: tuple[int, int],
    tokens: int,
) -> None:
    """A chunk whose ``play`` failed is dropped and counted (its token still marks the place on
    the item's timeline); a chunk whose acknowledgement could not be asked for still plays. The
    next chunk goes out as usual either way."""
    r = await rig.started()
    r.edge.faults[command] = OSError("socket gone")
    r.model.respond("r1")
    r.model.speak("r1", "i1", loud(800))
    await r.until(lambda: bool(r.log.errors(f"edge_{command}_failed")), "the error")
    (error,) = r.log.errors(f"edge_{command}_failed")
    assert error.source == "telephony"
    assert len(r.edge.played) == played[0]
    assert r.stats.model_bytes_dropped["edge_error"] == 800 - played[0]
    del r.edge.faults[command]
    r.model.speak("r1", "i1", loud(800))
    await r.until(lambda: len(r.edge.outstanding) == tokens, "the next chunk's token")
    assert len(r.edge.played) == played[1]
    await still_carried(r)
    balanced(r.stats)


async def test_an_unknown_edge_event_is_ignored(
    rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    r = await rig.started()
    with caplog.at_level(logging.DEBUG, logger="voicewire.bridge"):
        r.edge.feed(object())  # type: ignore[arg-type]  # an edge of a newer protocol
        r.edge.feed(Dtmf(digit="5"))  # a barrier: everything before it was handled
        await r.until(lambda: bool(r.log.of(DtmfEvent)), "the barrier")
    assert "ignoring unknown edge event 'object'" in caplog.text
    assert r.log.errors() == []
    await still_carried(r)


async def test_a_timestamp_the_padder_cannot_use_counts_as_none(
    rig: RigFactory, balanced: Balanced
) -> None:
    r = await rig.started()
    r.edge.feed(CallerAudio(data=loud(160), timestamp_ms=float("nan")))  # type: ignore[arg-type]
    await r.until(lambda: len(r.model.received) == 160, "the audio")
    assert r.stats.protocol.padding.gap_fills == 0
    await still_carried(r)
    balanced(r.stats)


# --- closing -----------------------------------------------------------------------------------


async def test_closes_that_fail_are_reported_and_the_call_still_ends(
    rig: RigFactory, caplog: pytest.LogCaptureFixture, balanced: Balanced
) -> None:
    r = await rig.started()
    r.edge.faults["close"] = OSError("edge close failed")
    r.model.faults["close"] = OSError("model close failed")
    with caplog.at_level(logging.WARNING, logger="voicewire.bridge"):
        # The edge's close raised before it ended its event stream: the bridge stops waiting
        # for the stream after its grace period and cancels it.
        await r.bridge.close()
    await r.finished()
    assert [e.source for e in r.log.errors("edge_close_failed")] == ["telephony"]
    assert [e.source for e in r.log.errors("model_close_failed")] == ["transport"]
    assert "did not end after close(); cancelled" in caplog.text
    assert r.log.of(CallStopEvent) == [
        CallStopEvent(call_id="CA1", reason="closed by the application")
    ]
    assert r.bridge.status == "disconnected"
    assert r.observer.named("on_close") == [("closed by the application",)]
    balanced(r.stats)


# --- the model ---------------------------------------------------------------------------------


async def test_a_model_whose_formats_cannot_be_set_ends_the_call(rig: RigFactory) -> None:
    r = rig()
    await r.model.connect(ConnectOptions())  # connected by the application, not the bridge
    r.model.faults["update_session_config"] = RuntimeError("session.update not sent")
    r.start()
    await r.finished()
    (error,) = r.log.errors("model_config_failed")
    assert "session.update not sent" in error.message
    assert r.edge.closed
    assert r.edge.close_reason == "model configuration failed"
    assert r.model.status == "disconnected"


async def test_a_model_that_cannot_say_who_cancels_is_cancelled_by_the_bridge(
    rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    r = await rig.started()
    await heard_one_of_three(r)
    r.model.faults["server_interrupts_response"] = AttributeError("no such flag")
    with caplog.at_level(logging.WARNING, logger="voicewire.bridge"):
        await r.bridge.interrupt()
    assert "server_interrupts_response failed" in caplog.text
    assert r.model.cancels == 1
    assert r.model.truncations == [("i1", 0, 150)]
    await still_carried(r)
