"""``CallBridge`` pacing model audio for an edge whose capabilities set ``max_buffered_ms``.

The in-memory rig of ``conftest.py`` stamps every ``play`` with ``time.monotonic()``. The checks
are bounds that a slow machine cannot break: a late wake-up only makes the bridge hand audio over
later, which keeps it further inside the upper bound, and the lower bound follows from the
bridge's own waiting (nothing is handed over before the estimated playout leaves room for it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from voicewire.audio import MULAW_8K, PCM16_24K
from voicewire.bridge import CallBridge, EdgeCapabilities
from voicewire.errors import ConfigError
from voicewire.events import AudioInterruptedEvent

if TYPE_CHECKING:
    from tests.core.conftest import Rig, RigFactory

    from voicewire.bridge import CallBridgeStats

LIMIT_MS = 100.0
SLACK_MS = 2.0  # a timer may fire a hair early; float rounding
FRAME = 160  # 20 ms of mu-law at 8 kHz


def handed_ahead_ms(r: Rig) -> list[tuple[float, float]]:
    """Per play: (ms of audio handed over so far, ms elapsed since the first play)."""
    first = r.edge.play_times[0]
    total = 0.0
    points = []
    for (kind, data), at in zip(
        [entry for entry in r.edge.log if entry[0] == "play"], r.edge.play_times, strict=True
    ):
        assert isinstance(data, bytes), kind
        total += len(data) / 8.0  # mu-law 8 kHz: 8 bytes a millisecond
        points.append((total, (at - first) * 1000.0))
    return points


@pytest.mark.parametrize("acknowledgements", [True, False], ids=["marks", "wall-clock"])
@pytest.mark.parametrize("nowait", [False, True], ids=["queued", "nowait"])
async def test_a_burst_is_paced_to_real_time_within_the_edge_buffer(
    rig: RigFactory,
    balanced: Callable[[CallBridgeStats], None],
    acknowledgements: bool,
    nowait: bool,
) -> None:
    r = await rig.started(
        max_buffered_ms=LIMIT_MS, acknowledgements=acknowledgements, nowait=nowait
    )
    chunks = [bytes((i * 31 + k) % 256 for k in range(1600)) for i in range(3)]  # 3 x 200 ms
    r.model.respond("r1")
    for chunk in chunks:
        r.model.speak("r1", "i1", chunk)
    r.model.audio_done("r1", "i1")
    r.model.finish("r1")
    await r.until(lambda: len(r.edge.played) == 4800, "the whole answer played")

    assert bytes(r.edge.played) == b"".join(chunks)  # every byte, in order
    sizes = [len(data) for kind, data in r.edge.log if kind == "play" and isinstance(data, bytes)]
    # Pieces of half the buffer, in whole frames: 40 ms.
    assert sizes == [FRAME * 2] * 15, sizes
    for handed, elapsed in handed_ahead_ms(r):
        # Never more than the provider's buffer ahead of real-time playout...
        assert handed - elapsed <= LIMIT_MS + SLACK_MS, (handed, elapsed)
    for (handed, elapsed), size in zip(handed_ahead_ms(r), sizes, strict=True):
        # ...and nothing handed before its time: 600 ms of audio takes 500 ms to hand over.
        assert elapsed >= handed - LIMIT_MS - SLACK_MS, (handed, elapsed, size)
    if acknowledgements:
        # Each chunk's token went out after the last piece of that chunk; the item's done token
        # last: where the bytes played stood at each token.
        played = 0
        at_tokens = []
        for kind, data in r.edge.log:
            if kind == "play" and isinstance(data, bytes):
                played += len(data)
            elif kind == "ack":
                at_tokens.append(played)
        assert at_tokens == [1600, 3200, 4800, 4800]
    balanced(r.stats)


@pytest.mark.parametrize("nowait", [False, True], ids=["queued", "nowait"])
async def test_a_late_acknowledgement_holds_back_what_the_provider_has_not_played(
    rig: RigFactory, balanced: Callable[[CallBridgeStats], None], nowait: bool
) -> None:
    # A provider that started playing late: the first chunk's mark comes back 300 ms after the
    # bridge's own clock says it was played. From then on, nothing may be handed over more
    # than the buffer ahead of what the provider still has queued by that mark.
    r = await rig.started(max_buffered_ms=LIMIT_MS, nowait=nowait)
    marks: list[float] = []
    r.bridge.on("mark", lambda event: marks.append(time.monotonic()))
    r.model.respond("r1")
    for _ in range(4):
        r.model.speak("r1", "i1", bytes(1600))  # 4 x 200 ms
    await r.until(lambda: len(r.edge.outstanding) == 1, "the first chunk's mark")
    await asyncio.sleep(0.3)
    r.edge.ack(1)
    await r.until(lambda: bool(marks), "the mark processed")
    await r.until(lambda: len(r.edge.played) == 6400, "the whole answer played")

    acked = marks[0]
    log = r.edge.log
    after_token = log.index(("ack", r.edge.commands("ack")[0]))
    queued_ms = 0.0  # handed over after the token: what the provider had yet to play
    plays = iter(r.edge.play_times)
    for position, (kind, data) in enumerate(log):
        if kind != "play" or not isinstance(data, bytes):
            continue
        at = next(plays)
        if position < after_token:
            continue
        queued_ms += len(data) / 8.0
        if at > acked:
            assert (at - acked) * 1000.0 >= queued_ms - LIMIT_MS - SLACK_MS, (at - acked, queued_ms)
    balanced(r.stats)


async def test_without_a_buffer_limit_a_burst_is_handed_over_at_once(rig: RigFactory) -> None:
    r = await rig.started()
    r.model.respond("r1")
    for _ in range(3):
        r.model.speak("r1", "i1", bytes(1600))
    await r.until(lambda: len(r.edge.played) == 4800, "the chunks played")
    # One play per model chunk, none split: the provider queues what it is sent.
    assert [len(d) for k, d in r.edge.log if k == "play" and isinstance(d, bytes)] == [1600] * 3


@pytest.mark.parametrize("nowait", [False, True], ids=["queued", "nowait"])
async def test_a_barge_in_drops_what_pacing_held_back(
    rig: RigFactory, balanced: Callable[[CallBridgeStats], None], nowait: bool
) -> None:
    r = await rig.started(max_buffered_ms=LIMIT_MS, nowait=nowait)
    r.model.respond("r1")
    r.model.speak("r1", "i1", bytes(16000))  # 2 s at once
    await r.until(lambda: len(r.edge.commands("play")) >= 2, "the first pieces")
    r.model.speech_started()
    await r.until(lambda: bool(r.edge.commands("clear")), "the clear")
    await r.until(lambda: bool(r.model.truncations), "the truncation")
    await r.until(lambda: r.stats.model_bytes_pending == 0, "nothing left to play")

    played = len(r.edge.played)
    assert played < 16000  # the rest never reached the provider
    log = [kind for kind, _ in r.edge.log]
    assert "play" not in log[log.index("clear") :]
    stats = r.stats
    assert stats.model_bytes_played == played
    assert stats.model_bytes_dropped.get("cleared", 0) == 16000 - played
    assert len(r.log.of(AudioInterruptedEvent)) == 1
    balanced(stats)

    # After the clear the provider's buffer is empty: the next answer starts without waiting.
    r.model.speech_stopped()
    r.model.respond("r2")
    r.model.speak("r2", "i2", bytes(FRAME * 5))
    await r.until(lambda: len(r.edge.played) == played + FRAME * 5, "the next answer")


async def test_transcoded_audio_is_paced_in_the_edge_format(
    rig: RigFactory, balanced: Callable[[CallBridgeStats], None]
) -> None:
    r = await rig.started(max_buffered_ms=LIMIT_MS, model_audio_format=PCM16_24K)
    r.model.respond("r1")
    r.model.speak("r1", "i1", bytes(PCM16_24K.nbytes_for_ms(400)))
    r.model.audio_done("r1", "i1")
    r.model.finish("r1")
    await r.until(lambda: len(r.edge.played) >= MULAW_8K.nbytes_for_ms(400) - FRAME, "played")
    await r.until(lambda: r.stats.model_bytes_pending == 0, "nothing left to play")
    for handed, elapsed in handed_ahead_ms(r):
        assert handed - elapsed <= LIMIT_MS + SLACK_MS, (handed, elapsed)
    balanced(r.stats)


@pytest.mark.parametrize("value", [0, 30, -5, float("inf"), float("nan"), True, "100"])
def test_a_buffer_limit_must_be_a_finite_number_of_at_least_two_frames(value: object) -> None:
    with pytest.raises(ConfigError, match="max_buffered_ms"):
        EdgeCapabilities(
            acknowledgements=True,
            audio_format=MULAW_8K,
            provider="x",
            max_buffered_ms=value,  # type: ignore[arg-type]
        )


def test_the_bridge_checks_a_limit_from_capabilities_of_its_own_making(
    rig: RigFactory,
) -> None:
    # An edge may declare its capabilities with a class of its own, which checks nothing.
    @attrs.frozen
    class Capabilities:
        acknowledgements: bool = True
        audio_format: Any = MULAW_8K
        provider: str = "own"
        max_buffered_ms: object = 5

    made = rig()
    edge: Any = made.edge
    edge._capabilities = Capabilities()
    with pytest.raises(ConfigError, match="max_buffered_ms"):
        CallBridge(edge, made.model)


async def test_a_hang_up_after_playback_waits_for_what_pacing_held_back(
    rig: RigFactory,
) -> None:
    # The tail a paced bridge still holds is not yet played: hanging up must not cut it.
    r = await rig.started(max_buffered_ms=LIMIT_MS, acknowledgements=False)
    r.model.respond("r1")
    r.model.speak("r1", "i1", bytes(3200))  # 400 ms
    r.model.audio_done("r1", "i1")
    r.model.finish("r1")
    assert await r.bridge.close_after_playback(timeout=5.0)
    closed = time.monotonic()
    assert len(r.edge.played) == 3200
    assert r.edge.log[-1][0] == "close"
    # Closed once the last piece had played out by the wall clock (400 ms after the first was
    # handed over), not when it was handed over (100 ms before that).
    assert (closed - r.edge.play_times[0]) * 1000.0 >= 400.0 - SLACK_MS
