"""How the demo prints: a live timeline, tables and notes, with ``rich`` or in plain text.

:func:`make_output` picks :class:`RichOutput` when ``rich`` can be imported (the core's ``cli``
extra installs it) and :class:`PlainOutput` otherwise; both print the same facts.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Protocol, TextIO

__all__ = ["Actor", "DemoOutput", "PlainOutput", "RichOutput", "make_output"]

Actor = str
"""Who a timeline line is about: ``caller``, ``bridge``, ``model``, ``app`` or ``demo``."""

_STYLES = {
    "caller": "bold green",
    "bridge": "bold cyan",
    "model": "bold magenta",
    "app": "bold yellow",
    "demo": "dim",
}
_WHO_WIDTH = 6


def _seconds(at_ms: float) -> str:
    return f"{at_ms / 1000.0:7.2f} s"


def _utf8(stream: TextIO) -> bool:
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    return encoding.startswith("utf")


class DemoOutput(Protocol):
    """What the demo prints through. Every method writes at once (no buffering)."""

    def heading(self, text: str) -> None:
        """A section heading."""
        ...

    def note(self, text: str) -> None:
        """A line of explanation, outside the timeline."""
        ...

    def event(self, at_ms: float, who: Actor, text: str, *, alert: bool = False) -> None:
        """One timeline line: call time, actor, what happened; ``alert`` marks a problem."""
        ...

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A table of text cells."""
        ...

    def checks(self, title: str, rows: Sequence[tuple[bool, str, str]]) -> None:
        """A list of checks: passed or not, what was checked, the evidence."""
        ...

    def result(self, ok: bool, text: str) -> None:
        """The final verdict line."""
        ...

    def raw(self, text: str) -> None:
        """Pre-formatted text (a span tree), printed as is."""
        ...


class PlainOutput:
    """Plain text, for terminals and pipes without ``rich``.

    Args:
        stream: Where to write; standard output by default.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._ok, self._fail = ("✓", "✗") if _utf8(self._stream) else ("ok", "FAIL")

    def _write(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    def heading(self, text: str) -> None:
        """A section heading, underlined."""
        self._write("")
        self._write(text)
        self._write("-" * len(text))

    def note(self, text: str) -> None:
        """A line of explanation."""
        self._write(text)

    def event(self, at_ms: float, who: Actor, text: str, *, alert: bool = False) -> None:
        """One timeline line."""
        mark = "!" if alert else " "
        self._write(f"{_seconds(at_ms)} {mark}{who:<{_WHO_WIDTH}} {text}")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """Aligned columns under a title."""
        self.heading(title)
        widths = [len(c) for c in columns]
        for row in rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]
        self._write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False)).rstrip())
        for row in rows:
            self._write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())

    def checks(self, title: str, rows: Sequence[tuple[bool, str, str]]) -> None:
        """One line per check."""
        self.heading(title)
        width = max((len(name) for _, name, _ in rows), default=0)
        for passed, name, detail in rows:
            mark = self._ok if passed else self._fail
            self._write(f"{mark:<4} {name:<{width}}  {detail}")

    def result(self, ok: bool, text: str) -> None:
        """The verdict."""
        self._write("")
        self._write(f"{self._ok if ok else self._fail} {text}")

    def raw(self, text: str) -> None:
        """Text as is."""
        self._stream.write(text if text.endswith("\n") else text + "\n")
        self._stream.flush()


class RichOutput:
    """Colours and tables with ``rich``.

    Args:
        stream: Where to write; standard output by default.

    Raises:
        ImportError: ``rich`` is not installed.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console

        file = stream if stream is not None else sys.stdout
        console = Console(file=file, highlight=False)
        if not console.is_terminal:
            # Pipes and files get 80 columns by default, too narrow for the summary.
            console = Console(file=file, highlight=False, width=max(console.width, 110))
        self._console = console
        self._ok, self._fail = ("✓", "✗") if _utf8(file) else ("ok", "FAIL")

    def heading(self, text: str) -> None:
        """A rule with the heading in it."""
        self._console.rule(f"[bold]{_escape(text)}[/]", align="left")

    def note(self, text: str) -> None:
        """A dim line of explanation."""
        from rich.text import Text

        self._console.print(Text(text, style="dim"))

    def event(self, at_ms: float, who: Actor, text: str, *, alert: bool = False) -> None:
        """One timeline line, the actor in its colour."""
        from rich.text import Text

        line = Text()
        line.append(_seconds(at_ms), style="dim")
        line.append("  ")
        line.append(f"{who:<{_WHO_WIDTH}}", style=_STYLES.get(who, "bold"))
        line.append(" ")
        line.append(text, style="bold red" if alert else "")
        self._console.print(line)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A rich table."""
        from rich.table import Table

        table = Table(title=title, title_justify="left", title_style="bold", expand=False)
        for index, column in enumerate(columns):
            table.add_column(column, style="bold" if index == 0 else "", overflow="fold")
        for row in rows:
            table.add_row(*row)
        self._console.print(table)

    def checks(self, title: str, rows: Sequence[tuple[bool, str, str]]) -> None:
        """A table of checks with a green or red mark each."""
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, title_justify="left", title_style="bold", show_header=False)
        table.add_column("", no_wrap=True)
        table.add_column("check", style="bold")
        table.add_column("evidence", overflow="fold")
        for passed, name, detail in rows:
            mark = Text(self._ok if passed else self._fail, style="green" if passed else "red")
            table.add_row(mark, name, detail)
        self._console.print(table)

    def result(self, ok: bool, text: str) -> None:
        """The verdict, green or red."""
        from rich.text import Text

        mark = self._ok if ok else self._fail
        self._console.print(Text(f"{mark} {text}", style="bold green" if ok else "bold red"))

    def raw(self, text: str) -> None:
        """Text as is, without markup or highlighting."""
        from rich.text import Text

        self._console.print(Text(text.rstrip("\n")), soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def make_output(stream: TextIO | None = None, *, plain: bool = False) -> DemoOutput:
    """The best output available: :class:`RichOutput` if ``rich`` imports, else plain text.

    Args:
        stream: Where to write; standard output by default.
        plain: Use plain text even when ``rich`` is installed.
    """
    if not plain:
        try:
            return RichOutput(stream)
        except ImportError:
            pass
    return PlainOutput(stream)
