"""``AcmeCall``, the sans-I/O dialect: plain calls, no sockets, no event loop."""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path

import pytest
from voicewire_acme import protocol
from voicewire_acme.protocol import MAX_PLAY_BYTES, AcmeCall

from voicewire.audio.formats import ALAW_8K, MULAW_8K
from voicewire.bridge import (
    CallerAudio,
    CallStarted,
    CallStopped,
    Dialect,
    Dtmf,
    EdgeCapabilities,
    EdgeError,
    PlaybackAcknowledged,
)


def frame(**fields: object) -> str:
    return json.dumps(fields)


def audio(seq: int, data: bytes = b"\xd5" * 160) -> str:
    return frame(type="audio", seq=seq, data=base64.b64encode(data).decode())


@pytest.fixture
def call() -> AcmeCall:
    started = AcmeCall()
    assert isinstance(
        started.receive(frame(type="hello", call="c1", codec="pcma", rate=8000)), CallStarted
    )
    return started


def test_hello_announces_the_codec_and_parameters() -> None:
    call = AcmeCall()
    assert call.audio_format == ALAW_8K  # Acme's default, before hello
    event = call.receive(
        frame(type="hello", call="c9", codec="pcmu", rate=8000, params={"lang": "en"}, v=2)
    )
    assert event == CallStarted(
        call_id="c9", stream_id=None, audio_format=MULAW_8K, custom_parameters={"lang": "en"}
    )
    assert call.audio_format == MULAW_8K
    assert call.capabilities == EdgeCapabilities(
        acknowledgements=True, audio_format=MULAW_8K, provider="acme", max_buffered_ms=200
    )
    assert call.call_id == "c9"


@pytest.mark.parametrize(
    ("hello", "words"),
    [
        ({"call": "c", "codec": "opus", "rate": 8000}, "hello.codec"),
        ({"call": "c", "codec": "pcma", "rate": 16000}, "hello.rate"),
        ({"codec": "pcma", "rate": 8000}, "hello.call"),
        ({"call": "c", "codec": "pcma", "rate": 8000, "params": {"a": 1}}, "hello.params"),
    ],
)
def test_a_bad_hello_is_refused(hello: dict[str, object], words: str) -> None:
    event = AcmeCall().receive(frame(type="hello", **hello))
    assert isinstance(event, EdgeError)
    assert words in event.message


def test_audio_carries_the_media_clock(call: AcmeCall) -> None:
    assert call.receive(audio(0)) == CallerAudio(data=b"\xd5" * 160, timestamp_ms=0)
    assert call.receive(audio(3)) == CallerAudio(data=b"\xd5" * 160, timestamp_ms=60)  # a gap


def test_a_late_or_repeated_frame_is_refused(call: AcmeCall) -> None:
    call.receive(audio(5))
    assert call.receive(audio(5)) == EdgeError(
        message="audio.seq 5 arrived after 5", code="out_of_order"
    )
    assert isinstance(call.receive(audio(4)), EdgeError)
    assert isinstance(call.receive(audio(6)), CallerAudio)


def test_marks_come_back_as_their_tokens(call: AcmeCall) -> None:
    first = json.loads(call.mark("token-a"))
    second = json.loads(call.mark("token-b"))
    assert first["type"] == second["type"] == "mark"
    assert first["ref"] != second["ref"]
    assert call.receive(frame(type="played", ref=second["ref"])) == PlaybackAcknowledged(
        token="token-b"
    )
    assert call.receive(frame(type="played", ref=first["ref"])) == PlaybackAcknowledged(
        token="token-a"
    )
    # Reported once only.
    replay = call.receive(frame(type="played", ref=first["ref"]))
    assert isinstance(replay, EdgeError)
    assert replay.code == "unknown_ref"


def test_marks_outstanding_at_a_flush_are_still_recognised(call: AcmeCall) -> None:
    ref = json.loads(call.mark("before-flush"))["ref"]
    assert json.loads(call.clear()) == {"type": "flush"}
    acknowledged = call.receive(frame(type="played", ref=ref))
    assert acknowledged == PlaybackAcknowledged(token="before-flush")


def test_the_call_is_a_voicewire_dialect(call: AcmeCall) -> None:
    assert isinstance(call, Dialect)


def test_keys_and_bye(call: AcmeCall) -> None:
    assert call.receive(frame(type="key", digit="#")) == Dtmf(digit="#")
    assert isinstance(call.receive(frame(type="key", digit="x")), EdgeError)
    assert call.receive(frame(type="bye")) == CallStopped(reason="bye")
    assert call.ended
    assert call.receive(audio(0)).code == "ended"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("sent", "code"),
    [
        (b"\x00\x01", "binary_frame"),
        ("{not json", "invalid_json"),
        ("[1, 2]", "not_an_object"),
        (frame(type="dance"), "unknown_type"),
        (frame(type="audio", seq=0, data="***"), "bad_message"),
        (frame(type="audio", seq=-1, data="AAAA"), "bad_message"),
        ("x" * 70_000, "too_large"),
    ],
)
def test_garbage_is_refused_not_raised(call: AcmeCall, sent: str | bytes, code: str) -> None:
    event = call.receive(sent)
    assert isinstance(event, EdgeError)
    assert event.code == code


def test_nothing_but_hello_before_hello() -> None:
    event = AcmeCall().receive(audio(0))
    assert isinstance(event, EdgeError)
    assert event.code == "not_started"


def test_a_second_hello_is_refused(call: AcmeCall) -> None:
    event = call.receive(frame(type="hello", call="c2", codec="pcmu", rate=8000))
    assert isinstance(event, EdgeError)
    assert event.code == "duplicate_hello"
    assert call.audio_format == ALAW_8K


def test_play_splits_long_audio() -> None:
    data = bytes(range(256)) * 70  # 17920 bytes: three frames
    frames = [json.loads(f) for f in AcmeCall().play(data)]
    pieces = [base64.b64decode(f["data"]) for f in frames]
    assert [len(p) for p in pieces] == [MAX_PLAY_BYTES, MAX_PLAY_BYTES, 1920]
    assert b"".join(pieces) == data
    assert AcmeCall().play(b"") == []


def test_the_protocol_module_does_no_io() -> None:
    source = Path(protocol.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"asyncio", "aiohttp", "websockets", "time", "socket"}
