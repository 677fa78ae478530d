"""Sample-level helpers of the fake server: decode any OpenAI wire format to float, and back.

The fake only meets the three OpenAI formats (G.711 at 8 kHz, PCM16 at 24 kHz), so whole-buffer
linear interpolation is enough to move audio between them; nothing here streams.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voicewire.audio.formats import AudioFormat
from voicewire.audio.g711 import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode

__all__ = ["FloatArray", "convert", "decode", "encode", "resample", "rms_dbfs", "whole_frames"]

FloatArray = npt.NDArray[np.float32]

_FULL_SCALE = 32768.0


def whole_frames(data: bytes, fmt: AudioFormat) -> bytes:
    """Drop a trailing partial frame, which no decoder can use."""
    extra = len(data) % fmt.bytes_per_frame
    return data[: len(data) - extra] if extra else data


def decode(data: bytes, fmt: AudioFormat) -> FloatArray:
    """Decode audio bytes to mono float samples in ``[-1, 1)`` at ``fmt.sample_rate``.

    Multi-channel input is averaged to mono; a trailing partial frame is ignored.
    """
    data = whole_frames(data, fmt)
    if fmt.encoding == "mulaw":
        pcm = mulaw_decode(data)
    elif fmt.encoding == "alaw":
        pcm = alaw_decode(data)
    else:
        pcm = data
    order = ">i2" if fmt.encoding == "pcm16be" else "<i2"
    samples = np.frombuffer(pcm, dtype=order).astype(np.float32) / _FULL_SCALE
    if fmt.channels > 1:
        samples = samples.reshape(-1, fmt.channels).mean(axis=1, dtype=np.float32)
    return samples


def encode(samples: FloatArray, fmt: AudioFormat) -> bytes:
    """Encode mono float samples (already at ``fmt.sample_rate``) into ``fmt``'s bytes."""
    order = ">i2" if fmt.encoding == "pcm16be" else "<i2"
    clipped = np.clip(np.rint(samples * _FULL_SCALE), -32768, 32767).astype(order)
    if fmt.channels > 1:
        clipped = np.repeat(clipped, fmt.channels)
    pcm: bytes = clipped.tobytes()
    if fmt.encoding == "mulaw":
        return mulaw_encode(pcm)
    if fmt.encoding == "alaw":
        return alaw_encode(pcm)
    return pcm


def resample(samples: FloatArray, src_rate: int, dst_rate: int) -> FloatArray:
    """Change the sample rate of a whole buffer by linear interpolation.

    Downsampling first averages neighbouring samples, a crude low-pass that keeps the worst
    aliasing out of echoed audio; the fake needs recognisable audio, not fidelity.
    """
    if src_rate == dst_rate or samples.size == 0:
        return samples
    if dst_rate < src_rate:
        width = max(1, round(src_rate / dst_rate))
        if width > 1:
            kernel = np.full(width, 1.0 / width, dtype=np.float32)
            samples = np.convolve(samples, kernel, mode="same").astype(np.float32)
    n_out = max(1, round(samples.size * dst_rate / src_rate))
    src_t = np.arange(samples.size, dtype=np.float64) / src_rate
    dst_t = np.arange(n_out, dtype=np.float64) / dst_rate
    return np.interp(dst_t, src_t, samples).astype(np.float32)


def convert(data: bytes, src: AudioFormat, dst: AudioFormat) -> bytes:
    """Convert a whole buffer from one format to another."""
    if src == dst:
        return whole_frames(data, src)
    return encode(resample(decode(data, src), src.sample_rate, dst.sample_rate), dst)


def rms_dbfs(samples: FloatArray) -> float:
    """Root-mean-square level in dB relative to full scale (``-inf`` for digital silence)."""
    if samples.size == 0:
        return float("-inf")
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    if power <= 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(power))
