"""Telnyx's media-streaming WebSocket dialect, sans-I/O: frames in, the bridge's edge events out.

Telnyx opens the WebSocket to the application's ``stream_url`` and sends JSON text frames:

* ``{"event": "connected", "version": "1.0.0"}``;
* ``{"event": "start", "stream_id": ..., "start": {"call_control_id": ...,
  "custom_parameters": {...}, "media_format": {"encoding": "PCMU", "sample_rate": 8000,
  "channels": 1}}}``;
* ``{"event": "media", "stream_id": ..., "media": {"track": "inbound", "chunk": "2",
  "timestamp": "40", "payload": "<base64 RTP payload, no header>"}}``;
* ``{"event": "dtmf", ..., "dtmf": {"digit": "5"}}``;
* ``{"event": "mark", ..., "mark": {"name": "<name>"}}``: playback reached a mark (or a clear
  dropped it);
* ``{"event": "stop", ...}`` and ``{"event": "error", ...}``.

With ``stream_bidirectional_mode=rtp`` the application sends ``media`` (``media.payload``),
``mark`` (``mark.name``) and ``clear`` back. See the README's "facts relied on" for what is
documented and what is assumed.

Codecs: ``PCMU``/``PCMA`` at 8 kHz pass through as voicewire's mu-law/A-law. ``L16`` is RTP's
linear PCM, big-endian (network byte order, RFC 3551): the edge's format is
``AudioFormat("pcm16be", rate)``, and its bytes go both ways as they are on the wire; the bridge's
converter turns them into the model's little-endian PCM.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, Final

from voicewire.audio.formats import ALAW_8K, MULAW_8K, AudioFormat
from voicewire.bridge.edge import (
    CallerAudio,
    CallStarted,
    CallStopped,
    Dtmf,
    EdgeCapabilities,
    EdgeError,
    EdgeEvent,
    PlaybackAcknowledged,
)
from voicewire.bridge.frames import FrameError, json_object
from voicewire.bridge.marks import MarkTable

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "DIGITS",
    "L16_RATES",
    "MAX_MEDIA_MS",
    "MAX_NAME_LENGTH",
    "TelnyxStream",
    "audio_format_for",
]

L16_RATES: Final = frozenset({8000, 16000, 22050, 24000, 48000})
"""The sampling rates Telnyx lists for streaming (``stream_bidirectional_sampling_rate``)."""

MAX_MEDIA_MS: Final = 1000
"""Audio per outbound ``media`` frame (Telnyx takes 20 ms .. 30 s per chunk)."""

MAX_NAME_LENGTH: Final = 64
"""Longest mark name this plugin sends."""

DEFAULT_MAX_FRAME_BYTES: Final = 256 * 1024
"""Largest inbound frame accepted; a bigger one is refused unread."""

DIGITS: Final = frozenset("0123456789*#ABCD")
"""The keys of a telephone keypad."""


def audio_format_for(encoding: str, sample_rate: int) -> AudioFormat | None:
    """voicewire's format for a Telnyx ``media_format``; ``None`` when not supported."""
    if encoding == "PCMU" and sample_rate == 8000:
        return MULAW_8K
    if encoding == "PCMA" and sample_rate == 8000:
        return ALAW_8K
    if encoding == "L16" and sample_rate in L16_RATES:
        return AudioFormat(encoding="pcm16be", sample_rate=sample_rate)
    return None


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _obj(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise FrameError(f"{key} must be an object")
    return value


def _text(obj: Mapping[str, Any], key: str, where: str, *, limit: int = 256) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise FrameError(f"{where}.{key} must be a string of 1..{limit} characters")
    return value


def _number(value: object, where: str) -> int | None:
    """An int or a decimal string (Telnyx sends counters as strings); ``None`` when absent."""
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise FrameError(f"{where} must be a non-negative integer or decimal string")


class TelnyxStream:
    """One Telnyx media stream: parses what Telnyx sends and builds what it is sent.

    Unknown keys are ignored; what the plugin relies on is checked strictly.

    Args:
        max_frame_bytes: Largest inbound frame accepted.
    """

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._max_frame_bytes = max_frame_bytes
        self._format: AudioFormat = MULAW_8K
        self._call_id: str | None = None
        self._stream_id: str | None = None
        self._ended = False
        self._last_ts = -1
        self._received_bytes = 0
        self._names = MarkTable("vw")

    @property
    def audio_format(self) -> AudioFormat:
        """The stream's format: announced by ``start``, mu-law 8 kHz until then."""
        return self._format

    @property
    def capabilities(self) -> EdgeCapabilities:
        """Acknowledgements (Telnyx's marks) and the stream's format."""
        return EdgeCapabilities(acknowledgements=True, audio_format=self._format, provider="telnyx")

    @property
    def call_id(self) -> str | None:
        """``start.call_control_id``, once ``start`` arrived."""
        return self._call_id

    @property
    def stream_id(self) -> str | None:
        """``stream_id``, once ``start`` arrived."""
        return self._stream_id

    @property
    def ended(self) -> bool:
        """``stop`` arrived."""
        return self._ended

    # -- from Telnyx ---------------------------------------------------------------------------

    def receive(self, frame: str | bytes) -> EdgeEvent | None:
        """Make sense of one frame; ``None`` for frames with nothing to report (``connected``,
        the outbound track). A frame that breaks the dialect is an ``EdgeError``."""
        try:
            return self._receive(frame)
        except FrameError as bad:
            return bad.event()

    def _receive(self, frame: str | bytes) -> EdgeEvent | None:
        obj = json_object(frame, provider="Telnyx", max_chars=self._max_frame_bytes)
        kind = obj.get("event")
        if kind == "connected":
            return None
        if kind == "start":
            return self._start(obj)
        if kind == "error":
            return self._error(obj)
        if self._call_id is None:
            raise FrameError(f"{str(kind)[:20]!r} before start", "not_started")
        if self._ended:
            raise FrameError(f"{str(kind)[:20]!r} after stop", "ended")
        if kind == "media":
            return self._media(obj)
        if kind == "mark":
            name = _text(_obj(obj, "mark"), "name", "mark", limit=MAX_NAME_LENGTH)
            token = self._names.resolve(name)
            if token is None:
                raise FrameError(
                    "mark: a name this stream never sent (or already reported)", "unknown"
                )
            return PlaybackAcknowledged(token=token)
        if kind == "dtmf":
            digit = _obj(obj, "dtmf").get("digit")
            if not isinstance(digit, str) or digit not in DIGITS:
                raise FrameError("dtmf.digit must be one of 0-9 * # A-D")
            return Dtmf(digit=digit)
        if kind == "stop":
            self._ended = True
            return CallStopped(reason="stop")
        raise FrameError(f"unknown event {str(kind)[:20]!r}", "unknown_event")

    def _start(self, obj: Mapping[str, Any]) -> CallStarted:
        if self._call_id is not None:
            raise FrameError("a second start: one socket carries one stream", "duplicate_start")
        stream_id = _text(obj, "stream_id", "start")
        start = _obj(obj, "start")
        call_id = _text(start, "call_control_id", "start")
        media_format = _obj(start, "media_format")
        encoding = media_format.get("encoding")
        rate = media_format.get("sample_rate")
        if media_format.get("channels", 1) != 1:
            raise FrameError("start.media_format.channels must be 1", "unsupported_format")
        fmt = (
            audio_format_for(encoding, rate)
            if isinstance(encoding, str) and isinstance(rate, int) and not isinstance(rate, bool)
            else None
        )
        if fmt is None:
            raise FrameError(
                f"start.media_format {str(encoding)[:16]!r} at {str(rate)[:8]} Hz is not"
                " supported (PCMU/PCMA 8 kHz, L16)",
                "unsupported_format",
            )
        params = start.get("custom_parameters") or {}
        if not isinstance(params, dict):
            raise FrameError("start.custom_parameters must be an object")
        self._call_id = call_id
        self._stream_id = stream_id
        self._format = fmt
        return CallStarted(
            call_id=call_id,
            stream_id=stream_id,
            audio_format=fmt,
            custom_parameters={str(k): str(v) for k, v in params.items()},
        )

    def _media(self, obj: Mapping[str, Any]) -> CallerAudio | None:
        media = _obj(obj, "media")
        if media.get("track", "inbound") != "inbound":
            return None  # both_tracks also streams what the callee hears: not caller audio
        payload = media.get("payload")
        if not isinstance(payload, str) or not payload:
            raise FrameError("media.payload must be non-empty base64")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise FrameError("media.payload is not valid base64") from None
        if len(data) % self._format.bytes_per_frame:
            raise FrameError("media.payload is not whole samples")
        timestamp = _number(media.get("timestamp"), "media.timestamp")
        if timestamp is None:  # derive the media clock from the audio received so far
            timestamp = (
                self._received_bytes
                * 1000
                // (self._format.sample_rate * self._format.bytes_per_frame)
            )
        if timestamp <= self._last_ts:
            # Telnyx does not guarantee order; a late frame's slot was already filled or padded.
            raise FrameError(
                f"media.timestamp {timestamp} is not after {self._last_ts}", "out_of_order"
            )
        self._last_ts = timestamp
        self._received_bytes += len(data)
        return CallerAudio(data=data, timestamp_ms=timestamp)

    @staticmethod
    def _error(obj: Mapping[str, Any]) -> EdgeError:
        payload = obj.get("payload")
        details = payload if isinstance(payload, dict) else obj
        code = details.get("code")
        text = details.get("detail") or details.get("title") or details.get("message")
        return EdgeError(
            message=f"Telnyx reported an error: {str(text or 'no detail')[:200]}",
            code=f"telnyx_{str(code)[:32]}" if code is not None else "telnyx_error",
        )

    # -- to Telnyx -----------------------------------------------------------------------------

    def play(self, data: bytes) -> list[str]:
        """The ``media`` frames that play ``data`` (in the stream's format), at most 1 s each."""
        step = self._format.sample_rate * self._format.bytes_per_frame * MAX_MEDIA_MS // 1000
        return [
            _dumps({"event": "media", "media": {"payload": base64.b64encode(chunk).decode()}})
            for chunk in (data[i : i + step] for i in range(0, len(data), step))
        ]

    def mark(self, token: str) -> str:
        """The ``mark`` frame that reports ``token`` back once playback reaches it."""
        return _dumps({"event": "mark", "mark": {"name": self._names.issue(token)}})

    def clear(self) -> str:
        """The ``clear`` frame. Marks stay outstanding: Telnyx sends the queued ones back."""
        return _dumps({"event": "clear"})
