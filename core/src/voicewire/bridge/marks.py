"""Acknowledgement tokens a dialect sends under names of its own, until the provider echoes them.

The bridge asks for an acknowledgement with a token; the provider's mark (or its equivalent)
carries a name the dialect chose, and its echo carries that name back. :class:`MarkTable` is that
mapping, bounded, for a :class:`~voicewire.bridge.Dialect` to keep: ``issue`` in ``mark()``,
``resolve`` when an echo arrives. A clear needs nothing of it: a provider that echoes the marks
its clear dropped (Twilio, Telnyx) or reports them played (Acme) resolves them as usual, and the
bridge tells cleared tokens from played ones itself.

Sans-I/O: no clock, no I/O.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["MarkTable"]


class MarkTable:
    """Names sent to the provider, each standing for one acknowledgement token, until echoed.

    Names are ``prefix`` followed by a counter (``m1``, ``m2``, ...), unique within the table's
    life. Past ``limit`` outstanding names the oldest are forgotten, so a provider that never
    echoes cannot grow the table without bound; the echo of a forgotten name resolves to
    ``None``, as does one of a name never issued or already resolved.

    Args:
        prefix: What every name starts with (non-empty).
        limit: How many names may be outstanding at once (at least 1).

    Raises:
        ValueError: ``prefix`` is empty or ``limit`` is below 1.
    """

    __slots__ = ("_count", "_limit", "_outstanding", "_prefix")

    def __init__(self, prefix: str = "m", *, limit: int = 4096) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix must be a non-empty str, got {prefix!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an int >= 1, got {limit!r}")
        self._prefix = prefix
        self._limit = limit
        self._count = 0
        self._outstanding: OrderedDict[str, str] = OrderedDict()

    def __repr__(self) -> str:
        return f"<MarkTable {self._prefix!r} outstanding={len(self._outstanding)}>"

    def __len__(self) -> int:
        """How many names are outstanding."""
        return len(self._outstanding)

    def issue(self, token: str) -> str:
        """A new name standing for ``token``, to send in the provider's mark."""
        self._count += 1
        name = f"{self._prefix}{self._count}"
        outstanding = self._outstanding
        outstanding[name] = token
        if len(outstanding) > self._limit:
            outstanding.popitem(last=False)
        return name

    def resolve(self, name: str) -> str | None:
        """The token of an echoed name, which is then no longer outstanding; ``None`` for a name
        not outstanding (never issued, already resolved, or forgotten past the limit)."""
        return self._outstanding.pop(name, None)
