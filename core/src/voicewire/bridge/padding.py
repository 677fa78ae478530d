"""Input silence padding: keep the model's view of the caller's audio continuous. Sans-I/O.

Telephony providers may stop sending caller frames while the line is quiet, and frames may be
lost. A model's voice activity detection only ends a turn when it *hears* silence, so a missing
stretch of audio can leave a turn open forever. :class:`InputPadder` decides when to insert
silence, in the caller audio's own format (whole frames), for two reasons:

* **Timestamp gaps.** When the edge stamps each chunk with its media clock and a chunk starts
  later than the previous one ended, the gap is filled (up to ``max_gap_fill_ms``).
* **Inactivity during speech.** Between the model's "speech started" and "speech stopped", if
  no chunk arrives for ``inactivity_timeout_ms``, ``inactivity_fill_ms`` of silence is inserted,
  and again every ``inactivity_fill_ms`` after that while nothing arrives, until the silence
  inserted since the last chunk reaches ``max_gap_fill_ms``.

Silence already inserted for inactivity counts toward a timestamp gap found later, so a gap is
never filled twice. Time enters as ``now_ms``; the I/O layer asks :meth:`next_deadline_ms` when to
call :meth:`on_inactivity`.
"""

from __future__ import annotations

import math

import attrs

from voicewire.audio.formats import AudioFormat
from voicewire.bridge.playback import _check_nbytes, _check_now
from voicewire.errors import ConfigError

__all__ = [
    "DEFAULT_INACTIVITY_FILL_MS",
    "DEFAULT_INACTIVITY_TIMEOUT_MS",
    "DEFAULT_MAX_GAP_FILL_MS",
    "InputPadder",
    "PaddingStats",
]

DEFAULT_INACTIVITY_TIMEOUT_MS = 750.0
"""No caller audio for this long during speech triggers an inactivity fill."""

DEFAULT_MAX_GAP_FILL_MS = 10_000.0
"""The most silence inserted between two caller chunks, whatever the reason."""

DEFAULT_INACTIVITY_FILL_MS = 1_000.0
"""Silence inserted per inactivity fill."""


@attrs.frozen(kw_only=True)
class PaddingStats:
    """Counters of an :class:`InputPadder`.

    Attributes:
        gap_fills: Timestamp gaps filled.
        gap_fill_bytes: Silence bytes inserted for timestamp gaps.
        inactivity_fills: Inactivity fills.
        inactivity_fill_bytes: Silence bytes inserted for inactivity.
        timeline_resets: Chunks whose timestamp went backwards, starting a new timeline.
    """

    gap_fills: int = 0
    gap_fill_bytes: int = 0
    inactivity_fills: int = 0
    inactivity_fill_bytes: int = 0
    timeline_resets: int = 0


def _positive(field: str, value: object, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(field, f"must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(field, f"must be {bound}, got {value!r}")
    return float(value)


class InputPadder:
    """Decides when silence must be inserted into the caller's audio, and produces it.

    Feed every caller chunk to :meth:`audio` *before* sending it on, and send what it returns
    first. Pad in the edge's format, before any conversion, because that is the format the
    edge's timestamps describe.

    Args:
        input_format: The format of the caller's audio (the edge's format).
        inactivity_timeout_ms: How long without caller audio, during speech, before silence is
            inserted; ``None`` disables inactivity padding.
        max_gap_fill_ms: The most silence inserted between two chunks (timestamp gap and
            inactivity together); 0 disables padding of either kind.
        inactivity_fill_ms: Silence per inactivity fill.

    Raises:
        ConfigError: A parameter is invalid; the error names it.
    """

    def __init__(
        self,
        input_format: AudioFormat,
        *,
        inactivity_timeout_ms: float | None = DEFAULT_INACTIVITY_TIMEOUT_MS,
        max_gap_fill_ms: float = DEFAULT_MAX_GAP_FILL_MS,
        inactivity_fill_ms: float = DEFAULT_INACTIVITY_FILL_MS,
    ) -> None:
        if not isinstance(input_format, AudioFormat):
            raise ConfigError("input_format", f"must be an AudioFormat, got {input_format!r}")
        self._format = input_format
        self._bytes_per_ms = input_format.bytes_per_ms
        self._timeout = (
            None
            if inactivity_timeout_ms is None
            else _positive("inactivity_timeout_ms", inactivity_timeout_ms, allow_zero=False)
        )
        self._max_fill = _positive("max_gap_fill_ms", max_gap_fill_ms, allow_zero=True)
        self._fill = _positive("inactivity_fill_ms", inactivity_fill_ms, allow_zero=False)

        self._speech = False
        self._stats = PaddingStats()
        self.reset()

    @property
    def input_format(self) -> AudioFormat:
        """The format of the caller's audio and of the silence produced."""
        return self._format

    @property
    def speech_active(self) -> bool:
        """The model reported speech started and not yet stopped."""
        return self._speech

    @property
    def expected_timestamp_ms(self) -> float | None:
        """Where the next chunk should start on the edge's media clock, if known."""
        return self._expected

    @property
    def stats(self) -> PaddingStats:
        """A snapshot of the counters."""
        return self._stats

    def reset(self) -> None:
        """Forget the input timeline and speech state (new call, or the model reconnected)."""
        self._expected: float | None = None
        self._last_ts: float | None = None
        self._last_arrival: float | None = None
        self._filled_ms = 0.0  # silence inserted since the last chunk
        self._next_fill_at: float | None = None
        self._speech = False

    def speech_started(self) -> None:
        """The model heard the caller start speaking: inactivity padding is armed."""
        self._speech = True

    def speech_stopped(self) -> None:
        """The model heard the caller stop speaking: inactivity padding is disarmed."""
        self._speech = False

    def audio(self, nbytes: int, timestamp_ms: float | None, now_ms: float) -> bytes:
        """Account for a caller chunk that arrived now; return the silence to send before it.

        Args:
            nbytes: The chunk's size in ``input_format``.
            timestamp_ms: Where the chunk starts on the edge's media clock, in milliseconds, or
                ``None`` if the edge has no clock (the timeline is then forgotten). A timestamp
                earlier than the previous chunk's starts a new timeline, without a fill.
            now_ms: The current time.

        Returns:
            Silence (whole frames) to send before the chunk, possibly empty.

        Raises:
            ValueError: An argument is invalid.
        """
        _check_nbytes(nbytes)
        now = _check_now(now_ms)
        fill = b""
        if timestamp_ms is None:
            self._expected = None
            self._last_ts = None
        else:
            ts = _check_timestamp(timestamp_ms)
            end = ts + nbytes / self._bytes_per_ms
            if self._last_ts is not None and ts < self._last_ts:
                # A clock that runs backwards cannot measure a gap; start again from here.
                self._stats = attrs.evolve(
                    self._stats, timeline_resets=self._stats.timeline_resets + 1
                )
                self._expected = end
            else:
                if self._expected is not None and ts > self._expected:
                    fill = self._gap_fill(ts - self._expected)
                # An overlapping chunk must not pull the expectation back and fake a gap later.
                self._expected = end if self._expected is None else max(self._expected, end)
            self._last_ts = ts
        self._filled_ms = 0.0
        self._last_arrival = now
        self._next_fill_at = None if self._timeout is None else now + self._timeout
        return fill

    def next_deadline_ms(self) -> float | None:
        """When :meth:`on_inactivity` should next be called, or ``None`` if not needed.

        ``None`` when inactivity padding is disabled, speech is not active, no caller audio has
        arrived yet, or the silence inserted since the last chunk reached ``max_gap_fill_ms``.
        """
        if (
            self._timeout is None
            or not self._speech
            or self._last_arrival is None
            or self._filled_ms >= self._max_fill
        ):
            return None
        return self._next_fill_at

    def on_inactivity(self, now_ms: float) -> bytes:
        """Produce the inactivity fill that is due at ``now_ms``, if any.

        Calling early, or when nothing is due, returns ``b""`` and changes nothing, so the I/O
        layer may call it whenever its timer fires, even a stale one.

        Args:
            now_ms: The current time.

        Returns:
            Silence to send to the model now, possibly empty.

        Raises:
            ValueError: ``now_ms`` is invalid.
        """
        now = _check_now(now_ms)
        deadline = self.next_deadline_ms()
        if deadline is None or now < deadline:
            return b""
        silence = self._silence(min(self._fill, self._max_fill - self._filled_ms))
        if not silence:
            # Less than one frame left under the cap: the cap is reached.
            self._filled_ms = self._max_fill
            return b""
        self._filled_ms += self._format.duration_ms(len(silence))
        # Pace at the speed of real time: the next fill is due once this one would have played.
        self._next_fill_at = now + self._fill
        self._stats = attrs.evolve(
            self._stats,
            inactivity_fills=self._stats.inactivity_fills + 1,
            inactivity_fill_bytes=self._stats.inactivity_fill_bytes + len(silence),
        )
        return silence

    def _silence(self, ms: float) -> bytes:
        # Whole frames, rounded down, so a fill never exceeds the gap or the cap it was cut to.
        rate = self._format.sample_rate
        frames = math.floor(ms * rate / 1000 + 1e-9)
        return self._format.silence(frames * 1000 / rate)

    def _gap_fill(self, gap_ms: float) -> bytes:
        target = min(float(math.floor(gap_ms)), self._max_fill)
        top_up = target - self._filled_ms
        if top_up <= 0:
            return b""
        silence = self._silence(top_up)
        if silence:
            self._stats = attrs.evolve(
                self._stats,
                gap_fills=self._stats.gap_fills + 1,
                gap_fill_bytes=self._stats.gap_fill_bytes + len(silence),
            )
        return silence


def _check_timestamp(timestamp_ms: float) -> float:
    if type(timestamp_ms) is int:
        return float(timestamp_ms)  # what edges pass, fifty times a second per call
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, (int, float)):
        raise ValueError(f"timestamp_ms must be a number or None, got {timestamp_ms!r}")
    if not math.isfinite(timestamp_ms):
        raise ValueError(f"timestamp_ms must be finite, got {timestamp_ms}")
    return float(timestamp_ms)
