"""TwiML that connects a call to a bidirectional Media Stream.

The document is assembled from escaped pieces (:func:`xml.sax.saxutils.escape` with the extra
entities an attribute needs), never from raw values, and every value is first checked for
characters XML 1.0 cannot carry at all; the tests parse the output back with ElementTree and get
every value back unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal
from xml.sax.saxutils import escape

from voicewire_twilio.protocol.errors import TwilioBuildError

__all__ = ["connect_stream_twiml"]

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'

# Quotes delimit the attribute; a literal tab, CR or LF inside an attribute would be normalised
# to a space by every XML parser, so they travel as character references.
_ATTRIBUTE_ENTITIES = {'"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}

# Outside XML 1.0's Char production: C0 controls other than tab/LF/CR, surrogates, U+FFFE/U+FFFF.
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_STREAM_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>[^/?#\s]+)[^?#\s]*")
_CALLBACK_URL = re.compile(r"https?://[^/?#\s]+\S*", re.IGNORECASE)


def _attribute(name: str, value: str) -> str:
    return f'{name}="{escape(value, _ATTRIBUTE_ENTITIES)}"'


def _checked_text(field: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, got {type(value).__name__}")
    if not value and not allow_empty:
        raise TwilioBuildError(field, "must not be empty")
    if _NOT_XML_CHAR.search(value):
        raise TwilioBuildError(field, "contains a character XML cannot carry")
    return value


def _checked_stream_url(url: object, *, allow_insecure: bool) -> str:
    text = _checked_text("stream_url", url)
    if "?" in text:
        # Twilio strips the query before dialling; silently losing data is worse than refusing.
        raise TwilioBuildError("stream_url", "must not carry a query string; use parameters")
    if "#" in text:
        raise TwilioBuildError("stream_url", "must not carry a fragment")
    match = _STREAM_URL.fullmatch(text)
    if match is None:
        raise TwilioBuildError("stream_url", "must be an absolute wss:// URL without whitespace")
    allowed = ("wss", "ws") if allow_insecure else ("wss",)
    if match["scheme"].lower() not in allowed:
        # Twilio refuses any other scheme (error 31922); ws:// only helps local fakes.
        raise TwilioBuildError("stream_url", f"scheme must be one of {allowed}")
    return text


def connect_stream_twiml(
    stream_url: str,
    parameters: Mapping[str, str] | None = None,
    *,
    name: str | None = None,
    status_callback: str | None = None,
    status_callback_method: Literal["GET", "POST"] | None = None,
    allow_insecure: bool = False,
) -> str:
    """Build the TwiML that answers a call by streaming it to ``stream_url``.

    ``<Connect>`` holds the call until the server closes the WebSocket, then Twilio carries on
    with the next verb (none here, so the call ends).

    Args:
        stream_url: The media-stream WebSocket URL, ``wss://host/path``. Twilio drops query
            strings, so none is accepted.
        parameters: Sent back in ``start.customParameters`` as ``<Parameter>`` elements, in the
            mapping's order. Names must be non-empty; values may be empty.
        name: The stream's ``name`` attribute (unique per call).
        status_callback: URL Twilio notifies of stream events (``http`` or ``https``).
        status_callback_method: ``"GET"`` or ``"POST"`` (Twilio's default is ``POST``).
        allow_insecure: Accept a ``ws://`` stream URL, for fakes on loopback. Twilio itself
            only dials ``wss://``.

    Returns:
        ``<?xml …?><Response><Connect><Stream url="…">(<Parameter name="…" value="…"/>)*
        </Stream></Connect></Response>`` on one line (``<Stream url="…"/>`` when there are no
        parameters).

    Raises:
        TwilioBuildError: A URL or value Twilio would refuse or that XML cannot carry.
        TypeError: A value is not a str.
    """
    attributes = [_attribute("url", _checked_stream_url(stream_url, allow_insecure=allow_insecure))]
    if name is not None:
        attributes.append(_attribute("name", _checked_text("name", name)))
    if status_callback is not None:
        callback = _checked_text("status_callback", status_callback)
        if _CALLBACK_URL.fullmatch(callback) is None:
            raise TwilioBuildError("status_callback", "must be an absolute http(s) URL")
        attributes.append(_attribute("statusCallback", callback))
    if status_callback_method is not None:
        if status_callback_method not in ("GET", "POST"):
            raise TwilioBuildError("status_callback_method", "must be 'GET' or 'POST'")
        attributes.append(_attribute("statusCallbackMethod", status_callback_method))

    children: list[str] = []
    for key, value in (parameters or {}).items():
        key_text = _checked_text("parameters", key)
        value_text = _checked_text("parameters", value, allow_empty=True)
        children.append(
            f"<Parameter {_attribute('name', key_text)} {_attribute('value', value_text)}/>"
        )

    opening = f"<Stream {' '.join(attributes)}"
    stream = f"{opening}>{''.join(children)}</Stream>" if children else f"{opening}/>"
    return f"{_XML_DECLARATION}<Response><Connect>{stream}</Connect></Response>"
