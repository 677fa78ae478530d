"""The ``voicewire`` command line: ``--version``, ``plugins``, plugin subcommands, exit codes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator

import pytest

import voicewire
import voicewire.cli
from voicewire.cli import BUILTIN_COMMANDS, CliCommand, CommandError, build_parser, main
from voicewire.errors import ConfigError
from voicewire.hookspecs import hookimpl
from voicewire.plugins import (
    DISABLE_ENV_VAR,
    PluginLoadWarning,
    PluginManager,
    get_plugin_manager,
    reset_plugin_manager,
)


def run_voicewire(
    *args: str, env: dict[str, str] | None = None, module: str = "voicewire"
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != DISABLE_ENV_VAR}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )


@pytest.fixture
def global_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginManager]:
    monkeypatch.delenv(DISABLE_ENV_VAR, raising=False)
    reset_plugin_manager()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        pm = get_plugin_manager()
    yield pm
    reset_plugin_manager()


# -- in a subprocess, as a user runs it --------------------------------------------------------


@pytest.mark.parametrize("module", ["voicewire", "voicewire.cli"])
def test_version_in_a_subprocess(module: str) -> None:
    result = run_voicewire("--version", module=module)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"voicewire {voicewire.__version__}"


def test_plugins_json_in_a_subprocess() -> None:
    result = run_voicewire("plugins", "--json")
    assert result.returncode == 0, result.stderr
    by_id = {entry["id"]: entry for entry in json.loads(result.stdout)}
    good = by_id["vw_test_good"]
    assert good == {
        "id": "vw_test_good",
        "status": "loaded",
        "distribution": "voicewire-testplugins",
        "version": "0.1.0",
        "entry_point": "voicewire_testplugins.good",
        "transports": {"test_echo": "model_transport", "test_edge": "telephony_edge"},
        "hooks": [
            "voicewire_cli_commands",
            "voicewire_register_transports",
            "voicewire_session_observer",
            "voicewire_transport_created",
        ],
        "reason": None,
    }
    assert by_id["vw_test_broken"]["status"] == "failed"
    assert "ImportError" in by_id["vw_test_broken"]["reason"]
    assert by_id["vw_test_blocked"]["status"] == "loaded"
    # The skipped plugin is announced on standard error, on one line, by id.
    warning_lines = [line for line in result.stderr.splitlines() if "vw_test_broken" in line]
    assert len(warning_lines) == 1
    assert warning_lines[0].startswith("voicewire: warning: ")


def test_plugins_blocked_by_env_var_in_a_subprocess() -> None:
    result = run_voicewire("plugins", "--json", env={DISABLE_ENV_VAR: "vw_test_blocked"})
    assert result.returncode == 0, result.stderr
    by_id = {entry["id"]: entry for entry in json.loads(result.stdout)}
    assert by_id["vw_test_blocked"]["status"] == "blocked"
    assert DISABLE_ENV_VAR in by_id["vw_test_blocked"]["reason"]
    assert by_id["vw_test_blocked"]["transports"] == {}
    assert by_id["vw_test_good"]["status"] == "loaded"


def test_plugin_subcommand_in_a_subprocess() -> None:
    result = run_voicewire("test-hello", "--name", "subprocess")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello, subprocess\n"


def test_bad_flag_in_a_subprocess_exits_2_with_one_line() -> None:
    result = run_voicewire("plugins", "--no-such-flag")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert "--no-such-flag" in errors[0]


# -- through main() ----------------------------------------------------------------------------


def test_main_version(capsys: pytest.CaptureFixture[str], global_manager: PluginManager) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"voicewire {voicewire.__version__}\n"


def test_main_plugins_table(
    capsys: pytest.CaptureFixture[str], global_manager: PluginManager
) -> None:
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "DISTRIBUTION", "VERSION", "TRANSPORTS", "HOOKS"]
    good = next(line for line in lines if line.startswith("vw_test_good "))
    assert "voicewire-testplugins" in good
    assert "test_echo (model), test_edge (edge)" in good
    assert "transport_created" in good
    broken = lines.index(next(line for line in lines if line.startswith("vw_test_broken ")))
    assert "failed" in lines[broken]
    assert lines[broken + 1].strip().startswith("reason: import failed: ImportError")


def test_main_plugins_json_matches_plugin_infos(
    capsys: pytest.CaptureFixture[str], global_manager: PluginManager
) -> None:
    assert main(["plugins", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [entry["id"] for entry in listed] == [info.id for info in global_manager.plugin_infos()]


def test_main_without_a_command_exits_2(
    capsys: pytest.CaptureFixture[str], global_manager: PluginManager
) -> None:
    assert main([]) == 2
    assert "required" in capsys.readouterr().err


def test_main_bad_flag_exits_2(
    capsys: pytest.CaptureFixture[str], global_manager: PluginManager
) -> None:
    assert main(["plugins", "--jsn"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--jsn" in err


def test_main_unknown_command_exits_2(
    capsys: pytest.CaptureFixture[str], global_manager: PluginManager
) -> None:
    assert main(["no-such-command"]) == 2
    assert "no-such-command" in capsys.readouterr().err


def test_main_runs_an_async_plugin_command(
    capsys: pytest.CaptureFixture[str], global_manager: PluginManager
) -> None:
    assert main(["test-hello", "--name", "main"]) == 0
    assert capsys.readouterr().out == "hello, main\n"
    assert main(["test-hello", "--exit-code", "3"]) == 3


class _Commands:
    """An in-process plugin contributing commands through voicewire_cli_commands."""

    def __init__(self, *commands: CliCommand) -> None:
        self.commands = commands

    @hookimpl
    def voicewire_cli_commands(self) -> list[CliCommand]:
        return list(self.commands)


def _fail_with(error: Exception) -> CliCommand:
    def run(args: argparse.Namespace) -> int:
        raise error

    return CliCommand(name="fail", help="fails", run=run)


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (CommandError("no audio device\nsecond line"), 1, "no audio device"),
        (CommandError("port taken", exit_code=3), 3, "port taken"),
        (ConfigError("port", "must be positive"), 1, "port: must be positive"),
    ],
)
def test_command_errors_exit_non_zero_with_one_line(
    capsys: pytest.CaptureFixture[str],
    global_manager: PluginManager,
    error: Exception,
    code: int,
    message: str,
) -> None:
    global_manager.register(_Commands(_fail_with(error)), "failing")
    assert main(["fail"]) == code
    err = capsys.readouterr().err
    assert err == f"voicewire fail: error: {message}\n"


def test_sync_command_returning_none_exits_0(
    capsys: pytest.CaptureFixture[str], global_manager: PluginManager
) -> None:
    def run(args: argparse.Namespace) -> None:
        print(f"flag={args.flag}")

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--flag", default="off")

    global_manager.register(
        _Commands(CliCommand(name="quiet", help="h", run=run, configure=configure)), "quiet"
    )
    assert main(["quiet", "--flag", "on"]) == 0
    assert capsys.readouterr().out == "flag=on\n"


def test_plugin_cannot_replace_a_builtin_command(
    capsys: pytest.CaptureFixture[str], global_manager: PluginManager
) -> None:
    hijack = CliCommand(name="plugins", help="hijacked", run=lambda args: 99)
    global_manager.register(_Commands(hijack), "hijacker")
    with pytest.warns(PluginLoadWarning, match="'hijacker'.*'plugins'.*built-in"):
        code = main(["plugins", "--json"])
    assert code == 0
    json.loads(capsys.readouterr().out)


def test_two_plugins_with_one_command_name_first_wins(global_manager: PluginManager) -> None:
    global_manager.register(_Commands(CliCommand(name="dup", help="a", run=lambda a: 5)), "p1")
    global_manager.register(_Commands(CliCommand(name="dup", help="b", run=lambda a: 6)), "p2")
    with pytest.warns(PluginLoadWarning, match="'p2'.*plugin 'p1'"):
        assert main(["dup"]) == 5


def test_build_parser_with_explicit_commands_lists_them_in_help() -> None:
    parser = build_parser(BUILTIN_COMMANDS)
    text = parser.format_help()
    assert "plugins" in text
    assert "test-hello" not in text


def test_every_asyncio_command_warms_the_allocator_first(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    global_manager: PluginManager,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(voicewire.cli, "warm_up", lambda: calls.append("warm"))
    assert main(["plugins", "--json"]) == 0
    assert calls == []  # a command without an event loop has no sockets to read
    assert main(["call", "--url", "ws://127.0.0.1:1/media-stream", "--seconds", "0.1"]) != 0
    assert calls == ["warm"]
    capsys.readouterr()
