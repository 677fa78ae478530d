"""A typed event emitter: channels, listeners, and bounded async iteration.

Events are delivered on *channels* (strings). A transport emits each event on
:func:`voicewire.events.channel_of` of it: the event's ``type``, except raw wire messages, which
travel on ``"*"``. ``"*"`` is a channel of its own, not a catch-all: a listener on ``"*"`` sees
the wire, a listener on ``"audio"`` sees typed audio. :meth:`EventEmitter.events` with no channel
is the one place that receives everything.

Delivery rules:

* Sync listeners run inline, inside :meth:`EventEmitter.emit`, in registration order.
* Async listeners (``async def``) never block :meth:`~EventEmitter.emit`. Each one has its own
  backlog drained by one task, so a listener sees its events strictly in emission order, while
  two different async listeners run concurrently. That task exists only while the backlog is not
  empty, and needs a running event loop.
* A listener that raises is logged (logger ``voicewire.emitter``) and reported as an
  :class:`~voicewire.events.ErrorEvent` with ``source="listener"`` on the ``"error"`` channel. A
  listener *of* ``"error"`` that raises is only logged, so a failing error handler cannot loop.
* :meth:`~EventEmitter.events` iterators are bounded. When one is full, its overflow policy
  drops an event, counts it, and reports the first drop of each burst on ``"error"``.

An emitter belongs to one event loop and is not thread-safe: call :meth:`~EventEmitter.emit`
from the loop's thread (use ``loop.call_soon_threadsafe`` from elsewhere).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from types import TracebackType
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar

from typing_extensions import Self

from voicewire.events import ErrorEvent

__all__ = [
    "DEFAULT_EVENTS_MAXSIZE",
    "EventEmitter",
    "EventStream",
    "Listener",
    "OverflowPolicy",
]

logger = logging.getLogger("voicewire.emitter")

Listener: TypeAlias = Callable[[Any], Awaitable[object]] | Callable[[Any], object]
"""A callable taking one event: a plain function (run inline) or an ``async def`` one (run in a task)."""

OverflowPolicy: TypeAlias = Literal["drop_oldest", "drop_newest"]
"""What a full :class:`EventStream` does with one more event.

``"drop_oldest"`` discards the oldest queued event to make room (the consumer sees the most recent
events); ``"drop_newest"`` discards the incoming event (the consumer sees the earliest ones).
"""

DEFAULT_EVENTS_MAXSIZE: Final = 1024
"""Default capacity of an :meth:`EventEmitter.events` iterator: about 20 s of 20 ms audio frames."""

_ERROR_CHANNEL: Final = "error"

# A backlog this long means an async listener cannot keep up; it is worth one warning per burst.
_BACKLOG_WARNING: Final = 1000

_E = TypeVar("_E")


def _is_async_callable(listener: object) -> bool:
    if inspect.iscoroutinefunction(listener):
        return True
    # An instance whose __call__ is ``async def`` is not itself a coroutine function.
    return inspect.iscoroutinefunction(type(listener).__call__)


def _describe(listener: object) -> str:
    name = getattr(listener, "__qualname__", None) or type(listener).__qualname__
    module = getattr(listener, "__module__", None)
    return f"{module}.{name}" if module else str(name)


def _worker_key(listener: object) -> Hashable:
    # Bound methods are rebuilt on every attribute access but compare and hash equal, which is
    # what keying by the listener needs; unhashable callables fall back to identity.
    try:
        hash(listener)
    except TypeError:
        return ("id", id(listener))
    return listener


class _Registration:
    """One ``on``/``once`` call: mutable bookkeeping, never exposed."""

    __slots__ = ("active", "is_async", "listener", "once")

    def __init__(self, listener: Listener, *, once: bool) -> None:
        self.listener = listener
        self.once = once
        self.is_async = _is_async_callable(listener)
        self.active = True


class _AsyncWorker:
    """The backlog of one async listener and the task draining it (``None`` while idle)."""

    __slots__ = ("backlog", "key", "listener", "task", "warned")

    def __init__(self, key: Hashable, listener: Listener) -> None:
        self.key = key
        self.listener = listener
        self.backlog: deque[tuple[str, Any]] = deque()
        self.task: asyncio.Task[None] | None = None
        self.warned = False


class _End:
    """Marks the end of an :class:`EventStream` inside its queue."""

    __slots__ = ()


_END: Final = _End()


class EventStream(AsyncIterator[_E], Generic[_E]):
    """A bounded async iterator over an emitter's events; returned by :meth:`EventEmitter.events`.

    Use it with ``async for``, ideally inside ``async with`` so that it is detached when the
    consumer stops early::

        async with transport.events("audio", "turn_done") as stream:
            async for event in stream:
                ...

    Iteration ends when the emitter is closed (after the events already queued are delivered)
    or when :meth:`aclose` is called (queued events are discarded). The emitter only keeps a weak
    reference to the stream, so an abandoned stream stops receiving events once collected.
    """

    def __init__(
        self,
        emitter: EventEmitter,
        channels: frozenset[str],
        maxsize: int,
        overflow: OverflowPolicy,
    ) -> None:
        """Create a stream; applications call :meth:`EventEmitter.events` instead.

        Args:
            emitter: The emitter that feeds this stream and receives its overflow reports.
            channels: The channels to receive; empty means every channel, ``"*"`` included.
            maxsize: Capacity of the queue (at least 1).
            overflow: What to drop when the queue is full.
        """
        self._emitter = emitter
        self._channels = channels
        self._maxsize = maxsize
        self._overflow: OverflowPolicy = overflow
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self._dropped = 0
        self._in_burst = False
        self._closed = False

    @property
    def channels(self) -> frozenset[str]:
        """The channels this stream receives; empty means every channel."""
        return self._channels

    @property
    def maxsize(self) -> int:
        """Capacity of the queue."""
        return self._maxsize

    @property
    def overflow(self) -> OverflowPolicy:
        """The overflow policy."""
        return self._overflow

    @property
    def dropped(self) -> int:
        """How many events this stream has dropped because it was full."""
        return self._dropped

    @property
    def closed(self) -> bool:
        """Whether the stream stopped receiving events (ended by the emitter or by the consumer)."""
        return self._closed

    def accepts(self, channel: str) -> bool:
        """Whether an event on ``channel`` is delivered to this stream.

        Args:
            channel: A channel name.

        Returns:
            ``True`` if the stream listens to every channel or to this one.
        """
        return not self._channels or channel in self._channels

    def _offer(self, event: Any) -> None:
        if self._closed:
            return
        queue = self._queue
        if not queue.full():
            queue.put_nowait(event)
            return
        self._dropped += 1
        if self._overflow == "drop_oldest":
            queue.get_nowait()
            queue.put_nowait(event)
        if not self._in_burst:
            # Set before reporting: the report is itself an event that may land in this stream.
            self._in_burst = True
            self._emitter._report_overflow(self)

    def _end(self, *, discard: bool) -> None:
        if self._closed:
            return
        self._closed = True
        queue = self._queue
        if discard:
            while not queue.empty():
                queue.get_nowait()
        # A reader blocked on an empty queue needs something to wake up to; a full queue has
        # no blocked reader, and the "closed and empty" check stops it after the last event.
        if not queue.full():
            queue.put_nowait(_END)

    def __aiter__(self) -> Self:
        """Return the stream itself."""
        return self

    async def __anext__(self) -> _E:
        """Wait for the next event.

        Returns:
            The next event.

        Raises:
            StopAsyncIteration: The stream or its emitter was closed and no event is left.
        """
        queue = self._queue
        if self._closed and queue.empty():
            raise StopAsyncIteration
        item = await queue.get()
        if item is _END:
            # Put the marker back so that a second concurrent reader ends too.
            queue.put_nowait(_END)
            raise StopAsyncIteration
        # The consumer made room: the next drop starts a new burst and is reported again.
        self._in_burst = False
        return item  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Detach from the emitter and discard queued events. Idempotent."""
        self._emitter._detach_stream(self)
        self._end(discard=True)

    async def __aenter__(self) -> Self:
        """Return the stream itself."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the stream."""
        await self.aclose()

    def __repr__(self) -> str:
        channels = ",".join(sorted(self._channels)) or "<all>"
        return (
            f"<EventStream channels={channels} size={self._queue.qsize()}/{self._maxsize} "
            f"overflow={self._overflow} dropped={self._dropped} closed={self._closed}>"
        )


class EventEmitter:
    """Delivers events to listeners and iterators by channel.

    Example::

        emitter = EventEmitter()
        emitter.on("audio", play)             # sync: runs inside emit()
        emitter.on("turn_done", save_turn)    # async def: runs in its own ordered task
        emitter.emit("audio", AudioEvent(data=b"..."))
        await emitter.aclose()
    """

    def __init__(self) -> None:
        """Create an emitter with no listeners."""
        self._listeners: dict[str, list[_Registration]] = {}
        self._workers: dict[Hashable, _AsyncWorker] = {}
        self._streams: weakref.WeakValueDictionary[int, EventStream[Any]] = (
            weakref.WeakValueDictionary()
        )
        self._next_stream_id = 0

    # -- registration ---------------------------------------------------------------------------

    def on(self, channel: str, listener: Listener) -> None:
        """Call ``listener`` for every event emitted on ``channel``.

        Registering the same listener twice makes it run twice per event.

        Args:
            channel: The channel name (``"*"``: raw wire messages only).
            listener: A function of one event, sync or ``async def``.

        Raises:
            TypeError: ``listener`` is not callable.
        """
        self._add(channel, listener, once=False)

    def once(self, channel: str, listener: Listener) -> None:
        """Call ``listener`` for the next event emitted on ``channel`` only.

        Args:
            channel: The channel name.
            listener: A function of one event, sync or ``async def``.

        Raises:
            TypeError: ``listener`` is not callable.
        """
        self._add(channel, listener, once=True)

    def off(self, channel: str, listener: Listener) -> None:
        """Remove the most recent registration of ``listener`` on ``channel``, if any.

        The removal takes effect at once, even while an ``emit`` is calling listeners. Events an
        async listener already has in its backlog are still delivered.

        Args:
            channel: The channel name.
            listener: The listener given to :meth:`on` or :meth:`once` (compared with ``==``, so a
                bound method can be passed again as ``obj.method``).
        """
        registrations = self._listeners.get(channel)
        if not registrations:
            return
        for index in range(len(registrations) - 1, -1, -1):
            registration = registrations[index]
            if registration.listener == listener:
                registration.active = False
                # Replace the list rather than mutate it: a running emit iterates the old one.
                self._set_registrations(channel, registrations[:index] + registrations[index + 1 :])
                return

    def listener_count(self, channel: str) -> int:
        """Number of listener registrations on ``channel`` (iterators are not counted).

        Args:
            channel: The channel name.

        Returns:
            How many ``on``/``once`` registrations are active on that channel.
        """
        return len(self._listeners.get(channel, ()))

    def has_subscribers(self, channel: str) -> bool:
        """Whether an event on ``channel`` would reach anyone: a listener or an open iterator.

        Args:
            channel: The channel name.

        Returns:
            ``True`` if emitting on ``channel`` now would deliver the event somewhere.
        """
        if self._listeners.get(channel):
            return True
        # Asked once per frame by a bridge: the empty case must not start an iteration.
        return bool(self._streams) and any(
            stream.accepts(channel) for stream in self._streams.values()
        )

    def _add(self, channel: str, listener: Listener, *, once: bool) -> None:
        if not callable(listener):
            raise TypeError(f"listener must be callable, got {type(listener).__name__}")
        registration = _Registration(listener, once=once)
        self._set_registrations(channel, [*self._listeners.get(channel, ()), registration])

    def _set_registrations(self, channel: str, registrations: list[_Registration]) -> None:
        if registrations:
            self._listeners[channel] = registrations
        else:
            self._listeners.pop(channel, None)

    def _remove_registration(self, channel: str, registration: _Registration) -> None:
        registration.active = False
        registrations = self._listeners.get(channel, [])
        self._set_registrations(channel, [r for r in registrations if r is not registration])

    # -- delivery -------------------------------------------------------------------------------

    def emit(self, channel: str, event: Any) -> None:
        """Deliver ``event`` to the listeners of ``channel`` and to the iterators that accept it.

        Sync listeners have run when this returns; async listeners have their call queued.
        Nothing a listener does (raise, or ``async`` with no running loop) propagates out of
        ``emit``: it is reported on ``"error"`` instead.

        Args:
            channel: The channel name; transports use :func:`voicewire.events.channel_of`.
            event: The event, usually an attrs-frozen event of :mod:`voicewire.events`.
        """
        registrations = self._listeners.get(channel)
        if registrations:
            for registration in registrations:
                # A listener removed by an earlier listener of this same emit must not run.
                if not registration.active:
                    continue
                if registration.once:
                    self._remove_registration(channel, registration)
                if registration.is_async:
                    self._enqueue(channel, registration.listener, event)
                else:
                    self._call_sync(channel, registration.listener, event)
        if self._streams:
            for stream in list(self._streams.values()):
                if stream.accepts(channel):
                    stream._offer(event)

    def _call_sync(self, channel: str, listener: Listener, event: Any) -> None:
        try:
            result = listener(event)
        except Exception as exc:
            self._listener_failed(channel, listener, exc)
            return
        if result is not None and inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never awaited by design; closing avoids a RuntimeWarning
            self._report_listener_problem(
                channel,
                listener,
                f"listener {_describe(listener)} returned an awaitable but is not an async "
                "function, so it was not awaited; register an `async def` function instead",
                code="listener_returned_awaitable",
            )

    def _enqueue(self, channel: str, listener: Listener, event: Any) -> None:
        key = _worker_key(listener)
        worker = self._workers.get(key)
        if worker is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._report_listener_problem(
                    channel,
                    listener,
                    f"async listener {_describe(listener)} on channel {channel!r} was not called: "
                    "emit() ran with no running event loop; emit from inside the loop, or "
                    "register a sync listener",
                    code="no_running_loop",
                )
                return
            worker = _AsyncWorker(key, listener)
            self._workers[key] = worker
            worker.task = loop.create_task(
                self._drain(worker), name=f"voicewire-listener:{_describe(listener)}"
            )
        worker.backlog.append((channel, event))
        if len(worker.backlog) >= _BACKLOG_WARNING and not worker.warned:
            worker.warned = True
            logger.warning(
                "async listener %s has %d events waiting; it does not keep up with channel %r",
                _describe(listener),
                len(worker.backlog),
                channel,
            )

    async def _drain(self, worker: _AsyncWorker) -> None:
        listener = worker.listener
        backlog = worker.backlog
        try:
            while backlog:
                channel, event = backlog.popleft()
                try:
                    await listener(event)  # type: ignore[misc]
                except Exception as exc:
                    self._listener_failed(channel, listener, exc)
        finally:
            # Nothing can be appended between the empty check and here (no await in between),
            # so an emit after this point creates a fresh worker and order is preserved.
            backlog.clear()
            if self._workers.get(worker.key) is worker:
                del self._workers[worker.key]

    def _listener_failed(self, channel: str, listener: Listener, exc: Exception) -> None:
        logger.error(
            "listener %s on channel %r raised %s",
            _describe(listener),
            channel,
            type(exc).__name__,
            exc_info=exc,
        )
        if channel == _ERROR_CHANNEL:
            return
        self.emit(
            _ERROR_CHANNEL,
            ErrorEvent(
                message=f"listener {_describe(listener)} on channel {channel!r} raised "
                f"{type(exc).__name__}: {exc}",
                source="listener",
                code="listener_error",
                error=exc,
                details={"channel": channel, "listener": _describe(listener)},
            ),
        )

    def _report_listener_problem(
        self, channel: str, listener: Listener, message: str, *, code: str
    ) -> None:
        logger.error("%s", message)
        if channel == _ERROR_CHANNEL:
            return
        self.emit(
            _ERROR_CHANNEL,
            ErrorEvent(
                message=message,
                source="listener",
                code=code,
                details={"channel": channel, "listener": _describe(listener)},
            ),
        )

    # -- iteration ------------------------------------------------------------------------------

    def events(
        self,
        *channels: str,
        maxsize: int = DEFAULT_EVENTS_MAXSIZE,
        overflow: OverflowPolicy = "drop_oldest",
    ) -> EventStream[Any]:
        """Iterate over events through a bounded queue.

        The stream receives the events emitted after this call. It never grows past
        ``maxsize``: when full, ``overflow`` decides what is dropped, :attr:`EventStream.dropped`
        counts it, and the first drop of each burst (a burst ends when the consumer takes an
        event) is reported as ``ErrorEvent(source="overflow", code="event_queue_overflow")`` on
        ``"error"``.

        Args:
            *channels: Channels to receive. None: every event on every channel, the raw ``"*"``
                messages included.
            maxsize: Capacity of the queue, at least 1.
            overflow: ``"drop_oldest"`` (keep the latest events) or ``"drop_newest"``.

        Returns:
            An async iterator that is also an async context manager.

        Raises:
            ValueError: ``maxsize`` is below 1 or ``overflow`` is not a known policy.
        """
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        if overflow not in ("drop_oldest", "drop_newest"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'drop_newest', got {overflow!r}")
        stream: EventStream[Any] = EventStream(self, frozenset(channels), maxsize, overflow)
        self._streams[self._next_stream_id] = stream
        self._next_stream_id += 1
        return stream

    def _detach_stream(self, stream: EventStream[Any]) -> None:
        for key, candidate in list(self._streams.items()):
            if candidate is stream:
                del self._streams[key]

    def _report_overflow(self, stream: EventStream[Any]) -> None:
        channels = sorted(stream.channels)
        logger.warning(
            "event stream %s is full (maxsize %d); dropping the %s events (%d dropped so far)",
            ",".join(channels) or "<all channels>",
            stream.maxsize,
            "oldest" if stream.overflow == "drop_oldest" else "newest",
            stream.dropped,
        )
        self.emit(
            _ERROR_CHANNEL,
            ErrorEvent(
                message=f"an event stream is full (maxsize {stream.maxsize}); its consumer is too "
                f"slow, so events are being dropped ({stream.overflow})",
                source="overflow",
                code="event_queue_overflow",
                details={
                    "channels": channels,
                    "maxsize": stream.maxsize,
                    "overflow": stream.overflow,
                    "dropped": stream.dropped,
                },
            ),
        )

    # -- shutdown -------------------------------------------------------------------------------

    async def aclose(self, *, drain_timeout: float | None = 5.0) -> None:
        """End every open iterator and finish the async listener tasks, leaving no task behind.

        Iterators deliver what they already hold, then stop. Async listeners get up to
        ``drain_timeout`` seconds to work through their backlogs; whatever is left is then
        discarded and the tasks are cancelled and awaited. The emitter stays usable afterwards:
        listeners stay registered (a transport can reconnect) and :meth:`events` returns a fresh
        iterator.

        Args:
            drain_timeout: Seconds to let async listeners finish; ``0`` cancels at once,
                ``None`` waits as long as it takes.
        """
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            stream._end(discard=False)

        loop = asyncio.get_running_loop()
        # aclose() may be awaited from inside an async listener: its own task is not waited on.
        current = asyncio.current_task()
        deadline = None if drain_timeout is None else loop.time() + drain_timeout
        try:
            while drain_timeout != 0:
                pending = self._worker_tasks(exclude=current)
                if not pending:
                    break
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                # Loop again: a draining listener may emit and so start new workers.
                await asyncio.wait(pending, timeout=remaining)
        finally:
            leftovers = self._worker_tasks(exclude=current)
            for worker in self._workers.values():
                worker.backlog.clear()
            for task in leftovers:
                task.cancel()
            if leftovers:
                await asyncio.gather(*leftovers, return_exceptions=True)

    def _worker_tasks(self, *, exclude: asyncio.Task[Any] | None) -> set[asyncio.Task[None]]:
        return {
            worker.task
            for worker in self._workers.values()
            if worker.task is not None and worker.task is not exclude and not worker.task.done()
        }

    def __repr__(self) -> str:
        channels = {channel: len(regs) for channel, regs in self._listeners.items()}
        return (
            f"<EventEmitter listeners={channels} streams={len(self._streams)} "
            f"busy_async_listeners={len(self._workers)}>"
        )
