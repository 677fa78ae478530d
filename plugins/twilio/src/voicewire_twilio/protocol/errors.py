"""The errors of the Twilio dialect: what a peer sent wrong, and what a caller asked wrong."""

from __future__ import annotations

from typing import Literal, get_args

from voicewire.errors import ProtocolError, VoicewireError

__all__ = ["ERROR_CODES", "TwilioBuildError", "TwilioErrorCode", "TwilioProtocolError"]

TwilioErrorCode = Literal[
    "message_too_large",
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "unknown_event",
    "missing_field",
    "invalid_type",
    "invalid_value",
    "invalid_number",
    "invalid_base64",
    "invalid_media_format",
    "stream_sid_mismatch",
]
"""The machine-readable ``code`` of a :class:`TwilioProtocolError`."""

ERROR_CODES: tuple[TwilioErrorCode, ...] = get_args(TwilioErrorCode)
"""Every :data:`TwilioErrorCode`, in the order the parser checks for them."""


class TwilioProtocolError(ProtocolError):
    """Twilio (or something claiming to be Twilio) sent a message the dialect does not allow.

    The message names the offending field but never repeats its content: a malformed frame may
    carry audio, custom parameters or other caller data that does not belong in logs.

    Attributes:
        code: What went wrong, one of :data:`ERROR_CODES` (e.g. ``"missing_field"``).
        field: The dotted path of the offending field (``"media.chunk"``), or ``None`` when the
            problem is the frame as a whole.
    """

    def __init__(self, code: TwilioErrorCode, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code: TwilioErrorCode = code
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only state would be lost by the default exception pickling.
        return (_rebuild, (self.code, str(self), self.field))


def _rebuild(code: TwilioErrorCode, message: str, field: str | None) -> TwilioProtocolError:
    return TwilioProtocolError(code, message, field=field)


class TwilioBuildError(VoicewireError, ValueError):
    """A value handed to an outbound builder cannot go on the wire (or into TwiML).

    Wrong *types* raise :class:`TypeError` as usual in Python; this error is for values of the
    right type that Twilio would reject or misread (an empty stream sid, an over-long mark name,
    a query string in a stream URL).

    Attributes:
        field: The name of the offending argument.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:
        message = str(self).removeprefix(f"{self.field}: ")
        return (TwilioBuildError, (self.field, message))
