"""The Twilio dialect of the simulated caller: Twilio's side of a Media Stream, strictly checked.

Use it with :class:`voicewire.testing.telephony.SimulatedCaller` to play Twilio against a bridge::

    from voicewire.testing.telephony import SimulatedCaller
    from voicewire_twilio.caller import TwilioDialect

    async with SimulatedCaller(url, TwilioDialect(auth_token=token)) as caller:
        await caller.say(audio)

Every frame the bridge sends is checked the way Twilio does (error 31950 for a binary frame,
31951 for an unknown event, a missing or extra key, or another ``streamSid``), but strictly: a
violation is recorded instead of being ignored, so a test sees it.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from voicewire.audio.formats import MULAW_8K, AudioFormat
from voicewire.testing.telephony import (
    DialectViolation,
    OutboundAudio,
    OutboundClear,
    OutboundMark,
    OutboundMessage,
)
from voicewire_twilio.protocol import (
    DTMF_DIGITS,
    MAX_MARK_NAME_LENGTH,
    SIGNATURE_HEADER,
    TwilioProtocolError,
    compute_signature,
    load_json,
    websocket_signature_url,
)

__all__ = ["TwilioDialect", "new_sid"]

_MAX_OUTBOUND_BYTES = 16 * 1024 * 1024
_MEDIA_KEYS = frozenset({"event", "streamSid", "media"})
_MARK_KEYS = frozenset({"event", "streamSid", "mark"})
_CLEAR_KEYS = frozenset({"event", "streamSid"})


def new_sid(prefix: str) -> str:
    """A Twilio-shaped id: ``prefix`` (``MZ``, ``CA``, ``AC``) and 32 random hex digits."""
    return prefix + secrets.token_hex(16)


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


class TwilioDialect:
    """Twilio Media Streams, from Twilio's side, for :class:`SimulatedCaller`. One per call.

    Args:
        auth_token: When set, the upgrade carries ``X-Twilio-Signature`` computed over
            ``signed_url`` the way Twilio signs a stream. Never shown in a repr.
        signed_url: The URL Twilio would have dialled (``wss://PUBLIC/media-stream``); defaults
            to the dialled URL with its scheme mapped to ``wss``/``ws`` and no query.
        stream_sid, call_sid, account_sid: Ids for ``start`` (random Twilio-shaped by default).
        custom_parameters: ``start.customParameters``.
        media_format: ``start.mediaFormat`` (Twilio always announces mu-law 8 kHz mono).
    """

    def __init__(
        self,
        *,
        auth_token: str | None = None,
        signed_url: str | None = None,
        stream_sid: str | None = None,
        call_sid: str | None = None,
        account_sid: str | None = None,
        custom_parameters: Mapping[str, str] | None = None,
        media_format: AudioFormat = MULAW_8K,
    ) -> None:
        self._auth_token = auth_token
        self._signed_url = signed_url
        self.stream_sid = stream_sid or new_sid("MZ")
        self.call_sid = call_sid or new_sid("CA")
        self.account_sid = account_sid or new_sid("AC")
        self.custom_parameters = dict(custom_parameters or {})
        self._format = media_format
        self._sequence = 0
        self._chunk = 0

    def __repr__(self) -> str:
        return f"<TwilioDialect stream={self.stream_sid} call={self.call_sid}>"

    @property
    def audio_format(self) -> AudioFormat:
        """The announced media format."""
        return self._format

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def upgrade_headers(self, url: str) -> Mapping[str, str]:
        """``X-Twilio-Signature`` over the signed URL, when an auth token is set."""
        if self._auth_token is None:
            return {}
        signed = self._signed_url or websocket_signature_url(url)
        return {SIGNATURE_HEADER: compute_signature(self._auth_token, signed)}

    def opening(self) -> Sequence[str]:
        """``connected`` then ``start``."""
        encoding = {"mulaw": "audio/x-mulaw", "alaw": "audio/x-alaw"}.get(
            self._format.encoding, "audio/x-l16"
        )
        start = {
            "event": "start",
            "sequenceNumber": self._next(),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": self.custom_parameters,
                "mediaFormat": {
                    "encoding": encoding,
                    "sampleRate": self._format.sample_rate,
                    "channels": self._format.channels,
                },
            },
            "streamSid": self.stream_sid,
        }
        connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        return [_dumps(connected), _dumps(start)]

    def media(self, audio: bytes, timestamp_ms: int) -> str:
        """A ``media`` message of the inbound track."""
        self._chunk += 1
        return _dumps(
            {
                "event": "media",
                "sequenceNumber": self._next(),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str(timestamp_ms),
                    "payload": base64.b64encode(audio).decode("ascii"),
                },
                "streamSid": self.stream_sid,
            }
        )

    def dtmf(self, digit: str) -> str:
        """A ``dtmf`` message."""
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF key: {digit!r}")
        return _dumps(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    def mark_played(self, name: str) -> str:
        """The echo of a mark."""
        return _dumps(
            {
                "event": "mark",
                "sequenceNumber": self._next(),
                "streamSid": self.stream_sid,
                "mark": {"name": name},
            }
        )

    def stop(self) -> str:
        """The ``stop`` message."""
        return _dumps(
            {
                "event": "stop",
                "sequenceNumber": self._next(),
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                "streamSid": self.stream_sid,
            }
        )

    def decode(self, frame: str | bytes) -> OutboundMessage:
        """Check a frame from the bridge exactly as Twilio's rules have it.

        Raises:
            DialectViolation: binary frame (31950); not JSON, unknown event, missing or extra key,
                wrong type, another ``streamSid``, bad base64, empty payload, bad mark name (31951).
        """
        if not isinstance(frame, str):
            raise DialectViolation(f"31950: binary frame of {len(frame)} bytes; send text only")
        try:
            obj = load_json(frame, max_bytes=_MAX_OUTBOUND_BYTES)
        except TwilioProtocolError as exc:
            raise DialectViolation(f"31951: {exc}") from None
        event = obj.get("event")
        if event == "media":
            self._keys(obj, _MEDIA_KEYS, "")
            media = obj["media"]
            if not isinstance(media, dict):
                raise DialectViolation("31951: media must be an object")
            self._keys(media, frozenset({"payload"}), "media.")
            payload = media["payload"]
            if not isinstance(payload, str) or not payload:
                raise DialectViolation("31951: media.payload must be a non-empty string")
            try:
                data = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise DialectViolation("31951: media.payload is not valid base64") from None
            self._sid(obj)
            return OutboundAudio(data=data)
        if event == "mark":
            self._keys(obj, _MARK_KEYS, "")
            mark = obj["mark"]
            if not isinstance(mark, dict):
                raise DialectViolation("31951: mark must be an object")
            self._keys(mark, frozenset({"name"}), "mark.")
            name = mark["name"]
            if not isinstance(name, str) or not name or len(name) > MAX_MARK_NAME_LENGTH:
                raise DialectViolation("31951: mark.name must be a string of 1..256 characters")
            self._sid(obj)
            return OutboundMark(name=name)
        if event == "clear":
            self._keys(obj, _CLEAR_KEYS, "")
            self._sid(obj)
            return OutboundClear()
        shown = repr(event)[:40] if isinstance(event, str) else type(event).__name__
        raise DialectViolation(f"31951: unknown or missing event {shown}")

    @staticmethod
    def _keys(obj: Mapping[str, Any], expected: frozenset[str], prefix: str) -> None:
        keys = set(obj)
        missing = sorted(expected - keys)
        extra = sorted(keys - expected)
        if missing:
            raise DialectViolation(f"31951: missing {', '.join(prefix + k for k in missing)}")
        if extra:
            shown = ", ".join(prefix + k[:40] for k in extra[:5])
            raise DialectViolation(f"31951: extra key(s) {shown}")

    def _sid(self, obj: Mapping[str, Any]) -> None:
        if obj.get("streamSid") != self.stream_sid:
            raise DialectViolation("31951: streamSid is not this stream's")
