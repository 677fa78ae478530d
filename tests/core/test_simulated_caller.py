"""The provider-neutral simulated caller, with a toy dialect, against a hand-driven aiohttp peer.

The peer plays the bridge: it reads what the caller sends and sends playback commands. Tests
wait on events; the only clock facts asserted are lower bounds that hold by construction (audio
cannot be heard before it was played at its byte rate).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import wave
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from voicewire.audio.formats import MULAW_8K, AudioFormat
from voicewire.errors import ConfigError
from voicewire.testing.telephony import (
    CallerDialect,
    DialectViolation,
    OutboundAudio,
    OutboundClear,
    OutboundMark,
    OutboundMessage,
    SimulatedCaller,
    json_frame,
    load_wav,
)

pytestmark = pytest.mark.usefixtures("no_task_leaks")

GUARD = 10.0


class ToyDialect:
    """A made-up provider: proves the caller knows nothing about Twilio."""

    def __init__(self) -> None:
        self.upgrades: list[str] = []

    @property
    def audio_format(self) -> AudioFormat:
        return MULAW_8K

    def upgrade_headers(self, url: str) -> Mapping[str, str]:
        self.upgrades.append(url)
        return {"X-Toy": "1"}

    def opening(self) -> Sequence[str]:
        return [json.dumps({"t": "hello"})]

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
        kind = obj.get("t")
        expected = {"play": {"t", "b64"}, "mark": {"t", "n"}, "clear": {"t"}}.get(kind)
        if expected is None or set(obj) != expected:
            raise DialectViolation(f"unexpected message keys {sorted(obj)}")
        if kind == "play":
            return OutboundAudio(data=base64.b64decode(obj["b64"]))
        if kind == "mark":
            return OutboundMark(name=obj["n"])
        return OutboundClear()


class Peer:
    """The bridge side: a WebSocket handler the test drives."""

    def __init__(self) -> None:
        self.inbox: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.ws: web.WebSocketResponse | None = None
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self.headers: Mapping[str, str] = {}
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.headers = dict(request.headers)
        self.ws = ws
        self.connected.set()
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.inbox.append(json.loads(msg.data))
                self.changed.set()
        self.closed.set()
        self.changed.set()
        return ws

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/media", self.handler)
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"ws://{host}:{port}/media"

    async def send(self, obj: Mapping[str, Any] | bytes) -> None:
        assert self.ws is not None
        if isinstance(obj, bytes):
            await self.ws.send_bytes(obj)
        else:
            await self.ws.send_str(json.dumps(obj))

    async def play(self, audio: bytes) -> None:
        await self.send({"t": "play", "b64": base64.b64encode(audio).decode()})

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.inbox if m.get("t") == kind]

    async def wait(self, predicate: Any, what: str = "condition") -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(loop(), GUARD)
        except asyncio.TimeoutError:
            raise AssertionError(f"{what}; inbox tail: {self.inbox[-5:]}") from None


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    p = Peer()
    await p.start()
    yield p
    assert p.runner is not None
    await p.runner.cleanup()


def test_the_toy_dialect_satisfies_the_protocol() -> None:
    assert isinstance(ToyDialect(), CallerDialect)


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="speed"):
        SimulatedCaller("ws://x", ToyDialect(), speed=0)
    with pytest.raises(ConfigError, match="frame_ms"):
        SimulatedCaller("ws://x", ToyDialect(), frame_ms=1)


async def test_opening_media_pacing_and_dtmf(peer: Peer) -> None:
    dialect = ToyDialect()
    async with SimulatedCaller(peer.url, dialect, speed=10.0, keepalive=False) as caller:
        await peer.connected.wait()
        speech = bytes(range(256)) * 2  # 512 bytes: 3 full frames and a padded one
        await caller.say(speech)
        await caller.press("5")
        await peer.wait(lambda: bool(peer.of("key")), "dtmf")
    assert peer.headers.get("X-Toy") == "1"
    assert dialect.upgrades == [peer.url]
    assert peer.inbox[0] == {"t": "hello"}
    frames = peer.of("audio")
    assert len(frames) == 4
    payloads = [base64.b64decode(f["b64"]) for f in frames]
    assert all(len(p) == 160 for p in payloads)
    assert b"".join(payloads)[:512] == speech
    assert b"".join(payloads)[512:] == b"\xff" * (640 - 512)  # padded with silence
    # Media timestamps advance 20 ms a frame on the media clock.
    stamps = [f["ts"] for f in frames]
    assert stamps == sorted(stamps)
    assert all(b - a >= 20 and (b - a) % 20 == 0 for a, b in itertools.pairwise(stamps))
    assert peer.of("key") == [{"t": "key", "d": "5"}]
    assert caller.sent == b"".join(payloads)


async def test_keepalive_sends_silence_between_utterances(peer: Peer) -> None:
    async with SimulatedCaller(peer.url, ToyDialect(), speed=20.0) as caller:
        await peer.wait(lambda: len(peer.of("audio")) >= 5, "keepalive frames")
        payloads = [base64.b64decode(f["b64"]) for f in peer.of("audio")[:5]]
        assert set(b"".join(payloads)) == {0xFF}
        assert caller.counts["media_sent"] >= 5


async def test_playback_acknowledges_a_mark_only_once_its_audio_played(peer: Peer) -> None:
    async with SimulatedCaller(peer.url, ToyDialect(), speed=10.0, keepalive=False) as caller:
        await peer.connected.wait()
        audio = bytes(range(200)) * 4  # 800 bytes = 100 ms
        await peer.play(audio)
        await peer.send({"t": "mark", "n": "m1"})
        await peer.wait(lambda: bool(peer.of("played")), "mark echo")
        assert peer.of("played") == [{"t": "played", "n": "m1"}]
        assert caller.heard == audio == caller.received
        (played,) = caller.entries("mark_played")
        assert played.detail["heard"] == 800
        (started,) = caller.entries("playback_started")
        # 800 bytes of mu-law take 100 ms of (virtual) time to play: never less.
        assert played.at_ms - started.at_ms >= 100 - 1e-6
        await caller.wait_idle()
        assert caller.queued_ms == 0


async def test_a_mark_on_an_idle_buffer_is_acknowledged_at_once(peer: Peer) -> None:
    async with SimulatedCaller(peer.url, ToyDialect(), speed=10.0, keepalive=False) as caller:
        await peer.connected.wait()
        await peer.send({"t": "mark", "n": "idle"})
        await peer.wait(lambda: bool(peer.of("played")), "mark echo")
        assert caller.heard == b""


async def test_clear_drops_the_buffer_and_acknowledges_pending_marks(peer: Peer) -> None:
    async with SimulatedCaller(peer.url, ToyDialect(), speed=2.0, keepalive=False) as caller:
        await peer.connected.wait()
        await peer.play(b"\x10" * 8000)  # 1 s
        await peer.send({"t": "mark", "n": "a"})
        await peer.play(b"\x20" * 800)
        await peer.send({"t": "mark", "n": "b"})
        await caller.wait_heard(800)
        await peer.send({"t": "clear"})
        await peer.wait(lambda: len(peer.of("played")) == 2, "two echoes")
        assert [m["n"] for m in peer.of("played")] == ["a", "b"]  # FIFO
        await caller.wait_entry("playback_stopped")
        heard = len(caller.heard)
        assert 800 <= heard < 8000
        assert set(caller.heard) == {0x10}
        assert caller.counts["clears"] == 1
        assert caller.counts["marks_cleared"] == 2
        assert caller.counts["marks_played"] == 0
        assert caller.counts["audio_bytes_cleared"] == 8800 - heard
        # Playback resumes with the next audio.
        await peer.play(b"\x30" * 160)
        await caller.wait_heard(heard + 160)
        assert caller.heard.endswith(b"\x30" * 160)


async def test_violations_are_recorded_and_strict_mode_raises(peer: Peer) -> None:
    caller = SimulatedCaller(peer.url, ToyDialect(), speed=10.0, keepalive=False)
    await caller.start()
    try:
        await peer.connected.wait()
        await peer.send({"t": "play", "b64": "", "extra": 1})
        await peer.send(b"\x00binary")
        await caller.wait_entry("violation", count=2)
    finally:
        await caller.close()
    assert len(caller.violations) == 2
    with pytest.raises(DialectViolation, match="2 time"):
        caller.assert_clean()
    lenient = SimulatedCaller(peer.url, ToyDialect(), strict=False)
    lenient._violations.append("x")
    lenient.assert_clean()


async def test_hang_up_sends_stop_then_closes(peer: Peer) -> None:
    caller = SimulatedCaller(peer.url, ToyDialect(), speed=10.0, keepalive=False)
    await caller.start()
    await peer.connected.wait()
    await caller.hang_up()
    await asyncio.wait_for(peer.closed.wait(), GUARD)
    assert peer.inbox[-1] == {"t": "bye"}
    assert caller.closed
    assert caller.close_code == 1000
    kinds = [e.kind for e in caller.timeline]
    assert kinds[-2:] == ["stop_sent", "closed"]


async def test_drop_loses_the_line_without_stop(peer: Peer) -> None:
    caller = SimulatedCaller(peer.url, ToyDialect(), speed=10.0, keepalive=False)
    await caller.start()
    await peer.connected.wait()
    await caller.drop()
    await asyncio.wait_for(peer.closed.wait(), GUARD)
    assert {"t": "bye"} not in peer.inbox
    assert caller.closed


async def test_the_peer_closing_is_recorded(peer: Peer) -> None:
    async with SimulatedCaller(peer.url, ToyDialect(), speed=10.0) as caller:
        await peer.connected.wait()
        assert peer.ws is not None
        await peer.ws.close(code=4001, message=b"bye")
        await caller.wait_closed()
        assert caller.close_code == 4001
        with pytest.raises(TimeoutError, match="bytes heard"):
            await caller.wait_heard(1, timeout=0.01)


def test_load_wav_converts_to_the_dialect_format(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(b"\x00\x10" * 16000)  # 1 s
    audio = load_wav(path, MULAW_8K)
    assert abs(len(audio) - 8000) <= 16
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00" * 400)
    with pytest.raises(ConfigError, match="mono"):
        load_wav(stereo, MULAW_8K)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav")
    with pytest.raises(ConfigError, match="WAV"):
        load_wav(junk, MULAW_8K)


@pytest.mark.parametrize(
    ("frame", "refusal"),
    [
        (b'{"event": "media"}', "binary frame of 18 bytes: Acme frames are text"),
        ("{not json", "frame is not JSON"),
        ("[1, 2]", "frame must be a JSON object, got list"),
        ('{"pad": "' + "x" * 64 + '"}', "frame of 75 characters is over the limit"),
    ],
)
def test_json_frame_refuses_what_no_json_dialect_accepts(frame: str | bytes, refusal: str) -> None:
    with pytest.raises(DialectViolation) as caught:
        json_frame(frame, provider="Acme", max_chars=64)
    assert str(caught.value) == refusal


def test_json_frame_returns_the_object() -> None:
    assert json_frame('{"event": "mark", "n": 1}', provider="Acme") == {"event": "mark", "n": 1}
