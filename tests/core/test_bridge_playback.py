"""PlaybackTracker: acknowledgement clock, cleared and unknown tokens, the wall-clock fallback."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicewire.audio.formats import MULAW_8K, PCM16_24K, AudioFormat
from voicewire.bridge.playback import (
    ItemPlayback,
    PlaybackKey,
    PlaybackTracker,
)
from voicewire.errors import ConfigError

A = PlaybackKey("resp-1", "item-a", 0)
B = PlaybackKey("resp-1", "item-b", 0)
C = PlaybackKey("resp-2", "item-c", 1)


def acked() -> PlaybackTracker:
    return PlaybackTracker(MULAW_8K, acknowledgements=True)


def clocked(latency: float = 0.0) -> PlaybackTracker:
    return PlaybackTracker(MULAW_8K, acknowledgements=False, playout_latency_ms=latency)


def only(tracker: PlaybackTracker, key: PlaybackKey, now_ms: float | None = None) -> ItemPlayback:
    snapshot = tracker.item(key, now_ms)
    assert snapshot is not None
    return snapshot


# -- acknowledgement clock ---------------------------------------------------------------------


def test_each_chunk_gets_a_fresh_token() -> None:
    tracker = acked()
    tokens = [tracker.audio_sent(A, 160, now_ms=0) for _ in range(5)]
    assert all(isinstance(t, str) for t in tokens)
    assert len(set(tokens)) == 5
    assert tracker.stats.tokens_issued == 5
    assert tracker.has_unacknowledged_tokens


def test_tokens_stay_unique_across_generations() -> None:
    tracker = acked()
    seen: set[str] = set()
    for generation in range(4):
        for _ in range(3):
            token = tracker.audio_sent(A, 80, now_ms=generation)
            assert token is not None
            assert token not in seen
            seen.add(token)
        tracker.clear(now_ms=generation)
    assert tracker.generation == 5


def test_heard_moves_only_on_acknowledgement() -> None:
    tracker = acked()
    first = tracker.audio_sent(A, 800, now_ms=0)
    second = tracker.audio_sent(A, 800, now_ms=1)
    assert first is not None
    assert second is not None
    # Time passing means nothing when acknowledgements are the clock.
    assert only(tracker, A, now_ms=1_000_000).heard_ms == 0
    ack = tracker.acknowledged(first)
    assert (ack.kind, ack.key, ack.heard_ms, ack.completed) == ("audio", A, 100.0, False)
    snapshot = only(tracker, A)
    assert (snapshot.sent_bytes, snapshot.sent_ms, snapshot.heard_ms) == (1600, 200.0, 100.0)
    assert snapshot.unheard_ms == 100.0
    tracker.acknowledged(second)
    assert only(tracker, A).heard_ms == 200.0


def test_out_of_order_acknowledgement_never_moves_heard_back() -> None:
    tracker = acked()
    first = tracker.audio_sent(A, 800, now_ms=0)
    second = tracker.audio_sent(A, 800, now_ms=0)
    assert first is not None
    assert second is not None
    tracker.acknowledged(second)
    tracker.acknowledged(first)
    assert only(tracker, A).heard_ms == 200.0


def test_done_token_acknowledged_makes_the_item_fully_heard() -> None:
    tracker = acked()
    first = tracker.audio_sent(A, 800, now_ms=0)
    tracker.audio_sent(A, 800, now_ms=0)
    done = tracker.audio_done(A, now_ms=1)
    assert first is not None
    assert done is not None
    assert only(tracker, A).done
    assert tracker.acknowledged(first).completed is False
    ack = tracker.acknowledged(done)
    assert (ack.kind, ack.completed, ack.heard_ms) == ("done", True, 200.0)
    assert tracker.items() == ()
    assert not tracker.playing


def test_last_chunk_acknowledged_after_done_also_completes() -> None:
    # FIFO playback reached the end of everything sent, and no more audio will come.
    tracker = acked()
    chunk = tracker.audio_sent(A, 800, now_ms=0)
    done = tracker.audio_done(A, now_ms=1)
    assert chunk is not None
    assert done is not None
    assert tracker.acknowledged(chunk).completed
    late = tracker.acknowledged(done)
    assert (late.kind, late.completed) == ("done", False)
    assert tracker.items() == ()


def test_done_after_everything_was_heard_completes_at_once() -> None:
    tracker = acked()
    chunk = tracker.audio_sent(A, 800, now_ms=0)
    assert chunk is not None
    tracker.acknowledged(chunk)
    assert tracker.audio_done(A, now_ms=1) is None
    assert tracker.item(A) is None


def test_done_of_an_unknown_item_is_ignored() -> None:
    tracker = acked()
    assert tracker.audio_done(A, now_ms=0) is None
    assert tracker.items() == ()


def test_response_done_marks_its_items_done() -> None:
    tracker = acked()
    a = tracker.audio_sent(A, 80, now_ms=0)
    c = tracker.audio_sent(C, 80, now_ms=0)
    assert a is not None
    assert c is not None
    tracker.response_done("resp-1", now_ms=1)
    assert only(tracker, A).done
    assert not only(tracker, C).done
    assert tracker.acknowledged(a).completed
    assert [item.key for item in tracker.items()] == [C]


def test_acknowledgement_of_a_finished_item_is_harmless() -> None:
    tracker = acked()
    first = tracker.audio_sent(A, 80, now_ms=0)
    second = tracker.audio_sent(A, 80, now_ms=0)
    tracker.audio_done(A, now_ms=0)
    assert first is not None
    assert second is not None
    assert tracker.acknowledged(second).completed
    late = tracker.acknowledged(first)
    assert (late.kind, late.completed) == ("audio", False)
    assert tracker.items() == ()


def test_items_keep_creation_order() -> None:
    tracker = acked()
    tracker.audio_sent(B, 8, now_ms=0)
    tracker.audio_sent(A, 8, now_ms=0)
    tracker.audio_sent(C, 8, now_ms=0)
    tracker.audio_sent(B, 8, now_ms=0)
    assert [item.key for item in tracker.items()] == [B, A, C]
    assert only(tracker, B).sent_bytes == 16


def test_empty_chunk_records_nothing() -> None:
    tracker = acked()
    assert tracker.audio_sent(A, 0, now_ms=0) is None
    assert tracker.items() == ()
    assert tracker.stats.tokens_issued == 0


def test_milliseconds_follow_the_output_format() -> None:
    tracker = PlaybackTracker(PCM16_24K, acknowledgements=True)
    token = tracker.audio_sent(A, 4800, now_ms=0)
    assert token is not None
    tracker.acknowledged(token)
    assert only(tracker, A).sent_ms == 100.0
    assert only(tracker, A).heard_ms == 100.0


# -- clear, cleared and unknown tokens -----------------------------------------------------------


def test_tokens_outstanding_at_clear_come_back_cleared_and_count_for_nothing() -> None:
    tracker = acked()
    played = tracker.audio_sent(A, 800, now_ms=0)
    pending = [tracker.audio_sent(A, 800, now_ms=0) for _ in range(3)]
    assert played is not None
    tracker.acknowledged(played)
    snapshot = tracker.clear(now_ms=5)
    assert [(s.key, s.sent_ms, s.heard_ms) for s in snapshot] == [(A, 400.0, 100.0)]
    assert tracker.items() == ()
    assert not tracker.has_unacknowledged_tokens
    for token in pending:
        assert token is not None
        ack = tracker.acknowledged(token)
        assert (ack.kind, ack.key, ack.heard_ms) == ("cleared", None, None)
    stats = tracker.stats
    assert (stats.cleared_tokens, stats.tokens_acknowledged, stats.clears) == (3, 1, 1)
    assert stats.unheard_ms_cleared == 300.0
    # The same key starts afresh in the new generation.
    tracker.audio_sent(A, 80, now_ms=6)
    assert (only(tracker, A).sent_ms, only(tracker, A).heard_ms) == (10.0, 0.0)


def test_unknown_and_duplicate_tokens_are_reported_not_raised() -> None:
    tracker = acked()
    token = tracker.audio_sent(A, 80, now_ms=0)
    assert token is not None
    assert tracker.acknowledged("someone-elses-mark").kind == "unknown"
    assert tracker.acknowledged(token).kind == "audio"
    assert tracker.acknowledged(token).kind == "unknown"
    assert tracker.stats.unknown_tokens == 2
    assert only(tracker, A).heard_ms == 10.0


def test_cleared_token_acknowledged_twice_is_unknown_the_second_time() -> None:
    tracker = acked()
    token = tracker.audio_sent(A, 80, now_ms=0)
    assert token is not None
    tracker.clear(now_ms=0)
    assert tracker.acknowledged(token).kind == "cleared"
    assert tracker.acknowledged(token).kind == "unknown"


def test_cleared_tokens_are_remembered_within_a_bound() -> None:
    tracker = PlaybackTracker(MULAW_8K, acknowledgements=True, max_cleared_tokens=2)
    tokens = [tracker.audio_sent(A, 8, now_ms=0) for _ in range(5)]
    tracker.clear(now_ms=0)
    assert tracker.stats.forgotten_cleared_tokens == 3
    kinds = [tracker.acknowledged(t).kind for t in tokens if t is not None]
    assert kinds == ["unknown", "unknown", "unknown", "cleared", "cleared"]


def test_without_acknowledgements_every_token_is_unknown() -> None:
    tracker = clocked()
    assert tracker.audio_sent(A, 800, now_ms=0) is None
    assert tracker.audio_done(A, now_ms=0) is None
    assert tracker.acknowledged("vw-g1-1").kind == "unknown"


# -- wall-clock fallback -----------------------------------------------------------------------


def test_wall_clock_heard_is_elapsed_time_capped_by_sent() -> None:
    tracker = clocked()
    tracker.audio_sent(A, 800, now_ms=1000)  # 100 ms, plays 1000..1100
    tracker.audio_sent(A, 800, now_ms=1010)  # queued behind it: 1100..1200
    assert only(tracker, A, now_ms=1010).heard_ms == 10
    assert only(tracker, A, now_ms=1080).heard_ms == 80
    assert only(tracker, A, now_ms=1150).heard_ms == 150
    assert only(tracker, A, now_ms=5000).heard_ms == 200


def test_wall_clock_items_play_back_to_back() -> None:
    tracker = clocked()
    tracker.audio_sent(A, 800, now_ms=0)  # 0..100
    tracker.audio_sent(B, 400, now_ms=10)  # 100..150, although handed over at 10
    tracker.audio_sent(A, 80, now_ms=20)  # 150..160: A resumes after B
    assert only(tracker, B, now_ms=90).heard_ms == 0
    assert only(tracker, B, now_ms=120).heard_ms == 20
    assert only(tracker, A, now_ms=120).heard_ms == 100
    assert only(tracker, A, now_ms=155).heard_ms == 105
    assert only(tracker, A, now_ms=200).heard_ms == 110


def test_wall_clock_underrun_pauses_playback() -> None:
    # The model fell behind real time: the edge ran dry between 100 and 500.
    tracker = clocked()
    tracker.audio_sent(A, 800, now_ms=0)
    tracker.audio_sent(A, 800, now_ms=500)
    assert only(tracker, A, now_ms=300).heard_ms == 100
    assert only(tracker, A, now_ms=550).heard_ms == 150


def test_wall_clock_latency_delays_the_estimate() -> None:
    tracker = clocked(latency=40)
    tracker.audio_sent(A, 800, now_ms=0)
    assert only(tracker, A, now_ms=30).heard_ms == 0
    assert only(tracker, A, now_ms=90).heard_ms == 50


def test_wall_clock_item_finishes_when_done_and_played_out() -> None:
    tracker = clocked()
    tracker.audio_sent(A, 800, now_ms=0)
    tracker.audio_done(A, now_ms=10)
    assert tracker.playing
    assert only(tracker, A, now_ms=99).done
    assert tracker.items(now_ms=100) == ()
    tracker.audio_sent(B, 8, now_ms=100)
    assert [item.key for item in tracker.items()] == [B]


def test_wall_clock_never_runs_backwards() -> None:
    tracker = clocked()
    tracker.audio_sent(A, 800, now_ms=0)
    tracker.audio_sent(B, 8, now_ms=60)
    assert only(tracker, A, now_ms=10).heard_ms == 60  # 10 is older than the 60 already seen
    assert only(tracker, A).heard_ms == 60


def test_wall_clock_clear_empties_the_edge_queue() -> None:
    tracker = clocked()
    tracker.audio_sent(A, 8000, now_ms=0)  # one second queued
    snapshot = tracker.clear(now_ms=250)
    assert [(s.sent_ms, s.heard_ms) for s in snapshot] == [(1000.0, 250.0)]
    tracker.audio_sent(B, 800, now_ms=260)  # plays at once, not after the cleared second
    assert only(tracker, B, now_ms=300).heard_ms == 40


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"output_format": "audio/pcmu"}, "output_format"),
        ({"acknowledgements": 1}, "acknowledgements"),
        ({"playout_latency_ms": -1}, "playout_latency_ms"),
        ({"playout_latency_ms": float("nan")}, "playout_latency_ms"),
        ({"playout_latency_ms": True}, "playout_latency_ms"),
        ({"token_prefix": ""}, "token_prefix"),
        ({"max_cleared_tokens": -1}, "max_cleared_tokens"),
    ],
)
def test_invalid_parameters_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"output_format": MULAW_8K, "acknowledgements": True}
    args.update(kwargs)
    with pytest.raises(ConfigError) as info:
        PlaybackTracker(**args)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize("now_ms", [float("nan"), float("inf"), "0"])
def test_invalid_time_is_rejected(now_ms: object) -> None:
    with pytest.raises(ValueError, match="now_ms"):
        acked().audio_sent(A, 8, now_ms)  # type: ignore[arg-type]


@pytest.mark.parametrize("nbytes", [-1, 1.5, True])
def test_invalid_size_is_rejected(nbytes: object) -> None:
    with pytest.raises(ValueError, match="nbytes"):
        acked().audio_sent(A, nbytes, 0)  # type: ignore[arg-type]


# -- invariants under any order of events ------------------------------------------------------

KEYS = [A, B, C]
FORMATS = [MULAW_8K, PCM16_24K, AudioFormat(encoding="pcm16", sample_rate=11_025, channels=2)]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 2), st.integers(0, 5000)),
        st.tuples(st.just("done"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("ack"), st.integers(0, 200), st.just(0)),
        st.tuples(st.just("bogus"), st.just(0), st.just(0)),
        st.tuples(st.just("clear"), st.just(0), st.just(0)),
        st.tuples(st.just("response_done"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("wait"), st.integers(0, 400), st.just(0)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(
    ops=operations,
    acks=st.booleans(),
    fmt=st.sampled_from(FORMATS),
    latency=st.sampled_from([0.0, 35.5]),
)
def test_playback_invariants(
    ops: list[tuple[str, int, int]], acks: bool, fmt: AudioFormat, latency: float
) -> None:
    tracker = PlaybackTracker(fmt, acknowledgements=acks, playout_latency_ms=latency)
    now = 0.0
    issued: list[str] = []
    cleared_at_some_point: set[str] = set()
    outstanding: set[str] = set()
    heard_before: dict[PlaybackKey, float] = {}
    ack_calls = 0
    for op, arg, size in ops:
        if op == "send":
            if KEYS[arg] not in {item.key for item in tracker.items(now)}:
                heard_before.pop(KEYS[arg], None)  # a finished item's key starts a new item
            token = tracker.audio_sent(KEYS[arg], size, now)
            assert (token is not None) == (acks and size > 0)
            if token is not None:
                assert token not in issued
                issued.append(token)
                outstanding.add(token)
        elif op == "done":
            token = tracker.audio_done(KEYS[arg], now)
            if token is not None:
                assert acks
                issued.append(token)
                outstanding.add(token)
        elif op == "ack" and issued:
            token = issued[arg % len(issued)]
            ack = tracker.acknowledged(token)
            ack_calls += 1
            if token in cleared_at_some_point:
                # Never counted as played, whatever else happened.
                assert ack.kind in ("cleared", "unknown")
                assert ack.heard_ms is None
            elif token in outstanding:
                assert ack.kind in ("audio", "done")
            else:
                assert ack.kind == "unknown"
            outstanding.discard(token)
        elif op == "bogus":
            assert tracker.acknowledged("not-a-token").kind == "unknown"
            ack_calls += 1
        elif op == "clear":
            snapshot = tracker.clear(now)
            for item in snapshot:
                assert 0 <= item.heard_ms <= item.sent_ms
            cleared_at_some_point |= outstanding
            outstanding.clear()
            heard_before.clear()
        elif op == "response_done":
            tracker.response_done(f"resp-{arg}", now)
        elif op == "wait":
            now += arg
        for item in tracker.items(now):
            assert 0 <= item.heard_ms <= item.sent_ms
            assert item.sent_ms == pytest.approx(item.sent_bytes / fmt.bytes_per_ms)
            # Within a generation, heard time never decreases.
            assert item.heard_ms >= heard_before.get(item.key, 0.0)
            heard_before[item.key] = item.heard_ms
        # Every acknowledgement is classified exactly once; nothing vanishes.
        stats = tracker.stats
        assert stats.tokens_acknowledged + stats.cleared_tokens + stats.unknown_tokens == ack_calls
        assert stats.tokens_issued == len(issued)
