"""``X-Twilio-Signature``: computing and checking Twilio's request signatures.

The signed string is the URL exactly as Twilio requested it, followed, for form ``POST``
requests, by every parameter name and value with no separators, names in code-point order (the
same as UTF-8 byte order) and a repeated name's values sorted (duplicates counted once, as the
official twilio-python validator does). The signature is the base64 of the HMAC-SHA1 of that
string keyed with the account's Auth Token.

URL handling when validating, decided deliberately:

- Tried as given first, byte for byte: no normalisation of case, percent-encoding, trailing
  slash or query order (Twilio signs the URL as configured, so normalising would only create
  mismatches, or accept a URL Twilio never signed).
- Because Twilio is inconsistent about explicit ports, a URL with a port is also tried without it
  and a URL without one is also tried with its scheme's default port (``:443`` for ``https`` and
  ``wss``, ``:80`` for ``http`` and ``ws``). twilio-python does the same, except that it adds
  ``:80`` to ``wss`` URLs; ``wss://host:80`` is never what Twilio dialled, so it is not tried.
- A Media Streams WebSocket upgrade is signed over ``wss://host/path`` with no query and no
  parameters, although the server sees ``https``/``http``: :func:`websocket_signature_url`
  builds that URL.

The Auth Token never appears in an exception message or a repr.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence

import attrs

from voicewire.errors import ConfigError

__all__ = [
    "SIGNATURE_HEADER",
    "SignatureParams",
    "SignatureValidator",
    "compute_signature",
    "signature_url_candidates",
    "validate_signature",
    "websocket_signature_url",
]

SIGNATURE_HEADER = "X-Twilio-Signature"
"""The HTTP header that carries the signature."""

SignatureParams = Mapping[str, str | Sequence[str]]
"""Form parameters: a value or a sequence of values per name. Multidicts with ``getall`` (aiohttp,
Flask) and ``getlist`` (Django) are read with every value of a repeated name."""

_DEFAULT_PORTS = {"https": "443", "wss": "443", "http": "80", "ws": "80"}
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<netloc>[^/?#]*)(?P<rest>.*)", re.S)


class _UnsignableParams(Exception):
    """A parameter name or value is not a str, so Twilio cannot have signed it."""


def _token_key(auth_token: str) -> bytes:
    # Messages name the problem, never the value; `from None` keeps the token out of the chain.
    if not isinstance(auth_token, str):
        raise TypeError(f"auth_token must be a str, got {type(auth_token).__name__}")
    if not auth_token:
        raise ConfigError("auth_token", "must not be empty (anyone could forge signatures)")
    try:
        return auth_token.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError("auth_token", "must be valid Unicode text") from None


def _values(params: SignatureParams, name: str) -> Iterable[object]:
    for accessor in ("getall", "getlist"):
        method = getattr(params, accessor, None)
        if callable(method):
            values: Iterable[object] = method(name)
            return values
    value: object = params[name]
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence):
        return value
    raise _UnsignableParams


def _strings(items: Iterable[object]) -> list[str]:
    checked: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise _UnsignableParams
        checked.append(item)
    return checked


def _signed_string(url: str, params: SignatureParams | None) -> bytes:
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    pieces = [url]
    if params:
        # A multidict lists a repeated name once per value; each name is signed once.
        for name in sorted(set(_strings(params))):
            for value in sorted(set(_strings(_values(params, name)))):
                pieces.append(name)
                pieces.append(value)
    try:
        return "".join(pieces).encode("utf-8")
    except UnicodeEncodeError:
        raise _UnsignableParams from None


def _sign(key: bytes, message: bytes) -> str:
    digest = hmac.new(key, message, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def compute_signature(auth_token: str, url: str, params: SignatureParams | None = None) -> str:
    """Compute the signature Twilio sends for a request (what a fake Twilio puts in the header).

    Args:
        auth_token: The account's Auth Token.
        url: The full URL, exactly as requested (scheme, host, port if any, path, query).
        params: The form parameters of a ``POST``; ``None`` or empty for ``GET`` requests and
            WebSocket upgrades.

    Returns:
        The base64 signature (28 characters).

    Raises:
        ConfigError: ``auth_token`` is empty.
        TypeError: ``auth_token`` or ``url`` is not a str, or a parameter name or value is not a
            str.
    """
    key = _token_key(auth_token)
    try:
        message = _signed_string(url, params)
    except _UnsignableParams:
        raise TypeError("every parameter name and value must be a str (valid Unicode)") from None
    return _sign(key, message)


def _split_netloc(netloc: str) -> tuple[str, str | None] | None:
    # -> (everything before the port, the port's digits or None), or None if unparseable.
    # Handles "user:pass@" (whose colon is not a port) and bracketed IPv6 hosts.
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end == -1:
            return None
        host, rest = hostport[: end + 1], hostport[end + 1 :]
    else:
        host, colon, port = hostport.partition(":")
        rest = colon + port
    if not host:
        return None
    if not rest:
        return userinfo + at + host, None
    digits = rest[1:]
    if rest.startswith(":") and digits.isascii() and digits.isdigit():
        return userinfo + at + host, digits
    return None


def signature_url_candidates(url: str) -> tuple[str, ...]:
    """The URLs :func:`validate_signature` tries for ``url``, in order.

    Args:
        url: The URL as the server reconstructed it.

    Returns:
        ``url`` itself, then the same URL with its explicit port removed, or with its scheme's
        default port added when it has none (no second candidate for unknown schemes or URLs
        whose authority cannot be parsed).
    """
    match = _URL.fullmatch(url)
    split = _split_netloc(match["netloc"]) if match else None
    if match is None or split is None:
        return (url,)
    scheme, rest = match["scheme"], match["rest"]
    hostpart, port = split
    if port is not None:
        return (url, f"{scheme}://{hostpart}{rest}")
    default = _DEFAULT_PORTS.get(scheme.lower())
    if default is None:
        return (url,)
    return (url, f"{scheme}://{hostpart}:{default}{rest}")


def validate_signature(
    auth_token: str,
    url: str,
    params: SignatureParams | None,
    signature: str | None,
) -> bool:
    """Check an ``X-Twilio-Signature`` header in constant time.

    Args:
        auth_token: The account's Auth Token.
        url: The full URL Twilio requested, as reconstructed by the server (behind a proxy, use
            the public URL); for a Media Streams upgrade, :func:`websocket_signature_url`.
        params: The form parameters of a ``POST`` (``None`` or empty otherwise).
        signature: The header's value; ``None`` when the header is missing.

    Returns:
        Whether the signature matches ``url`` or one of its port variants (see
        :func:`signature_url_candidates`). A missing or non-ASCII signature, or parameters that
        are not all strings, simply do not match.

    Raises:
        ConfigError: ``auth_token`` is empty.
        TypeError: ``auth_token`` or ``url`` is not a str.
    """
    key = _token_key(auth_token)
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    if not isinstance(signature, str):
        return False
    try:
        # compare_digest refuses non-ASCII str, so compare bytes; a non-ASCII header can't match.
        given = signature.encode("ascii")
    except UnicodeEncodeError:
        return False
    matched = False
    for candidate in signature_url_candidates(url):
        try:
            message = _signed_string(candidate, params)
        except _UnsignableParams:
            return False
        # Every candidate is compared, so timing does not reveal which variant was close.
        matched |= hmac.compare_digest(_sign(key, message).encode("ascii"), given)
    return matched


def websocket_signature_url(url: str) -> str:
    """The URL Twilio signs for a Media Streams WebSocket upgrade.

    Args:
        url: The stream URL as Twilio dialled it or as the server sees it (``https://`` or
            ``http://`` upgrade URL, or the ``wss://`` URL from the TwiML).

    Returns:
        The URL with scheme ``wss`` (``ws`` for ``http``/``ws``), and without query and fragment:
        ``https://h.example/media-stream?x=1`` -> ``wss://h.example/media-stream``.

    Raises:
        ValueError: ``url`` is not an absolute http, https, ws or wss URL.
    """
    match = _URL.fullmatch(url) if isinstance(url, str) else None
    scheme = match["scheme"].lower() if match else ""
    if match is None or scheme not in _DEFAULT_PORTS or not match["netloc"]:
        raise ValueError("url must be an absolute http, https, ws or wss URL")
    secure = scheme in ("https", "wss")
    path = re.split(r"[?#]", match["rest"], maxsplit=1)[0]
    return f"{'wss' if secure else 'ws'}://{match['netloc']}{path}"


@attrs.frozen
class SignatureValidator:
    """Holds an Auth Token and checks or computes signatures with it; the repr hides the token.

    Args:
        auth_token: The account's Auth Token.

    Raises:
        ConfigError: ``auth_token`` is empty.
        TypeError: ``auth_token`` is not a str.
    """

    _auth_token: str = attrs.field(repr=False, alias="auth_token")

    def __attrs_post_init__(self) -> None:
        _token_key(self._auth_token)

    def compute(self, url: str, params: SignatureParams | None = None) -> str:
        """:func:`compute_signature` with this validator's token."""
        return compute_signature(self._auth_token, url, params)

    def validate(self, url: str, params: SignatureParams | None, signature: str | None) -> bool:
        """:func:`validate_signature` with this validator's token."""
        return validate_signature(self._auth_token, url, params, signature)
