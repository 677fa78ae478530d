"""Chunk-by-chunk conversion between any two supported audio formats.

An :class:`AudioConverter` decodes each chunk to little-endian PCM16, resamples it (keeping
filter state across chunks) and encodes it to the target format. Identical formats pass through
untouched; equal rates skip the resampler; channel counts must match (mixing or splitting
channels is a policy decision this module does not take).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from voicewire.audio.formats import AudioFormat
from voicewire.audio.quality import DEFAULT_QUALITY, ResampleQuality
from voicewire.errors import AudioFormatError

if TYPE_CHECKING:
    from voicewire.audio.resample import Resampler

__all__ = ["AudioConverter"]

_Codec = Callable[[bytes], bytes]


def _codecs(src: AudioFormat, dst: AudioFormat) -> tuple[_Codec | None, _Codec | None]:
    # Imported here, not at module level: a pass-through bridge (the common telephony case)
    # then never loads numpy, which is most of a bridge process's memory.
    from voicewire.audio.g711 import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode
    from voicewire.audio.pcm import byteswap16

    decoders: dict[str, _Codec] = {
        "mulaw": mulaw_decode,
        "alaw": alaw_decode,
        "pcm16be": byteswap16,
    }
    encoders: dict[str, _Codec] = {
        "mulaw": mulaw_encode,
        "alaw": alaw_encode,
        "pcm16be": byteswap16,
    }
    return decoders.get(src.encoding), encoders.get(dst.encoding)


class AudioConverter:
    """Convert a stream of audio chunks from one :class:`AudioFormat` to another.

    Each call to :meth:`convert` takes whole frames of ``src`` and returns whole frames of
    ``dst``. When the sample rates differ, the output of one call is not proportional to its input
    (the resampler holds audio back and releases it in bursts); call :meth:`flush` at the end of
    a stream to get the rest. After a flush the converter is ready for a new stream.

    Args:
        src: The format of the chunks given to :meth:`convert`.
        dst: The format to produce.
        quality: Resampler quality when the rates differ (see :mod:`voicewire.audio.resample`).

    Raises:
        AudioFormatError: ``src`` and ``dst`` have different channel counts.
    """

    def __init__(
        self,
        src: AudioFormat,
        dst: AudioFormat,
        *,
        quality: ResampleQuality = DEFAULT_QUALITY,
    ) -> None:
        if src.channels != dst.channels:
            raise AudioFormatError(
                f"channels: cannot convert {src.channels} channel(s) to {dst.channels}; "
                "channel mixing is not supported"
            )
        self._src = src
        self._dst = dst
        self._passthrough = src == dst
        self._decode: _Codec | None = None
        self._encode: _Codec | None = None
        self._resampler: Resampler | None = None
        if self._passthrough:
            return
        self._decode, self._encode = _codecs(src, dst)
        if src.sample_rate != dst.sample_rate:
            from voicewire.audio.resample import Resampler

            self._resampler = Resampler(
                src.sample_rate, dst.sample_rate, channels=src.channels, quality=quality
            )

    @property
    def src(self) -> AudioFormat:
        """The input format."""
        return self._src

    @property
    def dst(self) -> AudioFormat:
        """The output format."""
        return self._dst

    @property
    def is_passthrough(self) -> bool:
        """True when ``src == dst`` and chunks are returned as given, without a copy."""
        return self._passthrough

    def convert(self, chunk: bytes) -> bytes:
        """Convert one chunk.

        Args:
            chunk: Whole frames of :attr:`src` (``src.bytes_per_frame`` bytes each).

        Returns:
            Whole frames of :attr:`dst`; possibly empty while the resampler fills up.

        Raises:
            AudioFormatError: The chunk is not a whole number of ``src`` frames.
        """
        frame = self._src.bytes_per_frame
        if len(chunk) % frame:
            raise AudioFormatError(
                f"chunk of {len(chunk)} bytes is not whole frames of {self._src} "
                f"({frame} bytes per frame)"
            )
        if self._passthrough:
            return chunk
        pcm = chunk if self._decode is None else self._decode(chunk)
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        return pcm if self._encode is None else self._encode(pcm)

    def flush(self) -> bytes:
        """End the stream and return the audio the resampler still holds, in :attr:`dst`.

        Returns:
            The remaining frames (empty when no resampling is involved).
        """
        if self._resampler is None:
            return b""
        pcm = self._resampler.flush()
        return pcm if self._encode is None else self._encode(pcm)
