"""The call bridge: joins any telephony edge to any model transport.

``protocol`` is the sans-I/O core (playback tracking, interruption maths, late-audio discarding,
input padding); the asyncio layer drives it.
"""

from __future__ import annotations

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

__all__ = [
    "AckKind",
    "Acknowledgement",
    "AudioVerdict",
    "BridgeCounters",
    "BridgeProtocol",
    "InputPadder",
    "InterruptionPlan",
    "ItemPlayback",
    "PaddingStats",
    "PlaybackKey",
    "PlaybackStats",
    "PlaybackTracker",
    "truncation_points",
]
