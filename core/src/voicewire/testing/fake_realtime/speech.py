"""A deterministic generator of speech-like audio, for fakes that must "talk" without data files.

The signal is a chain of syllables: each one a glottal-like harmonic series whose harmonics are
weighted by three vowel formants, with a pitch glide, a raised-cosine envelope and a short noise
burst standing in for a consonant. Syllables group into words separated by short pauses. It is
not intelligible, but it has the energy contour, spectrum and pauses that voice-activity
detectors, level meters and codecs respond to as they would to speech, and it is identical for
identical arguments on every platform.
"""

from __future__ import annotations

import zlib

import numpy as np

from voicewire.audio.formats import AudioFormat
from voicewire.testing.fake_realtime.audio import FloatArray, encode

__all__ = ["speech_like", "speech_like_samples"]

# (F1, F2, F3) in Hz of a handful of vowels; enough variety for the spectrum to move.
_VOWELS: tuple[tuple[float, float, float], ...] = (
    (730.0, 1090.0, 2440.0),
    (270.0, 2290.0, 3010.0),
    (300.0, 870.0, 2240.0),
    (530.0, 1840.0, 2480.0),
    (570.0, 840.0, 2410.0),
    (660.0, 1720.0, 2410.0),
)
_FORMANT_WIDTH_HZ = (90.0, 110.0, 170.0)
_FORMANT_GAIN = (1.0, 0.6, 0.3)


def _seed_of(seed: int | str) -> int:
    # crc32 rather than hash(): str hashes are salted per process, and the output must not be.
    if isinstance(seed, str):
        return zlib.crc32(seed.encode("utf-8"))
    return seed & 0xFFFFFFFF


def _syllable(
    rng: np.random.Generator, n: int, rate: int, f0_start: float, f0_end: float
) -> FloatArray:
    t = np.arange(n, dtype=np.float64) / rate
    f0 = np.linspace(f0_start, f0_end, n)
    phase = 2.0 * np.pi * np.cumsum(f0) / rate
    vowel = _VOWELS[int(rng.integers(len(_VOWELS)))]
    mean_f0 = (f0_start + f0_end) / 2.0
    ceiling = min(0.45 * rate, 4000.0)
    out = np.zeros(n, dtype=np.float64)
    k = 1
    while k * mean_f0 < ceiling:
        freq = k * mean_f0
        # Harmonics near a formant are loud; the -6 dB/octave tilt mimics the glottal source.
        gain = sum(
            g / (1.0 + ((freq - fc) / bw) ** 2)
            for fc, bw, g in zip(vowel, _FORMANT_WIDTH_HZ, _FORMANT_GAIN, strict=True)
        )
        out += (gain / k) * np.sin(k * phase)
        k += 1
    # Clipped at 0: float rounding can leave sin(pi) a hair below zero, and x**1.5 of a negative
    # number is NaN.
    envelope = np.clip(np.sin(np.pi * t / max(float(t[-1]), 1e-9)), 0.0, 1.0) ** 1.5
    burst_n = min(n, int(0.025 * rate))
    if burst_n > 0:
        burst = rng.standard_normal(burst_n) * np.linspace(0.35, 0.0, burst_n)
        out[:burst_n] += burst * float(np.max(np.abs(out)) or 1.0)
    return (out * envelope).astype(np.float32)


def speech_like_samples(
    duration_ms: float, sample_rate: int, *, seed: int | str = 0, level_dbfs: float = -14.0
) -> FloatArray:
    """Speech-like mono float samples in ``[-1, 1)``.

    Args:
        duration_ms: Length of the result; it is filled to the last sample (the final pause may
            be cut short).
        sample_rate: Samples per second.
        seed: Anything that picks a different but repeatable utterance (an int or a text).
        level_dbfs: Peak level of the result in dB relative to full scale.

    Returns:
        ``round(duration_ms * sample_rate / 1000)`` samples.
    """
    n_total = max(0, round(duration_ms * sample_rate / 1000))
    out = np.zeros(n_total, dtype=np.float32)
    if n_total == 0:
        return out
    rng = np.random.default_rng(_seed_of(seed))
    base_f0 = float(rng.uniform(105.0, 190.0))
    pos = 0
    # A short lead-in, as a speaker draws breath; keeps onsets away from chunk boundaries.
    pos += int(rng.uniform(0.01, 0.04) * sample_rate)
    while pos < n_total:
        syllables = int(rng.integers(1, 4))
        for _ in range(syllables):
            n = int(rng.uniform(0.12, 0.26) * sample_rate)
            n = min(n, n_total - pos)
            if n <= 0:
                break
            # Declination: pitch drifts down across the utterance, as it does in statements.
            progress = pos / n_total
            f0 = base_f0 * (1.0 - 0.15 * progress) * float(rng.uniform(0.92, 1.08))
            out[pos : pos + n] = _syllable(
                rng, n, sample_rate, f0, f0 * float(rng.uniform(0.9, 1.05))
            )
            pos += n + int(rng.uniform(0.015, 0.045) * sample_rate)
        pos += int(rng.uniform(0.07, 0.16) * sample_rate)
    peak = float(np.max(np.abs(out)))
    if peak > 0.0:
        out *= np.float32(10.0 ** (level_dbfs / 20.0) / peak)
    return out


def speech_like(
    duration_ms: float, fmt: AudioFormat, *, seed: int | str = 0, level_dbfs: float = -14.0
) -> bytes:
    """Speech-like audio of ``duration_ms`` milliseconds, encoded in ``fmt``.

    Deterministic: the same arguments give the same bytes. Different seeds give different
    pitch, vowels and rhythm.

    Args:
        duration_ms: Length of the audio.
        fmt: The format of the result (any encoding, rate and channel count).
        seed: Picks the utterance; a text (e.g. the transcript) works as well as an int.
        level_dbfs: Peak level in dB relative to full scale.

    Returns:
        Whole frames of ``fmt``.
    """
    samples = speech_like_samples(duration_ms, fmt.sample_rate, seed=seed, level_dbfs=level_dbfs)
    return encode(samples, fmt)
