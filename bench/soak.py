"""Soak: the Twilio bridge server under a steady stream of calls, for minutes, with figures.

One process runs the real bridge server (``voicewire_twilio.create_app``, the ``openai_ws``
transport, the call bridge) and the simulated Twilio callers that load it; the fake model runs
in a child process (``python -m voicewire fake-model``), so that its per-session records do not
count against the bridge's memory. ``--parallel`` callers call again and again until
``--seconds`` have passed: each call opens the stream, says ``--turns`` utterances and waits for
each echo, then hangs up. Every ``--every`` seconds a line reports calls, errors, resident
memory, tasks, file descriptors and sockets; at the end the process is compared with itself
after the warm-up (the floor of the same run): calls must have left no task, descriptor or
socket behind. Exit status 1 if they did, or if a call failed.

Run ``python bench/soak.py [--seconds 120] [--parallel 10]``. In a development environment,
block the test suite's recording plugin, which keeps every transport it sees on purpose:
``VOICEWIRE_DISABLE_PLUGINS=vw_test_good python bench/soak.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from aiohttp import web

from voicewire.audio.formats import MULAW_8K
from voicewire.plugins import get_plugin_manager
from voicewire.testing import speech_like
from voicewire.testing.telephony import SimulatedCaller
from voicewire_twilio.caller import TwilioDialect
from voicewire_twilio.server import APP_KEY, BridgeServer, create_app

WARMUP_CALLS = 5
UTTERANCE_MS = 400


def out(text: str = "") -> None:
    """Print a line at once (the run takes minutes; progress must show while it runs)."""
    print(text, flush=True)


def rss_mb() -> float:
    """Resident set size in MB (0 where ``/proc`` is missing)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def fds_and_sockets() -> tuple[int, int]:
    """Open file descriptors and sockets of this process (``-1`` where ``/proc`` is missing)."""
    path = Path("/proc/self/fd")
    if not path.is_dir():
        return -1, -1
    fds = sockets = 0
    for name in os.listdir(path):
        fds += 1
        with contextlib.suppress(OSError):
            sockets += os.readlink(path / name).startswith("socket:")
    return fds, sockets


class Load:
    """The callers and what happened to their calls."""

    def __init__(self, url: str, turns: int, speed: float, guard: float) -> None:
        self.url = url
        self.turns = turns
        self.speed = speed
        self.guard = guard
        self.calls = 0
        self.turns_heard = 0
        self.errors: Counter[str] = Counter()
        self.heard_bytes = 0
        self.stop = asyncio.Event()

    async def call(self, seed: str) -> None:
        caller = SimulatedCaller(self.url, TwilioDialect(), speed=self.speed)
        try:
            await caller.start()
            for turn in range(self.turns):
                before = len(caller.heard)
                await caller.say(speech_like(UTTERANCE_MS, MULAW_8K, seed=f"{seed}-{turn}"))
                await caller.wait_for(
                    lambda before=before: len(caller.heard) > before,  # type: ignore[misc]
                    timeout=self.guard,
                    what="the echo",
                )
                await caller.wait_idle(timeout=self.guard)
                self.turns_heard += 1
            await caller.hang_up()
            if caller.violations:
                self.errors["dialect_violation"] += 1
            self.heard_bytes += len(caller.heard)
            self.calls += 1
        except Exception as exc:
            self.errors[type(exc).__name__] += 1
        finally:
            await caller.close()

    async def worker(self, index: int) -> None:
        serial = 0
        while not self.stop.is_set():
            serial += 1
            await self.call(f"w{index}-{serial}")


async def start_fake_model() -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voicewire",
        "fake-model",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30.0)).decode().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise SystemExit(f"soak: the fake model did not start: {line!r}")
    return process, line.removeprefix("listening on ")


async def soak(args: argparse.Namespace) -> int:
    fake, model_url = await start_fake_model()
    app = create_app(realtime_url=model_url, api_key="sk-soak", insecure_skip_signature=True)
    server: BridgeServer = app[APP_KEY]
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    load = Load(f"ws://{host}:{port}/media-stream", args.turns, args.speed, args.guard)
    loop = asyncio.get_running_loop()
    plugins = sorted(i.id for i in get_plugin_manager().plugin_infos() if i.status == "loaded")
    out(
        f"soak: {args.seconds:.0f} s, {args.parallel} callers, {args.turns} turn(s) per call,"
        f" caller clock x{args.speed:g}; python {platform.python_version()},"
        f" aiohttp {version('aiohttp')}, websockets {version('websockets')}"
    )
    out(f"plugins loaded: {', '.join(plugins) or '-'}")
    exit_status = 0
    try:
        for index in range(WARMUP_CALLS):
            await load.call(f"warmup-{index}")
        await server.wait_for_calls(0, timeout=args.guard)
        gc.collect()
        floor_tasks = len(asyncio.all_tasks())
        floor_fds, floor_sockets = fds_and_sockets()
        floor_rss = rss_mb()
        out(
            f"floor after {WARMUP_CALLS} warm-up calls: rss {floor_rss:.1f} MB, tasks"
            f" {floor_tasks}, fds {floor_fds}, sockets {floor_sockets}"
        )
        warm_calls, warm_errors = load.calls, sum(load.errors.values())
        out(
            f"{'t (s)':>6} {'calls':>7} {'calls/s':>8} {'errors':>7} {'active':>7}"
            f" {'rss MB':>7} {'tasks':>6} {'fds':>5} {'sockets':>7}"
        )
        started = loop.time()
        workers = [loop.create_task(load.worker(i)) for i in range(args.parallel)]
        peak_rss = floor_rss
        samples: list[float] = []
        while (elapsed := loop.time() - started) < args.seconds:
            await asyncio.sleep(min(args.every, args.seconds - elapsed))
            elapsed = loop.time() - started
            rss = rss_mb()
            peak_rss = max(peak_rss, rss)
            samples.append(rss)
            fds, sockets = fds_and_sockets()
            calls = load.calls - warm_calls
            out(
                f"{elapsed:6.0f} {calls:7d} {calls / elapsed:8.1f}"
                f" {sum(load.errors.values()) - warm_errors:7d} {server.active_calls:7d}"
                f" {rss:7.1f} {len(asyncio.all_tasks()):6d} {fds:5d} {sockets:7d}"
            )
        load.stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), args.guard * 2)
        duration = loop.time() - started
        await server.wait_for_calls(0, timeout=args.guard)
        for _ in range(20):  # closing handshakes finish asynchronously
            await asyncio.sleep(0.05)
            gc.collect()
            if fds_and_sockets() == (floor_fds, floor_sockets):
                break
        end_tasks = len(asyncio.all_tasks())
        end_fds, end_sockets = fds_and_sockets()
        end_rss = rss_mb()
        calls = load.calls - warm_calls
        errors = sum(load.errors.values()) - warm_errors
        half = samples[len(samples) // 2 :] or [end_rss]
        out()
        out(
            f"calls completed      {calls} in {duration:.0f} s ({calls / duration:.1f}/s),"
            f" {load.turns_heard - warm_calls * args.turns} turns heard"
        )
        out(f"calls failed         {errors} {dict(load.errors) if load.errors else ''}")
        out(f"server calls started {server.calls_started}, active at the end {server.active_calls}")
        out(
            f"rss                  floor {floor_rss:.1f} MB, peak {peak_rss:.1f} MB, end"
            f" {end_rss:.1f} MB (+{end_rss - floor_rss:.1f}); second half of the run"
            f" {min(half):.1f}..{max(half):.1f} MB"
        )
        out(f"tasks                floor {floor_tasks}, end {end_tasks}")
        out(f"fds / sockets        floor {floor_fds}/{floor_sockets}, end {end_fds}/{end_sockets}")
        if errors:
            exit_status = 1
        if (end_tasks, end_fds, end_sockets) != (floor_tasks, floor_fds, floor_sockets):
            out("LEAK: tasks, descriptors or sockets did not return to the floor")
            exit_status = 1
    finally:
        await runner.cleanup()
        fake.terminate()
        await fake.wait()
    return exit_status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=120.0, help="run time (default 120)")
    parser.add_argument("--parallel", type=int, default=10, help="concurrent callers (default 10)")
    parser.add_argument("--turns", type=int, default=1, help="utterances per call (default 1)")
    parser.add_argument(
        "--speed", type=float, default=4.0, help="caller clock factor (default 4: 4x real time)"
    )
    parser.add_argument("--every", type=float, default=10.0, help="report interval (default 10)")
    parser.add_argument("--guard", type=float, default=30.0, help="hang guard per wait (s)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.parallel < 1 or args.turns < 1 or args.speed <= 0:
        parser.error("--seconds, --parallel, --turns and --speed must be positive")
    started = time.perf_counter()
    status = asyncio.run(soak(args))
    out(f"wall time {time.perf_counter() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
