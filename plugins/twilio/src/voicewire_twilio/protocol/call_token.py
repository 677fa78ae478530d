"""Call tokens: binding a stream's ``start`` to a webhook that Twilio signed.

Twilio signs a Media Streams upgrade over its URL alone, so the signature is the same for every
call and never expires: whoever sees one upgrade can open more, and the ``start`` that follows,
with its ``callSid`` and ``customParameters``, is whatever the peer writes. The webhook, though,
is signed over the call's own form fields. A call token carries that trust over to the stream:
the webhook handler (after checking the webhook's signature) puts a token in the TwiML as one
more ``<Parameter>``; Twilio hands it back inside ``start.customParameters``; the edge checks it
before any audio reaches the model.

The token is ``v1.<issued>.<mac>``: ``issued`` is the minting time in whole seconds of the Unix
epoch, and ``mac`` the unpadded base64url of an HMAC-SHA256 over the version, ``issued``, the
``callSid`` and every other custom parameter (names and values, in a form that cannot be read two
ways). The key is derived from the account's auth token, so every process of a deployment that
shares the token accepts the others' tokens, and nothing else can mint one. A token is good for
``max_age`` seconds and, within one :class:`CallTokens`, for one stream.

Time is passed in (wall-clock seconds, as the processes of a deployment agree on them); nothing
here reads a clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from typing import Final, Literal

from voicewire.errors import ConfigError

__all__ = ["CALL_TOKEN_PARAMETER", "CallTokenVerdict", "CallTokens"]

CALL_TOKEN_PARAMETER: Final = "voicewire_call_token"
"""The ``<Parameter>`` name that carries the token."""

CallTokenVerdict = Literal["ok", "missing", "malformed", "expired", "forged", "reused"]
"""What :meth:`CallTokens.check` found."""

_VERSION: Final = "v1"
_CONTEXT: Final = b"voicewire call token v1"
_MAC_CHARS: Final = 43  # 32 bytes of HMAC-SHA256, base64url without padding
_MAX_SKEW: Final = 30.0  # seconds a token may appear to come from the future (clock skew)


class CallTokens:
    """Mints and checks call tokens for one deployment.

    Args:
        auth_token: The Twilio account's auth token (the webhook's signing key). The token key is
            derived from it and never leaves this object; neither appears in a repr or an error.
        max_age: Seconds a token stays good after it was minted (default 120: Twilio opens the
            stream right after it fetched the TwiML).

    Raises:
        ConfigError: An empty auth token, or ``max_age`` not a positive finite number.
    """

    __slots__ = ("_key", "_max_age", "_used")

    def __init__(self, auth_token: str, *, max_age: float = 120.0) -> None:
        if not isinstance(auth_token, str) or not auth_token:
            raise ConfigError("auth_token", "must be a non-empty str")
        if (
            isinstance(max_age, bool)
            or not isinstance(max_age, (int, float))
            or not 0 < max_age < math.inf
        ):
            raise ConfigError("max_age", "must be a positive finite number of seconds")
        try:
            secret = auth_token.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError("auth_token", "must be valid Unicode text") from None
        self._key = hmac.new(secret, _CONTEXT, hashlib.sha256).digest()
        self._max_age = float(max_age)
        # Token -> the time after which it would be refused as expired anyway.
        self._used: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"CallTokens(max_age={self._max_age:g})"

    @property
    def max_age(self) -> float:
        """Seconds a token stays good after it was minted."""
        return self._max_age

    def mint(self, call_sid: str, parameters: Mapping[str, str], now: float) -> str:
        """The token for the call ``call_sid`` whose stream will carry ``parameters``.

        ``parameters`` are the other ``<Parameter>`` values of the TwiML; ``now`` is the
        wall-clock time in seconds.
        """
        issued = str(int(now))
        return f"{_VERSION}.{issued}.{self._mac(issued, call_sid, parameters)}"

    def check(self, call_sid: str, parameters: Mapping[str, str], now: float) -> CallTokenVerdict:
        """Check the token in a ``start``'s custom ``parameters`` (with its ``callSid``).

        ``"ok"`` uses the token up: the same token is ``"reused"`` afterwards.
        """
        token = parameters.get(CALL_TOKEN_PARAMETER)
        if token is None:
            return "missing"
        parts = token.split(".") if isinstance(token, str) else []
        if (
            len(parts) != 3
            or parts[0] != _VERSION
            or not parts[1].isdigit()
            or not parts[1].isascii()
            or len(parts[1]) > 12
            or len(parts[2]) != _MAC_CHARS
        ):
            return "malformed"
        issued = int(parts[1])
        others = {name: value for name, value in parameters.items() if name != CALL_TOKEN_PARAMETER}
        expected = self._mac(parts[1], call_sid, others)
        if not hmac.compare_digest(expected.encode(), parts[2].encode("ascii", "replace")):
            return "forged"
        if not issued - _MAX_SKEW <= now <= issued + self._max_age:
            return "expired"
        self._forget_expired(now)
        if token in self._used:
            return "reused"
        self._used[token] = issued + self._max_age
        return "ok"

    def _mac(self, issued: str, call_sid: str, parameters: Mapping[str, str]) -> str:
        # JSON of a sorted list of pairs: no two different inputs give the same text.
        message = json.dumps(
            [_VERSION, issued, call_sid, sorted(parameters.items())],
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8", "surrogatepass")
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def _forget_expired(self, now: float) -> None:
        if self._used:
            for token in [t for t, until in self._used.items() if until < now]:
                del self._used[token]
