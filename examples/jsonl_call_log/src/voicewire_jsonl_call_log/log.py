"""The call-log observer and the background writer behind it.

Observer methods run on the transport's hot path, so they never touch the disk: each notable
event becomes one JSON line handed to a :class:`JsonlWriter`, whose thread appends it to the file.
One writer serves every session logging to the same path, so lines of concurrent calls never
interleave mid-line. Per-frame notifications (``on_client_event``, ``on_server_event``,
``on_audio_to_caller``) are not implemented at all, so the transport never calls them here.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicewire.audio import AudioFormat
    from voicewire.events import (
        AudioInterruptedEvent,
        ErrorEvent,
        FunctionCallEvent,
        TurnDoneEvent,
    )

from voicewire_jsonl_call_log.plugin import ENV_VAR

__all__ = ["ENV_VAR", "CallLogObserver", "JsonlWriter", "flush_all", "writer_for"]

logger = logging.getLogger("voicewire_jsonl_call_log")

_Item = str | threading.Event | None


class JsonlWriter:
    """Appends lines to one file from a daemon thread.

    :meth:`write` only puts the line on a queue. The thread writes lines as they come and flushes
    the file whenever the queue is empty. If the file cannot be opened, one warning is logged and
    lines are dropped.

    Args:
        path: The file to append to (created if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="jsonl-call-log", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        """Queue one line (it should end with a newline)."""
        self._queue.put(line)

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every line queued so far is written and flushed.

        Args:
            timeout: Seconds to wait at most; ``None`` waits as long as it takes.

        Returns:
            Whether the writer caught up in time.
        """
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Write what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            file = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            logger.warning(
                "call log %s cannot be opened (%s); its lines are dropped", self.path, exc
            )
            self._drain()
            return
        with file:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                if isinstance(item, threading.Event):
                    file.flush()
                    item.set()
                    continue
                file.write(item)
                if self._queue.empty():
                    file.flush()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()


_writers: dict[Path, JsonlWriter] = {}
_writers_lock = threading.Lock()


def writer_for(path: str | Path) -> JsonlWriter:
    """The process's writer for ``path`` (one per resolved path, created on first use)."""
    key = Path(path).resolve()
    with _writers_lock:
        writer = _writers.get(key)
        if writer is None:
            writer = _writers[key] = JsonlWriter(key)
        return writer


def flush_all(timeout: float | None = 5.0) -> bool:
    """Flush every writer; returns whether all of them caught up in time."""
    with _writers_lock:
        writers = list(_writers.values())
    results = [writer.flush(timeout) for writer in writers]  # every one, even after a failure
    return all(results)


atexit.register(flush_all, 2.0)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CallLogObserver:
    """Writes one JSON line per notable event of one session.

    Every line has ``time`` (UTC, ISO 8601), ``session`` (a random id shared by the session's
    lines), ``transport`` (the transport's ``transport_id``) and ``event``, plus the event's own
    fields. Message content (transcripts, tool arguments and results) is never logged; error
    messages are, as the transport reported them.

    Args:
        transport: The transport whose session is logged.
        writer: Where lines go.
    """

    def __init__(self, transport: object, writer: JsonlWriter) -> None:
        self.session = uuid.uuid4().hex[:12]
        transport_id = getattr(transport, "transport_id", None)
        self.transport = transport_id if isinstance(transport_id, str) else type(transport).__name__
        self._writer = writer

    def _log(self, event: str, **fields: Any) -> None:
        record = {
            "time": _now(),
            "session": self.session,
            "transport": self.transport,
            "event": event,
            **fields,
        }
        self._writer.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")

    def on_connection_change(self, status: str) -> None:
        """Log ``connection`` with the new ``status``."""
        self._log("connection", status=status)

    def on_call_start(
        self, call_id: str | None, stream_id: str | None, audio_format: AudioFormat | None = None
    ) -> None:
        """Log ``call_start`` with the telephony call and stream ids."""
        self._log("call_start", call_id=call_id, stream_id=stream_id)

    def on_turn_started(self, response_id: str | None) -> None:
        """Log ``turn_started``."""
        self._log("turn_started", response_id=response_id)

    def on_first_audio(self, response_id: str | None, latency_ms: float | None) -> None:
        """Log ``first_audio`` with the latency since the caller stopped speaking."""
        self._log("first_audio", response_id=response_id, latency_ms=latency_ms)

    def on_turn_done(self, event: TurnDoneEvent) -> None:
        """Log ``turn_done`` with the status and token counts."""
        self._log(
            "turn_done",
            response_id=event.response_id,
            status=event.status,
            input_tokens=event.usage.input_tokens,
            output_tokens=event.usage.output_tokens,
        )

    def on_interruption(self, event: AudioInterruptedEvent) -> None:
        """Log ``interruption`` with where each item was cut."""
        self._log(
            "interruption",
            response_id=event.response_id,
            truncations=[
                {
                    "item_id": t.item_id,
                    "content_index": t.content_index,
                    "audio_end_ms": t.audio_end_ms,
                }
                for t in event.truncations
            ],
        )

    def on_function_call(self, event: FunctionCallEvent) -> None:
        """Log ``function_call`` with the tool's name and the call id (not the arguments)."""
        self._log("function_call", name=event.name, call_id=event.call_id)

    def on_function_call_output(self, call_id: str, output: str) -> None:
        """Log ``function_call_output`` with the call id and the output's length."""
        self._log("function_call_output", call_id=call_id, output_chars=len(output))

    def on_error(self, event: ErrorEvent) -> None:
        """Log ``error`` with its source, code and message."""
        self._log("error", source=event.source, code=event.code, message=event.message)

    def on_close(self, reason: str | None) -> None:
        """Log ``close`` with the reason."""
        self._log("close", reason=reason)
