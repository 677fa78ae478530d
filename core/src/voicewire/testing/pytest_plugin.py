"""An opt-in pytest plugin for plugin authors: fixtures over voicewire's test kit.

Not loaded automatically. Enable it in your top-level ``conftest.py``::

    pytest_plugins = ["voicewire.testing.pytest_plugin"]

or for one run with ``pytest -p voicewire.testing.pytest_plugin``. It needs ``pytest-asyncio``
(the async fixtures are ``pytest_asyncio`` fixtures, so they work in its strict and auto modes)
and ``aiohttp``/``websockets`` for the servers.

Fixtures:

* ``fake_realtime_server``: a started :class:`~voicewire.testing.FakeRealtimeServer` in echo
  mode, closed after the test. ``@pytest.mark.voicewire_fake_server(pace=0, ...)`` passes
  keyword arguments to it.
* ``fake_realtime_factory``: an async callable that starts servers with any options (modes,
  scripts, faults); all are closed after the test.
* ``no_task_leaks``: fails the test if it leaves asyncio tasks running. Request it first (or
  make it autouse in your conftest) so that its check runs after every other fixture closed.
* ``voicewire_plugin_manager``: a fresh :class:`~voicewire.plugins.PluginManager`, installed
  as the process-wide manager for the test (``voicewire.create_edge`` and friends use it).
  ``@pytest.mark.voicewire_plugins(plugin, ("name", plugin), entry_points=False)`` chooses the
  plugins registered in it.

Ini option ``voicewire_task_leak_grace`` (seconds, default 1.0): how long finishing tasks get
before ``no_task_leaks`` counts them as leaked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

try:
    import pytest_asyncio
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "voicewire.testing.pytest_plugin needs pytest-asyncio (pip install pytest-asyncio)"
    ) from exc

if TYPE_CHECKING:
    from voicewire.plugins import PluginManager
    from voicewire.testing.fake_realtime import FakeRealtimeServer

__all__ = [
    "FakeRealtimeFactory",
    "fake_realtime_factory",
    "fake_realtime_server",
    "no_task_leaks",
    "voicewire_plugin_manager",
]

_GRACE_INI = "voicewire_task_leak_grace"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ini option of the leak check."""
    parser.addini(
        _GRACE_INI,
        "seconds finishing asyncio tasks get before no_task_leaks counts them as leaked",
        default="1.0",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the plugin's markers, so ``--strict-markers`` accepts them."""
    config.addinivalue_line(
        "markers",
        "voicewire_fake_server(**options): keyword arguments of the fake_realtime_server fixture's"
        " FakeRealtimeServer",
    )
    config.addinivalue_line(
        "markers",
        "voicewire_plugins(*plugins, entry_points=False): plugins (objects or (name, object)"
        " pairs) registered in the voicewire_plugin_manager fixture",
    )


class FakeRealtimeFactory:
    """The ``fake_realtime_factory`` fixture: starts fake servers, closes them all at the end."""

    def __init__(self) -> None:
        self.servers: list[FakeRealtimeServer] = []

    async def __call__(self, **options: Any) -> FakeRealtimeServer:
        """Start a :class:`~voicewire.testing.FakeRealtimeServer` with ``options``.

        Args:
            **options: Any keyword argument of ``FakeRealtimeServer`` (``mode``, ``script``,
                ``faults``, ``pace``, ``api_key``, ...).

        Returns:
            The started server; read its URL from ``server.url``.
        """
        from voicewire.testing.fake_realtime import FakeRealtimeServer

        server = FakeRealtimeServer(**options)
        await server.start()
        self.servers.append(server)
        return server

    async def aclose(self) -> None:
        """Close every server started, newest first."""
        while self.servers:
            await self.servers.pop().close()


@pytest_asyncio.fixture
async def fake_realtime_server(request: pytest.FixtureRequest) -> AsyncIterator[FakeRealtimeServer]:
    """A started fake realtime server (echo mode unless the marker says otherwise)."""
    from voicewire.testing.fake_realtime import FakeRealtimeServer

    marker = request.node.get_closest_marker("voicewire_fake_server")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    async with FakeRealtimeServer(**options) as server:
        yield server


@pytest_asyncio.fixture
async def fake_realtime_factory() -> AsyncIterator[FakeRealtimeFactory]:
    """Start fake realtime servers with any options; every one is closed after the test."""
    factory = FakeRealtimeFactory()
    try:
        yield factory
    finally:
        await factory.aclose()


@pytest_asyncio.fixture
async def no_task_leaks(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Fail the test if asyncio tasks it started are still running once it is over."""
    from voicewire.testing.conformance import tasks_left_running

    grace = float(request.config.getini(_GRACE_INI))
    before = set(asyncio.all_tasks())
    yield
    leaked = await tasks_left_running(before, grace=grace)
    if leaked:
        names = sorted(f"{task.get_name()}: {task.get_coro()!r}" for task in leaked)
        # Cancelled here so they cannot disturb the next test's event loop.
        for task in leaked:
            task.cancel()
        await asyncio.gather(*leaked, return_exceptions=True)
        pytest.fail(f"{len(leaked)} asyncio task(s) left running: {names}", pytrace=False)


@pytest.fixture
def voicewire_plugin_manager(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> PluginManager:
    """A fresh plugin manager, process-wide for the test, with the marker's plugins registered."""
    import voicewire.plugins
    from voicewire.plugins import PluginManager

    marker = request.node.get_closest_marker("voicewire_plugins")
    plugins: tuple[Any, ...] = marker.args if marker is not None else ()
    load_entry_points = bool(marker.kwargs.get("entry_points", False)) if marker else False
    manager = PluginManager(disabled=())
    if load_entry_points:
        manager.load_entrypoint_plugins()
    for plugin in plugins:
        if isinstance(plugin, tuple):
            name, obj = plugin
            manager.register(obj, name=name)
        else:
            manager.register(plugin)
    # voicewire has no public setter for the process-wide manager; swapping the module's slot
    # (restored by monkeypatch) makes create_transport/create_edge and observers use this one.
    monkeypatch.setattr(voicewire.plugins, "_manager", manager)
    return manager
