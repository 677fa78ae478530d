"""``RealtimeProtocol``: the OpenAI Realtime GA protocol as a state machine, without I/O.

The I/O layer owns the socket and the clock. It feeds every received frame to
:meth:`RealtimeProtocol.receive` with the current time, emits the events it returns, and after
every call writes the frames :meth:`RealtimeProtocol.data_to_send` hands out, in order::

    protocol = RealtimeProtocol(model="gpt-realtime")
    protocol.initial_frames(config)
    for frame in protocol.data_to_send():
        await socket.send(frame)
    async for frame in socket:
        for event in protocol.receive(frame, now_ms=clock_ms()):
            emitter.emit(channel_of(event), event)
        for out in protocol.data_to_send():
            await socket.send(out)

Methods that *send* only queue frames; methods that *decide* (interrupt, function-call output)
also return the events to emit. Nothing here reads a clock, sleeps or touches a socket.
"""

from __future__ import annotations

import logging
import math
import types
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from voicewire.audio.formats import PCM16_24K, AudioFormat
from voicewire.config import SessionConfig
from voicewire.events import (
    AudioEvent,
    AudioInterruptedEvent,
    FunctionCallEvent,
    ItemUpdateEvent,
    SpeechStartedEvent,
    SpeechStoppedEvent,
    TransportEvent,
)
from voicewire.items import FunctionCallItem, RealtimeItem, UserMessageItem
from voicewire_openai_ws.protocol import client_events as build
from voicewire_openai_ws.protocol.conversation import ConversationState
from voicewire_openai_ws.protocol.errors import InvalidClientEventError
from voicewire_openai_ws.protocol.frames import encode_frame
from voicewire_openai_ws.protocol.history import diff_history
from voicewire_openai_ws.protocol.playback import PlaybackItem, PlaybackTracker
from voicewire_openai_ws.protocol.sequencer import ResponseCreateSequencer
from voicewire_openai_ws.protocol.server_events import parse_server_frame
from voicewire_openai_ws.protocol.server_session import (
    interrupt_response_of,
    output_format_of,
    tracing_of,
)
from voicewire_openai_ws.protocol.session_payload import build_session_payload
from voicewire_openai_ws.protocol.tracing import decide_tracing_update, desired_tracing

__all__ = ["RealtimeProtocol"]

_log = logging.getLogger(__name__)

# Server events after which the full item is fetched again: its transcript arrived, the server
# cut it (and its transcript) at a truncation point, or the server is filling in an MCP item.
_RETRIEVE_AFTER = frozenset(
    {
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.truncated",
        "response.mcp_call.in_progress",
        "mcp_list_tools.in_progress",
    }
)
_OUTPUT_ITEM_EVENTS = frozenset({"response.output_item.added", "response.output_item.done"})
_CONVERSATION_EVENTS = frozenset(
    {
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.retrieved",
        "conversation.item.deleted",
    }
)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_now(now_ms: float) -> float:
    if isinstance(now_ms, bool) or not isinstance(now_ms, int | float) or not math.isfinite(now_ms):
        raise ValueError(f"now_ms must be a finite number of milliseconds, got {now_ms!r}")
    return float(now_ms)


class RealtimeProtocol:
    """One OpenAI Realtime (GA) connection's protocol state.

    Args:
        model: The connection's model, sent in ``session.update`` when the config names none.
        automatic_barge_in: Interrupt playback when the server detects the user speaking
            (``input_audio_buffer.speech_started``). A call bridge that tracks playback from its
            own acknowledgements turns this off and calls :meth:`cancel_response` and
            :meth:`truncate` itself.
    """

    def __init__(self, *, model: str | None = None, automatic_barge_in: bool = True) -> None:
        self._model = model
        self.automatic_barge_in = automatic_barge_in
        self._config = SessionConfig()
        self._outgoing: list[str] = []
        self._sequencer = ResponseCreateSequencer()
        self._playback = PlaybackTracker()
        self._conversation = ConversationState()
        self._session: dict[str, Any] | None = None
        self._active_response_id: str | None = None
        self._tracing_applied = False

    # --- read-only state ---------------------------------------------------------------------

    @property
    def model(self) -> str | None:
        """The connection's model."""
        return self._model

    @property
    def config(self) -> SessionConfig:
        """The session configuration sent so far (every update merged over the first)."""
        return self._config

    @property
    def session(self) -> Mapping[str, Any] | None:
        """The server's last reported session (``session.created``/``updated``), read-only."""
        return None if self._session is None else types.MappingProxyType(self._session)

    @property
    def output_format(self) -> AudioFormat:
        """The format of model audio, as the server last reported it (PCM16 24 kHz before)."""
        return self._playback.output_format

    @property
    def interrupt_response(self) -> bool:
        """Whether the server cancels responses itself on barge-in (``False`` when unknown)."""
        return interrupt_response_of(self._session)

    @property
    def response_active(self) -> bool:
        """Whether a response is in progress (``response.created`` without ``response.done``)."""
        return self._sequencer.response_active

    @property
    def active_response_id(self) -> str | None:
        """The id of the response in progress, if any."""
        return self._active_response_id

    @property
    def playback(self) -> PlaybackItem | None:
        """The playback estimate of the current assistant audio, if any."""
        return self._playback.current

    @property
    def conversation(self) -> ConversationState:
        """The items the server confirmed (kept across :meth:`connection_lost` for replay)."""
        return self._conversation

    @property
    def sequencer(self) -> ResponseCreateSequencer:
        """The ``response.create`` sequencer (for inspection; drive it through this class)."""
        return self._sequencer

    # --- frames out --------------------------------------------------------------------------

    def data_to_send(self) -> list[str]:
        """Take the queued JSON text frames, oldest first; the queue is empty afterwards."""
        frames, self._outgoing = self._outgoing, []
        return frames

    def _queue(self, event: Mapping[str, Any]) -> None:
        self._outgoing.append(encode_frame(event))

    def _queue_all(self, events: Sequence[Mapping[str, Any]]) -> None:
        for event in events:
            self._queue(event)

    # --- session -----------------------------------------------------------------------------

    def initial_frames(self, config: SessionConfig | None, model: str | None = None) -> None:
        """Queue the first ``session.update`` of a connection.

        The config replaces any earlier one; its ``tracing`` is applied once ``session.created``
        arrives (see :mod:`~voicewire_openai_ws.protocol.tracing`).

        Args:
            config: The initial session configuration (``None``: defaults).
            model: The connection's model, if it differs from the constructor's.
        """
        if model is not None:
            self._model = model
        self._config = config if config is not None else SessionConfig()
        self._queue(build.session_update(build_session_payload(self._config, model=self._model)))

    def update_session_config(self, config: SessionConfig) -> None:
        """Merge ``config`` over the configuration sent so far and queue the full result.

        Merging (rather than sending ``config`` over the defaults) keeps what an earlier update
        set, e.g. G.711 formats that a later voice change must not reset to PCM.
        """
        self._config = self._config.merge(config)
        self._queue(build.session_update(build_session_payload(self._config, model=self._model)))

    # --- input audio and messages ------------------------------------------------------------

    def send_audio(self, data: bytes | bytearray | memoryview, *, commit: bool = False) -> None:
        """Queue input audio (in the session's input format); ``commit`` closes the user turn.

        Large chunks are split to stay under the server's per-event limit; an empty chunk
        queues no append.
        """
        self._outgoing.extend(build.input_audio_buffer_append_frames(data))
        if commit:
            self._queue(build.input_audio_buffer_commit())

    def send_event(self, event: Mapping[str, Any]) -> None:
        """Queue a raw client event.

        ``response.create`` goes through the sequencer as a manual request (so it may wait for
        the active response to finish); ``response.cancel`` is queued at once and recorded.

        Raises:
            InvalidClientEventError: No non-empty string ``type``, or not JSON-serialisable.
        """
        frame = encode_frame(event)
        kind = event["type"]
        if kind == "response.create":
            self._queue_all(self._sequencer.request(event))
            return
        self._outgoing.append(frame)
        if kind == "response.cancel":
            self._sequencer.on_cancel_sent()

    def send_message(
        self,
        message: str | UserMessageItem,
        other_event_data: Mapping[str, Any] | None = None,
        *,
        trigger_response: bool = True,
    ) -> None:
        """Queue a user message, then (by default) an automatic response request.

        Args:
            message: Text, or a user message item (text, audio and image parts).
            other_event_data: Extra top-level fields of the ``conversation.item.create`` event,
                e.g. ``event_id`` or ``previous_item_id``.
            trigger_response: Whether to ask for a response afterwards.

        Raises:
            InvalidClientEventError: ``other_event_data`` tries to replace ``type`` or ``item``,
                or is not JSON-serialisable.
        """
        event = build.conversation_item_create(build.user_message_item(message))
        if other_event_data:
            clash = {"type", "item"} & set(other_event_data)
            if clash:
                raise InvalidClientEventError(
                    f"other_event_data cannot replace {sorted(clash)} of conversation.item.create"
                )
            event.update(other_event_data)
        self._queue(event)
        if trigger_response:
            self.request_response()

    def send_function_call_output(
        self, tool_call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> ItemUpdateEvent | None:
        """Queue a function call's output, then (by default) an automatic response request.

        Returns:
            The ``ItemUpdateEvent`` to emit: the call, now ``completed`` with its output. ``None``
            when the call has no item id to attach it to.
        """
        self._queue(
            build.conversation_item_create(
                build.function_call_output_item(tool_call.call_id, output)
            )
        )
        update = None
        if tool_call.item_id:
            previous = tool_call.previous_item_id or self._conversation.previous_item_id(
                tool_call.item_id
            )
            update = ItemUpdateEvent(
                item=FunctionCallItem(
                    item_id=tool_call.item_id,
                    previous_item_id=previous,
                    status="completed",
                    name=tool_call.name,
                    call_id=tool_call.call_id,
                    arguments=tool_call.arguments,
                    output=output,
                )
            )
        if start_response:
            self.request_response()
        return update

    # --- responses ---------------------------------------------------------------------------

    def request_response(self, response: Mapping[str, Any] | None = None) -> None:
        """Ask for a model response, sequenced (see :mod:`~voicewire_openai_ws.protocol.sequencer`).

        Args:
            response: ``None`` for an automatic request (coalesced with others); parameters for
                a manual one (``{"instructions": ...}``), never merged.

        Raises:
            InvalidClientEventError: ``response`` is not JSON-serialisable.
        """
        if response is None:
            self._queue_all(self._sequencer.request())
            return
        event = build.response_create(response)
        encode_frame(event)  # fail now, not when the create is finally dispatched
        self._queue_all(self._sequencer.request(event))

    def cancel_response(self) -> bool:
        """Queue ``response.cancel`` if a response is active and no cancel is in flight.

        Returns:
            Whether a cancel was queued.
        """
        if not self._sequencer.should_cancel():
            return False
        self._queue(build.response_cancel())
        self._sequencer.on_cancel_sent()
        return True

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        """Queue ``conversation.item.truncate``; drops this protocol's own estimate of that item.

        Raises:
            ValueError: An argument is out of range (``audio_end_ms`` must be an ``int`` >= 0).
        """
        self._queue(build.conversation_item_truncate(item_id, content_index, audio_end_ms))
        current = self._playback.current
        if current is not None and (current.item_id, current.content_index) == (
            item_id,
            content_index,
        ):
            self._playback.reset()

    def interrupt(self, now_ms: float, *, cancel: bool = True) -> list[TransportEvent]:
        """Stop the model's turn at ``now_ms``: cancel, then truncate what was not heard.

        * ``response.cancel`` is queued if ``cancel`` and a response is active (and no cancel is
          already in flight); this happens even when no audio arrived yet.
        * If audio is still being heard (by the playback estimate), ``conversation.item.truncate``
          is queued after the cancel and an ``AudioInterruptedEvent`` is returned. Calling again
          finds nothing left to cut.

        Returns:
            The events to emit: ``[AudioInterruptedEvent]`` or ``[]``.
        """
        now = _check_now(now_ms)
        current = self._playback.current
        truncation = self._playback.interrupt(now)
        if cancel:
            self.cancel_response()
        if truncation is None:
            return []
        self._queue(
            build.conversation_item_truncate(
                truncation.item_id, truncation.content_index, truncation.audio_end_ms
            )
        )
        response_id = current.response_id if current is not None else None
        return [AudioInterruptedEvent(response_id=response_id, truncations=(truncation,))]

    # --- history -----------------------------------------------------------------------------

    def reset_history(self, old: Sequence[RealtimeItem], new: Sequence[RealtimeItem]) -> None:
        """Queue the deletes and creates that turn ``old`` into ``new`` on the server.

        Raises:
            HistoryReplayError: ``new`` adds or changes assistant audio; nothing was queued.
        """
        self._queue_all(diff_history(old, new))

    def replay_history(self) -> int:
        """Queue the confirmed conversation for a new connection (after :meth:`initial_frames`).

        Returns:
            How many items were queued.
        """
        events = self._conversation.replay_events()
        self._queue_all(events)
        return len(events)

    # --- frames in ---------------------------------------------------------------------------

    def receive(self, frame: str | bytes, now_ms: float) -> list[TransportEvent]:
        """Process one server frame received at ``now_ms``; return the events to emit, in order.

        Never raises for what the server sent: unusable frames come back as an ``ErrorEvent``
        (see :mod:`~voicewire_openai_ws.protocol.server_events`). Frames to send in reaction
        (a sequenced ``response.create``, a ``conversation.item.retrieve``, a barge-in's cancel
        and truncate, the tracing update) are queued.

        Raises:
            ValueError: ``now_ms`` is not a finite number.
        """
        now = _check_now(now_ms)
        parsed = parse_server_frame(frame)
        events = list(parsed.events)
        message, kind = parsed.message, parsed.type
        if not parsed.usable or message is None or kind is None:
            return events
        if kind in _CONVERSATION_EVENTS:
            self._conversation.apply(message)
        elif kind in _OUTPUT_ITEM_EVENTS:
            events = [self._placed(event) for event in events]
        if kind == "response.created":
            response = message["response"]
            response_id = response.get("id")
            self._active_response_id = response_id if isinstance(response_id, str) else None
            self._queue_all(self._sequencer.on_response_created())
        elif kind == "response.done":
            self._active_response_id = None
            self._queue_all(self._sequencer.on_response_done())
        elif kind == "response.output_audio.delta":
            for event in parsed.events:
                if isinstance(event, AudioEvent) and event.item_id is not None:
                    self._playback.on_audio(
                        item_id=event.item_id,
                        content_index=event.content_index,
                        response_id=event.response_id,
                        nbytes=len(event.data),
                        now_ms=now,
                    )
        elif kind == "response.output_audio.done":
            self._playback.on_audio_done(
                item_id=message["item_id"], content_index=message["content_index"]
            )
        elif kind in ("session.created", "session.updated"):
            self._on_session(kind, message["session"])
        elif kind == "input_audio_buffer.speech_started":
            events.append(
                SpeechStartedEvent(
                    item_id=_str_or_none(message.get("item_id")),
                    audio_start_ms=_int_or_none(message.get("audio_start_ms")),
                )
            )
            if self.automatic_barge_in:
                events.extend(self.interrupt(now, cancel=not self.interrupt_response))
        elif kind == "input_audio_buffer.speech_stopped":
            events.append(
                SpeechStoppedEvent(
                    item_id=_str_or_none(message.get("item_id")),
                    audio_end_ms=_int_or_none(message.get("audio_end_ms")),
                )
            )
        elif kind == "error":
            error = message.get("error")
            self._queue_all(self._sequencer.on_error(error if isinstance(error, Mapping) else None))
        elif kind in _RETRIEVE_AFTER:
            item_id = message.get("item_id")
            if isinstance(item_id, str) and item_id:
                self._queue(build.conversation_item_retrieve(item_id))
        return events

    def _placed(self, event: TransportEvent) -> TransportEvent:
        # response.output_item.* events do not say where the item sits in the conversation;
        # conversation.item.added (which usually comes first) did, so fill it in when known.
        if isinstance(event, ItemUpdateEvent) and event.item.previous_item_id is None:
            previous = self._conversation.previous_item_id(event.item.item_id)
            if previous is not None:
                return ItemUpdateEvent(item=attrs.evolve(event.item, previous_item_id=previous))
        elif isinstance(event, FunctionCallEvent) and event.previous_item_id is None:
            previous = self._conversation.previous_item_id(event.item_id) if event.item_id else None
            if previous is not None:
                return attrs.evolve(event, previous_item_id=previous)
        return event

    def _on_session(self, kind: str, session: Mapping[str, Any]) -> None:
        self._session = dict(session)
        self._playback.output_format = output_format_of(session)
        if kind == "session.created" and not self._tracing_applied:
            self._tracing_applied = True
            decision = decide_tracing_update(
                desired_tracing(self._config.tracing), tracing_of(session)
            )
            if decision.event is not None:
                self._queue(decision.event)
            if decision.warning is not None:
                _log.warning("%s", decision.warning)

    # --- connection --------------------------------------------------------------------------

    def connection_lost(self) -> None:
        """The connection is gone: drop what belonged to it.

        Pending response requests, queued frames not yet sent, the playback estimate and the
        server's session are dropped (a new connection must not receive stale frames). The
        configuration, the model and the confirmed conversation are kept, for a replay.
        """
        self._sequencer.connection_lost()
        self._playback.reset()
        self._playback.output_format = PCM16_24K
        self._outgoing.clear()
        self._session = None
        self._active_response_id = None
        self._tracing_applied = False
