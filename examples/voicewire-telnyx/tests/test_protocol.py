"""``TelnyxStream``, the sans-I/O dialect: plain calls, no sockets."""

from __future__ import annotations

import base64
import json

from voicewire_telnyx.caller import TelnyxDialect
from voicewire_telnyx.protocol import TelnyxStream

from voicewire.audio import PCM16_24K, AudioConverter
from voicewire.audio.formats import MULAW_8K, AudioFormat
from voicewire.bridge import (
    CallerAudio,
    CallStarted,
    Dialect,
    EdgeCapabilities,
    EdgeError,
    PlaybackAcknowledged,
)


def opened(codec: str = "L16") -> tuple[TelnyxStream, TelnyxDialect]:
    dialect = TelnyxDialect(codec=codec, custom_parameters={"lang": "en"})
    stream = TelnyxStream()
    connected, start = dialect.opening()
    assert stream.receive(connected) is None
    event = stream.receive(start)
    assert isinstance(event, CallStarted)
    assert event.custom_parameters == {"lang": "en"}
    assert event.call_id == dialect.call_control_id
    return stream, dialect


def test_the_stream_is_a_voicewire_dialect() -> None:
    stream, _ = opened("PCMU")
    assert isinstance(stream, Dialect)
    assert stream.capabilities == EdgeCapabilities(
        acknowledgements=True, audio_format=MULAW_8K, provider="telnyx"
    )


def test_l16_is_big_endian_pcm_and_passes_as_it_is_on_the_wire() -> None:
    stream, dialect = opened()
    assert stream.audio_format == AudioFormat(encoding="pcm16be", sample_rate=16000)
    l16 = b"\x02\x01\x04\x03"  # big-endian samples 0x0201, 0x0403
    frame = json.loads(dialect.media(l16, 0))
    assert base64.b64decode(frame["media"]["payload"]) == l16
    assert stream.receive(json.dumps(frame)) == CallerAudio(data=l16, timestamp_ms=0)
    (out,) = stream.play(l16)
    assert json.loads(out) == {"event": "media", "media": {"payload": "AgEEAw=="}}
    # The bridge's converter gives the model little-endian samples (and back).
    to_model = AudioConverter(stream.audio_format, PCM16_24K)
    back = AudioConverter(PCM16_24K, stream.audio_format)
    sent = to_model.convert(l16 * 400) + to_model.flush()
    assert len(sent) == 2400  # 800 samples at 16 kHz are 1200 at 24 kHz
    assert len(back.convert(sent) + back.flush()) == len(l16 * 400)


def test_pcmu_passes_through_and_splits_at_one_second() -> None:
    stream, _ = opened("PCMU")
    assert stream.audio_format == MULAW_8K
    frames = stream.play(b"\xff" * 8100)
    assert [len(base64.b64decode(json.loads(f)["media"]["payload"])) for f in frames] == [
        8000,
        100,
    ]


def test_marks_outbound_track_order_and_errors() -> None:
    stream, dialect = opened("PCMU")
    name = json.loads(stream.mark("tok"))["mark"]["name"]
    assert json.loads(stream.clear()) == {"event": "clear"}
    assert stream.receive(dialect.mark_played(name)) == PlaybackAcknowledged(token="tok")
    assert isinstance(stream.receive(dialect.mark_played(name)), EdgeError)
    outbound = json.dumps({"event": "media", "media": {"track": "outbound", "payload": "/w=="}})
    assert stream.receive(outbound) is None
    assert isinstance(stream.receive(dialect.media(b"\xff" * 160, 40)), CallerAudio)
    late = stream.receive(dialect.media(b"\xff" * 160, 20))
    assert isinstance(late, EdgeError)
    assert late.code == "out_of_order"
    error = stream.receive(json.dumps({"event": "error", "payload": {"code": 100002}}))
    assert isinstance(error, EdgeError)
    assert error.code == "telnyx_100002"


def test_unsupported_format_is_refused() -> None:
    start = {
        "event": "start",
        "stream_id": "s",
        "start": {
            "call_control_id": "c",
            "media_format": {"encoding": "OPUS", "sample_rate": 16000, "channels": 1},
        },
    }
    event = TelnyxStream().receive(json.dumps(start))
    assert isinstance(event, EdgeError)
    assert event.code == "unsupported_format"
