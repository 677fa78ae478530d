"""The two ends of ``bench/bridge_load.py``: simulated Twilio callers and a tapped fake model.

Run by ``bridge_load.py`` as separate processes; not meant to be run by hand.

* ``caller``: many concurrent Twilio Media Streams calls in one process. Each sends a 20 ms
  mu-law frame every 20 ms on an absolute schedule (0.8 s of loud tone, then 2.4 s of silence,
  so the fake model's VAD ends a turn and echoes it back), acknowledges marks when its simulated
  playback reaches them, and records when it sent each frame and when each echoed frame arrived.
* ``model``: the embedded fake model (``FakeRealtimeServer`` in echo mode, the server ``voicewire
  fake-model`` runs; built-in validation by default) with a tap on its session log that records
  when each appended frame arrived and when each audio delta went out, instead of keeping the
  events.

Correlation is by content. Every caller frame carries a 14-byte tag: a 4-byte magic and ten
mu-law codes of the quietest segment (``0xF0 | nibble``) holding the call number, the frame's
sequence number and a check nibble. Silent frames stay below -45 dBFS, so the VAD ignores them;
in speech frames the tag replaces 14 of the 160 tone bytes. The relay under test forwards caller
audio byte for byte (mu-law both ways, no transcoding), and the fake echoes the caller's own
bytes, so the same tags come back inside the model's deltas and the relay's media frames
whatever the chunking: both ends scan their byte streams (carrying the last 13 bytes over chunk
boundaries) and key every timestamp by (call, sequence). All timestamps are
``time.monotonic_ns()`` (CLOCK_MONOTONIC, shared by every process on one Linux machine).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import inspect
import itertools
import json
import math
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from voicewire.allocator import warm_up

MAGIC = b"\x7a\xf5\x7a\xf5"
TAG_BYTES = 14
FRAME_MS = 20
FRAME_BYTES = 160  # 20 ms of mu-law at 8 kHz
SPEECH_FRAMES = 40  # 0.8 s of tone ...
CYCLE_FRAMES = 160  # ... in every 3.2 s, so each echo ends before the caller speaks again
NS_PER_BYTE = 125_000  # mu-law 8 kHz: 8000 bytes per second
MAX_CALLS = 1 << 12
MAX_SEQ = 1 << 24


# --- tags -----------------------------------------------------------------------------------


def encode_tag(call: int, seq: int) -> bytes:
    """The 14 tag bytes of frame ``seq`` of call ``call``."""
    nibbles = [(call >> s) & 15 for s in (8, 4, 0)]
    nibbles += [(seq >> s) & 15 for s in (20, 16, 12, 8, 4, 0)]
    nibbles.append(sum(nibbles) & 15)
    return MAGIC + bytes(0xF0 | n for n in nibbles)


def find_tags(data: bytes) -> list[tuple[int, int]]:
    """Every well-formed tag in ``data``, as (call, sequence)."""
    found: list[tuple[int, int]] = []
    pos = data.find(MAGIC)
    while 0 <= pos <= len(data) - TAG_BYTES:
        body = data[pos + 4 : pos + TAG_BYTES]
        nibbles = [b & 15 for b in body]
        if all(b >= 0xF0 for b in body) and sum(nibbles[:9]) & 15 == nibbles[9]:
            call = (nibbles[0] << 8) | (nibbles[1] << 4) | nibbles[2]
            seq = 0
            for n in nibbles[3:9]:
                seq = (seq << 4) | n
            found.append((call, seq))
            pos += TAG_BYTES
        else:
            pos += 1
        pos = data.find(MAGIC, pos)
    return found


class TagScanner:
    """Finds tags in a byte stream fed in arbitrary chunks (a tag may straddle two chunks)."""

    __slots__ = ("_carry",)

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, data: bytes) -> list[tuple[int, int]]:
        """Tags that end inside ``data``."""
        buffer = self._carry + data
        self._carry = buffer[-(TAG_BYTES - 1) :]
        return find_tags(buffer)


def tone_frames() -> list[bytes]:
    """The speech burst: 0.8 s of two tones at about -10 dBFS, as 20 ms mu-law frames."""
    from voicewire.audio import mulaw_encode

    samples = []
    for i in range(SPEECH_FRAMES * FRAME_BYTES):
        t = i / 8000
        value = 7000 * math.sin(2 * math.pi * 330 * t) + 4000 * math.sin(2 * math.pi * 1210 * t)
        samples.append(int(value).to_bytes(2, "little", signed=True))
    ulaw = mulaw_encode(b"".join(samples))
    frames = [ulaw[i : i + FRAME_BYTES] for i in range(0, len(ulaw), FRAME_BYTES)]
    if any(MAGIC in frame for frame in frames):  # pragma: no cover - fixed signal
        raise RuntimeError("the tone contains the tag magic; pick other frequencies")
    return frames


# --- callers --------------------------------------------------------------------------------


class CallRecord:
    """What one simulated call saw."""

    def __init__(self, call: int) -> None:
        self.call = call
        self.connected = False
        self.error: str | None = None
        self.closed_early = False
        self.sent: list[tuple[int, int]] = []  # (seq, ns just before ws.send)
        self.received: list[tuple[int, int]] = []  # (seq, ns the frame holding the tag arrived)
        self.lateness_ns: list[int] = []
        self.foreign_tags = 0
        self.audio_bytes = 0
        self.media_frames = 0
        self.marks = 0
        self.clears = 0

    def as_json(self) -> dict[str, Any]:
        """The record as plain JSON data (lateness summarised)."""
        late = sorted(self.lateness_ns)
        return {
            "call": self.call,
            "connected": self.connected,
            "error": self.error,
            "closed_early": self.closed_early,
            "sent": self.sent,
            "received": self.received,
            "late_p99_ns": late[int(0.99 * (len(late) - 1))] if late else 0,
            "late_max_ns": late[-1] if late else 0,
            "foreign_tags": self.foreign_tags,
            "audio_bytes": self.audio_bytes,
            "media_frames": self.media_frames,
            "marks": self.marks,
            "clears": self.clears,
        }


def no_proxy(connect: Any) -> dict[str, Any]:
    """``proxy=None`` where ``connect`` takes it (websockets >= 15): loopback goes direct."""
    return {"proxy": None} if "proxy" in inspect.signature(connect).parameters else {}


async def _sleep_until(deadline_ns: int) -> None:
    delay = (deadline_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


async def run_call(
    url: str,
    record: CallRecord,
    tone: Sequence[bytes],
    connect_at: int,
    grid: int,
    stop_at: int,
    hang_up_at: int,
) -> None:
    """One Twilio call: connect at ``connect_at``, stream until ``stop_at``, hang up later.

    Frame ``n`` leaves at ``grid + k * 20 ms`` for the ``k`` of the n-th grid point after the
    stream opened.
    """
    from websockets.asyncio.client import connect

    await _sleep_until(connect_at)
    call = record.call
    sid = f"MZ{call:032x}"
    try:
        ws = await connect(
            url, compression=None, max_size=None, open_timeout=60, **no_proxy(connect)
        )
    except Exception as exc:
        record.error = f"connect: {type(exc).__name__}: {exc}"
        return
    record.connected = True
    loop = asyncio.get_running_loop()
    pending_acks: dict[str, asyncio.TimerHandle] = {}
    sends: set[asyncio.Future[None]] = set()
    hung_up = False
    numbers = itertools.count(1)  # Twilio's sequenceNumber, over every message of the stream

    def send_soon(text: str) -> None:
        future = asyncio.ensure_future(ws.send(text))
        sends.add(future)
        future.add_done_callback(sends.discard)

    def ack(name: str) -> None:
        pending_acks.pop(name, None)
        mark = {
            "event": "mark",
            "sequenceNumber": str(next(numbers)),
            "streamSid": sid,
            "mark": {"name": name},
        }
        send_soon(_dumps(mark))

    async def read() -> None:
        scanner = TagScanner()
        playback_end = 0
        async for message in ws:
            now = time.monotonic_ns()
            obj = json.loads(message)
            event = obj.get("event")
            if event == "media":
                data = base64.b64decode(obj["media"]["payload"])
                record.media_frames += 1
                record.audio_bytes += len(data)
                for tag_call, seq in scanner.feed(data):
                    if tag_call == call:
                        record.received.append((seq, now))
                    else:
                        record.foreign_tags += 1
                playback_end = max(playback_end, now) + len(data) * NS_PER_BYTE
            elif event == "mark":
                record.marks += 1
                name = obj["mark"]["name"]
                delay = max(0, playback_end - now) / 1e9
                pending_acks[name] = loop.call_later(delay, ack, name)
            elif event == "clear":
                record.clears += 1
                playback_end = now
                for name, handle in list(pending_acks.items()):
                    handle.cancel()
                    ack(name)

    reader = asyncio.create_task(read())
    try:
        await ws.send(_dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "accountSid": f"AC{call:032x}",
            "streamSid": sid,
            "callSid": f"CA{call:032x}",
            "tracks": ["inbound"],
            "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await ws.send(
            _dumps(
                {
                    "event": "start",
                    "sequenceNumber": str(next(numbers)),
                    "start": start,
                    "streamSid": sid,
                }
            )
        )
        # Frames leave on this call's own 20 ms grid; the grids of all calls are spread evenly
        # over the period, as the phases of independent phone calls are.
        frame_ns = FRAME_MS * 1_000_000
        first = grid + -(-(time.monotonic_ns() - grid) // frame_ns) * frame_ns
        phase = (call * 37) % CYCLE_FRAMES
        silence = b"\xff" * FRAME_BYTES
        seq = 0
        while True:
            due = first + seq * frame_ns
            if due >= stop_at or reader.done():
                break
            await _sleep_until(due)
            position = (seq + phase) % CYCLE_FRAMES
            body = tone[position] if position < SPEECH_FRAMES else silence
            audio = encode_tag(call, seq) + body[TAG_BYTES:]
            text = _dumps(
                {
                    "event": "media",
                    "sequenceNumber": str(next(numbers)),
                    "media": {
                        "track": "inbound",
                        "chunk": str(seq + 1),
                        "timestamp": str(seq * FRAME_MS),
                        "payload": base64.b64encode(audio).decode("ascii"),
                    },
                    "streamSid": sid,
                }
            )
            now = time.monotonic_ns()
            record.lateness_ns.append(now - due)
            await ws.send(text)
            record.sent.append((seq, now))
            seq += 1
        await _sleep_until(hang_up_at)
        if reader.done():
            record.closed_early = True
        hung_up = True
        stop = {"accountSid": f"AC{call:032x}", "callSid": f"CA{call:032x}"}
        await ws.send(
            _dumps(
                {
                    "event": "stop",
                    "sequenceNumber": str(next(numbers)),
                    "stop": stop,
                    "streamSid": sid,
                }
            )
        )
    except Exception as exc:
        if not hung_up:
            record.error = f"{type(exc).__name__}: {exc}"
            record.closed_early = True
    finally:
        for handle in pending_acks.values():
            handle.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 5)
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader


async def run_callers(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run ``args.calls`` calls; return their records.

    Prints ``ready``, then reads the plan from one line of standard input: JSON with ``url``,
    ``connect_at`` (monotonic ns of the first connection), ``ramp_ns`` (connections of all the
    processes' calls are spread over it), ``stop_at`` (no frame leaves after it) and
    ``hang_up_at``.
    """
    tone = tone_frames()
    records = [CallRecord(args.first_call + i) for i in range(args.calls)]
    print("ready", flush=True)
    plan = json.loads(sys.stdin.readline())
    step = int(plan["ramp_ns"]) // max(1, args.total_calls)
    await asyncio.gather(
        *(
            run_call(
                str(plan["url"]),
                record,
                tone,
                int(plan["connect_at"]) + record.call * step,
                int(plan["connect_at"]) + record.call * FRAME_MS * 1_000_000 // args.total_calls,
                int(plan["stop_at"]),
                int(plan["hang_up_at"]),
            )
            for record in records
        )
    )
    return [record.as_json() for record in records]


# --- tapped fake model ----------------------------------------------------------------------


class Tap:
    """Arrival times of tagged input frames and departure times of tagged output audio."""

    def __init__(self) -> None:
        self.inbound: dict[int, list[tuple[int, int]]] = {}
        self.outbound: dict[int, list[tuple[int, int]]] = {}
        self.tagged_appends = 0
        self.inbound_tags = 0
        self.deltas = 0

    def as_json(self) -> dict[str, Any]:
        """Everything recorded, as plain JSON data."""
        return {
            "inbound": self.inbound,
            "outbound": self.outbound,
            "tagged_appends": self.tagged_appends,
            "inbound_tags": self.inbound_tags,
            "deltas": self.deltas,
        }


class _TapList(list[Mapping[str, Any]]):
    """Stands in for a session log's event list: timestamps tagged audio, keeps nothing."""

    def __init__(self, tap: Tap, inbound: bool) -> None:
        super().__init__()
        self._tap = tap
        self._inbound = inbound
        self._scanner = TagScanner()

    def append(self, event: Mapping[str, Any]) -> None:
        now = time.monotonic_ns()
        kind = event.get("type")
        if self._inbound and kind == "input_audio_buffer.append":
            target = self._tap.inbound
            payload = event.get("audio")
        elif not self._inbound and kind == "response.output_audio.delta":
            self._tap.deltas += 1
            target = self._tap.outbound
            payload = event.get("delta")
        else:
            return
        if not isinstance(payload, str):
            return
        try:
            data = base64.b64decode(payload)
        except ValueError:
            return
        tags = self._scanner.feed(data)
        if self._inbound and tags:
            self._tap.tagged_appends += 1
            self._tap.inbound_tags += len(tags)
        for call, seq in tags:
            target.setdefault(call, []).append((seq, now))


async def run_model(args: argparse.Namespace) -> dict[str, Any]:
    """Serve the fake model in echo mode until SIGTERM; return what the tap recorded."""
    import voicewire.testing.fake_realtime.server as fake_server
    from voicewire.testing.fake_realtime.record import SessionLog

    tap = Tap()

    class TappedSessionLog(SessionLog):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.client_events = _TapList(tap, inbound=True)
            self.server_events = _TapList(tap, inbound=False)

    if getattr(fake_server, "SessionLog", None) is not SessionLog:
        raise SystemExit("bridge_load: the fake server no longer logs through SessionLog")
    setattr(fake_server, "SessionLog", TappedSessionLog)  # noqa: B010
    server = fake_server.FakeRealtimeServer("127.0.0.1", 0, mode="echo", validation=args.validation)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"listening on {server.url}", flush=True)
    await stop.wait()
    await server.close()
    return tap.as_json()


def main(argv: Sequence[str] | None = None) -> int:
    """``caller ...`` or ``model ...``."""
    parser = argparse.ArgumentParser(description="peers of bench/bridge_load.py")
    roles = parser.add_subparsers(dest="role", required=True)
    caller = roles.add_parser("caller")
    caller.add_argument("--first-call", type=int, required=True)
    caller.add_argument("--calls", type=int, required=True)
    caller.add_argument("--total-calls", type=int, required=True)
    caller.add_argument("--out", required=True)
    model = roles.add_parser("model")
    model.add_argument("--out", required=True)
    model.add_argument("--validation", choices=("auto", "openai", "builtin"), default="builtin")
    args = parser.parse_args(argv)
    if args.role == "caller":
        if args.first_call < 0 or args.first_call + args.calls > MAX_CALLS:
            parser.error(f"call numbers must stay below {MAX_CALLS}")
        warm_up()  # as voicewire's CLI does: no mmap per received message
        data: object = asyncio.run(run_callers(args))
    else:
        warm_up()
        data = asyncio.run(run_model(args))
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(data, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
