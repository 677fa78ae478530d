"""Telnyx's side of a stream, for :class:`voicewire.testing.telephony.SimulatedCaller`.

The dialect builds what Telnyx sends and checks, strictly, what it is sent. It shares only
constants with :mod:`voicewire_telnyx.protocol`, so a bug in the plugin's parser is not repeated
here::

    from voicewire.testing.telephony import SimulatedCaller
    from voicewire_telnyx.caller import TelnyxDialect

    async with SimulatedCaller(url, TelnyxDialect(codec="L16")) as caller:
        await caller.say(audio)          # L16: big-endian pcm16be at 16 kHz, as on the wire
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from voicewire.audio.formats import ALAW_8K, MULAW_8K, AudioFormat
from voicewire.testing.telephony import (
    DialectViolation,
    OutboundAudio,
    OutboundClear,
    OutboundMark,
    OutboundMessage,
    json_frame,
)
from voicewire_telnyx.protocol import DIGITS, MAX_NAME_LENGTH

__all__ = ["AUTH_HEADER", "TelnyxDialect"]

AUTH_HEADER = "x-telnyx-streaming-auth-token"
"""The upgrade header carrying the streaming auth token, when one is configured."""

_KEYS = {"media": {"event", "media"}, "mark": {"event", "mark"}, "clear": {"event"}}
_MAX_MEDIA_SECONDS = 30  # Telnyx: 20 ms .. 30 s of audio per chunk


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


class TelnyxDialect:
    """Telnyx media streaming, from Telnyx's side. One object per call.

    Args:
        codec: ``"PCMU"`` (default), ``"PCMA"`` or ``"L16"``.
        sample_rate: The L16 rate (16000 by default); G.711 is always 8000.
        call_control_id: ``start.call_control_id`` (random by default).
        custom_parameters: ``start.custom_parameters``.
        auth_token: Sent as the ``x-telnyx-streaming-auth-token`` upgrade header and in
            ``connected``, as Telnyx does when a streaming auth token is configured.
    """

    def __init__(
        self,
        *,
        codec: str = "PCMU",
        sample_rate: int | None = None,
        call_control_id: str | None = None,
        custom_parameters: Mapping[str, str] | None = None,
        auth_token: str | None = None,
    ) -> None:
        if codec == "L16":
            self._format = AudioFormat(encoding="pcm16be", sample_rate=sample_rate or 16000)
        elif codec in ("PCMU", "PCMA") and sample_rate in (None, 8000):
            self._format = MULAW_8K if codec == "PCMU" else ALAW_8K
        else:
            raise ValueError(f"unsupported codec/rate: {codec!r} at {sample_rate!r}")
        self.codec = codec
        self.call_control_id = call_control_id or f"v3:{secrets.token_urlsafe(24)}"
        self.stream_id = secrets.token_hex(16)
        self.custom_parameters = dict(custom_parameters or {})
        self.auth_token = auth_token
        self._sequence = 0
        self._chunk = 0

    def __repr__(self) -> str:
        return f"<TelnyxDialect codec={self.codec} rate={self._format.sample_rate}>"

    @property
    def audio_format(self) -> AudioFormat:
        """The stream's format (L16 is big-endian ``pcm16be``)."""
        return self._format

    def upgrade_headers(self, url: str) -> Mapping[str, str]:
        """The streaming auth token header, if one is configured."""
        return {AUTH_HEADER: self.auth_token} if self.auth_token else {}

    def _frame(self, event: str, **fields: Any) -> str:
        self._sequence += 1
        body = {"event": event, "sequence_number": str(self._sequence)}
        body["stream_id"] = self.stream_id
        return _dumps({**body, **fields})

    def opening(self) -> Sequence[str]:
        """``connected`` then ``start``."""
        connected: dict[str, Any] = {"event": "connected", "version": "1.0.0"}
        if self.auth_token:
            connected[AUTH_HEADER] = self.auth_token
        start = {
            "user_id": "00000000-0000-4000-8000-000000000000",
            "call_control_id": self.call_control_id,
            "call_session_id": secrets.token_hex(8),
            "from": "+13125550100",
            "to": "+13125550199",
            "custom_parameters": self.custom_parameters,
            "media_format": {
                "encoding": self.codec,
                "sample_rate": self._format.sample_rate,
                "channels": 1,
            },
        }
        return [_dumps(connected), self._frame("start", start=start)]

    def media(self, audio: bytes, timestamp_ms: int) -> str:
        """Inbound-track ``media``; the payload is the audio as given (L16: big-endian)."""
        self._chunk += 1
        media = {
            "track": "inbound",
            "chunk": str(self._chunk),
            "timestamp": str(timestamp_ms),
            "payload": base64.b64encode(audio).decode("ascii"),
        }
        return self._frame("media", media=media)

    def dtmf(self, digit: str) -> str:
        """``dtmf``."""
        if digit not in DIGITS:
            raise ValueError(f"not a keypad key: {digit!r}")
        return self._frame("dtmf", dtmf={"digit": digit})

    def mark_played(self, name: str) -> str:
        """``mark`` sent back."""
        return self._frame("mark", mark={"name": name})

    def stop(self) -> str:
        """``stop``."""
        return self._frame("stop", stop={"call_control_id": self.call_control_id})

    def decode(self, frame: str | bytes) -> OutboundMessage:
        """Check a frame sent to Telnyx.

        Raises:
            DialectViolation: Binary, not a JSON object, an unknown event, missing or extra
                keys, bad base64, empty, oversized or partial-sample audio, a bad mark name.
        """
        obj = json_frame(frame, provider="Telnyx")
        kind = obj.get("event")
        expected = _KEYS.get(kind) if isinstance(kind, str) else None
        if expected is None:
            raise DialectViolation(f"unknown event {str(kind)[:20]!r}")
        if set(obj) != expected:
            raise DialectViolation(f"{kind}: keys must be exactly {sorted(expected)}")
        if kind == "media":
            media = obj["media"]
            if not isinstance(media, dict) or set(media) != {"payload"}:
                raise DialectViolation("media: must be an object with exactly 'payload'")
            payload = media["payload"]
            try:
                data = base64.b64decode(payload, validate=True) if isinstance(payload, str) else b""
            except (binascii.Error, ValueError):
                raise DialectViolation("media.payload is not valid base64") from None
            limit = self._format.sample_rate * self._format.bytes_per_frame * _MAX_MEDIA_SECONDS
            if not data or len(data) > limit or len(data) % self._format.bytes_per_frame:
                raise DialectViolation(f"media.payload must hold 1..{limit} bytes, whole samples")
            return OutboundAudio(data=data)
        if kind == "mark":
            mark = obj["mark"]
            name = mark.get("name") if isinstance(mark, dict) and set(mark) == {"name"} else None
            if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
                raise DialectViolation("mark must be {'name': <1..64 chars>}")
            return OutboundMark(name=name)
        return OutboundClear()
