"""Names for playback marks: unique per send, parseable on echo, stale after a clear.

A mark name is ``vw:<generation>:<sequence>`` in canonical decimal (no sign, no leading zeros):
it carries no item ids, no timings and nothing secret, because Twilio stores and echoes it and it
ends up in logs. What a mark *means* (which audio it follows) stays in the application's own
table, keyed by :class:`MarkId`.

The *generation* moves on at every ``start`` and every ``clear``. Twilio echoes every pending mark
when it executes a ``clear``, and those echoes say nothing about what was heard; because they
carry the old generation, :meth:`MarkNamer.classify` recognises them as ``"stale"`` without the
application having to remember which names were outstanding.
"""

from __future__ import annotations

import re
from typing import Literal

import attrs

__all__ = ["MARK_PREFIX", "MarkId", "MarkNamer", "MarkState", "parse_mark_name"]

MARK_PREFIX = "vw"
"""The first field of every mark name voicewire sends."""

# Canonical decimal only, so that one MarkId has exactly one name and equal names mean equal ids.
# 18 digits bound the work a hostile echo can cause and keep every value in a signed 64-bit int.
_NAME = re.compile(rf"{MARK_PREFIX}:(0|[1-9][0-9]{{0,17}}):([1-9][0-9]{{0,17}})")
_LIMIT = 10**18

MarkState = Literal["current", "stale", "foreign"]
"""How an echoed mark name relates to a :class:`MarkNamer`'s current state."""


def _require(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < _LIMIT:
        raise ValueError(f"{name} must be an int in {low}..10**18-1, got {value!r}")


def _check_generation(_inst: object, _attr: attrs.Attribute[int], value: object) -> None:
    _require("generation", value, 0)


def _check_sequence(_inst: object, _attr: attrs.Attribute[int], value: object) -> None:
    _require("sequence", value, 1)


@attrs.frozen(kw_only=True, order=True)
class MarkId:
    """The identity of one sent mark; orders by generation, then sequence.

    Attributes:
        generation: The playback generation the mark was sent in (from 0).
        sequence: Its position among the marks of that generation (from 1).
    """

    generation: int = attrs.field(validator=_check_generation)
    sequence: int = attrs.field(validator=_check_sequence)

    @property
    def name(self) -> str:
        """The wire name, ``vw:<generation>:<sequence>``."""
        return f"{MARK_PREFIX}:{self.generation}:{self.sequence}"

    def __str__(self) -> str:
        return self.name


def parse_mark_name(name: object) -> MarkId | None:
    """Read a mark name back into its id.

    Args:
        name: An echoed ``mark.name`` (any value is accepted).

    Returns:
        The id, or ``None`` when the name is not one voicewire produces (a foreign or malformed
        name, a non-canonical number, anything that is not a ``str``).
    """
    if not isinstance(name, str):
        return None
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    return MarkId(generation=int(match[1]), sequence=int(match[2]))


class MarkNamer:
    """Hands out mark names for one stream and judges the echoes.

    Call :meth:`new_generation` when Twilio sends ``start`` and whenever the application sends
    ``clear``; call :meth:`next_mark` for each mark sent. Not thread-safe; one per stream.

    Args:
        generation: The first generation (default 0); useful to continue a stream's numbering.
    """

    __slots__ = ("_generation", "_issued")

    def __init__(self, *, generation: int = 0) -> None:
        _require("generation", generation, 0)
        self._generation = generation
        self._issued = 0

    def __repr__(self) -> str:
        return f"MarkNamer(generation={self._generation}, issued={self._issued})"

    @property
    def generation(self) -> int:
        """The current generation."""
        return self._generation

    @property
    def issued(self) -> int:
        """How many marks were handed out in the current generation."""
        return self._issued

    def next_mark(self) -> MarkId:
        """Hand out the next mark of the current generation.

        Returns:
            A :class:`MarkId` never handed out before by this namer; send its ``name``.
        """
        self._issued += 1
        return MarkId(generation=self._generation, sequence=self._issued)

    def next_name(self) -> str:
        """Shorthand for ``next_mark().name``."""
        return self.next_mark().name

    def new_generation(self) -> int:
        """Start a new generation: marks handed out so far become stale.

        Returns:
            The new generation number.
        """
        self._generation += 1
        self._issued = 0
        return self._generation

    @staticmethod
    def parse(name: object) -> MarkId | None:
        """Same as :func:`parse_mark_name`."""
        return parse_mark_name(name)

    def classify(self, name: object) -> MarkState:
        """Judge an echoed mark name.

        Args:
            name: The echoed ``mark.name``.

        Returns:
            ``"current"``: handed out in the current generation, so playback really reached it.
            ``"stale"``: from an earlier generation; after a ``clear`` such an echo only means the
            audio was dropped. ``"foreign"``: not a name this namer could have handed out (not
            voicewire's format, a later generation, or a sequence not yet issued).
        """
        mark = parse_mark_name(name)
        if mark is None:
            return "foreign"
        if mark.generation < self._generation:
            return "stale"
        if mark.generation == self._generation and mark.sequence <= self._issued:
            return "current"
        return "foreign"
