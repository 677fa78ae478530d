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
count at low load, where every frame is still handled as it arrives: a few calls before Python
3.12, one call from 3.12 on (instruction events cost more there).
"""

from __future__ import annotations

import collections
import json
import os
import runpy
import signal
import sys
import threading
from types import CodeType, FrameType
from typing import Any

BYTECODES_FILE = "VOICEWIRE_BENCH_BYTECODES_FILE"
_TOOL = 2  # sys.monitoring.PROFILER_ID: the relays run no profiler of their own


class BytecodeCounter:
    """Counts the bytecodes the main thread executes, per function, while switched on.

    Python 3.12 and later: ``sys.monitoring`` instruction events (``sys.settrace`` with
    ``f_trace_opcodes`` misses most of them there). Before: ``sys.settrace`` opcode events.
    Counts of different Python versions are not comparable: their bytecode differs.
    """

    def __init__(self) -> None:
        self._main = threading.get_ident()
        self._by_frame: collections.Counter[tuple[str, str]] = collections.Counter()
        self._by_code: collections.Counter[CodeType] = collections.Counter()

    # Python 3.12 and later ------------------------------------------------------------------

    def _instruction(self, code: CodeType, offset: int) -> None:
        if threading.get_ident() == self._main:
            self._by_code[code] += 1

    # before 3.12 ------------------------------------------------------------------------------

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            self._by_frame[(frame.f_globals.get("__name__", "?"), frame.f_code.co_name)] += 1
        return self._local

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        # Called when a frame starts or a coroutine resumes: counted from here on.
        frame.f_trace_lines = False
        frame.f_trace_opcodes = True
        return self._local

    # ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Count from now on."""
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is None:
            sys.settrace(self._global)
            return
        monitoring.use_tool_id(_TOOL, "bytecode_counter")
        monitoring.register_callback(_TOOL, monitoring.events.INSTRUCTION, self._instruction)
        monitoring.set_events(_TOOL, monitoring.events.INSTRUCTION)

    def stop(self, path: str) -> None:
        """Stop counting and write the counts to ``path``."""
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is None:
            sys.settrace(None)
        else:
            monitoring.set_events(_TOOL, 0)
            monitoring.register_callback(_TOOL, monitoring.events.INSTRUCTION, None)
            monitoring.free_tool_id(_TOOL)
        counts = collections.Counter(self._by_frame)
        modules = _modules_by_file()
        for code, n in self._by_code.items():
            counts[(modules.get(code.co_filename, code.co_filename), code.co_name)] += n
        with open(path, "w", encoding="utf-8") as out:
            json.dump({f"{module}:{function}": n for (module, function), n in counts.items()}, out)


def _modules_by_file() -> dict[str, str]:
    # A code object knows its file, not its module: name it as the frame-based count does.
    found: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            found.setdefault(path, name)
    return found


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
