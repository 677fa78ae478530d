"""The Python examples of the documentation compile and type-check against the installed code.

``tools/check_doc_snippets.py`` does the work (its docstring says what is checked and how a block
that is not a program is marked); these tests run it on the real pages, and on a page written
here with one fault of each kind, to show that it finds them where they are.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "check_doc_snippets.py"


def run_check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_example_of_the_docs_compiles_and_type_checks() -> None:
    result = run_check(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    words = result.stderr.split()
    checked, run = int(words[0]), int(words[3])
    assert checked >= 50, result.stderr  # the pages hold some sixty examples: all were found
    assert run >= 10, result.stderr  # and the whole programs among them ran


PAGE = """\
# A page

```python
from voicewire.audio import mulaw_encode

ulaw = mulaw_encode(b"\\x00\\x00")
```

A keyword the function does not take, on the block's third line:

```python
from voicewire.audio import mulaw_encode

mulaw_encode(b"", rate=8000)
```

```python
def broken(:
    pass
```

One step of a coroutine, checked as the body of one; a wrong type on its third line:

```python
import asyncio
await asyncio.sleep(0)
count: int = "two"
```

<!-- docs-check: skip (a signature, not code) -->
```python
def voicewire_hook(x: int) -> None
```

<!-- docs-check: skip -->
```python
print("a skip marker without a reason")
```

```python
    def method(self) -> None:  # an excerpt, unmarked
        pass
```

Run, and fine: a coroutine's steps, run as one.

<!-- docs-check: run -->
```python
import asyncio
await asyncio.sleep(0)
```

Run, and raising on its third line:

<!-- docs-check: run -->
```python
import asyncio
await asyncio.sleep(0)
assert 1 + 1 == 3, "arithmetic"
```
"""


def test_each_fault_is_reported_at_its_page_and_line(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(PAGE, encoding="utf-8")
    (tmp_path / "README.md").write_text("```python\nimport voicewire\n```\n", encoding="utf-8")
    result = run_check(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    problems = result.stdout.splitlines()
    lines = PAGE.splitlines()
    keyword = lines.index('mulaw_encode(b"", rate=8000)') + 1
    syntax = lines.index("def broken(:") + 1
    awaited = lines.index('count: int = "two"') + 1
    no_reason = lines.index('print("a skip marker without a reason")') + 1
    excerpt = lines.index("    def method(self) -> None:  # an excerpt, unmarked") + 1
    raised = lines.index('assert 1 + 1 == 3, "arithmetic"') + 1
    expected_prefixes = [
        f"docs/page.md:{syntax}: does not compile:",
        f"docs/page.md:{no_reason}: a docs-check skip marker needs a reason",
        f"docs/page.md:{excerpt}: does not compile:",
        f'docs/page.md:{keyword}: error: Unexpected keyword argument "rate"',
        f"docs/page.md:{awaited}: error: Incompatible types in assignment",
        f"docs/page.md:{raised}: raised when run: AssertionError: arithmetic",
    ]
    assert len(problems) == len(expected_prefixes), problems
    for prefix in expected_prefixes:
        assert any(p.startswith(prefix) for p in problems), (prefix, problems)
    # The good blocks, the README and the signature behind its marker raised nothing.
    assert "8 examples checked, 2 run, 6 problems" in result.stderr
