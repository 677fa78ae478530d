"""Every built-in command and every one of its flags is in the CLI reference."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from voicewire.cli import BUILTIN_COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference" / "cli.md"


def _sections() -> dict[str, str]:
    text = REFERENCE.read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.MULTILINE)
    return {part.split("\n", 1)[0].strip(): part for part in parts[1:]}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser(BUILTIN_COMMANDS)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("voicewire has no subcommands")


@pytest.mark.parametrize("command", [c.name for c in BUILTIN_COMMANDS])
def test_every_flag_of_the_command_is_in_its_section(command: str) -> None:
    section = _sections().get(f"`voicewire {command}`")
    assert section is not None, f"docs/reference/cli.md has no section '## `voicewire {command}`'"
    flags = {
        option
        for action in _subparsers()[command]._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    missing = sorted(flag for flag in flags if flag not in section)
    assert missing == [], f"voicewire {command}: flags missing from the CLI reference: {missing}"


def test_the_global_flags_are_documented() -> None:
    assert "--version" in _sections()["Global options"]
