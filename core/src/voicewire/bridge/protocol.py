"""The call bridge's sans-I/O core: playback, interruption, late-audio discarding, padding.

:class:`BridgeProtocol` is the state machine the asyncio ``CallBridge`` feeds with what happens
(model audio, acknowledgements, response life cycle, caller audio, barge-in) and drains for what
to do (play this, send that token, clear the edge, cancel, truncate, send this silence). It never
performs I/O and never reads a clock: time enters as ``now_ms``.

The pieces are usable on their own: :class:`~voicewire.bridge.playback.PlaybackTracker` (what
the caller heard), :func:`~voicewire.bridge.playback.truncation_points` (where to cut) and
:class:`~voicewire.bridge.padding.InputPadder` (caller-side silence). This module re-exports them.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs

from voicewire.audio.formats import AudioFormat
from voicewire.bridge.padding import (
    DEFAULT_INACTIVITY_FILL_MS,
    DEFAULT_INACTIVITY_TIMEOUT_MS,
    DEFAULT_MAX_GAP_FILL_MS,
    InputPadder,
    PaddingStats,
)
from voicewire.bridge.playback import (
    DEFAULT_HEARD_MARGIN_MS,
    AckKind,
    Acknowledgement,
    ItemPlayback,
    PlaybackKey,
    PlaybackStats,
    PlaybackTracker,
    _check_nbytes,
    truncation_points,
)
from voicewire.errors import ConfigError
from voicewire.events import Truncation

__all__ = [
    "DEFAULT_HEARD_MARGIN_MS",
    "DEFAULT_INACTIVITY_FILL_MS",
    "DEFAULT_INACTIVITY_TIMEOUT_MS",
    "DEFAULT_MAX_GAP_FILL_MS",
    "AckKind",
    "Acknowledgement",
    "AudioVerdict",
    "BridgeCounters",
    "BridgeProtocol",
    "InputPadder",
    "InterruptionPlan",
    "ItemPlayback",
    "PaddingStats",
    "PlaybackKey",
    "PlaybackStats",
    "PlaybackTracker",
    "truncation_points",
]

_MAX_DISCARDED_ITEMS = 1024


@attrs.frozen(kw_only=True)
class AudioVerdict:
    """What to do with a chunk of model audio.

    Attributes:
        play: Hand the chunk to the edge now.
        token: If set, ask the edge to acknowledge this token right after the chunk.
        reason: ``"accepted"``; ``"interrupted"`` (late audio of an interrupted response or
            item, counted as dropped); ``"untracked"`` (no item id, so it could never be
            truncated: counted as dropped); ``"empty"`` (nothing to play).
    """

    play: bool
    token: str | None = None
    reason: Literal["accepted", "interrupted", "untracked", "empty"] = "accepted"


@attrs.frozen(kw_only=True)
class InterruptionPlan:
    """What to do, in this order, when the caller barges in.

    Attributes:
        clear_edge: Tell the edge to drop the audio it has queued.
        cancel_response: Cancel the model's response: a response is active and the model does
            not cancel it by itself.
        truncations: Tell the model where each interrupted item was cut, in playback order.
        interrupted_response_ids: Responses whose later audio is dropped.
        unheard_ms: Audio handed to the edge that the caller will not hear (by the playback
            clock), summed over the items.
    """

    clear_edge: bool
    cancel_response: bool
    truncations: tuple[Truncation, ...]
    interrupted_response_ids: tuple[str, ...]
    unheard_ms: float


@attrs.frozen(kw_only=True)
class BridgeCounters:
    """Everything the bridge dropped or inserted, so nothing is lost silently.

    Every byte of model audio offered to :meth:`BridgeProtocol.accept_audio` is either accepted
    (handed to the edge) or counted as dropped here.

    Attributes:
        audio_chunks_accepted: Model audio chunks handed to the edge.
        audio_bytes_accepted: Their bytes.
        late_audio_chunks_dropped: Chunks of interrupted responses or items, dropped.
        late_audio_bytes_dropped: Their bytes.
        untracked_audio_chunks_dropped: Chunks without an item id, dropped.
        untracked_audio_bytes_dropped: Their bytes.
        interruptions: Interruptions that acted (returned a plan).
        truncations: Truncations planned.
        playback: The playback tracker's counters (tokens cleared or unknown, unheard audio).
        padding: The input padder's counters.
    """

    audio_chunks_accepted: int = 0
    audio_bytes_accepted: int = 0
    late_audio_chunks_dropped: int = 0
    late_audio_bytes_dropped: int = 0
    untracked_audio_chunks_dropped: int = 0
    untracked_audio_bytes_dropped: int = 0
    interruptions: int = 0
    truncations: int = 0
    playback: PlaybackStats = attrs.field(factory=PlaybackStats)
    padding: PaddingStats = attrs.field(factory=PaddingStats)


_NESTED_STATS = ("playback", "padding")


class BridgeProtocol:
    """The sans-I/O state of one bridged call: output playback, interruption, input padding.

    Args:
        output_format: Format of the model audio byte counts (see :class:`PlaybackTracker`).
        input_format: Format of the caller's audio (see :class:`InputPadder`).
        acknowledgements: The edge acknowledges tokens; otherwise the wall clock is used.
        heard_margin_ms: How far past the heard point an interrupted item is cut.
        playout_latency_ms: Wall-clock mode only; see :class:`PlaybackTracker`.
        inactivity_timeout_ms: See :class:`InputPadder`; ``None`` disables inactivity padding.
        max_gap_fill_ms: See :class:`InputPadder`.
        inactivity_fill_ms: See :class:`InputPadder`.

    Raises:
        ConfigError: A parameter is invalid; the error names it.
    """

    def __init__(
        self,
        *,
        output_format: AudioFormat,
        input_format: AudioFormat,
        acknowledgements: bool,
        heard_margin_ms: float = DEFAULT_HEARD_MARGIN_MS,
        playout_latency_ms: float = 0.0,
        inactivity_timeout_ms: float | None = DEFAULT_INACTIVITY_TIMEOUT_MS,
        max_gap_fill_ms: float = DEFAULT_MAX_GAP_FILL_MS,
        inactivity_fill_ms: float = DEFAULT_INACTIVITY_FILL_MS,
    ) -> None:
        if (
            isinstance(heard_margin_ms, bool)
            or not isinstance(heard_margin_ms, (int, float))
            or not math.isfinite(heard_margin_ms)
            or heard_margin_ms < 0
        ):
            raise ConfigError(
                "heard_margin_ms", f"must be a finite number >= 0, got {heard_margin_ms!r}"
            )
        self._margin = float(heard_margin_ms)
        self.playback = PlaybackTracker(
            output_format,
            acknowledgements=acknowledgements,
            playout_latency_ms=playout_latency_ms,
        )
        """The playback tracker (what the caller heard)."""
        self.padder = InputPadder(
            input_format,
            inactivity_timeout_ms=inactivity_timeout_ms,
            max_gap_fill_ms=max_gap_fill_ms,
            inactivity_fill_ms=inactivity_fill_ms,
        )
        """The input padder (silence into the caller's audio)."""
        self._active: dict[str, None] = {}  # insertion-ordered set
        self._discarded_responses: dict[str, None] = {}
        # item id -> response id, so the entries go when their response ends.
        self._discarded_items: dict[str, str | None] = {}
        # Plain ints, counted per model chunk; BridgeCounters is built when someone asks.
        self._counters: dict[str, int] = {
            name: 0 for name in attrs.fields_dict(BridgeCounters) if name not in _NESTED_STATS
        }

    # -- response life cycle -----------------------------------------------------------------

    @property
    def active_responses(self) -> tuple[str, ...]:
        """Responses started and neither done nor interrupted, oldest first."""
        return tuple(self._active)

    def response_started(self, response_id: str) -> None:
        """The model started a response."""
        self._active[response_id] = None

    def response_done(self, response_id: str, now_ms: float) -> None:
        """The model ended a response (completed, cancelled or failed): no more audio will come.

        Its items can now finish playing, and the memory of its interruption is dropped.

        Raises:
            ValueError: ``now_ms`` is invalid.
        """
        self._active.pop(response_id, None)
        self._discarded_responses.pop(response_id, None)
        for item_id in [i for i, r in self._discarded_items.items() if r == response_id]:
            del self._discarded_items[item_id]
        self.playback.response_done(response_id, now_ms)

    # -- model audio -------------------------------------------------------------------------

    def accept_audio(
        self,
        response_id: str | None,
        item_id: str | None,
        content_index: int,
        nbytes: int,
        now_ms: float,
    ) -> AudioVerdict:
        """Decide what to do with a chunk of model audio, and record it if it is played.

        Audio of an interrupted response or item is dropped and counted. Audio without an item
        id is dropped and counted too: it could never be truncated, so playing it would let the
        model believe the caller heard things they did not, or the reverse.

        Args:
            response_id: The chunk's response, if known.
            item_id: The chunk's output item, if known.
            content_index: The chunk's content part.
            nbytes: The chunk's size in ``output_format``.
            now_ms: The current time (the chunk is handed to the edge now if played).

        Returns:
            Whether to play it and which token to send after it.

        Raises:
            ValueError: ``nbytes`` or ``now_ms`` is invalid.
        """
        _check_nbytes(nbytes)
        if nbytes == 0:
            return AudioVerdict(play=False, reason="empty")
        c = self._counters
        if (
            response_id is not None and response_id in self._discarded_responses
        ) or item_id in self._discarded_items:
            c["late_audio_chunks_dropped"] += 1
            c["late_audio_bytes_dropped"] += nbytes
            return AudioVerdict(play=False, reason="interrupted")
        if item_id is None:
            c["untracked_audio_chunks_dropped"] += 1
            c["untracked_audio_bytes_dropped"] += nbytes
            return AudioVerdict(play=False, reason="untracked")
        token = self.playback.audio_sent(
            PlaybackKey(response_id, item_id, content_index), nbytes, now_ms
        )
        c["audio_chunks_accepted"] += 1
        c["audio_bytes_accepted"] += nbytes
        return AudioVerdict(play=True, token=token)

    def audio_done(
        self, response_id: str | None, item_id: str, content_index: int, now_ms: float
    ) -> str | None:
        """The model finished the audio of one content part.

        Returns:
            A done token to send to the edge, or ``None`` (see
            :meth:`PlaybackTracker.audio_done`).

        Raises:
            ValueError: ``now_ms`` is invalid.
        """
        return self.playback.audio_done(PlaybackKey(response_id, item_id, content_index), now_ms)

    def acknowledged(self, token: str) -> Acknowledgement:
        """The edge acknowledged a token (see :meth:`PlaybackTracker.acknowledged`)."""
        return self.playback.acknowledged(token)

    # -- interruption ------------------------------------------------------------------------

    def interrupt(
        self, now_ms: float, *, server_auto_cancels: bool = False
    ) -> InterruptionPlan | None:
        """Plan a barge-in: clear the edge, cancel, truncate, and drop the late audio.

        Nothing happens (``None``) when no audio is playing or queued and no response is active:
        an interruption of silence must not clear, cancel or truncate anything. Otherwise
        playback is cleared (a new generation: outstanding tokens become cleared), the
        interrupted responses and items are remembered so their late audio is dropped, and the
        plan says what the I/O layer must send. A second call right after finds nothing to do.

        Args:
            now_ms: The current time.
            server_auto_cancels: The model cancels its response by itself when it detects the
                caller's speech (OpenAI: ``turn_detection.interrupt_response``); the plan then
                does not ask for a cancel. Truncation is planned either way.

        Returns:
            The plan, or ``None`` if there was nothing to interrupt.

        Raises:
            ValueError: ``now_ms`` is invalid.
        """
        playing = self.playback.items(now_ms)
        if not playing and not self._active:
            return None
        had_tokens = self.playback.has_unacknowledged_tokens
        cleared = self.playback.clear(now_ms)
        truncations = truncation_points(cleared, self._margin)
        response_ids: dict[str, None] = dict(self._active)
        for item in cleared:
            if item.key.response_id is not None:
                response_ids[item.key.response_id] = None
            self._discarded_items[item.key.item_id] = item.key.response_id
        while len(self._discarded_items) > _MAX_DISCARDED_ITEMS:
            del self._discarded_items[next(iter(self._discarded_items))]
        self._discarded_responses.update(response_ids)
        cancel = bool(self._active) and not server_auto_cancels
        self._active.clear()
        self._counters["interruptions"] += 1
        self._counters["truncations"] += len(truncations)
        return InterruptionPlan(
            clear_edge=bool(cleared) or had_tokens,
            cancel_response=cancel,
            truncations=truncations,
            interrupted_response_ids=tuple(response_ids),
            unheard_ms=sum(item.unheard_ms for item in cleared),
        )

    # -- call life cycle ---------------------------------------------------------------------

    def call_started(self, now_ms: float) -> None:
        """The edge started (or restarted) a call's media stream.

        Playback starts a new generation (tokens of the old stream read as cleared) and the
        input timeline is forgotten. Responses are the model's business and are kept.

        Raises:
            ValueError: ``now_ms`` is invalid.
        """
        self.playback.clear(now_ms)
        self.padder.reset()

    def model_disconnected(self, now_ms: float) -> None:
        """The model connection ended: playback, responses, discards and input timing reset.

        Raises:
            ValueError: ``now_ms`` is invalid.
        """
        self.playback.clear(now_ms)
        self._active.clear()
        self._discarded_responses.clear()
        self._discarded_items.clear()
        self.padder.reset()

    # -- counters ----------------------------------------------------------------------------

    @property
    def counters(self) -> BridgeCounters:
        """A snapshot of every counter, the tracker's and the padder's included."""
        return BridgeCounters(
            **self._counters, playback=self.playback.stats, padding=self.padder.stats
        )
