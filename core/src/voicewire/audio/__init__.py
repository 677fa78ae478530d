"""Audio formats, G.711 codecs, streaming resampling and format conversion.

Everything here works on ``bytes``: PCM16 is signed 16-bit little-endian, G.711 is one code per
sample, and multi-channel audio is interleaved.
"""

from __future__ import annotations

from voicewire.audio.convert import AudioConverter
from voicewire.audio.formats import ALAW_8K, MULAW_8K, PCM16_24K, AudioEncoding, AudioFormat
from voicewire.audio.g711 import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode
from voicewire.audio.resample import DEFAULT_QUALITY, ResampleQuality, Resampler

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
    "mulaw_decode",
    "mulaw_encode",
]
