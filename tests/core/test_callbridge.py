"""``CallBridge`` with an in-memory edge and an in-memory model (see ``conftest.py``).

Every test runs the bridge for real (its tasks, its timer, its queues) and waits on conditions;
timeouts are hang guards only. The ``rig`` fixture closes every bridge afterwards and fails the
test if any task is left running.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from voicewire.audio import MULAW_8K, PCM16_24K, AudioFormat, mulaw_decode, mulaw_encode
from voicewire.bridge import (
    BridgeableModel,
    CallBridge,
    CallerAudio,
    Dtmf,
    EdgeError,
    RawEdgeMessage,
)
from voicewire.config import SessionConfig
from voicewire.errors import ConfigError, TransportStateError
from voicewire.events import (
    AudioEvent,
    AudioInterruptedEvent,
    CallStartEvent,
    CallStopEvent,
    ConnectionChangeEvent,
    DtmfEvent,
    ErrorEvent,
    FunctionCallEvent,
    MarkEvent,
    RawServerEvent,
    ReconnectedEvent,
    Truncation,
)
from voicewire.transport import ConnectOptions, RealtimeTransportLayer

GUARD = 10.0  # hang guard, seconds

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.core.conftest import EdgeFactory, Rig, RigFactory

    from voicewire.bridge import CallBridgeStats

    Balanced = Callable[[CallBridgeStats], None]


def loud(nbytes: int) -> bytes:
    return b"\x55" * nbytes


def tone(freq: float, ms: int, rate: int) -> np.ndarray[Any, np.dtype[np.int16]]:
    t = np.arange(rate * ms // 1000) / rate
    return (np.sin(2 * math.pi * freq * t) * 12000).astype(np.int16)


def peak_hz(pcm: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


async def speaking(r: Rig, chunks: int, nbytes: int = 800) -> None:
    """The model starts response r1 / item i1 and sends ``chunks`` chunks; wait for the edge."""
    r.model.respond("r1")
    for _ in range(chunks):
        r.model.speak("r1", "i1", loud(nbytes))
    if r.edge.capabilities.acknowledgements:
        await r.until(lambda: len(r.edge.outstanding) == chunks, "the chunks' tokens")
    else:
        await r.until(lambda: len(r.edge.played) == chunks * nbytes, "the chunks played")


# --- audio both ways ---------------------------------------------------------------------------


@pytest.mark.parametrize("nowait", [False, True], ids=["queued", "nowait"])
async def test_pass_through_is_byte_exact_both_ways(
    rig: RigFactory, balanced: Balanced, nowait: bool
) -> None:
    r = rig(nowait=nowait)
    r.start()
    await r.connected()
    config = r.model.options[0].initial_session_config
    assert config is not None
    assert config.input_audio_format == MULAW_8K
    assert config.output_audio_format == MULAW_8K
    assert not r.bridge.transcoding
    r.edge.start_call()

    inbound = [bytes((i * 13 + k) % 256 for k in range(160)) for i in range(12)]
    r.edge.feed(*(CallerAudio(data=c, timestamp_ms=i * 20) for i, c in enumerate(inbound)))
    await r.until(lambda: len(r.model.received) == 160 * 12, "caller audio at the model")
    assert bytes(r.model.received) == b"".join(inbound)

    outbound = [bytes((j * 7 + k) % 256 for k in range(400)) for j in range(5)]
    r.model.respond("r1")
    for c in outbound:
        r.model.speak("r1", "i1", c)
    r.model.audio_done("r1", "i1")
    r.model.finish("r1")
    await r.until(lambda: len(r.edge.log) == 11, "plays and tokens")
    assert bytes(r.edge.played) == b"".join(outbound)
    # Every chunk is followed by its token; the item's done token comes last.
    assert [kind for kind, _ in r.edge.log] == ["play", "ack"] * 5 + ["ack"]
    assert [e.data for e in r.log.of(AudioEvent)] == outbound

    r.edge.ack_all()
    await r.until(lambda: len(r.log.of(MarkEvent)) == 6, "marks")
    assert not any(m.cleared for m in r.log.of(MarkEvent))
    assert r.bridge.protocol.playback.items() == ()
    assert len(r.observer.named("on_playback_acknowledged")) == 6
    assert r.observer.named("on_audio_to_caller") == [(400,)] * 5

    stats = r.stats
    assert stats.caller_bytes == stats.caller_bytes_sent == 1920
    assert stats.padding_bytes == 0
    assert stats.model_audio_bytes == stats.model_bytes_played == stats.edge_bytes_played == 2000
    assert stats.acknowledgements == 6
    balanced(stats)
    if nowait:
        # The optional methods carried every frame and chunk (and its token) on the spot.
        assert (r.model.nowait_taken, r.edge.nowait_taken) == (12, 5)  # type: ignore[attr-defined]
    r.edge.hang_up()
    await r.finished()


async def test_transcoding_round_trip(rig: RigFactory, balanced: Balanced) -> None:
    r = rig(model_audio_format=PCM16_24K)
    r.start()
    await r.connected()
    config = r.model.options[0].initial_session_config
    assert config is not None
    assert config.input_audio_format == PCM16_24K == config.output_audio_format
    assert r.bridge.transcoding
    assert r.bridge.model_audio_format == PCM16_24K
    r.edge.start_call()

    # Caller: 400 ms of a 440 Hz tone in mu-law 8 kHz, 20 ms frames.
    ulaw = mulaw_encode(tone(440, 400, 8000).tobytes())
    frames = [ulaw[i : i + 160] for i in range(0, len(ulaw), 160)]
    r.edge.feed(*(CallerAudio(data=f, timestamp_ms=i * 20) for i, f in enumerate(frames)))
    # The resampler keeps a few milliseconds back until more audio comes; most arrives at once.
    await r.until(lambda: len(r.model.received) >= 400 * 48 - 60 * 48, "caller audio")
    assert len(r.model.received) % 2 == 0
    assert peak_hz(bytes(r.model.received), 24000) == pytest.approx(440, abs=10)

    # Model: 320 ms of an 880 Hz tone in PCM16 24 kHz, 40 ms deltas.
    pcm = tone(880, 320, 24000).tobytes()
    r.model.respond("r1")
    for i in range(0, len(pcm), 1920):
        r.model.speak("r1", "i1", pcm[i : i + 1920])
    r.model.audio_done("r1", "i1")
    r.model.finish("r1")
    # A token per delta, then the done token; the resampler's tail is flushed at the end of
    # the part, before the done token, so the whole answer is at the edge by then.
    await r.until(lambda: len(r.edge.commands("ack")) == 9, "the done token")
    assert len(r.edge.played) == 320 * 8
    assert r.edge.log[-2][0] == "play"
    assert peak_hz(mulaw_decode(bytes(r.edge.played)), 8000) == pytest.approx(880, abs=10)
    # Playback is tracked on the model's timeline: 320 ms sent.
    (item,) = r.bridge.protocol.playback.items()
    assert item.sent_ms == pytest.approx(320)

    stats = r.stats
    assert stats.model_audio_bytes == stats.model_bytes_played == len(pcm)
    assert stats.edge_bytes_played == 320 * 8
    balanced(stats)
    r.edge.hang_up()
    await r.finished()


async def test_malformed_audio_is_dropped_and_counted(rig: RigFactory, balanced: Balanced) -> None:
    r = await rig.started(model_audio_format=PCM16_24K)
    r.model.respond("r1")
    r.model.speak("r1", "i1", b"\x00\x01\x02")  # not whole PCM16 samples
    await r.until(lambda: bool(r.log.errors("model_audio_malformed")), "the error")
    assert r.stats.model_bytes_dropped["malformed"] == 3
    assert r.edge.played == b""
    balanced(r.stats)


async def test_audio_without_item_id_is_not_played(rig: RigFactory, balanced: Balanced) -> None:
    r = await rig.started()
    r.model.respond("r1")
    r.model.speak("r1", None, loud(160))
    r.model.speak("r1", "i1", loud(160))
    await r.until(lambda: len(r.edge.played) == 160, "the tracked chunk")
    assert r.stats.model_bytes_dropped["untracked"] == 160
    assert len(r.log.of(AudioEvent)) == 1
    balanced(r.stats)


# --- barge-in ----------------------------------------------------------------------------------


@pytest.mark.parametrize("server_interrupts", [False, True])
async def test_barge_in_mid_playback_truncates_at_heard_plus_margin(
    rig: RigFactory, balanced: Balanced, server_interrupts: bool
) -> None:
    r = await rig.started(server_interrupts=server_interrupts)
    await speaking(r, 3)  # 3 x 100 ms of mu-law
    r.edge.ack(1)  # the caller heard the first 100 ms
    await r.until(lambda: len(r.log.of(MarkEvent)) == 1, "the first mark")

    r.model.speech_started()
    await r.until(lambda: bool(r.model.truncations), "the truncation")
    assert r.edge.commands("clear") == [None]
    # The server cancels by itself when it interrupts on speech; otherwise the bridge does.
    assert r.model.cancels == (0 if server_interrupts else 1)
    assert r.model.truncations == [("i1", 0, 150)]
    (event,) = r.log.of(AudioInterruptedEvent)
    assert event.response_id == "r1"
    assert event.truncations == (Truncation(item_id="i1", content_index=0, audio_end_ms=150),)
    assert r.observer.named("on_interruption") == [(event,)]
    channels = [name for name, _ in r.log.events]
    assert channels.index("speech_started") < channels.index("audio_interrupted")

    # Late audio of the interrupted response never reaches the caller.
    r.model.speak("r1", "i1", loud(800))
    r.model.finish("r1", "cancelled")
    # The tokens outstanding at the clear come back, as cleared, and move nothing.
    await r.until(lambda: sum(m.cleared for m in r.log.of(MarkEvent)) == 2, "cleared marks")
    assert len(r.edge.played) == 2400
    stats = r.stats
    assert stats.model_bytes_dropped["interrupted"] == 800
    assert stats.interruptions == 1
    assert stats.truncations == 1
    assert stats.protocol.playback.cleared_tokens == 2
    balanced(stats)


async def test_truncation_is_capped_at_what_was_sent(rig: RigFactory) -> None:
    r = await rig.started()
    await speaking(r, 1, nbytes=161)  # 20.125 ms
    r.edge.ack_all()
    await r.until(lambda: len(r.log.of(MarkEvent)) == 1, "the mark")
    r.model.speech_started()
    await r.until(lambda: bool(r.model.truncations), "the truncation")
    assert r.model.truncations == [("i1", 0, 20)]


async def test_barge_in_after_the_model_finished_sending(
    rig: RigFactory, balanced: Balanced
) -> None:
    r = await rig.started()
    r.model.respond("r1")
    r.model.speak("r1", "i1", loud(800))
    r.model.speak("r1", "i1", loud(800))
    r.model.audio_done("r1", "i1")
    r.model.finish("r1")  # the model is done; the caller is still listening
    await r.until(lambda: len(r.edge.outstanding) == 3, "chunk and done tokens")
    r.edge.ack(1)
    await r.until(lambda: len(r.log.of(MarkEvent)) == 1, "the first mark")

    r.model.speech_started()
    await r.until(lambda: bool(r.model.truncations), "the truncation")
    assert r.edge.commands("clear") == [None]
    assert r.model.cancels == 0  # no response is active any more
    assert r.model.truncations == [("i1", 0, 150)]
    assert len(r.log.of(AudioInterruptedEvent)) == 1
    balanced(r.stats)


async def test_no_interruption_when_nothing_plays(rig: RigFactory) -> None:
    r = await rig.started()
    r.model.speech_started()
    r.model.speech_stopped()
    # A whole answer, fully heard: its done token came back.
    r.model.respond("r1")
    r.model.speak("r1", "i1", loud(800))
    r.model.audio_done("r1", "i1")
    r.model.finish("r1")
    await r.until(lambda: len(r.edge.outstanding) == 2, "tokens")
    r.edge.ack_all()
    await r.until(lambda: len(r.log.of(MarkEvent)) == 2, "marks")
    r.model.speech_started()
    await r.bridge.interrupt()  # the explicit one finds nothing either
    r.edge.feed(Dtmf(digit="1"))  # a barrier: everything before it was handled
    await r.until(lambda: bool(r.log.of(DtmfEvent)), "the barrier")

    assert r.edge.commands("clear") == []
    assert r.model.cancels == 0
    assert r.model.truncations == []
    assert r.log.of(AudioInterruptedEvent) == []
    assert r.stats.interruptions == 0
    assert r.observer.named("on_interruption") == []


async def test_barge_in_before_any_audio_only_cancels(rig: RigFactory) -> None:
    r = await rig.started()
    r.model.respond("r1")
    r.model.speech_started()
    await r.until(lambda: r.model.cancels == 1, "the cancel")
    assert r.edge.commands("clear") == []
    assert r.model.truncations == []
    assert r.log.of(AudioInterruptedEvent) == []


async def test_explicit_interrupt_returns_once_carried_out(rig: RigFactory) -> None:
    r = await rig.started()
    await speaking(r, 2)
    await r.bridge.interrupt()
    assert r.edge.commands("clear") == [None]
    assert r.model.cancels == 1
    assert r.model.truncations == [("i1", 0, 50)]  # nothing acknowledged yet: the margin
    await r.bridge.interrupt()  # a second one finds nothing to do
    assert r.model.cancels == 1


async def test_without_automatic_barge_in_the_caller_hears_the_answer_out(
    rig: RigFactory, balanced: Balanced
) -> None:
    r = await rig.started(automatic_barge_in=False)
    assert r.bridge.automatic_barge_in is False
    await speaking(r, 2)
    r.edge.ack(1)
    await r.until(lambda: len(r.log.of(MarkEvent)) == 1, "the first mark")
    r.model.speech_started()  # the caller talks over an announcement that must be heard whole
    r.model.speak("r1", "i1", loud(800))  # and the answer goes on
    await r.until(lambda: len(r.edge.outstanding) == 2, "the third chunk's token")
    assert len(r.edge.played) == 2400
    assert r.edge.commands("clear") == []
    assert (r.model.cancels, r.model.truncations) == (0, [])
    assert r.log.of(AudioInterruptedEvent) == []
    assert r.log.on("speech_started")  # still surfaced
    await r.bridge.interrupt()  # the application can still interrupt
    assert r.edge.commands("clear") == [None]
    assert r.model.truncations == [("i1", 0, 150)]
    balanced(r.stats)


async def test_automatic_barge_in_can_be_turned_back_on_during_a_call(rig: RigFactory) -> None:
    r = await rig.started(automatic_barge_in=False)
    await speaking(r, 2)
    r.model.speech_started()
    r.edge.feed(Dtmf(digit="1"))  # a barrier: the speech event was handled
    await r.until(lambda: bool(r.log.of(DtmfEvent)), "the barrier")
    assert r.edge.commands("clear") == []
    r.bridge.automatic_barge_in = True  # the announcement is over
    r.model.speech_started()
    await r.until(lambda: bool(r.model.truncations), "the truncation")
    assert r.edge.commands("clear") == [None]


@pytest.mark.parametrize("nowait", [False, True], ids=["queued", "nowait"])
async def test_barge_in_abandons_a_play_waiting_for_room(
    rig: RigFactory, balanced: Balanced, nowait: bool
) -> None:
    gate = asyncio.Event()  # the edge's buffer is full until set
    r = await rig.started(play_gate=gate, nowait=nowait)
    r.model.respond("r1")
    for _ in range(3):
        r.model.speak("r1", "i1", loud(800))
    await r.until(lambda: r.edge.plays_waiting == 1, "a play waiting for room")
    r.model.speech_started()
    await r.until(lambda: bool(r.model.truncations), "the truncation")
    # The clear did not wait for the full buffer, and the stale chunk never landed after it.
    assert r.edge.commands("clear") == [None]
    assert r.edge.plays_waiting == 0
    gate.set()
    r.edge.feed(Dtmf(digit="1"))
    await r.until(lambda: bool(r.log.of(DtmfEvent)), "the barrier")
    assert r.edge.played == b""
    assert r.stats.model_bytes_dropped["cleared"] == 2400
    # The downlink took the cancellation back: the next response plays.
    assert r.bridge.status == "connected"
    r.model.respond("r2")
    r.model.speak("r2", "i2", loud(800))
    await r.until(lambda: r.edge.played == loud(800), "the next response played")
    balanced(r.stats)
    if nowait:
        edge: Any = r.edge
        # Refused while the buffer was full; taken at once for the next response.
        assert (edge.nowait_refused, edge.nowait_taken) == (1, 1)


async def test_a_failing_fast_path_falls_back_and_is_reported_once(
    rig: RigFactory, balanced: Balanced, caplog: pytest.LogCaptureFixture
) -> None:
    r = await rig.started(nowait=True)
    edge: Any = r.edge
    model: Any = r.model

    def broken(*args: object) -> bool:
        raise RuntimeError("a bug in the fast path")

    # The bridge looked the methods up when it was made: break them behind its back.
    r.bridge._play_nowait = broken
    r.bridge._send_nowait = broken
    with caplog.at_level(logging.DEBUG, logger="voicewire.bridge"):
        r.edge.feed(*(CallerAudio(data=bytes([i]) * 160) for i in range(3)))
        await r.until(lambda: len(r.model.received) == 480, "the caller audio")
        await speaking(r, 3)
    assert bytes(r.model.received) == b"".join(bytes([i]) * 160 for i in range(3))
    assert r.edge.played == loud(800) * 3
    assert (edge.nowait_taken, model.nowait_taken) == (0, 0)
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert sorted(rec.getMessage().split()[1] for rec in warnings) == [
        "edge.play_nowait",
        "model.send_audio_nowait",
    ]
    assert r.log.errors() == []
    balanced(r.stats)


async def test_model_audio_after_a_barge_in_waits_for_the_clear(
    rig: RigFactory, balanced: Balanced
) -> None:
    gate = asyncio.Event()  # the provider takes the clear only when set
    r = await rig.started(nowait=True, clear_gate=gate)
    edge: Any = r.edge
    await speaking(r, 2)
    r.model.speech_started()
    await r.until(lambda: edge.clears_waiting == 1, "the clear on its way")
    before = list(r.edge.log)
    # The next response's audio arrives while the clear is still going out: handed over at
    # once it would land before the clear, and the clear would drop it.
    r.model.respond("r2")
    r.model.speak("r2", "i2", bytes(range(100, 200)) * 4)
    r.edge.feed(Dtmf(digit="1"))
    await r.until(lambda: bool(r.log.of(DtmfEvent)), "the barrier")
    assert r.edge.log == before  # nothing new reached the edge
    gate.set()
    await r.until(
        lambda: r.edge.played.endswith(bytes(range(100, 200)) * 4), "the new response played"
    )
    kinds = [kind for kind, _ in r.edge.log]
    assert kinds.index("clear") < len(kinds) - 2  # the clear, then the new chunk and its token
    assert kinds[-2:] == ["play", "ack"]
    assert edge.nowait_taken == 2  # the first response's chunks only
    balanced(r.stats)


async def test_wall_clock_playback_without_acknowledgements(
    rig: RigFactory, balanced: Balanced
) -> None:
    r = await rig.started(acknowledgements=False)
    await speaking(r, 3)
    assert r.edge.commands("ack") == []
    r.model.speech_started()
    await r.until(lambda: bool(r.model.truncations), "the truncation")
    assert r.edge.commands("clear") == [None]
    ((item_id, index, end),) = r.model.truncations
    assert (item_id, index) == ("i1", 0)
    assert 0 <= end <= 300
    balanced(r.stats)


# --- input padding -----------------------------------------------------------------------------


async def test_timestamp_gap_is_filled_with_silence(rig: RigFactory, balanced: Balanced) -> None:
    r = await rig.started()
    first, second = loud(160), bytes(range(160))
    r.edge.feed(CallerAudio(data=first, timestamp_ms=0), CallerAudio(data=second, timestamp_ms=100))
    await r.until(lambda: len(r.model.received) == 160 + 640 + 160, "audio and the gap fill")
    assert bytes(r.model.received) == first + b"\xff" * 640 + second
    stats = r.stats
    assert stats.padding_bytes == 640
    assert stats.protocol.padding.gap_fills == 1
    balanced(stats)


async def test_inactivity_during_speech_inserts_silence(
    rig: RigFactory, balanced: Balanced
) -> None:
    r = await rig.started(inactivity_timeout_ms=5)
    r.model.speech_started()
    r.edge.feed(CallerAudio(data=loud(160)))
    # Nothing else arrives while the caller speaks: the bridge's timer fills the silence.
    await r.until(lambda: len(r.model.received) > 160, "the inactivity fill")
    assert bytes(r.model.received[:160]) == loud(160)
    assert set(r.model.received[160:]) == {0xFF}
    r.model.speech_stopped()
    stats = r.stats
    assert stats.protocol.padding.inactivity_fills >= 1
    assert stats.padding_bytes == stats.protocol.padding.inactivity_fill_bytes > 0
    balanced(stats)


# --- call events -------------------------------------------------------------------------------


def test_the_bridge_tells_an_edge_whether_raw_messages_are_wanted(rig: RigFactory) -> None:
    r = rig()
    assert not hasattr(r.edge, "raw_messages_wanted")  # optional: an edge without it works
    r.edge.raw_messages_wanted = None  # type: ignore[attr-defined]
    bridge = CallBridge(r.edge, r.model, plugin_observers=False)
    wanted = r.edge.raw_messages_wanted  # type: ignore[attr-defined]
    assert wanted() is False  # nobody listens on "*"

    def listener(event: object) -> None:
        pass

    bridge.on("*", listener)
    assert wanted() is True
    bridge.off("*", listener)
    assert wanted() is False
    stream = bridge.events("audio")
    assert wanted() is False  # an iterator of other channels does not want them
    stream_all = bridge.events()
    assert wanted() is True  # one of every channel does
    del stream, stream_all


# --- hanging up after a goodbye ---------------------------------------------------------------


async def test_close_after_playback_waits_until_the_goodbye_was_heard(rig: RigFactory) -> None:
    r = await rig.started()
    await speaking(r, 3)
    r.model.audio_done("r1", "i1")
    r.model.finish("r1")
    await r.until(lambda: len(r.edge.outstanding) == 4, "the chunks' and the done tokens")
    closing = asyncio.create_task(r.bridge.close_after_playback(timeout=GUARD))
    r.edge.ack(2)  # the caller heard two of the three chunks
    await r.until(lambda: len(r.log.of(MarkEvent)) == 2, "two marks")
    await asyncio.sleep(0.1)
    assert not closing.done()
    assert r.edge.commands("close") == []
    r.edge.ack_all()
    assert await asyncio.wait_for(closing, GUARD) is True
    assert r.edge.closed
    assert r.model.status == "disconnected"
    await r.finished()


async def test_close_after_playback_can_wait_for_the_next_response(rig: RigFactory) -> None:
    r = await rig.started()
    # Nothing is playing yet: the goodbye is still to be asked for.
    closing = asyncio.create_task(
        r.bridge.close_after_playback(timeout=GUARD, after_next_response=True)
    )
    await asyncio.sleep(0.1)
    assert not closing.done()
    await speaking(r, 2)
    r.model.finish("r1")
    await asyncio.sleep(0.1)
    assert not closing.done()  # the goodbye is not heard yet
    r.edge.ack_all()
    assert await asyncio.wait_for(closing, GUARD) is True
    assert r.edge.closed
    assert len(r.edge.played) == 1600


async def test_an_end_call_tool_hangs_up_after_the_goodbye(rig: RigFactory) -> None:
    """The pattern of the docs: an async ``function_call`` listener that ends the call."""
    r = await rig.started()
    outcome: list[bool] = []

    async def on_function_call(event: FunctionCallEvent) -> None:
        if event.name == "end_call":
            await r.bridge.send_function_call_output(event, "ok", start_response=True)
            outcome.append(await r.bridge.close_after_playback(after_next_response=True))

    r.bridge.on("function_call", on_function_call)
    r.model.respond("r1")
    r.model._emit(FunctionCallEvent(name="end_call", call_id="c1", arguments="{}"))
    r.model.finish("r1")
    await r.until(lambda: bool(r.model.calls), "the function output")
    r.model.respond("r2")  # the goodbye
    r.model.speak("r2", "i2", loud(800))
    r.model.audio_done("r2", "i2")
    r.model.finish("r2")
    await r.until(lambda: len(r.edge.outstanding) == 2, "the goodbye's tokens")
    assert r.edge.commands("close") == []
    r.edge.ack_all()
    await r.finished()
    assert outcome == [True]
    assert r.edge.closed
    assert len(r.edge.played) == 800


async def test_close_after_playback_with_nothing_playing_closes_at_once(rig: RigFactory) -> None:
    r = await rig.started()
    assert await asyncio.wait_for(r.bridge.close_after_playback(timeout=GUARD), GUARD) is True
    assert r.edge.closed
    await r.finished()


async def test_close_after_playback_closes_when_the_time_runs_out(rig: RigFactory) -> None:
    r = await rig.started()
    await speaking(r, 2)  # the edge never acknowledges: a provider that lost the marks
    r.model.finish("r1")
    assert await asyncio.wait_for(r.bridge.close_after_playback(timeout=0.2), GUARD) is False
    assert r.edge.closed
    await r.finished()


async def test_close_after_playback_follows_the_wall_clock_without_acknowledgements(
    rig: RigFactory,
) -> None:
    r = await rig.started(acknowledgements=False)
    before = time.monotonic()
    await speaking(r, 2)  # 200 ms of audio, played in real time from when it was handed over
    r.model.finish("r1")
    assert await asyncio.wait_for(r.bridge.close_after_playback(timeout=GUARD), GUARD) is True
    # Handed over after `before`, so its playout cannot have ended before `before` + 200 ms.
    assert time.monotonic() - before >= 0.199
    assert r.edge.closed


@pytest.mark.parametrize("timeout", [0, -1.0, float("inf"), float("nan"), True, "5"])
async def test_close_after_playback_refuses_a_bad_timeout(rig: RigFactory, timeout: object) -> None:
    r = await rig.started()
    with pytest.raises(ConfigError, match="timeout"):
        await r.bridge.close_after_playback(timeout=timeout)  # type: ignore[arg-type]
    assert not r.edge.closed


async def test_call_start_dtmf_and_raw_messages_are_surfaced(rig: RigFactory) -> None:
    r = rig()
    r.start()
    r.edge.start_call(language="fr", account="42")
    r.edge.feed(Dtmf(digit="5"), RawEdgeMessage(event={"event": "custom", "n": 1}))
    await r.until(lambda: bool(r.log.of(DtmfEvent)), "dtmf")
    (start,) = r.log.of(CallStartEvent)
    assert start == CallStartEvent(
        call_id="CA1",
        stream_id="MZ1",
        audio_format=MULAW_8K,
        custom_parameters={"language": "fr", "account": "42"},
    )
    assert r.bridge.call_id == "CA1"
    assert r.log.of(DtmfEvent) == [DtmfEvent(digit="5")]
    await r.connected()
    r.model.raw({"type": "rate_limits.updated"})
    await r.until(lambda: len(r.log.on("*")) == 2, "raw messages")
    assert r.log.on("*") == [
        {"event": "custom", "n": 1},
        RawServerEvent(source="fake_model", message={"type": "rate_limits.updated"}),
    ]


async def test_edge_error_is_reported_and_the_call_goes_on(
    rig: RigFactory, balanced: Balanced
) -> None:
    r = await rig.started()
    r.edge.feed(EdgeError(message="unparseable frame", code="bad_frame"))
    r.edge.feed(CallerAudio(data=loud(160)))
    await r.until(lambda: len(r.model.received) == 160, "audio after the error")
    (error,) = r.log.errors("bad_frame")
    assert (error.source, error.message) == ("telephony", "unparseable frame")
    assert not r.edge.closed
    assert r.bridge.status == "connected"
    balanced(r.stats)


async def test_model_errors_are_forwarded(rig: RigFactory) -> None:
    r = await rig.started()
    r.model.error("boom")
    await r.until(lambda: bool(r.log.errors("fake_error")), "the model's error")
    assert r.log.errors("fake_error")[0].message == "boom"


# --- close rules -------------------------------------------------------------------------------


async def test_caller_hang_up_closes_the_model(rig: RigFactory, balanced: Balanced) -> None:
    r = await rig.started()
    r.edge.feed(CallerAudio(data=loud(160)))
    r.edge.hang_up()
    await r.finished()
    assert r.model.status == "disconnected"
    assert r.model.closes == 1
    assert r.edge.closed
    assert r.bridge.status == "disconnected"
    assert r.log.of(CallStopEvent) == [CallStopEvent(call_id="CA1", reason="caller hung up")]
    assert r.observer.named("on_close") == [("caller hung up",)]
    statuses = [e.status for e in r.log.of(ConnectionChangeEvent)]
    assert statuses == ["connecting", "connected", "disconnecting", "disconnected"]
    balanced(r.stats)


async def test_end_of_the_media_stream_closes_the_model(rig: RigFactory) -> None:
    r = await rig.started()
    r.edge.end_stream()
    await r.finished()
    assert r.model.status == "disconnected"
    assert r.log.of(CallStopEvent) == [CallStopEvent(call_id="CA1", reason="media stream ended")]


async def test_model_drop_ends_the_call_cleanly(rig: RigFactory, balanced: Balanced) -> None:
    r = await rig.started()
    await speaking(r, 2)
    r.model.drop()
    await r.finished()
    assert r.edge.closed
    assert r.edge.close_reason == "model disconnected"
    (error,) = r.log.errors("model_disconnected")
    assert error.source == "transport"
    assert r.log.of(CallStopEvent) == [CallStopEvent(call_id="CA1", reason="model disconnected")]
    assert r.bridge.status == "disconnected"
    balanced(r.stats)


async def test_a_reconnecting_model_keeps_the_call(rig: RigFactory) -> None:
    r = await rig.started()
    r.model.respond("r1")  # lost with the connection: it will never report done
    r.model.reconnect()
    await r.until(lambda: bool(r.log.of(ReconnectedEvent)), "reconnected")
    assert not r.edge.closed
    assert r.bridge.status == "connected"
    statuses = [e.status for e in r.log.of(ConnectionChangeEvent)]
    assert statuses == ["connecting", "connected", "connecting", "connected"]
    r.model.speech_started()  # nothing plays, and the lost response is not cancelled
    r.edge.feed(CallerAudio(data=loud(160)))
    await r.until(lambda: len(r.model.received) == 160, "audio after the reconnect")
    assert r.model.cancels == 0
    r.edge.hang_up()
    await r.finished()


async def test_connect_failure_ends_the_call(rig: RigFactory) -> None:
    r = rig(connect_error=RuntimeError("refused"))
    r.start()
    await r.finished()
    (error,) = r.log.errors("model_connect_failed")
    assert "refused" in error.message
    assert r.edge.closed
    assert r.edge.close_reason == "model connection failed"
    assert r.bridge.status == "disconnected"


async def test_close_is_idempotent_and_ends_run(rig: RigFactory) -> None:
    r = await rig.started()
    await asyncio.gather(r.bridge.close(), r.bridge.close())
    await r.finished()
    await r.bridge.close()
    assert r.edge.closed
    assert r.model.status == "disconnected"
    assert r.log.of(CallStopEvent) == [
        CallStopEvent(call_id="CA1", reason="closed by the application")
    ]
    with pytest.raises(TransportStateError):
        await r.bridge.run()
    with pytest.raises(TransportStateError):
        await r.bridge.connect(ConnectOptions())
    with pytest.raises(TransportStateError):
        await r.bridge.send_audio(loud(160))


async def test_close_from_an_async_listener(rig: RigFactory) -> None:
    r = await rig.started()
    closed = asyncio.Event()

    async def hang_up_on_star(event: DtmfEvent) -> None:
        if event.digit == "*":
            await r.bridge.close()
            closed.set()

    r.bridge.on("dtmf", hang_up_on_star)
    r.edge.feed(Dtmf(digit="*"))
    await r.finished()
    await asyncio.wait_for(closed.wait(), 10)
    assert r.edge.closed
    assert r.model.status == "disconnected"


async def test_events_iterator_ends_with_the_call(rig: RigFactory) -> None:
    r = rig()
    seen: list[str] = []

    async def consume() -> None:
        async with r.bridge.events("call_start", "call_stop") as stream:
            async for event in stream:
                seen.append(event.type)

    consumer = asyncio.get_running_loop().create_task(consume())
    await asyncio.sleep(0)
    r.start()
    r.edge.start_call()
    r.edge.hang_up()
    await r.finished()
    await asyncio.wait_for(consumer, 10)
    assert seen == ["call_start", "call_stop"]


# --- connecting --------------------------------------------------------------------------------


async def test_connect_before_the_call_forces_the_formats(
    rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    r = rig()
    config = SessionConfig(instructions="be brief", input_audio_format="audio/pcm")
    with caplog.at_level(logging.WARNING, logger="voicewire.bridge"):
        await r.bridge.connect(ConnectOptions(model="m", initial_session_config=config))
    assert "input_audio_format" in caplog.text
    (options,) = r.model.options
    assert options.model == "m"
    sent = options.initial_session_config
    assert sent is not None
    assert (sent.instructions, sent.input_audio_format, sent.output_audio_format) == (
        "be brief",
        MULAW_8K,
        MULAW_8K,
    )
    assert r.bridge.status == "connected"
    r.start()  # the model is already connected: run() does not connect again
    r.edge.start_call()
    r.edge.hang_up()
    await r.finished()
    assert len(r.model.options) == 1


async def test_update_session_config_forces_the_formats(rig: RigFactory) -> None:
    r = await rig.started(model_audio_format=PCM16_24K)
    await r.bridge.update_session_config(SessionConfig(voice="marin", output_audio_format="pcm16"))
    (config,) = r.model.configs
    assert config.voice == "marin"
    assert config.input_audio_format == PCM16_24K == config.output_audio_format


async def test_caller_audio_before_the_model_is_connected(
    rig: RigFactory, balanced: Balanced
) -> None:
    gate = asyncio.Event()
    r = rig(connect_gate=gate)
    r.start()
    r.edge.start_call()
    audio = [bytes((i + k) % 256 for k in range(160)) for i in range(5)]
    r.edge.feed(*(CallerAudio(data=a) for a in audio))
    # The model transport holds it while connecting (its own bounded buffer).
    await r.until(lambda: len(r.model.held) == 5, "audio held by the model")
    gate.set()
    await r.connected()
    await r.until(lambda: len(r.model.received) == 800, "held audio delivered")
    assert bytes(r.model.received) == b"".join(audio)
    balanced(r.stats)


@pytest.mark.parametrize("nowait", [False, True], ids=["queued", "nowait"])
async def test_slow_model_overflow_drops_the_oldest_audio(
    rig: RigFactory, balanced: Balanced, nowait: bool
) -> None:
    gate = asyncio.Event()  # the model takes no audio until set
    r = await rig.started(send_gate=gate, max_pending_caller_audio_bytes=480, nowait=nowait)
    r.edge.feed(CallerAudio(data=bytes([0]) * 160))
    await r.until(lambda: r.model.sends_waiting == 1, "the first chunk on its way")
    r.edge.feed(*(CallerAudio(data=bytes([i]) * 160) for i in range(1, 10)))
    r.edge.feed(Dtmf(digit="#"))  # a barrier: every chunk before it was queued
    await r.until(lambda: bool(r.log.of(DtmfEvent)), "the barrier")
    (error,) = r.log.errors("caller_audio_overflow")
    assert error.source == "overflow"
    gate.set()
    await r.until(lambda: r.stats.caller_bytes_pending == 0 and r.model.status == "connected")
    await r.until(lambda: len(r.model.received) == r.stats.caller_bytes_sent, "delivery")
    stats = r.stats
    # The first chunk was already on its way; of the rest only the newest three fit.
    assert bytes(r.model.received) == b"".join(bytes([i]) * 160 for i in (0, 7, 8, 9))
    assert stats.caller_bytes_dropped["overflow"] == 6 * 160
    balanced(stats)
    if nowait:
        # Asked once, while nothing was queued; refused, the chunk took the queue like the rest.
        assert r.model.nowait_refused == 1  # type: ignore[attr-defined]


# --- delegation --------------------------------------------------------------------------------


async def test_calls_reach_the_model(rig: RigFactory, balanced: Balanced) -> None:
    r = await rig.started()
    call = FunctionCallEvent(name="f", call_id="c1", arguments="{}")
    await r.bridge.send_event({"type": "response.create"})
    await r.bridge.send_message("hello")
    await r.bridge.send_function_call_output(call, "42")
    await r.bridge.reset_history([], [])
    await r.bridge.send_audio(loud(320), commit=True)
    await r.until(lambda: r.model.commits == 1, "the injected audio")
    assert r.model.calls == [
        ("send_event", {"type": "response.create"}),
        ("send_message", "hello"),
        ("send_function_call_output", ("c1", "42")),
        ("reset_history", (0, 0)),
    ]
    assert bytes(r.model.received) == loud(320)
    assert r.stats.injected_bytes == 320
    balanced(r.stats)


# --- construction ------------------------------------------------------------------------------


async def test_the_bridge_is_a_transport_and_takes_barge_in_over(rig: RigFactory) -> None:
    r = rig()
    assert isinstance(r.bridge, RealtimeTransportLayer)
    assert isinstance(r.model, BridgeableModel)
    assert r.bridge.transport_id == "bridge"
    assert r.model.automatic_barge_in is False


async def test_invalid_construction(rig: RigFactory) -> None:
    r = rig()
    with pytest.raises(TypeError, match="cancel_response"):
        CallBridge(r.edge, object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_pending_caller_audio_bytes"):
        CallBridge(r.edge, r.model, max_pending_caller_audio_bytes=0)
    with pytest.raises(ConfigError, match="call_start_timeout"):
        CallBridge(r.edge, r.model, call_start_timeout=0)
    with pytest.raises(ConfigError, match="connect_on_call_start"):
        CallBridge(r.edge, r.model, connect_on_call_start=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="model_audio_format"):
        CallBridge(r.edge, r.model, model_audio_format="audio/pcm")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="heard_margin_ms"):
        CallBridge(r.edge, r.model, heard_margin_ms=-1)
    with pytest.raises(ConfigError, match="automatic_barge_in"):
        CallBridge(r.edge, r.model, automatic_barge_in=1)  # type: ignore[arg-type]


async def test_an_edge_in_big_endian_pcm_needs_a_model_format(
    rig: RigFactory, make_edge: EdgeFactory
) -> None:
    r = rig()
    edge = make_edge(audio_format=AudioFormat(encoding="pcm16be", sample_rate=16000))
    with pytest.raises(ConfigError, match="pcm16be") as info:
        CallBridge(edge, r.model, plugin_observers=False)
    assert info.value.field == "model_audio_format"
    bridge = CallBridge(edge, r.model, model_audio_format=PCM16_24K, plugin_observers=False)
    assert bridge.model_audio_format == PCM16_24K


async def test_a_call_that_never_starts_is_ended(rig: RigFactory) -> None:
    # A media connection that never says which call it carries must not hold a model session.
    r = rig(call_start_timeout=0.05)
    r.start()
    await r.connected()
    await r.finished()
    (error,) = [e for e in r.log.of(ErrorEvent) if e.code == "call_start_timeout"]
    assert error.source == "telephony"
    assert r.model.status == "disconnected"
    assert r.edge.closed


@pytest.mark.parametrize("nowait", [False, True], ids=["queued", "nowait"])
async def test_connect_on_call_start_opens_no_session_before_the_call_starts(
    rig: RigFactory, nowait: bool
) -> None:
    r = rig(connect_on_call_start=True, nowait=nowait)
    r.start()
    await asyncio.sleep(0.05)
    assert r.model.options == []  # nothing connected yet
    assert r.bridge.status == "connecting"
    frames = [bytes([0x10 + i]) * 160 for i in range(5)]
    # 'start' and the first audio in one batch, as a provider sends them.
    r.edge.start_call()
    r.edge.feed(*(CallerAudio(data=f, timestamp_ms=i * 20) for i, f in enumerate(frames)))
    await r.connected()
    await r.until(lambda: len(r.model.received) == 800, "the first audio")
    assert bytes(r.model.received) == b"".join(frames)  # held while connecting, none lost
    assert len(r.model.options) == 1
    r.edge.hang_up()
    await r.finished()


@pytest.mark.parametrize(
    ("checks_call_start", "option", "deferred"),
    [
        (True, None, True),  # the edge checks starts: the default follows it
        (False, None, False),
        (True, False, False),  # the application's choice wins
        (False, True, True),
    ],
)
async def test_connect_on_call_start_follows_the_edge_unless_set(
    rig: RigFactory, checks_call_start: bool, option: bool | None, deferred: bool
) -> None:
    r = rig(checks_call_start=checks_call_start, connect_on_call_start=option)
    r.start()
    if deferred:
        await asyncio.sleep(0.05)
        assert r.model.options == []
        r.edge.start_call()
    await r.connected()
    r.edge.hang_up()
    await r.finished()


async def test_connect_on_call_start_never_connects_for_a_call_that_never_starts(
    rig: RigFactory,
) -> None:
    r = rig(call_start_timeout=0.05, connect_on_call_start=True)
    r.start()
    await r.finished()
    assert [e.code for e in r.log.of(ErrorEvent)] == ["call_start_timeout"]
    assert r.model.options == []  # no model session was ever opened
    assert r.edge.closed


async def test_a_started_call_outlives_the_start_timeout(rig: RigFactory) -> None:
    r = await rig.started(call_start_timeout=0.05)
    await asyncio.sleep(0.1)  # past the deadline: the call must still be up
    assert r.bridge.status == "connected"
    assert not [e for e in r.log.of(ErrorEvent) if e.code == "call_start_timeout"]
    r.edge.hang_up()
    await r.finished()
