"""Streaming resampler: matches one-shot soxr, no clicks at joins, exact totals, clear errors."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from voicewire.audio import Resampler
from voicewire.audio.resample import ResampleQuality
from voicewire.errors import AudioFormatError, ConfigError

AMPLITUDE = 12000
TONE_HZ = 440


def sine(rate: int, seconds: float, hz: float = TONE_HZ) -> npt.NDArray[np.int16]:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * AMPLITUDE).astype("<i2")


def run_chunked(resampler: Resampler, data: bytes, sizes: list[int]) -> bytes:
    """Feed ``data`` in pieces of the given byte sizes (cycled), then flush."""
    out = bytearray()
    pos = 0
    i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out += resampler.process(data[pos : pos + size])
        pos += size
        i += 1
    out += resampler.flush()
    return bytes(out)


def as_samples(data: bytes) -> npt.NDArray[np.int64]:
    return np.frombuffer(data, dtype="<i2").astype(np.int64)


RATE_PAIRS = [(8000, 24000), (24000, 8000), (16000, 24000), (24000, 16000), (16000, 44100)]


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
@pytest.mark.parametrize("quality", ["QQ", "LQ", "HQ"])
def test_chunked_matches_one_shot(in_rate: int, out_rate: int, quality: ResampleQuality) -> None:
    x = sine(in_rate, 1.0)
    expected = soxr.resample(x, in_rate, out_rate, quality=quality).astype(np.int64)
    twenty_ms = in_rate // 50 * 2
    got = as_samples(
        run_chunked(Resampler(in_rate, out_rate, quality=quality), x.tobytes(), [twenty_ms])
    )
    assert abs(len(got) - len(expected)) <= 2
    n = min(len(got), len(expected))
    assert np.abs(got[:n] - expected[:n]).max() <= 4


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
@pytest.mark.parametrize("quality", ["QQ", "LQ", "MQ", "HQ", "VHQ"])
def test_no_clicks_at_chunk_joins(in_rate: int, out_rate: int, quality: ResampleQuality) -> None:
    x = sine(in_rate, 1.0)
    # Ragged sizes put joins everywhere, including single-sample and empty chunks.
    got = as_samples(
        run_chunked(
            Resampler(in_rate, out_rate, quality=quality), x.tobytes(), [320, 2, 0, 998, 46]
        )
    )
    # A sine's largest step between samples is A * 2*pi*f / fs; a gap or repeat at a join would
    # jump by up to 2A. The first and last 20 ms are left out: the filter rings where the tone
    # starts and stops abruptly, chunked or not.
    bound = AMPLITUDE * 2 * math.pi * TONE_HZ / out_rate
    edge = out_rate // 50
    steps = np.abs(np.diff(got[edge:-edge]))
    assert steps.max() <= bound * 1.02 + 2


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_total_length_after_flush(in_rate: int, out_rate: int) -> None:
    n_in = 12345
    data = sine(in_rate, n_in / in_rate).tobytes()
    got = run_chunked(Resampler(in_rate, out_rate), data, [318])
    assert len(got) % 2 == 0
    assert abs(len(got) // 2 - n_in * out_rate / in_rate) <= 2


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 700), min_size=1, max_size=12))
def test_any_chunking_gives_the_same_audio(sizes: list[int]) -> None:
    x = sine(8000, 0.3)
    reference = as_samples(run_chunked(Resampler(8000, 24000), x.tobytes(), [320]))
    if not any(sizes):
        sizes = [*sizes, 1]
    got = as_samples(run_chunked(Resampler(8000, 24000), x.tobytes(), [2 * s for s in sizes]))
    assert len(got) == len(reference)
    assert np.abs(got - reference).max() <= 4


def test_output_varies_per_chunk_but_never_splits_samples() -> None:
    resampler = Resampler(8000, 24000, quality="HQ")
    x = sine(8000, 0.5).tobytes()
    sizes = [len(resampler.process(x[i : i + 320])) for i in range(0, len(x), 320)]
    assert all(s % 2 == 0 for s in sizes)
    assert 0 in sizes  # HQ holds audio back, then releases it in bursts


def test_identity_passes_chunks_through() -> None:
    resampler = Resampler(16000, 16000)
    assert resampler.is_identity
    chunk = sine(16000, 0.02).tobytes()
    assert resampler.process(chunk) is chunk
    assert resampler.flush() == b""


def test_flush_starts_a_fresh_stream() -> None:
    resampler = Resampler(8000, 24000)
    data = sine(8000, 0.2).tobytes()
    first = as_samples(run_chunked(resampler, data, [320]))
    second = as_samples(run_chunked(resampler, data, [320]))
    assert len(first) == len(second) == 3 * len(data) // 2
    # Not bit-identical: soxr dithers its int16 output, which moves the last bit or two.
    assert np.abs(first - second).max() <= 4
    assert np.abs(first).max() > AMPLITUDE * 0.9


def test_multichannel_keeps_channels_apart() -> None:
    left = sine(8000, 0.5, hz=300)
    right = sine(8000, 0.5, hz=1000)
    stereo = np.stack([left, right], axis=1).astype("<i2")
    resampler = Resampler(8000, 24000, channels=2)
    got = as_samples(run_chunked(resampler, stereo.tobytes(), [640, 4, 1000])).reshape(-1, 2)
    expected = soxr.resample(stereo, 8000, 24000, quality="LQ").astype(np.int64)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 4


@pytest.mark.parametrize(("channels", "size"), [(1, 1), (1, 321), (2, 2), (2, 642)])
def test_partial_frames_are_rejected(channels: int, size: int) -> None:
    resampler = Resampler(8000, 24000, channels=channels)
    with pytest.raises(AudioFormatError, match=f"{size} bytes"):
        resampler.process(bytes(size))


def test_partial_frames_are_rejected_even_for_identity() -> None:
    with pytest.raises(AudioFormatError):
        Resampler(8000, 8000).process(b"\x00")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"in_rate": 500, "out_rate": 8000}, "in_rate"),
        ({"in_rate": 8000, "out_rate": 8000.0}, "out_rate"),
        ({"in_rate": 8000, "out_rate": 24000, "channels": 0}, "channels"),
        ({"in_rate": 8000, "out_rate": 24000, "quality": "best"}, "quality"),
    ],
)
def test_bad_configuration_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Resampler(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_properties() -> None:
    resampler = Resampler(8000, 24000, channels=2, quality="HQ")
    assert (resampler.in_rate, resampler.out_rate, resampler.channels, resampler.quality) == (
        8000,
        24000,
        2,
        "HQ",
    )
    assert not resampler.is_identity
    assert Resampler(8000, 24000).quality == "LQ"


@pytest.mark.parametrize(("quality", "aliases"), [("QQ", True), ("LQ", False), ("HQ", False)])
def test_downsampling_anti_aliasing_by_quality(quality: ResampleQuality, aliases: bool) -> None:
    # 5 kHz is above the 4 kHz Nyquist limit of 8 kHz audio: a filtered resampler removes it, the
    # quick cubic one folds it back to 3 kHz at full level (the documented trade-off).
    x = sine(24000, 1.0, hz=5000)
    got = as_samples(run_chunked(Resampler(24000, 8000, quality=quality), x.tobytes(), [960]))
    rms = float(np.sqrt(np.mean(got[400:-400].astype(np.float64) ** 2)))
    level_db = 20 * math.log10(max(rms, 1e-9) / (AMPLITUDE / math.sqrt(2)))
    if aliases:
        assert level_db > -3
    else:
        assert level_db < -60
