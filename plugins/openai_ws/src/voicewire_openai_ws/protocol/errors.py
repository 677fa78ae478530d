"""Exceptions of the sans-I/O protocol layer.

All derive from :class:`voicewire.errors.VoicewireError`. Errors about what the *server* sent never
escape :meth:`RealtimeProtocol.receive <voicewire_openai_ws.protocol.connection.RealtimeProtocol.receive>`:
they travel inside an ``ErrorEvent`` instead. The exceptions raised to the caller are about what the
*caller* asked for.
"""

from __future__ import annotations

from voicewire.errors import ProtocolError, VoicewireError

__all__ = ["HistoryReplayError", "InvalidClientEventError", "InvalidServerEventError"]


class InvalidServerEventError(ProtocolError):
    """A server frame could not be used: bad JSON, not an object, bad base64, missing fields.

    Attributes:
        code: A stable machine-readable reason: ``"invalid_json"``, ``"invalid_event"`` or
            ``"invalid_base64"``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidClientEventError(VoicewireError, ValueError):
    """A client event cannot be sent: no string ``type``, or not serialisable as JSON."""


class HistoryReplayError(VoicewireError, ValueError):
    """A history change cannot be expressed on the wire; nothing was sent.

    Raised when an added or changed item is an assistant message holding ``output_audio``: the
    server does not accept model audio from a client. Convert its transcript to an
    ``OutputText`` part, or remove the item, before resetting the history.

    Attributes:
        item_id: The offending item.
    """

    def __init__(self, item_id: str, message: str) -> None:
        super().__init__(message)
        self.item_id = item_id
