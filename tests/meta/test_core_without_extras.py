"""The core imports without its optional extras: aiohttp and websockets are not its dependencies.

A telephony plugin on another web server uses ``voicewire.bridge`` (the bridge, ``DialectEdge``,
``MediaSocket``, the dialect helpers) with neither installed; only the ``aiohttp_socket`` and
``aiohttp_server`` modules of ``voicewire.bridge`` need aiohttp.
The probe runs in a fresh interpreter that refuses to import either library.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import importlib.abc
import sys


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("aiohttp", "websockets"):
            raise ModuleNotFoundError(f"No module named {name!r} (refused)", name=name)
        return None


sys.meta_path.insert(0, Refuse())
import voicewire
import voicewire.bridge
from voicewire.bridge import CallBridge, DialectEdge, MarkTable, MediaSocket, MessageRateLimit

assert MessageRateLimit(rate=50, burst=10).allow(0.0)
assert MarkTable().issue("t") == "m1"
for module in ("aiohttp_socket", "aiohttp_server"):
    try:
        __import__(f"voicewire.bridge.{module}")
    except ModuleNotFoundError as exc:
        print(f"{module}:", exc.name)
"""


def test_the_bridge_imports_without_aiohttp_or_websockets() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["aiohttp_socket: aiohttp", "aiohttp_server: aiohttp"]
