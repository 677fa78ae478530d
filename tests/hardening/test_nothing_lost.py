"""Nothing lost, end to end: every audio byte either way is delivered in order, or counted.

Property-based, over loopback: an in-memory edge, the real ``CallBridge``, the real
``OpenAIRealtimeWebSocket`` and ``FakeRealtimeServer`` (echo mode, paced, so that answers are
still streaming when the caller barges in). Hypothesis chooses how the caller talks (chunk
sizes, pauses, gaps and jumps in the media timestamps, missing timestamps) and when the provider
acknowledges playback. Then:

* **caller -> model**: what the server received is exactly the caller's chunks, in order, each
  preceded by the silence the bridge inserted (counted as ``padding_bytes``); nothing else;
* **model -> caller**: what the edge played is the server's audio deltas, whole and in order,
  with only those missing that ``CallBridgeStats.model_bytes_dropped`` counts (late audio of
  interrupted answers, audio pending at the end);
* both directions balance in ``CallBridgeStats``.
"""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from voicewire.audio.formats import MULAW_8K
from voicewire.bridge import CallBridge, CallerAudio
from voicewire.testing import FakeRealtimeServer, speech_like
from voicewire.transport import ConnectOptions
from voicewire_openai_ws import OpenAIRealtimeWebSocket

if TYPE_CHECKING:
    from tests.hardening.conftest import Kit, MemoryEdge

SILENCE = 0xFF  # mu-law silence: the byte the bridge pads with

talk = st.tuples(
    st.just("say"),
    st.integers(5, 25),  # 20 ms frames of speech
    st.sampled_from(["next", "next", "gap", "none", "back"]),
)
quiet = st.tuples(st.just("quiet"), st.integers(10, 40), st.just("next"))
ack = st.tuples(st.just("ack"), st.integers(0, 8), st.just(""))
pause = st.tuples(st.just("pause"), st.integers(1, 5), st.just(""))
plan = st.lists(st.one_of(talk, talk, quiet, ack, pause), min_size=5, max_size=16)


def _walk_caller(appended: bytes, chunks: list[bytes]) -> int:
    """``appended`` must be: (silence* chunk) for every chunk, then silence*. Return padding."""
    position = padding = 0
    for chunk in chunks:
        start = position
        while position < len(appended) and appended[position] == SILENCE:
            position += 1
        padding += position - start
        assert appended[position : position + len(chunk)] == chunk, "caller audio out of order"
        position += len(chunk)
    rest = appended[position:]
    assert rest == bytes([SILENCE]) * len(rest), "the model received audio nobody sent"
    return padding + len(rest)


def _walk_model(deltas: list[bytes], played: bytes) -> int:
    """``played`` must be some of ``deltas``, whole and in order. Return the bytes missing."""
    position = missing = 0
    for delta in deltas:
        if played.startswith(delta, position):
            position += len(delta)
        else:
            missing += len(delta)
    assert position == len(played), "the caller heard audio the model never sent"
    return missing


async def _call(kit: type[Kit], steps: list[tuple[str, int, str]]) -> None:
    async with FakeRealtimeServer(pace=3.0, api_key=kit.API_KEY) as server:
        waker = kit.Waker()
        edge: MemoryEdge = kit.MemoryEdge(waker, auto_ack=False)
        model = OpenAIRealtimeWebSocket(url=server.url, api_key=kit.API_KEY, plugin_observers=False)
        bridge = CallBridge(edge, model, plugin_observers=False, inactivity_timeout_ms=None)
        # What the model transport received, in order (the server may have sent a last delta
        # that was still on the wire when the call ended: it never reached the bridge).
        received: list[bytes] = []
        model.on("audio", lambda event: received.append(event.data))
        turns_done: list[object] = []
        bridge.on("turn_done", turns_done.append)
        task = asyncio.get_running_loop().create_task(bridge.run(ConnectOptions()))
        edge.start_call()
        await waker.until(lambda: bridge.status == "connected", "connected")

        chunks: list[bytes] = []
        clock = 0  # the media clock, in ms
        serial = 0
        for kind, amount, how in steps:
            if kind in ("say", "quiet"):
                serial += 1
                if kind == "say":
                    audio = bytearray(speech_like(20 * amount, MULAW_8K, seed=serial))
                else:
                    audio = bytearray(MULAW_8K.silence(20 * amount))
                audio[0] = 0x7E  # a chunk never starts with the padding byte
                timestamp: int | None = clock
                if how == "gap":
                    timestamp = clock + 60  # a hole the bridge fills
                elif how == "none":
                    timestamp = None
                elif how == "back":
                    timestamp = max(0, clock - 100)  # a new timeline: no fill
                chunks.append(bytes(audio))
                edge.feed(CallerAudio(data=bytes(audio), timestamp_ms=timestamp))
                clock = (timestamp if timestamp is not None else clock) + 20 * amount
            elif kind == "ack":
                edge.ack(amount)
            else:
                await asyncio.sleep(0.02 * amount)

        # End every turn, wait until the model got all of it, let playback finish, hang up.
        tail = bytearray(MULAW_8K.silence(600))
        tail[0] = 0x7E
        chunks.append(bytes(tail))
        edge.feed(CallerAudio(data=bytes(tail), timestamp_ms=None))

        def all_sent() -> bool:
            stats = bridge.stats
            return stats.caller_bytes_pending == 0 and stats.caller_bytes_sent == (
                stats.caller_bytes + stats.padding_bytes
            )

        await waker.until(all_sent, "the caller's audio at the model")
        await server.wait_for(
            lambda: len(kit.appended_of(server.session(0))) == bridge.stats.caller_bytes_sent
        )

        def server_idle() -> bool:
            # Every turn the server's VAD closed got its answer, and every answer ended.
            types = server.session(0).server_types()
            return (
                types.count("input_audio_buffer.speech_started")
                == types.count("input_audio_buffer.speech_stopped")
                and types.count("response.created") >= types.count("input_audio_buffer.committed")
                and types.count("response.created") == types.count("response.done")
            )

        await server.wait_for(server_idle, timeout=kit.GUARD)
        answers = server.session(0).server_types().count("response.done")
        await waker.until(lambda: len(turns_done) >= answers, "every answer at the bridge")
        edge.ack()
        edge.hang_up()
        await asyncio.wait_for(task, kit.GUARD)

        stats = bridge.stats
        kit.assert_balanced(stats)
        record = server.session(0)
        appended = kit.appended_of(record)
        assert sum(stats.caller_bytes_dropped.values()) == 0
        assert _walk_caller(appended, chunks) == stats.padding_bytes
        sent = b"".join(
            base64.b64decode(e["delta"])
            for e in record.server_events_of("response.output_audio.delta")
        )
        assert sent.startswith(b"".join(received))
        missing = _walk_model(received, bytes(edge.played))
        assert missing == sum(stats.model_bytes_dropped.values())
        assert stats.model_audio_bytes == sum(map(len, received))


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# A barge-in while the answer streams: late audio is dropped and counted ("interrupted").
@example(
    steps=[
        ("say", 25, "next"),
        ("quiet", 25, "next"),
        ("pause", 5, ""),
        ("ack", 2, ""),
        ("say", 25, "next"),
        ("quiet", 25, "gap"),
    ]
)
@given(steps=plan)
def test_every_byte_is_delivered_in_order_or_counted(
    kit: type[Kit], steps: list[tuple[str, int, str]]
) -> None:
    run: Any = _call(kit, steps)
    asyncio.run(run)
