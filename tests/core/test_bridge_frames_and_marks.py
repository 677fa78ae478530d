"""What JSON dialects with marks share: ``json_object``, ``FrameError`` and ``MarkTable``.

Pure code: plain function calls, no sockets.
"""

from __future__ import annotations

import pytest

from voicewire.bridge import EdgeError, FrameError, MarkTable, json_object


@pytest.mark.parametrize(
    ("frame", "code", "message"),
    [
        (b'{"t": 1}', "binary_frame", "binary frame of 8 bytes: Acme frames are text"),
        ('{"t": "' + "x" * 100 + '"}', "too_large", "frame of 109 characters is over the limit"),
        ("{not json", "invalid_json", "frame is not JSON"),
        ("[1, 2]", "not_an_object", "frame must be a JSON object, got list"),
        ('"text"', "not_an_object", "frame must be a JSON object, got str"),
        ("", "invalid_json", "frame is not JSON"),
    ],
)
def test_json_object_refuses_what_is_not_one_json_object(
    frame: str | bytes, code: str, message: str
) -> None:
    with pytest.raises(FrameError) as caught:
        json_object(frame, provider="Acme", max_chars=100)
    assert caught.value.code == code
    assert str(caught.value) == message
    assert caught.value.event() == EdgeError(message=message, code=code)


def test_json_object_returns_the_object() -> None:
    frame = '{"type": "key", "digit": "5", "extra": [1, {"a": null}]}'
    assert json_object(frame, provider="Acme", max_chars=len(frame)) == {
        "type": "key",
        "digit": "5",
        "extra": [1, {"a": None}],
    }


def test_a_frame_error_never_shows_the_frame() -> None:
    secret = '["sk-SECRET"]'
    with pytest.raises(FrameError) as caught:
        json_object(secret, provider="Acme", max_chars=100)
    assert "SECRET" not in str(caught.value)
    assert "SECRET" not in repr(caught.value.event())
    assert FrameError("bad").code == "bad_message"  # the default code


def test_a_mark_table_resolves_each_name_once_in_any_order() -> None:
    table = MarkTable("vw")
    names = [table.issue(token) for token in ("a", "b", "a")]
    assert names == ["vw1", "vw2", "vw3"]  # one name per mark, even for a repeated token
    assert len(table) == 3
    assert table.resolve("vw2") == "b"
    assert table.resolve("vw2") is None  # already resolved
    assert table.resolve("vw1") == "a"
    assert table.resolve("vw3") == "a"
    assert table.resolve("vw9") is None  # never issued
    assert table.resolve("") is None
    assert len(table) == 0
    assert table.issue("c") == "vw4"  # names are never reused
    assert repr(table) == "<MarkTable 'vw' outstanding=1>"


def test_a_mark_table_forgets_the_oldest_names_past_its_limit() -> None:
    table = MarkTable(limit=2)
    first, second, third = table.issue("t1"), table.issue("t2"), table.issue("t3")
    assert (first, second, third) == ("m1", "m2", "m3")
    assert len(table) == 2
    assert table.resolve(first) is None  # forgotten: a provider that never echoes cannot grow it
    assert table.resolve(third) == "t3"
    assert table.resolve(second) == "t2"


@pytest.mark.parametrize(
    ("prefix", "limit"), [("", 10), (None, 10), ("m", 0), ("m", -1), ("m", True), ("m", 1.5)]
)
def test_a_mark_table_refuses_bad_settings(prefix: object, limit: object) -> None:
    with pytest.raises(ValueError, match="must be"):
        MarkTable(prefix, limit=limit)  # type: ignore[arg-type]
