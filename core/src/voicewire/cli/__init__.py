"""The ``voicewire`` command line.

Each built-in subcommand is a module of this package that defines ``COMMAND``, a
:class:`CliCommand`. To add one, write ``voicewire/cli/NAME.py`` with ``COMMAND = CliCommand(...)``
(keep heavy imports inside its ``run`` function, so that ``voicewire --help`` stays fast) and add
the module to :data:`BUILTIN_COMMANDS`. Plugins add subcommands through the
``voicewire_cli_commands`` hook; a built-in name always wins over a plugin's.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
import warnings
from collections.abc import Awaitable, Sequence
from typing import NoReturn, TypeVar

from voicewire.allocator import warm_up
from voicewire.cli import call as _call
from voicewire.cli import demo as _demo
from voicewire.cli import fake_model as _fake_model
from voicewire.cli import plugins as _plugins
from voicewire.cli import serve as _serve
from voicewire.cli.base import CliCommand, CommandError, RunFunction, RunResult
from voicewire.errors import VoicewireError

__all__ = ["BUILTIN_COMMANDS", "CliCommand", "CommandError", "build_parser", "main"]

BUILTIN_COMMANDS: tuple[CliCommand, ...] = (
    _plugins.COMMAND,
    _serve.COMMAND,
    _call.COMMAND,
    _fake_model.COMMAND,
    _demo.COMMAND,
)
"""The commands voicewire itself provides, in the order ``--help`` lists them."""

PROG = "voicewire"

_T = TypeVar("_T")


class _Parser(argparse.ArgumentParser):
    # argparse prints the whole usage before its one-line reason; the usage is noise once the
    # user has typed a command, so it is shortened to a pointer at --help.
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _version() -> str:
    from voicewire import __version__  # the package __init__ is curated by others; read lazily

    return __version__


def _collect_commands() -> list[CliCommand]:
    from voicewire.plugins import PluginLoadWarning, get_plugin_manager

    commands = list(BUILTIN_COMMANDS)
    taken = {command.name: "voicewire" for command in commands}
    for plugin_id, command in get_plugin_manager().cli_commands():
        if command.name in taken:
            owner = taken[command.name]
            owner_text = "a built-in command" if owner == "voicewire" else f"plugin {owner!r}"
            warnings.warn(
                f"voicewire plugin {plugin_id!r}: command {command.name!r} is skipped:"
                f" {owner_text} already uses that name",
                PluginLoadWarning,
                stacklevel=2,
            )
            continue
        taken[command.name] = plugin_id
        commands.append(command)
    return commands


def build_parser(commands: Sequence[CliCommand] | None = None) -> argparse.ArgumentParser:
    """Build the ``voicewire`` argument parser.

    Args:
        commands: The subcommands; by default the built-in ones plus every plugin's.

    Returns:
        A parser whose namespaces carry the chosen command in ``_command``.
    """
    if commands is None:
        commands = _collect_commands()
    parser = _Parser(
        prog=PROG,
        description="voicewire: realtime voice-model transports, telephony edges and plugins.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    subparsers.required = True
    for command in commands:
        sub = subparsers.add_parser(
            command.name,
            help=command.help,
            description=command.description or command.help,
        )
        command.configure(sub)
        sub.set_defaults(_command=command)
    return parser


def _run(function: RunFunction, args: argparse.Namespace) -> RunResult:
    result = function(args)
    if inspect.isawaitable(result):
        # Every asyncio command is a socket server or client for as long as it runs.
        warm_up()
        return asyncio.run(_await(result))
    return result


async def _await(awaitable: Awaitable[_T]) -> _T:
    # asyncio.run wants a coroutine; a run function may return any awaitable.
    return await awaitable


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # SystemExit("message") prints and exits 1, like Python does
    return 1


def _format_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    from voicewire.plugins import PluginLoadWarning

    # A skipped plugin is news for the user, not a bug report: one line, without the source line
    # of voicewire that issued it. Every other warning keeps Python's format.
    if issubclass(category, PluginLoadWarning):
        return f"{PROG}: warning: {message}\n"
    return _python_format_warning(message, category, filename, lineno, line)


_python_format_warning = warnings.formatwarning


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``voicewire`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    Bad flags exit 2 with argparse's one-line reason; a command that raises a
    :class:`~voicewire.errors.VoicewireError` exits 1 (or :attr:`CommandError.exit_code`) with
    ``voicewire COMMAND: error: MESSAGE``; an interrupt exits 130. A plugin that is skipped is
    reported on standard error as ``voicewire: warning: ...``.
    """
    # formatwarning, not showwarning: whoever records warnings (pytest, an embedding application)
    # keeps receiving them; only their printed form changes.
    previous = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        return _main(argv)
    finally:
        warnings.formatwarning = previous


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and bad flags
        return _exit_code(exc.code)
    command: CliCommand = args._command
    try:
        code = _run(command.run, args)
    except VoicewireError as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"{PROG} {command.name}: error: {first_line}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, CommandError) else 1
    except KeyboardInterrupt:
        print(f"{PROG} {command.name}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        return _exit_code(exc.code)
    return _exit_code(code)
