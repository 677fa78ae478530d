"""Playback tracking: how much of the model's audio the caller has heard. Sans-I/O.

The bridge hands model audio to a telephony edge far faster than the edge plays it, so "bytes
sent" says little about what the caller heard. :class:`PlaybackTracker` keeps, for each playback
item (one content part of one model output item, keyed by :class:`PlaybackKey`), how much audio
was handed to the edge (*sent*) and how much of it was played (*heard*).

Two playback clocks exist, chosen once per call by the edge's capabilities:

* **Acknowledgements** (the edge reports when playback reaches a token it was given, e.g. Twilio
  marks). Every chunk handed to the edge gets a fresh opaque token, and an acknowledged token moves
  its item's heard time to the sent time recorded with that token. Nothing else moves it: not the
  wall clock, not the byte count.
* **Wall clock**, for edges without acknowledgements. The edge is modelled as a first-in first-out
  buffer that plays in real time: a chunk starts playing when it is handed over or when the audio
  queued before it ends, whichever is later. See :meth:`PlaybackTracker.items`.

Time never comes from a clock here: every method that needs it takes ``now_ms``, a monotonic time
in milliseconds chosen by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import attrs

from voicewire.audio.formats import AudioFormat
from voicewire.errors import ConfigError
from voicewire.events import Truncation

__all__ = [
    "DEFAULT_HEARD_MARGIN_MS",
    "AckKind",
    "Acknowledgement",
    "ItemPlayback",
    "PlaybackKey",
    "PlaybackStats",
    "PlaybackTracker",
    "truncation_points",
]

DEFAULT_HEARD_MARGIN_MS = 50.0
"""How far past the last known heard point an interrupted item is cut (acknowledgements lag)."""

AckKind = Literal["audio", "done", "cleared", "unknown"]
"""What an acknowledged token was: a chunk's token, an item's done token, a token outstanding
when playback was cleared, or a token this tracker does not know (foreign, duplicate, forgotten)."""


def _check_now(now_ms: float) -> float:
    """Validate a caller-supplied time and return it as a float.

    Raises:
        ValueError: ``now_ms`` is not a finite number.
    """
    if type(now_ms) is float and math.isfinite(now_ms):
        return now_ms  # the common case, first: every caller frame and model chunk passes here
    if isinstance(now_ms, bool) or not isinstance(now_ms, (int, float)):
        raise ValueError(f"now_ms must be a number, got {type(now_ms).__name__}")
    if not math.isfinite(now_ms):
        raise ValueError(f"now_ms must be finite, got {now_ms}")
    return float(now_ms)


def _check_nbytes(nbytes: int) -> int:
    """Validate a byte count.

    Raises:
        ValueError: ``nbytes`` is not an int >= 0.
    """
    if type(nbytes) is int and nbytes >= 0:
        return nbytes
    if isinstance(nbytes, bool) or not isinstance(nbytes, int):
        raise ValueError(f"nbytes must be an int, got {type(nbytes).__name__}")
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes}")
    return nbytes


@attrs.frozen
class PlaybackKey:
    """Identifies one playback item: one content part of one model output item.

    Attributes:
        response_id: The model response the audio belongs to, if the model names it.
        item_id: The output item the audio belongs to.
        content_index: The content part within the item.
    """

    response_id: str | None
    item_id: str
    content_index: int = 0


@attrs.frozen(kw_only=True)
class ItemPlayback:
    """A snapshot of one playback item.

    Attributes:
        key: The item.
        sent_bytes: Bytes handed to the edge, in the tracker's ``output_format``.
        sent_ms: Milliseconds handed to the edge.
        heard_ms: Milliseconds the caller heard, by the tracker's playback clock; never above
            ``sent_ms``.
        done: The model finished this item's audio (or its whole response).
    """

    key: PlaybackKey
    sent_bytes: int
    sent_ms: float
    heard_ms: float
    done: bool

    @property
    def unheard_ms(self) -> float:
        """Milliseconds handed to the edge and not (yet) heard."""
        return self.sent_ms - self.heard_ms


@attrs.frozen(kw_only=True)
class Acknowledgement:
    """What an acknowledged token meant.

    Attributes:
        token: The token as received.
        kind: ``"audio"`` or ``"done"`` for a token of the current playback generation;
            ``"cleared"`` for a token outstanding when playback was cleared (never counted as
            played); ``"unknown"`` for anything else (reported, ignored).
        key: The item the token belongs to (``"audio"`` and ``"done"`` only).
        heard_ms: The item's heard milliseconds after this acknowledgement (``"audio"`` and
            ``"done"`` only).
        completed: This acknowledgement made the item fully heard; it left the playback queue.
    """

    token: str
    kind: AckKind
    key: PlaybackKey | None = None
    heard_ms: float | None = None
    completed: bool = False


@attrs.frozen(kw_only=True)
class PlaybackStats:
    """Counters of a :class:`PlaybackTracker`, so that nothing disappears silently.

    Attributes:
        tokens_issued: Tokens handed out (chunk and done tokens).
        tokens_acknowledged: Acknowledgements of current-generation tokens.
        cleared_tokens: Acknowledgements of tokens outstanding at a clear (not counted as played).
        unknown_tokens: Acknowledgements of tokens the tracker did not recognise.
        forgotten_cleared_tokens: Cleared tokens dropped from memory, unacknowledged, to bound it.
        clears: Times playback was cleared (interruptions and resets).
        unheard_ms_cleared: Milliseconds handed to the edge and not heard, summed over clears.
    """

    tokens_issued: int = 0
    tokens_acknowledged: int = 0
    cleared_tokens: int = 0
    unknown_tokens: int = 0
    forgotten_cleared_tokens: int = 0
    clears: int = 0
    unheard_ms_cleared: float = 0.0


def truncation_points(
    items: Iterable[ItemPlayback], margin_ms: float = DEFAULT_HEARD_MARGIN_MS
) -> tuple[Truncation, ...]:
    """Where to cut each interrupted item, in playback order.

    The item being heard (the first one, or any with heard audio) is cut ``margin_ms`` past its
    heard point, because the playback clock lags what the caller actually heard; the cut never
    goes past what was sent. Items queued behind it that never started are cut at 0. Every value
    is a whole millisecond, rounded down, because the model side rejects fractions and must not
    be told about audio it did not send.

    Args:
        items: Item snapshots in the order the items were created.
        margin_ms: The margin added to the heard point.

    Returns:
        One truncation per item, in the same order.
    """
    result: list[Truncation] = []
    for index, item in enumerate(items):
        if index == 0 or item.heard_ms > 0:
            end = min(item.sent_ms, item.heard_ms + margin_ms)
        else:
            end = 0.0
        result.append(
            Truncation(
                item_id=item.key.item_id,
                content_index=item.key.content_index,
                audio_end_ms=max(0, math.floor(end)),
            )
        )
    return tuple(result)


class _Item:
    """Mutable state of one playback item (private; snapshots are :class:`ItemPlayback`)."""

    __slots__ = ("done", "heard_bytes", "key", "removed", "segments", "sent_bytes")

    def __init__(self, key: PlaybackKey) -> None:
        self.key = key
        self.sent_bytes = 0
        self.heard_bytes = 0  # acknowledgement clock only
        # Wall-clock clock only: playout intervals [start_ms, end_ms, nbytes], in time order.
        # Chunks that play back to back share one interval, so there is one per underrun (or per
        # other item played in between), not one per chunk.
        self.segments: list[list[float]] = []
        self.done = False
        self.removed = False


@attrs.frozen
class _Pending:
    item: _Item
    sent_bytes: int
    kind: Literal["audio", "done"]


class PlaybackTracker:
    """Tracks what the caller heard of each playback item, from acknowledgements or the clock.

    Items are kept in creation order while they are playing or queued; an item leaves the queue
    when it is fully heard (its audio is done and everything sent was heard) or when playback is
    cleared.

    Args:
        output_format: The format of the byte counts passed to :meth:`audio_sent`. Count the
            model's audio (before any conversion) so that milliseconds are on the model item's
            own timeline, which is what truncation speaks.
        acknowledgements: The edge acknowledges tokens. If true, acknowledgements are the only
            playback clock; if false, the wall-clock estimate is used and no tokens are issued.
        playout_latency_ms: Wall-clock mode only: how long after being handed over audio starts
            to be audible (network and provider buffering). 0 assumes it is immediate, which
            overestimates what was heard by at most the real latency.
        token_prefix: Prefix of the generated tokens, to tell them from anyone else's.
        max_cleared_tokens: How many cleared tokens to remember while waiting for their
            acknowledgement. An edge that never acknowledges cleared tokens would otherwise
            grow this set without bound; a forgotten token later reads as ``"unknown"``.

    Raises:
        ConfigError: A parameter is invalid; the error names it.
    """

    def __init__(
        self,
        output_format: AudioFormat,
        *,
        acknowledgements: bool,
        playout_latency_ms: float = 0.0,
        token_prefix: str = "vw",
        max_cleared_tokens: int = 4096,
    ) -> None:
        if not isinstance(output_format, AudioFormat):
            raise ConfigError("output_format", f"must be an AudioFormat, got {output_format!r}")
        if not isinstance(acknowledgements, bool):
            raise ConfigError("acknowledgements", f"must be a bool, got {acknowledgements!r}")
        if (
            isinstance(playout_latency_ms, bool)
            or not isinstance(playout_latency_ms, (int, float))
            or not math.isfinite(playout_latency_ms)
            or playout_latency_ms < 0
        ):
            raise ConfigError(
                "playout_latency_ms", f"must be a finite number >= 0, got {playout_latency_ms!r}"
            )
        if not isinstance(token_prefix, str) or not token_prefix:
            raise ConfigError("token_prefix", f"must be a non-empty str, got {token_prefix!r}")
        if (
            isinstance(max_cleared_tokens, bool)
            or not isinstance(max_cleared_tokens, int)
            or max_cleared_tokens < 0
        ):
            raise ConfigError(
                "max_cleared_tokens", f"must be an int >= 0, got {max_cleared_tokens!r}"
            )
        self._format = output_format
        self._bytes_per_ms = output_format.bytes_per_ms
        self._acks = acknowledgements
        self._latency = float(playout_latency_ms)
        self._prefix = token_prefix
        self._max_cleared = max_cleared_tokens

        self._generation = 1
        self._sequence = 0
        self._items: dict[PlaybackKey, _Item] = {}
        self._pending: dict[str, _Pending] = {}
        self._cleared: dict[str, None] = {}  # insertion-ordered set: oldest forgotten first
        self._clock = -math.inf  # latest now_ms seen; heard time never runs backwards
        self._playout_end = -math.inf  # wall-clock mode: when the edge's queue runs dry

        self._issued = 0
        self._acknowledged = 0
        self._cleared_acks = 0
        self._unknown_acks = 0
        self._forgotten = 0
        self._clears = 0
        self._unheard_cleared = 0.0

    # -- properties ------------------------------------------------------------------------

    @property
    def output_format(self) -> AudioFormat:
        """The format of the counted bytes."""
        return self._format

    @property
    def acknowledgements(self) -> bool:
        """Whether acknowledgements are the playback clock (else the wall clock is)."""
        return self._acks

    @property
    def generation(self) -> int:
        """The playback generation; it advances at every :meth:`clear`."""
        return self._generation

    @property
    def has_unacknowledged_tokens(self) -> bool:
        """Tokens of the current generation were issued and are not yet acknowledged."""
        return bool(self._pending)

    @property
    def playing(self) -> bool:
        """Some item is playing or queued (as of the latest ``now_ms`` seen)."""
        return bool(self._live_items(self._clock))

    @property
    def stats(self) -> PlaybackStats:
        """A snapshot of the counters."""
        return PlaybackStats(
            tokens_issued=self._issued,
            tokens_acknowledged=self._acknowledged,
            cleared_tokens=self._cleared_acks,
            unknown_tokens=self._unknown_acks,
            forgotten_cleared_tokens=self._forgotten,
            clears=self._clears,
            unheard_ms_cleared=self._unheard_cleared,
        )

    # -- inputs ----------------------------------------------------------------------------

    def audio_sent(self, key: PlaybackKey, nbytes: int, now_ms: float) -> str | None:
        """Record a chunk of the item's audio as handed to the edge now.

        Call it when the chunk is handed to the edge, and send the returned token right after
        the chunk (``acknowledge_when_played``), so that its acknowledgement means "played up to
        here".

        Args:
            key: The item the audio belongs to; a new key starts a new item at the queue's end.
            nbytes: The chunk's size in ``output_format``. An empty chunk records nothing.
            now_ms: The current time.

        Returns:
            The chunk's token with acknowledgements; ``None`` without them or for an empty chunk.

        Raises:
            ValueError: ``nbytes`` or ``now_ms`` is invalid.
        """
        _check_nbytes(nbytes)
        now = self._advance(now_ms)
        if nbytes == 0:
            return None
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = _Item(key)
        item.sent_bytes += nbytes
        if self._acks:
            return self._issue(item, "audio")
        audible = now + self._latency
        start = max(audible, self._playout_end)
        end = start + nbytes / self._bytes_per_ms
        # Merge only into an interval still queued: one that already played out must keep
        # counting as exactly its bytes.
        if item.segments and item.segments[-1][1] == start and start > audible:
            item.segments[-1][1] = end
            item.segments[-1][2] += nbytes
        else:
            item.segments.append([start, end, nbytes])
        self._playout_end = end
        return None

    def audio_done(self, key: PlaybackKey, now_ms: float) -> str | None:
        """Record that the model finished the item's audio.

        Args:
            key: The item.
            now_ms: The current time.

        Returns:
            With acknowledgements, a done token to send after the item's last chunk: its
            acknowledgement makes the item fully heard. ``None`` if the item is unknown, already
            fully heard (it leaves the queue now), or without acknowledgements.

        Raises:
            ValueError: ``now_ms`` is invalid.
        """
        now = self._advance(now_ms)
        item = self._items.get(key)
        if item is None:
            return None
        item.done = True
        if self._complete(item, now):
            self._remove(item)
            return None
        return self._issue(item, "done") if self._acks else None

    def response_done(self, response_id: str, now_ms: float) -> None:
        """Record that a response ended: every item of it is done (no more audio will come).

        Raises:
            ValueError: ``now_ms`` is invalid.
        """
        now = self._advance(now_ms)
        for item in list(self._items.values()):
            if item.key.response_id == response_id:
                item.done = True
                if self._complete(item, now):
                    self._remove(item)

    def acknowledged(self, token: str) -> Acknowledgement:
        """Apply an acknowledgement from the edge: playback reached ``token``.

        Never raises for a bad token: a token outstanding at a clear is reported as
        ``"cleared"`` and anything unrecognised as ``"unknown"``, each counted in :attr:`stats`.

        Args:
            token: The token as the edge reported it.

        Returns:
            What the token meant and its effect.
        """
        pending = self._pending.pop(token, None) if isinstance(token, str) else None
        if pending is None:
            if isinstance(token, str) and token in self._cleared:
                del self._cleared[token]
                self._cleared_acks += 1
                return Acknowledgement(token=token, kind="cleared")
            self._unknown_acks += 1
            return Acknowledgement(token=str(token), kind="unknown")
        self._acknowledged += 1
        item = pending.item
        item.heard_bytes = max(item.heard_bytes, pending.sent_bytes)
        completed = False
        if not item.removed and self._complete(item, self._clock):
            self._remove(item)
            completed = True
        return Acknowledgement(
            token=token,
            kind=pending.kind,
            key=item.key,
            heard_ms=item.heard_bytes / self._bytes_per_ms,
            completed=completed,
        )

    def clear(self, now_ms: float) -> tuple[ItemPlayback, ...]:
        """Empty the playback queue, as the edge does when told to clear, and start a new generation.

        Tokens still outstanding become *cleared*: their later acknowledgements are reported as
        such and never move a heard time.

        Args:
            now_ms: The current time.

        Returns:
            Snapshots of the items that were playing or queued, as of ``now_ms``, in creation
            order: the input of :func:`truncation_points`.

        Raises:
            ValueError: ``now_ms`` is invalid.
        """
        now = self._advance(now_ms)
        snapshot = tuple(self._snapshot(item, now) for item in self._items.values())
        self._unheard_cleared += sum(item.unheard_ms for item in snapshot)
        for token in self._pending:
            self._cleared[token] = None
        while len(self._cleared) > self._max_cleared:
            del self._cleared[next(iter(self._cleared))]
            self._forgotten += 1
        self._pending.clear()
        for item in self._items.values():
            item.removed = True
        self._items.clear()
        self._generation += 1
        self._playout_end = -math.inf
        self._clears += 1
        return snapshot

    # -- queries ---------------------------------------------------------------------------

    def items(self, now_ms: float | None = None) -> tuple[ItemPlayback, ...]:
        """Snapshots of the items playing or queued, in creation order.

        With acknowledgements ``now_ms`` changes nothing. With the wall clock, an item's heard
        time at ``t`` is the part of its playout intervals before ``t``: audio is assumed to
        play in real time from when it was handed over (plus ``playout_latency_ms``), items and
        chunks back to back, with a pause only when the edge ran out of audio. Items fully heard
        by then are left out.

        Args:
            now_ms: The time to evaluate at; ``None`` for the latest time seen. A time earlier
                than one seen before is read as that one, so heard time never decreases.

        Raises:
            ValueError: ``now_ms`` is invalid.
        """
        now = self._clock if now_ms is None else max(self._clock, _check_now(now_ms))
        return tuple(self._snapshot(item, now) for item in self._live_items(now))

    def item(self, key: PlaybackKey, now_ms: float | None = None) -> ItemPlayback | None:
        """The snapshot of one item, or ``None`` if it is not playing or queued.

        Raises:
            ValueError: ``now_ms`` is invalid.
        """
        for snapshot in self.items(now_ms):
            if snapshot.key == key:
                return snapshot
        return None

    # -- internals -------------------------------------------------------------------------

    def _advance(self, now_ms: float) -> float:
        now = max(self._clock, _check_now(now_ms))
        self._clock = now
        if not self._acks:
            for item in [i for i in self._items.values() if self._complete(i, now)]:
                self._remove(item)
        return now

    def _issue(self, item: _Item, kind: Literal["audio", "done"]) -> str:
        self._sequence += 1
        self._issued += 1
        # Generation and a never-reset sequence: unique for the tracker's whole life.
        token = f"{self._prefix}-g{self._generation}-{self._sequence}"
        self._pending[token] = _Pending(item=item, sent_bytes=item.sent_bytes, kind=kind)
        return token

    def _heard_ms(self, item: _Item, now: float) -> float:
        if self._acks:
            return min(item.heard_bytes, item.sent_bytes) / self._bytes_per_ms
        # Counted in bytes, whole intervals exactly, so that float rounding can neither lift
        # heard above sent nor make it step backwards when an interval completes.
        heard_bytes = 0.0
        for start, end, nbytes in item.segments:
            if now >= end:
                heard_bytes += nbytes
            else:
                if now > start:
                    heard_bytes += min((now - start) * self._bytes_per_ms, nbytes)
                break
        return min(heard_bytes, item.sent_bytes) / self._bytes_per_ms

    def _complete(self, item: _Item, now: float) -> bool:
        if not item.done:
            return False
        if self._acks:
            return item.heard_bytes >= item.sent_bytes
        return not item.segments or now >= item.segments[-1][1]

    def _live_items(self, now: float) -> list[_Item]:
        return [item for item in self._items.values() if not self._complete(item, now)]

    def _remove(self, item: _Item) -> None:
        item.removed = True
        del self._items[item.key]

    def _snapshot(self, item: _Item, now: float) -> ItemPlayback:
        return ItemPlayback(
            key=item.key,
            sent_bytes=item.sent_bytes,
            sent_ms=item.sent_bytes / self._bytes_per_ms,
            heard_ms=self._heard_ms(item, now),
            done=item.done,
        )
