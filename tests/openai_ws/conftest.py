"""Shared fixtures of the openai_ws tests.

* The ONE strict validator of GA events (protocols.md §3.3): the official ``openai`` pydantic
  models accept unknown keys (``extra="allow"``), so validation also walks ``model_extra``
  recursively and fails on any key the models do not declare. Tests get it through the
  ``validate_client_event`` and ``validate_server_event`` fixtures.
* ``fake_server``: starts ``FakeRealtimeServer`` instances on loopback, closes them after the
  test, then validates strictly every client event each of them recorded, so that every frame a
  transport sent in a test is checked against the official models.
* ``make_transport``: builds ``OpenAIRealtimeWebSocket`` instances and closes them after the test.
* ``no_task_leaks``: fails a test that leaves an asyncio task running. The transport fixtures
  depend on it, so it is set up first and checked last, after everything else was closed.
* ``record``: an ``EventLog`` that keeps every event a transport emits and waits on them.

Test modules cannot import this file (pytest's importlib mode), so helpers travel as fixtures;
their types are imported under ``TYPE_CHECKING`` only.
"""

from __future__ import annotations

import asyncio
import json
import typing
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol, get_args, get_origin

import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import BaseModel

from voicewire.events import ConnectionChangeEvent, ErrorEvent, RawServerEvent
from voicewire.testing import FakeRealtimeServer
from voicewire_openai_ws import OpenAIRealtimeWebSocket

GUARD = 10.0
"""Seconds: a hang guard for every wait, never a timing assertion."""

# Keys the real service sends that the request-shaped models do not declare (protocols.md §3.3).
SERVER_EXTRAS: frozenset[str] = frozenset(
    {"$.session.object", "$.session.id", "$.session.expires_at", "$.obfuscation"}
)

# Every channel a model transport emits on (the "*" channel carries the raw server events).
CHANNELS = (
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
    "speech_started",
    "speech_stopped",
    "connection_change",
    "error",
    "reconnected",
)


# --- the strict validator ----------------------------------------------------------------------


def _by_type(alias: Any) -> dict[str, type[BaseModel]]:
    union = get_args(alias)[0] if get_origin(alias) is typing.Annotated else alias
    return {
        literal: cls
        for cls in get_args(union)
        for literal in get_args(cls.model_fields["type"].annotation)
    }


CLIENT_MODELS = _by_type(RealtimeClientEvent)
SERVER_MODELS = _by_type(RealtimeServerEvent)


def unknown_keys(obj: object, path: str = "$") -> list[str]:
    """Paths of every key the official models stored as ``model_extra``, recursively."""
    found: list[str] = []
    if isinstance(obj, BaseModel):
        found += [f"{path}.{key}" for key in obj.model_extra or {}]
        for name in type(obj).model_fields:
            found += unknown_keys(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            found += unknown_keys(value, f"{path}[{index}]")
    return found


def _strict(
    models: Mapping[str, type[BaseModel]],
    event: Mapping[str, Any],
    allow_extra: frozenset[str],
    side: str,
) -> BaseModel:
    # Through JSON, as the peer sees it: tuples become lists, floats stay floats.
    wire = json.loads(json.dumps(event))
    kind = wire["type"]
    if kind not in models:
        raise KeyError(f"{kind!r} is not a GA {side} event type of the official models")
    model = models[kind].model_validate(wire)
    extra = [path for path in unknown_keys(model) if path not in allow_extra]
    assert not extra, f"{kind}: fields unknown to the official model: {extra}"
    return model


def strict_client_event(
    event: Mapping[str, Any], allow_extra: frozenset[str] = frozenset()
) -> BaseModel:
    """Validate one client event strictly against the official GA model of its type.

    Raises:
        KeyError: Unknown event type.
        pydantic.ValidationError: Bad shape (missing field, wrong literal, ...).
        AssertionError: A key the official model does not declare.
    """
    return _strict(CLIENT_MODELS, event, allow_extra, "client")


def strict_server_event(
    event: Mapping[str, Any], allow_extra: frozenset[str] = SERVER_EXTRAS
) -> BaseModel:
    """Validate one server event strictly; by default allowing the keys the service adds."""
    return _strict(SERVER_MODELS, event, allow_extra, "server")


class EventValidator(Protocol):
    """The type of the ``validate_client_event`` / ``validate_server_event`` fixtures."""

    def __call__(
        self, event: Mapping[str, Any], allow_extra: frozenset[str] = ...
    ) -> BaseModel: ...


@pytest.fixture
def validate_client_event() -> EventValidator:
    """The strict client-event validator."""
    return strict_client_event


@pytest.fixture
def validate_server_event() -> EventValidator:
    """The strict server-event validator."""
    return strict_server_event


# --- tasks -------------------------------------------------------------------------------------


# --- the fake server ---------------------------------------------------------------------------


class ServerFactory(Protocol):
    """The type of the ``fake_server`` fixture: starts a server with ``FakeRealtimeServer``'s
    keyword arguments (``pace`` defaults to 0 here: audio as fast as possible)."""

    async def __call__(self, **kwargs: Any) -> FakeRealtimeServer: ...


@pytest.fixture
async def fake_server(no_task_leaks: None) -> AsyncIterator[ServerFactory]:
    """Start fake servers; after the test, close them and validate every client event."""
    servers: list[FakeRealtimeServer] = []

    async def start(**kwargs: Any) -> FakeRealtimeServer:
        kwargs.setdefault("pace", 0)
        server = FakeRealtimeServer(**kwargs)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()
    for server in servers:
        for record in server.sessions:
            assert not record.unparsed_frames, f"session {record.index}: {record.unparsed_frames}"
            for event in record.client_events:
                strict_client_event(event)


# --- transports --------------------------------------------------------------------------------


class TransportFactory(Protocol):
    """The type of the ``make_transport`` fixture: ``OpenAIRealtimeWebSocket`` keyword options
    (``plugin_observers`` defaults to ``False`` here, so installed plugins stay out of tests)."""

    def __call__(self, **kwargs: Any) -> OpenAIRealtimeWebSocket: ...


@pytest.fixture
async def make_transport(
    no_task_leaks: None, fake_server: ServerFactory
) -> AsyncIterator[TransportFactory]:
    """Build transports; close every one of them after the test (before the servers)."""
    made: list[OpenAIRealtimeWebSocket] = []

    def build(**kwargs: Any) -> OpenAIRealtimeWebSocket:
        kwargs.setdefault("plugin_observers", False)
        transport = OpenAIRealtimeWebSocket(**kwargs)
        made.append(transport)
        return transport

    yield build
    for transport in made:
        await asyncio.wait_for(transport.close(), GUARD)


# --- recording events --------------------------------------------------------------------------


class EventLog:
    """Every event one transport emits, in order, with a way to wait for a condition."""

    def __init__(self, transport: OpenAIRealtimeWebSocket) -> None:
        self.events: list[Any] = []
        self._changed = asyncio.Event()
        for channel in CHANNELS:
            transport.on(channel, self._add)

    def _add(self, event: Any) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: str) -> list[Any]:
        """Events of one ``type`` (``server_event`` for the raw ones)."""
        return [e for e in self.events if e.type == kind]

    def raw_types(self) -> list[str]:
        """The ``type`` of every raw server event, in order."""
        return [str(e.message.get("type")) for e in self.events if isinstance(e, RawServerEvent)]

    def statuses(self) -> list[str]:
        """Every status of ``connection_change`` events, in order."""
        return [e.status for e in self.events if isinstance(e, ConnectionChangeEvent)]

    def errors(self, code: str | None = None) -> list[ErrorEvent]:
        """Error events (with this code, if given)."""
        return [
            e for e in self.events if isinstance(e, ErrorEvent) and (code is None or e.code == code)
        ]

    def count(self, kind: str) -> int:
        """How many events of one ``type`` arrived."""
        return sum(1 for e in self.events if e.type == kind)

    async def wait_for(
        self, predicate: Callable[[], bool], what: str = "condition", timeout: float = GUARD
    ) -> None:
        """Wait until ``predicate()`` holds; re-checked after every event (a hang guard only)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [getattr(e, "type", "?") for e in self.events][-25:]
                raise AssertionError(f"{what}: not within {timeout} s; last events: {seen}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                continue

    async def wait_event(self, kind: str, count: int = 1, timeout: float = GUARD) -> Any:
        """Wait until ``count`` events of ``kind`` arrived; return the last of them."""
        await self.wait_for(lambda: self.count(kind) >= count, f"{count} x {kind!r}", timeout)
        return self.of(kind)[count - 1]

    async def wait_raw(self, kind: str, count: int = 1, timeout: float = GUARD) -> Any:
        """Wait until ``count`` raw server events of ``kind`` arrived; return the last."""
        await self.wait_for(
            lambda: self.raw_types().count(kind) >= count, f"{count} x raw {kind!r}", timeout
        )
        return [e for e in self.of("server_event") if e.message.get("type") == kind][count - 1]


@pytest.fixture
def record() -> Callable[[OpenAIRealtimeWebSocket], EventLog]:
    """``record(transport)`` starts an :class:`EventLog` of it."""
    return EventLog
