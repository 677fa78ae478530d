"""Framer: fixed 160-byte frames out of arbitrary chunks, nothing lost, tail flushed or padded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicewire.audio.formats import MULAW_8K
from voicewire_twilio.protocol import FRAME_BYTES, MULAW_SILENCE, Framer


def test_frame_is_20_ms_of_mulaw() -> None:
    assert FRAME_BYTES == 160
    assert MULAW_8K.duration_ms(FRAME_BYTES) == 20
    assert MULAW_SILENCE == 0xFF
    assert MULAW_8K.silence(20) == bytes([MULAW_SILENCE]) * FRAME_BYTES


def test_small_chunks_are_held_until_a_frame_is_complete() -> None:
    framer = Framer()
    assert framer.push(b"a" * 100) == []
    assert framer.pending == 100
    frames = framer.push(b"b" * 100)
    assert frames == [b"a" * 100 + b"b" * 60]
    assert framer.pending == 40


def test_a_large_chunk_yields_several_frames() -> None:
    framer = Framer()
    data = bytes(range(256)) * 3  # 768 bytes = 4 frames + 128
    frames = framer.push(data)
    assert [len(f) for f in frames] == [160] * 4
    assert b"".join(frames) == data[:640]
    assert framer.pending == 128


def test_empty_push_is_harmless() -> None:
    framer = Framer()
    assert framer.push(b"") == []
    assert framer.flush() is None


def test_flush_without_pad_returns_the_tail() -> None:
    framer = Framer()
    framer.push(b"\x01" * 170)
    assert framer.flush() == b"\x01" * 10
    assert framer.pending == 0
    assert framer.flush() is None


def test_flush_with_pad_fills_with_silence() -> None:
    framer = Framer()
    framer.push(b"\x01" * 10)
    assert framer.flush(pad=True) == b"\x01" * 10 + b"\xff" * 150
    assert framer.flush(pad=True) is None


def test_flush_when_aligned_returns_nothing() -> None:
    framer = Framer()
    assert len(framer.push(b"\x00" * 320)) == 2
    assert framer.flush(pad=True) is None


def test_reset_discards_the_tail() -> None:
    framer = Framer()
    framer.push(b"\x01" * 170)
    assert framer.reset() == 10
    assert framer.pending == 0
    assert framer.push(b"\x02" * 160) == [b"\x02" * 160]


def test_accepts_bytes_like() -> None:
    framer = Framer(frame_bytes=2)
    assert framer.push(bytearray(b"ab")) == [b"ab"]
    assert framer.push(memoryview(b"cd")) == [b"cd"]


def test_refuses_text() -> None:
    with pytest.raises(TypeError, match="bytes"):
        Framer().push("\xff" * 160)  # type: ignore[arg-type]


def test_custom_frame_size_and_pad_byte() -> None:
    framer = Framer(frame_bytes=4, pad_byte=0xD5)
    assert framer.frame_bytes == 4
    assert framer.push(b"abcdef") == [b"abcd"]
    assert framer.flush(pad=True) == b"ef\xd5\xd5"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frame_bytes": 0}, "frame_bytes"),
        ({"frame_bytes": True}, "frame_bytes"),
        ({"frame_bytes": 1.5}, "frame_bytes"),
        ({"pad_byte": 256}, "pad_byte"),
        ({"pad_byte": -1}, "pad_byte"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Framer(**kwargs)  # type: ignore[arg-type]


def test_repr() -> None:
    framer = Framer()
    framer.push(b"\x00" * 5)
    assert repr(framer) == "Framer(frame_bytes=160, pending=5)"


chunks = st.lists(st.binary(max_size=700), max_size=30)


@given(chunks, st.booleans())
def test_invariants(parts: list[bytes], pad: bool) -> None:
    framer = Framer()
    frames: list[bytes] = []
    for part in parts:
        frames.extend(framer.push(part))
        assert 0 <= framer.pending < FRAME_BYTES
    assert all(len(frame) == FRAME_BYTES for frame in frames)
    tail = framer.flush(pad=pad)
    data = b"".join(parts)
    if len(data) % FRAME_BYTES == 0:
        assert tail is None
    else:
        assert tail is not None
        assert len(tail) == (FRAME_BYTES if pad else len(data) % FRAME_BYTES)
        frames.append(tail)
    out = b"".join(frames)
    assert out[: len(data)] == data
    assert out[len(data) :] == b"\xff" * (len(out) - len(data))
    if not pad:
        assert out == data


@given(chunks, st.integers(1, 400))
def test_any_frame_size_keeps_order(parts: list[bytes], size: int) -> None:
    framer = Framer(frame_bytes=size)
    out = b"".join(frame for part in parts for frame in framer.push(part))
    out += framer.flush() or b""
    assert out == b"".join(parts)
