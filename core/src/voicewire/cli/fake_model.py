"""``voicewire fake-model``: run the embedded Realtime-API-compatible server, offline."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from voicewire.cli.base import CliCommand, CommandError

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default 0: any free one)")
    parser.add_argument(
        "--mode",
        choices=("echo", "script"),
        default="echo",
        help="echo the caller's turns, or follow a script (default echo)",
    )
    parser.add_argument(
        "--script", metavar="FILE", help="JSON script for --mode script (default: the demo's)"
    )


async def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; print ``listening on ws://HOST:PORT/v1/realtime`` first."""
    if args.script is not None and args.mode != "script":
        raise CommandError("--script needs --mode script")
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port must be within 0..65535, got {args.port}")
    from voicewire.testing.fake_realtime import FakeRealtimeServer, Script

    script = Script.load(args.script) if args.script is not None else None
    server = FakeRealtimeServer(args.host, args.port, mode=args.mode, script=script)
    try:
        await server.start()
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not on every platform (Windows): Ctrl-C then arrives as KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        print(f"listening on {server.url}", flush=True)
        await stop.wait()
        print("voicewire fake-model: stopped", file=sys.stderr)
    finally:
        for number in installed:
            loop.remove_signal_handler(number)
        await server.close()
    return 0


COMMAND = CliCommand(
    name="fake-model",
    help="run the offline Realtime-API-compatible fake model server",
    description=(
        "Run voicewire's fake OpenAI Realtime (GA) server, offline. Prints 'listening on"
        " ws://HOST:PORT/v1/realtime' first and serves until SIGINT or SIGTERM. --mode echo"
        " answers each spoken turn with the caller's own audio; --mode script follows a JSON"
        " script (see docs/testing/fake-model.md)."
    ),
    configure=_configure,
    run=run,
)
