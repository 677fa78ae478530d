"""``CallBridge`` joining the in-memory edge to the REAL ``OpenAIRealtimeWebSocket``.

The model side runs over loopback sockets against ``FakeRealtimeServer``, which validates every
client event and records what it received and whether it accepted each truncation. Waits are on
conditions; timeouts are hang guards only.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from voicewire.audio import MULAW_8K, PCM16_24K
from voicewire.bridge import BridgeableModel, CallBridge, CallerAudio
from voicewire.events import (
    AudioInterruptedEvent,
    ErrorEvent,
    MarkEvent,
    SpeechStartedEvent,
    TurnDoneEvent,
)
from voicewire.testing import CloseMidResponse, FakeRealtimeServer, Script, speech_like
from voicewire.transport import ConnectOptions

if TYPE_CHECKING:
    from tests.core.conftest import EdgeFactory, FakeEdge

from voicewire_openai_ws import OpenAIRealtimeWebSocket

GUARD = 10.0


class CountingModel(OpenAIRealtimeWebSocket):
    """The real transport, counting the caller frames it sent without a task switch."""

    sent_at_once = 0

    def send_audio_nowait(self, audio: bytes) -> bool:
        sent = super().send_audio_nowait(audio)
        self.sent_at_once += sent
        return sent


def openai_model(url: str) -> BridgeableModel:
    options: dict[str, Any] = {
        "url": url,
        "api_key": "sk-test",
        "automatic_barge_in": False,
        "plugin_observers": False,
    }
    return CountingModel(**options)


class Call:
    """One bridged call: edge, real model, bridge, every event the bridge emitted."""

    def __init__(self, edge: FakeEdge, bridge: CallBridge) -> None:
        self.edge = edge
        self.bridge = bridge
        self.events: list[object] = []
        self.pulse = edge.pulse  # the edge wakes it too
        self.task: asyncio.Task[None] | None = None
        for channel in (
            "audio_interrupted",
            "turn_done",
            "speech_started",
            "error",
            "mark",
            "connection_change",
        ):
            bridge.on(channel, self._keep)

    def _keep(self, event: object) -> None:
        self.events.append(event)
        self.pulse()

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        await self.pulse.until(predicate, what)

    def say(self, audio: bytes, start_ms: int = 0) -> int:
        """Feed caller audio in 20 ms frames with media timestamps; return the end timestamp."""
        per_ms = int(self.edge.capabilities.audio_format.bytes_per_ms)
        frame = per_ms * 20
        for offset in range(0, len(audio), frame):
            data = audio[offset : offset + frame]
            self.edge.feed(CallerAudio(data=data, timestamp_ms=start_ms + offset // per_ms))
        return start_ms + len(audio) // per_ms


@pytest.fixture
async def bridged(no_task_leaks: None, make_edge: EdgeFactory) -> AsyncIterator[Callable[..., Any]]:
    """Start a fake server, a real model and a bridge running a call; close all afterwards."""
    made: list[tuple[Call, FakeRealtimeServer]] = []

    async def start(
        *, model_audio_format: Any = None, **server_options: Any
    ) -> tuple[Call, FakeRealtimeServer]:
        server_options.setdefault("pace", 0)
        server = FakeRealtimeServer(api_key="sk-test", **server_options)
        await server.start()
        edge = make_edge()
        bridge = CallBridge(
            edge,
            openai_model(server.url),
            model_audio_format=model_audio_format,
            plugin_observers=False,
        )
        call = Call(edge, bridge)
        made.append((call, server))
        call.task = asyncio.get_running_loop().create_task(bridge.run(ConnectOptions()))
        edge.start_call()
        await call.until(lambda: bridge.status == "connected", "the model to connect")
        return call, server

    yield start
    for call, server in made:
        await call.bridge.close()
        if call.task is not None:
            await asyncio.wait_for(call.task, GUARD)
        await server.close()


def appended(client_events: tuple[Mapping[str, Any], ...]) -> bytes:
    return b"".join(
        base64.b64decode(e["audio"])
        for e in client_events
        if e.get("type") == "input_audio_buffer.append"
    )


def deltas(server_events: tuple[Mapping[str, Any], ...]) -> bytes:
    return b"".join(
        base64.b64decode(e["delta"])
        for e in server_events
        if e.get("type") == "response.output_audio.delta"
    )


SILENCE_MS = 1000


def formats(server: FakeRealtimeServer) -> tuple[object, object] | None:
    """The session's input and output formats, as the server applied them."""
    session = server.session(0).session
    if session is None:
        return None
    return session["audio"]["input"]["format"], session["audio"]["output"]["format"]


async def test_echo_call_is_byte_exact_both_ways(bridged: Callable[..., Any]) -> None:
    call, server = await bridged()
    pcmu = {"type": "audio/pcmu"}
    await server.wait_for(lambda: formats(server) == (pcmu, pcmu))

    utterance = speech_like(600, MULAW_8K, seed=1) + b"\xff" * (SILENCE_MS * 8)
    call.say(utterance)
    await call.until(lambda: bool(call.of(TurnDoneEvent)), "the echo answer")
    await server.wait_for(lambda: len(appended(server.session(0).client_events)) == len(utterance))
    record = server.session(0)
    # Caller -> model: every byte, untouched.
    assert appended(record.client_events) == utterance
    # Model -> caller: every byte of every delta, untouched, in order.
    answer = deltas(record.server_events)
    assert answer
    chunks = len(record.server_events_of("response.output_audio.delta"))
    # A token after every chunk, then the item's done token.
    await call.until(lambda: len(call.edge.outstanding) == chunks + 1, "every token")
    assert bytes(call.edge.played) == answer
    call.edge.ack_all()
    await call.until(lambda: call.bridge.protocol.playback.items() == (), "playback done")
    assert call.bridge.stats.model_unaccounted_bytes == 0
    assert record.errors() == []
    # The bridge found the transport's optional fast path and used it.
    model = call.bridge.model
    assert isinstance(model, CountingModel)
    assert model.sent_at_once > 0


async def test_transcoding_call(bridged: Callable[..., Any]) -> None:
    call, server = await bridged(model_audio_format=PCM16_24K)
    pcm = {"type": "audio/pcm", "rate": 24000}

    # The fake's default is PCM too: what the bridge asked for is in its session.update.
    def updates() -> list[Mapping[str, Any]]:
        events = server.session(0).client_events_of("session.update")
        return [e for e in events if "audio" in e["session"]]

    await server.wait_for(lambda: bool(updates()))
    (update,) = updates()
    assert update["session"]["audio"]["input"]["format"] == pcm
    assert update["session"]["audio"]["output"]["format"] == pcm

    call.say(speech_like(600, MULAW_8K, seed=2) + b"\xff" * (SILENCE_MS * 8))
    await call.until(lambda: bool(call.of(TurnDoneEvent)), "the echo answer")
    answer = deltas(server.session(0).server_events)
    assert answer
    assert len(answer) % 2 == 0
    # 24 kHz PCM16 is 48 bytes/ms, mu-law 8 kHz 8 bytes/ms; the resampler's tail is flushed
    # at the end of the part, so nothing stays behind.
    await call.until(lambda: len(call.edge.played) == len(answer) // 6, "the answer at the edge")
    assert server.session(0).errors() == []


async def test_barge_in_mid_playback_is_accepted_by_the_server(
    bridged: Callable[..., Any],
) -> None:
    script = Script.from_obj({"turns": [{"reply": [{"say": "a long answer", "ms": 3000}]}]})
    call, server = await bridged(mode="script", script=script, pace=1.0)
    await call.bridge.send_message("tell me everything")
    # The answer streams in real time; the caller has heard three chunks when they speak.
    await call.until(lambda: len(call.edge.outstanding) >= 5, "answer audio at the edge")
    call.edge.ack(3)
    await call.until(lambda: len(call.of(MarkEvent)) == 3, "three marks")
    (item,) = call.bridge.protocol.playback.items()
    heard = item.heard_ms
    assert heard > 0

    call.say(speech_like(400, MULAW_8K, seed=3) + b"\xff" * (SILENCE_MS * 8))
    await call.until(lambda: bool(call.of(AudioInterruptedEvent)), "the barge-in")
    assert call.of(SpeechStartedEvent)
    await server.wait_for(lambda: bool(server.session(0).truncations))
    record = server.session(0)
    (truncation,) = record.truncations
    assert truncation.item_id == item.key.item_id
    assert truncation.accepted
    assert truncation.audio_end_ms == int(heard + 50)
    assert truncation.audio_sent_ms is not None
    assert truncation.audio_end_ms <= truncation.audio_sent_ms
    assert call.edge.commands("clear") == [None]
    # The server cancelled by itself (interrupt_response), so the bridge did not.
    assert record.client_events_of("response.cancel") == []
    assert record.errors() == []
    (event,) = call.of(AudioInterruptedEvent)
    assert event.truncations[0].audio_end_ms == truncation.audio_end_ms


async def test_barge_in_after_the_model_finished_sending(bridged: Callable[..., Any]) -> None:
    script = Script.from_obj({"turns": [{"reply": [{"say": "a short answer", "ms": 800}]}]})
    call, server = await bridged(mode="script", script=script)
    await call.bridge.send_message("hello")
    await call.until(lambda: bool(call.of(TurnDoneEvent)), "the whole answer sent")
    call.edge.ack(2)
    await call.until(lambda: len(call.of(MarkEvent)) == 2, "two marks")
    (item,) = call.bridge.protocol.playback.items()
    call.say(speech_like(400, MULAW_8K, seed=4) + b"\xff" * (SILENCE_MS * 8))
    await server.wait_for(lambda: bool(server.session(0).truncations))
    (truncation,) = server.session(0).truncations
    assert truncation.accepted
    assert truncation.audio_end_ms == int(item.heard_ms + 50)
    assert call.edge.commands("clear") == [None]
    assert server.session(0).errors() == []


async def test_model_drop_ends_the_call(bridged: Callable[..., Any]) -> None:
    call, _ = await bridged(faults=[CloseMidResponse(after_audio_deltas=2)])
    await call.bridge.send_message("hello")
    assert call.task is not None
    await asyncio.wait_for(asyncio.shield(call.task), GUARD)
    assert call.edge.closed
    assert call.edge.close_reason == "model disconnected"
    assert any(e.code == "model_disconnected" for e in call.of(ErrorEvent))
    assert call.bridge.status == "disconnected"


async def test_caller_hang_up_closes_the_model(bridged: Callable[..., Any]) -> None:
    call, server = await bridged()
    call.edge.hang_up()
    assert call.task is not None
    await asyncio.wait_for(asyncio.shield(call.task), GUARD)
    record = await server.wait_closed(0)
    assert record.closed
    assert call.bridge.model.status == "disconnected"
