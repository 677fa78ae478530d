"""G.711 codecs: byte-exact against audioop on every input, and clear errors on bad input."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicewire.audio import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode
from voicewire.errors import AudioFormatError


def _load_audioop() -> ModuleType:
    # stdlib up to 3.12 (deprecated since 3.11), the audioop-lts port on 3.13+.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    return audioop


audioop = _load_audioop()

ALL_PCM16 = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))

Codec = Callable[[bytes], bytes]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (mulaw_encode, lambda b: audioop.lin2ulaw(b, 2)),
        (alaw_encode, lambda b: audioop.lin2alaw(b, 2)),
    ],
    ids=["mulaw", "alaw"],
)
def test_encode_matches_audioop_on_every_sample(ours: Codec, theirs: Codec) -> None:
    expected = theirs(ALL_PCM16)
    got = ours(ALL_PCM16)
    assert len(got) == 65536
    if got != expected:
        first = next(i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b)
        pytest.fail(
            f"first mismatch at sample {first - 32768}: {got[first]:#x} != {expected[first]:#x}"
        )


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (mulaw_decode, lambda b: audioop.ulaw2lin(b, 2)),
        (alaw_decode, lambda b: audioop.alaw2lin(b, 2)),
    ],
    ids=["mulaw", "alaw"],
)
def test_decode_matches_audioop_on_every_code(ours: Codec, theirs: Codec) -> None:
    assert ours(ALL_CODES) == theirs(ALL_CODES)
    assert len(ours(ALL_CODES)) == 512


def _pcm(*samples: int) -> bytes:
    return np.array(samples, dtype="<i2").tobytes()


def test_mulaw_known_values() -> None:
    assert mulaw_encode(_pcm(0, 32767, -32768)) == b"\xff\x80\x00"
    # audioop's 14-bit formulation: small negatives land one step away from the 16-bit formula.
    assert mulaw_encode(_pcm(-1, -2, -3)) == b"\x7e\x7e\x7e"
    assert mulaw_decode(b"\xff\x7f") == _pcm(0, 0)
    decoded = np.frombuffer(mulaw_decode(ALL_CODES), dtype="<i2")
    assert (decoded.min(), decoded.max()) == (-32124, 32124)


def test_alaw_known_values() -> None:
    assert alaw_decode(b"\xd5\x55") == _pcm(8, -8)
    decoded = np.frombuffer(alaw_decode(ALL_CODES), dtype="<i2")
    assert (decoded.min(), decoded.max()) == (-32256, 32256)


@pytest.mark.parametrize("encode", [mulaw_encode, alaw_encode], ids=["mulaw", "alaw"])
@pytest.mark.parametrize("size", [1, 3, 161])
def test_odd_length_pcm_is_rejected(encode: Codec, size: int) -> None:
    with pytest.raises(AudioFormatError, match=f"{size} bytes"):
        encode(bytes(size))


@pytest.mark.parametrize(
    "codec", [mulaw_encode, mulaw_decode, alaw_encode, alaw_decode], ids=lambda f: f.__name__
)
def test_empty_input(codec: Codec) -> None:
    assert codec(b"") == b""


def test_accepts_other_bytes_like_objects() -> None:
    pcm = _pcm(100, -100, 30000)
    assert mulaw_encode(bytearray(pcm)) == mulaw_encode(pcm)  # type: ignore[arg-type]
    assert alaw_encode(memoryview(pcm)) == alaw_encode(pcm)  # type: ignore[arg-type]
    assert mulaw_decode(bytearray(b"\x00\x80")) == mulaw_decode(b"\x00\x80")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("encode", "decode"), [(mulaw_encode, mulaw_decode), (alaw_encode, alaw_decode)]
)
def test_decoded_values_are_fixed_points(encode: Codec, decode: Codec) -> None:
    # Re-encoding a decoded value must give a code that decodes to the same value.
    decoded = decode(ALL_CODES)
    assert decode(encode(decoded)) == decoded


@given(st.binary(max_size=512).filter(lambda b: len(b) % 2 == 0))
def test_random_buffers_match_audioop(pcm: bytes) -> None:
    assert mulaw_encode(pcm) == audioop.lin2ulaw(pcm, 2)
    assert alaw_encode(pcm) == audioop.lin2alaw(pcm, 2)
    assert mulaw_decode(pcm) == audioop.ulaw2lin(pcm, 2)
    assert alaw_decode(pcm) == audioop.alaw2lin(pcm, 2)


def test_outputs_are_bytes() -> None:
    assert type(mulaw_encode(_pcm(1))) is bytes
    assert type(alaw_decode(b"\x01")) is bytes
