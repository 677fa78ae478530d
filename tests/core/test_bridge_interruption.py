"""BridgeProtocol: interruption maths, late-audio discarding, response life cycle, counters."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicewire.audio.formats import MULAW_8K, PCM16_24K, AudioFormat
from voicewire.bridge import (
    BridgeProtocol,
    InterruptionPlan,
    ItemPlayback,
    PlaybackKey,
    truncation_points,
)
from voicewire.errors import ConfigError
from voicewire.events import Truncation


def bridge(*, acks: bool = True, fmt: AudioFormat = MULAW_8K, **kwargs: float) -> BridgeProtocol:
    return BridgeProtocol(output_format=fmt, input_format=MULAW_8K, acknowledgements=acks, **kwargs)


def send(proto: BridgeProtocol, nbytes: int, *, item: str = "item-a", resp: str = "r1") -> str:
    verdict = proto.accept_audio(resp, item, 0, nbytes, now_ms=0)
    assert verdict.play
    assert verdict.token is not None
    return verdict.token


def plan_of(proto: BridgeProtocol, now_ms: float = 0, **kwargs: bool) -> InterruptionPlan:
    plan = proto.interrupt(now_ms, **kwargs)
    assert plan is not None
    return plan


# -- the worked examples ---------------------------------------------------------------------


def test_worked_example_two_100ms_deltas_one_acknowledged_cuts_at_150() -> None:
    proto = bridge()
    proto.response_started("r1")
    first = send(proto, 800)  # 100 ms
    proto.acknowledged(first)  # heard 100
    send(proto, 800)  # sent 200
    assert proto.audio_done("r1", "item-a", 0, now_ms=0) is not None
    plan = plan_of(proto)
    assert plan.truncations == (Truncation(item_id="item-a", content_index=0, audio_end_ms=150),)
    assert plan.clear_edge
    assert plan.cancel_response
    assert plan.interrupted_response_ids == ("r1",)
    assert plan.unheard_ms == 100.0


def test_worked_example_161_byte_delta_fully_acknowledged_cuts_at_20() -> None:
    proto = bridge()
    token = send(proto, 161)  # 20.125 ms
    proto.acknowledged(token)
    plan = plan_of(proto)
    assert [t.audio_end_ms for t in plan.truncations] == [20]


# -- the truncation formula --------------------------------------------------------------------


def snap(item: str, sent_ms: float, heard_ms: float) -> ItemPlayback:
    return ItemPlayback(
        key=PlaybackKey("r", item, 0),
        sent_bytes=int(sent_ms * 8),
        sent_ms=sent_ms,
        heard_ms=heard_ms,
        done=False,
    )


def test_first_item_without_acknowledgement_is_cut_at_the_margin() -> None:
    assert [t.audio_end_ms for t in truncation_points([snap("a", 300, 0)])] == [50]
    assert [t.audio_end_ms for t in truncation_points([snap("a", 30.9, 0)])] == [30]


def test_queued_items_that_never_started_are_cut_at_zero() -> None:
    items = [snap("a", 300, 120), snap("b", 200, 0), snap("c", 100, 0)]
    assert [(t.item_id, t.audio_end_ms) for t in truncation_points(items)] == [
        ("a", 170),
        ("b", 0),
        ("c", 0),
    ]


def test_a_later_item_that_started_is_cut_past_its_heard_point() -> None:
    items = [snap("a", 300, 300), snap("b", 200, 40.7)]
    assert [t.audio_end_ms for t in truncation_points(items)] == [300, 90]


def test_margin_is_configurable() -> None:
    assert [t.audio_end_ms for t in truncation_points([snap("a", 300, 100)], 0)] == [100]
    proto = bridge(heard_margin_ms=10)
    proto.acknowledged(send(proto, 800))
    send(proto, 800)
    assert [t.audio_end_ms for t in plan_of(proto).truncations] == [110]


def test_content_index_is_kept() -> None:
    proto = bridge()
    proto.accept_audio("r1", "item-a", 2, 80, now_ms=0)
    assert plan_of(proto).truncations[0].content_index == 2


# -- when to act -----------------------------------------------------------------------------


def test_nothing_playing_and_no_response_does_nothing() -> None:
    proto = bridge()
    assert proto.interrupt(0) is None
    assert proto.counters.interruptions == 0
    assert proto.playback.generation == 1


def test_fully_heard_and_finished_response_does_nothing() -> None:
    proto = bridge()
    proto.response_started("r1")
    token = send(proto, 800)
    done = proto.audio_done("r1", "item-a", 0, now_ms=0)
    proto.response_done("r1", now_ms=0)
    assert done is not None
    proto.acknowledged(token)
    proto.acknowledged(done)
    assert proto.interrupt(0) is None


def test_interruption_after_the_model_finished_but_the_caller_still_hears() -> None:
    # The model streamed everything and ended its response; the edge is still playing it.
    proto = bridge()
    proto.response_started("r1")
    first = send(proto, 800)
    send(proto, 8000)
    proto.audio_done("r1", "item-a", 0, now_ms=0)
    proto.response_done("r1", now_ms=0)
    proto.acknowledged(first)
    plan = plan_of(proto)
    assert plan.clear_edge
    assert not plan.cancel_response  # nothing active to cancel
    assert [t.audio_end_ms for t in plan.truncations] == [150]
    assert plan.interrupted_response_ids == ("r1",)


def test_active_response_without_audio_cancels_without_clearing_or_truncating() -> None:
    proto = bridge()
    proto.response_started("r1")
    plan = plan_of(proto)
    assert (plan.clear_edge, plan.cancel_response, plan.truncations) == (False, True, ())
    assert plan.interrupted_response_ids == ("r1",)


def test_server_that_cancels_by_itself_gets_no_cancel_but_still_truncation() -> None:
    proto = bridge()
    proto.response_started("r1")
    send(proto, 800)
    plan = plan_of(proto, server_auto_cancels=True)
    assert not plan.cancel_response
    assert plan.clear_edge
    assert [t.audio_end_ms for t in plan.truncations] == [50]


def test_interrupting_twice_acts_once() -> None:
    proto = bridge()
    proto.response_started("r1")
    send(proto, 800)
    assert proto.interrupt(0) is not None
    assert proto.interrupt(0) is None
    assert proto.counters.interruptions == 1


def test_several_items_and_responses_are_cut_in_creation_order() -> None:
    proto = bridge()
    proto.response_started("r2")
    proto.acknowledged(send(proto, 800, item="a", resp="r1"))
    send(proto, 800, item="a", resp="r1")
    send(proto, 400, item="b", resp="r2")
    plan = plan_of(proto)
    assert [(t.item_id, t.audio_end_ms) for t in plan.truncations] == [("a", 150), ("b", 0)]
    assert plan.interrupted_response_ids == ("r2", "r1")


# -- after the interruption --------------------------------------------------------------------


def test_late_audio_of_an_interrupted_response_is_dropped_and_counted() -> None:
    proto = bridge()
    proto.response_started("r1")
    send(proto, 800)
    plan_of(proto)
    for item in ("item-a", "item-b"):
        verdict = proto.accept_audio("r1", item, 0, 320, now_ms=1)
        assert (verdict.play, verdict.token, verdict.reason) == (False, None, "interrupted")
    assert proto.audio_done("r1", "item-a", 0, now_ms=1) is None
    counters = proto.counters
    assert (counters.late_audio_chunks_dropped, counters.late_audio_bytes_dropped) == (2, 640)
    assert proto.playback.items() == ()
    # The next response plays normally; the old one is forgotten once it ends.
    proto.response_done("r1", now_ms=2)
    proto.response_started("r2")
    assert proto.accept_audio("r2", "item-c", 0, 80, now_ms=2).play
    assert proto.accept_audio("r1", "item-d", 0, 80, now_ms=2).play


def test_late_audio_of_an_interrupted_item_without_response_id_is_dropped() -> None:
    proto = bridge()
    assert proto.accept_audio(None, "item-a", 0, 80, now_ms=0).play
    plan = plan_of(proto)
    assert plan.interrupted_response_ids == ()
    assert proto.accept_audio(None, "item-a", 0, 80, now_ms=0).reason == "interrupted"
    assert proto.accept_audio(None, "item-b", 0, 80, now_ms=0).play


def test_tokens_acknowledged_after_the_interruption_are_cleared() -> None:
    proto = bridge()
    first = send(proto, 800)
    second = send(proto, 800)
    proto.acknowledged(first)
    plan_of(proto)
    assert proto.acknowledged(second).kind == "cleared"
    assert proto.counters.playback.cleared_tokens == 1
    assert proto.playback.generation == 2


def test_audio_without_item_id_is_dropped_and_counted() -> None:
    proto = bridge()
    verdict = proto.accept_audio("r1", None, 0, 100, now_ms=0)
    assert (verdict.play, verdict.reason) == (False, "untracked")
    assert proto.counters.untracked_audio_bytes_dropped == 100
    assert proto.accept_audio("r1", "item-a", 0, 0, now_ms=0).reason == "empty"


def test_model_disconnect_forgets_everything() -> None:
    proto = bridge()
    proto.response_started("r1")
    token = send(proto, 800)
    plan_of(proto)
    proto.response_started("r2")
    send(proto, 800, resp="r2", item="b")
    proto.model_disconnected(now_ms=5)
    assert proto.active_responses == ()
    assert proto.playback.items() == ()
    assert proto.interrupt(6) is None
    assert proto.acknowledged(token).kind == "cleared"
    assert proto.accept_audio("r1", "item-a", 0, 80, now_ms=7).play  # no longer discarded


def test_call_start_starts_a_new_generation_but_keeps_responses() -> None:
    proto = bridge()
    proto.response_started("r1")
    token = send(proto, 800)
    proto.call_started(now_ms=1)
    assert proto.acknowledged(token).kind == "cleared"
    assert proto.active_responses == ("r1",)
    assert proto.playback.items() == ()


# -- wall-clock fallback -----------------------------------------------------------------------


def test_wall_clock_interruption_uses_the_time_given() -> None:
    proto = bridge(acks=False)
    proto.response_started("r1")
    assert proto.accept_audio("r1", "a", 0, 800, now_ms=1000).token is None
    proto.accept_audio("r1", "a", 0, 800, now_ms=1010)
    proto.accept_audio("r1", "b", 0, 800, now_ms=1020)  # queued: plays 1200..1300
    plan = plan_of(proto, now_ms=1080)
    assert [(t.item_id, t.audio_end_ms) for t in plan.truncations] == [("a", 130), ("b", 0)]
    assert plan.unheard_ms == 300 - 80


def test_wall_clock_second_item_being_heard_is_cut_past_its_elapsed_time() -> None:
    proto = bridge(acks=False)
    proto.accept_audio("r1", "a", 0, 800, now_ms=0)
    proto.accept_audio("r1", "b", 0, 800, now_ms=0)
    plan = plan_of(proto, now_ms=150)
    assert [(t.item_id, t.audio_end_ms) for t in plan.truncations] == [("a", 100), ("b", 100)]


def test_wall_clock_played_out_items_leave_nothing_to_interrupt() -> None:
    proto = bridge(acks=False)
    proto.response_started("r1")
    proto.accept_audio("r1", "a", 0, 800, now_ms=0)
    proto.audio_done("r1", "a", 0, now_ms=10)
    proto.response_done("r1", now_ms=20)
    assert proto.interrupt(now_ms=99) is not None
    proto2 = bridge(acks=False)
    proto2.accept_audio("r1", "a", 0, 800, now_ms=0)
    proto2.response_done("r1", now_ms=20)
    assert proto2.interrupt(now_ms=100) is None


def test_invalid_margin_names_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        bridge(heard_margin_ms=-1)
    assert info.value.field == "heard_margin_ms"


# -- invariants under any order of chunks, acknowledgements, clears and interruptions ----------

ITEMS = ["a", "b", "c"]
RESPONSES = ["r1", "r2", None]

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("audio"),
            st.sampled_from(RESPONSES),
            st.sampled_from([*ITEMS, None]),
            st.integers(0, 3000),
        ),
        st.tuples(st.just("done"), st.sampled_from(RESPONSES), st.sampled_from(ITEMS), st.just(0)),
        st.tuples(st.just("ack"), st.none(), st.none(), st.integers(0, 500)),
        st.tuples(st.just("started"), st.sampled_from(["r1", "r2"]), st.none(), st.just(0)),
        st.tuples(st.just("finished"), st.sampled_from(["r1", "r2"]), st.none(), st.just(0)),
        st.tuples(st.just("interrupt"), st.none(), st.none(), st.integers(0, 1)),
        st.tuples(st.just("call_started"), st.none(), st.none(), st.just(0)),
        st.tuples(st.just("wait"), st.none(), st.none(), st.integers(0, 300)),
    ),
    max_size=100,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps, acks=st.booleans(), fmt=st.sampled_from([MULAW_8K, PCM16_24K]))
def test_interruption_invariants(
    steps: list[tuple[str, str | None, str | None, int]], acks: bool, fmt: AudioFormat
) -> None:
    proto = bridge(acks=acks, fmt=fmt)
    now = 0.0
    tokens: list[str] = []
    offered = 0
    for op, resp, item, n in steps:
        if op == "audio":
            verdict = proto.accept_audio(resp, item, 0, n, now)
            offered += n
            if verdict.token is not None:
                tokens.append(verdict.token)
        elif op == "done" and item is not None:
            token = proto.audio_done(resp, item, 0, now)
            if token is not None:
                tokens.append(token)
        elif op == "ack" and tokens:
            ack = proto.acknowledged(tokens[n % len(tokens)])
            if ack.kind in ("cleared", "unknown"):
                assert ack.heard_ms is None
        elif op == "started" and resp is not None:
            proto.response_started(resp)
        elif op == "finished" and resp is not None:
            proto.response_done(resp, now)
        elif op == "interrupt":
            before = {i.key: i for i in proto.playback.items(now)}
            active = proto.active_responses
            plan = proto.interrupt(now, server_auto_cancels=bool(n))
            if not before and not active:
                assert plan is None
                continue
            assert plan is not None
            assert plan.cancel_response == (bool(active) and not n)
            assert len(plan.truncations) == len(before)
            for truncation, snapshot in zip(plan.truncations, before.values(), strict=True):
                assert truncation.item_id == snapshot.key.item_id
                assert isinstance(truncation.audio_end_ms, int)
                assert 0 <= truncation.audio_end_ms <= math.floor(snapshot.sent_ms)
                assert truncation.audio_end_ms <= snapshot.heard_ms + 50
            assert proto.playback.items(now) == ()
            assert proto.active_responses == ()
            assert proto.interrupt(now) is None  # a second call finds nothing
        elif op == "call_started":
            proto.call_started(now)
        elif op == "wait":
            now += n
        for snapshot in proto.playback.items(now):
            assert 0 <= snapshot.heard_ms <= snapshot.sent_ms
        # Nothing lost: every offered byte was handed to the edge or counted as dropped.
        c = proto.counters
        assert offered == (
            c.audio_bytes_accepted + c.late_audio_bytes_dropped + c.untracked_audio_bytes_dropped
        )
