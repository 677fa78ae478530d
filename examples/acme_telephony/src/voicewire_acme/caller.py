"""Acme's side of a call, for :class:`voicewire.testing.telephony.SimulatedCaller`.

The dialect builds what Acme sends and checks, strictly, what it is sent: unknown types, missing
or extra keys, bad base64, oversized audio and bad refs are violations the test sees. It
shares only constants with :mod:`voicewire_acme.protocol`, so a bug in the plugin's parser is
not repeated here::

    from voicewire.testing.telephony import SimulatedCaller
    from voicewire_acme.caller import AcmeDialect

    async with SimulatedCaller(url, AcmeDialect()) as caller:
        await caller.say(audio)
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from voicewire.audio.formats import AudioFormat
from voicewire.testing.telephony import (
    DialectViolation,
    OutboundAudio,
    OutboundClear,
    OutboundMark,
    OutboundMessage,
    json_frame,
)
from voicewire_acme.protocol import CODECS, DIGITS, FRAME_MS, MAX_PLAY_BYTES, MAX_REF_LENGTH

__all__ = ["AcmeDialect"]

_KEYS = {"play": {"type", "data"}, "mark": {"type", "ref"}, "flush": {"type"}}


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


class AcmeDialect:
    """Acme Voice, from Acme's side. One object per call.

    Args:
        call_id: The ``hello.call`` id (random by default).
        codec: ``"pcma"`` (A-law, the default) or ``"pcmu"`` (mu-law).
        params: ``hello.params``.
    """

    def __init__(
        self,
        *,
        call_id: str | None = None,
        codec: str = "pcma",
        params: Mapping[str, str] | None = None,
    ) -> None:
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(sorted(CODECS))}, got {codec!r}")
        self.call_id = call_id or f"acme-{secrets.token_hex(8)}"
        self.codec = codec
        self.params = dict(params or {})

    def __repr__(self) -> str:
        return f"<AcmeDialect call={self.call_id} codec={self.codec}>"

    @property
    def audio_format(self) -> AudioFormat:
        """The codec's format."""
        return CODECS[self.codec]

    def upgrade_headers(self, url: str) -> Mapping[str, str]:
        """None: Acme's demo service signs nothing."""
        return {}

    def opening(self) -> Sequence[str]:
        """``hello``."""
        hello = {
            "type": "hello",
            "call": self.call_id,
            "codec": self.codec,
            "rate": self.audio_format.sample_rate,
            "params": self.params,
        }
        return [_dumps(hello)]

    def media(self, audio: bytes, timestamp_ms: int) -> str:
        """``audio``, its ``seq`` from the media clock."""
        data = base64.b64encode(audio).decode("ascii")
        return _dumps({"type": "audio", "seq": timestamp_ms // FRAME_MS, "data": data})

    def dtmf(self, digit: str) -> str:
        """``key``."""
        if digit not in DIGITS:
            raise ValueError(f"not a keypad key: {digit!r}")
        return _dumps({"type": "key", "digit": digit})

    def mark_played(self, name: str) -> str:
        """``played``."""
        return _dumps({"type": "played", "ref": name})

    def stop(self) -> str:
        """``bye``."""
        return _dumps({"type": "bye", "reason": "hangup"})

    def decode(self, frame: str | bytes) -> OutboundMessage:
        """Check a frame sent to Acme.

        Raises:
            DialectViolation: Binary, not a JSON object, an unknown type, missing or extra keys,
                bad base64, empty or oversized audio, a bad ref.
        """
        obj = json_frame(frame, provider="Acme")
        kind = obj.get("type")
        expected = _KEYS.get(kind) if isinstance(kind, str) else None
        if expected is None:
            raise DialectViolation(f"unknown type {str(kind)[:20]!r}")
        if set(obj) != expected:
            raise DialectViolation(f"{kind}: keys must be exactly {sorted(expected)}")
        if kind == "play":
            payload = obj["data"]
            try:
                data = base64.b64decode(payload, validate=True) if isinstance(payload, str) else b""
            except (binascii.Error, ValueError):
                raise DialectViolation("play.data is not valid base64") from None
            if not data or len(data) > MAX_PLAY_BYTES:
                raise DialectViolation(f"play.data must hold 1..{MAX_PLAY_BYTES} bytes")
            return OutboundAudio(data=data)
        if kind == "mark":
            ref = obj["ref"]
            if not isinstance(ref, str) or not 1 <= len(ref) <= MAX_REF_LENGTH:
                raise DialectViolation(f"mark.ref must be a string of 1..{MAX_REF_LENGTH} chars")
            return OutboundMark(name=ref)
        return OutboundClear()
