"""The Twilio dialect of the simulated caller: what it sends parses, what it checks is strict."""

from __future__ import annotations

import base64
import json

import pytest

from voicewire.testing.telephony import (
    CallerDialect,
    DialectViolation,
    OutboundAudio,
    OutboundClear,
    OutboundMark,
)
from voicewire_twilio.caller import TwilioDialect, new_sid
from voicewire_twilio.protocol import (
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    clear_message,
    mark_message,
    media_message,
    parse_message,
)


@pytest.fixture
def dialect() -> TwilioDialect:
    return TwilioDialect(custom_parameters={"tenant": "acme"})


def test_it_is_a_caller_dialect(dialect: TwilioDialect) -> None:
    assert isinstance(dialect, CallerDialect)
    assert new_sid("MZ").startswith("MZ")
    assert len(new_sid("CA")) == 34


def test_what_it_sends_passes_the_strict_parser(dialect: TwilioDialect) -> None:
    connected, start = (parse_message(frame) for frame in dialect.opening())
    assert connected.event == "connected"
    assert isinstance(start, Start)
    assert start.sequence_number == 1
    assert start.stream_sid == dialect.stream_sid
    assert dict(start.custom_parameters) == {"tenant": "acme"}
    media = parse_message(dialect.media(b"\x01\x02", 40))
    assert isinstance(media, Media)
    assert (media.sequence_number, media.chunk, media.timestamp_ms) == (2, 1, 40)
    assert media.payload == b"\x01\x02"
    assert isinstance(parse_message(dialect.dtmf("#")), Dtmf)
    mark = parse_message(dialect.mark_played("vw:1:1"))
    assert isinstance(mark, Mark)
    assert mark.name == "vw:1:1"
    stop = parse_message(dialect.stop())
    assert isinstance(stop, Stop)
    assert stop.sequence_number == 5
    with pytest.raises(ValueError, match="DTMF"):
        dialect.dtmf("x")


def test_decodes_exactly_what_the_builders_produce(dialect: TwilioDialect) -> None:
    sid = dialect.stream_sid
    assert dialect.decode(media_message(sid, b"\xff\x00")) == OutboundAudio(data=b"\xff\x00")
    assert dialect.decode(mark_message(sid, "vw:0:1")) == OutboundMark(name="vw:0:1")
    assert dialect.decode(clear_message(sid)) == OutboundClear()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda m: m.update(extra=1), "extra key"),
        (lambda m: m["media"].update(track="outbound"), "extra key"),
        (lambda m: m.pop("streamSid"), "missing streamSid"),
        (lambda m: m["media"].pop("payload"), "missing media.payload"),
        (lambda m: m.update(streamSid="MZ" + "0" * 32), "streamSid"),
        (lambda m: m["media"].update(payload="***"), "base64"),
        (lambda m: m["media"].update(payload=""), "non-empty"),
        (lambda m: m.update(event="play"), "unknown"),
        (lambda m: m.update(media=[1]), "object"),
    ],
)
def test_media_violations(dialect: TwilioDialect, mutate: object, reason: str) -> None:
    message = json.loads(media_message(dialect.stream_sid, b"\x01"))
    mutate(message)  # type: ignore[operator]
    with pytest.raises(DialectViolation, match=reason):
        dialect.decode(json.dumps(message))


def test_mark_and_clear_violations(dialect: TwilioDialect) -> None:
    sid = dialect.stream_sid
    with pytest.raises(DialectViolation, match="extra"):
        dialect.decode(json.dumps({"event": "clear", "streamSid": sid, "media": {}}))
    with pytest.raises(DialectViolation, match=r"mark\.name"):
        dialect.decode(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": ""}}))
    with pytest.raises(DialectViolation, match="31950"):
        dialect.decode(b"binary")
    with pytest.raises(DialectViolation, match="31951"):
        dialect.decode("{not json")


def test_signs_the_upgrade_the_way_twilio_does() -> None:
    # protocols.md 1.2: token 12345, wss://example.ngrok.app/media-stream
    dialect = TwilioDialect(auth_token="12345")
    headers = dialect.upgrade_headers("https://example.ngrok.app/media-stream?x=1")
    assert headers == {"X-Twilio-Signature": "Mpnh7Fb3gotnt0nF9oakdNoftvQ="}
    pinned = TwilioDialect(auth_token="12345", signed_url="wss://example.ngrok.app/media-stream")
    assert pinned.upgrade_headers("ws://127.0.0.1:1/media-stream") == headers
    assert TwilioDialect().upgrade_headers("ws://x/y") == {}
    assert "12345" not in repr(dialect)


def test_payload_is_base64_of_raw_audio(dialect: TwilioDialect) -> None:
    frame = json.loads(dialect.media(b"\xff" * 160, 0))
    assert base64.b64decode(frame["media"]["payload"]) == b"\xff" * 160
    assert set(frame) == {"event", "sequenceNumber", "media", "streamSid"}
    assert set(frame["media"]) == {"track", "chunk", "timestamp", "payload"}
