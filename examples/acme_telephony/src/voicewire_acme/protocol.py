"""The Acme Voice media-stream dialect, sans-I/O: frames in, call events out, commands to frames.

Acme Voice (an invented provider) streams a call over one WebSocket of JSON text frames.

From Acme:

* ``{"type": "hello", "call": "<id>", "codec": "pcma", "rate": 8000, "params": {...}}``
  opens the call (``codec`` ``pcma`` or ``pcmu``, always 8 kHz; ``params`` optional);
* ``{"type": "audio", "seq": 0, "data": "<base64>"}``: caller audio; ``seq`` counts 20 ms
  frames from the start of the call, so a gap means lost frames;
* ``{"type": "played", "ref": "<ref>"}``: playback reached the mark ``ref`` (or a flush
  dropped it);
* ``{"type": "key", "digit": "5"}``: a key press;
* ``{"type": "bye", "reason": "hangup"}``: the call ended (``reason`` optional).

To Acme:

* ``{"type": "play", "data": "<base64>"}``: queue audio, at most one second per frame; Acme
  queues at most ``ACME_BUFFER_MS`` ahead of what it has played and drops what comes earlier,
  so the bridge paces its audio (``EdgeCapabilities.max_buffered_ms``);
* ``{"type": "mark", "ref": "<ref>"}``: report ``played`` when playback reaches this point;
* ``{"type": "flush"}``: drop every queued audio; Acme then reports ``played`` for every mark
  still queued.

:class:`AcmeCall` holds one call's state, as a ``voicewire.bridge.Dialect``: Acme's frames in,
voicewire's edge events out, commands to frames. It reads no clock and does no I/O, so it is
tested with plain function calls; :class:`voicewire_acme.edge.AcmeEdge` (a
``voicewire.bridge.DialectEdge``) moves its frames over a socket.
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
    EdgeEvent,
    PlaybackAcknowledged,
)
from voicewire.bridge.frames import FrameError, json_object
from voicewire.bridge.marks import MarkTable

__all__ = [
    "ACME_BUFFER_MS",
    "CODECS",
    "DEFAULT_MAX_FRAME_BYTES",
    "DIGITS",
    "FRAME_MS",
    "MAX_BUFFERED_MS",
    "MAX_PLAY_BYTES",
    "MAX_REF_LENGTH",
    "AcmeCall",
]

CODECS: Final[Mapping[str, AudioFormat]] = {"pcma": ALAW_8K, "pcmu": MULAW_8K}
"""Acme's codec names and the audio formats they stand for (always 8 kHz mono)."""

FRAME_MS: Final = 20
"""Duration of one ``seq`` step."""

MAX_PLAY_BYTES: Final = 8000
"""Largest audio payload of one ``play`` frame: one second at 8 kHz."""

ACME_BUFFER_MS: Final = 250
"""How far ahead of playback Acme queues audio; what arrives earlier is dropped."""

MAX_BUFFERED_MS: Final = ACME_BUFFER_MS - 50
"""What the dialect declares as ``max_buffered_ms``: Acme's buffer, less room for jitter."""

MAX_REF_LENGTH: Final = 64
"""Longest mark ``ref`` Acme accepts."""

DEFAULT_MAX_FRAME_BYTES: Final = 64 * 1024
"""Largest inbound frame accepted; a bigger one is refused unread."""

DIGITS: Final = frozenset("0123456789*#ABCD")
"""The keys of a telephone keypad."""


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _text(obj: Mapping[str, Any], key: str, *, optional: bool = False, limit: int = 128) -> str:
    value = obj.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise FrameError(f"{obj.get('type')}.{key} must be a string of 1..{limit} characters")
    return value


class AcmeCall:
    """One Acme call: parses what Acme sends and builds what it is sent.

    Extra keys in Acme's frames are ignored, so the dialect can grow without breaking the
    plugin; everything it relies on is checked strictly.

    Args:
        max_frame_bytes: Largest inbound frame accepted.
    """

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._max_frame_bytes = max_frame_bytes
        self._format: AudioFormat = ALAW_8K
        self._call_id: str | None = None
        self._ended = False
        self._next_seq = 0
        self._refs = MarkTable("m")

    @property
    def audio_format(self) -> AudioFormat:
        """The call's audio format: announced by ``hello``, A-law 8 kHz until then."""
        return self._format

    @property
    def capabilities(self) -> EdgeCapabilities:
        """Acknowledgements (Acme's marks), the call's audio format, Acme's small buffer."""
        return EdgeCapabilities(
            acknowledgements=True,
            audio_format=self._format,
            provider="acme",
            max_buffered_ms=MAX_BUFFERED_MS,
        )

    @property
    def call_id(self) -> str | None:
        """Acme's call id, once ``hello`` arrived."""
        return self._call_id

    @property
    def ended(self) -> bool:
        """``bye`` arrived."""
        return self._ended

    # -- from Acme ------------------------------------------------------------------------------

    def receive(self, frame: str | bytes) -> EdgeEvent:
        """Make sense of one frame from Acme; a frame that breaks the dialect is an ``EdgeError``."""
        try:
            return self._receive(frame)
        except FrameError as bad:
            return bad.event()

    def _receive(self, frame: str | bytes) -> EdgeEvent:
        obj = json_object(frame, provider="Acme", max_chars=self._max_frame_bytes)
        kind = obj.get("type")
        if kind == "hello":
            return self._hello(obj)
        if self._call_id is None:
            raise FrameError(f"{str(kind)[:20]!r} before hello", "not_started")
        if self._ended:
            raise FrameError(f"{str(kind)[:20]!r} after bye", "ended")
        if kind == "audio":
            return self._audio(obj)
        if kind == "played":
            token = self._refs.resolve(_text(obj, "ref", limit=MAX_REF_LENGTH))
            if token is None:
                raise FrameError(
                    "played: a ref this call never sent (or already reported)", "unknown_ref"
                )
            return PlaybackAcknowledged(token=token)
        if kind == "key":
            digit = obj.get("digit")
            if not isinstance(digit, str) or digit not in DIGITS:
                raise FrameError("key.digit must be one of 0-9 * # A-D")
            return Dtmf(digit=digit)
        if kind == "bye":
            self._ended = True
            return CallStopped(reason=_text(obj, "reason", optional=True) or "bye")
        raise FrameError(f"unknown type {str(kind)[:20]!r}", "unknown_type")

    def _hello(self, obj: Mapping[str, Any]) -> CallStarted:
        if self._call_id is not None:
            raise FrameError("a second hello: one socket carries one call", "duplicate_hello")
        call_id = _text(obj, "call")
        fmt = CODECS.get(str(obj.get("codec")))
        if fmt is None:
            raise FrameError(f"hello.codec must be one of {', '.join(sorted(CODECS))}")
        if obj.get("rate") != fmt.sample_rate:
            raise FrameError(f"hello.rate must be {fmt.sample_rate}")
        params = obj.get("params", {})
        if not isinstance(params, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in params.items()
        ):
            raise FrameError("hello.params must map strings to strings")
        self._call_id = call_id
        self._format = fmt
        return CallStarted(
            call_id=call_id, stream_id=None, audio_format=fmt, custom_parameters=params
        )

    def _audio(self, obj: Mapping[str, Any]) -> CallerAudio:
        seq = obj.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise FrameError("audio.seq must be an integer >= 0")
        payload = obj.get("data")
        if not isinstance(payload, str) or not payload:
            raise FrameError("audio.data must be non-empty base64")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise FrameError("audio.data is not valid base64") from None
        if len(data) % self._format.bytes_per_frame:
            raise FrameError("audio.data is not whole samples")
        if seq < self._next_seq:
            # A late or repeated frame: its slot was already filled (or padded by the bridge).
            raise FrameError(f"audio.seq {seq} arrived after {self._next_seq - 1}", "out_of_order")
        self._next_seq = seq + 1
        return CallerAudio(data=data, timestamp_ms=seq * FRAME_MS)

    # -- to Acme --------------------------------------------------------------------------------

    def play(self, data: bytes) -> list[str]:
        """The ``play`` frames for ``data`` (split at :data:`MAX_PLAY_BYTES`)."""
        return [
            _dumps(
                {"type": "play", "data": base64.b64encode(data[i : i + MAX_PLAY_BYTES]).decode()}
            )
            for i in range(0, len(data), MAX_PLAY_BYTES)
        ]

    def mark(self, token: str) -> str:
        """The ``mark`` frame that reports ``token`` back once playback reaches it."""
        return _dumps({"type": "mark", "ref": self._refs.issue(token)})

    def clear(self) -> str:
        """The ``flush`` frame. Marks stay outstanding: Acme reports each one as ``played``."""
        return _dumps({"type": "flush"})
