"""``CallBridge``: one phone call, joined from a telephony edge to a realtime model transport.

The bridge is the asyncio layer around :class:`~voicewire.bridge.protocol.BridgeProtocol`. It
reads the edge's events, feeds the model's events to the protocol, and carries out what the
protocol decides, in order, with three small workers:

* the **edge reader** (inside :meth:`CallBridge.run`) turns caller audio, acknowledgements,
  DTMF and call life-cycle messages into protocol calls and events;
* the **uplink** hands caller audio (and the padder's silence) to ``model.send_audio``;
* the **downlink** hands model audio, acknowledgement tokens and barge-in plans to the edge and
  the model, strictly in the order they were decided.

Model events are handled inline, in the model's own listener call, so a decision (play this
chunk, drop that one, interrupt now) is taken the moment the model reports something and never
waits behind I/O. Only the I/O is queued. The input padder's inactivity deadline is served by a
single event-loop timer, re-armed lazily, rather than by a task.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import types
import typing
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

import attrs

from voicewire.audio.convert import AudioConverter
from voicewire.audio.formats import AudioFormat
from voicewire.bridge.edge import (
    CallerAudio,
    CallStarted,
    CallStopped,
    Dtmf,
    EdgeError,
    PlaybackAcknowledged,
    RawEdgeMessage,
    TelephonyEdge,
    _max_buffered_ms,
)
from voicewire.bridge.model import BridgeableModel
from voicewire.bridge.padding import DEFAULT_INACTIVITY_TIMEOUT_MS
from voicewire.bridge.playback import DEFAULT_HEARD_MARGIN_MS
from voicewire.bridge.protocol import BridgeCounters, BridgeProtocol, InterruptionPlan
from voicewire.bridge.tasks import Drain
from voicewire.config import SessionConfig
from voicewire.errors import AudioFormatError, ConfigError, TransportStateError
from voicewire.events import (
    WILDCARD,
    AudioDoneEvent,
    AudioEvent,
    AudioInterruptedEvent,
    CallStartEvent,
    CallStopEvent,
    ConnectionChangeEvent,
    DtmfEvent,
    ErrorEvent,
    MarkEvent,
    SpeechStartedEvent,
    SpeechStoppedEvent,
    TransportEvent,
    TurnDoneEvent,
    TurnStartedEvent,
)
from voicewire.transport import STATUS_TRANSITIONS, ConnectOptions, TransportBase, TransportStatus

if TYPE_CHECKING:
    from voicewire.emitter import Listener
    from voicewire.events import FunctionCallEvent
    from voicewire.items import RealtimeItem, UserMessageItem

__all__ = [
    "CALLER_DROP_REASONS",
    "DEFAULT_MAX_PENDING_CALLER_AUDIO_BYTES",
    "MODEL_DROP_REASONS",
    "CallBridge",
    "CallBridgeStats",
]

DEFAULT_CALL_START_TIMEOUT = 10.0
"""Seconds a bridge waits for the edge to start a call before it gives up."""

logger = logging.getLogger("voicewire.bridge")

DEFAULT_MAX_PENDING_CALLER_AUDIO_BYTES: Final = 512 * 1024
"""Default bound of caller audio waiting inside the bridge for ``model.send_audio``: about 11 s
of PCM16 at 24 kHz, or 65 s of G.711."""

CALLER_DROP_REASONS: Final = ("malformed", "overflow", "model_unavailable", "send_failed", "closed")
"""Why caller audio may not reach the model (keys of ``CallBridgeStats.caller_bytes_dropped``)."""

MODEL_DROP_REASONS: Final = (
    "interrupted",
    "untracked",
    "malformed",
    "cleared",
    "edge_error",
    "closed",
)
"""Why model audio may not reach the edge (keys of ``CallBridgeStats.model_bytes_dropped``)."""

# How long the edge's event iterator gets to end after the edge was closed, before its task is
# cancelled. Only a misbehaving edge ever needs it.
_READER_GRACE_S: Final = 5.0

# The inactivity timer fires this much after the padder's deadline, so that clock granularity
# cannot make it fire a hair early, find nothing due, and spin.
_TIMER_SLACK_S: Final = 0.001

_ACTIVE: Final[frozenset[TransportStatus]] = frozenset({"connecting", "connected"})
_UPLINK_DROPS: Final = ("overflow", "model_unavailable", "send_failed")


def _channel_of_type(cls: type) -> str:
    channel = getattr(cls, "channel", None)
    if isinstance(channel, str):
        return channel
    return str(attrs.fields(cls).type.default)


# Every channel a model transport emits typed events on. The bridge listens to each (sync
# listeners, so nothing is dropped, unlike a bounded ``events()`` iterator) and to ``*``.
_MODEL_CHANNELS: Final[tuple[str, ...]] = tuple(
    dict.fromkeys([*(_channel_of_type(cls) for cls in typing.get_args(TransportEvent)), WILDCARD])
)


def _ro(value: Mapping[str, int]) -> Mapping[str, int]:
    return types.MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class CallBridgeStats:
    """A snapshot of what went through a :class:`CallBridge`, so that nothing is lost silently.

    Caller-side figures are bytes of the **edge's** format, model-side figures bytes of the
    **model's** format, so each direction balances exactly whatever the conversion:

    * caller: ``caller_bytes + padding_bytes + injected_bytes == caller_bytes_sent +
      caller_bytes_pending + sum(caller_bytes_dropped.values())``;
    * model: ``model_audio_bytes == model_bytes_played + model_bytes_pending +
      sum(model_bytes_dropped.values())``.

    :attr:`caller_unaccounted_bytes` and :attr:`model_unaccounted_bytes` are the differences,
    always 0.

    Attributes:
        caller_chunks: Caller audio chunks the edge delivered.
        caller_bytes: Their bytes.
        padding_bytes: Silence the bridge inserted into the caller's audio (timestamp gaps and
            inactivity; see :class:`~voicewire.bridge.padding.InputPadder`).
        injected_bytes: Audio the application sent with :meth:`CallBridge.send_audio`.
        caller_bytes_sent: Caller, padding and injected bytes handed to ``model.send_audio``.
        caller_bytes_pending: Bytes waiting inside the bridge for the model.
        caller_bytes_dropped: Bytes that never reached the model, by reason: ``"malformed"``
            (not whole frames), ``"overflow"`` (the pending bound was exceeded; the oldest audio
            goes), ``"model_unavailable"`` (the model was disconnected), ``"send_failed"``
            (``send_audio`` raised), ``"closed"`` (still pending when the bridge closed).
        model_input_chunks: Calls of ``model.send_audio`` with audio.
        model_input_bytes: Their bytes, in the model's format.
        model_audio_chunks: Audio chunks the model sent.
        model_audio_bytes: Their bytes.
        model_bytes_played: Model bytes whose audio was handed to the edge (converted, when
            transcoding).
        model_bytes_pending: Model bytes waiting inside the bridge for the edge.
        model_bytes_dropped: Model bytes never handed to the edge, by reason:
            ``"interrupted"`` (late audio of an interrupted response), ``"untracked"`` (no item
            id, so it could never be truncated), ``"malformed"`` (not whole frames),
            ``"cleared"`` (decided before a barge-in, still waiting in the bridge when it came),
            ``"edge_error"`` (``edge.play`` raised), ``"closed"`` (pending at close).
        edge_chunks_played: Calls of ``edge.play``.
        edge_bytes_played: Their bytes, in the edge's format.
        acknowledgements: Playback acknowledgements the edge reported (all kinds).
        interruptions: Barge-ins that acted.
        truncations: Truncations sent to the model.
        protocol: The sans-I/O protocol's own counters (tokens, clears, padding, ...).
    """

    caller_chunks: int = 0
    caller_bytes: int = 0
    padding_bytes: int = 0
    injected_bytes: int = 0
    caller_bytes_sent: int = 0
    caller_bytes_pending: int = 0
    caller_bytes_dropped: Mapping[str, int] = attrs.field(
        factory=lambda: dict.fromkeys(CALLER_DROP_REASONS, 0), converter=_ro
    )
    model_input_chunks: int = 0
    model_input_bytes: int = 0
    model_audio_chunks: int = 0
    model_audio_bytes: int = 0
    model_bytes_played: int = 0
    model_bytes_pending: int = 0
    model_bytes_dropped: Mapping[str, int] = attrs.field(
        factory=lambda: dict.fromkeys(MODEL_DROP_REASONS, 0), converter=_ro
    )
    edge_chunks_played: int = 0
    edge_bytes_played: int = 0
    acknowledgements: int = 0
    interruptions: int = 0
    truncations: int = 0
    protocol: BridgeCounters = attrs.field(factory=BridgeCounters)

    @property
    def caller_unaccounted_bytes(self) -> int:
        """Caller-side bytes in minus bytes sent, pending or dropped: 0 when nothing is lost."""
        received = self.caller_bytes + self.padding_bytes + self.injected_bytes
        accounted = (
            self.caller_bytes_sent
            + self.caller_bytes_pending
            + sum(self.caller_bytes_dropped.values())
        )
        return received - accounted

    @property
    def model_unaccounted_bytes(self) -> int:
        """Model bytes in minus bytes played, pending or dropped: 0 when nothing is lost."""
        accounted = (
            self.model_bytes_played
            + self.model_bytes_pending
            + sum(self.model_bytes_dropped.values())
        )
        return self.model_audio_bytes - accounted


# -- queued work -----------------------------------------------------------------------------


class _Play:
    __slots__ = ("data", "model_nbytes")

    def __init__(self, data: bytes, model_nbytes: int) -> None:
        self.data = data  # edge format
        self.model_nbytes = model_nbytes  # what it accounts for, in the model's format


class _Ack:
    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token


class _Interrupt:
    __slots__ = ("done", "plan", "waiter")

    def __init__(self, plan: InterruptionPlan) -> None:
        self.plan = plan
        self.done = False  # carried out (possibly before interrupt() could wait for it)
        self.waiter: asyncio.Future[None] | None = None


_Down = _Play | _Ack | _Interrupt


class _Up:
    __slots__ = ("commit", "data", "edge_nbytes")

    def __init__(self, data: bytes, edge_nbytes: int, commit: bool) -> None:
        self.data = data  # model format
        self.edge_nbytes = edge_nbytes  # what it accounts for, in the edge's format
        self.commit = commit


def _check_pending_bound(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError("max_pending_caller_audio_bytes", f"must be an int >= 1, got {value!r}")
    return value


class CallBridge(TransportBase):
    """Joins a telephony edge to a realtime model transport for one call.

    A ``CallBridge`` is itself a :class:`~voicewire.transport.RealtimeTransportLayer`: it
    re-emits the model's events (``audio`` only for audio handed to the caller), adds the call's
    own (``call_start``, ``call_stop``, ``dtmf``, ``mark``, the edge's raw messages on ``*``),
    and its ``send_*`` methods reach the model. It owns caller-audio forwarding, format
    conversion, silence padding, playback tracking from acknowledgements, pacing for a provider
    with a small buffer (``EdgeCapabilities.max_buffered_ms``), barge-in and truncation, and the
    close rules.

    Typical use, in the provider's WebSocket handler::

        bridge = CallBridge(edge, model)
        await bridge.run(ConnectOptions(api_key=key, initial_session_config=config))

    ``run`` returns when the call is over and the edge, the model and every task of the bridge
    are closed. A bridge carries one call; build a new one for the next.

    Args:
        edge: The provider-facing half of the call.
        model: The model transport; the bridge sets its ``automatic_barge_in`` to ``False``.
        model_audio_format: The audio format of the model session, both ways. ``None`` (the
            default) uses the edge's native format: bytes pass through untouched both ways
            (an edge in big-endian PCM, ``pcm16be``, needs a format given here).
            Another format makes the bridge transcode with
            :class:`~voicewire.audio.convert.AudioConverter` both ways. Either way the session's
            input and output formats are forced to it, on connect and on every
            :meth:`update_session_config`.
        inactivity_timeout_ms: Silence is inserted into the caller's audio after this long
            without any, while the model hears speech; ``None`` disables it (see
            :class:`~voicewire.bridge.padding.InputPadder`).
        heard_margin_ms: How far past the last acknowledged point an interrupted item is cut.
        playout_latency_ms: For edges without acknowledgements: how long after being handed
            over audio becomes audible (see :class:`~voicewire.bridge.playback.PlaybackTracker`).
        max_pending_caller_audio_bytes: Bound of the caller audio (in the model's format)
            waiting inside the bridge for ``model.send_audio``; past it the oldest audio is
            dropped, counted and reported.
        call_start_timeout: Seconds ``run`` waits for the edge's ``CallStarted`` before it
            ends the call (error code ``call_start_timeout``): a media connection that never
            starts a call must not hold a model session open. ``None`` waits forever.
        connect_on_call_start: When ``run`` connects the model: at once (``False``: the
            session is being set up while the provider sends ``start``), or only once the edge
            reported ``CallStarted`` (``True``), so that a connection the edge refuses at its
            start (an account, a call token) never opens a model session, which a replayed
            upgrade could otherwise open again and again; that costs the time between the
            upgrade and ``start`` (one network round trip) on the first answer. ``None`` (the
            default): ``True`` for an edge whose capabilities say ``checks_call_start``.
        automatic_barge_in: Interrupt the caller's playback when the model hears the caller
            start speaking (also settable while the call runs, e.g. off for an announcement
            that must be heard whole). Off, :meth:`interrupt` still interrupts; the model's
            server may still cancel a response it is generating when it hears speech (OpenAI:
            the session's ``turn_detection.interrupt_response``).
        observers: Session observers attached for the bridge's whole life.
        plugin_observers: Whether to ask the plugins for observers when the bridge starts.

    Raises:
        ConfigError: A parameter is invalid; the error names it.
        TypeError: ``model`` lacks what a bridge needs (see
            :class:`~voicewire.bridge.model.BridgeableModel`).
        AudioFormatError: The formats cannot be converted (different channel counts).
    """

    transport_id: ClassVar[str] = "bridge"

    def __init__(
        self,
        edge: TelephonyEdge,
        model: BridgeableModel,
        *,
        model_audio_format: AudioFormat | None = None,
        inactivity_timeout_ms: float | None = DEFAULT_INACTIVITY_TIMEOUT_MS,
        heard_margin_ms: float = DEFAULT_HEARD_MARGIN_MS,
        playout_latency_ms: float = 0.0,
        max_pending_caller_audio_bytes: int = DEFAULT_MAX_PENDING_CALLER_AUDIO_BYTES,
        call_start_timeout: float | None = DEFAULT_CALL_START_TIMEOUT,
        connect_on_call_start: bool | None = None,
        automatic_barge_in: bool = True,
        observers: Iterable[object] = (),
        plugin_observers: bool = True,
    ) -> None:
        super().__init__(observers=observers, plugin_observers=plugin_observers)
        self.automatic_barge_in = automatic_barge_in
        missing = [
            name
            for name in ("cancel_response", "truncate", "automatic_barge_in", "status", "on")
            if not hasattr(model, name)
        ]
        if not hasattr(type(model), "server_interrupts_response"):
            missing.append("server_interrupts_response")
        if missing:
            raise TypeError(
                f"{type(model).__name__} cannot be bridged: it lacks {', '.join(missing)} "
                "(see voicewire.bridge.BridgeableModel)"
            )
        if model_audio_format is not None and not isinstance(model_audio_format, AudioFormat):
            raise ConfigError(
                "model_audio_format", f"must be an AudioFormat or None, got {model_audio_format!r}"
            )
        capabilities = edge.capabilities
        self._edge = edge
        self._model = model
        self._edge_format = capabilities.audio_format
        self._edge_frame_bytes = self._edge_format.bytes_per_frame
        if model_audio_format is None and self._edge_format.encoding == "pcm16be":
            raise ConfigError(
                "model_audio_format",
                "the edge streams big-endian PCM (pcm16be), which realtime models do not take:"
                " choose the model's format (e.g. voicewire.audio.PCM16_24K)",
            )
        self._model_format = model_audio_format or capabilities.audio_format
        self._max_pending = _check_pending_bound(max_pending_caller_audio_bytes)
        self._protocol = BridgeProtocol(
            output_format=self._model_format,
            input_format=self._edge_format,
            acknowledgements=capabilities.acknowledgements,
            heard_margin_ms=heard_margin_ms,
            playout_latency_ms=playout_latency_ms,
            inactivity_timeout_ms=inactivity_timeout_ms,
        )
        self._padder = self._protocol.padder
        self._in_conv: AudioConverter | None = None
        self._out_conv: AudioConverter | None = None
        if self._model_format != self._edge_format:
            self._in_conv = AudioConverter(self._edge_format, self._model_format)
            self._out_conv = AudioConverter(self._model_format, self._edge_format)
        # The key of the model audio the output converter is in the middle of, so that its
        # held-back tail is flushed at the end of that part and nowhere else.
        self._out_key: tuple[str | None, str | None, int] | None = None

        # The bridge decides barge-in from what the caller heard; the transport must not.
        model.automatic_barge_in = False
        if hasattr(edge, "raw_messages_wanted"):
            # The optional half of TelephonyEdge: no raw event per frame while nobody listens.
            cast(Any, edge).raw_messages_wanted = functools.partial(
                self._emitter.has_subscribers, WILDCARD
            )

        # The optional halves of both protocols: audio handed on without a task switch while
        # nothing of the bridge's own waits (see _up_push and _model_audio).
        self._send_nowait: Callable[[bytes], bool] | None = getattr(
            model, "send_audio_nowait", None
        )
        self._play_nowait: Callable[[bytes, str | None], bool] | None = getattr(
            edge, "play_nowait", None
        )
        self._nowait_warned: set[str] = set()

        # life cycle
        self._started = False
        self._run_called = False
        self._connecting = False
        self._connected_by_bridge = False
        self._model_was_connected = False
        self._closing = False
        self._closer: asyncio.Task[None] | None = None
        self._end_reason: str | None = None
        self._stop = asyncio.Event()
        self._connect_task: asyncio.Task[None] | None = None
        # Set once the model is connecting (or the bridge's connect gave up): caller audio that
        # arrived before a deferred connect reached the model waits for it (see _send_up).
        self._connect_began = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        # Tasks only while there is something to send, started eagerly (voicewire.bridge.tasks):
        # a send that need not wait is done before the handler that queued it returns. When the
        # model makes the uplink wait, the chunks that arrive meanwhile queue behind it (the
        # oldest dropped past the bound) while the edge goes on being read. Never awaited by
        # the edge reader itself: a model that stops reading must not stop the caller's stop,
        # DTMF and mark echoes.
        self._uplink = Drain(self._send_up, name="voicewire-bridge-uplink")
        self._downlink = Drain(self._carry_out_commands, name="voicewire-bridge-downlink")
        self._playing = False  # the downlink is inside edge.play() (or paces before it)
        self._abandon_play = False  # ...and a barge-in cancelled it there
        # Pacing, for an edge whose provider takes only so much audio ahead of playback: model
        # audio goes out in pieces of half that much (whole 20 ms frames), each once the
        # estimated playout (the wall clock at the format's rate, as the provider plays it)
        # leaves room for it, so that the next piece is there before the last one has played.
        self._max_buffered_ms = _max_buffered_ms(getattr(capabilities, "max_buffered_ms", None))
        self._piece_bytes: int | None = None
        if self._max_buffered_ms is not None:
            frame = self._edge_format.nbytes_for_ms(20)
            self._piece_bytes = max(frame, int(self._max_buffered_ms / 2 // 20) * frame)
        self._playout_end_ms = 0.0  # when what was handed to the edge will have played
        # With acknowledgements the provider's own clock corrects the estimate: how much had
        # been handed over when each token went out (edge-format ms).
        self._handed_ms = 0.0
        self._handed_at_token: dict[str, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        if call_start_timeout is not None and not (
            isinstance(call_start_timeout, int | float) and call_start_timeout > 0
        ):
            raise ConfigError(
                "call_start_timeout", f"must be a number > 0 or None, got {call_start_timeout!r}"
            )
        self._call_start_timeout = call_start_timeout
        if connect_on_call_start is None:
            connect_on_call_start = getattr(capabilities, "checks_call_start", False) is True
        elif not isinstance(connect_on_call_start, bool):
            raise ConfigError(
                "connect_on_call_start", f"must be a bool or None, got {connect_on_call_start!r}"
            )
        self._connect_on_call_start = connect_on_call_start
        self._deferred_connect: ConnectOptions | None = None
        self._start_timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._model_listeners: list[tuple[str, Listener]] = []

        # call
        self._call_id: str | None = None
        self._call_started = False
        self._call_stopped = False

        # queues
        self._down: deque[_Down] = deque()
        self._up: deque[_Up] = deque()
        self._up_inflight: _Up | None = None
        self._up_pending_model = 0  # model-format bytes queued (deque only): the bound
        self._up_pending_edge = 0  # edge-format bytes queued or in flight: the accounting

        # counters
        self._caller_chunks = 0
        self._caller_bytes = 0
        self._injected_bytes = 0
        self._caller_sent = 0
        self._caller_dropped = dict.fromkeys(CALLER_DROP_REASONS, 0)
        self._model_input_chunks = 0
        self._model_input_bytes = 0
        self._model_chunks = 0
        self._responses_started = 0
        self._model_bytes = 0
        self._model_played = 0
        self._model_pending = 0
        self._model_dropped = dict.fromkeys(MODEL_DROP_REASONS, 0)
        self._edge_chunks = 0
        self._edge_bytes = 0
        self._acks = 0
        self._interruptions = 0
        self._truncations = 0
        # Drops are reported once per burst: the first of a reason after things went well.
        self._reported_drop: set[str] = set()

    # -- read-only state ----------------------------------------------------------------------

    @property
    def edge(self) -> TelephonyEdge:
        """The telephony edge."""
        return self._edge

    @property
    def model(self) -> BridgeableModel:
        """The model transport."""
        return self._model

    @property
    def automatic_barge_in(self) -> bool:
        """Whether the caller's speech (the model's ``speech_started``) interrupts playback."""
        return self._automatic_barge_in

    @automatic_barge_in.setter
    def automatic_barge_in(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ConfigError("automatic_barge_in", f"must be a bool, got {value!r}")
        self._automatic_barge_in = value

    @property
    def model_audio_format(self) -> AudioFormat:
        """The model session's audio format (the edge's in pass-through mode)."""
        return self._model_format

    @property
    def transcoding(self) -> bool:
        """Whether audio is converted between the edge's and the model's formats."""
        return self._in_conv is not None

    @property
    def protocol(self) -> BridgeProtocol:
        """The sans-I/O state of the call (for inspection; the bridge drives it)."""
        return self._protocol

    @property
    def call_id(self) -> str | None:
        """The provider's call id, once the call started."""
        return self._call_id

    @property
    def stats(self) -> CallBridgeStats:
        """A snapshot of every counter (see :class:`CallBridgeStats`)."""
        counters = self._protocol.counters
        dropped = dict(self._model_dropped)
        dropped["interrupted"] = counters.late_audio_bytes_dropped
        dropped["untracked"] = counters.untracked_audio_bytes_dropped
        padding = counters.padding
        return CallBridgeStats(
            caller_chunks=self._caller_chunks,
            caller_bytes=self._caller_bytes,
            padding_bytes=padding.gap_fill_bytes + padding.inactivity_fill_bytes,
            injected_bytes=self._injected_bytes,
            caller_bytes_sent=self._caller_sent,
            caller_bytes_pending=self._up_pending_edge,
            caller_bytes_dropped=self._caller_dropped,
            model_input_chunks=self._model_input_chunks,
            model_input_bytes=self._model_input_bytes,
            model_audio_chunks=self._model_chunks,
            model_audio_bytes=self._model_bytes,
            model_bytes_played=self._model_played,
            model_bytes_pending=self._model_pending,
            model_bytes_dropped=dropped,
            edge_chunks_played=self._edge_chunks,
            edge_bytes_played=self._edge_bytes,
            acknowledgements=self._acks,
            interruptions=self._interruptions,
            truncations=self._truncations,
            protocol=counters,
        )

    # -- life cycle ---------------------------------------------------------------------------

    async def connect(self, options: ConnectOptions) -> None:
        """Connect the model, with the session's audio formats forced to the bridge's.

        May be called before the call starts (before :meth:`run`, or before the edge reports
        the call), so that the model's handshake is not on the first turn's path.

        Args:
            options: The model's connect options; ``initial_session_config`` gets the formats.

        Raises:
            TransportStateError: The bridge is closed, or the model is not disconnected.
            Exception: Whatever the model's ``connect`` raises.
        """
        if self._closing:
            raise TransportStateError(
                "bridge: connect() after close(); a CallBridge carries one call"
            )
        if self._connecting or self._model.status != "disconnected":
            raise TransportStateError(
                f"bridge: connect() while the model is {self._model.status!r}"
            )
        self._start()
        forced = attrs.evolve(
            options, initial_session_config=self._force_formats(options.initial_session_config)
        )
        self._connecting = True
        self._mirror("connecting")
        try:
            await self._model.connect(forced)
        except BaseException:
            if not self._closing:
                self._mirror("disconnected")
            raise
        finally:
            self._connecting = False
        self._connected_by_bridge = True
        # Read again: the await above changed it (a fresh read keeps type narrowing honest).
        if self._model_status_now() == "connected":
            self._model_was_connected = True
            self._mirror("connected")

    async def run(self, options: ConnectOptions | None = None) -> None:
        """Carry the call until it ends, then close everything.

        Consumes the edge's events; connects the model (with ``options``) if nobody did yet,
        concurrently, so that the caller's first audio is not held up. Returns once the call is
        over (the caller hung up, the edge's stream ended, the model connection was lost or
        failed, or :meth:`close` was called) and the edge, the model and the bridge's tasks are
        closed. If cancelled, it closes everything before propagating the cancellation.

        Args:
            options: Connect options for the model, used only if the bridge connects it.

        Raises:
            TransportStateError: ``run`` was already called, or the bridge is closed.
        """
        if self._run_called:
            raise TransportStateError("bridge: run() was already called; a bridge carries one call")
        if self._closing:
            raise TransportStateError("bridge: run() after close()")
        self._run_called = True
        self._start()
        if self._status == "disconnected":
            self._mirror("connecting")
        if not self._connecting and self._connect_task is None:
            status = self._model.status
            if status == "disconnected" and self._connect_on_call_start and not self._call_started:
                self._deferred_connect = options if options is not None else ConnectOptions()
            elif status == "disconnected":
                self._connect_model(options if options is not None else ConnectOptions())
            elif not self._connected_by_bridge:
                # Someone else connected the model: the formats still have to be the bridge's.
                if status == "connected":
                    self._model_was_connected = True
                    self._mirror("connected")
                self._connect_task = asyncio.get_running_loop().create_task(
                    self._force_formats_now(), name="voicewire-bridge-formats"
                )
        loop = asyncio.get_running_loop()
        if self._call_start_timeout is not None and not self._call_started:
            self._start_timer = loop.call_later(self._call_start_timeout, self._no_call_start)
        self._reader = reader = loop.create_task(self._read_edge(), name="voicewire-bridge-edge")
        stopped = loop.create_task(self._stop.wait(), name="voicewire-bridge-stop")
        try:
            await asyncio.wait((reader, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            await asyncio.gather(stopped, return_exceptions=True)
            await self._shutdown(self._end_reason or "closed by the application")

    async def close(self) -> None:
        """End the call: close the edge and the model and stop every task. Idempotent.

        Also ends the bridge's ``events()`` iterators (after the events they hold) and lets
        async listeners finish their backlog.
        """
        await self._shutdown("closed by the application")

    async def close_after_playback(
        self, *, timeout: float = 10.0, after_next_response: bool = False
    ) -> bool:
        """End the call once the caller has heard what the model said: hang up after a goodbye.

        Waits until no response of the model is in progress and all of its audio was played to
        the caller (acknowledged by the edge, or by the wall clock for an edge without
        acknowledgements), then :meth:`close`. With Twilio, the end of the stream ends the call,
        or goes on with the TwiML after ``<Connect>`` (a ``<Dial>`` to a person, say). A
        barge-in meanwhile cuts the answer as usual, and then the call ends.

        Args:
            timeout: Seconds to wait at most; then the call is closed anyway.
            after_next_response: First wait for a response that starts after this call, for
                when the last words are yet to be asked for (a function output that starts a
                response, :meth:`send_message`): otherwise a call made before that response
                starts finds nothing to wait for and closes at once.

        Returns:
            ``True`` if all of it was heard, ``False`` if ``timeout`` ran out first or the call
            ended otherwise meanwhile.

        Raises:
            ConfigError: ``timeout`` is not a positive finite number.
        """
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout < float("inf")
        ):
            raise ConfigError("timeout", f"must be a positive finite number, got {timeout!r}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        started = self._responses_started
        heard = False
        while not self._closing and loop.time() < deadline:
            if (not after_next_response or self._responses_started > started) and (
                not self._protocol.active_responses
                and not self._down
                and not self._protocol.playback.items(self._now())
            ):
                heard = True
                break
            # Polled, not awaited on an event: without acknowledgements playback ends by the
            # wall clock, which no event marks. A frame's time is fine enough for a hang-up.
            await asyncio.sleep(0.02)
        await self.close()
        return heard

    # -- delegation to the model --------------------------------------------------------------

    async def send_audio(self, audio: bytes, *, commit: bool = False) -> None:
        """Send audio to the model as if the caller said it (in the edge's format).

        It is converted like the caller's audio and queued behind it; the input padding ignores
        it. Returns once it is queued.

        Args:
            audio: Whole frames of the edge's audio format.
            commit: Also close the input turn, once this audio is sent.

        Raises:
            TransportStateError: The bridge is closed.
            AudioFormatError: ``audio`` is not whole frames of the edge's format.
        """
        if self._closing:
            raise TransportStateError("bridge: send_audio() after close()")
        frame = self._edge_format.bytes_per_frame
        if len(audio) % frame:
            raise AudioFormatError(
                f"send_audio: {len(audio)} bytes is not whole frames of {self._edge_format}"
            )
        self._start()
        audio = bytes(audio)
        self._injected_bytes += len(audio)
        self._up_push(self._to_model(audio), len(audio), commit=commit)

    async def send_event(self, event: Mapping[str, Any]) -> None:
        """Send a raw client event to the model.

        Args:
            event: A mapping with a string ``type``.
        """
        await self._model.send_event(event)

    async def send_message(
        self,
        message: str | UserMessageItem,
        other_event_data: Mapping[str, Any] | None = None,
    ) -> None:
        """Add a user message to the model's conversation and ask for a response.

        Args:
            message: Text, or a full user message item.
            other_event_data: Extra fields merged into the client event.
        """
        await self._model.send_message(message, other_event_data)

    async def send_function_call_output(
        self, tool_call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> None:
        """Return a tool result to the model.

        Args:
            tool_call: The call being answered.
            output: The result.
            start_response: Also ask for a follow-up response.
        """
        await self._model.send_function_call_output(tool_call, output, start_response)

    async def reset_history(self, old: Sequence[RealtimeItem], new: Sequence[RealtimeItem]) -> None:
        """Make the model's conversation match ``new``.

        Args:
            old: The history as the application last knew it.
            new: The history wanted.
        """
        await self._model.reset_history(old, new)

    async def update_session_config(self, config: SessionConfig) -> None:
        """Push a new (partial) session configuration, with the audio formats forced.

        Args:
            config: The settings to change; its audio formats, if any, are replaced by the
                bridge's (with a warning when they differ).
        """
        await self._model.update_session_config(self._force_formats(config))

    async def interrupt(self) -> None:
        """Barge in now: clear the edge, cancel and truncate the model's answer at what was heard.

        Does nothing when nothing is playing or queued and no response is active. Returns once
        the edge was cleared and the model told (or the bridge closed meanwhile).
        """
        command = self._plan_interrupt()
        if command is None or command.done:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        command.waiter = waiter
        await waiter

    # -- starting -------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        for channel in _MODEL_CHANNELS:
            listener = functools.partial(self._on_model_event, channel)
            self._model.on(channel, listener)
            self._model_listeners.append((channel, listener))
        if self._up:
            self._uplink.kick()
        if self._down:
            self._downlink.kick()

    async def _connect_for_call(self, options: ConnectOptions) -> None:
        try:
            await self.connect(options)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._closing:
                return
            self._report_error(
                f"the model connection failed: {exc}",
                source="transport",
                code="model_connect_failed",
                error=exc,
            )
            self._request_end("model connection failed")
        finally:
            self._connect_began.set()

    async def _force_formats_now(self) -> None:
        try:
            await self._model.update_session_config(self._force_formats(None))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._report_error(
                f"could not set the model session's audio formats: {exc}",
                source="transport",
                code="model_config_failed",
                error=exc,
            )
            # A model left in other formats would play noise to the caller: end the call, as
            # when the bridge cannot connect the model at all.
            self._request_end("model configuration failed")

    def _force_formats(self, config: SessionConfig | None) -> SessionConfig:
        fmt = self._model_format
        forced = SessionConfig(input_audio_format=fmt, output_audio_format=fmt)
        if config is None:
            return forced
        for name in ("input_audio_format", "output_audio_format"):
            asked = getattr(config, name)
            if asked is not None and asked != fmt:
                logger.warning(
                    "CallBridge: session %s %s replaced by %s; the bridge fixes the model's "
                    "audio formats (pass model_audio_format to choose them)",
                    name,
                    asked,
                    fmt,
                )
        return config.merge(forced)

    def _model_status_now(self) -> TransportStatus:
        return self._model.status

    def _mirror(self, status: TransportStatus) -> None:
        # The bridge's status follows the model's while the call runs; transitions the table
        # does not allow (e.g. a second "connecting") are simply not mirrored.
        if status == self._status or (self._closing and status != "disconnected"):
            return
        if status in STATUS_TRANSITIONS.get(self._status, frozenset()):
            self._set_status(status)

    # -- the edge -------------------------------------------------------------------------------

    async def _read_edge(self) -> None:
        events: AsyncIterator[object] | None = None
        reason = "media stream ended"
        try:
            events = self._edge.events()
            async for event in events:
                if type(event) is CallerAudio:
                    # Nearly every event is caller audio: it goes first, past the dispatch.
                    self._caller_audio(event)
                    continue
                if isinstance(event, CallStopped):
                    reason = event.reason or "caller hung up"
                    self._emit_call_stop(reason)
                    break
                self._on_edge_event(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = "telephony edge failed"
            self._report_error(
                f"the telephony edge failed: {exc}",
                source="telephony",
                code="edge_failed",
                error=exc,
            )
        finally:
            aclose = getattr(events, "aclose", None) if events is not None else None
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    logger.debug("closing the edge's event iterator failed", exc_info=True)
        self._request_end(reason)

    def _on_edge_event(self, event: object) -> None:
        if isinstance(event, CallerAudio):
            self._caller_audio(event)
        elif isinstance(event, PlaybackAcknowledged):
            self._acks += 1
            ack = self._protocol.acknowledged(event.token)
            if ack.kind in ("audio", "done"):
                self._observers.notify("on_playback_acknowledged", event.token)
                self._pace_from_ack(event.token)
            self._emit(MarkEvent(token=event.token, cleared=ack.kind == "cleared"))
        elif isinstance(event, RawEdgeMessage):
            self._emitter.emit(WILDCARD, event.event)
        elif isinstance(event, CallStarted):
            self._on_call_started(event)
        elif isinstance(event, Dtmf):
            self._emit(DtmfEvent(digit=event.digit))
        elif isinstance(event, EdgeError):
            self._report_error(event.message, source="telephony", code=event.code)
        else:
            logger.debug("bridge: ignoring unknown edge event %r", type(event).__name__)

    def _no_call_start(self) -> None:
        self._start_timer = None
        if self._call_started or self._closing:
            return
        self._report_error(
            f"the telephony edge started no call within {self._call_start_timeout:g} s",
            source="telephony",
            code="call_start_timeout",
        )
        self._request_end("no call start")

    def _connect_model(self, options: ConnectOptions) -> None:
        self._connect_task = asyncio.get_running_loop().create_task(
            self._connect_for_call(options), name="voicewire-bridge-connect"
        )

    def _on_call_started(self, event: CallStarted) -> None:
        if self._start_timer is not None:
            self._start_timer.cancel()
            self._start_timer = None
        deferred, self._deferred_connect = self._deferred_connect, None
        if deferred is not None and not self._closing:
            self._connect_model(deferred)
        self._call_id = event.call_id
        self._call_started = True
        self._call_stopped = False
        if event.audio_format != self._edge_format:
            self._report_error(
                f"the call announced {event.audio_format}, but the edge declared "
                f"{self._edge_format}; the bridge goes on with {self._edge_format}",
                source="telephony",
                code="audio_format_mismatch",
            )
        self._protocol.call_started(self._now())
        self._observers.notify("on_call_start", event.call_id, event.stream_id, event.audio_format)
        self._emit(
            CallStartEvent(
                call_id=event.call_id,
                stream_id=event.stream_id,
                audio_format=event.audio_format,
                custom_parameters=event.custom_parameters,
            )
        )

    def _emit_call_stop(self, reason: str | None) -> None:
        if not self._call_started or self._call_stopped:
            return
        self._call_stopped = True
        self._emit(CallStopEvent(call_id=self._call_id, reason=reason))

    def _caller_audio(self, event: CallerAudio) -> None:
        data = event.data
        nbytes = len(data)
        self._caller_chunks += 1
        self._caller_bytes += nbytes
        if nbytes % self._edge_frame_bytes:
            self._caller_drop("malformed", nbytes)
            return
        padder = self._padder
        try:
            silence = padder.audio(nbytes, event.timestamp_ms, self._now())
        except ValueError:
            # A timestamp the padder cannot use is as good as none; the audio still goes.
            silence = padder.audio(nbytes, None, self._now())
        if silence:
            self._up_push(self._to_model(silence), len(silence))
        self._up_push(self._to_model(data), nbytes)
        if padder.speech_active:
            self._arm_inactivity()

    def _to_model(self, data: bytes) -> bytes:
        return data if self._in_conv is None else self._in_conv.convert(data)

    # -- the model ------------------------------------------------------------------------------

    def _on_model_event(self, channel: str, event: Any) -> None:
        if channel == "audio" and isinstance(event, AudioEvent):
            self._model_audio(event)
            return
        if channel == "connection_change":
            if isinstance(event, ConnectionChangeEvent):
                self._model_status(event.status)
            return  # the bridge reports its own status
        if channel == "error":
            self._forward_error(event)
            return
        emit = self._emitter.emit
        if isinstance(event, SpeechStartedEvent):
            self._protocol.padder.speech_started()
            self._arm_inactivity()
            emit(channel, event)
            if self._automatic_barge_in:
                self._plan_interrupt()
            return
        if isinstance(event, SpeechStoppedEvent):
            self._protocol.padder.speech_stopped()
        elif isinstance(event, TurnStartedEvent):
            self._responses_started += 1
            if event.response_id is not None:
                self._protocol.response_started(event.response_id)
        elif isinstance(event, AudioDoneEvent):
            self._model_audio_done(event)
        elif isinstance(event, TurnDoneEvent):
            self._model_turn_done(event)
        emit(channel, event)

    def _model_audio(self, event: AudioEvent) -> None:
        data = event.data
        nbytes = len(data)
        self._model_chunks += 1
        self._model_bytes += nbytes
        if nbytes % self._model_format.bytes_per_frame:
            self._model_drop("malformed", nbytes)
            return
        verdict = self._protocol.accept_audio(
            event.response_id, event.item_id, event.content_index, nbytes, self._now()
        )
        if not verdict.play:
            if verdict.reason == "untracked" and "untracked" not in self._reported_drop:
                self._reported_drop.add("untracked")
                logger.warning(
                    "bridge: model audio without an item id is not played (it could never be "
                    "truncated); see stats.model_bytes_dropped['untracked']"
                )
            return
        if self._out_conv is None:
            out = data
        else:
            self._out_key = (event.response_id, event.item_id, event.content_index)
            out = self._out_conv.convert(data)
        token = verdict.token
        if not (out and self._play_now(out, nbytes, token)):
            self._push_play(out, nbytes)
            if token is not None:
                self._down_push(_Ack(token))
        self._emitter.emit("audio", event)

    def _push_play(self, data: bytes, model_nbytes: int) -> None:
        size = self._piece_bytes
        if size is None or len(data) <= size:
            self._down_push(_Play(data, model_nbytes))
            return
        # Paced: pieces of half what the provider takes ahead. The model's bytes a piece
        # accounts for are shared out in proportion, so that they add up.
        total = len(data)
        for start in range(0, total, size):
            end = min(total, start + size)
            share = model_nbytes * end // total - model_nbytes * start // total
            self._down_push(_Play(data[start:end], share))

    def _token_sent(self, token: str) -> None:
        if self._max_buffered_ms is not None:
            self._handed_at_token[token] = self._handed_ms

    def _pace_from_ack(self, token: str) -> None:
        # Everything handed over before the token has played now; what came after is still
        # queued at the provider. A provider that started late (the first piece took longer to
        # arrive than the rest) or plays slowly is then caught up with: the estimate only moves
        # later, never earlier.
        handed_before = self._handed_at_token.pop(token, None)
        if handed_before is not None:
            queued_end = self._now() + self._handed_ms - handed_before
            self._playout_end_ms = max(self._playout_end_ms, queued_end)

    def _pace_wait_s(self, edge_nbytes: int) -> float:
        """How long to wait before handing ``edge_nbytes`` to a paced edge (0: at once)."""
        limit = self._max_buffered_ms
        if limit is None:
            return 0.0
        room = max(0.0, limit - self._edge_format.duration_ms(edge_nbytes))
        return max(0.0, self._playout_end_ms - self._now() - room) / 1000.0

    def _play_now(self, data: bytes, model_nbytes: int, token: str | None) -> bool:
        """Hand audio (and its token) to the edge at once, if nothing queued must go first."""
        nowait = self._play_nowait
        if nowait is None or self._down or self._downlink.running or not self._started:
            return False
        if self._piece_bytes is not None and (
            len(data) > self._piece_bytes or self._pace_wait_s(len(data)) > 0
        ):
            return False
        try:
            taken = nowait(data, token)
        except Exception as exc:  # the queued path reports what play() says
            self._nowait_failed("edge.play_nowait", exc)
            return False
        if taken:
            self._played(model_nbytes, len(data))
            if token is not None:
                self._token_sent(token)
        return taken

    def _nowait_failed(self, method: str, exc: Exception) -> None:
        # The call goes on through the queue, but a method that raises is a bug in that half:
        # said once per call at WARNING, so that a fast path lost for good does not go unseen.
        first = method not in self._nowait_warned
        self._nowait_warned.add(method)
        logger.log(
            logging.WARNING if first else logging.DEBUG,
            "bridge: %s raised %s; the audio takes the queue instead",
            method,
            type(exc).__name__,
            exc_info=exc if first else None,
        )

    def _flush_output(self, *, play: bool) -> None:
        if self._out_conv is None or self._out_key is None:
            return
        self._out_key = None
        tail = self._out_conv.flush()
        if play and tail:
            self._down_push(_Play(tail, 0))

    def _model_audio_done(self, event: AudioDoneEvent) -> None:
        if self._out_key == (event.response_id, event.item_id, event.content_index):
            # The resampler holds a few milliseconds back; they belong before the done token.
            self._flush_output(play=True)
        if event.item_id is not None:
            token = self._protocol.audio_done(
                event.response_id, event.item_id, event.content_index, self._now()
            )
            if token is not None:
                self._down_push(_Ack(token))

    def _model_turn_done(self, event: TurnDoneEvent) -> None:
        if self._out_key is not None and self._out_key[0] == event.response_id:
            self._flush_output(play=True)
        if event.response_id is not None:
            self._protocol.response_done(event.response_id, self._now())

    def _model_status(self, status: TransportStatus) -> None:
        if status in _ACTIVE:
            self._connect_began.set()
        if self._closing:
            return
        if status == "connected":
            self._model_was_connected = True
            self._mirror("connected")
        elif status == "connecting":
            if self._status == "connected":
                # A reconnect: the responses of the lost connection will never report done.
                self._model_connection_lost()
            self._mirror("connecting")
        elif status == "disconnected" and self._model_was_connected:
            self._model_connection_lost()
            if self._started:
                self._report_error(
                    "the model connection closed; ending the call",
                    source="transport",
                    code="model_disconnected",
                )
                self._request_end("model disconnected")

    def _model_connection_lost(self) -> None:
        now = self._now()
        for response_id in self._protocol.active_responses:
            self._protocol.response_done(response_id, now)
        self._protocol.padder.speech_stopped()
        self._flush_output(play=False)

    def _forward_error(self, event: object) -> None:
        if not self._emitter.has_subscribers("error"):
            message = event.message if isinstance(event, ErrorEvent) else repr(event)
            logger.warning("bridge: model error with no error listener: %s", message)
        self._emitter.emit("error", event)

    # -- barge-in -------------------------------------------------------------------------------

    def _server_cancels(self) -> bool:
        try:
            return bool(self._model.server_interrupts_response)
        except Exception:
            logger.warning("bridge: reading model.server_interrupts_response failed", exc_info=True)
            return False

    def _plan_interrupt(self) -> _Interrupt | None:
        if self._closing:
            return None
        plan = self._protocol.interrupt(self._now(), server_auto_cancels=self._server_cancels())
        if plan is None:
            return None
        if plan.clear_edge:
            # Audio decided before the barge-in and not yet handed over must never be: the
            # clear only empties the edge's own buffer.
            kept: deque[_Down] = deque()
            for command in self._down:
                if isinstance(command, _Play):
                    self._model_pending -= command.model_nbytes
                    self._model_dropped["cleared"] += command.model_nbytes
                elif isinstance(command, _Interrupt):
                    kept.append(command)
            self._down = kept
            downlink = self._downlink.task
            if self._playing and not self._abandon_play and downlink is not None:
                # A play waiting for room in a full edge buffer would land after the clear: the
                # downlink is cancelled inside it, takes that one cancellation and goes on.
                self._abandon_play = True
                downlink.cancel()
            self._flush_output(play=False)
        command = _Interrupt(plan)
        self._down_push(command)
        self._interruptions += 1
        if plan.truncations:
            # Only audio the caller had (or was about to) hear makes an interruption worth an
            # event; cancelling a response that produced no audio yet is silent.
            event = AudioInterruptedEvent(
                response_id=plan.interrupted_response_ids[0]
                if plan.interrupted_response_ids
                else None,
                truncations=plan.truncations,
            )
            self._observers.notify("on_interruption", event)
            self._emit(event)
        return command

    # -- inactivity padding ---------------------------------------------------------------------

    def _arm_inactivity(self) -> None:
        if self._closing:
            return
        deadline = self._protocol.padder.next_deadline_ms()
        if deadline is None:
            return
        if self._timer is not None:
            if self._timer_at <= deadline:
                # It fires early, finds nothing due, and re-arms for the later deadline: one
                # timer per inactivity timeout rather than one per caller chunk.
                return
            self._timer.cancel()
        delay = max(0.0, (deadline - self._now()) / 1000.0) + _TIMER_SLACK_S
        self._timer_at = deadline
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_inactivity)

    def _on_inactivity(self) -> None:
        self._timer = None
        if self._closing:
            return
        silence = self._protocol.padder.on_inactivity(self._now())
        if silence:
            self._up_push(self._to_model(silence), len(silence))
        self._arm_inactivity()

    # -- uplink: caller -> model ----------------------------------------------------------------

    def _up_push(self, data: bytes, edge_nbytes: int, *, commit: bool = False) -> None:
        if self._closing:
            self._caller_drop("closed", edge_nbytes)
            return
        nowait = self._send_nowait
        if (
            nowait is not None
            and data
            and not commit
            and not self._up
            and not self._uplink.running
            and self._started
        ):
            try:
                sent = nowait(data)
            except Exception as exc:  # the queued path below reports what send_audio says
                self._nowait_failed("model.send_audio_nowait", exc)
                sent = False
            if sent:
                self._sent_up(edge_nbytes, len(data))
                return
        self._up.append(_Up(data, edge_nbytes, commit))
        self._up_pending_model += len(data)
        self._up_pending_edge += edge_nbytes
        while self._up_pending_model > self._max_pending and len(self._up) > 1:
            # The model is not keeping up: the oldest audio matters least to a live call.
            old = self._up.popleft()
            self._up_pending_model -= len(old.data)
            self._up_pending_edge -= old.edge_nbytes
            self._caller_drop("overflow", old.edge_nbytes)
        if self._started:
            self._uplink.kick()

    def _caller_drop(self, reason: str, edge_nbytes: int) -> None:
        self._caller_dropped[reason] += edge_nbytes
        if reason in self._reported_drop or reason == "closed":
            return
        self._reported_drop.add(reason)
        messages = {
            "malformed": "caller audio that is not whole frames of the edge's format was dropped",
            "overflow": "caller audio was dropped: the model does not take it as fast as it "
            f"arrives (more than {self._max_pending} bytes pending)",
            "model_unavailable": "caller audio was dropped: the model is not connected",
            "send_failed": "caller audio was dropped: the model refused it",
        }
        self._report_error(
            messages[reason],
            source="overflow" if reason == "overflow" else "bridge",
            code=f"caller_audio_{reason}",
        )

    async def _send_up(self) -> None:
        up = self._up
        while up:
            item = self._up_inflight = up.popleft()
            self._up_pending_model -= len(item.data)
            status = self._model.status
            connect = self._connect_task
            if status not in _ACTIVE and connect is not None and not connect.done():
                # Connected on the call's start, and this audio came with it: with eager tasks
                # the uplink can run before the connect reached the model. It waits, not drops.
                await self._connect_began.wait()
                status = self._model.status
            if status not in _ACTIVE:
                self._up_inflight = None
                self._up_pending_edge -= item.edge_nbytes
                self._caller_drop("model_unavailable", item.edge_nbytes)
                continue
            if not item.data and not item.commit:
                # The resampler is filling up; the audio is inside it, not lost.
                self._up_inflight = None
                self._up_pending_edge -= item.edge_nbytes
                self._caller_sent += item.edge_nbytes
                continue
            try:
                await self._model.send_audio(item.data, commit=item.commit)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._up_inflight = None
                self._up_pending_edge -= item.edge_nbytes
                if "send_failed" not in self._reported_drop:
                    logger.debug("bridge: model.send_audio raised", exc_info=exc)
                self._caller_drop("send_failed", item.edge_nbytes)
                continue
            self._up_inflight = None
            self._up_pending_edge -= item.edge_nbytes
            self._sent_up(item.edge_nbytes, len(item.data))

    def _sent_up(self, edge_nbytes: int, model_nbytes: int) -> None:
        self._caller_sent += edge_nbytes
        if model_nbytes:
            self._model_input_chunks += 1
            self._model_input_bytes += model_nbytes
        if self._reported_drop:
            # Audio flows again: the next drop of these kinds is a new episode, reported anew.
            self._reported_drop.difference_update(_UPLINK_DROPS)

    # -- downlink: model -> edge ----------------------------------------------------------------

    def _down_push(self, command: _Down) -> None:
        self._down.append(command)
        if isinstance(command, _Play):
            self._model_pending += command.model_nbytes
        if self._started:
            self._downlink.kick()

    def _model_drop(self, reason: str, model_nbytes: int) -> None:
        self._model_dropped[reason] += model_nbytes
        if reason == "malformed" and "model_malformed" not in self._reported_drop:
            self._reported_drop.add("model_malformed")
            self._report_error(
                "model audio that is not whole frames of the session's format was dropped",
                source="bridge",
                code="model_audio_malformed",
            )

    async def _carry_out_commands(self) -> None:
        while self._down:
            command = self._down.popleft()
            if isinstance(command, _Play):
                await self._play(command)
            elif isinstance(command, _Ack):
                self._token_sent(command.token)
                await self._edge_command("acknowledge_when_played", command.token)
            else:
                await self._carry_out(command)

    async def _play(self, command: _Play) -> None:
        data = command.data
        if not data:
            self._model_pending -= command.model_nbytes
            self._model_played += command.model_nbytes
            return
        # Awaited in the downlink itself, not in a task of its own: that would cost two more
        # turns of the event loop per chunk. A barge-in abandons a play that waits for room in
        # the edge's buffer (or for its pace) by cancelling the downlink, which the except
        # clause takes back.
        exc: Exception | None = None
        abandoned = False
        self._playing = True
        try:
            wait = self._pace_wait_s(len(data))
            while wait > 0:
                await asyncio.sleep(wait)
                # Looked at again: an acknowledgement meanwhile may have moved it later.
                wait = self._pace_wait_s(len(data))
            await self._edge.play(data)
        except asyncio.CancelledError:
            if not self._abandon_play or self._closing:
                raise
            abandoned = True
        except Exception as error:
            exc = error
        finally:
            self._playing = False
        if self._abandon_play:
            # Ours, and handled (also when the edge swallowed it): the task is not cancelled.
            self._abandon_play = False
            uncancel = getattr(asyncio.current_task(), "uncancel", None)  # Python >= 3.11
            if uncancel is not None:
                uncancel()
        self._model_pending -= command.model_nbytes
        if abandoned:
            self._model_dropped["cleared"] += command.model_nbytes
            return
        if exc is not None:
            self._model_dropped["edge_error"] += command.model_nbytes
            self._report_error(
                f"the telephony edge could not play audio: {exc}",
                source="telephony",
                code="edge_play_failed",
                error=exc,
            )
            return
        self._played(command.model_nbytes, len(data))

    def _played(self, model_nbytes: int, edge_nbytes: int) -> None:
        if self._max_buffered_ms is not None:
            duration = self._edge_format.duration_ms(edge_nbytes)
            self._playout_end_ms = max(self._playout_end_ms, self._now()) + duration
            self._handed_ms += duration
        self._model_played += model_nbytes
        self._edge_chunks += 1
        self._edge_bytes += edge_nbytes
        self._observers.notify("on_audio_to_caller", edge_nbytes)

    async def _edge_command(self, name: str, *args: Any) -> None:
        try:
            await getattr(self._edge, name)(*args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._report_error(
                f"the telephony edge failed to {name}: {exc}",
                source="telephony",
                code=f"edge_{name}_failed",
                error=exc,
            )

    async def _carry_out(self, command: _Interrupt) -> None:
        plan = command.plan
        try:
            if plan.clear_edge:
                await self._edge_command("clear")
                self._playout_end_ms = self._now()  # the provider's buffer is empty
                self._handed_at_token.clear()  # its tokens come back as cleared
            if plan.cancel_response and self._model.status == "connected":
                await self._model_command("cancel_response")
            for truncation in plan.truncations:
                if self._model.status != "connected":
                    break
                if await self._model_command(
                    "truncate",
                    truncation.item_id,
                    truncation.content_index,
                    truncation.audio_end_ms,
                ):
                    self._truncations += 1
        finally:
            command.done = True
            if command.waiter is not None and not command.waiter.done():
                command.waiter.set_result(None)

    async def _model_command(self, name: str, *args: Any) -> bool:
        try:
            await getattr(self._model, name)(*args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._report_error(
                f"the model failed to {name}: {exc}",
                source="transport",
                code=f"model_{name}_failed",
                error=exc,
            )
            return False
        return True

    # -- ending ---------------------------------------------------------------------------------

    def _request_end(self, reason: str) -> None:
        if self._end_reason is None:
            self._end_reason = reason
        self._stop.set()
        if not self._run_called and self._closer is None and not self._closing:
            # Nobody is in run() to notice: close in a task of our own (close() awaits it).
            self._closer = asyncio.get_running_loop().create_task(
                self._close_everything(reason), name="voicewire-bridge-close"
            )

    async def _shutdown(self, reason: str) -> None:
        if self._closer is None:
            self._closer = asyncio.get_running_loop().create_task(
                self._close_everything(reason), name="voicewire-bridge-close"
            )
        # Shielded: a caller cancelled while waiting must not leave the call half closed.
        await asyncio.shield(self._closer)
        # In the caller's own task, so that close() awaited from an async listener of this
        # bridge does not wait for itself.
        await self.aclose_emitter()

    async def _close_everything(self, reason: str) -> None:
        if self._end_reason is None:
            self._end_reason = reason
        reason = self._end_reason
        self._closing = True
        self._stop.set()
        current = asyncio.current_task()
        for timer in (self._timer, self._start_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._start_timer = None
        if self._status in _ACTIVE:
            self._set_status("disconnecting")
        await self._quietly(self._edge.close(reason), "telephony", "edge_close_failed")
        if self._connect_task is not None and self._connect_task is not current:
            self._connect_task.cancel()
            await asyncio.gather(self._connect_task, return_exceptions=True)
        await self._quietly(self._model.close(), "transport", "model_close_failed")
        reader = self._reader
        if reader is not None and reader is not current and not reader.done():
            await asyncio.wait((reader,), timeout=_READER_GRACE_S)
            if not reader.done():
                logger.warning("bridge: the edge's events() did not end after close(); cancelled")
                reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await self._uplink.stop()
        await self._downlink.stop()
        self._account_leftovers()
        self._emit_call_stop(reason)
        for channel, listener in self._model_listeners:
            self._model.off(channel, listener)
        self._model_listeners.clear()
        if self._status != "disconnected":
            self._set_status("disconnected")
        self._observers.notify("on_close", reason)

    def _account_leftovers(self) -> None:
        for command in self._down:
            waiter = command.waiter if isinstance(command, _Interrupt) else None
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        self._down.clear()
        self._model_dropped["closed"] += self._model_pending
        self._model_pending = 0
        self._up.clear()
        self._up_inflight = None
        self._caller_dropped["closed"] += self._up_pending_edge
        self._up_pending_edge = 0
        self._up_pending_model = 0

    async def _quietly(self, awaitable: Awaitable[object], source: str, code: str) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._report_error(
                f"{code.replace('_', ' ')}: {exc}", source=source, code=code, error=exc
            )

    # -- clock ----------------------------------------------------------------------------------

    @staticmethod
    def _now() -> float:
        return time.monotonic() * 1000.0
