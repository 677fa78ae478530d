"""A deterministic, sans-I/O energy voice-activity detector driven by the audio clock.

Time is the position in the appended audio stream, never the wall clock: feeding the same bytes
gives the same events at the same offsets however fast (or slowly) they arrive.
"""

from __future__ import annotations

from typing import Literal

import attrs

from voicewire.audio.formats import AudioFormat
from voicewire.errors import ConfigError
from voicewire.testing.fake_realtime.audio import decode, rms_dbfs

__all__ = ["EnergyVad", "VadEvent", "VadSettings", "threshold_to_dbfs"]


def _positive(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(attr.name, f"must be a positive int, got {value!r}")


def _optional_positive(_inst: object, attr: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None:
        _positive(_inst, attr, value)  # type: ignore[arg-type]


@attrs.frozen(kw_only=True)
class VadSettings:
    """How the fake's server VAD decides that the caller speaks.

    The session's ``turn_detection`` still decides whether VAD runs at all, its prefix padding and
    (unless ``silence_ms`` overrides it) how long a pause ends a turn.

    Attributes:
        frame_ms: Analysis frame length in milliseconds of stream time.
        min_speech_ms: Consecutive loud audio needed before ``speech_started``.
        silence_ms: Quiet audio that ends a turn; ``None`` uses the session's
            ``turn_detection.silence_duration_ms``.
        threshold_dbfs: Frame RMS level above which a frame is loud; ``None`` derives it from the
            session's ``turn_detection.threshold`` (0.5 gives -35 dBFS, see
            :func:`threshold_to_dbfs`).
    """

    frame_ms: int = attrs.field(default=20, validator=_positive)
    min_speech_ms: int = attrs.field(default=60, validator=_positive)
    silence_ms: int | None = attrs.field(default=None, validator=_optional_positive)
    threshold_dbfs: float | None = None


def threshold_to_dbfs(threshold: float) -> float:
    """Map the API's ``turn_detection.threshold`` (0..1) to a frame level: -60 dBFS + 50 dB x t."""
    return -60.0 + 50.0 * min(max(threshold, 0.0), 1.0)


@attrs.frozen
class VadEvent:
    """A change of speech state at a point of the appended stream.

    Attributes:
        kind: ``"speech_started"`` or ``"speech_stopped"``.
        audio_ms: For a start, where speech began including the prefix padding; for a stop, the
            end of the silence that ended it (both offsets into all audio appended so far).
        speech_end_ms: For a stop, the end of the last loud frame; for a start, the onset.
    """

    kind: Literal["speech_started", "speech_stopped"]
    audio_ms: int
    speech_end_ms: int


class EnergyVad:
    """Frame-energy VAD over one input format; feed it every appended chunk in order.

    Args:
        fmt: The input audio format.
        threshold_dbfs: Frame level above which a frame counts as speech.
        min_speech_ms: Loud audio needed to declare speech.
        silence_ms: Quiet audio needed to declare the end of speech.
        prefix_padding_ms: Audio before the onset reported as part of the turn.
        frame_ms: Analysis frame length.
        start_ms: Stream position of the first byte fed (audio appended before a format change).
        floor_ms: Earliest offset a start may report (the end of the last commit).
    """

    def __init__(
        self,
        fmt: AudioFormat,
        *,
        threshold_dbfs: float,
        min_speech_ms: int,
        silence_ms: int,
        prefix_padding_ms: int,
        frame_ms: int = 20,
        start_ms: float = 0.0,
        floor_ms: float = 0.0,
    ) -> None:
        self._fmt = fmt
        self._threshold = threshold_dbfs
        self._min_speech_ms = min_speech_ms
        self._silence_ms = silence_ms
        self._prefix_ms = prefix_padding_ms
        self._frame_ms = frame_ms
        self._frame_bytes = fmt.nbytes_for_ms(frame_ms)
        self._pending = b""
        self._pos_ms = start_ms
        self._floor_ms = floor_ms
        self._speaking = False
        self._loud_run_ms = 0.0
        self._onset_ms = 0.0
        self._quiet_run_ms = 0.0
        self._last_loud_end_ms = 0.0

    @property
    def speaking(self) -> bool:
        """Whether speech has started and not yet stopped."""
        return self._speaking

    def reset(self, floor_ms: float) -> None:
        """Forget any speech in progress (after a commit or clear); keep the stream position."""
        self._speaking = False
        self._loud_run_ms = 0.0
        self._quiet_run_ms = 0.0
        self._floor_ms = floor_ms

    def feed(self, data: bytes) -> list[VadEvent]:
        """Analyse appended audio; return the state changes it causes, in stream order."""
        buf = self._pending + data
        events: list[VadEvent] = []
        offset = 0
        frame_ms = self._frame_ms
        while len(buf) - offset >= self._frame_bytes:
            frame = buf[offset : offset + self._frame_bytes]
            offset += self._frame_bytes
            loud = rms_dbfs(decode(frame, self._fmt)) > self._threshold
            frame_start = self._pos_ms
            self._pos_ms += frame_ms
            if not self._speaking:
                if loud:
                    if self._loud_run_ms == 0.0:
                        self._onset_ms = frame_start
                    self._loud_run_ms += frame_ms
                    if self._loud_run_ms >= self._min_speech_ms:
                        self._speaking = True
                        self._quiet_run_ms = 0.0
                        self._last_loud_end_ms = self._pos_ms
                        start = max(self._floor_ms, self._onset_ms - self._prefix_ms)
                        events.append(VadEvent("speech_started", int(start), int(self._onset_ms)))
                else:
                    self._loud_run_ms = 0.0
            elif loud:
                self._quiet_run_ms = 0.0
                self._last_loud_end_ms = self._pos_ms
            else:
                self._quiet_run_ms += frame_ms
                if self._quiet_run_ms >= self._silence_ms:
                    self._speaking = False
                    self._loud_run_ms = 0.0
                    events.append(
                        VadEvent("speech_stopped", int(self._pos_ms), int(self._last_loud_end_ms))
                    )
        self._pending = buf[offset:]
        return events
