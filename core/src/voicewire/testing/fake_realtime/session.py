"""One connection of the fake Realtime server: the GA protocol state machine over aiohttp.

The reader loop handles client events one at a time, in order. A response runs as its own task
(so that audio can be paced in real time and interrupted); it is the only other sender, and every
frame goes out through :meth:`FakeSession._send`, which records it and applies the fault knobs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import attrs
from aiohttp import WSMsgType, web

from voicewire.audio.formats import AudioFormat
from voicewire.testing.fake_realtime.audio import convert
from voicewire.testing.fake_realtime.conversation import Conversation
from voicewire.testing.fake_realtime.faults import (
    CloseBeforeSessionCreated,
    CloseMidResponse,
    Fault,
    SendGarbage,
    Stall,
)
from voicewire.testing.fake_realtime.record import SessionLog, TruncationRecord
from voicewire.testing.fake_realtime.schema import Validator, invalid_value
from voicewire.testing.fake_realtime.scripts import (
    Echo,
    FunctionCall,
    Say,
    Script,
    ScriptCursor,
    Step,
    estimate_speech_ms,
)
from voicewire.testing.fake_realtime.speech import speech_like
from voicewire.testing.fake_realtime.vad import EnergyVad, VadEvent, VadSettings, threshold_to_dbfs
from voicewire.testing.fake_realtime.wire import (
    IdFactory,
    default_session,
    error_event,
    format_of,
    merge_session,
    usage,
)

__all__ = ["FakeSession", "SessionSettings"]

_log = logging.getLogger("voicewire.testing.fake_realtime")

Mode = Literal["echo", "script"]

_MIN_COMMIT_MS = 100.0
_SEMANTIC_SILENCE_MS = {"low": 800, "medium": 500, "high": 250, "auto": 500}


@attrs.frozen(kw_only=True)
class SessionSettings:
    """Everything one session needs from the server's configuration."""

    mode: Mode
    script: Script | None
    pace: float
    chunk_ms: int
    vad: VadSettings
    validator: Validator
    instructions: str
    default_model: str
    seed: str
    faults: tuple[Fault, ...]
    close_timeout: float
    rate_limits: bool
    expires_at: int


class _SessionEnded(Exception):
    """The connection is gone (closed by the peer, by a fault, or by server shutdown)."""


class _Stalled(Exception):
    """The session has stalled on purpose (fault knob); nothing more may be sent."""


@attrs.define
class _Response:
    id: str
    steps: tuple[Step, ...]
    output_format: AudioFormat
    wire_format: dict[str, Any]
    voice: Any
    modalities: list[str]
    in_conversation: bool
    metadata: Any
    max_output_tokens: Any
    output: list[dict[str, Any]] = attrs.Factory(list)
    cancel_reason: str | None = None
    cancelled: asyncio.Event = attrs.Factory(asyncio.Event)
    audio_ms: float = 0.0
    text: str = ""
    clock_start: float | None = None

    def wire(
        self, status: str, usage_obj: Mapping[str, Any] | None, conv_id: str
    ) -> dict[str, Any]:
        details: dict[str, Any] | None = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": self.cancel_reason}
        return {
            "object": "realtime.response",
            "id": self.id,
            "status": status,
            "status_details": details,
            "output": copy.deepcopy(self.output),
            "conversation_id": conv_id if self.in_conversation else None,
            "output_modalities": list(self.modalities),
            "max_output_tokens": self.max_output_tokens,
            "audio": {"output": {"format": dict(self.wire_format), "voice": self.voice}},
            "usage": dict(usage_obj) if usage_obj is not None else None,
            "metadata": self.metadata,
        }


def _words(text: str) -> list[str]:
    """Split text into transcript deltas: each word keeps the space before it."""
    parts = text.split(" ")
    return [p if i == 0 else " " + p for i, p in enumerate(parts) if p or i == 0]


class FakeSession:
    """The server side of one accepted WebSocket.

    Args:
        ws: The prepared aiohttp WebSocket.
        request: The upgrade request (for aborting the transport).
        log: Where everything is recorded.
        settings: The server's configuration for this session.
        model: The ``model`` query parameter, if any.
        notify: Called after every change of the log, to wake waiters.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        log: SessionLog,
        settings: SessionSettings,
        model: str | None,
        notify: Callable[[], None],
    ) -> None:
        self._ws = ws
        self._request = request
        self._logbook = log
        self._settings = settings
        self._notify = notify
        self._ids = IdFactory(f"{settings.seed}:{log.index}")
        self._conv_id = self._ids.new("conv")
        self._session = default_session(
            model=model or settings.default_model,
            session_id=self._ids.new("sess"),
            expires_at=settings.expires_at,
            instructions=settings.instructions,
        )
        log.session = copy.deepcopy(self._session)
        self._conv = Conversation()
        self._cursor = ScriptCursor(settings.script) if settings.script is not None else None
        # Input audio: everything appended since the last commit/clear, positioned on the
        # session's audio clock (milliseconds of audio appended since the connection opened).
        self._in_fmt = format_of(self._session["audio"]["input"]["format"])
        self._appended_ms = 0.0
        self._buffer = bytearray()
        self._buffer_start_ms = 0.0
        self._vad: EnergyVad | None = None
        self._vad_key: Any = None
        self._speech_item: str | None = None
        self._speech_start_ms = 0.0
        self._last_user_audio: tuple[bytes, AudioFormat] | None = None
        self._user_input_since_response = False
        self._active: _Response | None = None
        self._runner: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        self._sent = 0
        self._audio_deltas = 0
        self._stalled = False
        self._ended = False
        self._garbage_done: set[int] = set()
        self._finished = asyncio.Event()
        self._handlers: dict[str, Callable[[dict[str, Any], str | None], Awaitable[None]]] = {
            "session.update": self._on_session_update,
            "input_audio_buffer.append": self._on_append,
            "input_audio_buffer.commit": self._on_commit,
            "input_audio_buffer.clear": self._on_clear,
            "conversation.item.create": self._on_item_create,
            "conversation.item.retrieve": self._on_item_retrieve,
            "conversation.item.truncate": self._on_item_truncate,
            "conversation.item.delete": self._on_item_delete,
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
        }
        self._rebuild_vad()

    # -----------------------------------------------------------------------------------------
    # lifecycle
    # -----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes; never raises for connection trouble."""
        try:
            early_close = next(
                (f for f in self._settings.faults if isinstance(f, CloseBeforeSessionCreated)),
                None,
            )
            if early_close is not None:
                self._fault_fired("close_before_session_created")
                await self._close_for_fault(early_close.code, early_close.abrupt)
                return
            await self._faults_after_count()
            if not self._stalled:
                with contextlib.suppress(_Stalled):
                    await self._send({"type": "session.created", "session": self._session})
            await self._read_loop()
        except _SessionEnded:
            pass
        except (ConnectionError, asyncio.TimeoutError):
            _log.debug("session %d: connection lost", self._logbook.index)
        finally:
            await self._wind_down()

    async def shutdown(self) -> None:
        """Close the connection (server shutdown) and wait until the session has ended."""
        self._ended = True
        self._wake_runner()
        if not self._ws.closed:
            try:
                await self._ws.close(code=1001, message=b"server shutting down")
            except (ConnectionError, asyncio.TimeoutError):
                self._abort()
        await self._finished.wait()

    async def _wind_down(self) -> None:
        self._ended = True
        self._wake_runner()
        runner = self._runner
        if runner is not None and not runner.done():
            # A fault may be completing a closing handshake from the runner; give it the close
            # timeout, then stop waiting.
            done, _ = await asyncio.wait({runner}, timeout=self._settings.close_timeout + 0.5)
            if not done:
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)
        if not self._ws.closed:
            try:
                await self._ws.close()
            except (ConnectionError, asyncio.TimeoutError):
                self._abort()
        self._logbook.closed = True
        self._notify()
        self._finished.set()

    def _wake_runner(self) -> None:
        if self._active is not None:
            self._active.cancelled.set()

    def _abort(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.close()

    async def _close_for_fault(self, code: int, abrupt: bool) -> None:
        self._ended = True
        if abrupt:
            self._abort()
        else:
            await self._ws.close(code=code, message=b"fault injected by the fake server")

    def _fault_fired(self, name: str) -> None:
        self._logbook.faults_triggered.append(name)
        self._notify()

    # -----------------------------------------------------------------------------------------
    # sending
    # -----------------------------------------------------------------------------------------

    async def _send(self, event: Mapping[str, Any]) -> None:
        if self._ended:
            raise _SessionEnded
        body = {k: v for k, v in event.items() if k != "type"}
        wire = {"type": event["type"], "event_id": self._ids.new("event"), **body}
        text = json.dumps(wire, separators=(",", ":"))
        async with self._send_lock:
            if self._stalled:
                raise _Stalled
            if self._ended:
                raise _SessionEnded
            try:
                await self._ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:
                raise _SessionEnded from exc
            self._sent += 1
            self._logbook.server_events.append(json.loads(text))
            self._notify()
            await self._faults_after_count()
            if wire["type"] == "response.output_audio.delta":
                await self._fault_after_audio_delta()

    async def _faults_after_count(self) -> None:
        for i, fault in enumerate(self._settings.faults):
            if isinstance(fault, SendGarbage) and i not in self._garbage_done:
                if self._sent >= fault.after_events:
                    self._garbage_done.add(i)
                    self._fault_fired("send_garbage")
                    try:
                        if fault.kind == "binary":
                            await self._ws.send_bytes(b"\x00\xffnot-a-realtime-event\xfe")
                        else:
                            await self._ws.send_str('{"type": "response.output_audio.delta", ')
                    except (ConnectionError, RuntimeError) as exc:
                        raise _SessionEnded from exc
            elif (
                isinstance(fault, Stall) and not self._stalled and self._sent >= fault.after_events
            ):
                self._stalled = True
                self._fault_fired("stall")

    async def _fault_after_audio_delta(self) -> None:
        self._audio_deltas += 1
        for fault in self._settings.faults:
            if (
                isinstance(fault, CloseMidResponse)
                and self._audio_deltas == fault.after_audio_deltas
            ):
                self._fault_fired("close_mid_response")
                await self._close_for_fault(fault.code, fault.abrupt)
                raise _SessionEnded

    async def _error(
        self,
        code: str | None,
        message: str,
        *,
        param: str | None = None,
        client_event_id: str | None = None,
    ) -> None:
        await self._send(error_event(code, message, param=param, client_event_id=client_event_id))

    # -----------------------------------------------------------------------------------------
    # receiving
    # -----------------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        ws = self._ws
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT:
                if self._stalled:
                    # Recorded, so a test can see that the request arrived and went unanswered.
                    self._parse(str(msg.data))
                    continue
                try:
                    await self._on_text(str(msg.data))
                except _Stalled:
                    continue
            elif kind is WSMsgType.BINARY:
                self._logbook.unparsed_frames.append(f"<binary frame of {len(msg.data)} bytes>")
                self._notify()
                if self._stalled:
                    continue
                try:
                    await self._error(
                        None, "Binary frames are not supported; send client events as JSON text."
                    )
                except _Stalled:
                    continue
            elif kind is WSMsgType.PING:
                # Pings are answered by hand so that a stalled session can ignore them.
                if not self._stalled:
                    await ws.pong(msg.data)
            elif kind is WSMsgType.PONG:
                continue
            elif kind is WSMsgType.CLOSE:
                await ws.close()
                return
            else:  # CLOSING (we started closing), CLOSED, ERROR
                return

    def _parse(self, text: str) -> tuple[dict[str, Any] | None, str | None]:
        """Parse and record a text frame; return the event or the reason it is not one."""
        try:
            event = json.loads(text)
        except json.JSONDecodeError as exc:
            self._logbook.unparsed_frames.append(text[:200])
            self._notify()
            return None, f"We could not parse the JSON body of your request ({exc.msg})."
        if not isinstance(event, dict):
            self._logbook.unparsed_frames.append(text[:200])
            self._notify()
            return None, "Invalid client event: expected a JSON object."
        self._logbook.client_events.append(event)
        self._notify()
        return event, None

    async def _on_text(self, text: str) -> None:
        event, reason = self._parse(text)
        if event is None:
            await self._error("invalid_json", reason or "Invalid JSON.")
            return
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        problem = self._settings.validator(event)
        if problem is not None:
            await self._error(
                problem.code, problem.message, param=problem.param, client_event_id=event_id
            )
            return
        handler = self._handlers[event["type"]]
        await handler(event, event_id)

    # -----------------------------------------------------------------------------------------
    # session.update
    # -----------------------------------------------------------------------------------------

    async def _on_session_update(self, event: dict[str, Any], event_id: str | None) -> None:
        update = event["session"]
        if update.get("type") != "realtime":
            problem = invalid_value(update.get("type"), ("realtime",), "session.type")
            await self._error(
                problem.code, problem.message, param=problem.param, client_event_id=event_id
            )
            return
        merged = merge_session(self._session, update)
        new_in = format_of(merged["audio"]["input"]["format"])
        if new_in != self._in_fmt:
            # Buffered audio was in the old format; the service would not mix the two either.
            self._in_fmt = new_in
            self._buffer.clear()
            self._buffer_start_ms = self._appended_ms
        self._session = merged
        self._logbook.session = copy.deepcopy(merged)
        self._rebuild_vad()
        await self._send({"type": "session.updated", "session": merged})

    def _turn_detection(self) -> dict[str, Any] | None:
        td = self._session["audio"]["input"].get("turn_detection")
        return td if isinstance(td, dict) else None

    def _rebuild_vad(self) -> None:
        td = self._turn_detection()
        if td is None:
            self._vad, self._vad_key = None, None
            self._speech_item = None
            return
        settings = self._settings.vad
        if td.get("type") == "semantic_vad":
            silence = _SEMANTIC_SILENCE_MS.get(str(td.get("eagerness", "auto")), 500)
            threshold = threshold_to_dbfs(0.5)
            prefix = 300
        else:
            silence = int(td.get("silence_duration_ms") or 500)
            threshold = threshold_to_dbfs(float(td.get("threshold") or 0.5))
            prefix = int(td.get("prefix_padding_ms") or 0)
        if settings.silence_ms is not None:
            silence = settings.silence_ms
        if settings.threshold_dbfs is not None:
            threshold = settings.threshold_dbfs
        key = (self._in_fmt, silence, threshold, prefix)
        if key == self._vad_key and self._vad is not None:
            return
        self._vad_key = key
        self._speech_item = None
        self._vad = EnergyVad(
            self._in_fmt,
            threshold_dbfs=threshold,
            min_speech_ms=settings.min_speech_ms,
            silence_ms=silence,
            prefix_padding_ms=prefix,
            frame_ms=settings.frame_ms,
            start_ms=self._appended_ms,
            floor_ms=self._buffer_start_ms,
        )

    # -----------------------------------------------------------------------------------------
    # input audio buffer
    # -----------------------------------------------------------------------------------------

    async def _on_append(self, event: dict[str, Any], event_id: str | None) -> None:
        try:
            data = base64.b64decode(event["audio"], validate=True)
        except (binascii.Error, ValueError):
            await self._error(
                "invalid_value",
                "Invalid 'audio'. Expected base64-encoded audio in the session's input format.",
                param="audio",
                client_event_id=event_id,
            )
            return
        self._buffer += data
        self._appended_ms += self._in_fmt.duration_ms(len(data))
        if self._vad is None:
            return
        for vad_event in self._vad.feed(data):
            await self._on_vad(vad_event)
        if not self._vad.speaking:
            self._trim_buffer()

    def _trim_buffer(self) -> None:
        # Outside speech only the prefix padding can still become part of a turn; dropping the
        # rest keeps a long silent call from growing the buffer without bound.
        td = self._turn_detection() or {}
        keep_ms = int(td.get("prefix_padding_ms") or 300) + 2 * self._settings.vad.frame_ms
        excess_ms = (self._appended_ms - self._buffer_start_ms) - keep_ms
        if excess_ms > 0:
            cut = min(len(self._buffer), self._in_fmt.nbytes_for_ms(excess_ms))
            del self._buffer[:cut]
            self._buffer_start_ms += self._in_fmt.duration_ms(cut)

    def _buffer_slice(self, start_ms: float, end_ms: float) -> bytes:
        fmt = self._in_fmt
        start = fmt.nbytes_for_ms(max(0.0, start_ms - self._buffer_start_ms))
        end = fmt.nbytes_for_ms(max(0.0, end_ms - self._buffer_start_ms))
        return bytes(self._buffer[start:end])

    def _drop_buffer_until(self, end_ms: float) -> None:
        cut = min(
            len(self._buffer), self._in_fmt.nbytes_for_ms(max(0.0, end_ms - self._buffer_start_ms))
        )
        del self._buffer[:cut]
        self._buffer_start_ms += self._in_fmt.duration_ms(cut)

    async def _on_vad(self, vad_event: VadEvent) -> None:
        td = self._turn_detection() or {}
        if vad_event.kind == "speech_started":
            self._speech_item = self._ids.new("item")
            self._speech_start_ms = vad_event.audio_ms
            await self._send(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": vad_event.audio_ms,
                    "item_id": self._speech_item,
                }
            )
            if self._active is not None and td.get("interrupt_response", True):
                await self._cancel_active("turn_detected")
            return
        item_id = self._speech_item or self._ids.new("item")
        self._speech_item = None
        await self._send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": vad_event.audio_ms,
                "item_id": item_id,
            }
        )
        start_ms = self._speech_start_ms
        audio = self._buffer_slice(start_ms, vad_event.audio_ms)
        spoken = self._buffer_slice(start_ms, vad_event.speech_end_ms)
        self._drop_buffer_until(vad_event.audio_ms)
        await self._commit(item_id, audio, spoken)
        if td.get("create_response", True) and self._active is None:
            await self._start_response(None)

    async def _on_commit(self, event: dict[str, Any], event_id: str | None) -> None:
        buffered_ms = self._in_fmt.duration_ms(len(self._buffer))
        if buffered_ms < _MIN_COMMIT_MS:
            await self._error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {buffered_ms:.2f}ms of audio.",
                client_event_id=event_id,
            )
            return
        item_id = self._speech_item or self._ids.new("item")
        self._speech_item = None
        audio = bytes(self._buffer)
        self._buffer.clear()
        self._buffer_start_ms = self._appended_ms
        if self._vad is not None:
            self._vad.reset(self._appended_ms)
        await self._commit(item_id, audio, audio)

    async def _on_clear(self, event: dict[str, Any], event_id: str | None) -> None:
        self._buffer.clear()
        self._buffer_start_ms = self._appended_ms
        self._speech_item = None
        if self._vad is not None:
            self._vad.reset(self._appended_ms)
        await self._send({"type": "input_audio_buffer.cleared"})

    async def _commit(self, item_id: str, audio: bytes, spoken: bytes) -> None:
        previous = self._conv.last_id()
        await self._send(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous,
                "item_id": item_id,
            }
        )
        item: dict[str, Any] = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self._conv.insert(item)
        self._conv.add_audio(item_id, audio, self._in_fmt)
        self._last_user_audio = (spoken, self._in_fmt)
        self._user_input_since_response = True
        await self._send(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )
        await self._send(
            {"type": "conversation.item.done", "previous_item_id": previous, "item": item}
        )
        transcription = self._session["audio"]["input"].get("transcription")
        if transcription:
            await self._transcribe(item, spoken)

    async def _transcribe(self, item: dict[str, Any], spoken: bytes) -> None:
        ms = round(self._in_fmt.duration_ms(len(spoken)))
        text = (self._cursor.peek_user_text() if self._cursor is not None else None) or (
            f"({ms} ms of speech)"
        )
        item_id = str(item["id"])
        await self._send(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "item_id": item_id,
                "content_index": 0,
                "delta": text,
            }
        )
        await self._send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": round(ms / 1000, 3)},
            }
        )
        item["content"][0]["transcript"] = text
        self._conv.replace(item)

    # -----------------------------------------------------------------------------------------
    # conversation items
    # -----------------------------------------------------------------------------------------

    async def _item_not_found(self, item_id: str, event_id: str | None) -> None:
        await self._error(
            "invalid_value",
            f"Item with item_id '{item_id}' not found.",
            param="item_id",
            client_event_id=event_id,
        )

    async def _on_item_create(self, event: dict[str, Any], event_id: str | None) -> None:
        item = copy.deepcopy(event["item"])
        item_id = item.get("id") or self._ids.new("item")
        if item_id in self._conv:
            await self._error(
                "invalid_value",
                f"Item with id '{item_id}' already exists.",
                param="item.id",
                client_event_id=event_id,
            )
            return
        after: str | object | None = ...
        if "previous_item_id" in event and event["previous_item_id"] is not None:
            prev = event["previous_item_id"]
            if prev == "root":
                after = None
            elif prev in self._conv:
                after = prev
            else:
                await self._error(
                    "invalid_value",
                    f"Error adding item: the previous item with id '{prev}' does not exist.",
                    param="previous_item_id",
                    client_event_id=event_id,
                )
                return
        item["id"] = item_id
        item.setdefault("status", "completed")
        audio: bytes | None = None
        for part in item.get("content", []) or []:
            if part.get("type") == "input_audio" and isinstance(part.get("audio"), str):
                try:
                    audio = base64.b64decode(part.pop("audio"), validate=True)
                except (binascii.Error, ValueError):
                    await self._error(
                        "invalid_value",
                        "Invalid 'item.content.audio'. Expected base64-encoded audio.",
                        param="item.content.audio",
                        client_event_id=event_id,
                    )
                    return
        previous = self._conv.insert(item, after)
        if audio is not None:
            self._conv.add_audio(item_id, audio, self._in_fmt)
            self._last_user_audio = (audio, self._in_fmt)
        if item.get("type") == "message" and item.get("role") == "user":
            self._user_input_since_response = True
        await self._send(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )
        await self._send(
            {"type": "conversation.item.done", "previous_item_id": previous, "item": item}
        )

    async def _on_item_retrieve(self, event: dict[str, Any], event_id: str | None) -> None:
        item = self._conv.with_audio(event["item_id"])
        if item is None:
            await self._item_not_found(event["item_id"], event_id)
            return
        await self._send({"type": "conversation.item.retrieved", "item": item})

    async def _on_item_delete(self, event: dict[str, Any], event_id: str | None) -> None:
        if not self._conv.delete(event["item_id"]):
            await self._item_not_found(event["item_id"], event_id)
            return
        await self._send({"type": "conversation.item.deleted", "item_id": event["item_id"]})

    async def _on_item_truncate(self, event: dict[str, Any], event_id: str | None) -> None:
        item_id, index, end_ms = event["item_id"], event["content_index"], event["audio_end_ms"]
        item = self._conv.get(item_id)
        sent_ms = int(self._conv.audio_ms(item_id)) if item is not None else None

        def record(accepted: bool) -> None:
            self._logbook.truncations.append(
                TruncationRecord(
                    item_id=item_id,
                    content_index=index,
                    audio_end_ms=end_ms,
                    audio_sent_ms=sent_ms,
                    accepted=accepted,
                )
            )
            self._notify()

        if item is None:
            record(False)
            await self._item_not_found(item_id, event_id)
            return
        content = item.get("content") or []
        if item.get("role") != "assistant" or not any(
            p.get("type") == "output_audio" for p in content
        ):
            record(False)
            await self._error(
                "invalid_value",
                "Only assistant messages with audio content can be truncated.",
                param="item_id",
                client_event_id=event_id,
            )
            return
        if index < 0 or index >= len(content) or content[index].get("type") != "output_audio":
            record(False)
            await self._error(
                "invalid_value",
                f"Invalid 'content_index': item '{item_id}' has no audio content at index {index}.",
                param="content_index",
                client_event_id=event_id,
            )
            return
        if end_ms < 0:
            record(False)
            await self._error(
                "integer_below_min_value",
                "Invalid 'audio_end_ms': integer below minimum value. Expected a value >= 0, "
                f"but got {end_ms} instead.",
                param="audio_end_ms",
                client_event_id=event_id,
            )
            return
        assert sent_ms is not None
        if end_ms > sent_ms:
            record(False)
            await self._error(
                None,
                f"Audio content of {sent_ms}ms is already shorter than {end_ms}ms",
                client_event_id=event_id,
            )
            return
        record(True)
        # The service forgets the transcript of a truncated item, so the model cannot "remember"
        # words the listener never heard.
        content[index]["transcript"] = ""
        self._conv.replace(item)
        self._conv.cut_audio(item_id, end_ms)
        await self._send(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": index,
                "audio_end_ms": end_ms,
            }
        )

    # -----------------------------------------------------------------------------------------
    # responses
    # -----------------------------------------------------------------------------------------

    async def _on_response_create(self, event: dict[str, Any], event_id: str | None) -> None:
        if self._active is not None:
            await self._error(
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress: "
                f"{self._active.id}. Wait until the response is finished before creating a new "
                "one.",
                client_event_id=event_id,
            )
            return
        await self._start_response(event.get("response"))

    async def _on_response_cancel(self, event: dict[str, Any], event_id: str | None) -> None:
        wanted = event.get("response_id")
        if self._active is None or (wanted is not None and wanted != self._active.id):
            await self._error(
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                client_event_id=event_id,
            )
            return
        await self._cancel_active("client_cancelled")

    async def _cancel_active(self, reason: str) -> None:
        response, runner = self._active, self._runner
        if response is None or runner is None:
            return
        response.cancel_reason = reason
        response.cancelled.set()
        # Waiting keeps the wire in order: the cancelled response's closing events go out before
        # anything the next client event causes.
        await asyncio.wait({runner})

    def _plan(self) -> tuple[Step, ...]:
        new_input = self._user_input_since_response
        self._user_input_since_response = False
        if self._cursor is not None:
            return self._cursor.next_steps(new_user_input=new_input)
        for item in reversed(self._conv.items()):
            if item.get("type") == "function_call_output":
                output = str(item.get("output", ""))[:80]
                return (Say(text=f"The tool returned {output}."),)
            if item.get("type") == "message" and item.get("role") == "user":
                for part in item.get("content", []):
                    if part.get("type") == "input_text":
                        return (Say(text=f"You said: {part.get('text', '')}"),)
                return (Echo(),)
        return (Say(text="Hello from the voicewire fake realtime model."),)

    async def _start_response(self, params: Mapping[str, Any] | None) -> None:
        params = params or {}
        out = (params.get("audio") or {}).get("output") or {}
        session_out = self._session["audio"]["output"]
        wire_format = dict(out.get("format") or session_out["format"])
        if wire_format.get("type") == "audio/pcm":
            wire_format.setdefault("rate", 24000)
        response = _Response(
            id=self._ids.new("resp"),
            steps=self._plan(),
            output_format=format_of(wire_format),
            wire_format=wire_format,
            voice=out.get("voice", session_out.get("voice", "alloy")),
            modalities=list(
                params.get("output_modalities")
                or self._session.get("output_modalities")
                or ["audio"]
            ),
            in_conversation=params.get("conversation", "auto") != "none",
            metadata=params.get("metadata"),
            max_output_tokens=params.get(
                "max_output_tokens", self._session.get("max_output_tokens", "inf")
            ),
        )
        self._active = response
        try:
            await self._send(
                {
                    "type": "response.created",
                    "response": response.wire("in_progress", None, self._conv_id),
                }
            )
        except BaseException:
            self._active = None
            raise
        self._runner = asyncio.create_task(self._run_response(response))

    async def _run_response(self, response: _Response) -> None:
        try:
            for step in response.steps:
                if response.cancel_reason is not None:
                    break
                if isinstance(step, FunctionCall):
                    await self._emit_function_call(response, step)
                else:
                    await self._emit_message(response, step)
            await self._finish_response(response)
        except (_SessionEnded, _Stalled):
            pass
        finally:
            if self._active is response:
                self._active = None

    async def _finish_response(self, response: _Response) -> None:
        cancelled = response.cancel_reason is not None
        status = "cancelled" if cancelled else "completed"
        usage_obj = usage(
            input_items=len(self._conv),
            output_audio_ms=response.audio_ms,
            output_text=response.text,
        )
        if cancelled and self._cursor is not None:
            self._cursor.abandon_turn()
        # The response stops being active before its last event goes out, so a response.create
        # that the client sends on seeing response.done is never refused.
        self._active = None
        await self._send(
            {"type": "response.done", "response": response.wire(status, usage_obj, self._conv_id)}
        )
        if self._settings.rate_limits:
            await self._send(
                {
                    "type": "rate_limits.updated",
                    "rate_limits": [
                        {
                            "name": "requests",
                            "limit": 5000,
                            "remaining": 4999,
                            "reset_seconds": 0.012,
                        },
                        {
                            "name": "tokens",
                            "limit": 40000,
                            "remaining": 38490,
                            "reset_seconds": 2.265,
                        },
                    ],
                }
            )

    async def _open_item(self, response: _Response, item: dict[str, Any]) -> tuple[int, str | None]:
        output_index = len(response.output)
        response.output.append(copy.deepcopy(item))
        await self._send(
            {
                "type": "response.output_item.added",
                "response_id": response.id,
                "output_index": output_index,
                "item": item,
            }
        )
        previous: str | None = None
        if response.in_conversation:
            previous = self._conv.insert(item)
            await self._send(
                {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
            )
        return output_index, previous

    async def _close_item(
        self, response: _Response, output_index: int, previous: str | None, item: dict[str, Any]
    ) -> None:
        response.output[output_index] = copy.deepcopy(item)
        if response.in_conversation and str(item["id"]) in self._conv:
            self._conv.replace(item)
            await self._send(
                {"type": "conversation.item.done", "previous_item_id": previous, "item": item}
            )
        await self._send(
            {
                "type": "response.output_item.done",
                "response_id": response.id,
                "output_index": output_index,
                "item": item,
            }
        )

    async def _emit_function_call(self, response: _Response, step: FunctionCall) -> None:
        item_id = self._ids.new("item")
        call_id = step.call_id or self._ids.new("call")
        item: dict[str, Any] = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "name": step.name,
            "call_id": call_id,
            "arguments": "",
        }
        output_index, previous = await self._open_item(response, item)
        args = step.arguments
        half = len(args) // 2
        for delta in (args[:half], args[half:]) if half else (args,):
            if not delta:
                continue
            await self._send(
                {
                    "type": "response.function_call_arguments.delta",
                    "response_id": response.id,
                    "item_id": item_id,
                    "output_index": output_index,
                    "call_id": call_id,
                    "delta": delta,
                }
            )
        await self._send(
            {
                "type": "response.function_call_arguments.done",
                "response_id": response.id,
                "item_id": item_id,
                "output_index": output_index,
                "call_id": call_id,
                "name": step.name,
                "arguments": args,
            }
        )
        response.text += args
        item = {**item, "status": "completed", "arguments": args}
        await self._close_item(response, output_index, previous, item)

    def _render(self, step: Say | Echo, fmt: AudioFormat) -> tuple[str, bytes]:
        if isinstance(step, Echo):
            if self._last_user_audio is not None:
                data, src = self._last_user_audio
                audio = convert(data, src, fmt)
                return f"echo: {round(fmt.duration_ms(len(audio)))} ms", audio
            step = Say(text="There is nothing to echo yet.")
        ms = step.ms if step.ms is not None else estimate_speech_ms(step.text)
        return step.text, speech_like(ms, fmt, seed=step.text)

    async def _pace(self, response: _Response) -> None:
        """Wait until the stream clock reaches the audio already sent (or a cancel arrives)."""
        pace = self._settings.pace
        if pace <= 0:
            # Still yield, so the reader can process a cancel or a barge-in between chunks.
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        if response.clock_start is None:
            response.clock_start = loop.time()
        delay = response.clock_start + response.audio_ms / 1000 / pace - loop.time()
        if delay <= 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(response.cancelled.wait(), delay)

    async def _emit_message(self, response: _Response, step: Say | Echo) -> None:
        item_id = self._ids.new("item")
        item: dict[str, Any] = {
            "id": item_id,
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        output_index, previous = await self._open_item(response, item)
        ids = {
            "response_id": response.id,
            "item_id": item_id,
            "output_index": output_index,
            "content_index": 0,
        }
        audio_out = "audio" in response.modalities
        fmt = response.output_format
        text, audio = self._render(step, fmt)
        words = _words(text)
        said = ""
        if audio_out:
            await self._send(
                {
                    "type": "response.content_part.added",
                    **ids,
                    "part": {"type": "audio", "transcript": ""},
                }
            )
            chunk = max(fmt.bytes_per_frame, fmt.nbytes_for_ms(self._settings.chunk_ms))
            chunks = [audio[i : i + chunk] for i in range(0, len(audio), chunk)]
            plan = [round(k * len(chunks) / len(words)) if words else 0 for k in range(len(words))]
            next_word = 0
            for k, piece in enumerate(chunks):
                await self._pace(response)
                if response.cancel_reason is not None:
                    break
                while next_word < len(words) and plan[next_word] <= k:
                    said += words[next_word]
                    delta = {"delta": words[next_word]}
                    await self._send(
                        {"type": "response.output_audio_transcript.delta", **ids, **delta}
                    )
                    next_word += 1
                self._conv.add_audio(item_id, piece, fmt)
                response.audio_ms += fmt.duration_ms(len(piece))
                encoded = {"delta": base64.b64encode(piece).decode("ascii")}
                await self._send({"type": "response.output_audio.delta", **ids, **encoded})
            if response.cancel_reason is None:
                for word in words[next_word:]:
                    said += word
                    await self._send(
                        {"type": "response.output_audio_transcript.delta", **ids, "delta": word}
                    )
            await self._send({"type": "response.output_audio.done", **ids})
            await self._send(
                {"type": "response.output_audio_transcript.done", **ids, "transcript": said}
            )
            part: dict[str, Any] = {"type": "audio", "transcript": said}
            content: dict[str, Any] = {"type": "output_audio", "transcript": said}
        else:
            await self._send(
                {"type": "response.content_part.added", **ids, "part": {"type": "text", "text": ""}}
            )
            for word in words:
                await self._pace(response)
                if response.cancel_reason is not None:
                    break
                said += word
                await self._send({"type": "response.output_text.delta", **ids, "delta": word})
            await self._send({"type": "response.output_text.done", **ids, "text": said})
            part = {"type": "text", "text": said}
            content = {"type": "output_text", "text": said}
        response.text += said
        await self._send({"type": "response.content_part.done", **ids, "part": part})
        status = "incomplete" if response.cancel_reason is not None else "completed"
        item = {**item, "status": status, "content": [content]}
        await self._close_item(response, output_index, previous, item)
