"""Fault matrix, model side and both sides: ``CallBridge`` + in-memory edge + the REAL
``OpenAIRealtimeWebSocket`` + ``FakeRealtimeServer`` with its fault knobs, over loopback.

For each fault: the affected call ends cleanly (``run()`` returns, the edge is closed, every
byte is accounted for, the bridge is ``disconnected``) or recovers with the reconnect policy on;
a concurrent call on the same server completes a turn untouched (no error event, byte-exact
audio); the outcome is an error event with a stable code, and a log record.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import pytest

from voicewire.audio.formats import MULAW_8K
from voicewire.events import TurnDoneEvent
from voicewire.testing import (
    CloseBeforeSessionCreated,
    CloseMidResponse,
    FakeRealtimeServer,
    RefuseConnection,
    SendGarbage,
    Stall,
    speech_like,
)

if TYPE_CHECKING:
    from tests.hardening.conftest import BridgedCall, Kit, Loopback

KEEPALIVE = {"ping_interval": 0.05, "ping_timeout": 0.1}


def utterance(seed: str) -> bytes:
    """Speech the fake's VAD detects, then enough silence to end the turn."""
    return speech_like(500, MULAW_8K, seed=seed) + MULAW_8K.silence(800)


def completed_turns(call: BridgedCall) -> list[TurnDoneEvent]:
    return [e for e in call.of("turn_done") if e.status == "completed"]


async def connected(call: BridgedCall) -> None:
    await call.until(lambda: call.bridge.status == "connected", "the call to connect")


async def echo_turn(call: BridgedCall, seed: str) -> None:
    done = len(completed_turns(call))
    call.edge.speak(utterance(seed))
    await call.until(lambda: len(completed_turns(call)) > done, "a completed turn")


async def assert_played(call: BridgedCall, answer: bytes) -> None:
    """Wait until the edge got as much as the model sent, then compare byte for byte."""
    assert answer
    await call.until(lambda: len(call.edge.played) >= len(answer), "the answer at the edge")
    assert bytes(call.edge.played) == answer


async def assert_untouched(
    kit: type[Kit], call: BridgedCall, server: FakeRealtimeServer, index: int
) -> None:
    """A healthy call completes an echo turn: no error, every byte both ways, in order."""
    await connected(call)
    await echo_turn(call, f"healthy-{index}")
    record = server.session(index)
    await assert_played(call, kit.deltas_of(record))
    assert kit.appended_of(record) == bytes(call.edge.caller_audio)
    assert call.errors() == []
    assert record.errors() == []
    kit.assert_balanced(call.stats)


async def assert_ended_cleanly(kit: type[Kit], call: BridgedCall) -> None:
    await call.finished()
    assert call.edge.closed
    assert call.bridge.status == "disconnected"
    assert call.bridge.model.status == "disconnected"
    stats = call.stats
    kit.assert_balanced(stats)
    assert stats.caller_bytes_pending == stats.model_bytes_pending == 0
    assert len(call.of("call_stop")) == 1


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="voicewire")
    caplog.set_level(logging.DEBUG, logger="voicewire_openai_ws")


# --- the model refuses, or closes before the session exists --------------------------------


@pytest.mark.parametrize("policy", [False, True], ids=["no-reconnect", "reconnect"])
@pytest.mark.parametrize(
    "fault",
    [
        RefuseConnection(status=503, sessions={0}),
        RefuseConnection(status=401, sessions={0}),
        CloseBeforeSessionCreated(sessions={0}),
        CloseBeforeSessionCreated(abrupt=True, sessions={0}),
    ],
    ids=["refuse-503", "refuse-401", "close-before-created", "drop-before-created"],
)
async def test_model_unreachable_ends_that_call_only(
    loopback: Loopback,
    kit: type[Kit],
    caplog: pytest.LogCaptureFixture,
    fault: RefuseConnection | CloseBeforeSessionCreated,
    policy: bool,
) -> None:
    server = await loopback.server(faults=[fault])
    options = {"reconnect": kit.FAST_RECONNECT} if policy else {}
    bad = loopback.call(server, model_options=options)
    bad.edge.speak(utterance("lost"))  # audio sent while connecting, then dropped and counted
    await assert_ended_cleanly(kit, bad)
    (error,) = bad.errors("model_connect_failed")
    assert error.source == "transport"
    # The bridge handed the caller's audio to the transport, which held it while connecting
    # and discarded it with the session: not silently, its error event says how much.
    discarded = sum(e.details.get("discarded_audio_bytes", 0) for e in bad.errors())
    assert discarded == bad.stats.caller_bytes_sent > 0
    assert bad.edge.close_reason == "model connection failed"
    assert logged(caplog, "the model connection failed")
    # The policy reconnects after a drop; a first connection that fails is not retried.
    assert len(server.sessions) == 1

    good = loopback.call(server)
    await assert_untouched(kit, good, server, 1)


# --- the model closes mid-response ---------------------------------------------------------


@pytest.mark.parametrize("abrupt", [False, True], ids=["close-frame", "tcp-drop"])
async def test_close_mid_response_without_policy_ends_that_call_only(
    loopback: Loopback, kit: type[Kit], caplog: pytest.LogCaptureFixture, abrupt: bool
) -> None:
    server = await loopback.server(
        faults=[CloseMidResponse(after_audio_deltas=2, abrupt=abrupt, sessions={0})]
    )
    bad = loopback.call(server)
    await connected(bad)
    good = loopback.call(server)
    await connected(good)

    bad.edge.speak(utterance("drop"))
    await assert_ended_cleanly(kit, bad)
    codes = [e.code for e in bad.errors()]
    assert "connection_lost" in codes
    assert "model_disconnected" in codes
    assert bad.edge.close_reason == "model disconnected"
    # The two deltas that arrived were played whole; the response ended as failed.
    assert len(bad.edge.played) == len(kit.deltas_of(server.session(0)))
    assert [e.status for e in bad.of("turn_done")] == ["failed"]
    assert logged(caplog, "the model connection closed; ending the call")

    await assert_untouched(kit, good, server, 1)


async def test_close_mid_response_with_policy_recovers_the_call(
    loopback: Loopback, kit: type[Kit]
) -> None:
    server = await loopback.server(faults=[CloseMidResponse(after_audio_deltas=2, sessions={0})])
    call = loopback.call(server, model_options={"reconnect": kit.FAST_RECONNECT})
    await connected(call)
    good = loopback.call(server)
    await connected(good)  # session 1; the reconnect will be session 2

    call.edge.speak(utterance("first"))
    await call.until(lambda: bool(call.of("reconnected")), "the reconnect")
    await connected(call)
    assert not call.ended
    (lost,) = call.errors("connection_lost")
    assert lost.details["reconnecting"] is True
    assert [e.status for e in call.of("turn_done")] == ["failed"]
    assert call.bridge.protocol.active_responses == ()

    # The call goes on: the next turn is answered on the new connection.
    await echo_turn(call, "second")
    answer = kit.deltas_of(server.session(2))
    await call.until(
        lambda: bytes(call.edge.played).endswith(answer), "the second answer at the edge"
    )
    kit.assert_balanced(call.stats)
    await assert_untouched(kit, good, server, 1)


# --- the model stalls (no bytes, no pongs) ----------------------------------------------------


async def test_stall_is_found_by_the_keepalive_and_ends_that_call(
    loopback: Loopback, kit: type[Kit], caplog: pytest.LogCaptureFixture
) -> None:
    server = await loopback.server(faults=[Stall(after_events=1, sessions={0})])
    bad = loopback.call(server, model_options=KEEPALIVE)
    await server.wait_for_session(0)
    good = loopback.call(server, model_options=KEEPALIVE)
    await assert_ended_cleanly(kit, bad)
    assert bad.errors("keepalive_timeout")
    assert bad.errors("model_disconnected")
    assert logged(caplog, "keepalive")
    await assert_untouched(kit, good, server, 1)


async def test_stall_with_policy_reconnects_and_the_call_goes_on(
    loopback: Loopback, kit: type[Kit]
) -> None:
    server = await loopback.server(faults=[Stall(after_events=1, sessions={0})])
    call = loopback.call(server, model_options={**KEEPALIVE, "reconnect": kit.FAST_RECONNECT})
    await call.until(lambda: bool(call.of("reconnected")), "the reconnect")
    await connected(call)
    assert call.errors("keepalive_timeout")
    await echo_turn(call, "after-stall")
    await assert_played(call, kit.deltas_of(server.session(1)))
    kit.assert_balanced(call.stats)


# --- the model sends garbage -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code", "log"),
    [
        ("invalid_json", "invalid_json", "not valid JSON"),
        ("binary", "unexpected_binary_frame", "binary frame"),
    ],
)
async def test_garbage_is_reported_and_the_call_goes_on(
    loopback: Loopback,
    kit: type[Kit],
    caplog: pytest.LogCaptureFixture,
    kind: str,
    code: str,
    log: str,
) -> None:
    fault = SendGarbage(after_events=2, kind=kind, sessions={0})  # type: ignore[arg-type]
    server = await loopback.server(faults=[fault])
    call = loopback.call(server)
    await connected(call)
    await call.until(lambda: bool(call.errors(code)), "the garbage to be reported")
    await echo_turn(call, "after-garbage")
    assert not call.ended
    await assert_played(call, kit.deltas_of(server.session(0)))
    assert [e.code for e in call.errors()] == [code]
    assert logged(caplog, log)
    kit.assert_balanced(call.stats)


# --- the caller's side, with the real model transport ----------------------------------------


async def test_caller_vanishing_without_stop_closes_the_model_session(
    loopback: Loopback, kit: type[Kit]
) -> None:
    server = await loopback.server()
    call = loopback.call(server)
    await connected(call)
    good = loopback.call(server)
    call.edge.speak(speech_like(300, MULAW_8K, seed="cut"))  # mid-sentence
    call.edge.vanish()
    await assert_ended_cleanly(kit, call)
    (stop,) = call.of("call_stop")
    assert stop.reason == "media stream ended"
    record = await server.wait_closed(0)
    assert record.closed
    await assert_untouched(kit, good, server, 1)


async def test_caller_going_silent_mid_turn_is_padded_and_answered(
    loopback: Loopback, kit: type[Kit]
) -> None:
    server = await loopback.server()
    # The caller speaks and then sends nothing at all (no frames): without padding the model's
    # VAD would wait forever for the silence that ends the turn.
    call = loopback.call(server, inactivity_timeout_ms=100.0)
    await connected(call)
    call.edge.speak(speech_like(600, MULAW_8K, seed="then-nothing"))
    await call.until(lambda: bool(completed_turns(call)), "the answer despite no more frames")
    stats = call.stats
    assert stats.protocol.padding.inactivity_fills >= 1
    assert stats.padding_bytes > 0
    await assert_played(call, kit.deltas_of(server.session(0)))
    kit.assert_balanced(call.stats)


async def test_provider_not_taking_audio_holds_it_in_the_bridge_and_counts_it_at_the_end(
    loopback: Loopback, kit: type[Kit]
) -> None:
    server = await loopback.server()
    gate = asyncio.Event()  # the provider's buffer is full and stays full
    call = loopback.call(server, edge_options={"play_gate": gate})
    await connected(call)
    await echo_turn(call, "unheard")
    answer = kit.deltas_of(server.session(0))
    await call.until(lambda: call.stats.model_audio_bytes == len(answer), "the answer")
    stats = call.stats
    assert stats.model_bytes_played == 0
    # The bridge holds what the edge could not take (at most one answer here; the edge's own
    # bound and send timeout are what limit it in production, see docs/reliability.md).
    assert stats.model_bytes_pending == len(answer)
    call.edge.hang_up()
    await assert_ended_cleanly(kit, call)
    assert call.stats.model_bytes_dropped["closed"] == len(answer)


# --- both sides at once ------------------------------------------------------------------------


async def test_both_sides_failing_at_once_end_the_call_once(
    loopback: Loopback, kit: type[Kit]
) -> None:
    server = await loopback.server(faults=[CloseMidResponse(after_audio_deltas=1, sessions={0})])
    call = loopback.call(server, model_options={"reconnect": kit.FAST_RECONNECT})
    await connected(call)
    good = loopback.call(server)
    await connected(good)
    call.edge.speak(utterance("both"))
    await server.wait_for_server_event("response.output_audio.delta", session=0)
    call.edge.vanish()  # the caller is gone while the model connection drops and reconnects
    await assert_ended_cleanly(kit, call)
    assert call.of("call_stop")[0].reason == "media stream ended"
    await assert_untouched(kit, good, server, 1)
