"""Concurrent Twilio calls through ``voicewire serve``, next to a bare pass-through relay.

Every setup runs in its own processes, one after the other, in the same run:

* the fake model (``FakeRealtimeServer`` in echo mode, the server ``voicewire fake-model`` runs,
  with its built-in validation and a tap that timestamps tagged audio:
  ``bridge_load_peers.py model``);
* the relay under test: the floor (``bridge_load_relay.py``, a bare aiohttp + websockets
  pass-through) or ``voicewire serve --insecure-skip-signature`` (through
  ``bridge_load_serve.py`` for ``--trace on``);
* the simulated Twilio callers (``bridge_load_peers.py caller``, about 50 calls per process).

Each caller streams 20 ms mu-law frames on a fixed schedule (0.8 s of tone every 3.2 s, silence
otherwise); the fake model echoes each spoken turn. Every frame carries a tag (call, sequence) in
its audio bytes, so the model's tap and the callers timestamp the same bytes on both sides of the
relay (CLOCK_MONOTONIC is shared by the processes). Measured over a window of ``--seconds`` after
every call is connected and warmed up:

* inbound latency: caller frame sent -> the same bytes received by the fake model;
* outbound latency: model delta sent -> the same bytes received by the caller;
* frames lost: frames sent in the window that never arrived (either direction);
* CPU seconds per call-minute of the relay process (``/proc/PID/stat`` utime + stime);
* peak RSS (``VmHWM``) and RSS per call ((``VmRSS`` at the end of the window - idle) / calls).

The table gives each figure of the bridge as a ratio to the floor and a PASS/MISS against the
targets (set for 100 calls). Nothing is asserted: it prints.

    python bench/bridge_load.py [--calls 20] [--seconds 20] [--trace off|on|blocked]
    python bench/bridge_load.py --calls 100 --seconds 30
    python bench/bridge_load.py --compare-trace      # the three trace modes, one run
    python bench/bridge_load.py --repeat 3           # alternating rounds, pooled
    python bench/bridge_load.py --mark-floor         # and the floor plus one mark per message
    python bench/bridge_load.py --calls 3 --count-bytecodes  # and the bytecodes each relay runs

docs/performance.md explains every line of the table.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import inspect
import json
import math
import os
import platform
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
PEERS = HERE / "bridge_load_peers.py"
RELAY = HERE / "bridge_load_relay.py"
SERVE = HERE / "bridge_load_serve.py"
BYTECODE_COUNTER = HERE / "bytecode_counter.py"
CALLS_PER_CALLER_PROCESS = 50
REALTIME_BUDGET_MS = 100.0  # a held call delivers 99 % of its frames (each way) within this
PACING_BUDGET_MS = 20.0  # a caller kept its pacing if 99 % of its frames left within a frame
TRACE_MODES = ("off", "on", "blocked")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- processes ------------------------------------------------------------------------------


def _first_line(proc: subprocess.Popen[str], timeout: float, what: str) -> str:
    """The first line ``proc`` prints, or an error naming ``what``."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError(f"{what}: printed nothing within {timeout:g} s")
    line = proc.stdout.readline().strip()
    if not line:
        raise RuntimeError(f"{what}: exited with {proc.wait()} before it was ready")
    return line


def _start(
    cmd: list[str], what: str, stderr: IO[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, start_new_session=True
    )
    try:
        line = _first_line(proc, 60.0, what)
    except BaseException:
        _stop(proc)
        raise
    return proc, line


def _stop(proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from ``/proc/PID/stat``."""
    user, system = cpu_split(pid)
    return user + system


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process (all its threads), from ``/proc/PID/stat``."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot, from ``/proc/stat``."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(value) for value in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def memory_kib(pid: int, key: str) -> int:
    """A ``kB`` line of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def _sleep_until(deadline_ns: int) -> None:
    delay = (deadline_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        time.sleep(delay)


# --- one setup ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """A relay to measure: the floor, or the bridge with a tracing mode."""

    label: str
    floor: bool = False
    trace: str = "off"
    marks: bool = False  # the floor relay, plus a Twilio mark per media message


@dataclass
class Result:
    """Everything measured for one setup."""

    setup: Setup
    calls: int
    window_s: float
    cpu_s: float = 0.0
    cpu_system_s: float = 0.0
    model_cpu_s: float = 0.0
    callers_cpu_s: float = 0.0
    other_cpu_s: float = 0.0
    rss_idle_kib: int = 0
    rss_end_kib: int = 0
    hwm_kib: int = 0
    inbound_ms: list[float] = field(default_factory=list)
    outbound_ms: list[float] = field(default_factory=list)
    inbound_sent: int = 0
    inbound_lost: int = 0
    outbound_sent: int = 0
    outbound_lost: int = 0
    connected: int = 0
    held: int = 0
    pacing_kept: int = 0
    late_max_ms: float = 0.0
    appends: int = 0
    inbound_tags: int = 0
    marks: int = 0
    clears: int = 0
    errors: list[str] = field(default_factory=list)
    spans: int | None = None
    rounds: int = 1
    rss_per_call_kib: float = 0.0
    by_round: list[Result] = field(default_factory=list)  # the rounds a merged result pools
    bytecodes: dict[str, int] = field(default_factory=dict)  # "module:function" -> n

    @property
    def cpu_per_call_minute(self) -> float:
        """Relay CPU seconds per minute of one call."""
        return self.cpu_s / (self.calls * self.window_s / 60.0)

    @property
    def call_total(self) -> int:
        """Calls measured, over every round."""
        return self.calls * self.rounds


def merge(rounds: list[Result]) -> Result:
    """One result of several rounds of a setup: counts and CPU add up, latencies pool, memory
    is the highest peak and the median growth per call."""
    if len(rounds) == 1:
        return rounds[0]
    first = rounds[0]
    merged = Result(setup=first.setup, calls=first.calls, window_s=0.0, rounds=len(rounds))
    additive = [
        "window_s",
        "cpu_s",
        "cpu_system_s",
        "model_cpu_s",
        "callers_cpu_s",
        "other_cpu_s",
        "inbound_sent",
        "inbound_lost",
        "outbound_sent",
        "outbound_lost",
        "connected",
        "held",
        "pacing_kept",
        "appends",
        "inbound_tags",
        "marks",
        "clears",
    ]
    for result in rounds:
        for name in additive:
            setattr(merged, name, getattr(merged, name) + getattr(result, name))
        merged.inbound_ms += result.inbound_ms
        merged.outbound_ms += result.outbound_ms
        merged.errors += result.errors
        merged.late_max_ms = max(merged.late_max_ms, result.late_max_ms)
        merged.hwm_kib = max(merged.hwm_kib, result.hwm_kib)
        if result.spans is not None:
            merged.spans = (merged.spans or 0) + result.spans
        for name, n in result.bytecodes.items():
            merged.bytecodes[name] = merged.bytecodes.get(name, 0) + n
    merged.rss_per_call_kib = statistics.median(r.rss_per_call_kib for r in rounds)
    merged.by_round = list(rounds)
    return merged


def _relay_command(
    setup: Setup, model_url: str, spans_file: Path, bytecodes_file: Path | None
) -> tuple[list[str], dict[str, str]]:
    cmd, env = _plain_relay_command(setup, model_url, spans_file)
    if bytecodes_file is not None:
        env["VOICEWIRE_BENCH_BYTECODES_FILE"] = str(bytecodes_file)
        cmd = [cmd[0], str(BYTECODE_COUNTER), *cmd[1:]]
    return cmd, env


def _plain_relay_command(
    setup: Setup, model_url: str, spans_file: Path
) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "VOICEWIRE_DISABLE_PLUGINS"}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if setup.floor:
        marks = ["--marks"] if setup.marks else []
        return [sys.executable, str(RELAY), "--realtime-url", model_url, *marks], env
    serve_args = [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--insecure-skip-signature",
        "--realtime-url",
        model_url,
    ]
    if setup.trace == "on":
        env["VOICEWIRE_BENCH_SPANS_FILE"] = str(spans_file)
        return [sys.executable, str(SERVE), *serve_args], env
    if setup.trace == "blocked":
        env["VOICEWIRE_DISABLE_PLUGINS"] = "tracing"
    return [sys.executable, "-m", "voicewire.cli", *serve_args], env


def prime(url: str) -> None:
    """Make one short call (0.2 s of silence) through the relay and hang up."""
    from websockets.sync.client import connect

    options: dict[str, Any] = {"compression": None, "open_timeout": 30}
    if "proxy" in inspect.signature(connect).parameters:
        options["proxy"] = None
    sid = "MZ" + "f" * 32
    media = {"track": "inbound", "payload": base64.b64encode(b"\xff" * 160).decode("ascii")}
    with connect(url, **options) as ws:
        ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "accountSid": "AC" + "f" * 32,
            "streamSid": sid,
            "callSid": "CA" + "f" * 32,
            "tracks": ["inbound"],
            "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        ws.send(
            json.dumps({"event": "start", "sequenceNumber": "1", "start": start, "streamSid": sid})
        )
        for n in range(10):
            media.update(chunk=str(n + 1), timestamp=str(20 * n))
            message = {"event": "media", "sequenceNumber": str(n + 2), "media": media}
            ws.send(json.dumps({**message, "streamSid": sid}))
            time.sleep(0.02)
        ws.send(
            json.dumps(
                {
                    "event": "stop",
                    "sequenceNumber": "12",
                    "streamSid": sid,
                    "stop": {"accountSid": "AC" + "f" * 32, "callSid": "CA" + "f" * 32},
                }
            )
        )


def _pin(pid: int, cpus: set[int]) -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(pid, cpus)


def run_setup(setup: Setup, args: argparse.Namespace, log: IO[str]) -> Result:
    """Start the callers, the model and the relay; measure; stop everything."""
    result = Result(setup=setup, calls=args.calls, window_s=args.seconds)
    callers: list[subprocess.Popen[str]] = []
    model: subprocess.Popen[str] | None = None
    relay: subprocess.Popen[str] | None = None
    with tempfile.TemporaryDirectory(prefix="bridge_load_") as tmp:
        work = Path(tmp)
        model_out = work / "model.json"
        spans_file = work / "spans.txt"
        bytecodes_file = work / "bytecodes.json" if args.count_bytecodes else None
        try:
            # Caller processes first: they import while the model and the relay start.
            processes = args.caller_procs or math.ceil(args.calls / CALLS_PER_CALLER_PROCESS)
            processes = max(1, min(processes, args.calls))
            outs: list[Path] = []
            first = 0
            for index in range(processes):
                count = args.calls // processes + (1 if index < args.calls % processes else 0)
                outs.append(work / f"callers{index}.json")
                cmd = [sys.executable, str(PEERS), "caller", "--first-call", str(first)]
                cmd += ["--calls", str(count), "--total-calls", str(args.calls)]
                cmd += ["--out", str(outs[-1])]
                callers.append(
                    subprocess.Popen(
                        cmd,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=log,
                        text=True,
                        start_new_session=True,
                    )
                )
                first += count
            model, line = _start(
                [sys.executable, str(PEERS), "model", "--out", str(model_out)], "fake model", log
            )
            model_url = line.removeprefix("listening on ").strip()
            cmd, env = _relay_command(setup, model_url, spans_file, bytecodes_file)
            relay, line = _start(cmd, setup.label, log, env)
            http = line.removeprefix("listening on ").strip()
            url = "ws" + http.removeprefix("http") + "/media-stream"
            if args.pin:
                _pin(relay.pid, {1})
                for proc in [model, *callers]:
                    _pin(proc.pid, {0})
            for index, proc in enumerate(callers):
                if _first_line(proc, 60.0, f"caller process {index}") != "ready":
                    raise RuntimeError(f"caller process {index}: unexpected output")
            prime(url)  # one short call first: lazy imports are not a per-call cost
            time.sleep(0.3)
            result.rss_idle_kib = memory_kib(relay.pid, "VmRSS")

            ramp_ns = int(max(0.1, 0.02 * args.calls) * 1e9)
            connect_at = time.monotonic_ns() + int(0.1e9)
            w0 = connect_at + ramp_ns + int(args.warmup * 1e9)
            w1 = w0 + int(args.seconds * 1e9)
            hang_up = w1 + int(args.drain * 1e9)
            plan = {
                "url": url,
                "connect_at": connect_at,
                "ramp_ns": ramp_ns,
                "stop_at": w1,
                "hang_up_at": hang_up,
            }
            for proc in callers:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(plan) + "\n")
                proc.stdin.close()

            _sleep_until(w0)
            if bytecodes_file is not None:
                os.kill(relay.pid, signal.SIGUSR1)
            (user0, system0), model0 = cpu_split(relay.pid), cpu_seconds(model.pid)
            callers0 = sum(cpu_seconds(proc.pid) for proc in callers)
            busy0 = machine_busy_seconds()
            _sleep_until(w1)
            if bytecodes_file is not None:
                os.kill(relay.pid, signal.SIGUSR2)
            (user1, system1), model1 = cpu_split(relay.pid), cpu_seconds(model.pid)
            callers1 = sum(cpu_seconds(proc.pid) for proc in callers)
            busy1 = machine_busy_seconds()
            result.rss_end_kib = memory_kib(relay.pid, "VmRSS")
            result.rss_per_call_kib = (result.rss_end_kib - result.rss_idle_kib) / args.calls
            result.cpu_system_s = system1 - system0
            result.cpu_s = user1 - user0 + result.cpu_system_s
            result.model_cpu_s = model1 - model0
            result.callers_cpu_s = callers1 - callers0
            result.other_cpu_s = max(
                0.0, busy1 - busy0 - result.cpu_s - result.model_cpu_s - result.callers_cpu_s
            )
            for proc in callers:
                try:
                    proc.wait(args.drain + 60)
                except subprocess.TimeoutExpired:
                    result.errors.append("a caller process did not finish; killed")
                    proc.kill()
                    proc.wait()
            result.hwm_kib = memory_kib(relay.pid, "VmHWM")
            _stop(relay)
            _stop(model)
            records: list[dict[str, Any]] = []
            for index, (out, proc) in enumerate(zip(outs, callers, strict=True)):
                if out.exists():
                    records.extend(json.loads(out.read_text(encoding="utf-8")))
                else:
                    result.errors.append(
                        f"caller process {index} exited {proc.returncode} without results"
                    )
            if not model_out.exists():
                raise RuntimeError(f"the fake model exited {model.returncode} without its tap")
            tap = json.loads(model_out.read_text(encoding="utf-8"))
            if spans_file.exists():
                result.spans = int(spans_file.read_text(encoding="ascii").strip() or 0)
            if bytecodes_file is not None:
                result.bytecodes = _read_bytecodes(bytecodes_file)
        finally:
            for leftover in [*callers, relay, model]:
                if leftover is not None:
                    _stop(leftover)
    correlate(result, records, tap, w0, w1)
    return result


def _read_bytecodes(path: Path) -> dict[str, int]:
    if not path.exists():
        raise RuntimeError("the relay wrote no bytecode counts (did it get SIGUSR2?)")
    counts: dict[str, int] = json.loads(path.read_text(encoding="utf-8"))
    return counts


def correlate(
    result: Result, records: list[dict[str, Any]], tap: dict[str, Any], w0: int, w1: int
) -> None:
    """Match the callers' records with the model's tap by (call, sequence)."""
    model_in: dict[str, list[tuple[int, int]]] = tap["inbound"]  # JSON pairs
    model_out: dict[str, list[tuple[int, int]]] = tap["outbound"]
    result.appends = tap["tagged_appends"]
    result.inbound_tags = tap["inbound_tags"]
    for record in records:
        call = str(record["call"])
        arrived = dict(model_in.get(call, []))
        heard = dict(reversed(record["received"]))  # first arrival wins
        lost = 0
        late_in: list[float] = []
        late_out: list[float] = []
        for seq, t in record["sent"]:
            if w0 <= t < w1:
                result.inbound_sent += 1
                if seq in arrived:
                    ms = (arrived[seq] - t) / 1e6
                    result.inbound_ms.append(ms)
                    late_in.append(ms)
                else:
                    lost += 1
        result.inbound_lost += lost
        echoed: dict[int, int] = {}
        for seq, t in model_out.get(call, []):
            echoed.setdefault(seq, t)
        for seq, t in echoed.items():
            if w0 <= t < w1:
                result.outbound_sent += 1
                if seq in heard:
                    ms = (heard[seq] - t) / 1e6
                    result.outbound_ms.append(ms)
                    late_out.append(ms)
                else:
                    lost += 1
                    result.outbound_lost += 1
        result.late_max_ms = max(result.late_max_ms, record["late_max_ns"] / 1e6)
        result.marks += record["marks"]
        result.clears += record["clears"]
        if record["connected"]:
            result.connected += 1
        if record["error"]:
            result.errors.append(f"call {call}: {record['error']}")
        if record["late_p99_ns"] / 1e6 <= PACING_BUDGET_MS:
            result.pacing_kept += 1
        if (
            record["connected"]
            and not record["closed_early"]
            and not record["error"]
            and lost == 0
            and all(
                not late or percentile(late, 0.99) <= REALTIME_BUDGET_MS
                for late in (late_in, late_out)
            )
        ):
            result.held += 1


# --- report ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class Row:
    """A line of the table: how to read the figure, and the target, if any."""

    name: str
    value: Callable[[Result], float]
    fmt: str = "{:.2f}"
    target: str = ""
    check: Callable[[float, float], bool] | None = None  # (bridge, floor) -> met
    show: Callable[[Result], str] | None = None  # the cell, when not the formatted value


def _rows() -> list[Row]:
    def lat(direction: str, q: float) -> Callable[[Result], float]:
        def value(r: Result) -> float:
            return percentile(r.inbound_ms if direction == "in" else r.outbound_ms, q)

        return value

    return [
        Row("calls held in real time", lambda r: r.held, show=lambda r: f"{r.held}/{r.call_total}"),
        Row(
            "calls whose caller kept its pacing",
            lambda r: r.pacing_kept,
            show=lambda r: f"{r.pacing_kept}/{r.call_total}",
        ),
        Row("caller send lateness max (ms)", lambda r: r.late_max_ms, "{:.1f}"),
        Row("inbound frames measured", lambda r: r.inbound_sent, "{:.0f}"),
        Row("inbound frames lost", lambda r: r.inbound_lost, "{:.0f}"),
        Row("outbound frames measured", lambda r: r.outbound_sent, "{:.0f}"),
        Row("outbound frames lost", lambda r: r.outbound_lost, "{:.0f}"),
        Row(
            "inbound latency p50 (ms)",
            lat("in", 0.5),
            target="<= 2 ms",
            check=lambda b, f: b <= 2.0,
        ),
        Row(
            "inbound latency p99 (ms)",
            lat("in", 0.99),
            target="<= 1.2x floor",
            check=lambda b, f: b <= 1.2 * f,
        ),
        Row("inbound latency max (ms)", lat("in", 1.0)),
        Row(
            "outbound latency p50 (ms)",
            lat("out", 0.5),
            target="<= 1 ms",
            check=lambda b, f: b <= 1.0,
        ),
        Row(
            "outbound latency p99 (ms)",
            lat("out", 0.99),
            target="<= 1.2x floor",
            check=lambda b, f: b <= 1.2 * f,
        ),
        Row("outbound latency max (ms)", lat("out", 1.0)),
        Row(
            "relay CPU s per call-minute",
            lambda r: r.cpu_per_call_minute,
            "{:.3f}",
            "<= 1.1x floor",
            lambda b, f: b <= 1.1 * f,
        ),
        Row("relay CPU, % of one core", lambda r: 100 * r.cpu_s / r.window_s, "{:.0f}"),
        Row(
            "relay CPU in the kernel, %",
            lambda r: 100 * r.cpu_system_s / r.cpu_s if r.cpu_s else 0.0,
            "{:.0f}",
        ),
        Row(
            "peak RSS, VmHWM (MiB)",
            lambda r: r.hwm_kib / 1024,
            "{:.1f}",
            "<= 1.3x floor",
            lambda b, f: b <= 1.3 * f,
        ),
        Row("RSS per call (KiB)", lambda r: r.rss_per_call_kib, "{:.0f}"),
        Row(
            "model appends per caller frame", lambda r: r.appends / max(1, r.inbound_tags), "{:.2f}"
        ),
        Row("fake model CPU, % of one core", lambda r: 100 * r.model_cpu_s / r.window_s, "{:.0f}"),
        Row("callers' CPU, % of one core", lambda r: 100 * r.callers_cpu_s / r.window_s, "{:.0f}"),
        Row(
            "rest of the machine, % of one core",
            lambda r: 100 * r.other_cpu_s / r.window_s,
            "{:.0f}",
        ),
    ]


def _cell(row: Row, result: Result, value: float) -> str:
    if row.show is not None:
        return row.show(result)
    return "n/a" if math.isnan(value) else row.fmt.format(value)


def report(results: list[Result], args: argparse.Namespace) -> None:
    """Print the table: the floor, each bridge setup with its ratio, target and verdict."""
    floor = results[0]
    bridges = results[1:]
    rounds = f", {args.repeat} rounds pooled" if args.repeat > 1 else ""
    pinned = " (relay pinned to CPU 1)" if args.pin else ""
    print(
        f"bridge load: {args.calls} calls x {args.seconds:g} s (after {args.warmup:g} s warm-up)"
        f"{rounds}, mu-law 8 kHz both ways, {os.cpu_count()} CPUs{pinned},"
        f" Python {platform.python_version()}"
    )
    print("floor = bare aiohttp + websockets pass-through relay; targets are set for 100 calls")
    width = 17
    header = f"{'metric':<34} {'floor':>10}"
    for result in bridges:
        header += f" {result.setup.label:>{width}}"
    header += f"  {'target':<14} verdict"
    print(header)
    for row in _rows():
        base = row.value(floor)
        line = f"{row.name:<34} {_cell(row, floor, base):>10}"
        verdicts: list[str] = []
        for result in bridges:
            value = row.value(result)
            text = _cell(row, result, value)
            ratio = row.check is not None or row.name.startswith(("inbound lat", "outbound lat"))
            if ratio and base and not math.isnan(base) and not math.isnan(value):
                text += f" ({value / base:.2f}x)"
            line += f" {text:>{width}}"
            if row.check is not None:
                if math.isnan(value) or math.isnan(base):
                    verdicts.append("n/a")
                else:
                    verdicts.append("PASS" if row.check(value, base) else "MISS")
        if row.check is not None:
            line += f"  {row.target:<14} {' '.join(verdicts)}"
        print(line.rstrip())
    for result in results:
        extra = []
        if result.clears:
            extra.append(f"{result.clears} clears (barge-in) seen by callers")
        if result.spans is not None:
            extra.append(f"{result.spans} spans recorded")
        if result.connected != result.call_total:
            extra.append(f"only {result.connected}/{result.call_total} calls connected")
        extra.extend(result.errors[:3])
        if len(result.errors) > 3:
            extra.append(f"... {len(result.errors) - 3} more errors")
        if extra:
            print(f"note [{result.setup.label}]: " + "; ".join(extra))
    if floor.by_round:
        report_rounds(floor, bridges)
    if args.compare_trace:
        report_tracing(results)
    if args.count_bytecodes:
        report_bytecodes(results)


def _ratio(value: float, base: float) -> float:
    return value / base if base and not math.isnan(base) else math.nan


def report_rounds(floor: Result, bridges: list[Result]) -> None:
    """Each round's ratios to the floor's round next to it in time: how far one run can be
    trusted (the p99 of a few thousand frames moves by itself from run to run)."""
    print("by round, bridge / floor of the same round:")
    for result in bridges:
        cells = []
        for base, round_ in zip(floor.by_round, result.by_round, strict=True):
            cpu = _ratio(round_.cpu_per_call_minute, base.cpu_per_call_minute)
            p99 = [
                _ratio(percentile(mine, 0.99), percentile(theirs, 0.99))
                for mine, theirs in (
                    (round_.inbound_ms, base.inbound_ms),
                    (round_.outbound_ms, base.outbound_ms),
                )
            ]
            cells.append(f"CPU {cpu:.2f}x, p99 in {p99[0]:.2f}x out {p99[1]:.2f}x")
        print(f"  {result.setup.label}: " + "; ".join(cells))


def report_tracing(results: list[Result]) -> None:
    """Per-call cost of tracing: ``off`` and ``on`` against ``blocked``."""
    by_mode = {r.setup.trace: r for r in results if not r.setup.floor}
    blocked = by_mode.get("blocked")
    if blocked is None:
        return
    print()
    print("tracing overhead per call, against the plugin blocked")
    columns = ("CPU ms per call-minute", "RSS KiB per call", "in p50 ms", "out p50 ms")
    print(f"{'mode':<10} {columns[0]:>24} {columns[1]:>18} {columns[2]:>10} {columns[3]:>11}")
    for mode in ("off", "on"):
        result = by_mode.get(mode)
        if result is None:
            continue
        cpu = 1000 * (result.cpu_per_call_minute - blocked.cpu_per_call_minute)
        rss = result.rss_per_call_kib - blocked.rss_per_call_kib
        d_in = percentile(result.inbound_ms, 0.5) - percentile(blocked.inbound_ms, 0.5)
        d_out = percentile(result.outbound_ms, 0.5) - percentile(blocked.outbound_ms, 0.5)
        print(f"{mode:<10} {cpu:>+24.1f} {rss:>+18.0f} {d_in:>+10.3f} {d_out:>+11.3f}")


def report_bytecodes(results: list[Result], top: int = 15) -> None:
    """Python bytecodes run per call-minute in the window: in all, by module, and the functions
    of the last setup that run the most."""

    def per_call_minute(result: Result, counts: dict[str, int]) -> dict[str, float]:
        minutes = result.calls * result.window_s / 60.0
        return {name: n / minutes for name, n in counts.items()}

    def by_module(result: Result) -> dict[str, int]:
        modules: dict[str, int] = {}
        for name, n in result.bytecodes.items():
            module = name.rpartition(":")[0]
            modules[module] = modules.get(module, 0) + n
        return modules

    print()
    print("Python bytecodes run per call-minute (--count-bytecodes: main thread, in the window;")
    print("counting slows the relays many times over: CPU and latency above are not comparable)")
    floor_total = sum(results[0].bytecodes.values())
    header = f"{'':<44} " + " ".join(f"{r.setup.label:>17}" for r in results)
    print(header)
    cells = []
    for result in results:
        total = sum(result.bytecodes.values())
        minutes = result.calls * result.window_s / 60.0
        ratio = f" ({_ratio(total, floor_total):.2f}x)" if result is not results[0] else ""
        cells.append(f"{total / minutes:,.0f}{ratio}")
    print(f"{'all':<44} " + " ".join(f"{c:>17}" for c in cells))
    tables = [per_call_minute(r, by_module(r)) for r in results]
    names = sorted({m for t in tables for m in t}, key=lambda m: -max(t.get(m, 0) for t in tables))
    for module in names[:top]:
        row = " ".join(f"{t.get(module, 0):>17,.0f}" for t in tables)
        print(f"  {module[:42]:<42} {row}")
    last = results[-1]
    print(f"functions of {last.setup.label} that run the most bytecodes:")
    functions = per_call_minute(last, last.bytecodes)
    for name in sorted(functions, key=lambda f: -functions[f])[:top]:
        print(f"  {name[:60]:<60} {functions[name]:>12,.0f}")


# --- main -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the floor and the bridge setups, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=20, help="concurrent calls (default 20)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window (default 20)")
    parser.add_argument(
        "--trace",
        choices=TRACE_MODES,
        default="off",
        help="tracing in the bridge: off (plugin loaded, no SDK), on (SDK recording, no export),"
        " blocked (VOICEWIRE_DISABLE_PLUGINS=tracing); default off",
    )
    parser.add_argument(
        "--compare-trace", action="store_true", help="run the bridge in all three trace modes"
    )
    parser.add_argument(
        "--mark-floor",
        action="store_true",
        help="also run the floor relay with a mark after each media message (column relay+marks)",
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the window")
    parser.add_argument("--drain", type=float, default=2.5, help="seconds after it")
    parser.add_argument(
        "--caller-procs",
        type=int,
        default=0,
        help=f"caller processes (default: one per {CALLS_PER_CALLER_PROCESS} calls)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the relay under test to CPU 1 and the fake model and callers to CPU 0",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of every setup, in alternating order; figures pool the rounds (default 1)",
    )
    parser.add_argument(
        "--count-bytecodes",
        action="store_true",
        help="also count the Python bytecodes each relay runs in the window"
        " (bench/bytecode_counter.py); slows the relays, so use a few calls",
    )
    parser.add_argument("--log", metavar="FILE", help="standard error of every process")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.calls < 1 or args.calls > 4000:
        parser.error("--calls must be within 1..4000")
    if args.seconds <= 0 or args.warmup < 0 or args.drain < 0:
        parser.error("--seconds must be positive, --warmup and --drain not negative")
    if not Path("/proc/self/stat").exists():
        parser.error("needs Linux /proc")
    if args.pin and (os.cpu_count() or 1) < 2:
        parser.error("--pin needs two CPUs")
    modes = ("blocked", "off", "on") if args.compare_trace else (args.trace,)
    setups = [Setup("floor", floor=True)]
    if args.mark_floor:
        setups.append(Setup("relay+marks", floor=True, marks=True))
    setups += [Setup(f"bridge[{mode}]", trace=mode) for mode in modes]
    with open(args.log or os.devnull, "w", encoding="utf-8") as log:
        rounds: dict[Setup, list[Result]] = {setup: [] for setup in setups}
        for index in range(args.repeat):
            # Alternate the order, so that a drift of the machine's load favours no setup.
            for setup in setups if index % 2 == 0 else setups[::-1]:
                rounds[setup].append(run_setup(setup, args, log))
    report([merge(rounds[setup]) for setup in setups], args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
