"""parse_message: the Twilio -> app messages of protocols.md §1.3, strictness and error codes."""

from __future__ import annotations

import base64
import copy
import json
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voicewire.audio.formats import MULAW_8K, AudioFormat
from voicewire.errors import ProtocolError, VoicewireError
from voicewire_twilio.protocol import (
    DEFAULT_MAX_BYTES,
    ERROR_CODES,
    INBOUND_EVENTS,
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    TwilioProtocolError,
    inbound_audio,
    load_json,
    parse_message,
    parse_object,
)

STREAM = "MZ18ad3ab5a668481ce02b83e7395059f0"
ACCOUNT = "AC25e16e9a716a4a1786a7c83f58e30482"
CALL = "CA44f0da3ef8f64c0b5c2b7d4f9ee5a3c1"
FRAME = bytes(range(96, 256))  # 160 bytes, not all silence, so decoding errors would show
FRAME_B64 = base64.b64encode(FRAME).decode()

# The examples of protocols.md §1.3 with realistic ids (the reference elides them as "MZ…").
CONNECTED: dict[str, Any] = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
START: dict[str, Any] = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": ACCOUNT,
        "streamSid": STREAM,
        "callSid": CALL,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"tenant": "acme", "callerName": "Jane"},
    },
    "streamSid": STREAM,
}
MEDIA: dict[str, Any] = {
    "event": "media",
    "sequenceNumber": "2",
    "media": {"track": "inbound", "chunk": "1", "timestamp": "5", "payload": FRAME_B64},
    "streamSid": STREAM,
}
DTMF: dict[str, Any] = {
    "event": "dtmf",
    "streamSid": STREAM,
    "sequenceNumber": "5",
    "dtmf": {"track": "inbound_track", "digit": "1"},
}
MARK: dict[str, Any] = {
    "event": "mark",
    "sequenceNumber": "4",
    "streamSid": STREAM,
    "mark": {"name": "my label"},
}
STOP: dict[str, Any] = {
    "event": "stop",
    "sequenceNumber": "5",
    "stop": {"accountSid": ACCOUNT, "callSid": CALL},
    "streamSid": STREAM,
}
EXAMPLES = [CONNECTED, START, MEDIA, DTMF, MARK, STOP]

# Every field each event requires, as a path of keys.
REQUIRED: dict[str, list[tuple[str, ...]]] = {
    "connected": [("event",), ("protocol",), ("version",)],
    "start": [
        ("event",),
        ("sequenceNumber",),
        ("streamSid",),
        ("start",),
        ("start", "accountSid"),
        ("start", "streamSid"),
        ("start", "callSid"),
        ("start", "tracks"),
        ("start", "mediaFormat"),
        ("start", "mediaFormat", "encoding"),
        ("start", "mediaFormat", "sampleRate"),
        ("start", "mediaFormat", "channels"),
    ],
    "media": [
        ("event",),
        ("sequenceNumber",),
        ("streamSid",),
        ("media",),
        ("media", "track"),
        ("media", "chunk"),
        ("media", "payload"),
    ],
    "dtmf": [
        ("event",),
        ("sequenceNumber",),
        ("streamSid",),
        ("dtmf",),
        ("dtmf", "track"),
        ("dtmf", "digit"),
    ],
    "mark": [("event",), ("sequenceNumber",), ("streamSid",), ("mark",), ("mark", "name")],
    "stop": [
        ("event",),
        ("sequenceNumber",),
        ("streamSid",),
        ("stop",),
        ("stop", "accountSid"),
        ("stop", "callSid"),
    ],
}


def _frame(obj: dict[str, Any]) -> str:
    return json.dumps(obj)


def _without(obj: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    target = result
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return result


def _with(obj: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    target = result
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return result


def _error(text: str | bytes, **kwargs: Any) -> TwilioProtocolError:
    with pytest.raises(TwilioProtocolError) as info:
        parse_message(text, **kwargs)
    return info.value


# --- the documented examples -------------------------------------------------------------------


def test_connected() -> None:
    assert parse_message(_frame(CONNECTED)) == Connected(protocol="Call", version="1.0.0")


def test_start() -> None:
    start = parse_message(_frame(START))
    assert isinstance(start, Start)
    assert start.event == "start"
    assert start.sequence_number == 1
    assert (start.stream_sid, start.account_sid, start.call_sid) == (STREAM, ACCOUNT, CALL)
    assert start.tracks == ("inbound",)
    assert dict(start.custom_parameters) == {"tenant": "acme", "callerName": "Jane"}
    assert start.media_format == MULAW_8K


def test_start_media_format_carries_rate_and_channels() -> None:
    frame = _with(
        START,
        ("start", "mediaFormat"),
        {"encoding": "audio/x-mulaw", "sampleRate": 16000, "channels": 2},
    )
    start = parse_message(_frame(frame))
    assert isinstance(start, Start)
    assert start.media_format == AudioFormat(encoding="mulaw", sample_rate=16000, channels=2)


def test_start_without_custom_parameters_has_none() -> None:
    start = parse_message(_frame(_without(START, ("start", "customParameters"))))
    assert isinstance(start, Start)
    assert dict(start.custom_parameters) == {}


def test_custom_parameters_are_read_only() -> None:
    start = parse_message(_frame(START))
    assert isinstance(start, Start)
    with pytest.raises(TypeError):
        start.custom_parameters["tenant"] = "evil"  # type: ignore[index]


def test_start_repr_shows_parameter_names_not_values() -> None:
    frame = _with(START, ("start", "customParameters"), {"token": "s3cr3t-value"})
    text = repr(parse_message(_frame(frame)))
    assert "token" in text
    assert "s3cr3t-value" not in text


def test_media() -> None:
    media = parse_message(_frame(MEDIA))
    assert media == Media(
        sequence_number=2,
        stream_sid=STREAM,
        track="inbound",
        chunk=1,
        timestamp_ms=5,
        payload=FRAME,
    )


def test_media_repr_hides_audio() -> None:
    text = repr(parse_message(_frame(MEDIA)))
    assert "<160 bytes>" in text
    assert FRAME_B64 not in text
    assert repr(FRAME) not in text


def test_media_without_timestamp() -> None:
    media = parse_message(_frame(_without(MEDIA, ("media", "timestamp"))))
    assert isinstance(media, Media)
    assert media.timestamp_ms is None


def test_media_with_empty_payload() -> None:
    media = parse_message(_frame(_with(MEDIA, ("media", "payload"), "")))
    assert isinstance(media, Media)
    assert media.payload == b""


def test_dtmf() -> None:
    assert parse_message(_frame(DTMF)) == Dtmf(
        sequence_number=5, stream_sid=STREAM, track="inbound_track", digit="1"
    )


@pytest.mark.parametrize("digit", list("0123456789*#ABCD"))
def test_every_dtmf_key(digit: str) -> None:
    dtmf = parse_message(_frame(_with(DTMF, ("dtmf", "digit"), digit)))
    assert isinstance(dtmf, Dtmf)
    assert dtmf.digit == digit


def test_mark() -> None:
    assert parse_message(_frame(MARK)) == Mark(
        sequence_number=4, stream_sid=STREAM, name="my label"
    )


def test_stop() -> None:
    assert parse_message(_frame(STOP)) == Stop(
        sequence_number=5, stream_sid=STREAM, account_sid=ACCOUNT, call_sid=CALL
    )


def test_examples_cover_every_event() -> None:
    assert sorted(example["event"] for example in EXAMPLES) == sorted(INBOUND_EVENTS)
    assert set(REQUIRED) == set(INBOUND_EVENTS)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e["event"])
def test_bytes_and_str_frames_parse_alike(example: dict[str, Any]) -> None:
    text = _frame(example)
    assert parse_message(text.encode()) == parse_message(text)
    assert parse_message(bytearray(text.encode())) == parse_message(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e["event"])
def test_unknown_fields_are_ignored(example: dict[str, Any]) -> None:
    extended = {**copy.deepcopy(example), "futureField": {"x": [1, 2]}}
    assert parse_message(_frame(extended)) == parse_message(_frame(example))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e["event"])
def test_load_json_then_parse_object_equals_parse_message(example: dict[str, Any]) -> None:
    raw = load_json(_frame(example))
    assert raw == example
    assert parse_object(raw) == parse_message(_frame(example))


def test_large_counters() -> None:
    big = "9" * 18
    media = parse_message(
        _frame(_with(_with(MEDIA, ("sequenceNumber",), big), ("media", "chunk"), "007"))
    )
    assert isinstance(media, Media)
    assert media.sequence_number == 10**18 - 1
    assert media.chunk == 7


# --- errors -------------------------------------------------------------------------------------

# (code, frame, field): one or more cases per documented code.
ERROR_CASES: list[tuple[str, str | bytes, str | None]] = [
    ("invalid_utf8", b'{"event":"connected","protocol":"\xff"}', None),
    ("invalid_json", "", None),
    ("invalid_json", "{", None),
    ("invalid_json", "{'event': 'stop'}", None),
    ("invalid_json", '{"event":"mark","event":"stop"}', None),
    ("invalid_json", '{"event":"media","x":NaN}', None),
    ("invalid_json", '{"event":"media","x":-Infinity}', None),
    ("invalid_json", "\ufeff" + json.dumps(CONNECTED), None),
    ("invalid_json", '{"a":' + "1" * 5000 + "}", None),
    ("invalid_json", "[" * 20000 + "]" * 20000, None),
    ("not_an_object", "[]", None),
    ("not_an_object", '"connected"', None),
    ("not_an_object", "null", None),
    ("not_an_object", "42", None),
    ("missing_field", "{}", "event"),
    ("missing_field", _frame(_without(MEDIA, ("media", "payload"))), "media.payload"),
    (
        "missing_field",
        _frame(_without(START, ("start", "mediaFormat", "channels"))),
        "start.mediaFormat.channels",
    ),
    ("invalid_type", '{"event":7}', "event"),
    ("invalid_type", _frame(_with(MEDIA, ("sequenceNumber",), 2)), "sequenceNumber"),
    ("invalid_type", _frame(_with(MEDIA, ("media",), "x")), "media"),
    ("invalid_type", _frame(_with(MEDIA, ("media", "timestamp"), None)), "media.timestamp"),
    ("invalid_type", _frame(_with(START, ("start", "tracks"), "inbound")), "start.tracks"),
    ("invalid_type", _frame(_with(START, ("start", "tracks"), ["inbound", 1])), "start.tracks"),
    (
        "invalid_type",
        _frame(_with(START, ("start", "customParameters"), {"a": 1})),
        "start.customParameters",
    ),
    (
        "invalid_type",
        _frame(_with(START, ("start", "customParameters"), [])),
        "start.customParameters",
    ),
    (
        "invalid_type",
        _frame(_with(START, ("start", "mediaFormat", "sampleRate"), "8000")),
        "start.mediaFormat.sampleRate",
    ),
    (
        "invalid_type",
        _frame(_with(START, ("start", "mediaFormat", "sampleRate"), 8000.0)),
        "start.mediaFormat.sampleRate",
    ),
    (
        "invalid_type",
        _frame(_with(START, ("start", "mediaFormat", "channels"), True)),
        "start.mediaFormat.channels",
    ),
    ("invalid_type", _frame(_with(MARK, ("mark", "name"), ["a"])), "mark.name"),
    ("invalid_value", _frame(_with(MARK, ("streamSid",), "")), "streamSid"),
    ("invalid_value", _frame(_with(STOP, ("stop", "callSid"), "CA 1")), "stop.callSid"),
    ("invalid_value", _frame(_with(STOP, ("stop", "accountSid"), "A" * 129)), "stop.accountSid"),
    ("invalid_value", _frame(_with(START, ("start", "tracks"), [])), "start.tracks"),
    ("invalid_value", _frame(_with(DTMF, ("dtmf", "digit"), "12")), "dtmf.digit"),
    ("invalid_value", _frame(_with(DTMF, ("dtmf", "digit"), "")), "dtmf.digit"),
    ("invalid_value", _frame(_with(DTMF, ("dtmf", "digit"), "a")), "dtmf.digit"),
    ("unknown_event", '{"event":"clear","streamSid":"MZ1"}', "event"),
    ("unknown_event", '{"event":"Media"}', "event"),
    ("invalid_number", _frame(_with(MEDIA, ("sequenceNumber",), "")), "sequenceNumber"),
    ("invalid_number", _frame(_with(MEDIA, ("sequenceNumber",), "-1")), "sequenceNumber"),
    ("invalid_number", _frame(_with(MEDIA, ("sequenceNumber",), "+1")), "sequenceNumber"),
    ("invalid_number", _frame(_with(MEDIA, ("sequenceNumber",), " 1")), "sequenceNumber"),
    ("invalid_number", _frame(_with(MEDIA, ("media", "chunk"), "1.0")), "media.chunk"),
    ("invalid_number", _frame(_with(MEDIA, ("media", "chunk"), "1e3")), "media.chunk"),
    ("invalid_number", _frame(_with(MEDIA, ("media", "chunk"), "\u0663")), "media.chunk"),
    ("invalid_number", _frame(_with(MEDIA, ("media", "chunk"), "\u00b2")), "media.chunk"),
    ("invalid_number", _frame(_with(MEDIA, ("media", "timestamp"), "1" * 19)), "media.timestamp"),
    ("invalid_number", _frame(_with(MEDIA, ("media", "timestamp"), "5ms")), "media.timestamp"),
    ("invalid_base64", _frame(_with(MEDIA, ("media", "payload"), "////\n")), "media.payload"),
    ("invalid_base64", _frame(_with(MEDIA, ("media", "payload"), "///")), "media.payload"),
    ("invalid_base64", _frame(_with(MEDIA, ("media", "payload"), "A")), "media.payload"),
    ("invalid_base64", _frame(_with(MEDIA, ("media", "payload"), "AA==AA==")), "media.payload"),
    ("invalid_base64", _frame(_with(MEDIA, ("media", "payload"), "-_-_")), "media.payload"),
    (
        "invalid_base64",
        _frame(_with(MEDIA, ("media", "payload"), "\u00ff\u00ff==")),
        "media.payload",
    ),
    (
        "invalid_media_format",
        _frame(_with(START, ("start", "mediaFormat", "encoding"), "audio/ogg")),
        "start.mediaFormat",
    ),
    (
        "invalid_media_format",
        _frame(_with(START, ("start", "mediaFormat", "sampleRate"), 0)),
        "start.mediaFormat",
    ),
    (
        "invalid_media_format",
        _frame(_with(START, ("start", "mediaFormat", "channels"), 0)),
        "start.mediaFormat",
    ),
    (
        "stream_sid_mismatch",
        _frame(_with(START, ("streamSid",), "MZ" + "0" * 32)),
        "start.streamSid",
    ),
    ("message_too_large", json.dumps({**CONNECTED, "pad": "x" * DEFAULT_MAX_BYTES}), None),
]


@pytest.mark.parametrize(("code", "frame", "field"), ERROR_CASES)
def test_error_codes(code: str, frame: str | bytes, field: str | None) -> None:
    error = _error(frame)
    assert error.code == code
    assert error.field == field
    assert str(error)
    if field is not None:
        assert field in str(error)


def test_every_error_code_is_exercised() -> None:
    assert {code for code, _, _ in ERROR_CASES} == set(ERROR_CODES)


def test_error_is_a_voicewire_protocol_error() -> None:
    error = _error("{")
    assert isinstance(error, ProtocolError)
    assert isinstance(error, VoicewireError)


def test_non_text_frame_is_a_protocol_error() -> None:
    error = _error(12345)  # type: ignore[arg-type]
    assert error.code == "invalid_type"


@pytest.mark.parametrize("path", sorted({p for paths in REQUIRED.values() for p in paths}))
def test_every_required_field_is_required(path: tuple[str, ...]) -> None:
    for example in EXAMPLES:
        if path in REQUIRED[example["event"]]:
            error = _error(_frame(_without(example, path)))
            assert error.code == "missing_field", (example["event"], path)
            assert error.field == ".".join(path)


def test_errors_do_not_repeat_payload_or_parameter_values() -> None:
    secret = "Zm9vYmFyc2VjcmV0"  # valid base64 of "foobarsecret"
    bad = _with(_with(MEDIA, ("media", "payload"), secret + "!"), ("media", "track"), "inbound")
    assert secret not in str(_error(_frame(bad)))
    bad_start = _with(START, ("start", "customParameters"), {"api_key": ["sk-very-secret"]})
    message = str(_error(_frame(bad_start)))
    assert "api_key" in message
    assert "sk-very-secret" not in message


def test_unknown_event_name_is_shortened() -> None:
    message = str(_error(json.dumps({"event": "x" * 5000})))
    assert len(message) < 200


def test_error_pickles_with_its_code() -> None:
    error = _error(_frame(_without(MEDIA, ("media", "chunk"))))
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.code, clone.field, str(clone)) == (error.code, error.field, str(error))


# --- size limit ---------------------------------------------------------------------------------


def test_size_limit_is_inclusive() -> None:
    text = _frame(MEDIA)
    assert isinstance(parse_message(text, max_bytes=len(text)), Media)
    assert _error(text, max_bytes=len(text) - 1).code == "message_too_large"
    assert _error(text.encode(), max_bytes=len(text) - 1).code == "message_too_large"


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    text = json.dumps({**CONNECTED, "version": "\u00e9" * 10}, ensure_ascii=False)
    size = len(text.encode())
    assert size > len(text)
    assert isinstance(parse_message(text, max_bytes=size), Connected)
    assert _error(text, max_bytes=size - 1).code == "message_too_large"


def test_default_limit_fits_a_real_media_frame_many_times() -> None:
    assert len(_frame(MEDIA)) * 100 < DEFAULT_MAX_BYTES


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "64"])
def test_bad_max_bytes_is_a_programming_error(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        parse_message(_frame(CONNECTED), max_bytes=bad)


# --- fuzzing ------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _parses_or_protocol_error(frame: str | bytes) -> None:
    # Anything but TwilioProtocolError propagates and fails the example.
    code: str | None = None
    try:
        parse_message(frame)
    except TwilioProtocolError as error:
        code = error.code
    assert code is None or code in ERROR_CODES


@given(st.text())
def test_fuzz_arbitrary_text(text: str) -> None:
    _parses_or_protocol_error(text)


@given(st.binary())
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _parses_or_protocol_error(data)


@given(json_values)
def test_fuzz_arbitrary_json(value: object) -> None:
    _parses_or_protocol_error(json.dumps(value))


@given(st.sampled_from(INBOUND_EVENTS), st.dictionaries(st.text(max_size=12), json_values))
def test_fuzz_arbitrary_objects_of_known_events(event: str, rest: dict[str, Any]) -> None:
    _parses_or_protocol_error(json.dumps({**rest, "event": event}))


def _paths(obj: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            found.append((*prefix, key))
            found.extend(_paths(value, (*prefix, key)))
    return found


@st.composite
def mutated_examples(draw: st.DrawFn) -> str:
    example = draw(st.sampled_from(EXAMPLES))
    path = draw(st.sampled_from(_paths(example)))
    if draw(st.booleans()):
        return _frame(_without(example, path))
    return _frame(_with(example, path, draw(json_values)))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(mutated_examples())
def test_fuzz_examples_with_one_field_removed_or_replaced(frame: str) -> None:
    _parses_or_protocol_error(frame)


@given(st.sampled_from([_frame(e) for e in EXAMPLES]), st.data())
def test_fuzz_examples_with_bytes_flipped(frame: str, data: st.DataObject) -> None:
    raw = bytearray(frame.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
    _parses_or_protocol_error(bytes(raw))


@given(
    payload=st.binary(max_size=2000),
    seq=st.integers(0, 10**18 - 1),
    chunk=st.integers(0, 10**18 - 1),
    timestamp=st.none() | st.integers(0, 10**18 - 1),
)
def test_fuzz_valid_media_round_trips(
    payload: bytes, seq: int, chunk: int, timestamp: int | None
) -> None:
    media: dict[str, Any] = {
        "track": "inbound",
        "chunk": str(chunk),
        "payload": base64.b64encode(payload).decode(),
    }
    if timestamp is not None:
        media["timestamp"] = str(timestamp)
    frame = {"event": "media", "sequenceNumber": str(seq), "media": media, "streamSid": STREAM}
    parsed = parse_message(_frame(frame))
    assert parsed == Media(
        sequence_number=seq,
        stream_sid=STREAM,
        track="inbound",
        chunk=chunk,
        timestamp_ms=timestamp,
        payload=payload,
    )


def _general_media(obj: dict[str, Any]) -> Media | str:
    # The field-by-field parser, which names every problem; the fast path must agree with it.
    from voicewire_twilio.protocol.parse import _Fields, _media

    try:
        return _media(_Fields(obj))
    except TwilioProtocolError as error:
        return error.code


def _any_media(obj: dict[str, Any]) -> Media | str:
    try:
        message = parse_object(obj)
    except TwilioProtocolError as error:
        return error.code
    assert isinstance(message, Media)
    return message


_MEDIA_FIELD_VALUES = (
    json_values
    | st.sampled_from(["0", "18", "007", "1" * 18, "1" * 19, "", "-1", "+1", "1.0", "²", "٣", " 1"])
    | st.sampled_from([FRAME_B64, FRAME_B64 + "=", "AAA=", "A===", "AB==", "@@@@", "AAAA\n"])
    | st.sampled_from([STREAM, "", "MZ 1", "MZ\x00", "x" * 129])
)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(
    path=st.sampled_from(
        [
            ("sequenceNumber",),
            ("streamSid",),
            ("media",),
            ("media", "track"),
            ("media", "chunk"),
            ("media", "timestamp"),
            ("media", "payload"),
        ]
    ),
    remove=st.booleans(),
    value=_MEDIA_FIELD_VALUES,
)
def test_fast_media_path_agrees_with_the_general_parser(
    path: tuple[str, ...], remove: bool, value: object
) -> None:
    """media frames take a quicker path; every frame must come out exactly as the general one."""
    obj = _without(MEDIA, path) if remove else _with(MEDIA, path, value)
    general = _general_media(obj)
    assert _any_media(obj) == general
    # The edge's shortcut takes exactly the well-formed inbound frames of its own stream.
    audio = inbound_audio(obj, STREAM)
    if isinstance(general, Media) and general.track == "inbound" and general.stream_sid == STREAM:
        assert audio == (general.payload, general.timestamp_ms)
    else:
        assert audio is None


def test_the_fast_media_path_takes_the_common_frame() -> None:
    from voicewire_twilio.protocol.parse import _well_formed_media

    assert _well_formed_media(MEDIA) == _general_media(MEDIA)
    assert _well_formed_media(_without(MEDIA, ("media", "timestamp"))) is not None


def test_inbound_audio_takes_only_inbound_media_of_the_stream() -> None:
    assert inbound_audio(MEDIA, STREAM) == (FRAME, 5)
    assert inbound_audio(_without(MEDIA, ("media", "timestamp")), STREAM) == (FRAME, None)
    assert inbound_audio(MEDIA, "MZ" + "0" * 32) is None  # another stream
    assert inbound_audio(_with(MEDIA, ("media", "track"), "outbound"), STREAM) is None
    for other in (CONNECTED, START, DTMF, MARK, STOP):
        assert inbound_audio(other, STREAM) is None
    assert inbound_audio({**MEDIA, "event": "dtmf"}, STREAM) is None
