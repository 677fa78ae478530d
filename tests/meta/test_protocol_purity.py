"""Protocol code stays sans-I/O: no event loop, no network library, no tracing, no clock.

The protocol packages (``plugins/*/src/*/protocol/``), the bridge's ``protocol`` module, its
helpers for dialects (``frames``, ``marks``) and the example plugins' dialects
(``examples/*/src/*/protocol.py``, each a ``voicewire.bridge.Dialect``) are pure functions and
state machines over bytes, dicts and numbers. This test reads their source (it never imports it)
and fails on any import of asyncio, aiohttp, websockets or opentelemetry, and on
any reading of a clock (or sleeping): time enters protocol code as a number passed in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN_MODULES = frozenset({"asyncio", "aiohttp", "websockets", "opentelemetry"})
CLOCK_FUNCTIONS = {
    "time": frozenset(
        {
            "time",
            "time_ns",
            "monotonic",
            "monotonic_ns",
            "perf_counter",
            "perf_counter_ns",
            "process_time",
            "process_time_ns",
            "thread_time",
            "thread_time_ns",
            "clock_gettime",
            "clock_gettime_ns",
            "localtime",
            "gmtime",
            "ctime",
            "sleep",
        }
    ),
    # datetime.datetime.now() / date.today(): reached through the class, so matched by attribute.
    "datetime": frozenset({"now", "utcnow", "today"}),
}


def protocol_sources(root: Path = ROOT) -> list[Path]:
    """Every protocol source file of the repository, sorted."""
    found = set(root.glob("plugins/*/src/*/protocol/**/*.py"))
    found.update(root.glob("core/src/voicewire/bridge/protocol.py"))
    found.update(root.glob("core/src/voicewire/bridge/frames.py"))
    found.update(root.glob("core/src/voicewire/bridge/marks.py"))
    found.update(root.glob("core/src/voicewire/bridge/protocol/**/*.py"))
    found.update(root.glob("examples/*/src/*/protocol.py"))
    return sorted(found)


def violations(source: str, filename: str = "<source>") -> list[str]:
    """Describe every forbidden import or clock read in ``source`` (empty when clean)."""
    tree = ast.parse(source, filename)
    found: list[str] = []
    # Local names bound to a clock module (``time``) or clock class (``datetime.datetime``), mapped
    # to the key of CLOCK_FUNCTIONS that lists their forbidden attributes.
    clock_owners: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in FORBIDDEN_MODULES:
                    found.append(f"line {node.lineno}: import {alias.name}")
                if top in CLOCK_FUNCTIONS:
                    clock_owners[alias.asname or top] = top
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            top = node.module.split(".")[0]
            if top in FORBIDDEN_MODULES:
                found.append(f"line {node.lineno}: from {node.module} import ...")
            for alias in node.names:
                if alias.name in CLOCK_FUNCTIONS.get(top, ()):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                elif top == "datetime":
                    clock_owners[alias.asname or alias.name] = "datetime"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = clock_owners.get(_root_name(node.value) or "")
            if owner is not None and node.attr in CLOCK_FUNCTIONS[owner]:
                found.append(f"line {node.lineno}: reads the clock ({ast.unparse(node)})")
    return found


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


@pytest.mark.parametrize("path", protocol_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_protocol_module_is_sans_io(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), str(path)) == []


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "import asyncio.queues as q",
        "from aiohttp import web",
        "import websockets.asyncio.client",
        "from opentelemetry import trace",
        "import time\nnow = time.monotonic()",
        "import time as t\nstamp = t.time()",
        "from time import perf_counter",
        "from time import monotonic as clock",
        "import datetime\nx = datetime.datetime.now()",
        "from datetime import datetime\nx = datetime.utcnow()",
        "def f():\n    import asyncio\n",
    ],
)
def test_checker_catches_forbidden_code(source: str) -> None:
    assert violations(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "import json\nimport base64",
        "from dataclasses import dataclass",
        "def advance(state, now_ms: float):\n    return state.deadline - now_ms",
        "from datetime import timedelta\nx = timedelta(seconds=1)",
        "from . import messages",
        "value.time = 3\nprint(value.time)",
    ],
)
def test_checker_accepts_pure_code(source: str) -> None:
    assert violations(source) == []


def test_protocol_sources_finds_every_location(tmp_path: Path) -> None:
    plugin_file = tmp_path / "plugins/acme/src/voicewire_acme/protocol/messages.py"
    nested = tmp_path / "plugins/acme/src/voicewire_acme/protocol/sub/more.py"
    bridge = tmp_path / "core/src/voicewire/bridge/protocol.py"
    example = tmp_path / "examples/acme/src/voicewire_acme/protocol.py"
    elsewhere = tmp_path / "plugins/acme/src/voicewire_acme/transport.py"
    example_edge = tmp_path / "examples/acme/src/voicewire_acme/edge.py"
    for path in (plugin_file, nested, bridge, example, elsewhere, example_edge):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")
    assert protocol_sources(tmp_path) == sorted([plugin_file, nested, bridge, example])
