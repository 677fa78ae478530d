"""Run a Python program while counting the bytecodes it executes, between two signals.

``bench/bridge_load.py --count-bytecodes`` starts each relay under test through this launcher:

    python bench/bytecode_counter.py bench/bridge_load_relay.py --realtime-url ...
    python bench/bytecode_counter.py -m voicewire.cli serve --port 0 ...

``SIGUSR1`` starts counting and ``SIGUSR2`` stops it and writes the counts, as JSON, to the file
named by ``VOICEWIRE_BENCH_BYTECODES_FILE``: ``{"module:function": bytecodes, ...}``, keyed by
the ``__name__`` of the module that holds the function. Only the main thread is counted (the
event loop's thread; both relays run everything that touches a frame there).

Why count bytecodes when the bench measures CPU seconds: the CPU ratio to the floor moves by
about 0.1 x from run to run on a shared machine, more than one change to the per-frame path is
worth. The number of bytecodes a relay runs for the same frames barely moves, so it shows such a
change, and where the work is. Bytecodes rather than lines, so that how code is laid out does not
count. It is a proxy: a call into C (JSON decoding, base64, zlib) is one bytecode whatever it
costs, and the kernel's share is not in it. The counting makes the relay many times slower, so
count at low load (a few calls), where every frame is still handled as it arrives.
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

BYTECODES_FILE = "VOICEWIRE_BENCH_BYTECODES_FILE"


class BytecodeCounter:
    """Counts ``opcode`` trace events per function while switched on."""

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            self.counts[(frame.f_globals.get("__name__", "?"), frame.f_code.co_name)] += 1
        return self._local

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        # Called when a frame starts or a coroutine resumes: counted from here on.
        frame.f_trace_lines = False
        frame.f_trace_opcodes = True
        return self._local

    def start(self) -> None:
        """Count from now on (the calling thread)."""
        sys.settrace(self._global)

    def stop(self, path: str) -> None:
        """Stop counting and write the counts to ``path``."""
        sys.settrace(None)
        counts = {f"{module}:{function}": n for (module, function), n in self.counts.items()}
        with open(path, "w", encoding="utf-8") as out:
            json.dump(counts, out)


def main(argv: list[str]) -> None:
    """``[-m MODULE | SCRIPT] ARGS...``: run it as ``__main__`` with the signals installed."""
    if not argv:
        raise SystemExit("usage: bytecode_counter.py (-m MODULE | SCRIPT) [ARGS...]")
    path = os.environ.get(BYTECODES_FILE)
    if not path:
        raise SystemExit(f"{BYTECODES_FILE} names no file to write the counts to")
    counter = BytecodeCounter()
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
