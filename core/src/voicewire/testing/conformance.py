"""Conformance checks for plugin authors: plain async functions over a factory.

Each check drives a freshly made object (a model transport, a telephony edge) through real
connections over loopback, the way voicewire will use it, and raises :class:`ConformanceError`
naming the first thing that is wrong. They depend on no test runner: call them from pytest,
unittest or a script::

    from voicewire.testing import FakeRealtimeServer
    from voicewire.testing.conformance import check_model_transport, check_telephony_edge

    async with FakeRealtimeServer() as server:
        await check_model_transport(MyTransport, fake_server=server)
    await check_telephony_edge(MyEdge, MyDialect)

* :func:`check_model_transport`: life cycle and ``connection_change`` sequence, audio both ways,
  interruption and truncation, refusals and garbage reported as ``error`` events, a dropped
  connection reported, nothing left running.
* :func:`check_telephony_edge`: the edge against the provider's side played by
  :class:`~voicewire.testing.telephony.SimulatedCaller` with the provider's dialect.
* :func:`check_bridge_with_edge`: a whole call, edge + :class:`~voicewire.bridge.CallBridge` +
  model transport + :class:`~voicewire.testing.FakeRealtimeServer`: one turn and one barge-in.
* :func:`check_entry_point`: the installed distribution's entry point loads and registers.
* :func:`check_serve_runner`: the plugin's ``voicewire serve`` runner serves a call and, when
  stopped, lets it finish.

Timeouts are hang guards, never timing assertions. Needs ``aiohttp`` and ``websockets``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import itertools
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence, Set
from importlib.metadata import entry_points
from typing import Any, Final, TypeVar, cast

import aiohttp
import attrs
from aiohttp import web

from voicewire.audio.formats import PCM16_24K, AudioFormat
from voicewire.bridge.call import CallBridge
from voicewire.bridge.edge import (
    CallerAudio,
    CallStarted,
    CallStopped,
    Dtmf,
    EdgeError,
    EdgeEvent,
    PlaybackAcknowledged,
    TelephonyEdge,
)
from voicewire.bridge.model import BridgeableModel
from voicewire.bridge.playback import DEFAULT_HEARD_MARGIN_MS
from voicewire.cli.serve import ServeSettings, find_serve_runner
from voicewire.errors import UnknownTransportError, VoicewireError
from voicewire.events import (
    AudioEvent,
    AudioInterruptedEvent,
    ConnectionChangeEvent,
    ErrorEvent,
    MarkEvent,
    TurnDoneEvent,
)
from voicewire.plugins import ENTRY_POINT_GROUP, PluginManager
from voicewire.registry import Registry, TransportKind, TransportSpec
from voicewire.testing.fake_realtime import (
    CloseMidResponse,
    FakeRealtimeServer,
    SendGarbage,
    SessionRecord,
    TruncationRecord,
    speech_like,
)
from voicewire.testing.telephony import CallerDialect, SimulatedCaller
from voicewire.transport import STATUS_TRANSITIONS, ConnectOptions, RealtimeTransportLayer

__all__ = [
    "DEFAULT_MALFORMED_FRAMES",
    "ConformanceError",
    "EdgeFactory",
    "ModelFactory",
    "check_bridge_with_edge",
    "check_entry_point",
    "check_model_transport",
    "check_serve_runner",
    "check_telephony_edge",
    "tasks_left_running",
]

ModelFactory = Callable[[], RealtimeTransportLayer]
"""Builds a fresh, unconnected model transport (a transport class is a fine factory)."""

EdgeFactory = Callable[[web.WebSocketResponse], "TelephonyEdge | Awaitable[TelephonyEdge]"]
"""Builds a telephony edge on an accepted (prepared) aiohttp WebSocket; may be a coroutine."""

DEFAULT_MALFORMED_FRAMES: Final[tuple[str | bytes, ...]] = (
    "{not json",
    "[]",
    b"\x00\xff\x00\xff binary",
)
"""Frames no JSON media-stream dialect accepts; pass your own for other dialects."""

_API_KEY: Final = "sk-voicewire-conformance"
_FRAME_MS: Final = 20

_T = TypeVar("_T")


class ConformanceError(VoicewireError, AssertionError):
    """A conformance check failed.

    An ``AssertionError`` too, so test runners report it as a failure, not an error.

    Attributes:
        check: The check that failed (``"check_telephony_edge"``, ...).
        step: What it was checking (``"caller audio"``, ``"close"``, ...).
        detail: What was wrong.
    """

    def __init__(self, check: str, step: str, detail: str) -> None:
        super().__init__(f"{check} [{step}]: {detail}")
        self.check = check
        self.step = step
        self.detail = detail


# -------------------------------------------------------------------------------------------
# shared parts
# -------------------------------------------------------------------------------------------


class _Pulse:
    """Wakes waiters whenever something a check watches changes."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def __call__(self, *_: object) -> None:
        self._event.set()

    async def until(
        self, predicate: Callable[[], bool], timeout: float, *, every: float | None = None
    ) -> bool:
        """Whether ``predicate()`` came true within ``timeout`` seconds.

        It is re-checked at every pulse, and also every ``every`` seconds for conditions that
        change with time alone.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._event.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._event.wait(), remaining if every is None else min(every, remaining)
                )
        return True


class _Check:
    """The name of a running check, its hang guard and how it fails."""

    def __init__(self, name: str, timeout: float, leak_grace: float) -> None:
        if timeout <= 0 or leak_grace < 0:
            raise ValueError("timeout must be > 0 and leak_grace >= 0")
        self.name = name
        self.timeout = timeout
        self.leak_grace = leak_grace

    def error(self, step: str, detail: str) -> ConformanceError:
        return ConformanceError(self.name, step, detail)

    async def until(
        self,
        pulse: _Pulse,
        predicate: Callable[[], bool],
        step: str,
        detail: str,
        *,
        every: float | None = None,
    ) -> None:
        if not await pulse.until(predicate, self.timeout, every=every):
            raise self.error(step, f"{detail} (waited {self.timeout:g} s)")

    async def bounded(self, awaitable: Awaitable[_T], step: str, what: str) -> _T:
        """Await something of the object under test, turning a hang or an exception into a failure."""
        try:
            return await asyncio.wait_for(awaitable, self.timeout)
        except asyncio.TimeoutError:
            raise self.error(step, f"{what} did not finish within {self.timeout:g} s") from None
        except ConformanceError:
            raise
        except Exception as exc:
            raise self.error(step, f"{what} raised {type(exc).__name__}: {exc}") from exc

    async def kit(self, awaitable: Awaitable[_T], step: str, what: str) -> _T:
        """Await a part of the kit (server, caller) whose timeout says what never happened."""
        try:
            return await awaitable
        except TimeoutError as exc:
            raise self.error(step, f"{what}: {exc}") from None

    @contextlib.asynccontextmanager
    async def no_leaks(self, step: str) -> AsyncIterator[None]:
        """Fail ``step`` if it leaves a task running once everything in it is closed."""
        before = set(asyncio.all_tasks())
        yield
        leaked = await tasks_left_running(before, grace=self.leak_grace)
        if leaked:
            names = sorted(_describe_task(task) for task in leaked)
            for task in leaked:
                task.cancel()
            await asyncio.gather(*leaked, return_exceptions=True)
            raise self.error(step, f"tasks left running after everything was closed: {names}")


async def tasks_left_running(
    before: Set[asyncio.Task[Any]], *, grace: float = 1.0
) -> list[asyncio.Task[Any]]:
    """The tasks started since ``before`` that are still running after ``grace`` seconds.

    Tasks that are finishing (a server's connection handler after its socket closed) get up to
    ``grace`` seconds; the wait ends as soon as none is left, so a clean test loses no time.

    Args:
        before: ``asyncio.all_tasks()`` taken when the test or step began.
        grace: Seconds the stragglers get to end; a hang guard, not a timing assertion.

    Returns:
        The tasks still running, which the caller should report and cancel.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    current = asyncio.current_task()
    while True:
        # A few loop turns first: most tasks that are ending need only those.
        for _ in range(3):
            await asyncio.sleep(0)
        fresh = {
            task
            for task in asyncio.all_tasks()
            if task not in before and task is not current and not task.done()
        }
        remaining = deadline - loop.time()
        if not fresh or remaining <= 0:
            return sorted(fresh, key=_describe_task)
        await asyncio.wait(fresh, timeout=remaining)


def _describe_task(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    where = getattr(coro, "__qualname__", None) or type(coro).__name__
    return f"{task.get_name()} ({where})"


async def _maybe_await(value: _T | Awaitable[_T]) -> _T:
    if inspect.isawaitable(value):
        return await value
    return value


def _first_difference(expected: bytes, actual: bytes) -> str:
    for index, (a, b) in enumerate(zip(expected, actual, strict=False)):
        if a != b:
            return f"first difference at byte {index} of {len(expected)}"
    return f"{len(actual)} bytes instead of {len(expected)}"


def _pattern(nbytes: int, seed: int) -> bytes:
    # Every byte value, in an order that differs per seed, so a dropped, doubled or swapped byte
    # cannot go unnoticed (any byte is a valid G.711 sample; PCM callers use whole frames).
    return bytes((index * 7 + seed) % 256 for index in range(nbytes))


def _frames(fmt: AudioFormat, ms: int) -> int:
    """Bytes of ``ms`` milliseconds in whole 20 ms frames of ``fmt``."""
    frame = fmt.nbytes_for_ms(_FRAME_MS)
    return frame * max(1, ms // _FRAME_MS)


def _options_for(options: ConnectOptions | None, url: str) -> ConnectOptions:
    if options is None:
        return ConnectOptions(url=url, api_key=_API_KEY)
    return attrs.evolve(options, url=url)


def _appended(record: SessionRecord) -> bytes:
    return b"".join(
        base64.b64decode(str(event.get("audio", "")))
        for event in record.client_events_of("input_audio_buffer.append")
    )


def _deltas(record: SessionRecord) -> bytes:
    return b"".join(
        base64.b64decode(str(event.get("delta", "")))
        for event in record.server_events_of("response.output_audio.delta")
    )


def _last_truncation(record: SessionRecord, item_id: str) -> TruncationRecord:
    # Called once the record is known to hold one; a later one for the item is what counts.
    return [r for r in record.truncations if r.item_id == item_id][-1]


# -------------------------------------------------------------------------------------------
# model transports
# -------------------------------------------------------------------------------------------


class _ModelWatch:
    """Everything a model transport emits on the channels the check cares about."""

    CHANNELS: Final = ("connection_change", "audio", "audio_interrupted", "turn_done", "error")

    def __init__(self, transport: RealtimeTransportLayer) -> None:
        self.transport = transport
        self.pulse = _Pulse()
        self.events: list[object] = []
        # (status announced by the event, status property when it was emitted)
        self.statuses: list[tuple[str, str]] = []
        for channel in self.CHANNELS:
            transport.on(channel, self._keep)

    def _keep(self, event: object) -> None:
        self.events.append(event)
        if isinstance(event, ConnectionChangeEvent):
            self.statuses.append((event.status, self.transport.status))
        self.pulse()

    def of(self, kind: type[_T]) -> list[_T]:
        return [event for event in self.events if isinstance(event, kind)]

    def audio_bytes(self, item_id: str | None = None) -> bytes:
        return b"".join(
            event.data
            for event in self.of(AudioEvent)
            if item_id is None or event.item_id == item_id
        )

    def detach(self) -> None:
        for channel in self.CHANNELS:
            self.transport.off(channel, self._keep)


def _check_statuses(ck: _Check, step: str, statuses: Sequence[tuple[str, str]], end: str) -> None:
    transitions = cast(Mapping[str, frozenset[str]], STATUS_TRANSITIONS)
    previous = "disconnected"
    for announced, actual in statuses:
        if announced != actual:
            raise ck.error(
                step,
                f"connection_change announced {announced!r} while status was {actual!r}: "
                "emit it after the status changed",
            )
        if announced not in transitions.get(previous, frozenset()):
            path = " -> ".join(["disconnected", *(s for s, _ in statuses)])
            raise ck.error(step, f"status went {previous!r} -> {announced!r} (path: {path})")
        previous = announced
    if previous != end:
        path = " -> ".join(["disconnected", *(s for s, _ in statuses)])
        raise ck.error(
            step, f"connection_change sequence ends in {previous!r}, not {end!r} ({path})"
        )


def _make_model(ck: _Check, factory: ModelFactory, step: str) -> RealtimeTransportLayer:
    try:
        transport = factory()
    except Exception as exc:
        raise ck.error(step, f"the factory raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(transport, RealtimeTransportLayer):
        raise ck.error(
            step, f"the factory returned a {type(transport).__name__}, not a RealtimeTransportLayer"
        )
    return transport


async def _connect(
    ck: _Check, transport: RealtimeTransportLayer, options: ConnectOptions, step: str
) -> None:
    await ck.bounded(transport.connect(options), step, "connect()")
    if transport.status != "connected":
        raise ck.error(step, f"status is {transport.status!r} after connect() returned")


async def _close_model(
    ck: _Check, transport: RealtimeTransportLayer, server: FakeRealtimeServer, index: int, step: str
) -> None:
    await ck.bounded(transport.close(), step, "close()")
    if transport.status != "disconnected":
        raise ck.error(step, f"status is {transport.status!r} after close() returned")
    await ck.kit(
        server.wait_closed(index, timeout=ck.timeout),
        step,
        "close() did not close the connection: the server still sees it open",
    )


async def _quiet_close(transport: RealtimeTransportLayer) -> None:
    # Cleanup after a failure: the failure is what matters, not a second problem.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(transport.close(), 5.0)


@contextlib.asynccontextmanager
async def _watched_model(
    ck: _Check, factory: ModelFactory, step: str
) -> AsyncIterator[tuple[RealtimeTransportLayer, _ModelWatch]]:
    """A fresh transport and its watch; detached and quietly closed on the way out."""
    transport = _make_model(ck, factory, step)
    watch = _ModelWatch(transport)
    try:
        yield transport, watch
    finally:
        watch.detach()
        await _quiet_close(transport)


@contextlib.asynccontextmanager
async def _model_session(
    ck: _Check,
    factory: ModelFactory,
    server: FakeRealtimeServer,
    options: ConnectOptions,
    step: str,
) -> AsyncIterator[tuple[RealtimeTransportLayer, _ModelWatch, int]]:
    """A fresh transport connected to ``server``, its watch and its session's index there."""
    async with _watched_model(ck, factory, step) as (transport, watch):
        index = len(server.sessions)
        await _connect(ck, transport, options, step)
        yield transport, watch, index


async def check_model_transport(
    factory: ModelFactory,
    *,
    fake_server: FakeRealtimeServer,
    connect_options: ConnectOptions | None = None,
    audio_format: AudioFormat | None = None,
    tolerance_ms: float = 20.0,
    timeout: float = 10.0,
    leak_grace: float = 2.0,
) -> None:
    """Check a model transport that speaks the OpenAI Realtime protocol against the fake server.

    Every step uses a fresh transport from ``factory`` and connects it with
    ``connect_options`` pointed at ``fake_server.url``. The steps:

    1. **life cycle**: a new transport is ``disconnected``; ``close()`` before ``connect()`` does
       nothing; ``connect()`` leaves it ``connected``; ``close()`` leaves it ``disconnected``,
       closes the server's side and ends ``events()`` iterators; a second ``close()`` emits
       nothing; the transport connects again afterwards. Every ``connection_change`` follows
       :data:`~voicewire.transport.STATUS_TRANSITIONS` and is emitted after ``status`` changed.
    2. **audio**: speech sent with ``send_audio`` reaches the server byte-exact, and the server's
       echo comes back in ``audio`` events byte-exact, followed by ``turn_done`` (within
       ``tolerance_ms`` of duration when ``audio_format`` differs from the session's format,
       i.e. the transport transcodes). A :class:`~voicewire.bridge.BridgeableModel` must tag its
       audio with ``response_id`` and ``item_id``.
    3. **interruption**: ``interrupt()`` during an answer cancels it or truncates it at a point
       the server accepts and no later than the audio received. A ``BridgeableModel`` must also
       truncate exactly where it is told (``truncate``) and answer ``cancel_response()`` with
       ``False`` when no response is active.
    4. **bad input**: a client event the server refuses, and malformed server frames (invalid
       JSON, a binary frame), become ``error`` events; nothing raises, the session goes on.
    5. **drop**: a connection the server closes mid-answer is reported (an ``error`` event and a
       status change); ``close()`` afterwards is quiet.

    After each step, no task the step started may be left running.

    Args:
        factory: Builds a fresh, unconnected transport.
        fake_server: A started :class:`~voicewire.testing.FakeRealtimeServer` in echo mode
            (any pace). Steps 4 and 5 also start a private server of their own.
        connect_options: Options for ``connect``; the URL is replaced by the fake server's. By
            default a dummy API key and the server's session defaults (PCM16 24 kHz).
        audio_format: The format the application exchanges with the transport, when the
            transport converts it to and from the session's format.
        tolerance_ms: How far durations may differ when the transport transcodes.
        timeout: Hang guard of every wait, in seconds.
        leak_grace: Seconds a finishing task gets before it counts as leaked.

    Raises:
        ConformanceError: The first thing found wrong.
    """
    ck = _Check("check_model_transport", timeout, leak_grace)
    options = _options_for(connect_options, fake_server.url)
    config = options.initial_session_config
    session_in = (config.input_audio_format if config else None) or PCM16_24K
    session_out = (config.output_audio_format if config else None) or PCM16_24K
    formats = (audio_format or session_in, audio_format or session_out, session_in, session_out)
    async with ck.no_leaks("life cycle"):
        await _model_life_cycle(ck, factory, fake_server, options)
    async with ck.no_leaks("audio"):
        await _model_audio(ck, factory, fake_server, options, formats, tolerance_ms)
    async with ck.no_leaks("interruption"):
        await _model_interruption(ck, factory, fake_server, options)
    private = FakeRealtimeServer(
        pace=0,
        faults=[
            SendGarbage(after_events=1, kind="invalid_json", sessions={0}),
            SendGarbage(after_events=1, kind="binary", sessions={1}),
            CloseMidResponse(after_audio_deltas=2, sessions={2}),
        ],
    )
    await private.start()
    try:
        async with ck.no_leaks("bad input"):
            await _model_bad_input(ck, factory, fake_server, private, options)
        async with ck.no_leaks("drop"):
            await _model_drop(ck, factory, private, options)
    finally:
        await private.close()


async def _model_life_cycle(
    ck: _Check, factory: ModelFactory, server: FakeRealtimeServer, options: ConnectOptions
) -> None:
    step = "life cycle"
    drained: asyncio.Task[None] | None = None
    try:
        async with _watched_model(ck, factory, step) as (transport, watch):
            if transport.status != "disconnected":
                raise ck.error(step, f"a new transport is {transport.status!r}, not 'disconnected'")
            await ck.bounded(transport.close(), step, "close() before connect()")
            if watch.statuses or transport.status != "disconnected":
                raise ck.error(step, "close() before connect() changed the status")

            stream = transport.events("connection_change")

            async def drain() -> None:
                async for _ in stream:
                    pass

            drained = asyncio.get_running_loop().create_task(drain(), name="conformance-drain")
            index = len(server.sessions)
            await _connect(ck, transport, options, step)
            _check_statuses(ck, step, watch.statuses, "connected")
            await ck.kit(
                server.wait_for_session(index, timeout=ck.timeout), step, "connect() never reached"
            )
            await _close_model(ck, transport, server, index, step)
            _check_statuses(ck, step, watch.statuses, "disconnected")
            done, _ = await asyncio.wait({drained}, timeout=ck.timeout)
            if not done:
                raise ck.error(step, "an events() iterator did not end after close()")
            seen = len(watch.statuses)
            await ck.bounded(transport.close(), step, "a second close()")
            if len(watch.statuses) != seen:
                raise ck.error(step, "a second close() emitted connection_change again")

            again = len(server.sessions)
            first_cycle = len(watch.statuses)
            await _connect(ck, transport, options, "connect after close")
            await _close_model(ck, transport, server, again, "connect after close")
            _check_statuses(ck, "connect after close", watch.statuses[first_cycle:], "disconnected")
    finally:
        if drained is not None and not drained.done():
            drained.cancel()
            await asyncio.gather(drained, return_exceptions=True)


async def _model_audio(
    ck: _Check,
    factory: ModelFactory,
    server: FakeRealtimeServer,
    options: ConnectOptions,
    formats: tuple[AudioFormat, AudioFormat, AudioFormat, AudioFormat],
    tolerance_ms: float,
) -> None:
    step = "audio"
    app_in, app_out, session_in, session_out = formats
    transcoding = (app_in, app_out) != (session_in, session_out)
    async with _model_session(ck, factory, server, options, step) as (transport, watch, index):
        sent = speech_like(600, app_in, seed="voicewire-conformance") + app_in.silence(1000)
        chunk = app_in.nbytes_for_ms(100)
        for offset in range(0, len(sent), chunk):
            await ck.bounded(
                transport.send_audio(sent[offset : offset + chunk]), step, "send_audio()"
            )
        await ck.kit(
            server.wait_for_server_event("response.done", session=index, timeout=ck.timeout),
            step,
            "the server never answered the speech sent with send_audio()",
        )
        await ck.until(
            watch.pulse,
            lambda: bool(watch.of(TurnDoneEvent)),
            step,
            "no turn_done event after the server's response.done",
        )
        record = server.session(index)
        # Up: what the server was given.
        if transcoding:
            await ck.kit(
                server.wait_for(
                    lambda: (
                        session_in.duration_ms(len(_appended(server.session(index))))
                        >= app_in.duration_ms(len(sent)) - tolerance_ms
                    ),
                    timeout=ck.timeout,
                ),
                step,
                "the audio sent never fully reached the server",
            )
        else:
            await ck.kit(
                server.wait_for(
                    lambda: len(_appended(server.session(index))) >= len(sent), timeout=ck.timeout
                ),
                step,
                "the audio sent never fully reached the server",
            )
            appended = _appended(server.session(index))
            if appended != sent:
                raise ck.error(
                    step,
                    "the server received other audio than was sent with send_audio(): "
                    + _first_difference(sent, appended),
                )
        # Down: what the application was given.
        record = server.session(index)
        expected = _deltas(record)
        if not expected:
            raise ck.error(step, "the server's answer had no audio (is the server in echo mode?)")
        received = watch.audio_bytes()
        if transcoding:
            gap = abs(app_out.duration_ms(len(received)) - session_out.duration_ms(len(expected)))
            if gap > tolerance_ms:
                raise ck.error(
                    step, f"audio events hold {gap:.1f} ms more or less than the server sent"
                )
        elif received != expected:
            raise ck.error(
                step,
                "audio events do not carry exactly the server's audio: "
                + _first_difference(expected, received),
            )
        if isinstance(transport, BridgeableModel):
            untagged = [e for e in watch.of(AudioEvent) if not e.item_id or not e.response_id]
            if untagged:
                raise ck.error(
                    step,
                    f"{len(untagged)} audio events lack item_id or response_id (a bridge "
                    "cannot truncate them)",
                )
        await _close_model(ck, transport, server, index, step)


async def _model_interruption(
    ck: _Check, factory: ModelFactory, server: FakeRealtimeServer, options: ConnectOptions
) -> None:
    step = "interruption"
    async with _model_session(ck, factory, server, options, step) as (transport, watch, index):
        await ck.bounded(
            transport.send_message("Tell me a long story about the sea, the ships and the wind."),
            step,
            "send_message()",
        )
        await ck.until(
            watch.pulse, lambda: bool(watch.of(AudioEvent)), step, "no audio for a text message"
        )
        await ck.bounded(transport.interrupt(), step, "interrupt() during an answer")
        interrupted = watch.of(AudioInterruptedEvent)
        truncations = [t for event in interrupted for t in event.truncations]
        if truncations:
            for truncation in truncations:

                def arrived(item_id: str = truncation.item_id) -> bool:
                    return any(r.item_id == item_id for r in server.session(index).truncations)

                await ck.kit(
                    server.wait_for(arrived, timeout=ck.timeout),
                    step,
                    f"audio_interrupted announced a truncation of {truncation.item_id} that "
                    "never reached the server",
                )
                seen = _last_truncation(server.session(index), truncation.item_id)
                if seen.audio_end_ms != truncation.audio_end_ms or not seen.accepted:
                    raise ck.error(
                        step,
                        f"truncation of {truncation.item_id}: announced {truncation.audio_end_ms}"
                        f" ms, sent {seen.audio_end_ms} ms, accepted={seen.accepted} (audio "
                        f"sent by the server: {seen.audio_sent_ms} ms)",
                    )
        else:
            await ck.kit(
                server.wait_for(
                    lambda: bool(server.session(index).client_events_of("response.cancel")),
                    timeout=ck.timeout,
                ),
                step,
                "interrupt() during an answer neither truncated it nor cancelled it",
            )
        if isinstance(transport, BridgeableModel):
            await _model_truncate(ck, transport, watch, server, index)
        errors = server.session(index).errors()
        if errors:
            raise ck.error(step, f"the server refused what the transport sent: {errors[:3]}")
        await _close_model(ck, transport, server, index, step)


async def _model_truncate(
    ck: _Check,
    transport: BridgeableModel,
    watch: _ModelWatch,
    server: FakeRealtimeServer,
    index: int,
) -> None:
    step = "truncate at the heard position"
    transport.automatic_barge_in = False
    await ck.kit(
        server.wait_for_server_event("response.done", session=index, timeout=ck.timeout),
        step,
        "the interrupted answer never ended",
    )
    first = {e.response_id for e in watch.of(AudioEvent)}
    await ck.bounded(
        transport.send_message("And now one about the mountains."), step, "send_message()"
    )

    def second() -> list[AudioEvent]:
        return [e for e in watch.of(AudioEvent) if e.response_id not in first and e.item_id]

    await ck.until(watch.pulse, lambda: bool(second()), step, "no audio for a second message")
    head = second()[0]
    assert head.item_id is not None
    output = _output_format(server.session(index))
    received_ms = output.duration_ms(len(watch.audio_bytes(head.item_id)))
    heard = max(1, int(received_ms // 2))
    await ck.bounded(transport.cancel_response(), step, "cancel_response() during an answer")
    await ck.bounded(
        transport.truncate(head.item_id, head.content_index, heard), step, "truncate()"
    )

    def recorded() -> bool:
        return any(r.item_id == head.item_id for r in server.session(index).truncations)

    await ck.kit(
        server.wait_for(recorded, timeout=ck.timeout), step, "truncate() never reached the server"
    )
    seen = _last_truncation(server.session(index), head.item_id)
    if seen.audio_end_ms != heard or not seen.accepted:
        raise ck.error(
            step,
            f"truncate({head.item_id!r}, {head.content_index}, {heard}) reached the server as "
            f"{seen.audio_end_ms} ms, accepted={seen.accepted}",
        )
    await ck.kit(
        server.wait_for_server_event("response.done", session=index, count=2, timeout=ck.timeout),
        step,
        "the second answer never ended",
    )
    await ck.until(
        watch.pulse,
        lambda: len(watch.of(TurnDoneEvent)) >= 2,
        step,
        "no turn_done for the second answer",
    )
    cancelled = await ck.bounded(
        transport.cancel_response(), step, "cancel_response() with no active response"
    )
    if cancelled:
        raise ck.error(step, "cancel_response() returned True with no response active")


def _output_format(record: SessionRecord) -> AudioFormat:
    session = record.session or {}
    try:
        return AudioFormat.from_wire(session["audio"]["output"]["format"])
    except (KeyError, TypeError, VoicewireError):
        return PCM16_24K


async def _model_bad_input(
    ck: _Check,
    factory: ModelFactory,
    server: FakeRealtimeServer,
    private: FakeRealtimeServer,
    options: ConnectOptions,
) -> None:
    step = "bad input"
    async with _model_session(ck, factory, server, options, step) as (transport, watch, index):
        # Well formed, but refused: nothing is being answered.
        await ck.bounded(
            transport.send_event({"type": "response.cancel"}),
            step,
            "send_event() of an event the server refuses (refusals must be error events)",
        )
        await ck.until(
            watch.pulse,
            lambda: bool(watch.of(ErrorEvent)),
            step,
            "the server's error event was not reported as an 'error' event",
        )
        if transport.status != "connected":
            raise ck.error(step, f"a refused event left the transport {transport.status!r}")
        await _close_model(ck, transport, server, index, step)
    for kind in ("invalid_json", "binary"):
        await _model_garbage(ck, factory, private, options, kind)


async def _model_garbage(
    ck: _Check,
    factory: ModelFactory,
    private: FakeRealtimeServer,
    options: ConnectOptions,
    kind: str,
) -> None:
    step = f"bad input ({kind} server frame)"
    options = _options_for(options, private.url)
    async with _model_session(ck, factory, private, options, step) as (transport, watch, index):
        await ck.kit(
            private.wait_for(
                lambda: bool(private.session(index).faults_triggered), timeout=ck.timeout
            ),
            step,
            "the fake server never sent its garbage frame",
        )
        await ck.until(
            watch.pulse,
            lambda: bool(watch.of(ErrorEvent)),
            step,
            f"a {kind} frame from the server was not reported as an 'error' event",
        )
        if transport.status != "connected":
            raise ck.error(step, f"one bad frame left the transport {transport.status!r}")
        await _close_model(ck, transport, private, index, step)


async def _model_drop(
    ck: _Check, factory: ModelFactory, private: FakeRealtimeServer, options: ConnectOptions
) -> None:
    step = "drop"
    options = _options_for(options, private.url)
    async with _model_session(ck, factory, private, options, step) as (transport, watch, index):
        await ck.bounded(transport.send_message("Hello there."), step, "send_message()")
        await ck.until(
            watch.pulse,
            lambda: watch.statuses[-1][0] != "connected",
            step,
            "the server closed the connection mid-answer and the status stayed 'connected'",
        )
        await ck.until(
            watch.pulse,
            lambda: bool(watch.of(ErrorEvent)),
            step,
            "a connection the server closed mid-answer was not reported as an 'error' event",
        )
        await ck.kit(
            private.wait_closed(index, timeout=ck.timeout), step, "the dropped session is open"
        )
        await ck.bounded(transport.close(), step, "close() after the server dropped")
        if transport.status != "disconnected":
            raise ck.error(step, f"status is {transport.status!r} after close()")


# -------------------------------------------------------------------------------------------
# telephony edges
# -------------------------------------------------------------------------------------------


class _SocketServer:
    """A loopback aiohttp server whose one WebSocket route hands each connection to ``serve``."""

    PATH: Final = "/voicewire-conformance/media"

    def __init__(self, serve: Callable[[web.WebSocketResponse], Awaitable[None]]) -> None:
        self._serve = serve
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get(self.PATH, self._handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"ws://{host}:{port}{self.PATH}"
        return self.url

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            await self._serve(ws)
        finally:
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close()
        return ws

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


class _EdgeReader:
    """Consumes ``edge.events()`` in a task of its own, keeping every event."""

    def __init__(self, edge: TelephonyEdge, pulse: _Pulse) -> None:
        self.edge = edge
        self.pulse = pulse
        self.events: list[EdgeEvent] = []
        self.error: BaseException | None = None
        self.finished = False
        self.task = asyncio.get_running_loop().create_task(self._run(), name="conformance-edge")

    async def _run(self) -> None:
        iterator: AsyncIterator[EdgeEvent] | None = None
        try:
            iterator = self.edge.events()
            async for event in iterator:
                self.events.append(event)
                self.pulse()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.error = exc
        finally:
            self.finished = True
            self.pulse()
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    def of(self, kind: type[_T]) -> list[_T]:
        return [event for event in self.events if isinstance(event, kind)]

    def caller_audio(self) -> bytes:
        return b"".join(event.data for event in self.of(CallerAudio))

    def acknowledged(self, token: str) -> bool:
        return any(event.token == token for event in self.of(PlaybackAcknowledged))

    async def stop(self, timeout: float) -> bool:
        """Wait for the iteration to end; cancel it after ``timeout``. Whether it ended itself."""
        if not self.task.done():
            await asyncio.wait({self.task}, timeout=timeout)
        ended = self.task.done()
        if not ended:
            self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        return ended


class _EdgeCall:
    """One simulated call against a freshly made edge: server, caller, edge and its reader."""

    def __init__(
        self,
        ck: _Check,
        edge_factory: EdgeFactory,
        dialect: CallerDialect,
        step: str,
        *,
        speed: float,
        keepalive: bool = False,
    ) -> None:
        self.ck = ck
        self.step = step
        self.pulse = _Pulse()
        self._factory = edge_factory
        self._dialect = dialect
        self._speed = speed
        self._keepalive = keepalive
        self._made: asyncio.Future[TelephonyEdge] | None = None
        self._release: asyncio.Future[None] | None = None
        self._server = _SocketServer(self._serve)
        self.caller: SimulatedCaller
        self.edge: TelephonyEdge
        self.reader: _EdgeReader

    async def _serve(self, ws: web.WebSocketResponse) -> None:
        assert self._made is not None
        assert self._release is not None
        if self._made.done():
            return  # one call per _EdgeCall; a second connection is refused by closing it
        try:
            edge = await _maybe_await(self._factory(ws))
        except Exception as exc:
            self._made.set_exception(exc)
            return
        self._made.set_result(edge)
        await self._release

    async def __aenter__(self) -> _EdgeCall:
        loop = asyncio.get_running_loop()
        self._made = loop.create_future()
        self._release = loop.create_future()
        url = await self._server.start()
        try:
            self.caller = SimulatedCaller(
                url, self._dialect, speed=self._speed, keepalive=self._keepalive, strict=False
            )
            await self.ck.bounded(self.caller.start(), self.step, "the simulated caller's connect")
            try:
                edge = await asyncio.wait_for(asyncio.shield(self._made), self.ck.timeout)
            except asyncio.TimeoutError:
                raise self.ck.error(self.step, "the edge factory was never called") from None
            except Exception as exc:
                raise self.ck.error(
                    self.step, f"the edge factory raised {type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(edge, TelephonyEdge):
                raise self.ck.error(
                    self.step,
                    f"the edge factory returned a {type(edge).__name__}, which is not a"
                    " TelephonyEdge",
                )
            self.edge = edge
            self.reader = _EdgeReader(edge, self.pulse)
        except BaseException:
            await self._teardown()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._teardown()

    async def _teardown(self) -> None:
        # The edge first, then the route (which closes the socket if the edge did not): a
        # caller closing first would wait for a close handshake nobody on the server answers.
        edge = getattr(self, "edge", None)
        if edge is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(edge.close("conformance check over"), 5.0)
        if self._release is not None and not self._release.done():
            self._release.set_result(None)
        caller = getattr(self, "caller", None)
        if caller is not None:
            with contextlib.suppress(Exception):
                await caller.close()
        reader = getattr(self, "reader", None)
        if reader is not None:
            await reader.stop(5.0)
        if self._made is not None and not self._made.done():
            self._made.cancel()
        await self._server.close()

    # -- waits ------------------------------------------------------------------------------

    async def until(self, predicate: Callable[[], bool], detail: str | Callable[[], str]) -> None:
        """Wait until ``predicate()`` holds; the reader wakes the check at every edge event."""

        def watched() -> bool:
            self.raise_if_broken()
            return predicate()

        if not await self.pulse.until(watched, self.ck.timeout):
            text = detail() if callable(detail) else detail
            raise self.ck.error(self.step, f"{text} (waited {self.ck.timeout:g} s)")

    def raise_if_broken(self) -> None:
        if self.reader.error is not None:
            error = self.reader.error
            raise self.ck.error(
                self.step,
                f"events() raised {type(error).__name__}: {error} (bad input must be yielded as"
                " EdgeError and the edge must read on)",
            )

    def violations(self) -> None:
        if self.caller.violations:
            raise self.ck.error(
                self.step,
                f"the edge sent {len(self.caller.violations)} frame(s) the dialect refuses;"
                f" first: {self.caller.violations[0]}",
            )

    async def caller_wait(self, predicate: Callable[[], bool], detail: str) -> None:
        try:
            await self.caller.wait_for(predicate, timeout=self.ck.timeout, what=detail)
        except TimeoutError as exc:
            raise self.ck.error(self.step, str(exc)) from None


async def check_telephony_edge(
    edge_factory: EdgeFactory,
    dialect_factory: Callable[[], CallerDialect],
    *,
    malformed_frames: Sequence[str | bytes] = DEFAULT_MALFORMED_FRAMES,
    dtmf: bool = True,
    speed: float = 4.0,
    timeout: float = 10.0,
    leak_grace: float = 2.0,
) -> None:
    """Check a telephony edge against the provider's side, played by the simulated caller.

    The check serves a loopback aiohttp WebSocket route, builds the edge with
    ``edge_factory(websocket)`` for each call, and dials it with
    :class:`~voicewire.testing.telephony.SimulatedCaller` speaking ``dialect_factory()``.
    Three calls:

    1. **stream**: after the dialect's opening frames the edge yields ``CallStarted`` with the
       announced format (and its capabilities report it); caller audio comes out as
       ``CallerAudio`` in order, byte-exact, timestamps never going back; a key press is a
       ``Dtmf``; ``play`` reaches the caller byte-exact and ``acknowledge_when_played`` comes
       back as ``PlaybackAcknowledged`` only once the audio queued before it was played; each
       malformed frame is an ``EdgeError`` and the call goes on; the caller's hang-up yields
       ``CallStopped`` and ends ``events()``; ``close()`` afterwards, twice, is quiet.
    2. **clear and close**: ``clear()`` during playback makes the caller drop its queue; the
       token queued before it is still acknowledged (never an ``EdgeError``), and audio and a
       token after it work; ``close()`` closes the caller's socket and ends ``events()``;
       ``play``/``acknowledge_when_played``/``clear`` after ``close`` do not raise.
    3. **drop**: a connection lost without the dialect's stop frame ends ``events()``.

    Every frame the edge sends must satisfy the dialect's strict ``decode``, and no task may be
    left running after each call. Edges without acknowledgements skip the token checks.

    Args:
        edge_factory: Builds the edge on a prepared ``aiohttp.web.WebSocketResponse``; may be
            a coroutine function. The edge must not pad or re-encode audio in this setup.
        dialect_factory: Builds one dialect object per call (they are stateful).
        malformed_frames: Frames the edge must refuse with an ``EdgeError`` each.
        dtmf: Whether the provider reports key presses.
        speed: Virtual-clock factor of the caller in call 1.
        timeout: Hang guard of every wait, in seconds.
        leak_grace: Seconds a finishing task gets before it counts as leaked.

    Raises:
        ConformanceError: The first thing found wrong.
    """
    ck = _Check("check_telephony_edge", timeout, leak_grace)
    async with ck.no_leaks("stream"):
        await _edge_stream(ck, edge_factory, dialect_factory(), malformed_frames, dtmf, speed)
    async with ck.no_leaks("clear and close"):
        await _edge_clear_and_close(ck, edge_factory, dialect_factory())
    async with ck.no_leaks("drop"):
        await _edge_drop(ck, edge_factory, dialect_factory())


async def _wait_started(call: _EdgeCall, fmt: AudioFormat) -> None:
    await call.until(
        lambda: bool(call.reader.of(CallStarted)) or call.reader.finished,
        "no CallStarted after the dialect's opening frames",
    )
    started = call.reader.of(CallStarted)
    if not started:
        raise call.ck.error(call.step, "events() ended without a CallStarted")
    before = call.reader.events[: call.reader.events.index(started[0])]
    refused = [event for event in before if isinstance(event, EdgeError)]
    if refused:
        raise call.ck.error(
            call.step, f"the dialect's opening frames were refused: {refused[0].message}"
        )
    if any(isinstance(event, CallerAudio) for event in before):
        raise call.ck.error(call.step, "CallerAudio was yielded before CallStarted")
    if started[0].audio_format != fmt:
        raise call.ck.error(
            call.step, f"CallStarted announces {started[0].audio_format}, the caller sent {fmt}"
        )
    capability = call.edge.capabilities.audio_format
    if capability != fmt:
        raise call.ck.error(
            call.step,
            f"after CallStarted the edge's capabilities say {capability}, the call is {fmt}"
            " (a bridge would convert the wrong audio)",
        )


async def _check_caller_audio(call: _EdgeCall) -> None:
    sent = call.caller.sent

    def mismatch() -> str:
        got = call.reader.caller_audio()
        return (
            f"CallerAudio is not the caller's audio in order: {len(got)} of {len(sent)} bytes"
            f" arrived, {_first_difference(sent, got)}"
        )

    await call.until(lambda: len(call.reader.caller_audio()) >= len(sent), mismatch)
    if call.reader.caller_audio() != sent:
        raise call.ck.error(call.step, mismatch())
    stamps = [e.timestamp_ms for e in call.reader.of(CallerAudio) if e.timestamp_ms is not None]
    if any(later < earlier for earlier, later in itertools.pairwise(stamps)):
        raise call.ck.error(call.step, "CallerAudio timestamps went backwards")


async def _edge_stream(
    ck: _Check,
    edge_factory: EdgeFactory,
    dialect: CallerDialect,
    malformed: Sequence[str | bytes],
    dtmf: bool,
    speed: float,
) -> None:
    fmt = dialect.audio_format
    async with _EdgeCall(ck, edge_factory, dialect, "stream", speed=speed) as call:
        await _wait_started(call, fmt)
        acks = call.edge.capabilities.acknowledgements

        call.step = "caller audio"
        await call.caller.say(_pattern(_frames(fmt, 300), seed=1))
        await _check_caller_audio(call)

        if dtmf:
            call.step = "dtmf"
            await call.caller.press("7")
            await call.until(
                lambda: any(e.digit == "7" for e in call.reader.of(Dtmf)),
                "a key press did not come out as Dtmf('7')",
            )

        call.step = "play"
        audio = _pattern(_frames(fmt, 200), seed=2)
        await ck.bounded(call.edge.play(audio), call.step, "play()")
        if acks:
            await ck.bounded(
                call.edge.acknowledge_when_played("conformance-1"),
                call.step,
                "acknowledge_when_played()",
            )
        await call.caller_wait(lambda: len(call.caller.received) >= len(audio), "audio received")
        if call.caller.received != audio:
            raise ck.error(
                call.step,
                "the caller did not receive exactly the audio played: "
                + _first_difference(audio, call.caller.received),
            )
        if acks:
            heard_at_ack: list[int] = []

            def acked() -> bool:
                if call.reader.acknowledged("conformance-1") and not heard_at_ack:
                    heard_at_ack.append(len(call.caller.heard))
                return bool(heard_at_ack)

            await call.until(acked, "acknowledge_when_played('conformance-1') never came back")
            if heard_at_ack[0] < len(audio):
                raise ck.error(
                    call.step,
                    "PlaybackAcknowledged came before the audio queued ahead of the token was"
                    f" played ({heard_at_ack[0]} of {len(audio)} bytes heard)",
                )
        call.violations()

        call.step = "malformed input"
        for number, frame in enumerate(malformed, 1):
            await _send_malformed(call, number, frame)
        if call.reader.finished:
            raise ck.error(call.step, "events() ended after malformed input; the call must go on")
        await call.caller.say(_pattern(_frames(fmt, 100), seed=3))
        await _check_caller_audio(call)

        call.step = "hang-up"
        await call.caller.hang_up()
        await call.until(lambda: call.reader.finished, "events() did not end after the hang-up")
        call.raise_if_broken()
        if not call.reader.of(CallStopped):
            raise ck.error(call.step, "the caller hung up but no CallStopped was yielded")
        await ck.bounded(call.edge.close("hung up"), call.step, "close() after the hang-up")
        await ck.bounded(call.edge.close(), call.step, "a second close()")
        call.violations()


async def _send_malformed(call: _EdgeCall, number: int, frame: str | bytes) -> None:
    errors = len(call.reader.of(EdgeError))
    await call.ck.bounded(call.caller.send_raw(frame), call.step, "sending a malformed frame")
    await call.until(
        lambda: len(call.reader.of(EdgeError)) > errors,
        f"malformed frame #{number} ({frame[:20]!r}) was not reported as an EdgeError",
    )


async def _edge_clear_and_close(
    ck: _Check, edge_factory: EdgeFactory, dialect: CallerDialect
) -> None:
    fmt = dialect.audio_format
    # Playback at a quarter of real time: the clear lands while most of the audio is queued.
    async with _EdgeCall(ck, edge_factory, dialect, "clear", speed=0.25) as call:
        await _wait_started(call, fmt)
        acks = call.edge.capabilities.acknowledgements
        long = _pattern(_frames(fmt, 1000), seed=4)
        await ck.bounded(call.edge.play(long), call.step, "play()")
        if acks:
            await ck.bounded(
                call.edge.acknowledge_when_played("conformance-cleared"),
                call.step,
                "acknowledge_when_played()",
            )
        await call.caller_wait(lambda: bool(call.caller.received), "audio received")
        await ck.bounded(call.edge.clear(), call.step, "clear()")
        await call.caller_wait(
            lambda: call.caller.counts["clears"] >= 1, "the caller told to clear"
        )
        if acks:
            await call.until(
                lambda: (
                    call.reader.acknowledged("conformance-cleared")
                    or bool(call.reader.of(EdgeError))
                ),
                "the token queued before clear() was never acknowledged",
            )
            if not call.reader.acknowledged("conformance-cleared"):
                raise ck.error(
                    call.step,
                    "the token queued before clear() was never acknowledged; the edge reported"
                    f" instead: {call.reader.of(EdgeError)[0].message}",
                )
        if len(call.caller.heard) >= len(long):
            raise ck.error(call.step, "clear() did not drop the queued audio: all of it was heard")
        short = _pattern(_frames(fmt, 100), seed=5)
        await ck.bounded(call.edge.play(short), call.step, "play() after clear()")
        if acks:
            await ck.bounded(
                call.edge.acknowledge_when_played("conformance-after"),
                call.step,
                "acknowledge_when_played() after clear()",
            )
            await call.until(
                lambda: call.reader.acknowledged("conformance-after"),
                "a token given after clear() was never acknowledged",
            )
            if not call.caller.heard.endswith(short):
                raise ck.error(call.step, "the audio played after clear() was not heard whole")
        else:
            await call.caller_wait(
                lambda: call.caller.received.endswith(short), "audio after clear() received"
            )
        refused = call.reader.of(EdgeError)
        if refused:
            raise ck.error(
                call.step,
                f"the edge reported {len(refused)} error(s) around a clear, first:"
                f" {refused[0].message} (acknowledgements of cleared tokens must be recognised)",
            )
        call.violations()

        call.step = "close"
        await ck.bounded(call.edge.close("conformance"), call.step, "close()")
        await call.caller_wait(lambda: call.caller.closed, "the caller's socket closed")
        await call.until(lambda: call.reader.finished, "events() did not end after close()")
        call.raise_if_broken()
        await ck.bounded(call.edge.close(), call.step, "a second close()")
        await ck.bounded(call.edge.play(short), call.step, "play() after close()")
        if acks:
            await ck.bounded(
                call.edge.acknowledge_when_played("late"),
                call.step,
                "acknowledge_when_played() after close()",
            )
        await ck.bounded(call.edge.clear(), call.step, "clear() after close()")


async def _edge_drop(ck: _Check, edge_factory: EdgeFactory, dialect: CallerDialect) -> None:
    async with _EdgeCall(ck, edge_factory, dialect, "drop", speed=4.0) as call:
        await _wait_started(call, dialect.audio_format)
        await call.caller.drop()
        await call.until(
            lambda: call.reader.finished,
            "events() did not end after the connection was lost without a stop frame",
        )
        call.raise_if_broken()


# -------------------------------------------------------------------------------------------
# a whole bridged call
# -------------------------------------------------------------------------------------------


class _BridgedCall:
    """The route handler of :func:`check_bridge_with_edge`: edge + model + bridge per socket."""

    def __init__(
        self,
        edge_factory: EdgeFactory,
        model_factory: Callable[[], BridgeableModel],
        options: ConnectOptions,
        model_audio_format: AudioFormat | None,
        bridge_options: Mapping[str, Any],
    ) -> None:
        self._edge_factory = edge_factory
        self._model_factory = model_factory
        self._options = options
        self._model_audio_format = model_audio_format
        self._bridge_options = dict(bridge_options)
        self.pulse = _Pulse()
        self.bridge: CallBridge | None = None
        self.acknowledgements = False
        self.setup_error: BaseException | None = None
        self.run_error: BaseException | None = None
        self.finished = False
        self.marks: list[MarkEvent] = []
        self.interrupted: list[tuple[AudioInterruptedEvent, int]] = []
        self.errors: list[ErrorEvent] = []
        self.turns: list[TurnDoneEvent] = []

    async def serve(self, ws: web.WebSocketResponse) -> None:
        if self.bridge is not None or self.setup_error is not None:
            return  # one call per check
        try:
            edge = await _maybe_await(self._edge_factory(ws))
            model = self._model_factory()
            self._bridge_options.setdefault("plugin_observers", False)
            bridge = CallBridge(
                edge, model, model_audio_format=self._model_audio_format, **self._bridge_options
            )
        except Exception as exc:
            self.setup_error = exc
            self.pulse()
            return
        self.acknowledgements = edge.capabilities.acknowledgements
        bridge.on("mark", self._mark)
        bridge.on("audio_interrupted", self._interrupted)
        bridge.on("error", self._error)
        bridge.on("turn_done", self._turn)
        bridge.on("connection_change", self.pulse)
        self.bridge = bridge
        self.pulse()
        try:
            await bridge.run(self._options)
        except Exception as exc:
            self.run_error = exc
        finally:
            self.finished = True
            self.pulse()

    def _mark(self, event: MarkEvent) -> None:
        self.marks.append(event)
        self.pulse()

    def _interrupted(self, event: AudioInterruptedEvent) -> None:
        # Acknowledgements processed so far tell what the bridge knew to be heard.
        self.interrupted.append((event, len(self.marks)))
        self.pulse()

    def _error(self, event: ErrorEvent) -> None:
        self.errors.append(event)
        self.pulse()

    def _turn(self, event: TurnDoneEvent) -> None:
        self.turns.append(event)
        self.pulse()


def _played_out(bridge: CallBridge) -> bool:
    # The bridge's clock: monotonic milliseconds. With acknowledgements the time is ignored.
    return not bridge.protocol.playback.items(time.monotonic() * 1000.0)


def _default_model_factory() -> BridgeableModel:
    from voicewire.registry import create_transport

    try:
        transport = create_transport("openai_ws", plugin_observers=False)
    except UnknownTransportError as exc:
        raise ConformanceError(
            "check_bridge_with_edge",
            "model",
            f"no model_factory given and the openai_ws transport is not installed ({exc})",
        ) from None
    if not isinstance(transport, BridgeableModel):
        raise ConformanceError(
            "check_bridge_with_edge", "model", "the openai_ws transport cannot be bridged"
        )
    return transport


async def check_bridge_with_edge(
    edge_factory: EdgeFactory,
    dialect_factory: Callable[[], CallerDialect],
    *,
    fake_server: FakeRealtimeServer,
    model_factory: Callable[[], BridgeableModel] | None = None,
    connect_options: ConnectOptions | None = None,
    model_audio_format: AudioFormat | None = None,
    bridge_options: Mapping[str, Any] | None = None,
    speed: float = 2.0,
    tolerance_ms: float = 20.0,
    timeout: float = 15.0,
    leak_grace: float = 2.0,
) -> None:
    """Check a whole call: caller -> edge -> :class:`~voicewire.bridge.CallBridge` -> model.

    The route handler builds the edge with ``edge_factory(websocket)``, a model transport with
    ``model_factory()`` and a ``CallBridge`` of the two, and runs it against ``fake_server``
    (echo mode). The simulated caller (``dialect_factory()``, keepalive on) then:

    1. **turn**: says something and hears the echo: byte-exact both ways when the bridge passes
       audio through (``model_audio_format`` ``None`` or the edge's format), within
       ``tolerance_ms`` of duration when it transcodes;
    2. **barge-in**: says something long, and speaks again while its echo plays: the bridge
       clears the caller's queue and the model's item is truncated where the caller's
       acknowledgements put it (the last acknowledged point plus the bridge's heard margin,
       within ``tolerance_ms``), which the server accepts;
    3. **hang-up**: hangs up: the bridge's ``run()`` returns, the model's session closes, every
       byte either way is accounted for, no telephony error was reported, the server refused
       nothing, and no task is left running.

    Args:
        edge_factory: Builds the edge on a prepared aiohttp WebSocket (may be a coroutine).
        dialect_factory: Builds the caller's dialect object.
        fake_server: A started :class:`~voicewire.testing.FakeRealtimeServer` in echo mode.
        model_factory: Builds the model transport; by default the registry's ``openai_ws``.
        connect_options: The model's connect options; the URL is replaced by the server's.
        model_audio_format: The bridge's ``model_audio_format`` (``None``: pass-through).
        bridge_options: More keyword arguments of ``CallBridge``.
        speed: Virtual-clock factor of the caller.
        tolerance_ms: Allowed difference of durations and truncation points.
        timeout: Hang guard of every wait, in seconds.
        leak_grace: Seconds a finishing task gets before it counts as leaked.

    Raises:
        ConformanceError: The first thing found wrong.
    """
    ck = _Check("check_bridge_with_edge", timeout, leak_grace)
    options = _options_for(connect_options, fake_server.url)
    factory = model_factory or _default_model_factory
    handler = _BridgedCall(edge_factory, factory, options, model_audio_format, bridge_options or {})
    margin = float((bridge_options or {}).get("heard_margin_ms", DEFAULT_HEARD_MARGIN_MS))
    async with ck.no_leaks("bridged call"):
        server = _SocketServer(handler.serve)
        url = await server.start()
        dialect = dialect_factory()
        caller = SimulatedCaller(url, dialect, speed=speed, keepalive=True, strict=False)
        try:
            index = len(fake_server.sessions)
            await ck.bounded(caller.start(), "connect", "the simulated caller's connect")
            await _bridged_call(ck, handler, caller, fake_server, index, tolerance_ms, margin)
        finally:
            with contextlib.suppress(Exception):
                await caller.close()
            bridge = handler.bridge
            if bridge is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(bridge.close(), 10.0)
            await handler.pulse.until(lambda: handler.finished or handler.bridge is None, 10.0)
            await server.close()


@attrs.define
class _Leg:
    """What the phases of a bridged call share."""

    ck: _Check
    handler: _BridgedCall
    caller: SimulatedCaller
    server: FakeRealtimeServer
    index: int
    bridge: CallBridge
    tolerance_ms: float
    margin: float

    def record(self) -> SessionRecord:
        return self.server.session(self.index)


async def _bridged_call(
    ck: _Check,
    handler: _BridgedCall,
    caller: SimulatedCaller,
    server: FakeRealtimeServer,
    index: int,
    tolerance_ms: float,
    margin: float,
) -> None:
    step = "connect"
    await ck.until(
        handler.pulse,
        lambda: handler.bridge is not None or handler.setup_error is not None,
        step,
        "the route never built the bridge",
    )
    if handler.setup_error is not None:
        error = handler.setup_error
        raise ck.error(step, f"building the call failed: {type(error).__name__}: {error}")
    bridge = handler.bridge
    assert bridge is not None
    await ck.until(
        handler.pulse,
        lambda: bridge.status == "connected" or handler.finished,
        step,
        "the bridge never connected the model",
    )
    if handler.finished:
        raise ck.error(step, f"the call ended at once: {handler.errors[:3]}")
    leg = _Leg(ck, handler, caller, server, index, bridge, tolerance_ms, margin)
    heard_before = await _bridged_turn(leg)
    await _bridged_barge_in(leg, heard_before)
    await _bridged_hang_up(leg)


def _whole_frames(audio: bytes, fmt: AudioFormat) -> bytes:
    return audio[: len(audio) - len(audio) % fmt.nbytes_for_ms(_FRAME_MS)]


async def _bridged_turn(leg: _Leg) -> int:
    """One turn heard whole; returns the bytes the caller had heard by its end."""
    ck, caller, step = leg.ck, leg.caller, "turn"
    edge_fmt = caller.audio_format
    transcoding = leg.bridge.transcoding
    utterance = _whole_frames(speech_like(500, edge_fmt, seed="voicewire-turn"), edge_fmt)
    await ck.bounded(caller.say(utterance), step, "the caller's speech")
    await ck.kit(
        leg.server.wait_for_server_event("response.done", session=leg.index, timeout=ck.timeout),
        step,
        "the model never answered the caller",
    )
    answer = _deltas(leg.record())
    if not answer:
        raise ck.error(step, "the model's answer had no audio (is the server in echo mode?)")
    answer_ms = leg.bridge.model_audio_format.duration_ms(len(answer))

    def heard_all() -> bool:
        if transcoding:
            return edge_fmt.duration_ms(len(caller.heard)) >= answer_ms - leg.tolerance_ms
        return len(caller.heard) >= len(answer)

    await ck.kit(
        caller.wait_for(heard_all, timeout=ck.timeout, what="the answer heard"),
        step,
        "the caller never heard the whole answer",
    )
    # Every acknowledgement of the answer must be in, or the caller's next words would
    # interrupt an answer the bridge still thinks is playing.
    await ck.until(
        leg.handler.pulse,
        lambda: _played_out(leg.bridge),
        step,
        "the bridge never saw the answer played out (acknowledgements missing?)",
        # Without acknowledgements the bridge's estimate advances with time alone.
        every=None if leg.handler.acknowledgements else 0.02,
    )
    if transcoding:
        gap = abs(edge_fmt.duration_ms(len(caller.received)) - answer_ms)
        if gap > leg.tolerance_ms:
            raise ck.error(step, f"the caller heard {gap:.1f} ms more or less than the model sent")
    else:
        if caller.received != answer:
            raise ck.error(
                step,
                "the caller did not receive the model's audio byte-exact: "
                + _first_difference(answer, caller.received),
            )
        if utterance not in _appended(leg.record()):
            raise ck.error(step, "the caller's speech did not reach the model byte-exact")
    return len(caller.heard)


async def _bridged_barge_in(leg: _Leg, heard_before: int) -> None:
    """A long answer, spoken over: cleared, and truncated where the caller's marks put it."""
    ck, caller, handler, step = leg.ck, leg.caller, leg.handler, "barge-in"
    edge_fmt = caller.audio_format
    earlier = len(handler.interrupted)
    long = _whole_frames(speech_like(2500, edge_fmt, seed="voicewire-long"), edge_fmt)
    await ck.bounded(caller.say(long), step, "the caller's speech")
    await ck.kit(
        caller.wait_heard(heard_before + edge_fmt.nbytes_for_ms(300), timeout=ck.timeout),
        step,
        "the caller never heard the start of the second answer",
    )
    await ck.bounded(
        caller.say(speech_like(600, edge_fmt, seed="voicewire-barge-in")), step, "barge-in speech"
    )
    await ck.until(
        handler.pulse,
        lambda: len(handler.interrupted) > earlier,
        step,
        "the bridge never interrupted the answer the caller spoke over",
    )
    await ck.kit(
        caller.wait_entry("clear_received", timeout=ck.timeout),
        step,
        "the caller was never told to drop its queued audio",
    )
    event, marks_known = handler.interrupted[earlier]
    if not event.truncations:
        raise ck.error(step, "the interruption truncated nothing")
    cut = event.truncations[0]

    def recorded() -> bool:
        return any(r.item_id == cut.item_id for r in leg.record().truncations)

    await ck.kit(
        leg.server.wait_for(recorded, timeout=ck.timeout),
        step,
        "the truncation never reached the model",
    )
    seen = _last_truncation(leg.record(), cut.item_id)
    if not seen.accepted or seen.audio_end_ms != cut.audio_end_ms:
        raise ck.error(
            step,
            f"truncation at {cut.audio_end_ms} ms reached the server as {seen.audio_end_ms} ms,"
            f" accepted={seen.accepted} (audio sent: {seen.audio_sent_ms} ms)",
        )
    played = caller.entries("mark_played")
    known = min(marks_known, len(played))
    heard_at = played[known - 1].detail.get("heard") if known else 0
    if handler.acknowledgements and isinstance(heard_at, int):
        # The k-th acknowledgement the bridge had when it decided is the caller's k-th played
        # mark, whose timeline entry says how much had been heard then.
        acked_ms = edge_fmt.duration_ms(max(0, heard_at - heard_before))
        sent_ms = float(seen.audio_sent_ms if seen.audio_sent_ms is not None else cut.audio_end_ms)
        expected = min(sent_ms, acked_ms + leg.margin)
        if abs(cut.audio_end_ms - expected) > leg.tolerance_ms + 1:
            raise ck.error(
                step,
                f"truncated at {cut.audio_end_ms} ms; the caller's acknowledgements put it at"
                f" {expected:.0f} ms (heard {acked_ms:.0f} ms + margin {leg.margin:g} ms, sent"
                f" {sent_ms:.0f} ms)",
            )


async def _bridged_hang_up(leg: _Leg) -> None:
    """The caller hangs up: everything ends, nothing is lost, nobody complained."""
    ck, handler, step = leg.ck, leg.handler, "hang-up"
    await leg.caller.hang_up()
    await ck.until(handler.pulse, lambda: handler.finished, step, "run() did not return")
    if handler.run_error is not None:
        error = handler.run_error
        raise ck.error(step, f"run() raised {type(error).__name__}: {error}")
    await ck.kit(
        leg.server.wait_closed(leg.index, timeout=ck.timeout),
        step,
        "the model's session stayed open",
    )
    stats = leg.bridge.stats
    if stats.caller_unaccounted_bytes or stats.model_unaccounted_bytes:
        raise ck.error(
            step,
            f"bytes unaccounted for: caller {stats.caller_unaccounted_bytes}, model"
            f" {stats.model_unaccounted_bytes}",
        )
    telephony = [e for e in handler.errors if e.source == "telephony"]
    if telephony:
        raise ck.error(
            step, f"the edge reported {len(telephony)} error(s), first: {telephony[0].message}"
        )
    refused = leg.record().errors()
    if refused:
        raise ck.error(step, f"the model's server refused {len(refused)} event(s): {refused[:2]}")
    if leg.caller.violations:
        raise ck.error(
            step, f"the edge sent frames the dialect refuses; first: {leg.caller.violations[0]}"
        )


# -------------------------------------------------------------------------------------------
# entry points
# -------------------------------------------------------------------------------------------


def check_entry_point(
    plugin_id: str,
    transport_name: str,
    kind: TransportKind,
    *,
    create_options: Mapping[str, Any] | None = None,
) -> TransportSpec:
    """Check that an installed plugin loads through ``voicewire.plugins`` and registers a name.

    Builds a fresh :class:`~voicewire.plugins.PluginManager` (blocking nothing), loads every
    entry point as ``voicewire`` does at run time, and checks that ``plugin_id`` loaded and
    registered ``transport_name`` as ``kind``. With ``create_options``, also builds one through
    the registry and checks what it returns.

    Args:
        plugin_id: The entry-point name (``"acme"``).
        transport_name: The registry name the plugin registers.
        kind: ``"model_transport"`` or ``"telephony_edge"``.
        create_options: Keyword options for ``create_transport``/``create_edge``.

    Returns:
        The registry entry.

    Raises:
        ConformanceError: The entry point is missing, fails to load or register, or registers
            something else.
    """
    name = "check_entry_point"
    declared = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    if plugin_id not in declared:
        raise ConformanceError(
            name,
            "entry point",
            f"no entry point {plugin_id!r} in the group {ENTRY_POINT_GROUP!r} (declared: "
            f"{', '.join(declared) or 'none'}); is the distribution installed?",
        )
    manager = PluginManager(disabled=())
    with warnings.catch_warnings():
        # Other installed plugins may warn; only this one matters here.
        warnings.simplefilter("ignore")
        manager.load_entrypoint_plugins()
        infos = {info.id: info for info in manager.plugin_infos()}
    info = infos.get(plugin_id)
    if info is None or info.status != "loaded":
        reason = info.reason if info is not None else "not seen by the plugin manager"
        raise ConformanceError(name, "load", f"plugin {plugin_id!r} did not load: {reason}")
    try:
        spec = manager.registry.get(transport_name)
    except UnknownTransportError as exc:
        raise ConformanceError(
            name, "register", f"plugin {plugin_id!r} loaded but did not register: {exc}"
        ) from None
    if spec.plugin != plugin_id:
        raise ConformanceError(
            name,
            "register",
            f"{transport_name!r} is registered by {spec.plugin!r}, not {plugin_id!r}",
        )
    if spec.kind != kind:
        raise ConformanceError(
            name, "register", f"{transport_name!r} is registered as a {spec.kind}, not a {kind}"
        )
    if create_options is not None:
        try:
            if kind == "model_transport":
                made: object = manager.create_transport(transport_name, **create_options)
            else:
                made = manager.create_edge(transport_name, **create_options)
        except Exception as exc:
            raise ConformanceError(
                name,
                "create",
                f"the factory of {transport_name!r} raised {type(exc).__name__}: {exc}",
            ) from exc
        wanted: type = RealtimeTransportLayer if kind == "model_transport" else TelephonyEdge
        if not isinstance(made, wanted):
            raise ConformanceError(
                name,
                "create",
                f"the factory of {transport_name!r} returned a {type(made).__name__}, not a"
                f" {wanted.__name__}",
            )
    return spec


# -------------------------------------------------------------------------------------------
# check_serve_runner
# -------------------------------------------------------------------------------------------


async def check_serve_runner(
    telephony: str,
    dialect_factory: Callable[[], CallerDialect],
    *,
    fake_server: FakeRealtimeServer,
    media_path: str = "/media-stream",
    health_path: str | None = "/healthz",
    settings: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
    speed: float = 4.0,
    timeout: float = 15.0,
    leak_grace: float = 2.0,
) -> None:
    """Check the server a telephony plugin runs for ``voicewire serve --telephony NAME``.

    The runner is found as the command finds it (the ``voicewire_serve`` attribute of the
    edge's registry factory) and run as the command runs it, against ``fake_server`` (echo
    mode), with signature checks off. Then:

    1. **ready**: it calls ``ready("http://HOST:PORT")`` once listening;
    2. **health** (unless ``health_path`` is ``None``): ``GET`` answers 200 with a JSON object
       whose ``active_calls`` is 0;
    3. **call**: a simulated caller (``dialect_factory()``) on ``media_path`` says something and
       hears the model's answer;
    4. **limit**: the runner was given ``max_calls=1`` (unless ``settings`` sets it), so a
       second WebSocket upgrade on ``media_path`` during the call is answered 503;
    5. **drain**: the runner is cancelled, as ``SIGTERM`` does, while the call is up: it must not
       return while the call goes on, the call must go on (the caller speaks again and hears the
       answer), and once the caller hangs up the runner must return, with nothing left running.

    Args:
        telephony: The edge's registry name.
        dialect_factory: Builds the caller's dialect object.
        fake_server: A started :class:`~voicewire.testing.FakeRealtimeServer` in echo mode.
        media_path: The route the provider connects to.
        health_path: The health route, or ``None`` if the server has none.
        settings: More fields of :class:`~voicewire.cli.serve.ServeSettings` (``auth_token``,
            ``model_transport``, ...); host, port, model URL and key are the check's.
        registry: Where to find the edge; the process-wide registry by default.
        speed: Virtual-clock factor of the caller.
        timeout: Hang guard of every wait, in seconds; also the runner's shutdown timeout.
        leak_grace: Seconds a finishing task gets before it counts as leaked.

    Raises:
        ConformanceError: The first thing found wrong.
    """
    ck = _Check("check_serve_runner", timeout, leak_grace)
    try:
        runner = find_serve_runner(telephony, registry)
    except VoicewireError as exc:
        raise ck.error("runner", str(exc)) from None
    serve_settings = ServeSettings(
        **{
            "insecure_skip_signature": True,
            "shutdown_timeout": timeout,
            "max_calls": 1,
            **(settings or {}),
            "host": "127.0.0.1",
            "port": 0,
            "realtime_url": fake_server.url,
            "api_key": _API_KEY,
            "telephony": telephony,
        }
    )
    async with ck.no_leaks("drain"):
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_ready(url: str) -> None:
            if not ready.done():
                ready.set_result(url)

        serving = asyncio.ensure_future(runner(serve_settings, on_ready))
        try:
            base = await _serve_ready(ck, serving, ready)
            if health_path is not None:
                await _serve_health(ck, base + health_path)
            url = "ws" + base[len("http") :] + media_path
            caller = SimulatedCaller(
                url, dialect_factory(), speed=speed, keepalive=True, strict=False
            )
            try:
                await ck.bounded(caller.start(), "call", "the simulated caller's connect")
                await _serve_turn(ck, caller, fake_server, "call", seed="serve-1")
                if serve_settings.max_calls == 1:
                    await _serve_limit(ck, url)
                serving.cancel()  # what voicewire serve does on SIGTERM
                await asyncio.sleep(0.2)
                if serving.done():
                    raise ck.error("drain", "the runner returned while a call was in progress")
                await _serve_turn(ck, caller, fake_server, "drain", seed="serve-2")
                await ck.bounded(caller.hang_up(), "drain", "the caller's hang-up")
                if caller.violations:
                    raise ck.error(
                        "call",
                        f"the server sent {len(caller.violations)} frame(s) the dialect refuses;"
                        f" first: {caller.violations[0]}",
                    )
            finally:
                with contextlib.suppress(Exception):
                    await caller.close()
            done, _ = await asyncio.wait({serving}, timeout=timeout)
            if not done:
                raise ck.error(
                    "drain", f"the runner did not return within {timeout:g} s of the call's end"
                )
            failure = None if serving.cancelled() else serving.exception()
            if failure is not None:
                raise ck.error("drain", f"the runner raised {type(failure).__name__}: {failure}")
        finally:
            if not serving.done():
                serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)


async def _serve_ready(
    ck: _Check, serving: asyncio.Future[None], ready: asyncio.Future[str]
) -> str:
    waiters: set[asyncio.Future[Any]] = {serving, ready}
    done, _ = await asyncio.wait(waiters, timeout=ck.timeout, return_when="FIRST_COMPLETED")
    if ready in done:
        url: str = ready.result()
        if not url.startswith("http://") or url.rstrip("/").rsplit(":", 1)[-1] in ("", "0"):
            raise ck.error("ready", f"ready() was called with {url!r}, not http://HOST:PORT")
        return url.rstrip("/")
    if serving in done:
        failure = None if serving.cancelled() else serving.exception()
        detail = "returned" if failure is None else f"raised {type(failure).__name__}: {failure}"
        raise ck.error("ready", f"the runner {detail} before calling ready()")
    raise ck.error("ready", f"ready() was not called within {ck.timeout:g} s")


async def _serve_health(ck: _Check, url: str) -> None:
    async with aiohttp.ClientSession() as http:
        try:
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=ck.timeout)) as response:
                status = response.status
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, ValueError, asyncio.TimeoutError) as exc:
            raise ck.error("health", f"GET {url} failed: {type(exc).__name__}: {exc}") from None
    if status != 200 or not isinstance(body, dict) or body.get("active_calls") != 0:
        raise ck.error(
            "health", f"GET {url} answered {status} {body!r}, not 200 with active_calls 0"
        )


async def _serve_limit(ck: _Check, url: str) -> None:
    """A second call while one is up, with ``max_calls=1``: it must be answered 503."""
    async with aiohttp.ClientSession() as http:
        try:
            ws = await ck.bounded(http.ws_connect(url), "limit", "a second call's upgrade")
        except ConformanceError as exc:
            cause = exc.__cause__
            if isinstance(cause, aiohttp.WSServerHandshakeError) and cause.status == 503:
                return
            raise
        await ws.close()
    raise ck.error(
        "limit",
        "a second call was accepted with max_calls=1: the runner ignores settings.max_calls",
    )


async def _serve_turn(
    ck: _Check, caller: SimulatedCaller, server: FakeRealtimeServer, step: str, *, seed: str
) -> None:
    """The caller speaks; the model's whole answer (an echo) must reach it."""
    if caller.closed:
        raise ck.error(step, f"the call was closed (code {caller.close_code})")
    answers = sum(len(record.server_events_of("response.done")) for record in server.sessions)
    heard_ms = caller.heard_ms
    speech = speech_like(600, caller.audio_format, seed=seed)
    await ck.bounded(caller.say(speech), step, "speaking")

    def answered() -> bool:
        return sum(len(r.server_events_of("response.done")) for r in server.sessions) > answers

    await ck.kit(server.wait_for(answered, timeout=ck.timeout), step, "the model never answered")
    record = server.sessions[-1]
    response_id = record.server_events_of("response.done")[-1]["response"]["id"]
    answer = record.audio_sent(response_id)
    # The caller hears it in its own format; a resampler may hold back a few milliseconds.
    answer_ms = _output_format(record).duration_ms(len(answer)) - 2 * _FRAME_MS
    target = heard_ms + answer_ms
    await ck.kit(
        caller.wait_for(
            lambda: caller.heard_ms >= target, timeout=ck.timeout, what=f"{answer_ms:.0f} ms heard"
        ),
        step,
        "the caller did not hear the model's answer",
    )
