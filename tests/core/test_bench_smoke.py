"""Each benchmark under ``bench/`` runs in a tiny configuration and prints its table.

Nothing here looks at the figures (they depend on the machine): only that every script still
runs to completion, exits 0 and prints its table header. The three run concurrently, as
subprocesses, so the whole module takes about as long as the slowest one (a few seconds).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"

# script -> (tiny arguments, text its table header contains)
RUNS: dict[str, tuple[list[str], list[str]]] = {
    "audio.py": (["--seconds", "0.2"], ["pipeline", "us/chunk", "x real time"]),
    "openai_ws.py": (["--seconds", "0.3"], ["path", "rate", "unit"]),
    "bridge_load.py": (
        [
            *("--calls", "2", "--seconds", "1", "--warmup", "0.2", "--drain", "0.3"),
            *("--mark-floor", "--repeat", "2", "--count-bytecodes"),
        ],
        ["metric", "floor", "relay+marks", "bridge[off]", "target", "verdict"],
    ),
}
# script -> lines it must also print (below the table)
ALSO: dict[str, list[str]] = {
    "bridge_load.py": [
        "by round, bridge / floor of the same round:",
        "Python bytecodes run per call-minute (--count-bytecodes: main thread, in the window;",
    ]
}
TIMEOUT = 90.0

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="bench/bridge_load.py reads /proc"
)


@pytest.fixture(scope="module")
def finished() -> dict[str, subprocess.CompletedProcess[str]]:
    """Start every bench at once; wait for all; hand over their exit codes and output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("VOICEWIRE_DISABLE_PLUGINS", None)
    running = {
        script: subprocess.Popen(
            [sys.executable, str(BENCH / script), *arguments],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for script, (arguments, _) in RUNS.items()
    }
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        for script, proc in running.items():
            try:
                out, err = proc.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                err += f"\n(killed after {TIMEOUT:g} s)"
            results[script] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        for proc in running.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


@pytest.mark.parametrize("script", sorted(RUNS))
def test_bench_runs_and_prints_its_table(
    script: str, finished: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = finished[script]
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{result.stderr[-3000:]}"
    lines = result.stdout.splitlines()
    _, header_words = RUNS[script]
    header = next((line for line in lines if all(w in line for w in header_words)), None)
    assert header is not None, f"{script} printed no table header:\n{result.stdout[-3000:]}"
    assert lines.index(header) < len(lines) - 1, f"{script} printed a header and no rows"
    for line in ALSO.get(script, []):
        assert line in lines, f"{script} did not print {line!r}:\n{result.stdout[-3000:]}"


def test_bridge_load_counts_bytecodes_in_every_relay(
    finished: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    # bench/bytecode_counter.py runs each relay and counts between two signals: a relay that never
    # got them, or a counter that saw nothing, would leave a zero here.
    lines = finished["bridge_load.py"].stdout.splitlines()
    row = next((line for line in lines if line.startswith("all ")), None)
    assert row is not None, "no 'all' row of bytecode counts"
    figures = [int(cell.replace(",", "")) for cell in row.split()[1:] if cell[0].isdigit()]
    assert len(figures) == 3, row  # floor, relay+marks, bridge
    assert all(figure > 0 for figure in figures), row
