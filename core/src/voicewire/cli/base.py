"""What a ``voicewire`` subcommand is: the shape shared by built-in and plugin commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from voicewire.errors import VoicewireError

if TYPE_CHECKING:
    from voicewire.registry import Registry, TransportSpec

__all__ = [
    "CliCommand",
    "CommandError",
    "RunFunction",
    "RunResult",
    "setup_tracing",
    "telephony_edge_spec",
]

RunResult = int | None
"""An exit code; ``None`` means 0."""

RunFunction = Callable[[argparse.Namespace], RunResult | Awaitable[RunResult]]
"""Runs a command with the parsed arguments: a plain function, or an ``async def`` one."""


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # the command takes no arguments of its own


@attrs.frozen(kw_only=True)
class CliCommand:
    """One subcommand of ``voicewire``.

    Built-in commands are modules of :mod:`voicewire.cli` holding a ``COMMAND``; plugins return
    these from the ``voicewire_cli_commands`` hook.

    Attributes:
        name: The word typed after ``voicewire`` (e.g. ``"serve"``).
        help: One line for ``voicewire --help``.
        run: Called with the parsed arguments; may be ``async`` (it then runs in
            ``asyncio.run``). Returns the exit code, ``None`` meaning 0. Raising a
            :class:`~voicewire.errors.VoicewireError` (such as :class:`CommandError` or
            ``ConfigError``) exits non-zero with its message on one line.
        configure: Adds the command's arguments to its ``argparse`` sub-parser.
        description: Longer text for ``voicewire NAME --help``; defaults to ``help``.
    """

    name: str
    help: str
    run: RunFunction = attrs.field(eq=False)
    configure: Callable[[argparse.ArgumentParser], None] = attrs.field(
        default=_no_arguments, eq=False
    )
    description: str | None = None


class CommandError(VoicewireError):
    """A command cannot do its job (unusable configuration, missing input, ...).

    ``voicewire`` prints ``voicewire NAME: error: MESSAGE`` on standard error and exits with
    ``exit_code``.
    """

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def telephony_edge_spec(telephony: str, registry: Registry | None = None) -> TransportSpec:
    """The registry entry of the telephony edge named ``telephony``.

    A telephony plugin offers its server (``voicewire serve``) and its simulated-caller dialect
    (``voicewire call``) as attributes of the factory it registers; the commands read them here.

    Raises:
        CommandError: No telephony edge has that name (the message lists the known ones).
    """
    from voicewire.errors import UnknownTransportError
    from voicewire.registry import get_registry

    try:
        return (registry or get_registry()).get(telephony, "telephony_edge")
    except UnknownTransportError as exc:
        raise CommandError(str(exc)) from None


def setup_tracing(command: str, mode: str, stream: TextIO | None = None) -> Any:
    """Install the OpenTelemetry SDK for ``--trace MODE`` through the tracing plugin.

    Args:
        command: The subcommand's name, for the note printed when tracing is unavailable.
        mode: ``none``, ``console`` or ``otlp``.
        stream: Where ``console`` writes its span tree (standard error by default).

    Returns:
        The tracing plugin's handle (call ``shutdown()`` at exit), or ``None`` when ``mode`` is
        ``none`` or the tracing plugin is not installed or is disabled (a note says so).
    """
    if mode == "none":
        return None
    from voicewire.plugins import get_plugin_manager

    loaded = any(
        info.id == "tracing" and info.status == "loaded"
        for info in get_plugin_manager().plugin_infos()
    )
    if not loaded:
        print(
            f"voicewire {command}: note: --trace {mode} has no effect: the tracing plugin is not"
            " installed or is disabled",
            file=sys.stderr,
        )
        return None
    from voicewire.tracing.sdk import configure_tracing

    return configure_tracing(mode, stream=stream)
