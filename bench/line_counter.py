"""Run a Python program while counting the lines of Python it executes, between two signals.

``bench/bridge_load.py --count-lines`` starts each relay under test through this launcher:

    python bench/line_counter.py bench/bridge_load_relay.py --realtime-url ...
    python bench/line_counter.py -m voicewire.cli serve --port 0 ...

``SIGUSR1`` starts counting and ``SIGUSR2`` stops it and writes the counts, as JSON, to the file
named by ``VOICEWIRE_BENCH_LINES_FILE``: ``{"module:function": lines, ...}``, keyed by the
``__name__`` of the module that holds the function. Only the main thread is counted (the event
loop's thread; both relays run everything that touches a frame there).

Why count lines when the bench measures CPU seconds: the CPU ratio to the floor moves by about
0.1 x from run to run on a shared machine, more than one change to the per-frame path is worth.
The number of Python lines a relay runs for the same frames barely moves, so it shows such a
change, and where the lines are. It is a proxy: a line of C-accelerated JSON decoding costs more
than a line that compares two ints, and the kernel's share is not in it. The counting itself makes
the relay several times slower, so count at low load (a few calls), where every frame is still
handled as it arrives.
"""

from __future__ import annotations

import collections
import json
import os
import runpy
import signal
import sys
from types import FrameType
from typing import Any

LINES_FILE = "VOICEWIRE_BENCH_LINES_FILE"


class LineCounter:
    """Counts ``line`` trace events per function while switched on."""

    def __init__(self) -> None:
        self.lines: collections.Counter[tuple[str, str]] = collections.Counter()

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.lines[(frame.f_globals.get("__name__", "?"), frame.f_code.co_name)] += 1
        return self._local

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        # Called when a frame starts or a coroutine resumes: its lines are counted from here on.
        return self._local

    def start(self) -> None:
        """Count from now on (the calling thread)."""
        sys.settrace(self._global)

    def stop(self, path: str) -> None:
        """Stop counting and write the counts to ``path``."""
        sys.settrace(None)
        counts = {f"{module}:{function}": n for (module, function), n in self.lines.items()}
        with open(path, "w", encoding="utf-8") as out:
            json.dump(counts, out)


def main(argv: list[str]) -> None:
    """``[-m MODULE | SCRIPT] ARGS...``: run it as ``__main__`` with the signals installed."""
    if not argv:
        raise SystemExit("usage: line_counter.py (-m MODULE | SCRIPT) [ARGS...]")
    path = os.environ.get(LINES_FILE)
    if not path:
        raise SystemExit(f"{LINES_FILE} names no file to write the counts to")
    counter = LineCounter()
    signal.signal(signal.SIGUSR1, lambda signum, frame: counter.start())
    signal.signal(signal.SIGUSR2, lambda signum, frame: counter.stop(path))
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
