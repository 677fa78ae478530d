"""InputPadder: timestamp-gap fills, inactivity fills during speech, validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicewire.audio.formats import ALAW_8K, MULAW_8K, PCM16_24K, AudioFormat
from voicewire.bridge import InputPadder
from voicewire.errors import ConfigError

FRAME = 160  # 20 ms of 8 kHz mu-law


def padder(
    fmt: AudioFormat = MULAW_8K,
    *,
    inactivity_timeout_ms: float | None = 750,
    max_gap_fill_ms: float = 10_000,
) -> InputPadder:
    return InputPadder(
        fmt, inactivity_timeout_ms=inactivity_timeout_ms, max_gap_fill_ms=max_gap_fill_ms
    )


# -- timestamp gaps ----------------------------------------------------------------------------


def test_contiguous_frames_need_no_fill() -> None:
    p = padder()
    for i in range(5):
        assert p.audio(FRAME, timestamp_ms=20 * i, now_ms=20 * i) == b""
    assert p.expected_timestamp_ms == 100


def test_gap_between_frames_is_filled_with_silence() -> None:
    p = padder()
    p.audio(FRAME, timestamp_ms=0, now_ms=0)
    p.audio(FRAME, timestamp_ms=20, now_ms=20)
    fill = p.audio(FRAME, timestamp_ms=100, now_ms=100)  # 60 ms missing
    assert fill == b"\xff" * 480
    assert (p.stats.gap_fills, p.stats.gap_fill_bytes) == (1, 480)


def test_gap_fill_is_capped() -> None:
    p = padder()
    p.audio(FRAME, timestamp_ms=0, now_ms=0)
    fill = p.audio(FRAME, timestamp_ms=60_020, now_ms=1)
    assert len(fill) == 10_000 * 8
    q = padder(max_gap_fill_ms=100)
    q.audio(FRAME, timestamp_ms=0, now_ms=0)
    assert len(q.audio(FRAME, timestamp_ms=1020, now_ms=1)) == 800


def test_zero_cap_disables_filling() -> None:
    p = padder(max_gap_fill_ms=0)
    p.audio(FRAME, timestamp_ms=0, now_ms=0)
    assert p.audio(FRAME, timestamp_ms=500, now_ms=1) == b""


def test_fractional_gap_is_rounded_down_to_whole_milliseconds() -> None:
    p = padder()
    p.audio(161, timestamp_ms=0, now_ms=0)  # ends at 20.125
    assert p.audio(FRAME, timestamp_ms=21, now_ms=21) == b""  # 0.875 ms: nothing
    assert len(p.audio(FRAME, timestamp_ms=43.9, now_ms=43)) == 8 * 2  # 2.9 ms -> 2 ms


def test_missing_timestamp_forgets_the_timeline() -> None:
    p = padder()
    p.audio(FRAME, timestamp_ms=0, now_ms=0)
    assert p.audio(FRAME, timestamp_ms=None, now_ms=20) == b""
    assert p.expected_timestamp_ms is None
    assert p.audio(FRAME, timestamp_ms=5000, now_ms=40) == b""  # no reference to measure from
    assert len(p.audio(FRAME, timestamp_ms=5040, now_ms=60)) == 20 * 8


def test_timeline_moving_backwards_starts_a_new_one_without_fill() -> None:
    p = padder()
    p.audio(FRAME, timestamp_ms=1000, now_ms=0)
    assert p.audio(FRAME, timestamp_ms=0, now_ms=20) == b""
    assert p.stats.timeline_resets == 1
    assert p.expected_timestamp_ms == 20
    assert len(p.audio(FRAME, timestamp_ms=40, now_ms=40)) == 20 * 8


def test_overlapping_frame_does_not_fake_a_gap() -> None:
    p = padder()
    p.audio(FRAME, timestamp_ms=0, now_ms=0)
    p.audio(FRAME, timestamp_ms=20, now_ms=20)
    assert p.audio(80, timestamp_ms=20, now_ms=21) == b""  # a repeat of half a frame
    assert p.audio(FRAME, timestamp_ms=40, now_ms=40) == b""


@pytest.mark.parametrize(
    ("fmt", "frame"),
    [
        (PCM16_24K, b"\x00\x00"),
        (ALAW_8K, b"\xd5"),
        (AudioFormat(encoding="pcm16", sample_rate=16_000, channels=2), b"\x00" * 4),
    ],
)
def test_silence_is_whole_frames_of_the_input_format(fmt: AudioFormat, frame: bytes) -> None:
    p = padder(fmt)
    p.audio(fmt.nbytes_for_ms(20), timestamp_ms=0, now_ms=0)
    fill = p.audio(fmt.nbytes_for_ms(20), timestamp_ms=50, now_ms=50)
    assert fill == frame * (len(fill) // len(frame))
    assert len(fill) == fmt.nbytes_for_ms(30)


# -- inactivity during speech ------------------------------------------------------------------


def test_no_deadline_before_speech_or_before_audio() -> None:
    p = padder()
    assert p.next_deadline_ms() is None
    p.speech_started()
    assert p.next_deadline_ms() is None  # nothing arrived yet
    p.audio(FRAME, timestamp_ms=0, now_ms=100)
    assert p.next_deadline_ms() == 850
    p.speech_stopped()
    assert p.next_deadline_ms() is None
    assert p.on_inactivity(10_000) == b""


def test_inactivity_fill_is_due_at_the_deadline_and_repeats_in_real_time() -> None:
    p = padder()
    p.speech_started()
    p.audio(FRAME, timestamp_ms=0, now_ms=100)
    assert p.on_inactivity(849) == b""  # early: nothing, nothing changes
    assert p.next_deadline_ms() == 850
    assert p.on_inactivity(850) == b"\xff" * 8000
    assert p.next_deadline_ms() == 1850
    assert p.on_inactivity(1000) == b""
    assert len(p.on_inactivity(1850)) == 8000
    assert (p.stats.inactivity_fills, p.stats.inactivity_fill_bytes) == (2, 16_000)


def test_inactivity_fill_stops_at_the_cap() -> None:
    p = padder(max_gap_fill_ms=2500)
    p.speech_started()
    p.audio(FRAME, timestamp_ms=0, now_ms=0)
    sizes = []
    now = 0.0
    while (deadline := p.next_deadline_ms()) is not None:
        now = deadline
        sizes.append(len(p.on_inactivity(now)))
    assert sizes == [8000, 8000, 4000]
    assert p.on_inactivity(now + 10_000) == b""


def test_speech_starting_late_fills_at_once() -> None:
    p = padder()
    p.audio(FRAME, timestamp_ms=0, now_ms=0)
    p.speech_started()  # the model noticed speech long after the last frame
    assert p.next_deadline_ms() == 750
    assert len(p.on_inactivity(5000)) == 8000


def test_new_audio_rearms_the_timer() -> None:
    p = padder(inactivity_timeout_ms=300)
    p.speech_started()
    p.audio(FRAME, timestamp_ms=0, now_ms=0)
    p.audio(FRAME, timestamp_ms=20, now_ms=200)
    assert p.on_inactivity(300) == b""
    assert p.next_deadline_ms() == 500


def test_inactivity_fill_counts_toward_the_next_gap() -> None:
    p = padder()
    p.speech_started()
    p.audio(FRAME, timestamp_ms=0, now_ms=0)
    assert len(p.on_inactivity(750)) == 8000  # 1000 ms
    # The caller's next frame shows 1500 ms missing: only the other 500 ms are added.
    assert len(p.audio(FRAME, timestamp_ms=1520, now_ms=1520)) == 500 * 8
    p.on_inactivity(1520 + 750)
    # A gap shorter than what was already inserted adds nothing.
    assert p.audio(FRAME, timestamp_ms=2400, now_ms=2400) == b""


def test_disabled_inactivity_padding_still_fills_gaps() -> None:
    p = padder(inactivity_timeout_ms=None)
    p.speech_started()
    p.audio(FRAME, timestamp_ms=0, now_ms=0)
    assert p.next_deadline_ms() is None
    assert p.on_inactivity(100_000) == b""
    assert len(p.audio(FRAME, timestamp_ms=60, now_ms=60)) == 320


def test_reset_forgets_timeline_and_speech() -> None:
    p = padder()
    p.speech_started()
    p.audio(FRAME, timestamp_ms=0, now_ms=0)
    p.reset()
    assert not p.speech_active
    assert p.next_deadline_ms() is None
    assert p.audio(FRAME, timestamp_ms=900, now_ms=900) == b""


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("inactivity_timeout_ms", 0),
        ("inactivity_timeout_ms", -5),
        ("inactivity_timeout_ms", float("inf")),
        ("inactivity_timeout_ms", float("nan")),
        ("inactivity_timeout_ms", True),
        ("inactivity_timeout_ms", "750"),
        ("max_gap_fill_ms", -1),
        ("max_gap_fill_ms", float("inf")),
        ("inactivity_fill_ms", 0),
        ("inactivity_fill_ms", None),
    ],
)
def test_invalid_parameters_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        InputPadder(MULAW_8K, **{field: value})  # type: ignore[arg-type]
    assert info.value.field == field
    assert field in str(info.value)


def test_input_format_must_be_an_audio_format() -> None:
    with pytest.raises(ConfigError) as info:
        InputPadder("audio/x-mulaw")  # type: ignore[arg-type]
    assert info.value.field == "input_format"


@pytest.mark.parametrize("timestamp", [float("nan"), "20", True])
def test_invalid_timestamp_is_rejected(timestamp: object) -> None:
    with pytest.raises(ValueError, match="timestamp_ms"):
        padder().audio(FRAME, timestamp, now_ms=0)  # type: ignore[arg-type]


# -- invariants --------------------------------------------------------------------------------

events = st.lists(
    st.one_of(
        st.tuples(
            st.just("audio"),
            st.integers(0, 4000),
            st.one_of(st.none(), st.floats(0, 100_000, allow_nan=False)),
        ),
        st.tuples(st.just("speech"), st.booleans(), st.none()),
        st.tuples(st.just("wait"), st.integers(0, 3000), st.none()),
        st.tuples(st.just("tick"), st.just(0), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    ops=events,
    fmt=st.sampled_from([MULAW_8K, PCM16_24K, AudioFormat(encoding="alaw", sample_rate=11_025)]),
    cap=st.sampled_from([0.0, 333.3, 10_000.0]),
    timeout=st.sampled_from([None, 1.0, 750.0]),
)
def test_padding_invariants(
    ops: list[tuple[str, int | bool, float | None]],
    fmt: AudioFormat,
    cap: float,
    timeout: float | None,
) -> None:
    p = InputPadder(fmt, max_gap_fill_ms=cap, inactivity_timeout_ms=timeout)
    silence_byte = fmt.silence(1)[:1]
    now = 0.0
    since_last_chunk = 0  # silence bytes inserted since the last caller chunk
    for op, value, ts in ops:
        if op == "audio":
            nbytes = int(value) - int(value) % fmt.bytes_per_frame
            fill = p.audio(nbytes, ts, now)
            # Gap fill and inactivity fills together never exceed the cap.
            assert since_last_chunk + len(fill) <= fmt.nbytes_for_ms(cap)
            since_last_chunk = 0
        elif op == "speech":
            p.speech_started() if value else p.speech_stopped()
            continue
        elif op == "wait":
            now += int(value)
            continue
        else:
            deadline = p.next_deadline_ms()
            fill = p.on_inactivity(now)
            if deadline is None or now < deadline:
                assert fill == b""
            else:
                assert timeout is not None
                assert p.speech_active
            since_last_chunk += len(fill)
            assert since_last_chunk <= fmt.nbytes_for_ms(cap)
        assert len(fill) % fmt.bytes_per_frame == 0
        assert fill == silence_byte * len(fill)
        deadline = p.next_deadline_ms()
        if deadline is not None:
            assert timeout is not None
            assert p.speech_active
