"""The exception hierarchy: every error voicewire raises on purpose derives from VoicewireError."""

from __future__ import annotations

__all__ = [
    "AudioFormatError",
    "ConfigError",
    "ConnectionClosedError",
    "MuteNotSupportedError",
    "NotConnectedError",
    "PluginError",
    "ProtocolError",
    "TransportStateError",
    "UnknownTransportError",
    "VoicewireError",
]


class VoicewireError(Exception):
    """Base class of every exception raised by voicewire and its plugins."""


class ConfigError(VoicewireError, ValueError):
    """A configuration value is invalid. The message names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class AudioFormatError(VoicewireError, ValueError):
    """Audio bytes do not fit the declared format, or a format name is unknown."""


class ProtocolError(VoicewireError):
    """A peer sent something the wire protocol does not allow (malformed JSON, bad base64, ...)."""


class TransportStateError(VoicewireError):
    """An operation is not allowed in the transport's current status (e.g. connect twice)."""


class NotConnectedError(TransportStateError):
    """An operation needs a connected transport."""


class ConnectionClosedError(VoicewireError):
    """The underlying connection closed, locally or by the peer."""


class MuteNotSupportedError(VoicewireError):
    """The transport does not own the microphone; the application must stop sending audio itself."""


class UnknownTransportError(VoicewireError, LookupError):
    """No registered transport or edge has the requested name. The message lists the known names."""


class PluginError(VoicewireError):
    """A plugin misbehaved while being loaded or called."""
