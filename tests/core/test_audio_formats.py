"""AudioFormat: names, validation, size arithmetic, silence and the OpenAI wire object."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicewire.audio import ALAW_8K, MULAW_8K, PCM16_24K, AudioFormat, alaw_decode, mulaw_decode
from voicewire.errors import AudioFormatError, ConfigError


@pytest.mark.parametrize(
    ("name", "encoding", "rate"),
    [
        ("audio/pcm", "pcm16", 24000),
        ("audio/pcmu", "mulaw", 8000),
        ("audio/pcma", "alaw", 8000),
        ("audio/x-mulaw", "mulaw", 8000),
        ("audio/x-alaw", "alaw", 8000),
        ("pcm16", "pcm16", 24000),
        ("g711_ulaw", "mulaw", 8000),
        ("g711_alaw", "alaw", 8000),
        ("Audio/X-MULAW", "mulaw", 8000),
    ],
)
def test_parse_known_names(name: str, encoding: str, rate: int) -> None:
    fmt = AudioFormat.parse(name)
    assert (fmt.encoding, fmt.sample_rate, fmt.channels) == (encoding, rate, 1)


def test_parse_rate_for_rate_free_names() -> None:
    assert AudioFormat.parse("audio/pcm", 16000).sample_rate == 16000
    assert AudioFormat.parse("audio/x-mulaw", 16000).sample_rate == 16000
    assert AudioFormat.parse("audio/pcmu", 8000) == MULAW_8K


@pytest.mark.parametrize("name", ["audio/pcmu", "audio/pcma", "pcm16", "g711_ulaw", "g711_alaw"])
def test_parse_rejects_other_rate_for_fixed_names(name: str) -> None:
    with pytest.raises(AudioFormatError, match="rate"):
        AudioFormat.parse(name, 44100)


def test_parse_unknown_name_lists_known_names() -> None:
    with pytest.raises(AudioFormatError) as info:
        AudioFormat.parse("audio/opus")
    message = str(info.value)
    assert "audio/opus" in message
    for known in ("audio/pcm", "audio/pcmu", "audio/pcma", "audio/x-mulaw", "g711_ulaw", "pcm16"):
        assert known in message


def test_parse_rejects_non_string() -> None:
    with pytest.raises(AudioFormatError, match="str"):
        AudioFormat.parse(8000)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"encoding": "opus", "sample_rate": 8000}, "encoding"),
        ({"encoding": "pcm16", "sample_rate": 999}, "sample_rate"),
        ({"encoding": "pcm16", "sample_rate": 192001}, "sample_rate"),
        ({"encoding": "pcm16", "sample_rate": 0}, "sample_rate"),
        ({"encoding": "pcm16", "sample_rate": 8000.0}, "sample_rate"),
        ({"encoding": "pcm16", "sample_rate": True}, "sample_rate"),
        ({"encoding": "pcm16", "sample_rate": 8000, "channels": 0}, "channels"),
        ({"encoding": "pcm16", "sample_rate": 8000, "channels": 1.0}, "channels"),
    ],
)
def test_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        AudioFormat(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")


def test_parse_out_of_range_rate_is_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        AudioFormat.parse("audio/pcm", 500)
    assert info.value.field == "sample_rate"


def test_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        AudioFormat("pcm16", 24000)  # type: ignore[call-arg]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        PCM16_24K.sample_rate = 8000  # type: ignore[misc]
    assert AudioFormat(encoding="pcm16", sample_rate=24000) == PCM16_24K
    assert hash(AudioFormat(encoding="mulaw", sample_rate=8000)) == hash(MULAW_8K)


def test_sizes() -> None:
    assert (PCM16_24K.bytes_per_sample, PCM16_24K.bytes_per_frame, PCM16_24K.bytes_per_ms) == (
        2,
        2,
        48.0,
    )
    assert (MULAW_8K.bytes_per_sample, MULAW_8K.bytes_per_frame, MULAW_8K.bytes_per_ms) == (
        1,
        1,
        8.0,
    )
    stereo = AudioFormat(encoding="pcm16", sample_rate=44100, channels=2)
    assert stereo.bytes_per_frame == 4
    assert stereo.bytes_per_ms == pytest.approx(176.4)


def test_duration_and_nbytes() -> None:
    assert MULAW_8K.duration_ms(160) == 20.0
    assert PCM16_24K.duration_ms(960) == 20.0
    assert MULAW_8K.nbytes_for_ms(20) == 160
    assert PCM16_24K.nbytes_for_ms(20) == 960
    assert PCM16_24K.nbytes_for_ms(0) == 0
    # 1 ms at 22050 Hz is 22.05 frames: rounded to 22 whole frames of 4 bytes.
    stereo = AudioFormat(encoding="pcm16", sample_rate=22050, channels=2)
    assert stereo.nbytes_for_ms(1) == 88


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_nbytes_for_ms_rejects_bad_values(bad: float) -> None:
    with pytest.raises(ValueError, match="ms"):
        PCM16_24K.nbytes_for_ms(bad)


def test_duration_rejects_negative() -> None:
    with pytest.raises(ValueError, match="nbytes"):
        MULAW_8K.duration_ms(-1)


@given(
    encoding=st.sampled_from(["pcm16", "mulaw", "alaw"]),
    rate=st.integers(1000, 192000),
    channels=st.integers(1, 8),
    ms=st.floats(0, 10_000, allow_nan=False),
)
def test_nbytes_for_ms_is_whole_frames_close_to_request(
    encoding: str, rate: int, channels: int, ms: float
) -> None:
    fmt = AudioFormat(encoding=encoding, sample_rate=rate, channels=channels)  # type: ignore[arg-type]
    nbytes = fmt.nbytes_for_ms(ms)
    assert nbytes % fmt.bytes_per_frame == 0
    # Within half a frame of the request.
    assert abs(fmt.duration_ms(nbytes) - ms) <= 500 / rate + 1e-9


def test_silence_bytes_decode_to_near_zero() -> None:
    assert PCM16_24K.silence(20) == bytes(960)
    assert MULAW_8K.silence(20) == b"\xff" * 160
    assert ALAW_8K.silence(20) == b"\xd5" * 160
    assert set(mulaw_decode(MULAW_8K.silence(5))) == {0}
    decoded = alaw_decode(ALAW_8K.silence(1))
    assert decoded == (8).to_bytes(2, "little") * 8


def test_openai_names_and_wire_dict() -> None:
    assert PCM16_24K.openai_name == "audio/pcm"
    assert MULAW_8K.openai_name == "audio/pcmu"
    assert ALAW_8K.openai_name == "audio/pcma"
    assert PCM16_24K.wire_dict() == {"type": "audio/pcm", "rate": 24000}
    assert MULAW_8K.wire_dict() == {"type": "audio/pcmu"}
    assert ALAW_8K.wire_dict() == {"type": "audio/pcma"}


@pytest.mark.parametrize(
    ("fmt", "field"),
    [
        (AudioFormat(encoding="pcm16", sample_rate=16000), "sample_rate"),
        (AudioFormat(encoding="mulaw", sample_rate=16000), "sample_rate"),
        (AudioFormat(encoding="pcm16", sample_rate=24000, channels=2), "channels"),
        (AudioFormat(encoding="pcm16be", sample_rate=24000), "encoding"),
    ],
)
def test_wire_dict_refuses_what_openai_cannot_express(fmt: AudioFormat, field: str) -> None:
    with pytest.raises(AudioFormatError, match=field):
        fmt.wire_dict()


@pytest.mark.parametrize("fmt", [PCM16_24K, MULAW_8K, ALAW_8K])
def test_from_wire_round_trips(fmt: AudioFormat) -> None:
    assert AudioFormat.from_wire(fmt.wire_dict()) == fmt
    assert AudioFormat.from_wire(fmt.openai_name) == fmt


def test_from_wire_accepts_names_and_rates() -> None:
    assert AudioFormat.from_wire("g711_ulaw") == MULAW_8K
    assert AudioFormat.from_wire({"type": "audio/pcm"}) == PCM16_24K
    assert AudioFormat.from_wire({"type": "audio/pcm", "rate": 16000}).sample_rate == 16000


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({}, "type"),
        ({"type": 3}, "type"),
        ({"type": "audio/pcm", "rate": "24000"}, "rate"),
        ({"type": "audio/pcm", "rate": True}, "rate"),
        ({"type": "audio/pcmu", "rate": 16000}, "rate"),
        ({"type": "g711_opus"}, "unknown"),
    ],
)
def test_from_wire_errors(obj: dict[str, object], field: str) -> None:
    with pytest.raises(AudioFormatError, match=field):
        AudioFormat.from_wire(obj)


def test_from_wire_rejects_other_types() -> None:
    with pytest.raises(AudioFormatError, match="mapping"):
        AudioFormat.from_wire(24000)  # type: ignore[arg-type]


def test_big_endian_pcm_sizes_silence_and_no_openai_name() -> None:
    l16 = AudioFormat(encoding="pcm16be", sample_rate=16000)
    assert (l16.bytes_per_sample, l16.bytes_per_frame, l16.bytes_per_ms) == (2, 2, 32.0)
    assert l16.silence(1) == b"\x00" * 32
    assert l16 != AudioFormat(encoding="pcm16", sample_rate=16000)
    with pytest.raises(AudioFormatError, match="encoding: OpenAI has no 'pcm16be' audio"):
        _ = l16.openai_name
