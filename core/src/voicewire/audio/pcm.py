"""Byte order of 16-bit PCM: RTP's L16 is big-endian, what realtime models take is little-endian.

Pure Python (slice assignment on a ``bytearray``), so a bridge that only swaps bytes never loads
numpy.
"""

from __future__ import annotations

__all__ = ["byteswap16"]


def byteswap16(data: bytes) -> bytes:
    """Swap the two bytes of every 16-bit sample (big-endian <-> little-endian).

    Raises:
        ValueError: ``data`` has an odd number of bytes.
    """
    if len(data) % 2:
        raise ValueError(f"16-bit samples come in pairs of bytes, got {len(data)} bytes")
    out = bytearray(len(data))
    out[0::2] = data[1::2]
    out[1::2] = data[0::2]
    return bytes(out)
