"""Re-framing outbound audio into fixed 20 ms frames.

Model audio arrives in deltas of arbitrary size. Twilio plays whatever it is sent, but playback
audibly jitters when chunk sizes vary (reported against the reference transport, which forwards
deltas as received), so the edge keeps to frames of 160 mu-law bytes (20 ms at 8 kHz), the size
Twilio itself sends inbound: every media message it sends is a whole number of them (the frames
of one chunk travel together), except a final partial frame.
"""

from __future__ import annotations

from voicewire.audio.formats import MULAW_8K

__all__ = ["FRAME_BYTES", "MULAW_SILENCE", "Framer"]

FRAME_BYTES = MULAW_8K.nbytes_for_ms(20)
"""Bytes in one 20 ms frame of mu-law 8 kHz mono: 160."""

MULAW_SILENCE = 0xFF
"""The mu-law code for zero amplitude, used to pad a short final frame."""


class Framer:
    """Cuts a byte stream into frames of a fixed size, holding back the incomplete remainder.

    The output concatenated equals the input: nothing is dropped, duplicated or reordered, except
    that :meth:`flush` with ``pad=True`` appends silence and :meth:`reset` discards what is held.

    Args:
        frame_bytes: Size of every frame (default 160: 20 ms of mu-law 8 kHz).
        pad_byte: The byte :meth:`flush` pads with (default ``0xFF``, mu-law silence).

    Raises:
        ValueError: ``frame_bytes`` is not a positive int, or ``pad_byte`` not in 0..255.
    """

    __slots__ = ("_buffer", "_frame_bytes", "_pad_byte")

    def __init__(self, frame_bytes: int = FRAME_BYTES, pad_byte: int = MULAW_SILENCE) -> None:
        if isinstance(frame_bytes, bool) or not isinstance(frame_bytes, int) or frame_bytes < 1:
            raise ValueError(f"frame_bytes must be a positive int, got {frame_bytes!r}")
        if isinstance(pad_byte, bool) or not isinstance(pad_byte, int) or not 0 <= pad_byte <= 255:
            raise ValueError(f"pad_byte must be an int in 0..255, got {pad_byte!r}")
        self._frame_bytes = frame_bytes
        self._pad_byte = pad_byte
        self._buffer = bytearray()

    def __repr__(self) -> str:
        return f"Framer(frame_bytes={self._frame_bytes}, pending={len(self._buffer)})"

    @property
    def frame_bytes(self) -> int:
        """The size of every full frame."""
        return self._frame_bytes

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for enough to complete a frame (always < ``frame_bytes``)."""
        return len(self._buffer)

    def push(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add audio and take every frame it completes.

        Args:
            data: Audio bytes of any length (empty is fine).

        Returns:
            The completed frames, each exactly ``frame_bytes`` long, in order; possibly none.

        Raises:
            TypeError: ``data`` is not bytes-like.
        """
        checked: object = data  # typed bytes, but a str slips through untyped callers
        if isinstance(checked, str):
            raise TypeError("data must be audio bytes, got str")
        self._buffer += data
        size = self._frame_bytes
        complete = len(self._buffer) - len(self._buffer) % size
        if complete == 0:
            return []
        view = memoryview(self._buffer)
        try:
            frames = [bytes(view[start : start + size]) for start in range(0, complete, size)]
        finally:
            # A live export would make the bytearray refuse to shrink.
            view.release()
        del self._buffer[:complete]
        return frames

    def flush(self, pad: bool = False) -> bytes | None:
        """Take the held-back remainder, e.g. when the model finishes a response.

        Args:
            pad: Fill the remainder up to a full frame with the pad byte, so that every frame sent
                has the same size.

        Returns:
            The remainder (a full frame when ``pad``), or ``None`` if nothing was held back.
        """
        if not self._buffer:
            return None
        tail = bytes(self._buffer)
        self._buffer.clear()
        if pad:
            tail += bytes([self._pad_byte]) * (self._frame_bytes - len(tail))
        return tail

    def reset(self) -> int:
        """Discard the held-back remainder, e.g. when playback is cleared.

        Returns:
            How many bytes were discarded.
        """
        dropped = len(self._buffer)
        self._buffer.clear()
        return dropped
