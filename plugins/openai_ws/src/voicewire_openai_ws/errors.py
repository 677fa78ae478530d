"""Exceptions of the WebSocket transport (the protocol layer's own are in ``protocol.errors``)."""

from __future__ import annotations

from voicewire.errors import VoicewireError

__all__ = ["ConnectFailedError"]


class ConnectFailedError(VoicewireError):
    """Opening the connection failed: refused upgrade, timeout, early close, bad key, ...

    Raised by ``connect()``, and carried by the ``error`` event of a reconnect that gave up. The
    message never contains the API key.

    Attributes:
        code: A stable machine-readable reason: OpenAI's error code when the server gave one
            (``invalid_api_key``, ``insufficient_quota``, ...), else one of voicewire's:
            ``http_error``, ``timeout``, ``closed_before_ready``, ``network_error``,
            ``handshake_error``, ``missing_api_key``, ``api_key_error``, ``invalid_url``,
            ``aborted``.
        http_status: The HTTP status of a refused upgrade (401, 503, ...), if that is what happened.
        close_code: The WebSocket close code, when the server closed before the session was ready.
        fatal: Whether retrying cannot help (judged by the reconnect policy in use, or by the
            default policy when there is none).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        http_status: int | None = None,
        close_code: int | None = None,
        fatal: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        self.close_code = close_code
        self.fatal = fatal
