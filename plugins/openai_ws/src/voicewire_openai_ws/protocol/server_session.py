"""Reading the server's view of the session (``session.created`` / ``session.updated``).

The server reports the *effective* configuration, which is what audio arithmetic must use: the
output format decides how many milliseconds a chunk of model audio lasts, and
``interrupt_response`` decides whether the server cancels a response on barge-in by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voicewire.audio.formats import PCM16_24K, AudioFormat
from voicewire.errors import VoicewireError

__all__ = ["interrupt_response_of", "output_format_of", "tracing_of"]


def _get(obj: object, *path: str) -> object:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def output_format_of(session: Mapping[str, Any] | None) -> AudioFormat:
    """The output format of a server session object; PCM16 24 kHz when unknown or unreadable.

    ``{"type": "audio/pcmu"}`` and ``"audio/pcma"`` are 8 kHz G.711; ``audio/pcm`` uses its
    ``rate`` (24 kHz if absent); legacy strings (``"g711_ulaw"``, ``"pcm16"``) are understood.
    Anything else (an unknown type, a bad rate) falls back to PCM16 24 kHz, the protocol's
    default, rather than failing: the format only feeds playback estimates.
    """
    raw = _get(session, "audio", "output", "format")
    if not isinstance(raw, str | Mapping):
        return PCM16_24K
    try:
        return AudioFormat.from_wire(raw)
    except (VoicewireError, ValueError):
        return PCM16_24K


def interrupt_response_of(session: Mapping[str, Any] | None) -> bool:
    """Whether the server cancels the active response when the user starts speaking.

    Read from ``audio.input.turn_detection.interrupt_response``; ``False`` when unknown, so that
    the client cancels by itself rather than letting the model talk over the user.
    """
    return _get(session, "audio", "input", "turn_detection", "interrupt_response") is True


def tracing_of(session: Mapping[str, Any] | None) -> object:
    """The server's current ``tracing`` value (``None`` when absent)."""
    return _get(session, "tracing")
