"""Throughput of the telephone transcoding path, next to audioop + soxr in the same run.

The pipeline is a bridge's worst case: Twilio mu-law 8 kHz up to PCM16 24 kHz (the model side)
and back down to mu-law 8 kHz, in 20 ms chunks. Figures are multiples of real time on one core
(how many such streams one core could carry). The baseline does the same work with ``audioop``
for the codecs and ``soxr.ResampleStream`` for the resampling, without voicewire's checks.

Run ``python bench/audio.py [--seconds N] [--quality LQ]``. Nothing is asserted: it prints.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType

import numpy as np
import soxr

from voicewire.audio import MULAW_8K, PCM16_24K, AudioConverter, mulaw_decode, mulaw_encode
from voicewire.audio.resample import DEFAULT_QUALITY, ResampleQuality

CHUNK_BYTES = 160  # 20 ms of mu-law at 8 kHz
REPEATS = 3


def load_audioop() -> ModuleType | None:
    """Return ``audioop`` (stdlib up to 3.12, ``audioop-lts`` on 3.13+), or None if absent."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            return None
    return audioop


def make_input(seconds: float) -> list[bytes]:
    """A speech-band signal (two tones and noise) as 20 ms mu-law chunks."""
    rng = np.random.default_rng(0)
    t = np.arange(int(8000 * seconds)) / 8000
    signal = 6000 * np.sin(2 * np.pi * 220 * t) + 3000 * np.sin(2 * np.pi * 1800 * t)
    signal += rng.normal(0, 500, t.shape)
    ulaw = mulaw_encode(np.clip(signal, -32768, 32767).astype("<i2").tobytes())
    return [ulaw[i : i + CHUNK_BYTES] for i in range(0, len(ulaw), CHUNK_BYTES)]


def voicewire_pipeline(quality: ResampleQuality) -> Callable[[list[bytes]], int]:
    """The path through ``AudioConverter``: mu-law 8k -> PCM16 24k -> mu-law 8k."""

    def run(chunks: list[bytes]) -> int:
        up = AudioConverter(MULAW_8K, PCM16_24K, quality=quality)
        down = AudioConverter(PCM16_24K, MULAW_8K, quality=quality)
        produced = 0
        for chunk in chunks:
            produced += len(down.convert(up.convert(chunk)))
        produced += len(down.convert(up.flush()))
        return produced + len(down.flush())

    return run


def voicewire_codec_only(chunks: list[bytes]) -> int:
    """mu-law decode then encode per chunk, no resampling."""
    return sum(len(mulaw_encode(mulaw_decode(chunk))) for chunk in chunks)


def baseline_pipeline(
    audioop: ModuleType, quality: ResampleQuality
) -> Callable[[list[bytes]], int]:
    """The same path with audioop codecs and bare soxr streams."""

    def run(chunks: list[bytes]) -> int:
        up = soxr.ResampleStream(8000, 24000, 1, dtype="int16", quality=quality)
        down = soxr.ResampleStream(24000, 8000, 1, dtype="int16", quality=quality)
        produced = 0
        for chunk in chunks:
            pcm8 = np.frombuffer(audioop.ulaw2lin(chunk, 2), dtype=np.int16)
            pcm24 = up.resample_chunk(pcm8)
            back = down.resample_chunk(pcm24)
            produced += len(audioop.lin2ulaw(back.tobytes(), 2))
        tail = down.resample_chunk(up.resample_chunk(np.zeros(0, np.int16), last=True), last=True)
        return produced + len(audioop.lin2ulaw(tail.tobytes(), 2))

    return run


def baseline_codec_only(audioop: ModuleType) -> Callable[[list[bytes]], int]:
    """audioop mu-law decode then encode per chunk."""

    def run(chunks: list[bytes]) -> int:
        return sum(len(audioop.lin2ulaw(audioop.ulaw2lin(chunk, 2), 2)) for chunk in chunks)

    return run


def best_time(run: Callable[[list[bytes]], int], chunks: list[bytes]) -> float:
    """Best wall time of a few runs: the least disturbed by the rest of the machine."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        run(chunks)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, time each pipeline and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=30.0, help="audio per run (default 30)")
    parser.add_argument(
        "--quality",
        choices=["QQ", "LQ", "MQ", "HQ", "VHQ"],
        default=DEFAULT_QUALITY,
        help=f"resampler quality (default {DEFAULT_QUALITY})",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    quality: ResampleQuality = args.quality
    chunks = make_input(args.seconds)
    audio_seconds = len(chunks) * 0.02

    rows: list[tuple[str, Callable[[list[bytes]], int]]] = [
        (f"voicewire AudioConverter ({quality})", voicewire_pipeline(quality)),
        ("voicewire mu-law codec only", voicewire_codec_only),
    ]
    audioop = load_audioop()
    if audioop is not None:
        rows.insert(1, (f"audioop + soxr ({quality})", baseline_pipeline(audioop, quality)))
        rows.append(("audioop mu-law codec only", baseline_codec_only(audioop)))

    print(
        f"mu-law 8k -> PCM16 24k -> mu-law 8k, 20 ms chunks, {audio_seconds:g} s of audio, "
        f"best of {REPEATS}, Python {sys.version.split()[0]}"
    )
    print(f"{'pipeline':<38} {'us/chunk':>10} {'x real time':>12}")
    for name, run in rows:
        elapsed = best_time(run, chunks)
        print(f"{name:<38} {elapsed / len(chunks) * 1e6:>10.1f} {audio_seconds / elapsed:>12.0f}")
    if audioop is None:
        print("audioop not available (on Python 3.13+ install audioop-lts): baseline skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
