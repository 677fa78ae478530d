"""Playback estimates for model audio, and where to truncate it on an interruption.

Over WebSocket the server does not know what the listener heard: it sends audio faster than real
time, and the client plays it. This module estimates the playback of the *current* assistant audio
part by assuming the client starts playing at the first chunk and plays in real time:

* ``first_audio_ms``: when the first chunk of the part arrived (the caller's clock);
* ``received_ms``: how much audio arrived, from the byte count and the negotiated output format.

On an interruption at ``now_ms`` the audio heard is at most the time elapsed since the first
chunk, and never more than what arrived::

    audio_end_ms = max(0, floor(min(now_ms - first_audio_ms, received_ms)))

always an ``int`` in ``[0, floor(received_ms)]`` (the API rejects fractions and values beyond the
item's audio).

The estimate outlives ``response.output_audio.done``: the model usually finishes streaming long
before the listener finishes hearing, and an interruption in that window must still cut the item.
Once the estimate says everything was heard (streaming done and ``elapsed >= received``) an
interruption truncates nothing. A new part replaces the estimate; an interruption and a lost
connection clear it. The tracker returns values; it never sends anything.
"""

from __future__ import annotations

import math

import attrs

from voicewire.audio.formats import PCM16_24K, AudioFormat
from voicewire.events import Truncation

__all__ = ["PlaybackItem", "PlaybackTracker", "audio_end_ms"]


def audio_end_ms(elapsed_ms: float, received_ms: float) -> int:
    """``max(0, floor(min(elapsed_ms, received_ms)))``: the truncation point in whole ms.

    Raises:
        ValueError: An argument is not finite.
    """
    if not (math.isfinite(elapsed_ms) and math.isfinite(received_ms)):
        raise ValueError(f"expected finite numbers, got {elapsed_ms!r} and {received_ms!r}")
    return max(0, math.floor(min(elapsed_ms, received_ms)))


@attrs.frozen(kw_only=True)
class PlaybackItem:
    """The playback estimate of one assistant audio part.

    Attributes:
        item_id: The assistant item.
        content_index: The audio part within it.
        response_id: The response that produced it, if known.
        first_audio_ms: When its first chunk arrived, on the caller's clock.
        received_ms: Milliseconds of audio received so far.
        done: Whether the server finished streaming it (``response.output_audio.done``).
    """

    item_id: str
    content_index: int
    response_id: str | None
    first_audio_ms: float
    received_ms: float = 0.0
    done: bool = False

    def heard_ms(self, now_ms: float) -> int:
        """The truncation point if the listener is interrupted at ``now_ms``."""
        return audio_end_ms(now_ms - self.first_audio_ms, self.received_ms)

    def fully_heard(self, now_ms: float) -> bool:
        """Whether, by the estimate, the listener has heard all of it and it is complete."""
        return self.done and now_ms - self.first_audio_ms >= self.received_ms


class PlaybackTracker:
    """Tracks the current assistant audio part from the chunks the server sends.

    Args:
        output_format: The format of model audio; update it when the server reports another.
    """

    def __init__(self, output_format: AudioFormat = PCM16_24K) -> None:
        self.output_format = output_format
        self._current: PlaybackItem | None = None

    @property
    def current(self) -> PlaybackItem | None:
        """The part being played, by the estimate, or ``None``."""
        return self._current

    def on_audio(
        self,
        *,
        item_id: str,
        content_index: int,
        response_id: str | None,
        nbytes: int,
        now_ms: float,
    ) -> PlaybackItem:
        """Account for one chunk of model audio received at ``now_ms``.

        A chunk of another item or part starts a new estimate.

        Returns:
            The updated estimate.
        """
        current = self._current
        if current is None or (current.item_id, current.content_index) != (item_id, content_index):
            current = PlaybackItem(
                item_id=item_id,
                content_index=content_index,
                response_id=response_id,
                first_audio_ms=now_ms,
            )
        current = attrs.evolve(
            current, received_ms=current.received_ms + self.output_format.duration_ms(nbytes)
        )
        self._current = current
        return current

    def on_audio_done(self, *, item_id: str, content_index: int) -> None:
        """The server finished streaming a part; its estimate stays until it was heard."""
        current = self._current
        if current is not None and (current.item_id, current.content_index) == (
            item_id,
            content_index,
        ):
            self._current = attrs.evolve(current, done=True)

    def interrupt(self, now_ms: float) -> Truncation | None:
        """Stop playback at ``now_ms``: where to truncate, if anything is still being heard.

        The estimate is cleared either way.

        Returns:
            The truncation, or ``None`` when nothing was playing (no audio, or all heard).
        """
        current, self._current = self._current, None
        if current is None or current.fully_heard(now_ms):
            return None
        return Truncation(
            item_id=current.item_id,
            content_index=current.content_index,
            audio_end_ms=current.heard_ms(now_ms),
        )

    def reset(self) -> None:
        """Forget the estimate (e.g. the connection was lost)."""
        self._current = None
