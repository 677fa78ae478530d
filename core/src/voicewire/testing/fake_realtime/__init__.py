"""An offline, OpenAI-Realtime-compatible (GA) WebSocket server for tests and the demo.

See ``docs/testing/fake-model.md`` for what it implements, its modes, the script format, the
fault knobs and the recording API.
"""

from __future__ import annotations

from voicewire.testing.fake_realtime.faults import (
    CloseBeforeSessionCreated,
    CloseMidResponse,
    Fault,
    RefuseConnection,
    SendGarbage,
    Stall,
)
from voicewire.testing.fake_realtime.record import AuthOutcome, SessionRecord, TruncationRecord
from voicewire.testing.fake_realtime.scripts import (
    DEMO_SCRIPT,
    Echo,
    FunctionCall,
    Say,
    Script,
    Step,
    Turn,
)
from voicewire.testing.fake_realtime.server import REALTIME_PATH, FakeRealtimeServer
from voicewire.testing.fake_realtime.speech import speech_like, speech_like_samples
from voicewire.testing.fake_realtime.vad import VadSettings

__all__ = [
    "DEMO_SCRIPT",
    "REALTIME_PATH",
    "AuthOutcome",
    "CloseBeforeSessionCreated",
    "CloseMidResponse",
    "Echo",
    "FakeRealtimeServer",
    "Fault",
    "FunctionCall",
    "RefuseConnection",
    "Say",
    "Script",
    "SendGarbage",
    "SessionRecord",
    "Stall",
    "Step",
    "TruncationRecord",
    "Turn",
    "VadSettings",
    "speech_like",
    "speech_like_samples",
]
