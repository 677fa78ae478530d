"""The protocol package stays sans-I/O, exports what it documents, and documents what it exports."""

from __future__ import annotations

import ast
from pathlib import Path

import voicewire_twilio.protocol as protocol

PACKAGE = Path(protocol.__file__).parent
DOC = Path(__file__).parents[2] / "docs" / "twilio" / "protocol.md"
FORBIDDEN = {"asyncio", "aiohttp", "websockets", "opentelemetry", "time", "datetime", "socket"}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_io_or_clock_imports() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) >= 9
    for path in files:
        assert not (_imported_roots(path) & FORBIDDEN), path.name


def test_every_export_exists() -> None:
    for name in protocol.__all__:
        assert hasattr(protocol, name), name
    assert len(set(protocol.__all__)) == len(protocol.__all__)


def test_every_export_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [name for name in protocol.__all__ if f"`{name}" not in text]
    assert not missing
