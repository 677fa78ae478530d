"""Hook implementations of the ``jsonl_call_log`` plugin (entry point in ``voicewire.plugins``)."""

from __future__ import annotations

import os

from voicewire import hookimpl

ENV_VAR = "VOICEWIRE_CALL_LOG"
"""The environment variable naming the log file."""


@hookimpl
def voicewire_session_observer(transport: object) -> object | None:
    """Offer a call-log observer for the session when ``VOICEWIRE_CALL_LOG`` names a file."""
    path = os.environ.get(ENV_VAR, "").strip()
    if not path:
        return None
    # Imported here: discovering the plugin stays cheap, and sessions pay only when logging.
    from voicewire_jsonl_call_log.log import CallLogObserver, writer_for

    return CallLogObserver(transport, writer_for(path))
