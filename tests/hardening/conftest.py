"""Shared parts of the hardening suite: in-memory halves, loopback rigs, resource probes.

Everything here is written for these tests and provider-neutral; nothing is mocked or patched:

* :class:`MemoryEdge` is a real ``TelephonyEdge`` over in-memory queues (the test plays the
  telephony provider), and :class:`MemoryModel` a real ``BridgeableModel`` (the test plays the
  model's server). Both wake a shared :class:`Waker` on every change.
* :class:`Loopback` starts ``FakeRealtimeServer`` instances and bridges in-memory edges to the
  REAL ``OpenAIRealtimeWebSocket`` over loopback sockets.
* :class:`TwilioServerEnv` runs the real aiohttp bridge server (``create_app``) on 127.0.0.1.
* :func:`count_fds`, :func:`count_sockets`, :func:`rss_bytes` read ``/proc/self`` (Linux only;
  they return ``None`` elsewhere and the tests that need them skip).

Test modules cannot import this file (pytest's importlib mode), so the parts travel as
fixtures; their types are imported under ``TYPE_CHECKING`` only. Every wait is on a condition;
timeouts are hang guards, never timing assertions.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp import web

from voicewire.audio.formats import MULAW_8K, AudioFormat
from voicewire.bridge import (
    CallBridge,
    CallBridgeStats,
    CallerAudio,
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
    ReconnectedEvent,
    SpeechStartedEvent,
    SpeechStoppedEvent,
    TurnDoneEvent,
    TurnStartedEvent,
)
from voicewire.items import RealtimeItem, UserMessageItem
from voicewire.testing import FakeRealtimeServer
from voicewire.testing.fake_realtime import SessionRecord
from voicewire.transport import ConnectOptions, TransportBase
from voicewire_openai_ws import OpenAIRealtimeWebSocket, ReconnectPolicy
from voicewire_twilio.server import APP_KEY, BridgeServer, create_app

GUARD = 20.0
"""Seconds: the hang guard of every wait in this suite."""

API_KEY = "sk-hardening-KEY-7d1e0c9b8a"
"""The model API key of the loopback rigs (distinctive, so a leak is easy to find)."""

FAST_RECONNECT = ReconnectPolicy(initial_delay=0.0, jitter=0.0, max_attempts=3)
"""A reconnect policy without waits, for tests."""


def env_int(name: str, default: int, *, maximum: int) -> int:
    """An int from the environment (``default`` when unset), capped at ``maximum``."""
    raw = os.environ.get(name)
    if not raw:
        return default
    return max(1, min(int(raw), maximum))


# --- probes ------------------------------------------------------------------------------------


def count_fds() -> int | None:
    """Open file descriptors of this process (``None`` without ``/proc``)."""
    path = Path("/proc/self/fd")
    if not path.is_dir():
        return None
    return len(os.listdir(path))


def count_sockets() -> int | None:
    """Open sockets of this process (``None`` without ``/proc``)."""
    path = Path("/proc/self/fd")
    if not path.is_dir():
        return None
    sockets = 0
    for name in os.listdir(path):
        with contextlib.suppress(OSError):
            if os.readlink(path / name).startswith("socket:"):
                sockets += 1
    return sockets


def rss_bytes() -> int | None:
    """Resident set size of this process in bytes (``None`` without ``/proc``)."""
    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


async def settle() -> None:
    """Let finishing tasks and closing transports run, then collect garbage."""
    for _ in range(5):
        await asyncio.sleep(0)
    gc.collect()


def alive_tasks(before: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """Tasks that were not in ``before``, are not done, and are not the current one."""
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t not in before and not t.done() and t is not current]


# --- waking ------------------------------------------------------------------------------------


class Waker:
    """Wakes waiters whenever any part of a rig changes; waits re-check a predicate."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def __call__(self, *_: object) -> None:
        self._event.set()

    async def until(
        self, predicate: Callable[[], bool], what: str = "condition", *, guard: float = GUARD
    ) -> None:
        """Wait until ``predicate()`` holds (re-checked at every change, and every 50 ms for
        state that changes without a wake-up, such as a server's records)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + guard
        while not predicate():
            if loop.time() > deadline:
                pytest.fail(f"hang guard: still waiting for {what}")
            self._event.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._event.wait(), 0.05)


# --- the in-memory edge ------------------------------------------------------------------------


class MemoryEdge:
    """A telephony edge in memory; the test plays the provider.

    Args:
        waker: Woken at every change.
        audio_format: The edge's native format.
        acknowledgements: Whether the edge declares acknowledgements.
        auto_ack: Acknowledge each token as soon as it is requested (a provider that plays
            instantly); otherwise tokens wait in :attr:`outstanding` for :meth:`ack`.
        play_gate: If given, ``play`` waits until it is set (a full provider buffer).
        fail_plays: ``play`` raises this many times first (a broken provider connection).
    """

    def __init__(
        self,
        waker: Waker,
        *,
        audio_format: AudioFormat = MULAW_8K,
        acknowledgements: bool = True,
        auto_ack: bool = True,
        play_gate: asyncio.Event | None = None,
        fail_plays: int = 0,
    ) -> None:
        self.waker = waker
        self._caps = EdgeCapabilities(
            acknowledgements=acknowledgements, audio_format=audio_format, provider="memory"
        )
        self._inbound: asyncio.Queue[EdgeEvent | None] = asyncio.Queue()
        self.auto_ack = auto_ack
        self.play_gate = play_gate
        self.fail_plays = fail_plays
        self.played = bytearray()
        self.plays: list[bytes] = []
        self.outstanding: list[str] = []
        self.clears = 0
        self.closed = False
        self.close_reason: str | None = None
        self.sent_ms = 0  # the media clock of the caller audio fed so far
        self.caller_audio = bytearray()  # every caller byte fed, in order

    @property
    def capabilities(self) -> EdgeCapabilities:
        return self._caps

    # the provider's side (the test)

    def feed(self, *events: EdgeEvent) -> None:
        for event in events:
            if isinstance(event, CallerAudio):
                self.caller_audio += event.data
            self._inbound.put_nowait(event)
        self.waker()

    def start_call(self, call_id: str = "CA-memory") -> None:
        self.feed(
            CallStarted(
                call_id=call_id, stream_id="MZ-memory", audio_format=self._caps.audio_format
            )
        )

    def speak(self, audio: bytes, *, frame_ms: int = 20) -> None:
        """Feed caller audio in frames stamped with the media clock (which keeps running)."""
        fmt = self._caps.audio_format
        frame = fmt.nbytes_for_ms(frame_ms)
        for offset in range(0, len(audio), frame):
            chunk = audio[offset : offset + frame]
            self.feed(CallerAudio(data=chunk, timestamp_ms=self.sent_ms))
            self.sent_ms += round(fmt.duration_ms(len(chunk)))

    def ack(self, count: int | None = None) -> None:
        """Acknowledge the oldest ``count`` outstanding tokens (all by default)."""
        n = len(self.outstanding) if count is None else count
        tokens, self.outstanding = self.outstanding[:n], self.outstanding[n:]
        self.feed(*(PlaybackAcknowledged(token=t) for t in tokens))

    def hang_up(self) -> None:
        self.feed(CallStopped(reason="caller hung up"))

    def vanish(self) -> None:
        """The provider's connection is lost: the stream ends without a stop message."""
        self._inbound.put_nowait(None)
        self.waker()

    # the TelephonyEdge protocol

    async def events(self) -> AsyncIterator[EdgeEvent]:
        while True:
            event = await self._inbound.get()
            if event is None:
                return
            yield event

    async def play(self, data: bytes) -> None:
        if self.play_gate is not None:
            await self.play_gate.wait()
        if self.fail_plays > 0:
            self.fail_plays -= 1
            self.waker()
            raise ConnectionResetError("memory edge: the provider connection is gone")
        self.played += data
        self.plays.append(bytes(data))
        self.waker()

    async def acknowledge_when_played(self, token: str) -> None:
        if self.auto_ack:
            self.feed(PlaybackAcknowledged(token=token))
        else:
            self.outstanding.append(token)
        self.waker()

    async def clear(self) -> None:
        self.clears += 1
        echoed, self.outstanding = self.outstanding, []
        self.feed(*(PlaybackAcknowledged(token=t) for t in echoed))

    async def close(self, reason: str | None = None) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self._inbound.put_nowait(None)
        self.waker()


# --- the in-memory model -----------------------------------------------------------------------


class MemoryModel(TransportBase):
    """A model transport in memory that a bridge can drive; the test plays the server.

    ``send_audio`` is accepted while ``connecting`` (held) and ``connected``; ``send_gate``
    makes it wait (a model that does not keep up). ``truncate`` records; ``cancel_response``
    reports whether a response was active.
    """

    transport_id: ClassVar[str] = "memory_model"

    def __init__(self, waker: Waker, *, send_gate: asyncio.Event | None = None) -> None:
        super().__init__(plugin_observers=False)
        self.waker = waker
        self.automatic_barge_in = True
        self.send_gate = send_gate
        self.received = bytearray()
        self.held = bytearray()
        self.truncations: list[tuple[str, int, int]] = []
        self.cancels = 0
        self.active: str | None = None
        self.fail_sends = 0

    @property
    def server_interrupts_response(self) -> bool:
        return False

    async def connect(self, options: ConnectOptions) -> None:
        del options
        self._set_status("connecting")
        self._set_status("connected")
        self.received += self.held
        self.held.clear()
        self.waker()

    async def close(self) -> None:
        if self.status != "disconnected":
            self._set_status("disconnecting")
            self._set_status("disconnected")
        self.waker()

    async def send_audio(self, audio: bytes, *, commit: bool = False) -> None:
        del commit
        if self.status == "connecting":
            self.held += audio
        elif self.status == "connected":
            if self.send_gate is not None:
                await self.send_gate.wait()
            if self.fail_sends > 0:
                self.fail_sends -= 1
                raise ConnectionResetError("memory model: send failed")
            self.received += audio
        else:
            raise NotConnectedError("send_audio(): not connected")
        self.waker()

    async def send_event(self, event: Mapping[str, Any]) -> None:
        del event

    async def send_message(
        self, message: str | UserMessageItem, other_event_data: Mapping[str, Any] | None = None
    ) -> None:
        del message, other_event_data

    async def send_function_call_output(
        self, tool_call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> None:
        del tool_call, output, start_response

    async def interrupt(self) -> None:
        pass

    async def reset_history(self, old: Sequence[RealtimeItem], new: Sequence[RealtimeItem]) -> None:
        del old, new

    async def update_session_config(self, config: SessionConfig) -> None:
        del config

    async def cancel_response(self) -> bool:
        self.cancels += 1
        return self.active is not None

    async def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        self.truncations.append((item_id, content_index, audio_end_ms))
        self.waker()

    # the server's side (the test)

    def respond(self, response_id: str) -> None:
        self.active = response_id
        self._emit(TurnStartedEvent(response_id=response_id))

    def speak(self, response_id: str | None, item_id: str | None, data: bytes) -> None:
        self._emit(AudioEvent(data=data, response_id=response_id, item_id=item_id))

    def audio_done(self, response_id: str, item_id: str) -> None:
        self._emit(AudioDoneEvent(response_id=response_id, item_id=item_id))

    def finish(self, response_id: str) -> None:
        if self.active == response_id:
            self.active = None
        self._emit(TurnDoneEvent(response_id=response_id, status="completed"))

    def speech_started(self) -> None:
        self._emit(SpeechStartedEvent(item_id="user", audio_start_ms=0))

    def speech_stopped(self) -> None:
        self._emit(SpeechStoppedEvent(item_id="user", audio_end_ms=0))

    def bounce(self) -> None:
        """The connection drops and comes back (a transport with a reconnect policy)."""
        self._set_status("connecting")
        self._set_status("connected")
        self._emit(ReconnectedEvent(attempt=1, state_restored=True))

    def drop(self) -> None:
        """The connection closes under the transport (no reconnect)."""
        self._set_status("disconnected")


# --- a bridged call ----------------------------------------------------------------------------

CHANNELS = (
    "audio",
    "audio_done",
    "audio_interrupted",
    "turn_started",
    "turn_done",
    "speech_started",
    "speech_stopped",
    "connection_change",
    "reconnected",
    "error",
    "call_start",
    "call_stop",
    "mark",
    "dtmf",
)


class BridgedCall:
    """One bridge with its edge, every event it emitted, and its ``run`` task."""

    def __init__(self, edge: MemoryEdge, bridge: CallBridge, waker: Waker) -> None:
        self.edge = edge
        self.bridge = bridge
        self.waker = waker
        self.events: list[tuple[str, Any]] = []
        self.task: asyncio.Task[None] | None = None
        for channel in CHANNELS:
            bridge.on(channel, self._keeper(channel))

    def _keeper(self, channel: str) -> Callable[[Any], None]:
        def keep(event: Any) -> None:
            self.events.append((channel, event))
            self.waker()

        return keep

    def start(self, options: ConnectOptions | None = None) -> None:
        self.task = asyncio.get_running_loop().create_task(self.bridge.run(options))
        self.task.add_done_callback(self.waker)

    def of(self, channel: str) -> list[Any]:
        return [event for name, event in self.events if name == channel]

    def errors(self, code: str | None = None) -> list[ErrorEvent]:
        return [e for e in self.of("error") if code is None or e.code == code]

    @property
    def stats(self) -> CallBridgeStats:
        return self.bridge.stats

    @property
    def ended(self) -> bool:
        return self.task is not None and self.task.done()

    async def until(self, predicate: Callable[[], bool], what: str = "condition") -> None:
        await self.waker.until(predicate, what)

    async def finished(self) -> None:
        """Wait for ``run()`` to return; re-raise what it raised."""
        assert self.task is not None
        await self.until(lambda: self.ended, "the call to end")
        self.task.result()


def assert_balanced(stats: CallBridgeStats) -> None:
    """Every byte either way was delivered, is pending, or was counted as dropped."""
    assert stats.caller_unaccounted_bytes == 0, stats
    assert stats.model_unaccounted_bytes == 0, stats


def deltas_of(record: SessionRecord) -> bytes:
    """Every byte of model audio a fake server session sent, in order."""
    return b"".join(
        base64.b64decode(e["delta"]) for e in record.server_events_of("response.output_audio.delta")
    )


def appended_of(record: SessionRecord) -> bytes:
    """Every byte of input audio a fake server session received, in order."""
    return b"".join(
        base64.b64decode(e["audio"]) for e in record.client_events_of("input_audio_buffer.append")
    )


class Loopback:
    """Fake model servers and bridges of in-memory edges to the real OpenAI transport."""

    def __init__(self) -> None:
        self.servers: list[FakeRealtimeServer] = []
        self.calls: list[BridgedCall] = []

    async def server(self, **options: Any) -> FakeRealtimeServer:
        options.setdefault("pace", 0)
        options.setdefault("api_key", API_KEY)
        server = FakeRealtimeServer(**options)
        await server.start()
        self.servers.append(server)
        return server

    def call(
        self,
        server: FakeRealtimeServer,
        *,
        model_options: Mapping[str, Any] | None = None,
        edge_options: Mapping[str, Any] | None = None,
        **bridge_options: Any,
    ) -> BridgedCall:
        """Build and start a call (``run`` in a task; the edge reports the call's start)."""
        waker = Waker()
        edge = MemoryEdge(waker, **dict(edge_options or {}))
        options: dict[str, Any] = {
            "url": server.url,
            "api_key": API_KEY,
            "plugin_observers": False,
            **dict(model_options or {}),
        }
        model = OpenAIRealtimeWebSocket(**options)
        bridge_options.setdefault("plugin_observers", False)
        bridge = CallBridge(edge, model, **bridge_options)
        call = BridgedCall(edge, bridge, waker)
        self.calls.append(call)
        call.start(ConnectOptions())
        edge.start_call()
        return call

    async def aclose(self) -> None:
        for call in self.calls:
            await call.bridge.close()
            if call.task is not None:
                await asyncio.wait_for(asyncio.gather(call.task, return_exceptions=True), GUARD)
        for server in self.servers:
            await server.close()


@pytest.fixture
async def loopback(no_task_leaks: None) -> AsyncIterator[Loopback]:
    """Start fake servers and bridged calls; close them all after the test."""
    rig = Loopback()
    try:
        yield rig
    finally:
        await rig.aclose()


# --- the Twilio bridge server ------------------------------------------------------------------


class TwilioServerEnv:
    """The real ``create_app`` server on loopback, its calls' bridges, and a fake model."""

    def __init__(
        self, fake: FakeRealtimeServer, app: web.Application, base: str, *, keep: bool = True
    ) -> None:
        self.fake = fake
        self.app = app
        self.base = base
        self.ws_url = base.replace("http://", "ws://") + "/media-stream"
        self.keep = keep
        self.bridges: list[CallBridge] = []
        self.refs: list[weakref.ref[Any]] = []  # each call's bridge, edge and model
        self.events: dict[int, list[tuple[str, Any]]] = {}
        self.waker = Waker()

    @property
    def server(self) -> BridgeServer:
        return self.app[APP_KEY]

    def on_call(self, bridge: CallBridge) -> None:
        self.refs += [weakref.ref(bridge), weakref.ref(bridge.edge), weakref.ref(bridge.model)]
        if not self.keep:
            # Leak checks: the test must hold no reference to the call, or events about it.
            return
        index = len(self.bridges)
        self.bridges.append(bridge)
        log: list[tuple[str, Any]] = []
        self.events[index] = log
        for channel in ("error", "call_start", "call_stop", "turn_done", "reconnected"):

            def keep(event: Any, channel: str = channel) -> None:
                log.append((channel, event))
                self.waker()

            bridge.on(channel, keep)
        self.waker()

    def errors(self, index: int, code: str | None = None) -> list[ErrorEvent]:
        return [
            e
            for name, e in self.events.get(index, [])
            if name == "error" and code in (None, e.code)
        ]

    async def healthz(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.base + "/healthz") as response,
        ):
            assert response.status == 200
            body: dict[str, Any] = await response.json()
            return body


@contextlib.asynccontextmanager
async def twilio_server(
    *, fake: Mapping[str, Any] | None = None, keep: bool = True, **app_options: Any
) -> AsyncIterator[TwilioServerEnv]:
    """A fake model and the Twilio bridge server in front of it, both on 127.0.0.1."""
    fake_options: dict[str, Any] = {"pace": 0, **dict(fake or {})}
    async with FakeRealtimeServer(**fake_options) as fake_server:
        holder: list[TwilioServerEnv] = []
        user_hook = app_options.pop("on_call", None)

        def on_call(bridge: CallBridge) -> None:
            holder[0].on_call(bridge)
            if user_hook is not None:
                user_hook(bridge)

        options: dict[str, Any] = {
            "realtime_url": fake_server.url,
            "api_key": API_KEY,
            "insecure_skip_signature": True,
            **app_options,
            "on_call": on_call,
            "bridge_options": {"plugin_observers": False, **app_options.get("bridge_options", {})},
            "model_options": {"plugin_observers": False, **app_options.get("model_options", {})},
        }
        app = create_app(**options)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            env = TwilioServerEnv(fake_server, app, f"http://{host}:{port}", keep=keep)
            holder.append(env)
            yield env
        finally:
            await runner.cleanup()


@pytest.fixture
def twilio_env() -> Callable[..., contextlib.AbstractAsyncContextManager[TwilioServerEnv]]:
    """``async with twilio_env(fake={...}, **create_app_options) as env``."""
    return twilio_server


class Kit:
    """Helpers and constants for the test modules (the ``kit`` fixture)."""

    GUARD = GUARD
    API_KEY = API_KEY
    FAST_RECONNECT = FAST_RECONNECT
    env_int = staticmethod(env_int)
    fds = staticmethod(count_fds)
    sockets = staticmethod(count_sockets)
    rss = staticmethod(rss_bytes)
    settle = staticmethod(settle)
    alive_tasks = staticmethod(alive_tasks)
    assert_balanced = staticmethod(assert_balanced)
    deltas_of = staticmethod(deltas_of)
    appended_of = staticmethod(appended_of)
    Waker = Waker
    MemoryEdge = MemoryEdge
    MemoryModel = MemoryModel
    BridgedCall = BridgedCall


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    """The helpers and constants of this suite."""
    return Kit
