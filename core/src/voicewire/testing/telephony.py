"""A simulated phone caller, for testing a call bridge over a real WebSocket.

:class:`SimulatedCaller` plays the telephony provider's side of a media stream: it connects to
the bridge's media WebSocket, opens the stream, sends caller audio in 20 ms frames at real-time
pace (or faster, on a virtual clock), plays the bridge's audio into a simulated playback buffer
at the format's byte rate, acknowledges playback tokens when playback reaches them, drops its
buffer and acknowledges every pending token on a clear, records everything it heard, and checks
every message the bridge sends.

It knows no provider. The wire format is a :class:`CallerDialect`, a small protocol that encodes
what the caller sends and decodes, strictly, what the bridge sends; the Twilio dialect is
``voicewire_twilio.caller.TwilioDialect``. Needs the ``websockets`` package.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import wave
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from voicewire._change import wait_for_change
from voicewire.audio.convert import AudioConverter
from voicewire.audio.formats import AudioFormat
from voicewire.bridge.frames import FrameError, json_object
from voicewire.errors import ConfigError, TransportStateError, VoicewireError

__all__ = [
    "CallerDialect",
    "DialectViolation",
    "OutboundAudio",
    "OutboundClear",
    "OutboundMark",
    "OutboundMessage",
    "SimulatedCaller",
    "TimelineEntry",
    "TimelineKind",
    "json_frame",
    "load_wav",
]


def _bytes_repr(data: bytes) -> str:
    return f"<{len(data)} bytes>"


@attrs.frozen(kw_only=True)
class OutboundAudio:
    """Audio the bridge sent for playback, decoded to raw bytes of the dialect's format."""

    data: bytes = attrs.field(repr=_bytes_repr)


@attrs.frozen(kw_only=True)
class OutboundMark:
    """The bridge asks to be told when playback reaches this point (Twilio: a ``mark``)."""

    name: str


@attrs.frozen(kw_only=True)
class OutboundClear:
    """The bridge asks to drop every queued, unplayed, audio (Twilio: ``clear``)."""


OutboundMessage = OutboundAudio | OutboundMark | OutboundClear
"""What a dialect decodes a bridge frame into."""


class DialectViolation(VoicewireError):
    """A frame from the bridge breaks the dialect (unknown or extra keys, wrong stream, ...).

    The message describes the problem without repeating the frame's content.
    """


def json_frame(frame: str | bytes, *, provider: str, max_chars: int = 1 << 22) -> dict[str, Any]:
    """The JSON object of a frame the bridge sent: the first step of a JSON dialect's ``decode``.

    Args:
        frame: The frame as the caller received it.
        provider: The provider's name, for the messages.
        max_chars: The longest frame read (4 Mi characters by default).

    Raises:
        DialectViolation: A binary frame, a frame longer than ``max_chars``, not JSON, or JSON
            that is not an object.
    """
    try:
        return json_object(frame, provider=provider, max_chars=max_chars)
    except FrameError as exc:
        raise DialectViolation(str(exc)) from None


@runtime_checkable
class CallerDialect(Protocol):
    """One call's worth of a provider's media-stream dialect, from the provider's side.

    A dialect object is stateful (sequence numbers, the stream id): use one per call. Every
    ``encode`` method returns one text frame.
    """

    @property
    def audio_format(self) -> AudioFormat:
        """The media format of the stream, both ways."""
        ...

    def upgrade_headers(self, url: str) -> Mapping[str, str]:
        """Extra headers for the WebSocket upgrade to ``url`` (e.g. a request signature)."""
        ...

    def opening(self) -> Sequence[str]:
        """The frames that open the stream, in order (Twilio: ``connected``, ``start``)."""
        ...

    def media(self, audio: bytes, timestamp_ms: int) -> str:
        """A frame of caller audio; ``timestamp_ms`` is the media clock since the stream start."""
        ...

    def dtmf(self, digit: str) -> str:
        """A key press."""
        ...

    def mark_played(self, name: str) -> str:
        """The acknowledgement that playback reached (or a clear dropped) the mark ``name``."""
        ...

    def stop(self) -> str:
        """The frame that ends the stream (hang-up)."""
        ...

    def decode(self, frame: str | bytes) -> OutboundMessage:
        """Decode, strictly, a frame the bridge sent.

        Raises:
            DialectViolation: The frame breaks the dialect in any way.
        """
        ...


TimelineKind = Literal[
    "connected",
    "opened",
    "speech_queued",
    "dtmf",
    "audio_received",
    "mark_received",
    "clear_received",
    "playback_started",
    "playback_stopped",
    "mark_played",
    "mark_cleared",
    "violation",
    "stop_sent",
    "closed",
]
"""What a :class:`TimelineEntry` records."""


@attrs.frozen(kw_only=True)
class TimelineEntry:
    """One thing that happened on the call, on the caller's virtual clock.

    Attributes:
        at_ms: Virtual milliseconds since the WebSocket opened.
        kind: What happened.
        detail: Facts about it (byte counts, mark names, the heard total); never audio.
    """

    at_ms: float
    kind: TimelineKind
    detail: Mapping[str, object] = attrs.field(factory=dict)


@attrs.frozen
class _Mark:
    name: str


def _websockets_connect() -> Callable[..., Any]:
    try:
        from websockets.asyncio.client import connect
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "voicewire.testing.telephony needs the 'websockets' package (pip install websockets)"
        ) from exc
    return connect


class SimulatedCaller:
    """The provider's side of one call, over a real WebSocket.

    Args:
        url: The bridge's media WebSocket (``ws://HOST:PORT/media-stream``).
        dialect: The provider dialect, one object per call.
        speed: Virtual-clock factor: 1.0 is real time; 10.0 sends caller audio and plays the
            bridge's audio ten times faster (every duration on the timeline stays virtual).
        keepalive: Send silence frames whenever there is no speech queued, as telephony
            providers do; ``False`` sends nothing between utterances (media timestamps still
            advance, leaving gaps).
        frame_ms: Duration of each caller audio frame.
        open_timeout: Seconds to wait for the WebSocket handshake.
        strict: Raise :class:`DialectViolation` from :meth:`assert_clean` (and on leaving
            ``async with``) if the bridge sent anything the dialect forbids.

    Raises:
        ConfigError: An option is out of range.
    """

    def __init__(
        self,
        url: str,
        dialect: CallerDialect,
        *,
        speed: float = 1.0,
        keepalive: bool = True,
        frame_ms: int = 20,
        open_timeout: float = 10.0,
        strict: bool = True,
    ) -> None:
        if isinstance(speed, bool) or not isinstance(speed, (int, float)):
            raise ConfigError("speed", f"must be a number, got {type(speed).__name__}")
        if not math.isfinite(speed) or speed <= 0:
            raise ConfigError("speed", f"must be a finite number > 0, got {speed!r}")
        if isinstance(frame_ms, bool) or not isinstance(frame_ms, int) or not 5 <= frame_ms <= 200:
            raise ConfigError("frame_ms", f"must be an int within 5..200, got {frame_ms!r}")
        self._url = url
        self._dialect = dialect
        self._format = dialect.audio_format
        self._speed = float(speed)
        self._keepalive = keepalive
        self._frame_ms = frame_ms
        self._frame_bytes = max(self._format.bytes_per_frame, self._format.nbytes_for_ms(frame_ms))
        self._silence = self._format.silence(frame_ms)[: self._frame_bytes]
        self._open_timeout = open_timeout
        self._strict = strict
        self._rate = self._format.bytes_per_ms  # playback bytes per virtual ms
        self._ws: Any = None
        self._t0 = 0.0
        self._send_lock = asyncio.Lock()
        self._speech = bytearray()
        self._speech_sent = 0  # total speech bytes handed to the wire
        self._speech_queued = 0
        self._speech_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._playback: deque[bytearray | _Mark] = deque()
        self._playback_changed = asyncio.Event()
        self._clear_epoch = 0
        self._clear_at_ms = 0.0
        self._pending_clear_acks: list[str] = []
        self._heard = bytearray()
        self._received = bytearray()
        self._sent = bytearray()
        self._timeline: list[TimelineEntry] = []
        self._violations: list[str] = []
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reader: asyncio.Task[None] | None = None
        self._counts = {
            "media_sent": 0,
            "marks_received": 0,
            "marks_played": 0,
            "marks_cleared": 0,
            "clears": 0,
            "audio_bytes_cleared": 0,
        }
        self._started = False
        self._closed = asyncio.Event()
        self._close_code: int | None = None
        self._hung_up = False

    def __repr__(self) -> str:
        return f"<SimulatedCaller url={self._url!r} heard={len(self._heard)} bytes>"

    # -----------------------------------------------------------------------------------------
    # life cycle
    # -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, send the dialect's opening frames and start streaming.

        Raises:
            TransportStateError: Started twice.
            OSError, websockets.exceptions.InvalidHandshake: The bridge refused the connection.
        """
        if self._started:
            raise TransportStateError("a SimulatedCaller can be started once")
        self._started = True
        connect = _websockets_connect()
        options: dict[str, Any] = {
            "additional_headers": dict(self._dialect.upgrade_headers(self._url)),
            "open_timeout": self._open_timeout,
            "max_size": None,
            "compression": None,
        }
        if "proxy" in inspect.signature(connect).parameters:
            options["proxy"] = None  # a loopback test must not go through an HTTP(S)_PROXY
        self._ws = await connect(self._url, **options)
        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        self._record("connected")
        try:
            for frame in self._dialect.opening():
                await self._send(frame)
            self._record("opened")
        except Exception:  # closed by the bridge right away: the reader records the close
            pass
        self._reader = loop.create_task(self._read(), name="voicewire-caller-reader")
        self._tasks = [
            self._reader,
            loop.create_task(self._stream_media(), name="voicewire-caller-media"),
            loop.create_task(self._play(), name="voicewire-caller-playback"),
        ]

    async def __aenter__(self) -> SimulatedCaller:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
        if exc_info[0] is None:
            self.assert_clean()

    async def hang_up(self) -> None:
        """Send the dialect's stop frame, then close the WebSocket (normal closure)."""
        if self._ws is None or self._hung_up:
            return
        self._hung_up = True
        await self._stop_streaming()
        with contextlib.suppress(Exception):
            await self._send(self._dialect.stop())
            self._record("stop_sent")
        await self.close()

    async def drop(self) -> None:
        """Lose the connection without a stop frame (network loss)."""
        self._hung_up = True
        await self._stop_streaming()
        ws = self._ws
        if ws is not None:
            transport = getattr(ws, "transport", None)
            if transport is not None:
                transport.abort()
        await self.close()

    async def close(self) -> None:
        """Close the WebSocket and stop every task of the caller. Idempotent."""
        await self._stop_streaming()
        ws = self._ws
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 5.0)
            except Exception:
                # No closing handshake from the peer: drop the connection, as a phone would.
                transport = getattr(ws, "transport", None)
                if transport is not None:
                    transport.abort()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._finish_waiters()
        if not self._closed.is_set():
            self._mark_closed()

    async def _stop_streaming(self) -> None:
        # Only the media task: the reader must keep running to see the bridge close.
        for task in self._tasks[1:2]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -----------------------------------------------------------------------------------------
    # what the caller does
    # -----------------------------------------------------------------------------------------

    def queue_audio(self, audio: bytes) -> asyncio.Future[None]:
        """Queue caller audio (in the dialect's format); the future resolves once all is sent."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._speech += audio
        self._speech_queued += len(audio)
        self._speech_waiters.append((self._speech_queued, future))
        self._record("speech_queued", nbytes=len(audio))
        if not audio:
            self._resolve_waiters()
        return future

    async def say(self, audio: bytes) -> None:
        """Send caller audio at the media pace and wait until its last frame is sent."""
        await self.queue_audio(audio)

    async def silence(self, ms: float) -> None:
        """Send ``ms`` milliseconds of silence (with ``keepalive``, this is just waiting)."""
        await self.say(self._format.silence(ms))

    async def press(self, digit: str) -> None:
        """Press a key now (between media frames)."""
        await self._send(self._dialect.dtmf(digit))
        self._record("dtmf", digit=digit)

    async def send_raw(self, frame: str | bytes) -> None:
        """Send an arbitrary frame, e.g. to test how the bridge copes with bad input."""
        await self._send(frame)

    # -----------------------------------------------------------------------------------------
    # records
    # -----------------------------------------------------------------------------------------

    @property
    def audio_format(self) -> AudioFormat:
        """The stream's audio format."""
        return self._format

    @property
    def heard(self) -> bytes:
        """Every byte of the bridge's audio that playback reached, in order."""
        return bytes(self._heard)

    @property
    def received(self) -> bytes:
        """Every byte of audio the bridge sent, played or not."""
        return bytes(self._received)

    @property
    def sent(self) -> bytes:
        """Every byte of caller audio sent (speech, its padding to whole frames, keepalive)."""
        return bytes(self._sent)

    @property
    def heard_ms(self) -> float:
        """Milliseconds of audio heard."""
        return self._format.duration_ms(len(self._heard))

    @property
    def queued_ms(self) -> float:
        """Milliseconds of audio received and not yet played."""
        queued = sum(len(item) for item in self._playback if isinstance(item, bytearray))
        return self._format.duration_ms(queued)

    @property
    def timeline(self) -> tuple[TimelineEntry, ...]:
        """Everything that happened, in order."""
        return tuple(self._timeline)

    @property
    def violations(self) -> tuple[str, ...]:
        """What the bridge sent that the dialect forbids."""
        return tuple(self._violations)

    @property
    def counts(self) -> Mapping[str, int]:
        """Counters: ``media_sent``, ``marks_received``, ``marks_played``, ``marks_cleared``,
        ``clears``, ``audio_bytes_cleared``."""
        return dict(self._counts)

    @property
    def closed(self) -> bool:
        """The WebSocket is closed."""
        return self._closed.is_set()

    @property
    def close_code(self) -> int | None:
        """The close code once closed (``1006`` for a lost connection), else ``None``."""
        return self._close_code

    def now_ms(self) -> float:
        """Virtual milliseconds since the WebSocket opened."""
        return (asyncio.get_running_loop().time() - self._t0) * 1000.0 * self._speed

    def entries(self, kind: TimelineKind) -> list[TimelineEntry]:
        """The timeline entries of one kind."""
        return [entry for entry in self._timeline if entry.kind == kind]

    def assert_clean(self) -> None:
        """Raise :class:`DialectViolation` if the bridge broke the dialect (with ``strict``)."""
        if self._strict and self._violations:
            raise DialectViolation(
                f"the bridge broke the dialect {len(self._violations)} time(s); first: "
                f"{self._violations[0]}"
            )

    async def wait_for(
        self, predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition"
    ) -> None:
        """Wait until ``predicate()`` is true; ``timeout`` (real seconds) is a hang guard.

        Raises:
            TimeoutError: The predicate stayed false; the message lists the last timeline entries.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                tail = ", ".join(f"{e.kind}@{e.at_ms:.0f}" for e in self._timeline[-12:])
                raise TimeoutError(f"{what} not reached within {timeout} s; last: {tail}")
            self._changed.clear()
            await wait_for_change(self._changed, remaining)

    async def wait_heard(self, nbytes: int, *, timeout: float = 10.0) -> None:
        """Wait until at least ``nbytes`` bytes were heard."""
        await self.wait_for(
            lambda: len(self._heard) >= nbytes, timeout=timeout, what=f"{nbytes} bytes heard"
        )

    async def wait_received(self, nbytes: int, *, timeout: float = 10.0) -> None:
        """Wait until at least ``nbytes`` bytes of audio were received."""
        await self.wait_for(
            lambda: len(self._received) >= nbytes,
            timeout=timeout,
            what=f"{nbytes} bytes received",
        )

    async def wait_idle(self, *, timeout: float = 10.0) -> None:
        """Wait until everything received has been played (the playback buffer is empty)."""
        await self.wait_for(lambda: not self._playback, timeout=timeout, what="playback idle")

    async def wait_closed(self, *, timeout: float = 10.0) -> None:
        """Wait until the WebSocket is closed (by either side)."""
        await self.wait_for(self._closed.is_set, timeout=timeout, what="connection closed")

    async def wait_entry(
        self, kind: TimelineKind, *, count: int = 1, timeout: float = 10.0
    ) -> TimelineEntry:
        """Wait until ``count`` entries of ``kind`` are on the timeline; return the last one."""
        await self.wait_for(
            lambda: len(self.entries(kind)) >= count, timeout=timeout, what=f"{count} x {kind}"
        )
        return self.entries(kind)[count - 1]

    # -----------------------------------------------------------------------------------------
    # internals
    # -----------------------------------------------------------------------------------------

    def _record(self, kind: TimelineKind, **detail: object) -> None:
        at = self.now_ms() if self._t0 else 0.0
        self._timeline.append(TimelineEntry(at_ms=at, kind=kind, detail=detail))
        self._changed.set()

    async def _send(self, frame: str | bytes) -> None:
        if self._ws is None:
            raise TransportStateError("the caller is not connected")
        async with self._send_lock:
            await self._ws.send(frame)

    async def _sleep_until(self, virtual_ms: float) -> None:
        loop = asyncio.get_running_loop()
        real = self._t0 + virtual_ms / 1000.0 / self._speed
        delay = real - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _stream_media(self) -> None:
        frame_index = 0
        try:
            while True:
                timestamp = frame_index * self._frame_ms
                await self._sleep_until(timestamp)
                if self._speech:
                    chunk = bytes(self._speech[: self._frame_bytes])
                    del self._speech[: self._frame_bytes]
                    self._speech_sent += len(chunk)
                    if len(chunk) < self._frame_bytes:
                        chunk += self._silence[len(chunk) :]
                    await self._send(self._dialect.media(chunk, timestamp))
                    self._sent += chunk
                    self._counts["media_sent"] += 1
                    self._resolve_waiters()
                elif self._keepalive:
                    await self._send(self._dialect.media(self._silence, timestamp))
                    self._sent += self._silence
                    self._counts["media_sent"] += 1
                frame_index += 1
        except asyncio.CancelledError:
            raise
        except Exception:  # the connection went away: the reader records the close
            return
        finally:
            self._finish_waiters()

    def _resolve_waiters(self) -> None:
        keep = []
        for end, future in self._speech_waiters:
            if self._speech_sent >= end:
                if not future.done():
                    future.set_result(None)
            else:
                keep.append((end, future))
        self._speech_waiters = keep

    def _finish_waiters(self) -> None:
        for _, future in self._speech_waiters:
            if not future.done():
                future.set_exception(
                    TransportStateError("the call ended before the audio was sent")
                )
                future.exception()  # retrieved: nobody may be awaiting it
        self._speech_waiters = []

    async def _read(self) -> None:
        ws = self._ws
        try:
            async for frame in ws:
                self._on_frame(frame)
                # Clear acknowledgements go out right away, from this task, in FIFO order.
                await self._flush_clear_acks()
        except asyncio.CancelledError:
            raise
        except Exception:  # an abnormal close; the code is read below
            pass
        finally:
            code = getattr(ws, "close_code", None)
            self._close_code = code if code is not None else 1006
            self._mark_closed()

    def _mark_closed(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._record("closed", code=self._close_code)
            self._playback_changed.set()

    def _on_frame(self, frame: str | bytes) -> None:
        try:
            message = self._dialect.decode(frame)
        except DialectViolation as exc:
            self._violations.append(str(exc))
            self._record("violation", reason=str(exc))
            return
        if isinstance(message, OutboundAudio):
            self._received += message.data
            self._playback.append(bytearray(message.data))
            self._record("audio_received", nbytes=len(message.data))
        elif isinstance(message, OutboundMark):
            self._counts["marks_received"] += 1
            self._playback.append(_Mark(message.name))
            self._record("mark_received", name=message.name)
        else:
            self._counts["clears"] += 1
            self._clear_epoch += 1
            self._clear_at_ms = self.now_ms()
            dropped = 0
            acks: list[str] = []
            for item in self._playback:
                if isinstance(item, _Mark):
                    acks.append(item.name)
                else:
                    dropped += len(item)
            self._playback.clear()
            self._counts["audio_bytes_cleared"] += dropped
            self._record("clear_received", queued_bytes=dropped, pending_marks=len(acks))
            self._pending_clear_acks.extend(acks)
        self._playback_changed.set()

    async def _flush_clear_acks(self) -> None:
        acks, self._pending_clear_acks = self._pending_clear_acks, []
        for name in acks:
            await self._send(self._dialect.mark_played(name))
            self._counts["marks_cleared"] += 1
            self._record("mark_cleared", name=name)

    async def _play(self) -> None:
        playing = False
        playhead = 0.0  # virtual ms at which the next byte starts playing
        with contextlib.suppress(Exception):
            while not self._closed.is_set():
                if not self._playback:
                    if playing:
                        playing = False
                        self._record("playback_stopped", heard=len(self._heard))
                    self._playback_changed.clear()
                    await self._playback_changed.wait()
                    continue
                head = self._playback[0]
                if isinstance(head, _Mark):
                    self._playback.popleft()
                    await self._send(self._dialect.mark_played(head.name))
                    self._counts["marks_played"] += 1
                    self._record("mark_played", name=head.name, heard=len(self._heard))
                    continue
                if not playing:
                    playing = True
                    playhead = max(playhead, self.now_ms())
                    self._record("playback_started", heard=len(self._heard))
                piece = bytes(head[: self._frame_bytes])
                epoch = self._clear_epoch
                end = playhead + len(piece) / self._rate
                await self._wait_until_or_clear(end, epoch)
                if epoch != self._clear_epoch:
                    # Cleared mid-piece: the caller heard the part played before the clear.
                    played = int((self._clear_at_ms - playhead) * self._rate)
                    played = max(0, min(len(piece), played))
                    played -= played % self._format.bytes_per_frame
                    self._heard += piece[:played]
                    # The clear counted the whole piece as dropped; the part played was heard.
                    self._counts["audio_bytes_cleared"] -= played
                    playhead = max(playhead, self._clear_at_ms)
                    playing = False
                    self._record("playback_stopped", heard=len(self._heard), cleared=True)
                    continue
                self._heard += piece
                del head[: len(piece)]
                if not head:
                    self._playback.popleft()
                playhead = end
                self._changed.set()

    async def _wait_until_or_clear(self, virtual_ms: float, epoch: int) -> None:
        loop = asyncio.get_running_loop()
        while epoch == self._clear_epoch and not self._closed.is_set():
            delay = self._t0 + virtual_ms / 1000.0 / self._speed - loop.time()
            if delay <= 0:
                return
            self._playback_changed.clear()
            await wait_for_change(self._playback_changed, delay)


def load_wav(path: str | Path, fmt: AudioFormat) -> bytes:
    """Read a 16-bit PCM WAV file and convert it to ``fmt`` (mono only).

    Raises:
        ConfigError: The file is not 16-bit PCM mono.
        OSError: The file cannot be read.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            width = wav.getsampwidth()
            channels = wav.getnchannels()
            rate = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except wave.Error as exc:
        raise ConfigError("wav", f"not a PCM WAV file ({exc})") from None
    if width != 2:
        raise ConfigError("wav", f"must be 16-bit PCM, got {8 * width}-bit samples")
    if channels != 1:
        raise ConfigError("wav", f"must be mono, got {channels} channels")
    source = AudioFormat(encoding="pcm16", sample_rate=rate, channels=1)
    converter = AudioConverter(source, fmt)
    return converter.convert(frames) + converter.flush()
