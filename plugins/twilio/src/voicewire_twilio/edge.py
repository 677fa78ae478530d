"""``TwilioEdge``: the Twilio Media Streams dialect as a ``voicewire.bridge.TelephonyEdge``.

The edge owns one bidirectional media stream. Its ``events()`` iterator reads each frame, parses
it with the strict parser of :mod:`voicewire_twilio.protocol` and turns it into the bridge's inbound
events; a writer task, started when there is something to send, drains a bounded outbound queue,
keeping audio to whole 20 ms frames and naming marks. Bad input never ends the call: it becomes an
``EdgeError`` and the edge reads on.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import attrs

from voicewire.audio.formats import MULAW_8K, AudioFormat
from voicewire.bridge import Drain
from voicewire.bridge.edge import (
    CallerAudio,
    CallStarted,
    CallStopped,
    Dtmf,
    EdgeCapabilities,
    EdgeError,
    EdgeEvent,
    PlaybackAcknowledged,
    RawEdgeMessage,
)
from voicewire.errors import ConfigError, TransportStateError
from voicewire_twilio.events import TwilioMessageEvent
from voicewire_twilio.protocol import (
    CALL_TOKEN_PARAMETER,
    DEFAULT_MAX_BYTES,
    FRAME_BYTES,
    CallTokens,
    Connected,
    Framer,
    InboundMessage,
    Mark,
    MarkNamer,
    Media,
    Start,
    Stop,
    TwilioProtocolError,
    clear_message,
    inbound_audio,
    load_json,
    mark_message,
    media_message,
    parse_object,
)
from voicewire_twilio.protocol import Dtmf as TwilioDtmf
from voicewire_twilio.websocket import MediaSocket, MediaSocketError, as_media_socket

__all__ = ["DEFAULT_OUTBOUND_BUFFER_MS", "DEFAULT_SEND_TIMEOUT", "TwilioEdge", "TwilioEdgeStats"]

logger = logging.getLogger("voicewire_twilio.edge")

DEFAULT_OUTBOUND_BUFFER_MS = 5000.0
"""Audio the edge queues ahead of the socket before ``play`` waits (milliseconds)."""

DEFAULT_SEND_TIMEOUT = 5.0
"""Seconds ``play`` waits for room in a full outbound queue before it drops the chunk."""

_MAX_STALE_MARKS = 4096
_MAX_WARNINGS = 20


@attrs.frozen(kw_only=True)
class TwilioEdgeStats:
    """Counters of one edge: everything received, sent, dropped or refused, so nothing is silent.

    Attributes:
        frames_received: WebSocket data frames read (text and binary).
        media_received: Caller ``media`` messages accepted.
        audio_bytes_received: Their audio bytes.
        errors: ``EdgeError`` events yielded (refused input, overflow).
        media_sent: ``media`` messages sent to Twilio.
        audio_bytes_sent: Audio bytes in them.
        marks_sent: ``mark`` messages sent.
        marks_played: Echoes of current marks (playback reached them).
        marks_cleared: Marks known to be dropped by a clear: stale echoes from Twilio, plus marks
            the edge dropped from its own queue (acknowledged by the edge itself).
        unknown_marks: Echoes of names this edge never sent (or already saw).
        clears: ``clear`` messages sent.
        audio_bytes_cleared: Audio dropped from the edge's own queue by a clear (never sent).
        audio_chunks_dropped: Chunks refused because the queue stayed full (slow reader).
        audio_bytes_dropped: Their bytes.
        audio_bytes_after_close: Audio handed to ``play`` after the stream ended (not sent).
    """

    frames_received: int = 0
    media_received: int = 0
    audio_bytes_received: int = 0
    errors: int = 0
    media_sent: int = 0
    audio_bytes_sent: int = 0
    marks_sent: int = 0
    marks_played: int = 0
    marks_cleared: int = 0
    unknown_marks: int = 0
    clears: int = 0
    audio_bytes_cleared: int = 0
    audio_chunks_dropped: int = 0
    audio_bytes_dropped: int = 0
    audio_bytes_after_close: int = 0


@attrs.frozen
class _Audio:
    data: bytes


@attrs.frozen
class _MarkRequest:
    token: str


@attrs.frozen
class _ClearRequest:
    pass


_Outbound = _Audio | _MarkRequest | _ClearRequest


class _SendFailed(Exception):
    """The socket refused a send: the connection is gone."""


if TYPE_CHECKING:
    _LoggerAdapter = logging.LoggerAdapter[logging.Logger]
else:
    _LoggerAdapter = logging.LoggerAdapter


class _CallLog(_LoggerAdapter):
    # Every line names the call and the stream, never a payload, parameter value or secret.
    def __init__(self, base: logging.Logger, edge: TwilioEdge) -> None:
        super().__init__(base, {})
        self._edge = edge

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        call = self._edge.call_sid or "-"
        stream = self._edge.stream_sid or "-"
        extra = dict(kwargs.get("extra") or {})
        extra.update({"call_sid": call, "stream_sid": stream})
        kwargs["extra"] = extra
        return f"[call={call} stream={stream}] {msg}", kwargs


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(name, f"must be a finite number > 0, got {value!r}")
    return float(value)


class TwilioEdge:
    """A Twilio Media Streams connection as a telephony edge of the call bridge.

    Capabilities: acknowledgements (Twilio marks) and mu-law 8 kHz audio, as announced by the
    stream's ``start.mediaFormat``.

    Inbound, ``events()`` yields, per frame: ``RawEdgeMessage(TwilioMessageEvent(...))`` for
    every frame that is a JSON object (unless :attr:`raw_messages_wanted` says nobody wants
    them), then the typed event (``CallStarted``, ``CallerAudio``,
    ``PlaybackAcknowledged``, ``Dtmf``, ``CallStopped``). Malformed JSON, an unknown event, bad
    base64, a binary frame, an oversized frame, a wrong ``streamSid`` and the like yield
    ``EdgeError(message, code)`` and the edge reads on. When the connection ends, a final
    ``CallStopped`` is yielded if Twilio's ``stop`` never came.

    Outbound, ``play`` queues audio, which is sent in whole 20 ms frames (160 bytes each), all the
    frames at hand in one ``media`` message; a partial frame is held back for the next chunk and
    sent as is (unpadded unless ``pad_final_frame``) when the queue runs dry or a mark must follow
    it, so a mark never overtakes audio queued before it. ``acknowledge_when_played(token)`` sends
    a mark named by :class:`~voicewire_twilio.protocol.MarkNamer` and yields
    ``PlaybackAcknowledged(token)`` when Twilio echoes it. ``clear()`` drops the queue, resets the
    framing, sends ``clear`` and starts a new mark generation: every outstanding token is then
    acknowledged once more (Twilio's echo of a pending mark, or the edge's own for a mark that
    never left the queue); such acknowledgements mean *dropped*, which the bridge knows because
    it cleared.

    The outbound queue holds at most ``outbound_buffer_ms`` of audio. ``play`` waits for room
    (back-pressure) up to ``send_timeout`` seconds; then the chunk is dropped, counted in
    :attr:`stats`, and one ``EdgeError(code="outbound_overflow")`` is yielded per episode.

    Args:
        websocket: The accepted Twilio WebSocket: an aiohttp ``WebSocketResponse`` (or client
            connection), or any :class:`~voicewire_twilio.websocket.MediaSocket`.
        max_message_bytes: Largest inbound frame the parser accepts (default 64 KiB).
        outbound_buffer_ms: Outbound queue bound, in milliseconds of audio.
        send_timeout: Seconds ``play`` waits for room before dropping.
        pad_final_frame: Pad a partial final frame with silence to 20 ms instead of sending it
            short. Off by default, so the caller hears exactly the model's bytes.
        account_sid: The Twilio account (``AC...``) the stream must belong to. A ``start`` of
            another account yields ``EdgeError(code="account_mismatch")`` and then
            ``CallStopped(reason="account_mismatch")``, so a bridge ends the call before it
            reaches the model; nothing else is accepted on that connection. ``None``: any
            account (the upgrade's signature is then the only check).
        call_tokens: Require a valid call token (see
            :class:`~voicewire_twilio.protocol.CallTokens`) in ``start.customParameters``: a
            ``start`` without one, or with one that is forged, expired or used before, is
            refused as with ``account_sid`` (code ``call_token_refused``). The token is taken out
            of the parameters the bridge and the application see. ``None``: no check.

    Raises:
        ConfigError: An option is out of range.
        TypeError: ``websocket`` is not a supported WebSocket.
    """

    provider = "twilio"

    def __init__(
        self,
        websocket: object,
        *,
        max_message_bytes: int = DEFAULT_MAX_BYTES,
        outbound_buffer_ms: float = DEFAULT_OUTBOUND_BUFFER_MS,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
        pad_final_frame: bool = False,
        account_sid: str | None = None,
        call_tokens: CallTokens | None = None,
    ) -> None:
        if (
            isinstance(max_message_bytes, bool)
            or not isinstance(max_message_bytes, int)
            or max_message_bytes <= 0
        ):
            raise ConfigError("max_message_bytes", f"must be an int > 0, got {max_message_bytes!r}")
        if account_sid is not None and (not isinstance(account_sid, str) or not account_sid):
            raise ConfigError("account_sid", "must be a non-empty str (AC...) or None")
        if call_tokens is not None and not isinstance(call_tokens, CallTokens):
            raise ConfigError("call_tokens", "must be a CallTokens or None")
        self._expected_account = account_sid
        self._call_tokens = call_tokens
        self._start_refused: str | None = None  # the code it was refused with
        self._socket: MediaSocket = as_media_socket(websocket)
        self._max_message_bytes = max_message_bytes
        self._buffer_ms = _positive("outbound_buffer_ms", outbound_buffer_ms)
        self._send_timeout = _positive("send_timeout", send_timeout)
        self._pad = bool(pad_final_frame)
        self._format: AudioFormat = MULAW_8K
        self._buffer_limit = max(1, MULAW_8K.nbytes_for_ms(self._buffer_ms))
        self._framer = Framer(FRAME_BYTES)
        self._namer = MarkNamer()
        self._stream_sid: str | None = None
        self._call_sid: str | None = None
        self._account_sid: str | None = None
        self._custom_parameters: Mapping[str, str] = {}
        self._stopped = False
        self._marks: dict[str, str] = {}
        self._stale: OrderedDict[str, str] = OrderedDict()
        self._deferred: list[str] = []
        self._out: deque[_Outbound] = deque()
        self._out_bytes = 0
        self._epoch = 0
        self._inbox: deque[EdgeEvent] = deque()
        self._overflowing = False
        self._iterated = False
        self._closed = False
        self._reader_done = False
        self._send_failed = False
        self._warnings = 0
        self._stats: dict[str, int] = dict.fromkeys(attrs.fields_dict(TwilioEdgeStats), 0)
        self._started = asyncio.Event()
        self._space = asyncio.Event()
        # A writer task only while there is something to send, started eagerly: media the
        # socket takes at once is written before play() returns.
        self._writer = Drain(self._write, name="voicewire-twilio-edge-writer")
        self._log = _CallLog(logger, self)
        self.raw_messages_wanted: Callable[[], bool] | None = None
        """Says whether anyone wants ``RawEdgeMessage`` events now; ``None``: always.

        :class:`~voicewire.bridge.CallBridge` sets it to whether anything listens on ``"*"``,
        so that a call nobody inspects does not build a raw event for every frame.
        """

    def __repr__(self) -> str:
        return f"<TwilioEdge call={self._call_sid} stream={self._stream_sid} closed={self._closed}>"

    # -----------------------------------------------------------------------------------------
    # what the bridge reads
    # -----------------------------------------------------------------------------------------

    @property
    def capabilities(self) -> EdgeCapabilities:
        """Acknowledgements (marks); the format from ``start`` (mu-law 8 kHz before); whether
        the start is checked (``account_sid``, ``call_tokens``)."""
        return EdgeCapabilities(
            acknowledgements=True,
            audio_format=self._format,
            provider="twilio",
            checks_call_start=self._expected_account is not None or self._call_tokens is not None,
        )

    @property
    def stream_sid(self) -> str | None:
        """The stream's ``streamSid`` once ``start`` arrived."""
        return self._stream_sid

    @property
    def call_sid(self) -> str | None:
        """The call's ``callSid`` once ``start`` arrived."""
        return self._call_sid

    @property
    def account_sid(self) -> str | None:
        """The account's ``accountSid`` once ``start`` arrived."""
        return self._account_sid

    @property
    def custom_parameters(self) -> Mapping[str, str]:
        """The ``<Parameter>`` values of the TwiML ``<Stream>`` (empty before ``start``)."""
        return self._custom_parameters

    @property
    def closed(self) -> bool:
        """``close()`` was called."""
        return self._closed

    @property
    def stats(self) -> TwilioEdgeStats:
        """A snapshot of the edge's counters."""
        return TwilioEdgeStats(**self._stats)

    @property
    def socket(self) -> MediaSocket:
        """The media socket the edge runs on."""
        return self._socket

    def events(self) -> AsyncIterator[EdgeEvent]:
        """Inbound events until the connection ends. Iterate once.

        The iterator reads the socket itself, in the task that iterates it: a frame is parsed
        when the consumer asks for the next event, so a slow consumer pushes back on the caller's
        connection through TCP, and no task stands between the socket and the bridge. The few
        events the edge makes on its own (acknowledgements of marks a ``clear`` dropped before
        they left, an ``outbound_overflow`` error) come before the next frame's, or at the end of
        the stream; Twilio sends a media frame every 20 ms for the whole call.

        Raises:
            TransportStateError: Iterated a second time.
        """
        if self._iterated:
            raise TransportStateError("TwilioEdge.events() can be iterated only once")
        self._iterated = True
        return self._read()

    # -----------------------------------------------------------------------------------------
    # commands
    # -----------------------------------------------------------------------------------------

    async def play(self, data: bytes) -> None:
        """Queue audio for the caller, waiting while the queue is full (see the class doc)."""
        size = len(data)
        if size == 0:
            return
        if self._finished():
            self._count("audio_bytes_after_close", size)
            return
        if self._no_room(size):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._send_timeout
            while self._no_room(size):
                remaining = deadline - loop.time()
                if remaining <= 0 or self._finished():
                    self._drop(size)
                    return
                self._space.clear()
                # A timer rather than wait_for: before Python 3.12, wait_for drops a
                # cancellation (a barge-in abandoning this play) that comes as room appears, and
                # the audio would be queued after the clear.
                timer = loop.call_later(remaining, self._space.set)
                try:
                    await self._space.wait()
                finally:
                    timer.cancel()
            if self._finished():
                self._count("audio_bytes_after_close", size)
                return
        self._queue_audio(data)
        self._kick()

    def play_nowait(self, data: bytes, token: str | None = None) -> bool:
        """Queue audio, and a mark for ``token`` after it, if the queue has room now.

        What ``play(data)`` then ``acknowledge_when_played(token)`` do, without waiting: when
        the outbound queue has no room for ``data``, nothing is queued and ``False`` comes back
        (``play`` would wait). After the connection ended the audio is counted as
        ``audio_bytes_after_close`` and ``True`` comes back, as ``play`` returns.

        Args:
            data: Audio in the stream's format (may be empty: only the mark is queued).
            token: The acknowledgement token, or ``None`` for audio alone.

        Returns:
            Whether the edge took the audio.

        Raises:
            TypeError: ``token`` is neither a str nor ``None``.
        """
        if token is not None and not isinstance(token, str):
            raise TypeError(f"token must be a str, got {type(token).__name__}")
        size = len(data)
        if self._finished():
            self._count("audio_bytes_after_close", size)
            return True
        if self._no_room(size):
            return False
        if size:
            self._queue_audio(data)
        if token is not None:
            self._out.append(_MarkRequest(token))
        self._kick()
        return True

    async def acknowledge_when_played(self, token: str) -> None:
        """Send a mark after the audio queued so far; report ``token`` when Twilio echoes it."""
        if not isinstance(token, str):
            raise TypeError(f"token must be a str, got {type(token).__name__}")
        if self._finished():
            return
        self._out.append(_MarkRequest(token))
        self._kick()

    async def clear(self) -> None:
        """Drop all queued audio (here and at Twilio) and make outstanding marks stale."""
        if self._finished():
            return
        self._epoch += 1
        dropped_tokens = list(self._deferred)
        self._deferred.clear()
        dropped_bytes = self._framer.reset()
        for item in self._out:
            if isinstance(item, _Audio):
                dropped_bytes += len(item.data)
            elif isinstance(item, _MarkRequest):
                dropped_tokens.append(item.token)
        self._out.clear()
        self._out_bytes = 0
        self._space.set()
        self._count("audio_bytes_cleared", dropped_bytes)
        # Marks already at Twilio become stale: Twilio echoes them after executing the clear.
        self._namer.new_generation()
        for name, token in self._marks.items():
            self._remember_stale(name, token)
        self._marks.clear()
        # Marks that never left the queue are acknowledged here, as Twilio would have done.
        for token in dropped_tokens:
            self._count("marks_cleared")
            self._push(PlaybackAcknowledged(token=token))
        self._out.append(_ClearRequest())
        self._kick()

    async def close(self, reason: str | None = None) -> None:
        """Close the media connection and stop the edge's tasks. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._writer.stop()
        try:
            # This also ends the events() iterator: the adapter's close unblocks receive_frame.
            await self._socket.close(1000, reason or "")
        except Exception as exc:  # the connection may already be gone; closing must not fail
            self._log.debug("closing the socket failed: %s", type(exc).__name__)
        self._log.debug("edge closed (reason=%s)", reason)

    # -----------------------------------------------------------------------------------------
    # internals
    # -----------------------------------------------------------------------------------------

    def _finished(self) -> bool:
        # A method, not a property: the answer changes across awaits, which narrowing ignores.
        return self._closed or self._send_failed or self._reader_done

    def _no_room(self, size: int) -> bool:
        # A chunk larger than the whole buffer still goes into an empty one.
        return self._out_bytes > 0 and self._out_bytes + size > self._buffer_limit

    def _queue_audio(self, data: bytes) -> None:
        self._overflowing = False
        self._out.append(_Audio(bytes(data)))
        self._out_bytes += len(data)

    def _kick(self) -> None:
        if self._started.is_set() and not self._finished():
            self._writer.kick()

    def _count(self, name: str, amount: int = 1) -> None:
        self._stats[name] += amount

    def _push(self, event: EdgeEvent) -> None:
        self._inbox.append(event)

    def _error(self, message: str, code: str) -> None:
        self._count("errors")
        self._warnings += 1
        # A hostile peer can send thousands of bad frames: the first few are worth a warning.
        level = logging.WARNING if self._warnings <= _MAX_WARNINGS else logging.DEBUG
        self._log.log(level, "refused input (%s): %s", code, message)
        self._push(EdgeError(message=message, code=code))

    def _drop(self, size: int) -> None:
        self._count("audio_chunks_dropped")
        self._count("audio_bytes_dropped", size)
        if not self._overflowing:
            self._overflowing = True
            self._error(
                f"outbound audio dropped: the caller's connection reads too slowly"
                f" ({self._stats['audio_chunks_dropped']} chunks,"
                f" {self._stats['audio_bytes_dropped']} bytes dropped so far)",
                "outbound_overflow",
            )

    def _remember_stale(self, name: str, token: str) -> None:
        self._stale[name] = token
        while len(self._stale) > _MAX_STALE_MARKS:
            self._stale.popitem(last=False)

    # reader ------------------------------------------------------------------------------------

    async def _read(self) -> AsyncIterator[EdgeEvent]:
        inbox = self._inbox
        stats = self._stats
        try:
            while not self._closed:
                while inbox:
                    yield inbox.popleft()
                try:
                    frame = await self._socket.receive_frame()
                except MediaSocketError as exc:
                    self._error(str(exc), exc.code)
                    continue
                if frame is None:
                    break
                stats["frames_received"] += 1
                self._handle_frame(frame)
        except Exception as exc:  # a broken adapter or connection ends the stream, not the bridge
            self._error(f"the media connection failed ({type(exc).__name__})", "connection_error")
        finally:
            # Also when the consumer stops iterating (aclose, cancellation): the stream is over.
            if not self._stopped:
                self._stopped = True
                self._push(CallStopped(reason="connection_closed"))
            self._reader_done = True
            self._space.set()
        while inbox:
            yield inbox.popleft()

    def _handle_frame(self, frame: str | bytes) -> None:
        if not isinstance(frame, str):
            self._error(
                f"binary frame of {len(frame)} bytes ignored: Media Streams frames are text",
                "binary_frame",
            )
            return
        try:
            obj = load_json(frame, max_bytes=self._max_message_bytes)
        except TwilioProtocolError as exc:
            self._error(str(exc), exc.code)
            return
        wanted = self.raw_messages_wanted
        if wanted is None or wanted():
            self._push(RawEdgeMessage(event=TwilioMessageEvent(message=obj)))
        sid = self._stream_sid
        if sid is not None:
            # Fifty a second per call: the caller's audio skips the message object and dispatch.
            audio = inbound_audio(obj, sid)
            if audio is not None:
                data = audio[0]
                stats = self._stats
                stats["media_received"] += 1
                stats["audio_bytes_received"] += len(data)
                self._inbox.append(CallerAudio(data=data, timestamp_ms=audio[1]))
                return
        try:
            message = parse_object(obj)
        except TwilioProtocolError as exc:
            self._error(str(exc), exc.code)
            return
        self._dispatch(message)

    def _dispatch(self, message: InboundMessage) -> None:
        if isinstance(message, Connected):
            return
        if isinstance(message, Start):
            self._on_start(message)
            return
        if self._stream_sid is None:
            self._error(f"{message.event!r} before 'start' ignored", "not_started")
            return
        if message.stream_sid != self._stream_sid:
            self._error(f"{message.event!r} for another streamSid ignored", "stream_sid_mismatch")
            return
        if isinstance(message, Media):
            if message.track != "inbound":
                self._error(f"media of track {message.track[:40]!r} ignored", "unexpected_track")
                return
            self._count("media_received")
            self._count("audio_bytes_received", len(message.payload))
            self._push(CallerAudio(data=message.payload, timestamp_ms=message.timestamp_ms))
        elif isinstance(message, Mark):
            self._on_mark(message.name)
        elif isinstance(message, TwilioDtmf):
            self._push(Dtmf(digit=message.digit))
        elif isinstance(message, Stop):
            self._log.info("twilio stopped the stream")
            if not self._stopped:
                self._stopped = True
                self._push(CallStopped(reason="stop"))

    def _refuse_start(self, message: str, code: str) -> None:
        # Nothing more is accepted on this connection, and the bridge ends the call.
        self._error(message, code)
        self._start_refused = code
        if not self._stopped:
            self._stopped = True
            self._push(CallStopped(reason=code))

    def _on_start(self, start: Start) -> None:
        if self._start_refused is not None:
            # No second chance with another account or token on the same connection.
            self._error("'start' after a refused one ignored", self._start_refused)
            return
        if self._stream_sid is not None:
            self._error("a second 'start' ignored: one edge carries one stream", "duplicate_start")
            return
        expected = self._expected_account
        if expected is not None and start.account_sid != expected:
            # A replayed upgrade carries a valid signature; the account it streams for must
            # still be ours. The foreign SID is not logged: it is the peer's text.
            self._refuse_start("'start' of another Twilio account refused", "account_mismatch")
            return
        parameters = start.custom_parameters
        tokens = self._call_tokens
        if tokens is not None:
            verdict = tokens.check(start.call_sid, parameters, time.time())
            if verdict != "ok":
                self._refuse_start(
                    f"'start' without a valid call token refused ({verdict})", "call_token_refused"
                )
                return
            parameters = {k: v for k, v in parameters.items() if k != CALL_TOKEN_PARAMETER}
        self._stream_sid = start.stream_sid
        self._call_sid = start.call_sid
        self._account_sid = start.account_sid
        self._custom_parameters = parameters
        self._format = start.media_format
        if self._format.encoding != "mulaw" or self._format.sample_rate != 8000:
            # Frames stay 20 ms in whatever format Twilio announced.
            self._framer = Framer(self._format.nbytes_for_ms(20), self._format.silence(1)[0])
        self._buffer_limit = max(1, self._format.nbytes_for_ms(self._buffer_ms))
        self._namer.new_generation()
        self._log.info(
            "stream started (%s, %d Hz, parameters=%s)",
            self._format.encoding,
            self._format.sample_rate,
            sorted(parameters),
        )
        self._push(
            CallStarted(
                call_id=start.call_sid,
                stream_id=start.stream_sid,
                audio_format=self._format,
                custom_parameters=parameters,
            )
        )
        self._started.set()
        self._kick()

    def _on_mark(self, name: str) -> None:
        state = self._namer.classify(name)
        token: str | None = None
        if state == "current":
            token = self._marks.pop(name, None)
            if token is not None:
                self._count("marks_played")
        elif state == "stale":
            token = self._stale.pop(name, None)
            if token is not None:
                self._count("marks_cleared")
        if token is None:
            self._count("unknown_marks")
            self._error("echo of a mark this edge did not send (or already saw)", "unknown_mark")
            return
        self._push(PlaybackAcknowledged(token=token))

    # writer ------------------------------------------------------------------------------------

    async def _write(self) -> None:
        try:
            while not self._finished():
                if not self._out:
                    if self._framer.pending or self._deferred:
                        await self._flush_tail(self._epoch)
                        continue
                    return
                item = self._out.popleft()
                if isinstance(item, _Audio):
                    data = item.data
                    if self._out and isinstance(self._out[0], _Audio):
                        # Audio queued back to back goes out together: fewer, larger messages.
                        chunks = [data]
                        while self._out and isinstance(self._out[0], _Audio):
                            chunks.append(self._out.popleft().data)  # type: ignore[union-attr]
                        data = b"".join(chunks)
                    self._out_bytes -= len(data)
                    self._space.set()
                    await self._send_audio(data)
                elif isinstance(item, _MarkRequest):
                    await self._send_mark(item.token)
                else:
                    await self._send(clear_message(self._sid()))
                    self._count("clears")
        except _SendFailed:
            self._send_failed = True
            self._log.debug("the media connection refused a send; outbound stopped")
            self._space.set()

    def _sid(self) -> str:
        sid = self._stream_sid
        assert sid is not None  # the writer waits for 'start'
        return sid

    async def _send(self, text: str) -> None:
        try:
            await self._socket.send_text(text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _SendFailed from exc

    async def _send_audio(self, data: bytes) -> None:
        epoch = self._epoch
        frames = self._framer.push(data)
        if frames and self._deferred:
            # The first frame completes the partial frame these marks wait for: they follow it.
            await self._send_frame(frames[0])
            await self._send_deferred(epoch)
            frames = frames[1:]
        if not frames:
            return
        if epoch != self._epoch:
            # A clear came in while this chunk was going out: the rest is never sent.
            self._count("audio_bytes_cleared", sum(len(f) for f in frames))
            return
        # Whole frames, all of them in one message: Twilio plays a message of any length, and
        # one send per model chunk rather than per 20 ms costs a fraction of the CPU.
        await self._send_frame(frames[0] if len(frames) == 1 else b"".join(frames))

    async def _send_frame(self, frame: bytes) -> None:
        await self._send(media_message(self._sid(), frame))
        self._count("media_sent")
        self._count("audio_bytes_sent", len(frame))

    async def _send_mark(self, token: str) -> None:
        epoch = self._epoch
        if self._framer.pending:
            if self._out and isinstance(self._out[0], _Audio):
                # More audio is at hand: the mark rides after the frame that completes this one.
                self._deferred.append(token)
                return
            await self._flush_tail(epoch)
        if epoch != self._epoch:
            self._count("marks_cleared")
            self._push(PlaybackAcknowledged(token=token))
            return
        await self._send_one_mark(token)

    async def _flush_tail(self, epoch: int) -> None:
        tail = self._framer.flush(pad=self._pad)
        if tail:
            await self._send_frame(tail)
        await self._send_deferred(epoch)

    async def _send_deferred(self, epoch: int) -> None:
        while self._deferred and epoch == self._epoch:
            await self._send_one_mark(self._deferred.pop(0))

    async def _send_one_mark(self, token: str) -> None:
        name = self._namer.next_name()
        # Registered before sending: the echo can come back before send_text returns.
        self._marks[name] = token
        await self._send(mark_message(self._sid(), name))
        self._count("marks_sent")
