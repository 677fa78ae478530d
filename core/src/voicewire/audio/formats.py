"""Audio formats: what the bytes on a wire mean, and the names each protocol gives them.

An :class:`AudioFormat` is a value (encoding, sample rate, channel count) with the arithmetic a
bridge needs (bytes per millisecond, silence, whole-frame sizes) and the translations between the
names used by OpenAI (GA ``audio/pcm``/``audio/pcmu``/``audio/pcma`` and beta ``pcm16``/
``g711_ulaw``/``g711_alaw``) and Twilio (``audio/x-mulaw``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, get_args

import attrs

from voicewire.errors import AudioFormatError, ConfigError

__all__ = ["ALAW_8K", "MULAW_8K", "PCM16_24K", "AudioEncoding", "AudioFormat"]

AudioEncoding = Literal["pcm16", "pcm16be", "mulaw", "alaw"]
"""The sample encodings voicewire can decode and encode."""

_ENCODINGS: tuple[str, ...] = get_args(AudioEncoding)
_MIN_RATE = 1000
_MAX_RATE = 192_000

# Silence is the code that decodes to (nearly) zero: 0xFF is mu-law's +0, 0xD5 is A-law's +8.
_SILENCE_BYTE: dict[str, int] = {"pcm16": 0x00, "pcm16be": 0x00, "mulaw": 0xFF, "alaw": 0xD5}

_OPENAI_NAMES: dict[str, str] = {"pcm16": "audio/pcm", "mulaw": "audio/pcmu", "alaw": "audio/pcma"}

# name -> (encoding, default rate, whether another rate may be given). The G.711 names of OpenAI
# and the legacy "pcm16" denote one fixed rate; Twilio's MIME-style names and "audio/pcm" carry it
# separately (Twilio's "start" message, the GA format object's "rate").
_NAMES: dict[str, tuple[AudioEncoding, int, bool]] = {
    "audio/pcm": ("pcm16", 24_000, True),
    "audio/pcmu": ("mulaw", 8000, False),
    "audio/pcma": ("alaw", 8000, False),
    "audio/x-mulaw": ("mulaw", 8000, True),
    "audio/x-alaw": ("alaw", 8000, True),
    "pcm16": ("pcm16", 24_000, False),
    "g711_ulaw": ("mulaw", 8000, False),
    "g711_alaw": ("alaw", 8000, False),
}


def _check_encoding(_inst: object, _attr: attrs.Attribute[str], value: object) -> None:
    if value not in _ENCODINGS:
        raise ConfigError("encoding", f"unknown encoding {value!r}; expected one of {_ENCODINGS}")


def _check_rate(_inst: object, _attr: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError("sample_rate", f"must be an int, got {type(value).__name__}")
    if not _MIN_RATE <= value <= _MAX_RATE:
        raise ConfigError("sample_rate", f"must be within {_MIN_RATE}..{_MAX_RATE} Hz, got {value}")


def _check_channels(_inst: object, _attr: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError("channels", f"must be an int, got {type(value).__name__}")
    if value < 1:
        raise ConfigError("channels", f"must be >= 1, got {value}")


@attrs.frozen(kw_only=True)
class AudioFormat:
    """An audio stream format: sample encoding, sample rate and channel count.

    Samples of multi-channel audio are interleaved; a *frame* is one sample of every channel.
    PCM16 is signed 16-bit little-endian (``pcm16``, what realtime models take) or big-endian
    (``pcm16be``, RTP's L16, which some telephony providers stream); mu-law and A-law are G.711
    8-bit codes.

    Attributes:
        encoding: ``"pcm16"``, ``"pcm16be"``, ``"mulaw"`` or ``"alaw"``.
        sample_rate: Samples per second per channel, within 1000..192000.
        channels: Interleaved channels, at least 1.

    Raises:
        ConfigError: A field is invalid; the error's ``field`` names it.
    """

    encoding: AudioEncoding = attrs.field(validator=_check_encoding)
    sample_rate: int = attrs.field(validator=_check_rate)
    channels: int = attrs.field(default=1, validator=_check_channels)

    @classmethod
    def parse(cls, name: str, rate: int | None = None) -> AudioFormat:
        """Build a format from a protocol's name for it.

        Known names: ``audio/pcm`` (PCM16, 24 kHz unless ``rate`` is given), ``audio/pcmu`` and
        ``audio/pcma`` (8 kHz), ``audio/x-mulaw`` and ``audio/x-alaw`` (Twilio style, 8 kHz unless
        ``rate`` is given), and OpenAI's beta names ``pcm16`` (24 kHz), ``g711_ulaw`` and
        ``g711_alaw`` (8 kHz). Names are matched case-insensitively.

        Args:
            name: The format name.
            rate: The sample rate, for names that do not fix one. For a name that fixes its rate,
                only that rate is accepted.

        Returns:
            The mono format.

        Raises:
            AudioFormatError: The name is unknown (the message lists the known names), or the rate
                does not fit the name.
            ConfigError: The rate is out of range.
        """
        if not isinstance(name, str):
            raise AudioFormatError(f"format name must be a str, got {type(name).__name__}")
        key = name.strip().lower()
        try:
            encoding, default_rate, rate_free = _NAMES[key]
        except KeyError:
            known = ", ".join(sorted(_NAMES))
            raise AudioFormatError(
                f"unknown audio format name {name!r}; known names: {known}"
            ) from None
        if rate is None:
            rate = default_rate
        elif not rate_free and rate != default_rate:
            raise AudioFormatError(f"rate: {name!r} is always {default_rate} Hz, got rate={rate!r}")
        return cls(encoding=encoding, sample_rate=rate)

    @classmethod
    def from_wire(cls, obj: str | Mapping[str, Any]) -> AudioFormat:
        """Build a format from an OpenAI GA format object or any name :meth:`parse` accepts.

        Args:
            obj: ``{"type": "audio/pcm", "rate": 24000}``, ``{"type": "audio/pcmu"}``, or a name.

        Returns:
            The format.

        Raises:
            AudioFormatError: The object has no usable ``type``, an unknown one, or a bad ``rate``.
        """
        if isinstance(obj, str):
            return cls.parse(obj)
        if not isinstance(obj, Mapping):
            raise AudioFormatError(
                f"audio format must be a name or a mapping, got {type(obj).__name__}"
            )
        name = obj.get("type")
        if not isinstance(name, str):
            raise AudioFormatError(f"type: audio format object needs a string 'type', got {obj!r}")
        rate = obj.get("rate")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int)):
            raise AudioFormatError(f"rate: must be an integer, got {rate!r}")
        return cls.parse(name, rate)

    @property
    def bytes_per_sample(self) -> int:
        """Bytes of one sample of one channel: 2 for PCM16 (either byte order), 1 for G.711."""
        return 1 if self.encoding in ("mulaw", "alaw") else 2

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one frame (one sample of every channel)."""
        return self.bytes_per_sample * self.channels

    @property
    def bytes_per_ms(self) -> float:
        """Bytes per millisecond of audio (8.0 for mu-law 8 kHz, 48.0 for PCM16 24 kHz)."""
        return self.sample_rate * self.bytes_per_frame / 1000

    @property
    def openai_name(self) -> str:
        """The OpenAI GA ``type`` of this encoding: ``audio/pcm``, ``audio/pcmu`` or ``audio/pcma``.

        Raises:
            AudioFormatError: OpenAI has no name for it (big-endian PCM).
        """
        try:
            return _OPENAI_NAMES[self.encoding]
        except KeyError:
            raise AudioFormatError(
                f"encoding: OpenAI has no {self.encoding!r} audio; convert it to pcm16 first"
            ) from None

    def duration_ms(self, nbytes: int) -> float:
        """Milliseconds of audio held by ``nbytes`` bytes of this format.

        Raises:
            ValueError: ``nbytes`` is negative.
        """
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        return nbytes / self.bytes_per_ms

    def nbytes_for_ms(self, ms: float) -> int:
        """Bytes of ``ms`` milliseconds of audio, rounded to the nearest whole frame.

        Raises:
            ValueError: ``ms`` is negative or not finite.
        """
        if not math.isfinite(ms) or ms < 0:
            raise ValueError(f"ms must be a finite number >= 0, got {ms}")
        # Nearest rather than floor, so that float noise (20.000000001 ms) cannot drop a frame.
        frames = math.floor(ms * self.sample_rate / 1000 + 0.5)
        return frames * self.bytes_per_frame

    def silence(self, ms: float) -> bytes:
        """``ms`` milliseconds of silence in this format (whole frames).

        Mu-law silence is ``0xFF``, A-law ``0xD5``, PCM16 (either byte order) zeros.
        """
        return bytes([_SILENCE_BYTE[self.encoding]]) * self.nbytes_for_ms(ms)

    def wire_dict(self) -> dict[str, Any]:
        """The OpenAI GA format object, e.g. ``{"type": "audio/pcm", "rate": 24000}``.

        Raises:
            AudioFormatError: OpenAI cannot express this format (not mono, G.711 not at 8 kHz,
                PCM not at 24 kHz, big-endian PCM).
        """
        name = self.openai_name
        if self.channels != 1:
            raise AudioFormatError(f"channels: OpenAI audio is mono, got {self.channels}")
        if self.encoding == "pcm16":
            if self.sample_rate != 24_000:
                raise AudioFormatError(
                    f"sample_rate: OpenAI audio/pcm is 24000 Hz, got {self.sample_rate}"
                )
            return {"type": "audio/pcm", "rate": self.sample_rate}
        if self.sample_rate != 8000:
            raise AudioFormatError(f"sample_rate: OpenAI {name} is 8000 Hz, got {self.sample_rate}")
        return {"type": name}


PCM16_24K = AudioFormat(encoding="pcm16", sample_rate=24_000)
"""OpenAI's ``audio/pcm``: PCM16 little-endian, 24 kHz, mono."""

MULAW_8K = AudioFormat(encoding="mulaw", sample_rate=8000)
"""G.711 mu-law, 8 kHz, mono: Twilio's ``audio/x-mulaw`` and OpenAI's ``audio/pcmu``."""

ALAW_8K = AudioFormat(encoding="alaw", sample_rate=8000)
"""G.711 A-law, 8 kHz, mono: OpenAI's ``audio/pcma``."""
