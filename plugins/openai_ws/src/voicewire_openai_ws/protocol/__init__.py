"""The OpenAI Realtime (GA) WebSocket protocol, without I/O.

Nothing in this package opens a socket, starts a task or reads a clock: frames go in as
strings, events and frames to send come out, and time is a number the caller passes in.
:class:`RealtimeProtocol` ties the pieces together; each module holds one concept:

* :mod:`.client_events`: builders for every GA client event;
* :mod:`.session_payload`: ``SessionConfig`` -> GA ``session`` object;
* :mod:`.server_events`: server frames -> typed voicewire events;
* :mod:`.sequencer`: ``response.create`` sequencing;
* :mod:`.playback`: playback estimates and truncation points;
* :mod:`.history`: history diff -> deletes and creates;
* :mod:`.conversation`: the confirmed conversation, for replay on reconnect;
* :mod:`.tracing`: the tracing update after ``session.created``;
* :mod:`.server_session`: reading the server's session object;
* :mod:`.frames`: JSON text frames in and out;
* :mod:`.errors`: this layer's exceptions.
"""

from __future__ import annotations

from voicewire_openai_ws.protocol.connection import RealtimeProtocol
from voicewire_openai_ws.protocol.conversation import ConversationState
from voicewire_openai_ws.protocol.errors import (
    HistoryReplayError,
    InvalidClientEventError,
    InvalidServerEventError,
)
from voicewire_openai_ws.protocol.history import diff_history
from voicewire_openai_ws.protocol.playback import PlaybackItem, PlaybackTracker, audio_end_ms
from voicewire_openai_ws.protocol.sequencer import ResponseCreateSequencer
from voicewire_openai_ws.protocol.server_events import ParsedFrame, parse_server_frame
from voicewire_openai_ws.protocol.session_payload import DEFAULTS, build_session_payload

__all__ = [
    "DEFAULTS",
    "ConversationState",
    "HistoryReplayError",
    "InvalidClientEventError",
    "InvalidServerEventError",
    "ParsedFrame",
    "PlaybackItem",
    "PlaybackTracker",
    "RealtimeProtocol",
    "ResponseCreateSequencer",
    "audio_end_ms",
    "build_session_payload",
    "diff_history",
    "parse_server_frame",
]
