"""Plugin ``vw_test_good``: implements every voicewire hook, and records what it sees.

The records (:data:`created`, :data:`observers`) let tests check that a hook really ran; tests
call :func:`forget` to start from empty lists.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from voicewire.cli.base import CliCommand
from voicewire.hookspecs import hookimpl
from voicewire.registry import Registry
from voicewire_testplugins.transport import EchoTransport, LoopbackEdge

created: list[object] = []
"""Every object the ``voicewire_transport_created`` hook was called with."""

observers: list[RecordingObserver] = []
"""Every observer ``voicewire_session_observer`` returned."""


def forget() -> None:
    """Empty the records."""
    created.clear()
    observers.clear()


class RecordingObserver:
    """A session observer that keeps the status changes of one session."""

    def __init__(self, transport: object) -> None:
        self.transport = transport
        self.statuses: list[str] = []

    def on_connection_change(self, status: str) -> None:
        self.statuses.append(status)


@hookimpl
def voicewire_register_transports(registry: Registry) -> None:
    """Register the model transport ``test_echo`` and the telephony edge ``test_edge``."""
    registry.add_model_transport(
        "test_echo", EchoTransport, description="in-memory transport that echoes audio back"
    )
    registry.add_telephony_edge(
        "test_edge", LoopbackEdge, description="in-memory edge that records what it plays"
    )


@hookimpl
def voicewire_transport_created(transport: object) -> None:
    created.append(transport)


@hookimpl
def voicewire_session_observer(transport: object) -> RecordingObserver | None:
    # Only this plugin's own transports are observed, so other tests' transports stay untouched.
    if not isinstance(transport, EchoTransport):
        return None
    observer = RecordingObserver(transport)
    observers.append(observer)
    return observer


def _configure_hello(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="world", help="who to greet")
    parser.add_argument("--exit-code", type=int, default=0, help="the exit code to return")


async def _hello(args: argparse.Namespace) -> int:
    # Async on purpose: the CLI must run coroutine commands itself.
    await asyncio.sleep(0)
    print(f"hello, {args.name}")
    code: Any = args.exit_code
    return int(code)


@hookimpl
def voicewire_cli_commands() -> list[CliCommand]:
    """Add ``voicewire test-hello [--name NAME] [--exit-code N]``."""
    return [
        CliCommand(
            name="test-hello",
            help="print a greeting (test plugin)",
            configure=_configure_hello,
            run=_hello,
        )
    ]
