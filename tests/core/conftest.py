"""Shared parts of the ``CallBridge`` tests: an in-memory telephony edge, an in-memory model.

Both are real implementations of their protocols (``TelephonyEdge``, ``BridgeableModel``) over
asyncio queues, written for the tests and provider-neutral; nothing is mocked or patched. They
record what the bridge did to them and wake a shared :class:`Pulse` whenever something changes,
so tests wait on conditions, never on the clock (timeouts are hang guards only).

Test modules cannot import this file (pytest's importlib mode), so the parts travel as fixtures;
their types are imported under ``TYPE_CHECKING`` only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, ClassVar

import attrs
import pytest

from voicewire.audio.formats import MULAW_8K, AudioFormat
from voicewire.bridge import (
    CallBridge,
    CallBridgeStats,
    CallStarted,
    CallStopped,
    EdgeCapabilities,
    EdgeEvent,
    PlaybackAcknowledged,
)
from voicewire.config import SessionConfig
from voicewire.errors import NotConnectedError
from voicewire.events import (
    AudioDoneEvent,
    AudioEvent,
    ErrorEvent,
    FunctionCallEvent,
    RawServerEvent,
    ReconnectedEvent,
    SpeechStartedEvent,
    SpeechStoppedEvent,
    TurnDoneEvent,
    TurnStartedEvent,
)
from voicewire.items import RealtimeItem, UserMessageItem
from voicewire.transport import ConnectOptions, TransportBase

GUARD = 10.0
"""Seconds: a hang guard for every wait, never a timing assertion."""


class Pulse:
    """Wakes waiters whenever any part of a test rig changes."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def __call__(self) -> None:
        self._event.set()

    async def until(self, predicate: Callable[[], bool], what: str = "condition") -> None:
        """Wait until ``predicate()`` holds, re-checking after every change."""

        async def wait() -> None:
            while not predicate():
                self._event.clear()
                await self._event.wait()

        try:
            await asyncio.wait_for(wait(), GUARD)
        except asyncio.TimeoutError:
            pytest.fail(f"hang guard: still waiting for {what}")


def broken(faults: Mapping[str, Exception], method: str) -> None:
    """Raise the fault a test set for ``method``, if any: a part of the call that breaks."""
    fault = faults.get(method)
    if fault is not None:
        raise fault


# --- the edge ------------------------------------------------------------------------------------


class FakeEdge:
    """A telephony edge in memory.

    The test plays the provider: :meth:`feed` queues inbound events; :attr:`played` is every
    byte handed to ``play``; :attr:`log` lists every command in order. Tokens are acknowledged
    only when the test says so (:meth:`ack`, :meth:`ack_all`), like a provider whose playback
    takes time; after ``clear`` the outstanding tokens are echoed back, as Twilio does with marks.

    Args:
        pulse: Woken at every change.
        acknowledgements: Whether the edge declares acknowledgements.
        audio_format: The edge's native format.
        play_gate: If given, ``play`` waits for it to be set (a full provider buffer).
        checks_call_start: What the edge's capabilities say about refusing starts.
        max_buffered_ms: What the edge's capabilities say about pacing.

    :attr:`play_times` holds the monotonic time of each play, for pacing.

    A broken edge: put an exception in :attr:`faults` under a method's name (``"events"``,
    ``"play"``, ``"acknowledge_when_played"``, ``"clear"``, ``"close"``) and that method raises
    it instead of doing its work (``events`` when it takes its next event).
    """

    def __init__(
        self,
        pulse: Pulse,
        *,
        acknowledgements: bool = True,
        audio_format: AudioFormat = MULAW_8K,
        play_gate: asyncio.Event | None = None,
        checks_call_start: bool = False,
        max_buffered_ms: float | None = None,
    ) -> None:
        self.pulse = pulse
        self._capabilities = EdgeCapabilities(
            acknowledgements=acknowledgements,
            audio_format=audio_format,
            provider="fake",
            checks_call_start=checks_call_start,
            max_buffered_ms=max_buffered_ms,
        )
        self._inbound: asyncio.Queue[EdgeEvent | None] = asyncio.Queue()
        self.play_gate = play_gate
        self.played = bytearray()
        self.play_times: list[float] = []
        self.log: list[tuple[str, object]] = []
        self.outstanding: list[str] = []
        self.plays_waiting = 0
        self.closed = False
        self.close_reason: str | None = None
        self.faults: dict[str, Exception] = {}

    @property
    def capabilities(self) -> EdgeCapabilities:
        return self._capabilities

    # provider side (the test)

    def feed(self, *events: EdgeEvent) -> None:
        for event in events:
            self._inbound.put_nowait(event)

    def start_call(self, **custom: str) -> None:
        self.feed(
            CallStarted(
                call_id="CA1",
                stream_id="MZ1",
                audio_format=self._capabilities.audio_format,
                custom_parameters=custom,
            )
        )

    def hang_up(self) -> None:
        self.feed(CallStopped(reason="caller hung up"))

    def end_stream(self) -> None:
        self._inbound.put_nowait(None)

    def ack(self, count: int = 1) -> list[str]:
        """Acknowledge the oldest ``count`` outstanding tokens (playback reached them)."""
        tokens, self.outstanding = self.outstanding[:count], self.outstanding[count:]
        self.feed(*(PlaybackAcknowledged(token=t) for t in tokens))
        return tokens

    def ack_all(self) -> list[str]:
        return self.ack(len(self.outstanding))

    def commands(self, name: str) -> list[object]:
        return [arg for kind, arg in self.log if kind == name]

    # the TelephonyEdge protocol

    async def events(self) -> AsyncIterator[EdgeEvent]:
        while True:
            event = await self._inbound.get()
            if event is None:
                return
            broken(self.faults, "events")
            yield event

    async def play(self, data: bytes) -> None:
        broken(self.faults, "play")
        if self.play_gate is not None and not self.play_gate.is_set():
            self.plays_waiting += 1
            self.pulse()
            try:
                await self.play_gate.wait()
            finally:
                self.plays_waiting -= 1
        self.played += data
        self.play_times.append(time.monotonic())
        self.log.append(("play", bytes(data)))
        self.pulse()

    async def acknowledge_when_played(self, token: str) -> None:
        broken(self.faults, "acknowledge_when_played")
        self.log.append(("ack", token))
        self.outstanding.append(token)
        self.pulse()

    async def clear(self) -> None:
        broken(self.faults, "clear")
        self.log.append(("clear", None))
        echoed, self.outstanding = self.outstanding, []
        self.feed(*(PlaybackAcknowledged(token=t) for t in echoed))
        self.pulse()

    async def close(self, reason: str | None = None) -> None:
        broken(self.faults, "close")
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self.log.append(("close", reason))
            self._inbound.put_nowait(None)
        self.pulse()


class NowaitEdge(FakeEdge):
    """A :class:`FakeEdge` with the optional ``play_nowait``, refusing while ``play`` would wait.

    ``clear_gate``, if given, makes ``clear`` wait for it (a provider slow to take the clear).
    """

    def __init__(
        self, pulse: Pulse, *, clear_gate: asyncio.Event | None = None, **options: Any
    ) -> None:
        super().__init__(pulse, **options)
        self.clear_gate = clear_gate
        self.nowait_taken = 0
        self.nowait_refused = 0
        self.clears_waiting = 0

    def play_nowait(self, data: bytes, token: str | None) -> bool:
        if self.play_gate is not None and not self.play_gate.is_set():
            self.nowait_refused += 1
            return False
        self.nowait_taken += 1
        if data:
            self.played += data
            self.play_times.append(time.monotonic())
            self.log.append(("play", bytes(data)))
        if token is not None:
            self.log.append(("ack", token))
            self.outstanding.append(token)
        self.pulse()
        return True

    async def clear(self) -> None:
        if self.clear_gate is not None and not self.clear_gate.is_set():
            self.clears_waiting += 1
            self.pulse()
            try:
                await self.clear_gate.wait()
            finally:
                self.clears_waiting -= 1
        await super().clear()


# --- the model -----------------------------------------------------------------------------------


class FakeModel(TransportBase):
    """A model transport in memory that a bridge can drive (``BridgeableModel``).

    The test plays the server with the sync helpers (:meth:`respond`, :meth:`speak`,
    :meth:`speech_started`, :meth:`drop`, ...). The session's output format comes from the
    ``connect`` options, as a real server would take it from ``session.update``, and
    :meth:`truncate` refuses what a real server refuses (beyond the audio sent, or negative).

    Args:
        pulse: Woken at every change.
        server_interrupts: The value of ``server_interrupts_response``.
        connect_gate: If given, ``connect`` stays ``connecting`` until it is set.
        connect_error: If given, ``connect`` fails with it.
        send_gate: If given, ``send_audio`` (while connected) waits for it to be set.

    A broken transport: put an exception in :attr:`faults` under ``"close"``,
    ``"update_session_config"``, ``"cancel_response"``, ``"truncate"`` or
    ``"server_interrupts_response"``, and that method (or property) raises it.
    """

    transport_id: ClassVar[str] = "fake_model"

    def __init__(
        self,
        pulse: Pulse,
        *,
        server_interrupts: bool = False,
        connect_gate: asyncio.Event | None = None,
        connect_error: Exception | None = None,
        send_gate: asyncio.Event | None = None,
    ) -> None:
        super().__init__(plugin_observers=False)
        self.pulse = pulse
        self.automatic_barge_in = True
        self._server_interrupts = server_interrupts
        self.connect_gate = connect_gate
        self.connect_error = connect_error
        self.send_gate = send_gate
        self.sends_waiting = 0
        self.options: list[ConnectOptions] = []
        self.configs: list[SessionConfig] = []
        self.received = bytearray()
        self.held: list[tuple[bytes, bool]] = []
        self.commits = 0
        self.cancels = 0
        self.truncations: list[tuple[str, int, int]] = []
        self.sent_ms: dict[str, float] = {}
        self.active: str | None = None
        self.calls: list[tuple[str, object]] = []
        self.closes = 0
        self.output_format: AudioFormat | None = None
        self.faults: dict[str, Exception] = {}

    @property
    def server_interrupts_response(self) -> bool:
        broken(self.faults, "server_interrupts_response")
        return self._server_interrupts

    # the transport protocol

    async def connect(self, options: ConnectOptions) -> None:
        self.options.append(options)
        config = options.initial_session_config
        self.output_format = config.output_audio_format if config is not None else None
        self._set_status("connecting")
        self.pulse()
        if self.connect_gate is not None:
            await self.connect_gate.wait()
        if self.connect_error is not None:
            self._set_status("disconnected")
            self.pulse()
            raise self.connect_error
        self._set_status("connected")
        for audio, commit in self.held:
            self._take(audio, commit)
        self.held.clear()
        self.pulse()

    async def close(self) -> None:
        self.closes += 1
        broken(self.faults, "close")
        if self.status != "disconnected":
            self._set_status("disconnecting")
            self._set_status("disconnected")
        self.pulse()

    async def send_audio(self, audio: bytes, *, commit: bool = False) -> None:
        if self.status == "connecting":
            self.held.append((bytes(audio), commit))
        elif self.status == "connected":
            if self.send_gate is not None and not self.send_gate.is_set():
                self.sends_waiting += 1
                self.pulse()
                try:
                    await self.send_gate.wait()
                finally:
                    self.sends_waiting -= 1
            self._take(audio, commit)
        else:
            raise NotConnectedError("send_audio(): not connected")
        self.pulse()

    def _take(self, audio: bytes, commit: bool) -> None:
        self.received += audio
        self.commits += commit

    async def send_event(self, event: Mapping[str, Any]) -> None:
        self.calls.append(("send_event", dict(event)))
        self.pulse()

    async def send_message(
        self,
        message: str | UserMessageItem,
        other_event_data: Mapping[str, Any] | None = None,
    ) -> None:
        self.calls.append(("send_message", message))
        self.pulse()

    async def send_function_call_output(
        self, tool_call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> None:
        self.calls.append(("send_function_call_output", (tool_call.call_id, output)))
        self.pulse()

    async def interrupt(self) -> None:
        self.calls.append(("interrupt", None))
        self.pulse()

    async def reset_history(self, old: Sequence[RealtimeItem], new: Sequence[RealtimeItem]) -> None:
        self.calls.append(("reset_history", (len(old), len(new))))
        self.pulse()

    async def update_session_config(self, config: SessionConfig) -> None:
        broken(self.faults, "update_session_config")
        self.configs.append(config)
        self.pulse()

    async def cancel_response(self) -> bool:
        broken(self.faults, "cancel_response")
        self.cancels += 1
        self.pulse()
        return self.active is not None

    async def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        broken(self.faults, "truncate")
        sent = self.sent_ms.get(item_id)
        if sent is None or audio_end_ms < 0 or audio_end_ms > sent:
            raise ValueError(f"refused truncation of {item_id} at {audio_end_ms} (sent {sent})")
        self.truncations.append((item_id, content_index, audio_end_ms))
        self.pulse()

    # the server side (the test)

    def respond(self, response_id: str) -> None:
        self.active = response_id
        self._emit(TurnStartedEvent(response_id=response_id))

    def speak(self, response_id: str | None, item_id: str | None, data: bytes) -> None:
        if item_id is not None and self.output_format is not None:
            ms = self.output_format.duration_ms(len(data))
            self.sent_ms[item_id] = self.sent_ms.get(item_id, 0.0) + ms
        self._emit(AudioEvent(data=data, response_id=response_id, item_id=item_id))

    def audio_done(self, response_id: str, item_id: str) -> None:
        self._emit(AudioDoneEvent(response_id=response_id, item_id=item_id))

    def finish(self, response_id: str, status: str = "completed") -> None:
        if self.active == response_id:
            self.active = None
        self._emit(TurnDoneEvent(response_id=response_id, status=status))

    def speech_started(self) -> None:
        self._emit(SpeechStartedEvent(item_id="user-1", audio_start_ms=0))

    def speech_stopped(self) -> None:
        self._emit(SpeechStoppedEvent(item_id="user-1", audio_end_ms=0))

    def raw(self, message: Mapping[str, Any]) -> None:
        self._emit(RawServerEvent(source="fake_model", message=message))

    def error(self, message: str) -> None:
        self._report_error(message, source="server", code="fake_error")

    def drop(self) -> None:
        """The connection closes under the transport (no reconnect)."""
        self._set_status("disconnected")

    def reconnect(self) -> None:
        """The connection drops and comes back (a transport with a reconnect policy)."""
        self._set_status("connecting")
        self._set_status("connected")
        self._emit(ReconnectedEvent(attempt=1, state_restored=True))


# --- recording the bridge's events -------------------------------------------------------------

_CHANNELS = (
    "*",
    "audio",
    "audio_done",
    "audio_interrupted",
    "audio_transcript_delta",
    "output_text_delta",
    "function_call",
    "item_update",
    "item_deleted",
    "turn_started",
    "turn_done",
    "usage_update",
    "connection_change",
    "error",
    "reconnected",
    "speech_started",
    "speech_stopped",
    "call_start",
    "call_stop",
    "dtmf",
    "mark",
)


class EventLog:
    """Every event a bridge emits, by channel, in order; wakes the pulse at each."""

    def __init__(self, bridge: CallBridge, pulse: Pulse) -> None:
        self.pulse = pulse
        self.events: list[tuple[str, object]] = []
        for channel in _CHANNELS:
            bridge.on(channel, self._listener(channel))

    def _listener(self, channel: str) -> Callable[[object], None]:
        def record(event: object) -> None:
            self.events.append((channel, event))
            self.pulse()

        return record

    def on(self, channel: str) -> list[object]:
        return [event for name, event in self.events if name == channel]

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for _, event in self.events if isinstance(event, kind)]

    def errors(self, code: str | None = None) -> list[ErrorEvent]:
        return [e for e in self.of(ErrorEvent) if code is None or e.code == code]


class RecordingObserver:
    """A session observer that keeps the bridge's notifications."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def _keep(self, name: str, *args: object) -> None:
        self.calls.append((name, args))

    def on_audio_to_caller(self, nbytes: int) -> None:
        self._keep("on_audio_to_caller", nbytes)

    def on_playback_acknowledged(self, token: str) -> None:
        self._keep("on_playback_acknowledged", token)

    def on_interruption(self, event: object) -> None:
        self._keep("on_interruption", event)

    def on_connection_change(self, status: str) -> None:
        self._keep("on_connection_change", status)

    def on_close(self, reason: str | None) -> None:
        self._keep("on_close", reason)

    def named(self, name: str) -> list[tuple[object, ...]]:
        return [args for n, args in self.calls if n == name]


class NowaitModel(FakeModel):
    """A :class:`FakeModel` with the optional ``send_audio_nowait``.

    It takes audio at once while connected and ``send_audio`` would not wait; otherwise it
    refuses (and sends nothing), as ``OpenAIRealtimeWebSocket`` does.
    """

    def __init__(self, pulse: Pulse, **options: Any) -> None:
        super().__init__(pulse, **options)
        self.nowait_taken = 0
        self.nowait_refused = 0

    def send_audio_nowait(self, audio: bytes) -> bool:
        if self.status != "connected" or (
            self.send_gate is not None and not self.send_gate.is_set()
        ):
            self.nowait_refused += 1
            return False
        self.nowait_taken += 1
        self._take(audio, False)
        self.pulse()
        return True


# --- the rig -----------------------------------------------------------------------------------


@attrs.define
class Rig:
    """An edge, a model, the bridge between them, its event log, and the bridge's run task."""

    pulse: Pulse
    edge: FakeEdge
    model: FakeModel
    bridge: CallBridge
    log: EventLog
    observer: RecordingObserver
    task: asyncio.Task[None] | None = None

    def start(self, options: ConnectOptions | None = None) -> None:
        """Run the bridge in a task (``run(options)``)."""
        self.task = asyncio.get_running_loop().create_task(self.bridge.run(options))

    async def until(self, predicate: Callable[[], bool], what: str = "condition") -> None:
        await self.pulse.until(predicate, what)

    async def connected(self) -> None:
        await self.until(lambda: self.model.status == "connected", "the model to connect")

    async def finished(self) -> None:
        """Wait for ``run()`` to return (hang guard only)."""
        assert self.task is not None
        await asyncio.wait_for(asyncio.shield(self.task), GUARD)

    @property
    def stats(self) -> CallBridgeStats:
        return self.bridge.stats


class RigFactory:
    """The type of the ``rig`` fixture: builds a rig; the bridge's keywords pass through."""

    def __init__(self) -> None:
        self.made: list[Rig] = []

    def __call__(
        self,
        *,
        acknowledgements: bool = True,
        edge_format: AudioFormat = MULAW_8K,
        play_gate: asyncio.Event | None = None,
        server_interrupts: bool = False,
        connect_gate: asyncio.Event | None = None,
        connect_error: Exception | None = None,
        send_gate: asyncio.Event | None = None,
        nowait: bool = False,
        clear_gate: asyncio.Event | None = None,
        checks_call_start: bool = False,
        max_buffered_ms: float | None = None,
        **bridge_options: Any,
    ) -> Rig:
        pulse = Pulse()
        edge_options: dict[str, Any] = {"clear_gate": clear_gate} if nowait else {}
        edge_options["checks_call_start"] = checks_call_start
        edge_options["max_buffered_ms"] = max_buffered_ms
        edge = (NowaitEdge if nowait else FakeEdge)(
            pulse,
            acknowledgements=acknowledgements,
            audio_format=edge_format,
            play_gate=play_gate,
            **edge_options,
        )
        model = (NowaitModel if nowait else FakeModel)(
            pulse,
            server_interrupts=server_interrupts,
            connect_gate=connect_gate,
            connect_error=connect_error,
            send_gate=send_gate,
        )
        observer = RecordingObserver()
        bridge = CallBridge(
            edge, model, observers=[observer], plugin_observers=False, **bridge_options
        )
        rig = Rig(pulse, edge, model, bridge, EventLog(bridge, pulse), observer)
        self.made.append(rig)
        return rig

    async def started(self, **options: Any) -> Rig:
        """A rig (built with ``options``) whose bridge runs, model connected, call started."""
        r = self(**options)
        r.start()
        await r.connected()
        r.edge.start_call()
        await r.until(lambda: bool(r.log.on("call_start")), "call_start")
        return r


@pytest.fixture
async def rig(no_task_leaks: None) -> AsyncIterator[RigFactory]:
    """Build bridge rigs; after the test, close every bridge and check no task was left."""
    factory = RigFactory()
    yield factory
    for made in factory.made:
        await made.bridge.close()
        if made.task is not None:
            await asyncio.wait_for(made.task, GUARD)


def assert_balanced(stats: CallBridgeStats) -> None:
    """Every byte either way was delivered, is pending, or was counted as dropped."""
    assert stats.caller_unaccounted_bytes == 0, stats
    assert stats.model_unaccounted_bytes == 0, stats


@pytest.fixture
def balanced() -> Callable[[CallBridgeStats], None]:
    """The ``assert_balanced`` check."""
    return assert_balanced


class EdgeFactory:
    """The type of the ``make_edge`` fixture: a :class:`FakeEdge` with a pulse of its own."""

    def __call__(
        self, *, acknowledgements: bool = True, audio_format: AudioFormat = MULAW_8K
    ) -> FakeEdge:
        return FakeEdge(Pulse(), acknowledgements=acknowledgements, audio_format=audio_format)


@pytest.fixture
def make_edge() -> EdgeFactory:
    """Build in-memory edges (for bridges joined to other models than ``FakeModel``)."""
    return EdgeFactory()
