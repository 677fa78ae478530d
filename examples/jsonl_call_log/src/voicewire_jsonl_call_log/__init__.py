"""An example voicewire plugin: a JSON-lines log of the notable events of every session.

Set ``VOICEWIRE_CALL_LOG`` to a file path and every transport session appends one JSON object
per line to it: connection changes, call start, turn start and end, first audio, interruptions,
function calls, errors and the close. Without the variable the plugin observes nothing.
"""

from __future__ import annotations

from voicewire_jsonl_call_log.log import (
    ENV_VAR,
    CallLogObserver,
    JsonlWriter,
    flush_all,
    writer_for,
)

__all__ = ["ENV_VAR", "CallLogObserver", "JsonlWriter", "flush_all", "writer_for"]
