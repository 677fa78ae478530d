"""Every hook specification is documented and tested.

Each hook in :mod:`voicewire.hookspecs` needs a section (a Markdown heading carrying its name) in
``docs/reference/hooks.md``, and must be named in at least one test module under ``tests/``
besides this one: a hook nobody calls in a test is a hook whose contract nobody checks.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from voicewire import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS_PAGE = ROOT / "docs" / "reference" / "hooks.md"
THIS_FILE = Path(__file__).resolve()
SPEC_MARKER = f"{hookspecs.PROJECT_NAME}_spec"  # the attribute pluggy's HookspecMarker sets

HOOK_NAMES = sorted(
    name
    for name, value in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(value, SPEC_MARKER)
)


def headings(markdown: str) -> list[str]:
    """The text of every ATX heading, outside fenced code blocks."""
    found: list[str] = []
    in_fence = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        elif not in_fence and (match := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            found.append(match.group(1))
    return found


def has_section(markdown: str, hook: str) -> bool:
    """Whether a heading names ``hook`` as a whole word (with or without backticks)."""
    pattern = re.compile(rf"(?<![\w]){re.escape(hook)}(?![\w])")
    return any(pattern.search(heading) for heading in headings(markdown))


def test_the_hookspecs_are_found() -> None:
    assert "voicewire_register_transports" in HOOK_NAMES
    assert all(name.startswith("voicewire_") for name in HOOK_NAMES)


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_has_a_section_in_the_reference(hook: str) -> None:
    assert has_section(HOOKS_PAGE.read_text(encoding="utf-8"), hook), (
        f"{HOOKS_PAGE.relative_to(ROOT)} has no heading naming {hook}"
    )


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_is_named_in_a_test(hook: str) -> None:
    test_files = [
        path for path in (ROOT / "tests").rglob("test_*.py") if path.resolve() != THIS_FILE
    ]
    assert any(hook in path.read_text(encoding="utf-8") for path in test_files), (
        f"no test module under tests/ mentions {hook}"
    )


def test_section_detection() -> None:
    page = "\n".join(
        [
            "# Hooks",
            "## `voicewire_alpha`",
            "### voicewire_beta(registry) ###",
            "```python",
            "# voicewire_gamma",
            "```",
            "Text naming voicewire_delta.",
            "## voicewire_alphabet",
        ]
    )
    assert has_section(page, "voicewire_alpha")
    assert has_section(page, "voicewire_beta")
    assert not has_section(page, "voicewire_gamma")  # inside a code block
    assert not has_section(page, "voicewire_delta")  # not a heading
    assert not has_section(page, "voicewire_alph")  # only a prefix of a heading's name
