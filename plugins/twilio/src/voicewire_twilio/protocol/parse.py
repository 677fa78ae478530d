"""Strict parsing of the frames Twilio sends on a Media Stream.

Strict means: every field the dialect requires must be present with its documented JSON type, and
counters must be strings of ASCII digits, otherwise :class:`TwilioProtocolError` says which field
and why (its ``code`` is one of :data:`ERROR_CODES`). Nothing else ever escapes: not
``json.JSONDecodeError``, not ``binascii.Error``, not ``RecursionError``.

Fields the dialect does not define are ignored rather than refused, so that Twilio adding a field
cannot hang up calls; an unknown ``event`` is refused, because a dialect change that large should
be noticed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeGuard

import attrs

from voicewire.audio.formats import AudioFormat
from voicewire.errors import VoicewireError
from voicewire_twilio.protocol._rules import sid_problem
from voicewire_twilio.protocol.errors import TwilioErrorCode, TwilioProtocolError
from voicewire_twilio.protocol.messages import (
    Connected,
    Dtmf,
    InboundMessage,
    Mark,
    Media,
    Start,
    Stop,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DTMF_DIGITS",
    "INBOUND_EVENTS",
    "inbound_audio",
    "load_json",
    "parse_message",
    "parse_object",
]

DEFAULT_MAX_BYTES = 64 * 1024
"""Default frame size limit. A 20 ms media frame is about 400 bytes; ``start`` with a handful of
custom parameters is a few KiB. 64 KiB leaves room for large parameter sets while bounding what a
misbehaving peer can make the parser chew on."""

INBOUND_EVENTS: tuple[str, ...] = ("connected", "start", "media", "mark", "dtmf", "stop")
"""The ``event`` values Twilio sends on a bidirectional stream."""

DTMF_DIGITS = frozenset("0123456789*#ABCD")
"""The keys a ``dtmf`` message may carry."""

_MAX_COUNTER_DIGITS = 18  # every value fits a signed 64-bit integer


def _counter_text(value: object) -> TypeGuard[str]:
    # Counters are unsigned decimal strings on the wire. ``str.isdigit`` alone would let in
    # "²" and "٣"; on ASCII text it means exactly 0-9.
    return (
        type(value) is str
        and 0 < len(value) <= _MAX_COUNTER_DIGITS
        and value.isascii()
        and value.isdigit()
    )


_MAX_ECHO = 40
_MAX_REASON = 200


def _fail(code: TwilioErrorCode, message: str, field: str | None = None) -> NoReturn:
    raise TwilioProtocolError(code, message, field=field)


def _json_type(value: object) -> str:
    # Name the JSON type, not the Python one: the reader of the error is debugging a wire frame.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _short(text: str) -> str:
    # Wire strings echoed into an error (an event name, a parameter name) are cut to a length
    # that identifies them without letting a peer fill logs.
    return repr(text if len(text) <= _MAX_ECHO else text[:_MAX_ECHO] + "...")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of duplicate keys silently; two readers of one frame could then
    # disagree about its content, so a duplicate is malformed here.
    result = dict(pairs)
    if len(result) != len(pairs):
        _fail("invalid_json", "invalid JSON: an object has a duplicate key")
    return result


def _no_constants(name: str) -> NoReturn:
    _fail("invalid_json", f"invalid JSON: {name} is not a JSON value")


# One decoder for every frame: json.loads with hooks builds a new JSONDecoder per call, a
# measurable share of the per-frame cost at 50 frames a second per call (bench/bridge_load.py).
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)


def load_json(text: str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Decode one frame to a JSON object, without interpreting it.

    Use this (then :func:`parse_object`) when the raw object is wanted too, e.g. to publish it on
    the ``"*"`` channel; :func:`parse_message` does both steps.

    Args:
        text: The frame: ``str`` for a text frame; ``bytes`` are decoded as UTF-8.
        max_bytes: Largest frame accepted, in UTF-8 bytes.

    Returns:
        The decoded object.

    Raises:
        TwilioProtocolError: ``message_too_large``, ``invalid_utf8``, ``invalid_json`` or
            ``not_an_object``; ``invalid_type`` if ``text`` is neither str nor bytes.
        ValueError: ``max_bytes`` is not a positive int (a programming error, not a wire error).
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
    if isinstance(text, (bytes, bytearray, memoryview)):
        raw = bytes(text)
        if len(raw) > max_bytes:
            _fail("message_too_large", f"frame of {len(raw)} bytes exceeds {max_bytes} bytes")
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            _fail("invalid_utf8", f"frame is not valid UTF-8 (byte {exc.start})")
    elif isinstance(text, str):
        # A character takes one to four UTF-8 bytes: only a length between the two bounds needs
        # the encoding to tell (a media frame is far below, a flood far above).
        length = len(text)
        if length > max_bytes or length * 4 <= max_bytes:
            size = length
        else:
            size = len(text.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            _fail("message_too_large", f"frame of {size} bytes exceeds {max_bytes} bytes")
        decoded = text
    else:
        _fail("invalid_type", f"frame must be str or bytes, got {type(text).__name__}")
    try:
        value = _DECODER.decode(decoded)
    except json.JSONDecodeError as exc:
        _fail("invalid_json", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
    except RecursionError:
        _fail("invalid_json", "invalid JSON: nested too deeply")
    except ValueError:
        # e.g. an integer literal longer than Python's int-conversion limit.
        _fail("invalid_json", "invalid JSON: a value cannot be represented")
    if not isinstance(value, dict):
        _fail("not_an_object", f"frame must be a JSON object, got {_json_type(value)}")
    return value


class _Fields:
    """Typed access to one JSON object, naming fields by their dotted path in errors."""

    __slots__ = ("_obj", "_path")

    def __init__(self, obj: Mapping[str, Any], path: str = "") -> None:
        self._obj = obj
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def where(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def has(self, key: str) -> bool:
        return key in self._obj

    def value(self, key: str) -> object:
        if key not in self._obj:
            _fail("missing_field", f"{self.where(key)}: required field is missing", self.where(key))
        return self._obj[key]

    def _typed(self, key: str, value: object, expected: str) -> NoReturn:
        _fail(
            "invalid_type",
            f"{self.where(key)}: expected {expected}, got {_json_type(value)}",
            self.where(key),
        )

    def text(self, key: str) -> str:
        value = self.value(key)
        if not isinstance(value, str):
            self._typed(key, value, "a string")
        return value

    def sid(self, key: str) -> str:
        value = self.text(key)
        problem = sid_problem(value)
        if problem is not None:
            _fail("invalid_value", f"{self.where(key)}: {problem}", self.where(key))
        return value

    def counter(self, key: str) -> int:
        value = self.text(key)
        if not _counter_text(value):
            _fail(
                "invalid_number",
                f"{self.where(key)}: expected a string of 1 to 18 ASCII digits",
                self.where(key),
            )
        return int(value)

    def integer(self, key: str) -> int:
        value = self.value(key)
        if isinstance(value, bool) or not isinstance(value, int):
            self._typed(key, value, "an integer")
        return value

    def child(self, key: str) -> _Fields:
        value = self.value(key)
        if not isinstance(value, Mapping):
            self._typed(key, value, "an object")
        return _Fields(value, self.where(key))

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.value(key)
        if not isinstance(value, list):
            self._typed(key, value, "an array of strings")
        if not value:
            _fail("invalid_value", f"{self.where(key)}: must not be empty", self.where(key))
        for index, item in enumerate(value):
            if not isinstance(item, str):
                _fail(
                    "invalid_type",
                    f"{self.where(key)}[{index}]: expected a string, got {_json_type(item)}",
                    self.where(key),
                )
        return tuple(value)

    def string_map(self, key: str) -> dict[str, str]:
        value = self.value(key)
        if not isinstance(value, Mapping):
            self._typed(key, value, "an object of strings")
        for name, item in value.items():
            if not isinstance(name, str):
                # Only reachable through parse_object with a hand-built mapping.
                self._typed(key, name, "string keys")
            if not isinstance(item, str):
                # The parameter's name is the application's own vocabulary, its value may not be.
                _fail(
                    "invalid_type",
                    f"{self.where(key)}: parameter {_short(name)} must be a string, "
                    f"got {_json_type(item)}",
                    self.where(key),
                )
        return dict(value)


def _counted(fields: _Fields) -> tuple[int, str]:
    return fields.counter("sequenceNumber"), fields.sid("streamSid")


def _connected(fields: _Fields) -> Connected:
    return Connected(protocol=fields.text("protocol"), version=fields.text("version"))


def _media_format(fields: _Fields) -> AudioFormat:
    encoding = fields.text("encoding")
    rate = fields.integer("sampleRate")
    channels = fields.integer("channels")
    try:
        return attrs.evolve(AudioFormat.parse(encoding, rate), channels=channels)
    except (VoicewireError, ValueError) as exc:
        reason = str(exc)
        if len(reason) > _MAX_REASON:
            reason = reason[:_MAX_REASON] + "..."
        _fail("invalid_media_format", f"{fields.path}: {reason}", fields.path)


def _start(fields: _Fields) -> Start:
    sequence_number, stream_sid = _counted(fields)
    start = fields.child("start")
    inner_sid = start.sid("streamSid")
    if inner_sid != stream_sid:
        _fail(
            "stream_sid_mismatch",
            "start.streamSid differs from the top-level streamSid",
            "start.streamSid",
        )
    parameters = start.string_map("customParameters") if start.has("customParameters") else {}
    return Start(
        sequence_number=sequence_number,
        stream_sid=stream_sid,
        account_sid=start.sid("accountSid"),
        call_sid=start.sid("callSid"),
        tracks=start.strings("tracks"),
        custom_parameters=parameters,
        media_format=_media_format(start.child("mediaFormat")),
    )


def _decode_payload(fields: _Fields) -> bytes:
    payload = fields.text("payload")
    try:
        # validate=True refuses characters outside the alphabet instead of skipping them.
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        _fail("invalid_base64", "media.payload: not valid base64", "media.payload")


def _media(fields: _Fields) -> Media:
    sequence_number, stream_sid = _counted(fields)
    media = fields.child("media")
    return Media(
        sequence_number=sequence_number,
        stream_sid=stream_sid,
        track=media.text("track"),
        chunk=media.counter("chunk"),
        timestamp_ms=media.counter("timestamp") if media.has("timestamp") else None,
        payload=_decode_payload(media),
    )


def _mark(fields: _Fields) -> Mark:
    sequence_number, stream_sid = _counted(fields)
    return Mark(
        sequence_number=sequence_number,
        stream_sid=stream_sid,
        name=fields.child("mark").text("name"),
    )


def _dtmf(fields: _Fields) -> Dtmf:
    sequence_number, stream_sid = _counted(fields)
    dtmf = fields.child("dtmf")
    digit = dtmf.text("digit")
    if digit not in DTMF_DIGITS:
        _fail("invalid_value", "dtmf.digit: expected one of 0-9, *, #, A-D", "dtmf.digit")
    return Dtmf(
        sequence_number=sequence_number,
        stream_sid=stream_sid,
        track=dtmf.text("track"),
        digit=digit,
    )


def _stop(fields: _Fields) -> Stop:
    sequence_number, stream_sid = _counted(fields)
    stop = fields.child("stop")
    return Stop(
        sequence_number=sequence_number,
        stream_sid=stream_sid,
        account_sid=stop.sid("accountSid"),
        call_sid=stop.sid("callSid"),
    )


_PARSERS: dict[str, Callable[[_Fields], InboundMessage]] = {
    "connected": _connected,
    "start": _start,
    "media": _media,
    "mark": _mark,
    "dtmf": _dtmf,
    "stop": _stop,
}


@functools.lru_cache(maxsize=256)
def _good_sid(value: str) -> bool:
    # One stream repeats one sid fifty times a second; the rules are checked once per sid.
    return sid_problem(value) is None


_MediaParts = tuple[str, str, str, str, str | None, bytes]


def _media_parts(obj: Mapping[str, Any]) -> _MediaParts | None:
    """The checked fields of the common ``media`` message, or ``None`` on anything unusual.

    Returns (sequenceNumber, streamSid, track, chunk, timestamp, decoded payload); the general
    parser names the problem of a frame refused here, so both paths accept exactly the same
    frames.
    """
    media = obj.get("media")
    if type(media) is not dict:
        return None
    sequence = obj.get("sequenceNumber")
    sid = obj.get("streamSid")
    chunk = media.get("chunk")
    track = media.get("track")
    payload = media.get("payload")
    timestamp = media.get("timestamp")
    if not (
        _counter_text(sequence)
        and _counter_text(chunk)
        and (_counter_text(timestamp) or (timestamp is None and "timestamp" not in media))
        and type(track) is str
        and type(payload) is str
        and type(sid) is str
        and _good_sid(sid)
    ):
        return None
    try:
        audio = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    return sequence, sid, track, chunk, timestamp, audio


def _well_formed_media(obj: Mapping[str, Any]) -> Media | None:
    # The common case of ``media`` (50 a second per call), checked without building errors.
    parts = _media_parts(obj)
    if parts is None:
        return None
    sequence, sid, track, chunk, timestamp, audio = parts
    return Media(
        sequence_number=int(sequence),
        stream_sid=sid,
        track=track,
        chunk=int(chunk),
        timestamp_ms=None if timestamp is None else int(timestamp),
        payload=audio,
    )


def inbound_audio(obj: Mapping[str, Any], stream_sid: str) -> tuple[bytes, int | None] | None:
    """The audio and timestamp of a well-formed inbound ``media`` message of ``stream_sid``.

    The per-frame shortcut of an edge, fifty times a second per call: it builds no message
    object. It answers ``None`` for anything else (another event, stream or track, or any
    fault), and :func:`parse_object` then interprets or refuses the frame; a frame accepted
    here is one :func:`parse_object` turns into an equal :class:`Media`.

    Args:
        obj: A decoded frame, e.g. from :func:`load_json`.
        stream_sid: The ``streamSid`` of the stream's ``start``.

    Returns:
        ``(payload, timestamp_ms)``, the payload base64-decoded, or ``None``.
    """
    if type(obj) is not dict or obj.get("event") != "media":
        return None
    parts = _media_parts(obj)
    if parts is None or parts[1] != stream_sid or parts[2] != "inbound":
        return None
    timestamp = parts[4]
    return parts[5], None if timestamp is None else int(timestamp)


def parse_object(obj: object) -> InboundMessage:
    """Interpret an already-decoded JSON object as a Twilio message.

    Args:
        obj: The object, e.g. from :func:`load_json`.

    Returns:
        The typed message.

    Raises:
        TwilioProtocolError: ``not_an_object``, ``missing_field``, ``invalid_type``,
            ``unknown_event``, ``invalid_value``, ``invalid_number``, ``invalid_base64``,
            ``invalid_media_format`` or ``stream_sid_mismatch``.
    """
    if not isinstance(obj, Mapping):
        _fail("not_an_object", f"message must be a JSON object, got {_json_type(obj)}")
    if obj.get("event") == "media" and type(obj) is dict:
        fast = _well_formed_media(obj)
        if fast is not None:
            return fast
    fields = _Fields(obj)
    event = fields.text("event")
    parser = _PARSERS.get(event)
    if parser is None:
        _fail("unknown_event", f"event: unknown event {_short(event)}", "event")
    return parser(fields)


def parse_message(text: str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> InboundMessage:
    """Parse one frame Twilio sent on a Media Stream.

    Args:
        text: The frame: ``str`` for a text frame; ``bytes`` are decoded as UTF-8 (Twilio only
            sends text frames).
        max_bytes: Largest frame accepted, in UTF-8 bytes.

    Returns:
        The typed message: :class:`Connected`, :class:`Start`, :class:`Media`, :class:`Mark`,
        :class:`Dtmf` or :class:`Stop`.

    Raises:
        TwilioProtocolError: The frame breaks the dialect; ``code`` says how. No other exception
            is raised for any frame content.
        ValueError: ``max_bytes`` is not a positive int.
    """
    return parse_object(load_json(text, max_bytes=max_bytes))
