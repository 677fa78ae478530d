"""EventEmitter: delivery order, channels, once/off, async listeners, errors, iterators, shutdown."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from typing import Any
from unittest.mock import AsyncMock

import pytest

from voicewire.emitter import EventEmitter, EventStream
from voicewire.events import WILDCARD, AudioEvent, ErrorEvent, RawServerEvent


def _errors(emitter: EventEmitter) -> list[ErrorEvent]:
    received: list[ErrorEvent] = []
    emitter.on("error", received.append)
    return received


def _drain_nowait(stream: EventStream[Any]) -> list[Any]:
    # Everything already queued, without waiting: reads the queue the way a consumer would.
    items: list[Any] = []
    while not stream._queue.empty():
        items.append(stream._queue.get_nowait())
    return items


# -- sync listeners, channels, once, off ----------------------------------------------------------


def test_sync_listeners_run_inline_in_registration_order() -> None:
    emitter = EventEmitter()
    calls: list[tuple[str, int]] = []
    emitter.on("a", lambda e: calls.append(("first", e)))
    emitter.on("a", lambda e: calls.append(("second", e)))
    emitter.on("a", lambda e: calls.append(("third", e)))

    emitter.emit("a", 1)
    emitter.emit("a", 2)

    assert calls == [
        ("first", 1),
        ("second", 1),
        ("third", 1),
        ("first", 2),
        ("second", 2),
        ("third", 2),
    ]


def test_channels_are_separate_and_star_carries_only_raw_messages() -> None:
    emitter = EventEmitter()
    audio: list[Any] = []
    raw: list[Any] = []
    emitter.on("audio", audio.append)
    emitter.on(WILDCARD, raw.append)

    chunk = AudioEvent(data=b"\x00\x01")
    wire = RawServerEvent(source="server", message={"type": "session.created"})
    emitter.emit("audio", chunk)
    emitter.emit(WILDCARD, wire)
    emitter.emit("turn_done", object())

    # "*" is not a catch-all: the audio listener never sees the wire and vice versa.
    assert audio == [chunk]
    assert raw == [wire]


def test_once_fires_for_the_next_event_only() -> None:
    emitter = EventEmitter()
    seen: list[int] = []
    emitter.once("a", seen.append)

    emitter.emit("a", 1)
    emitter.emit("a", 2)

    assert seen == [1]
    assert emitter.listener_count("a") == 0


def test_once_is_not_called_twice_by_a_reentrant_emit() -> None:
    emitter = EventEmitter()
    seen: list[int] = []

    def reemit(event: int) -> None:
        seen.append(event)
        if event == 1:
            emitter.emit("a", 2)

    emitter.once("a", reemit)
    emitter.emit("a", 1)

    assert seen == [1]


def test_off_removes_a_listener_and_once_registrations() -> None:
    emitter = EventEmitter()
    seen: list[int] = []
    emitter.on("a", seen.append)
    emitter.once("b", seen.append)

    emitter.off("a", seen.append)
    emitter.off("b", seen.append)
    emitter.off("missing", seen.append)  # unknown channel: no error
    emitter.emit("a", 1)
    emitter.emit("b", 2)

    assert seen == []
    assert emitter.listener_count("a") == 0
    assert emitter.listener_count("b") == 0


def test_off_removes_one_registration_of_a_duplicate() -> None:
    emitter = EventEmitter()
    seen: list[int] = []
    emitter.on("a", seen.append)
    emitter.on("a", seen.append)
    assert emitter.listener_count("a") == 2

    emitter.off("a", seen.append)
    emitter.emit("a", 1)

    assert seen == [1]
    assert emitter.listener_count("a") == 1


def test_off_accepts_a_fresh_bound_method() -> None:
    class Sink:
        def __init__(self) -> None:
            self.seen: list[int] = []

        def take(self, event: int) -> None:
            self.seen.append(event)

    sink = Sink()
    emitter = EventEmitter()
    emitter.on("a", sink.take)
    emitter.off("a", sink.take)  # a new bound-method object, equal to the first
    emitter.emit("a", 1)

    assert sink.seen == []


def test_off_during_emit_stops_a_later_listener_and_new_listeners_wait_for_the_next_event() -> None:
    emitter = EventEmitter()
    calls: list[str] = []

    def late(event: int) -> None:
        calls.append(f"late{event}")

    def added(event: int) -> None:
        calls.append(f"added{event}")

    def first(event: int) -> None:
        calls.append(f"first{event}")
        if event == 1:
            emitter.off("a", late)
            emitter.on("a", added)

    emitter.on("a", first)
    emitter.on("a", late)
    emitter.emit("a", 1)
    emitter.emit("a", 2)

    assert calls == ["first1", "first2", "added2"]


def test_listener_count_and_non_callable_listener() -> None:
    emitter = EventEmitter()
    emitter.on("a", print)
    emitter.once("a", print)
    emitter.on("b", print)

    assert emitter.listener_count("a") == 2
    assert emitter.listener_count("b") == 1
    assert emitter.listener_count("c") == 0
    with pytest.raises(TypeError, match="callable"):
        emitter.on("a", 42)  # type: ignore[arg-type]


# -- async listeners ------------------------------------------------------------------------------


async def test_async_listener_does_not_block_emit() -> None:
    emitter = EventEmitter()
    release = asyncio.Event()
    started = asyncio.Event()
    calls: list[str] = []

    async def slow(event: str) -> None:
        calls.append(f"slow-start:{event}")
        started.set()
        await release.wait()
        calls.append(f"slow-end:{event}")

    emitter.on("a", slow)
    emitter.on("a", lambda e: calls.append(f"sync:{e}"))

    emitter.emit("a", "x")
    # emit returned although slow() has not even started: the sync listener already ran.
    assert calls == ["sync:x"]

    await started.wait()
    assert calls == ["sync:x", "slow-start:x"]
    release.set()
    await emitter.aclose(drain_timeout=None)
    assert calls == ["sync:x", "slow-start:x", "slow-end:x"]


async def test_async_listener_sees_its_events_in_order_and_listeners_run_concurrently() -> None:
    emitter = EventEmitter()
    gate = asyncio.Event()
    blocked_seen: list[int] = []
    free_seen: list[int] = []
    free_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def blocked(event: int) -> None:
        # The first event waits the longest: a listener that overlapped its calls would record
        # later events first.
        if event == 0:
            await gate.wait()
        await asyncio.sleep(0)
        blocked_seen.append(event)

    async def free(event: int) -> None:
        free_seen.append(event)
        if event == 4:
            free_done.set_result(None)

    emitter.on("a", blocked)
    emitter.on("a", free)
    for index in range(5):
        emitter.emit("a", index)

    # The free listener finishes everything while the blocked one still waits on event 0.
    await free_done
    assert free_seen == [0, 1, 2, 3, 4]
    assert blocked_seen == []

    gate.set()
    await emitter.aclose(drain_timeout=None)
    assert blocked_seen == [0, 1, 2, 3, 4]


async def test_async_listener_on_two_channels_keeps_one_order() -> None:
    emitter = EventEmitter()
    seen: list[str] = []

    async def record(event: str) -> None:
        await asyncio.sleep(0)
        seen.append(event)

    emitter.on("a", record)
    emitter.on("b", record)
    for event in ["a1", "b1", "a2", "b2"]:
        emitter.emit(event[0], event)
    await emitter.aclose(drain_timeout=None)

    assert seen == ["a1", "b1", "a2", "b2"]


async def test_async_callable_object_is_treated_as_async() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.seen: list[int] = []

        async def __call__(self, event: int) -> None:
            self.seen.append(event)

    recorder = Recorder()
    emitter = EventEmitter()
    errors = _errors(emitter)
    emitter.on("a", recorder)
    emitter.emit("a", 7)
    assert recorder.seen == []  # queued, not run inline
    await emitter.aclose(drain_timeout=None)

    assert recorder.seen == [7]
    assert errors == []


async def test_async_mock_and_partial_are_treated_as_async() -> None:
    emitter = EventEmitter()
    errors = _errors(emitter)
    mock = AsyncMock()
    seen: list[tuple[str, int]] = []

    async def tagged(tag: str, event: int) -> None:
        seen.append((tag, event))

    emitter.on("a", mock)
    emitter.on("a", functools.partial(tagged, "p"))
    emitter.emit("a", 1)
    await emitter.aclose(drain_timeout=None)

    mock.assert_awaited_once_with(1)
    assert seen == [("p", 1)]
    assert errors == []


def test_async_listener_without_a_running_loop_is_reported() -> None:
    emitter = EventEmitter()
    errors = _errors(emitter)

    async def handler(event: int) -> None:
        raise AssertionError("must not run")

    emitter.on("a", handler)
    emitter.emit("a", 1)  # must not raise

    assert len(errors) == 1
    assert errors[0].source == "listener"
    assert errors[0].code == "no_running_loop"
    assert "no running event loop" in errors[0].message


async def test_sync_listener_returning_a_coroutine_is_reported() -> None:
    emitter = EventEmitter()
    errors = _errors(emitter)
    ran: list[int] = []

    async def work(event: int) -> None:
        ran.append(event)

    emitter.on("a", lambda e: work(e))
    emitter.emit("a", 1)
    await emitter.aclose(drain_timeout=None)

    assert ran == []
    assert [e.code for e in errors] == ["listener_returned_awaitable"]


# -- listener errors ------------------------------------------------------------------------------


def test_raising_sync_listener_is_logged_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    emitter = EventEmitter()
    errors = _errors(emitter)
    after: list[int] = []
    boom = ValueError("boom")

    def bad(event: int) -> None:
        raise boom

    emitter.on("a", bad)
    emitter.on("a", after.append)
    with caplog.at_level(logging.ERROR, logger="voicewire.emitter"):
        emitter.emit("a", 1)

    assert after == [1]  # the next listener still ran
    assert len(errors) == 1
    assert errors[0].source == "listener"
    assert errors[0].error is boom
    assert errors[0].details["channel"] == "a"
    assert "boom" in errors[0].message
    assert any(r.name == "voicewire.emitter" and r.exc_info for r in caplog.records)


async def test_raising_async_listener_is_reported() -> None:
    emitter = EventEmitter()
    reported: asyncio.Future[ErrorEvent] = asyncio.get_running_loop().create_future()
    emitter.on("error", reported.set_result)

    async def bad(event: int) -> None:
        await asyncio.sleep(0)
        raise RuntimeError(f"failed on {event}")

    emitter.on("a", bad)
    emitter.emit("a", 3)
    error = await reported

    assert error.source == "listener"
    assert isinstance(error.error, RuntimeError)
    assert "failed on 3" in error.message
    await emitter.aclose()


def test_raising_error_listener_does_not_recurse(caplog: pytest.LogCaptureFixture) -> None:
    emitter = EventEmitter()
    error_calls: list[ErrorEvent] = []

    def bad_error_listener(event: ErrorEvent) -> None:
        error_calls.append(event)
        raise RuntimeError("error handler broken")

    def bad(event: int) -> None:
        raise ValueError("first failure")

    emitter.on("error", bad_error_listener)
    emitter.on("a", bad)
    with caplog.at_level(logging.ERROR, logger="voicewire.emitter"):
        emitter.emit("a", 1)
        emitter.emit("error", ErrorEvent(message="direct"))

    # One call per error event; the handler's own failures were only logged.
    assert len(error_calls) == 2
    assert error_calls[0].source == "listener"
    assert error_calls[1].message == "direct"
    failures = [r for r in caplog.records if "bad_error_listener" in r.getMessage()]
    assert len(failures) == 2


# -- events() -------------------------------------------------------------------------------------


async def test_events_with_channels_receives_only_those() -> None:
    emitter = EventEmitter()
    stream = emitter.events("a", WILDCARD)
    emitter.emit("a", 1)
    emitter.emit("b", 2)
    emitter.emit(WILDCARD, 3)
    await emitter.aclose()

    assert [event async for event in stream] == [1, 3]


async def test_events_without_channels_receives_everything() -> None:
    emitter = EventEmitter()
    stream = emitter.events()
    emitter.emit("a", 1)
    emitter.emit(WILDCARD, 2)
    emitter.emit("error", 3)
    await emitter.aclose()

    assert [event async for event in stream] == [1, 2, 3]


async def test_iteration_ends_when_the_emitter_closes_while_a_consumer_waits() -> None:
    emitter = EventEmitter()
    received: list[int] = []
    waiting = asyncio.Event()

    async def consume() -> None:
        async with emitter.events("a") as stream:
            emitter.emit("a", 1)
            waiting.set()
            async for event in stream:
                received.append(event)

    consumer = asyncio.create_task(consume())
    # Once set, the consumer takes the event and blocks on the empty queue before yielding.
    await waiting.wait()
    await emitter.aclose()
    await consumer

    assert received == [1]


async def test_stream_aclose_detaches_and_discards() -> None:
    emitter = EventEmitter()
    stream = emitter.events("a")
    emitter.emit("a", 1)
    assert emitter.has_subscribers("a")

    await stream.aclose()
    await stream.aclose()  # idempotent

    assert stream.closed
    assert not emitter.has_subscribers("a")
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_abandoned_stream_is_forgotten() -> None:
    emitter = EventEmitter()
    emitter.events("a")
    gc.collect()

    assert not emitter.has_subscribers("a")


def test_events_rejects_bad_arguments() -> None:
    emitter = EventEmitter()
    with pytest.raises(ValueError, match="maxsize"):
        emitter.events(maxsize=0)
    with pytest.raises(ValueError, match="overflow"):
        emitter.events(overflow="block")  # type: ignore[arg-type]


async def test_overflow_drop_oldest_keeps_the_latest_and_reports_once_per_burst() -> None:
    emitter = EventEmitter()
    errors = _errors(emitter)
    stream = emitter.events("a", maxsize=3, overflow="drop_oldest")

    for index in range(5):
        emitter.emit("a", index)

    assert stream.dropped == 2
    assert len(errors) == 1
    assert errors[0].source == "overflow"
    assert errors[0].code == "event_queue_overflow"
    assert errors[0].details["maxsize"] == 3

    assert await stream.__anext__() == 2  # the consumer makes room: the burst is over
    emitter.emit("a", 5)
    emitter.emit("a", 6)  # full again: a new burst, reported again

    assert stream.dropped == 3
    assert len(errors) == 2
    assert _drain_nowait(stream) == [4, 5, 6]
    await stream.aclose()


async def test_overflow_drop_newest_keeps_the_earliest() -> None:
    emitter = EventEmitter()
    errors = _errors(emitter)
    stream = emitter.events("a", maxsize=3, overflow="drop_newest")

    for index in range(6):
        emitter.emit("a", index)

    assert stream.dropped == 3
    assert [e.code for e in errors] == ["event_queue_overflow"]
    assert _drain_nowait(stream) == [0, 1, 2]
    await stream.aclose()


async def test_overflow_report_reaches_a_full_catch_all_stream_without_looping(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emitter = EventEmitter()
    stream = emitter.events(maxsize=2, overflow="drop_oldest")
    with caplog.at_level(logging.WARNING, logger="voicewire.emitter"):
        for index in range(3):
            emitter.emit("a", index)

    # 0 dropped for 2, then 1 dropped for the report: the consumer learns of the loss in-band.
    items = _drain_nowait(stream)
    assert items[0] == 2
    assert isinstance(items[1], ErrorEvent)
    assert items[1].code == "event_queue_overflow"
    assert stream.dropped == 2
    assert len([r for r in caplog.records if "full" in r.getMessage()]) == 1
    await stream.aclose()


# -- shutdown -------------------------------------------------------------------------------------


async def test_aclose_cancels_blocked_listeners_and_leaves_no_task() -> None:
    before = asyncio.all_tasks()
    emitter = EventEmitter()
    never = asyncio.Event()
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def stuck(event: int) -> None:
        started.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def other(event: int) -> None:
        await never.wait()

    emitter.on("a", stuck)
    emitter.on("a", other)
    stream = emitter.events("a")
    emitter.emit("a", 1)
    emitter.emit("a", 2)
    await started.wait()
    assert asyncio.all_tasks() != before

    await emitter.aclose(drain_timeout=0)

    assert cancelled == [True]
    assert asyncio.all_tasks() == before
    assert stream.closed


async def test_aclose_drains_backlogs_first() -> None:
    before = asyncio.all_tasks()
    emitter = EventEmitter()
    seen: list[int] = []

    async def record(event: int) -> None:
        await asyncio.sleep(0)
        seen.append(event)

    emitter.on("a", record)
    for index in range(10):
        emitter.emit("a", index)
    await emitter.aclose(drain_timeout=None)

    assert seen == list(range(10))
    assert asyncio.all_tasks() == before


async def test_aclose_from_inside_an_async_listener_does_not_deadlock() -> None:
    emitter = EventEmitter()
    closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def closer(event: int) -> None:
        await emitter.aclose(drain_timeout=None)
        closed.set_result(None)

    emitter.on("a", closer)
    emitter.emit("a", 1)
    await closed
    await emitter.aclose()


async def test_emitter_is_usable_after_aclose() -> None:
    emitter = EventEmitter()
    sync_seen: list[int] = []
    async_seen: list[int] = []

    async def record(event: int) -> None:
        async_seen.append(event)

    emitter.on("a", sync_seen.append)
    emitter.on("a", record)
    await emitter.aclose()

    stream = emitter.events("a")
    emitter.emit("a", 1)
    await emitter.aclose(drain_timeout=None)

    assert sync_seen == [1]
    assert async_seen == [1]
    assert [event async for event in stream] == [1]


async def test_a_slow_async_listener_is_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emitter = EventEmitter()
    never = asyncio.Event()

    async def stuck(event: int) -> None:
        await never.wait()

    emitter.on("a", stuck)
    with caplog.at_level(logging.WARNING, logger="voicewire.emitter"):
        for index in range(2500):
            emitter.emit("a", index)
    await emitter.aclose(drain_timeout=0)

    backlog_warnings = [r for r in caplog.records if "does not keep up" in r.getMessage()]
    assert len(backlog_warnings) == 1
    assert "stuck" in backlog_warnings[0].getMessage()
