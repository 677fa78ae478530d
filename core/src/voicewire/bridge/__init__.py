"""The call bridge: joins any telephony edge to any model transport.

``protocol`` is the sans-I/O core (playback tracking, interruption maths, late-audio discarding,
input padding); ``call`` is the asyncio layer that drives it (:class:`CallBridge`); ``edge`` and
``model`` say what the two halves of a call must offer; ``tasks`` starts the tasks that carry
audio on at once.
"""

from __future__ import annotations

from voicewire.bridge.call import (
    CALLER_DROP_REASONS,
    DEFAULT_MAX_PENDING_CALLER_AUDIO_BYTES,
    MODEL_DROP_REASONS,
    CallBridge,
    CallBridgeStats,
)
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
from voicewire.bridge.tasks import Drain, eager_task

__all__ = [
    "CALLER_DROP_REASONS",
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
    "Drain",
    "Dtmf",
    "EdgeCapabilities",
    "EdgeError",
    "EdgeEvent",
    "InputPadder",
    "InterruptionPlan",
    "ItemPlayback",
    "PaddingStats",
    "PlaybackAcknowledged",
    "PlaybackKey",
    "PlaybackStats",
    "PlaybackTracker",
    "RawEdgeMessage",
    "TelephonyEdge",
    "eager_task",
    "truncation_points",
]
