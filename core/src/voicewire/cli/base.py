"""What a ``voicewire`` subcommand is: the shape shared by built-in and plugin commands."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

import attrs

from voicewire.errors import VoicewireError

__all__ = ["CliCommand", "CommandError", "RunFunction", "RunResult"]

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
