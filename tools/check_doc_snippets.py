"""Check the Python examples of the documentation against the code they describe.

Every ```` ```python ```` block of ``docs/**/*.md`` and ``README.md`` is compiled, and then all of
them are type-checked together with mypy against the voicewire distributions installed in the
running interpreter (under tox: the built wheels). A renamed class, a removed keyword argument or
a wrong value type in an example then fails the suite instead of the reader who copies it.

Examples are often parts of a page's story: they use names that the prose or an earlier block
introduced (``bridge``, ``edge``, ``api_key``). Such names are not errors here (mypy's
``name-defined`` check is off, so they are ``Any``); everything imported, called or constructed
from a real module is checked. A block with top-level ``await``/``async with`` is checked as the
body of an ``async def``. A block that is not meant to be a program (a signature, a method cut out
of its class, an example of an error) is marked on the line just before its fence::

    <!-- docs-check: skip (a signature, not code) -->

and is neither compiled nor checked; the reason in brackets is required. A block that is a whole
program needing nothing from outside (no network, no key, no name from the page) is marked::

    <!-- docs-check: run -->

and is also run, in a process of its own (as the body of ``asyncio.run`` if it awaits), and must
exit normally within a minute: its reader can paste it and see it work.

    python tools/check_doc_snippets.py [--root DIR]

Prints one line per problem, ``page:line: message``, and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SKIP = re.compile(r"<!--\s*docs-check:\s*skip\b\s*(?:\((?P<reason>[^)]*)\))?\s*-->\s*$")
RUN = re.compile(r"<!--\s*docs-check:\s*run\s*-->\s*$")
RUN_TIMEOUT = 60.0
MYPY_LINE = re.compile(r"^(?P<file>snippet_\d+\.py):(?P<line>\d+): (?P<message>error: .*)$")
ASYNC_WRAPPER = "async def _snippet() -> None:\n"


@dataclass(frozen=True)
class Snippet:
    """One ```` ```python ```` block of a page."""

    page: Path
    line: int  # 1-based line of the block's first line of code in the page
    code: str
    skip: str | None  # the reason given in the skip marker, or None when it is checked
    run: bool = False  # marked to be run as well


def pages(root: Path) -> list[Path]:
    """The Markdown pages whose examples are checked: the docs and the README."""
    found = sorted((root / "docs").rglob("*.md"))
    readme = root / "README.md"
    return [*found, readme] if readme.exists() else found


def snippets(page: Path) -> list[Snippet]:
    """Every Python block of ``page``, in order."""
    text = page.read_text(encoding="utf-8")
    found: list[Snippet] = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = SKIP.search(before)
        skip = None if marker is None else (marker.group("reason") or "").strip()
        line = text.count("\n", 0, match.start()) + 2
        run = RUN.search(before) is not None
        found.append(Snippet(page=page, line=line, code=match.group(1), skip=skip, run=run))
    return found


def _where(snippet: Snippet, root: Path, line: int) -> str:
    return f"{snippet.page.relative_to(root)}:{snippet.line + line - 1}"


def _syntax_error(source: str) -> SyntaxError | None:
    try:
        compile(source, "<example>", "exec", dont_inherit=True)
    except SyntaxError as error:
        return error
    return None


def as_module(snippet: Snippet) -> tuple[str, int] | str:
    """The block as module source and the number of lines put before it, or a syntax error."""
    error = _syntax_error(snippet.code)
    if error is None:
        return snippet.code, 0
    # Top-level await is how an example shows one step of a coroutine: check it as one.
    wrapped = ASYNC_WRAPPER + "".join(
        "    " + line if line.strip() else line for line in snippet.code.splitlines(keepends=True)
    )
    # Only for that: an indented excerpt must not pass as the body of the wrapper.
    if "outside" in (error.msg or "") and _syntax_error(wrapped) is None:
        return wrapped, 1
    return f"{error.msg} (line {error.lineno} of the block)"


def check(root: Path) -> list[str]:
    """Every problem of every example below ``root``, as ``page:line: message``."""
    problems: list[str] = []
    modules: list[tuple[Snippet, str, int]] = []
    for page in pages(root):
        for snippet in snippets(page):
            if snippet.skip is not None:
                if not snippet.skip:
                    problems.append(
                        f"{_where(snippet, root, 1)}: a docs-check skip marker needs a reason"
                    )
                continue
            module = as_module(snippet)
            if isinstance(module, str):
                problems.append(f"{_where(snippet, root, 1)}: does not compile: {module}")
                continue
            modules.append((snippet, *module))
            if snippet.run:
                problems += _run(root, snippet, *module)
    if modules:
        problems += _mypy(root, modules)
    return problems


def _run(root: Path, snippet: Snippet, source: str, offset: int) -> list[str]:
    if offset:
        source += "\n\nimport asyncio\n\nasyncio.run(_snippet())\n"
    with tempfile.TemporaryDirectory(prefix="doc_example_") as tmp:
        path = Path(tmp) / "example.py"
        path.write_text(source, encoding="utf-8")
        try:
            result = subprocess.run(
                [sys.executable, str(path)],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return [f"{_where(snippet, root, 1)}: still running after {RUN_TIMEOUT:g} s"]
    if result.returncode == 0:
        return []
    lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
    # The traceback's innermost line of the example names where it failed.
    at = 1
    for line in lines:
        found = re.search(r'File ".*example\.py", line (\d+)', line)
        if found:
            at = max(1, int(found.group(1)) - offset)
    return [f"{_where(snippet, root, at)}: raised when run: {lines[-1]}"]


def _mypy(root: Path, modules: Sequence[tuple[Snippet, str, int]]) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="doc_snippets_") as tmp:
        names = []
        for index, (_, source, _) in enumerate(modules):
            name = f"snippet_{index:03d}.py"
            (Path(tmp) / name).write_text(source, encoding="utf-8")
            names.append(name)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "mypy",
                "--no-incremental",
                "--cache-dir",
                str(Path(tmp) / ".mypy_cache"),
                "--check-untyped-defs",
                "--disable-error-code",
                "name-defined",
                "--no-error-summary",
                "--show-error-codes",
                "--hide-error-context",
                "--no-color-output",
                *names,
            ],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
    problems = []
    by_name = dict(zip(names, modules, strict=True))
    for line in result.stdout.splitlines():
        match = MYPY_LINE.match(line)
        if match is None:
            continue
        snippet, _, offset = by_name[match.group("file")]
        at = _where(snippet, root, int(match.group("line")) - offset)
        problems.append(f"{at}: {match.group('message')}")
    if result.returncode not in (0, 1) or (result.returncode == 1 and not problems):
        problems.append(f"mypy failed ({result.returncode}): {result.stderr or result.stdout}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Check the examples; print the problems; 1 if there are any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    problems = check(root)
    for problem in problems:
        print(problem)
    checked = [s for page in pages(root) for s in snippets(page) if s.skip is None]
    runs = sum(1 for snippet in checked if snippet.run)
    print(f"{len(checked)} examples checked, {runs} run, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
