"""voicewire: a typed plugin framework for realtime voice-model transports.

The names below are the curated public API; submodules hold the rest (``voicewire.events``,
``voicewire.items``, ``voicewire.audio``, ``voicewire.bridge``, ``voicewire.testing``, ...).
"""

from __future__ import annotations

from voicewire.audio import AudioConverter, AudioFormat
from voicewire.config import (
    DISABLED,
    FunctionTool,
    NoiseReduction,
    SessionConfig,
    TracingConfig,
    Transcription,
    TurnDetection,
)
from voicewire.emitter import EventEmitter, EventStream, Listener, OverflowPolicy
from voicewire.errors import (
    AudioFormatError,
    ConfigError,
    ConnectionClosedError,
    MuteNotSupportedError,
    NotConnectedError,
    PluginError,
    ProtocolError,
    TransportStateError,
    UnknownTransportError,
    VoicewireError,
)
from voicewire.hookspecs import hookimpl
from voicewire.items import (
    AssistantMessageItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputAudio,
    InputImage,
    InputText,
    McpApprovalRequestItem,
    McpCallItem,
    OutputAudio,
    OutputText,
    RealtimeItem,
    SystemMessageItem,
    UserMessageItem,
)
from voicewire.observer import ObserverFanout, SessionObserver
from voicewire.registry import TransportKind, available_transports, create_edge, create_transport
from voicewire.transport import (
    ConnectOptions,
    RealtimeTransportLayer,
    TransportBase,
    TransportStatus,
)

__version__ = "0.1.0"

__all__ = [
    "DISABLED",
    "AssistantMessageItem",
    "AudioConverter",
    "AudioFormat",
    "AudioFormatError",
    "ConfigError",
    "ConnectOptions",
    "ConnectionClosedError",
    "EventEmitter",
    "EventStream",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "FunctionTool",
    "InputAudio",
    "InputImage",
    "InputText",
    "Listener",
    "McpApprovalRequestItem",
    "McpCallItem",
    "MuteNotSupportedError",
    "NoiseReduction",
    "NotConnectedError",
    "ObserverFanout",
    "OutputAudio",
    "OutputText",
    "OverflowPolicy",
    "PluginError",
    "ProtocolError",
    "RealtimeItem",
    "RealtimeTransportLayer",
    "SessionConfig",
    "SessionObserver",
    "SystemMessageItem",
    "TracingConfig",
    "Transcription",
    "TransportBase",
    "TransportKind",
    "TransportStateError",
    "TransportStatus",
    "TurnDetection",
    "UnknownTransportError",
    "UserMessageItem",
    "VoicewireError",
    "__version__",
    "available_transports",
    "create_edge",
    "create_transport",
    "hookimpl",
]
