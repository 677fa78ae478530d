"""Value rules shared by the parser and the builders, so that both accept the same ids.

Kept in one place because a stream sid accepted from a ``start`` message must also be accepted
when the same sid goes back out in ``media``, ``mark`` and ``clear``.
"""

from __future__ import annotations

import re

__all__ = ["MAX_MARK_NAME_LENGTH", "MAX_SID_LENGTH", "mark_name_problem", "sid_problem"]

MAX_SID_LENGTH = 128
"""Longest id accepted. Real sids are 34 characters (two letters + 32 hex digits)."""

MAX_MARK_NAME_LENGTH = 256
"""Longest mark name sent. Twilio documents no limit; this is voicewire's bound."""

# Twilio's sids are ``MZ``/``CA``/``AC`` + 32 hex digits, but fakes and test tools use other
# shapes, so only what could break framing, logs or comparisons is refused: emptiness, length,
# whitespace and control characters.
_SID_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def sid_problem(value: str) -> str | None:
    """Say why ``value`` is not an acceptable sid, or return ``None`` if it is."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_SID_LENGTH:
        return f"must be at most {MAX_SID_LENGTH} characters, got {len(value)}"
    if _SID_FORBIDDEN.search(value):
        return "must not contain whitespace or control characters"
    return None


def mark_name_problem(value: str) -> str | None:
    """Say why ``value`` cannot be sent as a mark name, or return ``None`` if it can."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_MARK_NAME_LENGTH:
        return f"must be at most {MAX_MARK_NAME_LENGTH} characters, got {len(value)}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate cannot travel in a UTF-8 text frame, so Twilio could never echo it.
        return "must be valid Unicode text (no lone surrogates)"
    return None
