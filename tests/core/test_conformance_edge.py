"""``check_telephony_edge`` and ``check_bridge_with_edge`` pass for working edges, fail for broken ones.

The working edges are a small in-test edge for a toy JSON dialect and the real ``TwilioEdge``.
The broken ones are subclasses of the toy edge, each wrong in one way a plugin author could get
wrong; the check must raise a ``ConformanceError`` that names the problem. Everything runs over
loopback with the real simulated caller; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from voicewire.audio.formats import MULAW_8K, PCM16_24K, AudioFormat
from voicewire.bridge import (
    CallerAudio,
    CallStarted,
    CallStopped,
    Dtmf,
    EdgeCapabilities,
    EdgeError,
    EdgeEvent,
    PlaybackAcknowledged,
)
from voicewire.testing import FakeRealtimeServer
from voicewire.testing.conformance import (
    ConformanceError,
    check_bridge_with_edge,
    check_telephony_edge,
)
from voicewire.testing.telephony import (
    DialectViolation,
    OutboundAudio,
    OutboundClear,
    OutboundMark,
    OutboundMessage,
)
from voicewire_openai_ws import OpenAIRealtimeWebSocket
from voicewire_twilio import TwilioEdge
from voicewire_twilio.caller import TwilioDialect

# Failing checks wait out their hang guard; short ones keep those tests quick.
FAST_TIMEOUT = 3.0
FAST_GRACE = 0.5


class ToyDialect:
    """The provider's side of the toy dialect (strict about what the edge sends)."""

    def __init__(self, fmt: AudioFormat = MULAW_8K) -> None:
        self._format = fmt

    @property
    def audio_format(self) -> AudioFormat:
        return self._format

    def upgrade_headers(self, url: str) -> Mapping[str, str]:
        return {}

    def opening(self) -> Sequence[str]:
        return [json.dumps({"t": "hello", "rate": self._format.sample_rate})]

    def media(self, audio: bytes, timestamp_ms: int) -> str:
        return json.dumps(
            {"t": "audio", "ts": timestamp_ms, "b64": base64.b64encode(audio).decode()}
        )

    def dtmf(self, digit: str) -> str:
        return json.dumps({"t": "key", "d": digit})

    def mark_played(self, name: str) -> str:
        return json.dumps({"t": "played", "n": name})

    def stop(self) -> str:
        return json.dumps({"t": "bye"})

    def decode(self, frame: str | bytes) -> OutboundMessage:
        if not isinstance(frame, str):
            raise DialectViolation("binary frame")
        obj = json.loads(frame)
        expected = {"play": {"t", "b64"}, "mark": {"t", "n"}, "clear": {"t"}}.get(obj.get("t"))
        if expected is None or set(obj) != expected:
            raise DialectViolation(f"unexpected keys {sorted(obj)}")
        if obj["t"] == "play":
            return OutboundAudio(data=base64.b64decode(obj["b64"]))
        if obj["t"] == "mark":
            return OutboundMark(name=obj["n"])
        return OutboundClear()


class ToyEdge:
    """A working edge for the toy dialect, written the plain way: the socket read in events()."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.stopped = False
        self.closed = False

    @property
    def capabilities(self) -> EdgeCapabilities:
        return EdgeCapabilities(acknowledgements=True, audio_format=MULAW_8K, provider="toy")

    async def events(self) -> AsyncIterator[EdgeEvent]:
        async for message in self.ws:
            if message.type != WSMsgType.TEXT:
                yield EdgeError(message="binary frame", code="binary")
                continue
            try:
                obj = json.loads(message.data)
            except ValueError:
                yield self.on_invalid_json()
                continue
            if not isinstance(obj, dict):
                yield EdgeError(message="not an object", code="not_an_object")
                continue
            yield self.translate(obj)
        if not self.stopped:
            yield CallStopped(reason="connection_closed")

    def on_invalid_json(self) -> EdgeEvent:
        return EdgeError(message="not JSON", code="invalid_json")

    def translate(self, obj: Mapping[str, Any]) -> EdgeEvent:
        kind = obj.get("t")
        if kind == "hello":
            return CallStarted(call_id="toy", stream_id=None, audio_format=MULAW_8K)
        if kind == "audio":
            return CallerAudio(
                data=self.caller_bytes(base64.b64decode(obj["b64"])), timestamp_ms=obj["ts"]
            )
        if kind == "played":
            return self.played(str(obj["n"]))
        if kind == "key":
            return Dtmf(digit=str(obj["d"]))
        if kind == "bye":
            self.stopped = True
            return CallStopped(reason="bye")
        return EdgeError(message=f"unknown {kind!r}", code="unknown")

    def caller_bytes(self, data: bytes) -> bytes:
        return data

    def played(self, name: str) -> EdgeEvent:
        return PlaybackAcknowledged(token=name)

    async def send(self, obj: Mapping[str, Any]) -> None:
        if self.closed or self.ws.closed:
            return
        try:
            await self.ws.send_str(json.dumps(obj))
        except ConnectionError:
            return

    async def play(self, data: bytes) -> None:
        await self.send({"t": "play", "b64": base64.b64encode(data).decode()})

    async def acknowledge_when_played(self, token: str) -> None:
        await self.send({"t": "mark", "n": token})

    async def clear(self) -> None:
        await self.send({"t": "clear"})

    async def close(self, reason: str | None = None) -> None:
        if not self.closed:
            self.closed = True
            await self.ws.close()


class WithoutAcknowledgements(ToyEdge):
    """A provider that never reports playback: the bridge falls back to the wall clock."""

    @property
    def capabilities(self) -> EdgeCapabilities:
        return EdgeCapabilities(acknowledgements=False, audio_format=MULAW_8K, provider="toy")


# --- broken edges ----------------------------------------------------------------------------


class DropsAByte(ToyEdge):
    def __init__(self, ws: web.WebSocketResponse) -> None:
        super().__init__(ws)
        self.dropped = False

    def caller_bytes(self, data: bytes) -> bytes:
        if not self.dropped:
            self.dropped = True
            return data[1:]
        return data


class RaisesOnGarbage(ToyEdge):
    def on_invalid_json(self) -> EdgeEvent:
        raise ValueError("cannot parse")


class MarkAheadOfAudio(ToyEdge):
    """Holds audio back and sends it after the next mark: the mark overtakes the audio."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        super().__init__(ws)
        self.held: list[bytes] = []

    async def play(self, data: bytes) -> None:
        self.held.append(data)

    async def acknowledge_when_played(self, token: str) -> None:
        await super().acknowledge_when_played(token)
        for data in self.held:
            await super().play(data)
        self.held.clear()


class ForgetsTokensOnClear(ToyEdge):
    def __init__(self, ws: web.WebSocketResponse) -> None:
        super().__init__(ws)
        self.forgotten: set[str] = set()
        self.sent: set[str] = set()

    async def acknowledge_when_played(self, token: str) -> None:
        self.sent.add(token)
        await super().acknowledge_when_played(token)

    async def clear(self) -> None:
        self.forgotten |= self.sent
        await super().clear()

    def played(self, name: str) -> EdgeEvent:
        if name in self.forgotten:
            return EdgeError(message="a mark this edge does not know", code="unknown_mark")
        return super().played(name)


class LeaksOnClose(ToyEdge):
    async def close(self, reason: str | None = None) -> None:
        # A keepalive task nobody stops.
        asyncio.get_running_loop().create_task(asyncio.Event().wait(), name="toy-keepalive")
        await super().close(reason)


class WrongFormat(ToyEdge):
    def translate(self, obj: Mapping[str, Any]) -> EdgeEvent:
        if obj.get("t") == "hello":
            return CallStarted(call_id="toy", stream_id=None, audio_format=PCM16_24K)
        return super().translate(obj)


class KeepsSocketOpen(ToyEdge):
    async def close(self, reason: str | None = None) -> None:
        self.closed = True  # forgets to close the socket


class NeverAcknowledges(ToyEdge):
    def played(self, name: str) -> EdgeEvent:
        return EdgeError(message="acknowledgements are not implemented", code="todo")


# --- the checks pass ---------------------------------------------------------------------------


async def test_a_working_edge_passes(no_task_leaks: None) -> None:
    await check_telephony_edge(ToyEdge, ToyDialect)


async def test_the_edge_factory_may_be_a_coroutine(no_task_leaks: None) -> None:
    async def make(ws: web.WebSocketResponse) -> ToyEdge:
        return ToyEdge(ws)

    await check_telephony_edge(make, ToyDialect)


async def test_an_edge_without_acknowledgements_passes(no_task_leaks: None) -> None:
    await check_telephony_edge(WithoutAcknowledgements, ToyDialect)


async def test_the_twilio_edge_passes(no_task_leaks: None) -> None:
    await check_telephony_edge(TwilioEdge, TwilioDialect)


# --- the checks fail, naming the problem -------------------------------------------------------


@pytest.mark.parametrize(
    ("edge", "step", "words"),
    [
        (DropsAByte, "caller audio", "not the caller's audio in order"),
        (RaisesOnGarbage, "malformed input", "events() raised ValueError"),
        (MarkAheadOfAudio, "play", "before the audio queued ahead of the token"),
        (ForgetsTokensOnClear, "clear", "never acknowledged"),
        (LeaksOnClose, "stream", "toy-keepalive"),
        (WrongFormat, "stream", "CallStarted announces"),
        (KeepsSocketOpen, "close", "the caller's socket closed"),
    ],
)
async def test_a_broken_edge_fails(
    no_task_leaks: None, edge: type[ToyEdge], step: str, words: str
) -> None:
    with pytest.raises(ConformanceError) as caught:
        await check_telephony_edge(edge, ToyDialect, timeout=FAST_TIMEOUT, leak_grace=FAST_GRACE)
    error = caught.value
    assert error.check == "check_telephony_edge"
    assert error.step == step
    assert words in error.detail
    assert isinstance(error, AssertionError)


async def test_an_edge_factory_that_raises_is_reported(no_task_leaks: None) -> None:
    def broken(ws: web.WebSocketResponse) -> ToyEdge:
        raise RuntimeError("no edge today")

    with pytest.raises(ConformanceError, match="edge factory raised RuntimeError: no edge today"):
        await check_telephony_edge(broken, ToyDialect, timeout=FAST_TIMEOUT, leak_grace=FAST_GRACE)


async def test_something_that_is_not_an_edge_is_reported(no_task_leaks: None) -> None:
    def not_an_edge(ws: web.WebSocketResponse) -> Any:
        return object()

    with pytest.raises(ConformanceError, match="which is not a TelephonyEdge"):
        await check_telephony_edge(
            not_an_edge, ToyDialect, timeout=FAST_TIMEOUT, leak_grace=FAST_GRACE
        )


# --- a whole bridged call ----------------------------------------------------------------------


def openai() -> OpenAIRealtimeWebSocket:
    return OpenAIRealtimeWebSocket(plugin_observers=False)


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer() as server:
        yield server


async def test_a_bridged_call_passes_through(
    no_task_leaks: None, fake_server: FakeRealtimeServer
) -> None:
    await check_bridge_with_edge(ToyEdge, ToyDialect, fake_server=fake_server, model_factory=openai)


async def test_a_bridged_call_transcodes(
    no_task_leaks: None, fake_server: FakeRealtimeServer
) -> None:
    await check_bridge_with_edge(
        ToyEdge,
        ToyDialect,
        fake_server=fake_server,
        model_factory=openai,
        model_audio_format=PCM16_24K,
    )


async def test_a_bridged_call_without_acknowledgements(
    no_task_leaks: None, fake_server: FakeRealtimeServer
) -> None:
    await check_bridge_with_edge(
        WithoutAcknowledgements, ToyDialect, fake_server=fake_server, model_factory=openai
    )


async def test_a_bridged_twilio_call_passes(
    no_task_leaks: None, fake_server: FakeRealtimeServer
) -> None:
    await check_bridge_with_edge(
        TwilioEdge, TwilioDialect, fake_server=fake_server, model_factory=openai
    )


async def test_a_bridged_call_fails_without_acknowledgements(
    no_task_leaks: None, fake_server: FakeRealtimeServer
) -> None:
    with pytest.raises(ConformanceError) as caught:
        await check_bridge_with_edge(
            NeverAcknowledges,
            ToyDialect,
            fake_server=fake_server,
            model_factory=openai,
            timeout=FAST_TIMEOUT,
            leak_grace=FAST_GRACE,
        )
    assert caught.value.step == "turn"
    assert "acknowledgements missing" in caught.value.detail
