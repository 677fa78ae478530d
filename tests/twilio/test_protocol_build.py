"""Outbound builders: exactly the fields of protocols.md §1.4, and refused inputs."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicewire.errors import VoicewireError
from voicewire_twilio.protocol import (
    MAX_MARK_NAME_LENGTH,
    MAX_SID_LENGTH,
    TwilioBuildError,
    clear_message,
    mark_message,
    media_message,
)

STREAM = "MZ18ad3ab5a668481ce02b83e7395059f0"


def test_media_message_is_exact() -> None:
    assert media_message(STREAM, b"\xff\xfe\x00") == (
        '{"event":"media","streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0",'
        '"media":{"payload":"//4A"}}'
    )


def test_mark_message_is_exact() -> None:
    assert mark_message(STREAM, "vw:1:2") == (
        '{"event":"mark","streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0","mark":{"name":"vw:1:2"}}'
    )


def test_clear_message_is_exact() -> None:
    assert clear_message(STREAM) == (
        '{"event":"clear","streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"}'
    )


def test_messages_carry_no_extra_fields() -> None:
    # Twilio drops a message with an extra field (error 31951).
    media = json.loads(media_message(STREAM, b"\x01"))
    assert set(media) == {"event", "streamSid", "media"}
    assert set(media["media"]) == {"payload"}
    mark = json.loads(mark_message(STREAM, "m"))
    assert set(mark) == {"event", "streamSid", "mark"}
    assert set(mark["mark"]) == {"name"}
    assert set(json.loads(clear_message(STREAM))) == {"event", "streamSid"}


@pytest.mark.parametrize("payload", [bytearray(b"\x01\x02"), memoryview(b"\x01\x02")])
def test_media_accepts_bytes_like_payloads(payload: Any) -> None:
    assert json.loads(media_message(STREAM, payload))["media"]["payload"] == "AQI="


@given(st.binary(min_size=1, max_size=4000))
def test_media_payload_round_trips(payload: bytes) -> None:
    message = json.loads(media_message(STREAM, payload))
    assert base64.b64decode(message["media"]["payload"], validate=True) == payload


@given(st.text(min_size=1, max_size=MAX_MARK_NAME_LENGTH))
def test_mark_name_round_trips(name: str) -> None:
    text = mark_message(STREAM, name)
    assert text.isascii()
    assert json.loads(text)["mark"]["name"] == name


def test_mark_name_at_the_length_limit() -> None:
    name = "n" * MAX_MARK_NAME_LENGTH
    assert json.loads(mark_message(STREAM, name))["mark"]["name"] == name


@pytest.mark.parametrize(
    ("builder", "field"),
    [
        (lambda sid: media_message(sid, b"\xff"), "stream_sid"),
        (lambda sid: mark_message(sid, "m"), "stream_sid"),
        (clear_message, "stream_sid"),
    ],
)
@pytest.mark.parametrize(
    "sid", ["", " ", "MZ 1", "MZ1\n", "MZ\x001", "M" * (MAX_SID_LENGTH + 1), "\u0085MZ"]
)
def test_bad_stream_sids_are_refused(builder: Any, field: str, sid: str) -> None:
    with pytest.raises(TwilioBuildError) as info:
        builder(sid)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, VoicewireError)


@pytest.mark.parametrize("builder", [clear_message, lambda sid: mark_message(sid, "m")])
def test_non_str_stream_sid_is_a_type_error(builder: Any) -> None:
    with pytest.raises(TypeError, match="stream_sid"):
        builder(None)


def test_longest_stream_sid_is_accepted() -> None:
    sid = "M" * MAX_SID_LENGTH
    assert json.loads(clear_message(sid))["streamSid"] == sid


def test_empty_payload_is_refused() -> None:
    with pytest.raises(TwilioBuildError) as info:
        media_message(STREAM, b"")
    assert info.value.field == "payload"


def test_base64_text_payload_is_refused() -> None:
    with pytest.raises(TypeError, match="decode base64"):
        media_message(STREAM, "//4A")  # type: ignore[arg-type]


def test_non_bytes_payload_is_refused() -> None:
    with pytest.raises(TypeError, match="bytes-like"):
        media_message(STREAM, [1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "n" * (MAX_MARK_NAME_LENGTH + 1), "a\ud800b"])
def test_bad_mark_names_are_refused(name: str) -> None:
    with pytest.raises(TwilioBuildError) as info:
        mark_message(STREAM, name)
    assert info.value.field == "name"


def test_non_str_mark_name_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="name"):
        mark_message(STREAM, 3)  # type: ignore[arg-type]


def test_build_error_message_names_the_field() -> None:
    with pytest.raises(TwilioBuildError, match=r"^stream_sid: must not be empty$"):
        clear_message("")
