"""Audio formats, G.711 codecs, streaming resampling and format conversion.

Everything here works on ``bytes``: PCM16 is signed 16-bit little-endian (``pcm16be``, RTP's L16,
big-endian), G.711 is one code per sample, and multi-channel audio is interleaved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voicewire.audio.convert import AudioConverter
from voicewire.audio.formats import ALAW_8K, MULAW_8K, PCM16_24K, AudioEncoding, AudioFormat
from voicewire.audio.pcm import byteswap16
from voicewire.audio.quality import DEFAULT_QUALITY, ResampleQuality

if TYPE_CHECKING:
    from voicewire.audio.g711 import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode
    from voicewire.audio.resample import Resampler

# The codecs and the resampler need numpy and soxr; they load on first use, so that a process
# that only passes audio through (most telephony bridges) never imports them.
_LAZY = {
    "alaw_decode": "voicewire.audio.g711",
    "alaw_encode": "voicewire.audio.g711",
    "mulaw_decode": "voicewire.audio.g711",
    "mulaw_encode": "voicewire.audio.g711",
    "Resampler": "voicewire.audio.resample",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ALAW_8K",
    "DEFAULT_QUALITY",
    "MULAW_8K",
    "PCM16_24K",
    "AudioConverter",
    "AudioEncoding",
    "AudioFormat",
    "ResampleQuality",
    "Resampler",
    "alaw_decode",
    "alaw_encode",
    "byteswap16",
    "mulaw_decode",
    "mulaw_encode",
]
