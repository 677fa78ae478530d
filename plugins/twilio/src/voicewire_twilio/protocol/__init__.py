"""The Twilio Media Streams dialect, sans I/O.

Parsing and building of the WebSocket messages, mark naming, outbound re-framing, request
signatures and TwiML. Nothing here does I/O or reads a clock: the edge and the server feed it
text and bytes and send what it returns. See ``docs/twilio/protocol.md``.
"""

from __future__ import annotations

from voicewire_twilio.protocol._rules import MAX_MARK_NAME_LENGTH, MAX_SID_LENGTH
from voicewire_twilio.protocol.build import clear_message, mark_message, media_message
from voicewire_twilio.protocol.call_token import (
    CALL_TOKEN_PARAMETER,
    CallTokens,
    CallTokenVerdict,
)
from voicewire_twilio.protocol.errors import (
    ERROR_CODES,
    TwilioBuildError,
    TwilioErrorCode,
    TwilioProtocolError,
)
from voicewire_twilio.protocol.framing import FRAME_BYTES, MULAW_SILENCE, Framer
from voicewire_twilio.protocol.marks import (
    MARK_PREFIX,
    MarkId,
    MarkNamer,
    MarkState,
    parse_mark_name,
)
from voicewire_twilio.protocol.messages import (
    Connected,
    Dtmf,
    InboundMessage,
    Mark,
    Media,
    Start,
    Stop,
)
from voicewire_twilio.protocol.parse import (
    DEFAULT_MAX_BYTES,
    DTMF_DIGITS,
    INBOUND_EVENTS,
    inbound_audio,
    load_json,
    parse_message,
    parse_object,
)
from voicewire_twilio.protocol.signature import (
    SIGNATURE_HEADER,
    SignatureParams,
    SignatureValidator,
    compute_signature,
    signature_url_candidates,
    validate_signature,
    websocket_signature_url,
)
from voicewire_twilio.protocol.twiml import connect_stream_twiml

__all__ = [
    "CALL_TOKEN_PARAMETER",
    "DEFAULT_MAX_BYTES",
    "DTMF_DIGITS",
    "ERROR_CODES",
    "FRAME_BYTES",
    "INBOUND_EVENTS",
    "MARK_PREFIX",
    "MAX_MARK_NAME_LENGTH",
    "MAX_SID_LENGTH",
    "MULAW_SILENCE",
    "SIGNATURE_HEADER",
    "CallTokenVerdict",
    "CallTokens",
    "Connected",
    "Dtmf",
    "Framer",
    "InboundMessage",
    "Mark",
    "MarkId",
    "MarkNamer",
    "MarkState",
    "Media",
    "SignatureParams",
    "SignatureValidator",
    "Start",
    "Stop",
    "TwilioBuildError",
    "TwilioErrorCode",
    "TwilioProtocolError",
    "clear_message",
    "compute_signature",
    "connect_stream_twiml",
    "inbound_audio",
    "load_json",
    "mark_message",
    "media_message",
    "parse_mark_name",
    "parse_message",
    "parse_object",
    "signature_url_candidates",
    "validate_signature",
    "websocket_signature_url",
]
