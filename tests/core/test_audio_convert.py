"""AudioConverter: round trips, pass-through, codec-only paths and errors on bad chunks."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicewire.audio import (
    ALAW_8K,
    MULAW_8K,
    PCM16_24K,
    AudioConverter,
    AudioFormat,
    alaw_encode,
    byteswap16,
    mulaw_decode,
    mulaw_encode,
)
from voicewire.errors import AudioFormatError


def tone(rate: int, seconds: float, hz: float = 440, amplitude: int = 10000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * amplitude).astype("<i2").tobytes()


def pcm(data: bytes) -> npt.NDArray[np.float64]:
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def convert_all(converter: AudioConverter, data: bytes, chunk: int) -> bytes:
    out = b"".join(converter.convert(data[i : i + chunk]) for i in range(0, len(data), chunk))
    return out + converter.flush()


@pytest.mark.parametrize("quality", ["QQ", "LQ", "HQ"])
def test_mulaw_8k_to_pcm_24k_and_back(quality: str) -> None:
    original = mulaw_encode(tone(8000, 1.0))
    up = AudioConverter(MULAW_8K, PCM16_24K, quality=quality)  # type: ignore[arg-type]
    down = AudioConverter(PCM16_24K, MULAW_8K, quality=quality)  # type: ignore[arg-type]
    mid = bytearray()
    back = bytearray()
    for i in range(0, len(original), 160):  # 20 ms Twilio frames
        piece = up.convert(original[i : i + 160])
        mid += piece
        back += down.convert(piece)
    tail = up.flush()
    mid += tail
    back += down.convert(tail) + down.flush()

    assert len(mid) == 3 * 2 * len(original)
    assert len(back) == len(original)
    before = pcm(mulaw_decode(original))
    after = pcm(mulaw_decode(bytes(back)))
    # Ignore 20 ms at each end, where the filters ring on the abrupt start and stop.
    inner = slice(160, -160)
    error = np.sqrt(np.mean((after[inner] - before[inner]) ** 2))
    signal = np.sqrt(np.mean(before[inner] ** 2))
    assert error / signal < 0.05
    # The 24 kHz middle is the same tone: its level is the original's.
    mid_rms = np.sqrt(np.mean(pcm(bytes(mid))[480:-480] ** 2))
    assert mid_rms == pytest.approx(signal, rel=0.03)


@pytest.mark.parametrize("fmt", [PCM16_24K, MULAW_8K, ALAW_8K])
def test_identical_formats_pass_through_without_copy(fmt: AudioFormat) -> None:
    converter = AudioConverter(fmt, AudioFormat(encoding=fmt.encoding, sample_rate=fmt.sample_rate))
    assert converter.is_passthrough
    chunk = bytes(range(256)) * 2
    assert converter.convert(chunk) is chunk
    assert converter.flush() == b""


def test_codec_only_conversion_is_exact_and_immediate() -> None:
    converter = AudioConverter(MULAW_8K, ALAW_8K)
    assert not converter.is_passthrough
    codes = bytes(range(256))
    assert converter.convert(codes) == alaw_encode(mulaw_decode(codes))
    assert converter.flush() == b""


def test_pcm_to_mulaw_same_rate() -> None:
    src = AudioFormat(encoding="pcm16", sample_rate=8000)
    data = tone(8000, 0.1)
    assert AudioConverter(src, MULAW_8K).convert(data) == mulaw_encode(data)


def test_downsample_pcm_24k_to_mulaw_8k_length() -> None:
    data = tone(24000, 0.5)
    out = convert_all(AudioConverter(PCM16_24K, MULAW_8K), data, 960)
    assert len(out) == len(data) // 2 // 3


@settings(max_examples=25, deadline=None)
@given(frames=st.lists(st.integers(0, 400), min_size=1, max_size=10))
def test_ragged_chunks_give_the_same_audio(frames: list[int]) -> None:
    data = mulaw_encode(tone(8000, 0.25))
    reference = pcm(convert_all(AudioConverter(MULAW_8K, PCM16_24K), data, 160))
    converter = AudioConverter(MULAW_8K, PCM16_24K)
    sizes = frames if any(frames) else [*frames, 1]
    out = bytearray()
    pos = 0
    i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out += converter.convert(data[pos : pos + size])
        pos += size
        i += 1
    out += converter.flush()
    got = pcm(bytes(out))
    assert len(got) == len(reference)
    assert np.abs(got - reference).max() <= 4


@pytest.mark.parametrize(
    ("src", "size"),
    [
        (PCM16_24K, 1),
        (PCM16_24K, 961),
        (AudioFormat(encoding="pcm16", sample_rate=16000, channels=2), 6),
        (AudioFormat(encoding="mulaw", sample_rate=8000, channels=2), 3),
    ],
)
def test_partial_frames_are_an_error(src: AudioFormat, size: int) -> None:
    dst = AudioFormat(encoding="alaw", sample_rate=8000, channels=src.channels)
    converter = AudioConverter(src, dst)
    with pytest.raises(AudioFormatError, match=f"{size} bytes"):
        converter.convert(bytes(size))


def test_partial_frames_are_an_error_in_passthrough() -> None:
    converter = AudioConverter(PCM16_24K, PCM16_24K)
    with pytest.raises(AudioFormatError, match="whole frames"):
        converter.convert(b"\x00\x00\x00")


def test_channel_count_change_is_refused() -> None:
    stereo = AudioFormat(encoding="pcm16", sample_rate=24000, channels=2)
    with pytest.raises(AudioFormatError, match="channels"):
        AudioConverter(stereo, PCM16_24K)


def test_stereo_conversion_keeps_channels() -> None:
    src = AudioFormat(encoding="pcm16", sample_rate=8000, channels=2)
    dst = AudioFormat(encoding="mulaw", sample_rate=16000, channels=2)
    left = np.frombuffer(tone(8000, 0.5, hz=300), dtype="<i2")
    silent_right = np.zeros_like(left)
    data = np.stack([left, silent_right], axis=1).astype("<i2").tobytes()
    out = pcm(mulaw_decode(convert_all(AudioConverter(src, dst), data, 640))).reshape(-1, 2)
    assert out.shape == (len(left) * 2, 2)
    assert np.abs(out[:, 0]).max() > 9000
    assert np.abs(out[:, 1]).max() < 100


def test_formats_are_exposed() -> None:
    converter = AudioConverter(MULAW_8K, PCM16_24K)
    assert (converter.src, converter.dst) == (MULAW_8K, PCM16_24K)


def test_big_endian_pcm_is_byte_swapped_at_the_same_rate() -> None:
    le = AudioFormat(encoding="pcm16", sample_rate=16000)
    be = AudioFormat(encoding="pcm16be", sample_rate=16000)
    samples = tone(16000, 0.1)
    wire = np.frombuffer(samples, dtype="<i2").astype(">i2").tobytes()  # numpy's own swap
    assert AudioConverter(be, le).convert(wire) == samples
    assert AudioConverter(le, be).convert(samples) == wire
    assert AudioConverter(be, be).is_passthrough


def test_big_endian_pcm_16k_to_pcm_24k_and_back_keeps_the_tone() -> None:
    be = AudioFormat(encoding="pcm16be", sample_rate=16000)
    wire = np.frombuffer(tone(16000, 0.5), dtype="<i2").astype(">i2").tobytes()
    up = convert_all(AudioConverter(be, PCM16_24K), wire, 640)
    assert len(up) == len(wire) * 3 // 2
    # Read as little-endian, the model hears the tone (a wrong byte order would be loud noise).
    spectrum = np.abs(np.fft.rfft(pcm(up)))
    assert np.argmax(spectrum) * 24000 / len(pcm(up)) == pytest.approx(440, abs=5)
    down = convert_all(AudioConverter(PCM16_24K, be), up, 960)
    back = np.frombuffer(down, dtype=">i2").astype(np.float64)
    original = np.frombuffer(wire, dtype=">i2").astype(np.float64)
    middle = slice(800, 7200)  # away from the resampler's edges
    assert np.corrcoef(back[middle], original[middle])[0, 1] > 0.99


def test_byteswap16_swaps_every_sample_and_refuses_half_a_sample() -> None:
    assert byteswap16(b"\x01\x02\x03\x04") == b"\x02\x01\x04\x03"
    assert byteswap16(b"") == b""
    with pytest.raises(ValueError, match="pairs of bytes"):
        byteswap16(b"\x01\x02\x03")
