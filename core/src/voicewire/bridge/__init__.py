"""The call bridge: joins any telephony edge to any model transport.

``protocol`` is the sans-I/O core (playback tracking, interruption maths, late-audio discarding,
input padding); ``call`` is the asyncio layer that drives it (:class:`CallBridge`); ``edge`` and
``model`` say what the two halves of a call must offer; ``tasks`` starts the tasks that carry
audio on at once. For telephony plugins: ``dialect`` makes an edge of a provider's sans-I/O
dialect (:class:`DialectEdge`), over the socket protocol of ``socket`` (:class:`MediaSocket`;
its aiohttp form is in ``aiohttp_socket``, which needs aiohttp); ``frames`` and ``marks`` hold
what dialects of JSON frames with marks share (:func:`json_object`, :class:`FrameError`,
:class:`MarkTable`).
"""

from __future__ import annotations

from voicewire.bridge.call import (
    CALLER_DROP_REASONS,
    DEFAULT_MAX_PENDING_CALLER_AUDIO_BYTES,
    MODEL_DROP_REASONS,
    CallBridge,
    CallBridgeStats,
)
from voicewire.bridge.dialect import Dialect, DialectEdge
from voicewire.bridge.edge import (
    CallerAudio,
    CallStarted,
    CallStopped,
    Dtmf,
    EdgeCapabilities,
    EdgeError,
    EdgeEvent,
    PlaybackAcknowledged,
    RawEdgeMessage,
    TelephonyEdge,
)
from voicewire.bridge.frames import FrameError, json_object
from voicewire.bridge.marks import MarkTable
from voicewire.bridge.model import BridgeableModel
from voicewire.bridge.protocol import (
    AckKind,
    Acknowledgement,
    AudioVerdict,
    BridgeCounters,
    BridgeProtocol,
    InputPadder,
    InterruptionPlan,
    ItemPlayback,
    PaddingStats,
    PlaybackKey,
    PlaybackStats,
    PlaybackTracker,
    truncation_points,
)
from voicewire.bridge.socket import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_POLICY_VIOLATION,
    MediaSocket,
    MediaSocketError,
    MessageRateLimit,
)
from voicewire.bridge.tasks import Drain, eager_task

__all__ = [
    "CALLER_DROP_REASONS",
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_POLICY_VIOLATION",
    "DEFAULT_MAX_PENDING_CALLER_AUDIO_BYTES",
    "MODEL_DROP_REASONS",
    "AckKind",
    "Acknowledgement",
    "AudioVerdict",
    "BridgeCounters",
    "BridgeProtocol",
    "BridgeableModel",
    "CallBridge",
    "CallBridgeStats",
    "CallStarted",
    "CallStopped",
    "CallerAudio",
    "Dialect",
    "DialectEdge",
    "Drain",
    "Dtmf",
    "EdgeCapabilities",
    "EdgeError",
    "EdgeEvent",
    "FrameError",
    "InputPadder",
    "InterruptionPlan",
    "ItemPlayback",
    "MarkTable",
    "MediaSocket",
    "MediaSocketError",
    "MessageRateLimit",
    "PaddingStats",
    "PlaybackAcknowledged",
    "PlaybackKey",
    "PlaybackStats",
    "PlaybackTracker",
    "RawEdgeMessage",
    "TelephonyEdge",
    "eager_task",
    "json_object",
    "truncation_points",
]
