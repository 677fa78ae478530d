"""Mark naming: unique names, parsed back, stale after a new generation, foreign otherwise."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicewire_twilio.protocol import (
    MAX_MARK_NAME_LENGTH,
    MarkId,
    MarkNamer,
    mark_message,
    parse_mark_name,
)

BIG = 10**18 - 1


def test_names_have_the_documented_shape() -> None:
    namer = MarkNamer()
    assert [namer.next_name() for _ in range(3)] == ["vw:0:1", "vw:0:2", "vw:0:3"]
    namer.new_generation()
    assert namer.next_name() == "vw:1:1"


def test_next_mark_returns_ids() -> None:
    namer = MarkNamer(generation=7)
    mark = namer.next_mark()
    assert mark == MarkId(generation=7, sequence=1)
    assert str(mark) == mark.name == "vw:7:1"
    assert (namer.generation, namer.issued) == (7, 1)


def test_names_are_unique_across_generations() -> None:
    namer = MarkNamer()
    names: list[str] = []
    for _ in range(5):
        names.extend(namer.next_name() for _ in range(20))
        namer.new_generation()
    assert len(set(names)) == len(names) == 100


def test_names_fit_a_mark_message() -> None:
    longest = MarkId(generation=BIG, sequence=BIG).name
    assert len(longest) <= MAX_MARK_NAME_LENGTH
    assert '"vw:' in mark_message("MZ1", longest)


def test_names_carry_nothing_but_counters() -> None:
    namer = MarkNamer()
    for _ in range(50):
        assert re.fullmatch(r"vw:[0-9]+:[0-9]+", namer.next_name())


@given(st.integers(0, BIG), st.integers(1, BIG))
def test_parse_round_trips(generation: int, sequence: int) -> None:
    mark = MarkId(generation=generation, sequence=sequence)
    assert parse_mark_name(mark.name) == mark
    assert MarkNamer.parse(mark.name) == mark


@pytest.mark.parametrize(
    "name",
    [
        "my label",
        "",
        "vw",
        "vw:",
        "vw:0",
        "vw:0:",
        "vw::1",
        "vw:0:0",
        "vw:01:1",
        "vw:0:01",
        "vw:-1:1",
        "vw:+1:1",
        "vw:0:1 ",
        " vw:0:1",
        "vw:0:1\n",
        "VW:0:1",
        "vw:0:1:2",
        "xx:0:1",
        "vw:\u0663:1",
        "vw:0:1" + "0" * 18,
        "vw:1" + "0" * 18 + ":1",
        "item-a:100:g1:m1",
        "done:item-a:g1:m2",
    ],
)
def test_foreign_names_parse_to_none(name: str) -> None:
    assert parse_mark_name(name) is None
    assert MarkNamer().classify(name) == "foreign"


@pytest.mark.parametrize("value", [None, 1, b"vw:0:1", ["vw:0:1"]])
def test_non_str_names_parse_to_none(value: object) -> None:
    assert parse_mark_name(value) is None


@given(st.text())
def test_parse_never_raises(name: str) -> None:
    result = parse_mark_name(name)
    assert result is None or result.name == name


def test_classify_current_and_stale() -> None:
    namer = MarkNamer()
    namer.new_generation()  # Twilio "start"
    first, second = namer.next_name(), namer.next_name()
    assert namer.classify(first) == namer.classify(second) == "current"
    namer.new_generation()  # the application sent "clear"
    after = namer.next_name()
    assert namer.classify(first) == namer.classify(second) == "stale"
    assert namer.classify(after) == "current"


def test_classify_unissued_and_future_names_as_foreign() -> None:
    namer = MarkNamer(generation=2)
    namer.next_name()
    assert namer.classify("vw:2:2") == "foreign"  # not issued yet
    assert namer.classify("vw:3:1") == "foreign"  # a generation that does not exist yet
    assert namer.classify("vw:1:1") == "stale"


def test_new_generation_returns_it_and_restarts_sequence() -> None:
    namer = MarkNamer()
    namer.next_name()
    assert namer.new_generation() == 1
    assert (namer.generation, namer.issued) == (1, 0)


def test_mark_ids_order_by_generation_then_sequence() -> None:
    ids = [MarkId(generation=1, sequence=1), MarkId(generation=0, sequence=9)]
    assert sorted(ids) == [ids[1], ids[0]]


@pytest.mark.parametrize(
    ("generation", "sequence"),
    [(-1, 1), (0, 0), (BIG + 1, 1), (0, BIG + 1), (True, 1), (0, 1.0)],
)
def test_mark_id_validation(generation: object, sequence: object) -> None:
    with pytest.raises(ValueError, match="must be an int"):
        MarkId(generation=generation, sequence=sequence)  # type: ignore[arg-type]


@pytest.mark.parametrize("generation", [-1, BIG + 1, "0"])
def test_namer_validation(generation: object) -> None:
    with pytest.raises(ValueError, match="generation"):
        MarkNamer(generation=generation)  # type: ignore[arg-type]


def test_namer_repr() -> None:
    namer = MarkNamer()
    namer.next_name()
    assert repr(namer) == "MarkNamer(generation=0, issued=1)"
