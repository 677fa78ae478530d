"""Playback estimates and the truncation formula: worked examples and invariants."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicewire.audio.formats import MULAW_8K, PCM16_24K, AudioFormat
from voicewire.events import Truncation
from voicewire_openai_ws.protocol.playback import PlaybackTracker, audio_end_ms


@pytest.mark.parametrize(
    ("elapsed", "received", "expected"),
    [
        (1840.0, 5000.0, 1840),  # still playing: what elapsed was heard
        (9000.0, 5000.0, 5000),  # playing ended: never more than received
        (20.9, 100.0, 20),  # floor, not round
        (100.0, 20.125, 20),  # 161 bytes of mu-law
        (-5.0, 100.0, 0),  # a clock that went backwards: nothing heard
        (0.0, 0.0, 0),
    ],
)
def test_worked_examples(elapsed: float, received: float, expected: int) -> None:
    result = audio_end_ms(elapsed, received)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        audio_end_ms(bad, 10.0)
    with pytest.raises(ValueError, match="finite"):
        audio_end_ms(10.0, bad)


finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)
received_ms = st.floats(min_value=0, max_value=1e9, allow_nan=False)


@given(elapsed=finite, received=received_ms)
def test_invariants(elapsed: float, received: float) -> None:
    end = audio_end_ms(elapsed, received)
    assert isinstance(end, int)
    assert 0 <= end <= received
    assert end <= max(elapsed, 0)
    assert end > min(elapsed, received) - 1


@given(
    chunks=st.lists(st.integers(min_value=0, max_value=9600), min_size=1, max_size=30),
    elapsed=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    fmt=st.sampled_from([PCM16_24K, MULAW_8K, AudioFormat(encoding="pcm16", sample_rate=16000)]),
)
def test_tracker_truncation_never_exceeds_received_audio(
    chunks: list[int], elapsed: float, fmt: AudioFormat
) -> None:
    tracker = PlaybackTracker(fmt)
    for nbytes in chunks:
        tracker.on_audio(
            item_id="a", content_index=0, response_id="r", nbytes=nbytes, now_ms=1000.0
        )
    truncation = tracker.interrupt(1000.0 + elapsed)
    assert truncation is not None
    # Summed chunk by chunk, as the tracker does, so float rounding is the same.
    received = sum(fmt.duration_ms(nbytes) for nbytes in chunks)
    assert 0 <= truncation.audio_end_ms <= received
    assert truncation.audio_end_ms == math.floor(min(elapsed, received))


def test_duration_uses_the_output_format() -> None:
    pcm = PlaybackTracker()
    assert (
        pcm.on_audio(
            item_id="a", content_index=0, response_id=None, nbytes=4800, now_ms=0
        ).received_ms
        == 100
    )
    ulaw = PlaybackTracker(MULAW_8K)
    assert (
        ulaw.on_audio(
            item_id="a", content_index=0, response_id=None, nbytes=800, now_ms=0
        ).received_ms
        == 100
    )


def test_first_audio_time_is_the_first_chunk() -> None:
    tracker = PlaybackTracker(MULAW_8K)
    tracker.on_audio(item_id="a", content_index=0, response_id="r", nbytes=800, now_ms=1000)
    current = tracker.on_audio(
        item_id="a", content_index=0, response_id="r", nbytes=800, now_ms=1030
    )
    assert current.first_audio_ms == 1000
    assert current.received_ms == 200
    assert tracker.interrupt(1150) == Truncation(item_id="a", content_index=0, audio_end_ms=150)


def test_a_new_item_starts_a_new_estimate() -> None:
    tracker = PlaybackTracker(MULAW_8K)
    tracker.on_audio(item_id="a", content_index=0, response_id="r", nbytes=8000, now_ms=0)
    current = tracker.on_audio(item_id="b", content_index=0, response_id="r", nbytes=80, now_ms=500)
    assert (current.item_id, current.first_audio_ms, current.received_ms) == ("b", 500, 10)
    other_part = tracker.on_audio(
        item_id="b", content_index=1, response_id="r", nbytes=8, now_ms=600
    )
    assert (other_part.content_index, other_part.received_ms) == (1, 1)


def test_interrupt_without_audio_truncates_nothing() -> None:
    assert PlaybackTracker().interrupt(0) is None


def test_interrupt_clears_the_estimate() -> None:
    tracker = PlaybackTracker()
    tracker.on_audio(item_id="a", content_index=0, response_id=None, nbytes=4800, now_ms=0)
    assert tracker.interrupt(50) is not None
    assert tracker.current is None
    assert tracker.interrupt(60) is None


def test_estimate_outlives_audio_done_until_heard() -> None:
    tracker = PlaybackTracker(MULAW_8K)
    tracker.on_audio(item_id="a", content_index=0, response_id="r", nbytes=8000, now_ms=0)  # 1 s
    tracker.on_audio_done(item_id="a", content_index=0)
    assert tracker.current is not None
    assert tracker.current.done
    assert tracker.interrupt(400) == Truncation(item_id="a", content_index=0, audio_end_ms=400)


def test_fully_heard_audio_is_not_truncated() -> None:
    tracker = PlaybackTracker(MULAW_8K)
    tracker.on_audio(item_id="a", content_index=0, response_id="r", nbytes=8000, now_ms=0)
    tracker.on_audio_done(item_id="a", content_index=0)
    assert tracker.interrupt(1000) is None


def test_streaming_slower_than_real_time_truncates_at_received() -> None:
    tracker = PlaybackTracker(MULAW_8K)
    tracker.on_audio(item_id="a", content_index=0, response_id="r", nbytes=800, now_ms=0)
    assert tracker.interrupt(5000) == Truncation(item_id="a", content_index=0, audio_end_ms=100)


def test_audio_done_of_another_item_is_ignored() -> None:
    tracker = PlaybackTracker()
    tracker.on_audio(item_id="a", content_index=0, response_id=None, nbytes=48, now_ms=0)
    tracker.on_audio_done(item_id="b", content_index=0)
    assert tracker.current is not None
    assert not tracker.current.done


def test_reset() -> None:
    tracker = PlaybackTracker()
    tracker.on_audio(item_id="a", content_index=0, response_id=None, nbytes=48, now_ms=0)
    tracker.reset()
    assert tracker.current is None
