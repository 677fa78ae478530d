"""The demo call: fake model, Twilio bridge and simulated caller, in one process, over loopback.

:func:`run_demo` starts the three over real sockets on ``127.0.0.1``, places one scripted call
and returns a :class:`DemoReport` of everything that happened; it prints the timeline as it goes.

The call:

1. the caller fetches the TwiML from ``POST /twiml`` with a signed request, as Twilio does;
2. an upgrade signed with the wrong auth token is refused (403), then the caller connects with
   a correctly signed ``X-Twilio-Signature`` and opens the Media Stream;
3. turn 1: the caller speaks; the model calls ``get_time``, which the demo's application code
   (an ``on_call`` hook listening for ``function_call``) answers with
   ``send_function_call_output``; the model then speaks the answer, heard to the end;
4. turn 2: the caller speaks; the model starts a long answer; after hearing
   :data:`BARGE_IN_AFTER_MS` of it, the caller talks over it; the bridge clears Twilio's buffer
   and truncates the model's item where the caller stopped hearing it;
5. the model answers the interruption; the caller presses a DTMF key and hangs up.

Time on the timeline is *call time*: the simulated caller's and the fake model's clocks, which
``speed`` runs faster than the wall clock without changing what is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from voicewire._change import wait_for_change
from voicewire.audio.formats import MULAW_8K
from voicewire.errors import VoicewireError

if TYPE_CHECKING:
    from voicewire.bridge.call import CallBridge, CallBridgeStats
    from voicewire.demo.timeline import DemoOutput
    from voicewire.events import Truncation
    from voicewire.testing.fake_realtime import SessionRecord
    from voicewire.testing.telephony import SimulatedCaller, TimelineEntry

__all__ = [
    "BARGE_IN_AFTER_MS",
    "DEMO_API_KEY",
    "DTMF_KEY",
    "TOOL_NAME",
    "TRUNCATION_TOLERANCE_MS",
    "CallerTurn",
    "DemoError",
    "DemoOptions",
    "DemoReport",
    "InterruptionRecord",
    "ItemRecord",
    "ResponseRecord",
    "ToolCallRecord",
    "run_demo",
]

TOOL_NAME: Final = "get_time"
"""The function the scripted model calls in turn 1."""

BARGE_IN_AFTER_MS: Final = 1500.0
"""How much of the long answer the caller hears before talking over it."""

DTMF_KEY: Final = "#"
"""The key the caller presses before hanging up."""

TRUNCATION_TOLERANCE_MS: Final = 50.0
"""How far the truncation point may be from what the caller heard of the item."""

DEMO_API_KEY: Final = "sk-voicewire-demo-offline"
"""The key the bridge presents to the fake model (not a secret: the fake is local)."""

_GUARD_S: Final = 10.0  # hang guard of each wait, on top of the call time it should take
_POLL_S: Final = 0.05  # waits re-check their condition at least this often
_LAG_PERIOD_S: Final = 0.005  # how often the event-loop lag is sampled around the barge-in
_LOGGERS: Final = ("voicewire", "voicewire_twilio", "voicewire_openai_ws")
_INSTRUCTIONS: Final = (
    "You answer the phone for a small shop. Use get_time when asked for the time. Be brief."
)


class DemoError(VoicewireError):
    """The demo cannot run (a plugin is missing, a port cannot be bound, ...)."""


@attrs.frozen(kw_only=True)
class DemoOptions:
    """What :func:`run_demo` does.

    Attributes:
        speed: Call time runs this many times faster than the wall clock (caller and model).
        first_turn: The caller's first utterance as mu-law 8 kHz; generated speech if ``None``.
        first_turn_label: How the timeline names the first utterance (e.g. the WAV file's name).
    """

    speed: float = 1.0
    first_turn: bytes | None = attrs.field(default=None, repr=False)
    first_turn_label: str | None = None


@attrs.define
class CallerTurn:
    """One utterance of the caller.

    Attributes:
        label: ``turn 1``, ``turn 2`` or ``barge-in``.
        text: What it stands for (the audio is speech-like, not words).
        audio_ms: Its length.
        started_ms: Call time the caller started saying it.
        ended_ms: Call time its last frame was sent.
    """

    label: str
    text: str
    audio_ms: float
    started_ms: float
    ended_ms: float | None = None


@attrs.define
class ItemRecord:
    """One model output item with audio, as the bridge handed it to the caller.

    Attributes:
        item_id: The model's item id.
        response_number: Which response (1-based) it belongs to.
        offset_bytes: Audio the caller had been handed before this item (mu-law bytes).
        audio_bytes: This item's audio handed to the caller.
        first_audio_ms: Call time of its first chunk.
    """

    item_id: str
    response_number: int
    offset_bytes: int
    audio_bytes: int = 0
    first_audio_ms: float | None = None


@attrs.define
class ResponseRecord:
    """One model response.

    Attributes:
        number: 1-based, in order of ``turn_started``.
        response_id: The model's id.
        started_ms: Call time of ``turn_started``.
        function_calls: Names of the functions it called.
        item_ids: Its audio items, in order.
        first_audio_ms: Call time its first audio reached the bridge.
        status: ``completed``, ``cancelled``, ... once ``turn_done`` came.
        done_ms: Call time of ``turn_done``.
        transcript: The model's transcript of its audio.
        heard_to_end: The caller played all of its audio (the done mark came back).
        marks: Marks acknowledged for it (played, not cleared).
    """

    number: int
    response_id: str
    started_ms: float
    function_calls: list[str] = attrs.field(factory=list)
    item_ids: list[str] = attrs.field(factory=list)
    first_audio_ms: float | None = None
    status: str | None = None
    done_ms: float | None = None
    transcript: str = ""
    heard_to_end: bool = False
    marks: int = 0


@attrs.define
class ToolCallRecord:
    """A function call the demo's application code answered.

    Attributes:
        name: The function.
        arguments: Its JSON arguments.
        output: What the application returned.
        at_ms: Call time of the answer.
        error: Why answering failed, if it did.
    """

    name: str
    arguments: str
    output: str
    at_ms: float
    error: str | None = None


@attrs.define
class InterruptionRecord:
    """A barge-in as the bridge reported it (``audio_interrupted``).

    Attributes:
        at_ms: Call time of the event.
        response_id: The interrupted response.
        truncations: Where each item was cut.
        heard_ms: What the caller heard of the first truncated item, measured at the caller;
            filled in once known.
    """

    at_ms: float
    response_id: str | None
    truncations: tuple[Truncation, ...]
    heard_ms: float | None = None


@attrs.define
class DemoReport:
    """Everything the demo saw, for the summary and the checks.

    Attributes:
        speed: The clock factor.
        fake_url: The fake model's WebSocket URL.
        bridge_url: The bridge's HTTP URL.
        webhook_status: HTTP status of the signed ``POST /twiml``.
        stream_url: The ``<Stream url>`` of the TwiML.
        forged_status: HTTP status of the upgrade signed with the wrong token.
        signed_upgrade: The correctly signed upgrade was accepted.
        call_sid: The call's id, as the caller announced it.
        call_started: The bridge reported ``call_start`` with that id.
        turns: The caller's utterances.
        responses: The model's responses.
        items: The model's audio items, by id.
        tool_calls: Function calls answered by the application.
        interruptions: Barge-ins.
        dtmf: Keys the application received.
        call_stop_reason: The reason of ``call_stop``, if it came.
        errors: ``error`` events and unexpected warnings, one line each.
        caller: The simulated caller (closed), with its records.
        caller_offset_ms: Call time of the caller's own time zero.
        bridge_stats: The bridge's counters after the call.
        model_record: The fake model's record of the session.
        model_closed: The model's WebSocket was closed after the call.
        leaked_tasks: Tasks still running after everything was closed.
        aborted: Why the call stopped early, if it did.
        loop_lag_ms: The longest the event loop was late (wall-clock ms) around the barge-in,
            from the caller talking over the answer to the clear arriving. Times ``speed``, it
            is how far a busy machine alone can shift what the caller heard.
    """

    speed: float
    fake_url: str = ""
    bridge_url: str = ""
    webhook_status: int | None = None
    stream_url: str | None = None
    forged_status: int | None = None
    signed_upgrade: bool = False
    call_sid: str | None = None
    call_started: bool = False
    turns: list[CallerTurn] = attrs.field(factory=list)
    responses: list[ResponseRecord] = attrs.field(factory=list)
    items: dict[str, ItemRecord] = attrs.field(factory=dict)
    tool_calls: list[ToolCallRecord] = attrs.field(factory=list)
    interruptions: list[InterruptionRecord] = attrs.field(factory=list)
    dtmf: list[str] = attrs.field(factory=list)
    call_stop_reason: str | None = None
    errors: list[str] = attrs.field(factory=list)
    caller: SimulatedCaller | None = None
    caller_offset_ms: float = 0.0
    bridge_stats: CallBridgeStats | None = None
    model_record: SessionRecord | None = None
    model_closed: bool = False
    leaked_tasks: list[str] = attrs.field(factory=list)
    aborted: str | None = None
    loop_lag_ms: float | None = None

    def caller_time(self, entry: TimelineEntry) -> float:
        """The call time of a caller timeline entry."""
        return entry.at_ms + self.caller_offset_ms


class _StepFailed(Exception):
    """A step of the call did not happen in time; the message says which."""


class _LogCapture(logging.Handler):
    """Turns voicewire's warnings into timeline lines while the demo runs."""

    def __init__(self, demo: _Demo) -> None:
        super().__init__(logging.WARNING)
        self._demo = demo

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a broken log call is not the demo's to crash on
            message = str(record.msg)
        self._demo.log_line(record.levelname.lower(), message)


def _short_id(value: str | None) -> str:
    if not value:
        return "?"
    return value if len(value) <= 14 else value[:10] + "…"


def _ms(value: float) -> str:
    return f"{value:.0f} ms"


class _Demo:
    """The state of one demo run (see :func:`run_demo`)."""

    def __init__(self, options: DemoOptions, out: DemoOutput) -> None:
        self.options = options
        self.out = out
        self.speed = options.speed
        self.report = DemoReport(speed=options.speed)
        self.changed = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.bridge: CallBridge | None = None
        self.caller: SimulatedCaller | None = None
        self._responses: dict[str, ResponseRecord] = {}
        self._emitted_bytes = 0
        self._marks_since = 0
        self.expected_log: str | None = None

    # -- clock and output ---------------------------------------------------------------------

    def now_ms(self) -> float:
        """Call time: wall-clock milliseconds since the start, times ``speed``."""
        return (self.loop.time() - self.t0) * 1000.0 * self.speed

    def line(self, who: str, text: str, *, at_ms: float | None = None, alert: bool = False) -> None:
        """Print a timeline line."""
        self.out.event(self.now_ms() if at_ms is None else at_ms, who, text, alert=alert)

    def log_line(self, level: str, message: str) -> None:
        """A warning logged by voicewire or a plugin (expected ones are not errors)."""
        if self.expected_log is not None and message.startswith(self.expected_log):
            self.line("bridge", f"log: {message.split(' (')[0]}")
            return
        self.report.errors.append(f"{level}: {message}")
        self.line("bridge", f"{level}: {message}", alert=True)

    def wake(self, _event: object = None) -> None:
        """Re-check what the scenario waits for."""
        self.changed.set()

    async def watch_lag(self, stop: asyncio.Event) -> None:
        """Record how late the event loop wakes up until ``stop`` is set (see ``loop_lag_ms``)."""
        worst = 0.0
        while not stop.is_set():
            start = self.loop.time()
            await asyncio.sleep(_LAG_PERIOD_S)
            worst = max(worst, (self.loop.time() - start - _LAG_PERIOD_S) * 1000.0)
        self.report.loop_lag_ms = worst

    async def until(self, predicate: Callable[[], bool], what: str, *, call_ms: float) -> None:
        """Wait until ``predicate()``; ``call_ms`` is the call time it should take at most.

        Raises:
            _StepFailed: Not within that time (at ``speed``) plus a generous guard.
        """
        deadline = self.loop.time() + call_ms / 1000.0 / self.speed + _GUARD_S
        while not predicate():
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                raise _StepFailed(what)
            if self.caller is not None and self.caller.closed and self.report.call_stop_reason:
                raise _StepFailed(f"{what} (the call ended first)")
            self.changed.clear()
            # The caller's own progress does not set our event: poll it as well.
            await wait_for_change(self.changed, min(remaining, _POLL_S))

    # -- the bridge's events (application code, attached by the on_call hook) ------------------

    def on_call(self, bridge: CallBridge) -> None:
        """The ``on_call`` hook of ``create_app``: listen to the call like an application would."""
        if self.bridge is not None:
            self.report.errors.append("a second call reached the bridge")
            return
        self.bridge = bridge
        bridge.on("call_start", self._on_call_start)
        bridge.on("speech_started", self._on_speech_started)
        bridge.on("speech_stopped", self._on_speech_stopped)
        bridge.on("turn_started", self._on_turn_started)
        bridge.on("function_call", self._on_function_call)
        bridge.on("function_call", self._answer_function_call)
        bridge.on("audio", self._on_audio)
        bridge.on("audio_transcript_delta", self._on_transcript)
        bridge.on("turn_done", self._on_turn_done)
        bridge.on("mark", self._on_mark)
        bridge.on("audio_interrupted", self._on_interrupted)
        bridge.on("dtmf", self._on_dtmf)
        bridge.on("call_stop", self._on_call_stop)
        bridge.on("error", self._on_error)
        bridge.on("*", self.wake)

    def _on_call_start(self, event: Any) -> None:
        self.report.call_started = event.call_id == self.report.call_sid
        fmt = event.audio_format
        shown = f"{fmt.encoding} {fmt.sample_rate} Hz" if fmt is not None else "?"
        self.line(
            "bridge",
            f"call_start: call {_short_id(event.call_id)}, {shown}, passed through untouched",
        )
        self.wake()

    def _on_speech_started(self, event: Any) -> None:
        del event
        self.line("model", "hears speech (server VAD: speech_started)")
        self.wake()

    def _on_speech_stopped(self, event: Any) -> None:
        del event
        self.line("model", "hears silence: end of the caller's turn")
        self.wake()

    def _on_turn_started(self, event: Any) -> None:
        response_id = event.response_id or f"response-{len(self.report.responses) + 1}"
        record = ResponseRecord(
            number=len(self.report.responses) + 1, response_id=response_id, started_ms=self.now_ms()
        )
        self.report.responses.append(record)
        self._responses[response_id] = record
        self.wake()

    def _response(self, response_id: str | None) -> ResponseRecord | None:
        if response_id is None:
            return self.report.responses[-1] if self.report.responses else None
        return self._responses.get(response_id)

    def _on_function_call(self, event: Any) -> None:
        # Sync, so that the call is on record before the response's turn_done; the answer
        # itself is sent by the async listener below, in the emitter's task.
        record = self._response(event.response_id)
        if record is not None:
            record.function_calls.append(event.name)
        self.line("model", f"calls {event.name}({event.arguments})")

    async def _answer_function_call(self, event: Any) -> None:
        bridge = self.bridge
        if event.name == TOOL_NAME:
            output = json.dumps({"time": time.strftime("%H:%M:%S")})
        else:
            output = json.dumps({"error": f"no such function: {event.name}"})
        call = ToolCallRecord(
            name=event.name, arguments=event.arguments, output=output, at_ms=self.now_ms()
        )
        try:
            assert bridge is not None
            await bridge.send_function_call_output(event, output)
        except Exception as exc:
            call.error = f"{type(exc).__name__}: {exc}"
            self.report.errors.append(f"answering {event.name} failed: {call.error}")
            self.line("app", f"could not answer {event.name}: {call.error}", alert=True)
        else:
            call.at_ms = self.now_ms()
            self.line("app", f"{event.name}() -> {output}, sent back to the model")
        self.report.tool_calls.append(call)
        self.wake()

    def _on_audio(self, event: Any) -> None:
        nbytes = len(event.data)
        item_id = event.item_id or "?"
        item = self.report.items.get(item_id)
        if item is None:
            response = self._response(event.response_id)
            number = response.number if response is not None else 0
            item = ItemRecord(
                item_id=item_id, response_number=number, offset_bytes=self._emitted_bytes
            )
            item.first_audio_ms = self.now_ms()
            self.report.items[item_id] = item
            if response is not None:
                response.item_ids.append(item_id)
                if response.first_audio_ms is None:
                    response.first_audio_ms = item.first_audio_ms
            self._item_started(item)
            self.line("model", f"speaks (response {number}, item {_short_id(item_id)})")
        item.audio_bytes += nbytes
        self._emitted_bytes += nbytes
        self.wake()

    def _item_started(self, item: ItemRecord) -> None:
        # What the caller heard of an interrupted item, fixed once the next answer starts (the
        # clear has long been played out by then, and nothing of the new answer is heard yet).
        caller = self.caller
        if caller is None:
            return
        for interruption in self.report.interruptions:
            if interruption.heard_ms is None and interruption.truncations:
                cut = self.report.items.get(interruption.truncations[0].item_id)
                if cut is not None and cut is not item:
                    heard = len(caller.heard) - cut.offset_bytes
                    interruption.heard_ms = MULAW_8K.duration_ms(max(0, heard))

    def _on_transcript(self, event: Any) -> None:
        record = self._response(event.response_id)
        if record is not None:
            record.transcript += event.delta

    def _on_turn_done(self, event: Any) -> None:
        record = self._response(event.response_id)
        if record is None:
            return
        record.status = event.status or "completed"
        record.done_ms = self.now_ms()
        if record.function_calls and not record.item_ids:
            what = f"ends with a call to {', '.join(record.function_calls)}"
        elif record.transcript:
            text = record.transcript.strip()
            what = f'"{text if len(text) <= 60 else text[:58] + "…"}"'
        else:
            what = "no audio"
        self.line("model", f"response {record.number} {record.status}; {what}")
        self._check_heard()
        self.wake()

    def _on_mark(self, event: Any) -> None:
        if not event.cleared:
            self._marks_since += 1
        self._check_heard()
        self.wake()

    def _check_heard(self) -> None:
        # Aggregated: one line when an answer has been played to its end (its last mark came
        # back), instead of one line per mark.
        bridge = self.bridge
        if bridge is None:
            return
        playing = {p.key.response_id for p in bridge.protocol.playback.items()}
        for record in self.report.responses:
            if record.heard_to_end or not record.item_ids or record.status is None:
                continue
            if record.response_id in playing or record.status != "completed":
                continue
            record.heard_to_end = True
            record.marks, self._marks_since = self._marks_since, 0
            nbytes = sum(self.report.items[i].audio_bytes for i in record.item_ids)
            self.line(
                "caller",
                f"heard response {record.number} to its end: {_ms(MULAW_8K.duration_ms(nbytes))},"
                f" {record.marks} marks acknowledged",
            )

    def _on_interrupted(self, event: Any) -> None:
        record = InterruptionRecord(
            at_ms=self.now_ms(), response_id=event.response_id, truncations=event.truncations
        )
        self.report.interruptions.append(record)
        response = self._response(event.response_id)
        if response is not None:
            response.marks, self._marks_since = self._marks_since, 0
        cuts = ", ".join(
            f"item {_short_id(t.item_id)} at {t.audio_end_ms} ms" for t in event.truncations
        )
        self.line("bridge", f"barge-in: 'clear' sent to the caller, truncate {cuts}")
        self.wake()

    def _on_dtmf(self, event: Any) -> None:
        self.report.dtmf.append(event.digit)
        self.line("app", f"DTMF key {event.digit!r} received")
        self.wake()

    def _on_call_stop(self, event: Any) -> None:
        self.report.call_stop_reason = event.reason or "?"
        self.line("bridge", f"call_stop ({self.report.call_stop_reason}); model connection closed")
        self.wake()

    def _on_error(self, event: Any) -> None:
        message = getattr(event, "message", repr(event))
        code = getattr(event, "code", None)
        self.report.errors.append(f"{code or 'error'}: {message}")
        self.line("bridge", f"error {code or ''}: {message}".replace("  ", " "), alert=True)
        self.wake()

    # -- the caller -----------------------------------------------------------------------------

    async def say(self, label: str, text: str, audio: bytes) -> CallerTurn:
        """Say ``audio`` and wait until its last frame is sent."""
        caller = self.caller
        assert caller is not None
        turn = CallerTurn(
            label=label, text=text, audio_ms=MULAW_8K.duration_ms(len(audio)), started_ms=0.0
        )
        turn.started_ms = self.now_ms()
        self.report.turns.append(turn)
        self.line("caller", f'says "{text}" ({_ms(turn.audio_ms)} of speech)')
        try:
            await asyncio.wait_for(
                caller.say(audio), turn.audio_ms / 1000.0 / self.speed + _GUARD_S
            )
        except asyncio.TimeoutError:
            raise _StepFailed(f"the caller could not send its {label}") from None
        except VoicewireError:
            raise _StepFailed(f"the call ended while the caller said its {label}") from None
        turn.ended_ms = self.now_ms()
        return turn

    def answered(self, after: int) -> ResponseRecord | None:
        """The first response numbered above ``after`` with audio heard to its end."""
        for record in self.report.responses:
            if record.number > after and record.heard_to_end:
                return record
        return None

    def with_audio(self, after: int) -> ResponseRecord | None:
        """The first response numbered above ``after`` whose audio started."""
        for record in self.report.responses:
            if record.number > after and record.item_ids:
                return record
        return None


async def _post_twiml(url: str, token: str, params: dict[str, str]) -> tuple[int, str]:
    from aiohttp import ClientSession, ClientTimeout

    from voicewire_twilio.protocol import SIGNATURE_HEADER, compute_signature

    headers = {SIGNATURE_HEADER: compute_signature(token, url, params)}
    async with (
        ClientSession(timeout=ClientTimeout(total=_GUARD_S)) as session,
        session.post(url, data=params, headers=headers) as response,
    ):
        return response.status, await response.text()


def _stream_url(twiml: str) -> str | None:
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError:
        return None
    stream = root.find("./Connect/Stream")
    return stream.get("url") if stream is not None else None


def _status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _check_plugins() -> None:
    from voicewire.errors import UnknownTransportError
    from voicewire.registry import get_registry

    registry = get_registry()
    needed = (
        ("twilio", "telephony_edge", "voicewire-twilio"),
        ("openai_ws", "model_transport", "voicewire-openai-ws"),
    )
    for name, kind, dist in needed:
        try:
            registry.get(name, kind)  # type: ignore[arg-type]
        except UnknownTransportError:
            raise DemoError(
                f"the demo needs the {name!r} plugin, which is not installed or is disabled"
                f" (pip install {dist}; check VOICEWIRE_DISABLE_PLUGINS)"
            ) from None


def _running_tasks(before: set[asyncio.Task[Any]]) -> list[str]:
    current = asyncio.current_task()
    return sorted(
        task.get_name()
        for task in asyncio.all_tasks() - before
        if task is not current and not task.done()
    )


async def run_demo(options: DemoOptions, out: DemoOutput) -> DemoReport:
    """Place the demo call and return what happened; the timeline is printed as it goes.

    Args:
        options: Speed and the caller's first utterance.
        out: Where the timeline goes.

    Returns:
        The report; :attr:`DemoReport.aborted` says why the call stopped early, if it did.

    Raises:
        DemoError: A plugin the demo needs is missing, or loopback sockets cannot be opened.
    """
    if not (isinstance(options.speed, (int, float)) and math.isfinite(options.speed)):
        raise DemoError(f"speed must be a finite number, got {options.speed!r}")
    if options.speed <= 0:
        raise DemoError(f"speed must be > 0, got {options.speed!r}")
    _check_plugins()
    try:
        from aiohttp import web

        from voicewire.testing.fake_realtime import DEMO_SCRIPT, FakeRealtimeServer
        from voicewire.testing.telephony import SimulatedCaller
        from voicewire_twilio.caller import TwilioDialect, new_sid
        from voicewire_twilio.server import (
            APP_KEY,
            DEFAULT_MAX_MESSAGES_PER_SECOND,
            DEFAULT_MESSAGE_BURST,
            create_app,
        )
    except ImportError as exc:
        raise DemoError(
            f"the demo needs {exc.name or 'a package'} (pip install 'voicewire[cli]'"
            " voicewire-twilio voicewire-openai-ws)"
        ) from None
    from voicewire.config import FunctionTool, SessionConfig

    before = set(asyncio.all_tasks())
    demo = _Demo(options, out)
    report = demo.report
    capture = _LogCapture(demo)
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    for logger in loggers:
        logger.addHandler(capture)
    token = secrets.token_urlsafe(24)
    fake = FakeRealtimeServer(
        mode="script",
        script=DEMO_SCRIPT,
        pace=options.speed,
        api_key=DEMO_API_KEY,
        seed="voicewire demo",
    )
    runner: web.AppRunner | None = None
    caller: SimulatedCaller | None = None
    try:
        try:
            report.fake_url = await fake.start()
        except OSError as exc:
            raise DemoError(f"cannot listen on 127.0.0.1: {exc.strerror or exc}") from None
        app = create_app(
            realtime_url=report.fake_url,
            api_key=DEMO_API_KEY,
            model="gpt-realtime",
            twilio_auth_token=token,
            session_config=SessionConfig(
                instructions=_INSTRUCTIONS,
                tools=(FunctionTool(name=TOOL_NAME, description="The current local time."),),
            ),
            shutdown_timeout=5.0,
            # The limit is per wall-clock second; a faster call time sends more per second.
            max_messages_per_second=DEFAULT_MAX_MESSAGES_PER_SECOND * max(1.0, options.speed),
            message_burst=DEFAULT_MESSAGE_BURST * max(1.0, options.speed),
            on_call=demo.on_call,
        )
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
        except OSError as exc:
            raise DemoError(f"cannot listen on 127.0.0.1: {exc.strerror or exc}") from None
        host, port = runner.addresses[0][:2]
        report.bridge_url = f"http://{host}:{port}"
        demo.t0 = demo.loop.time()  # call time 0: everything is listening
        demo.line("demo", f"fake model on {report.fake_url} (script: {TOOL_NAME}, long answer)")
        demo.line("demo", f"bridge on {report.bridge_url} (signatures checked, random auth token)")
        server = app[APP_KEY]
        caller = await _place_call(demo, token, SimulatedCaller, TwilioDialect, new_sid)
        await _converse(demo, caller)
        await _hang_up(demo, caller)
        await server.wait_for_calls(0, timeout=_GUARD_S)
    except (_StepFailed, TimeoutError) as exc:
        report.aborted = str(exc)
        demo.line("demo", f"stopped: {exc}", alert=True)
    except DemoError:
        raise
    except Exception as exc:  # whatever went wrong, the summary says what was reached
        report.aborted = f"{type(exc).__name__}: {exc}"
        demo.line("demo", f"stopped: {report.aborted}", alert=True)
    finally:
        if caller is not None:
            await caller.close()
        if runner is not None:
            await runner.cleanup()
        with contextlib.suppress(TimeoutError):
            if fake.sessions:
                await fake.wait_closed(0, timeout=_GUARD_S)
        await fake.close()
        for logger in loggers:
            logger.removeHandler(capture)
    if fake.sessions:
        record = fake.session(0)
        report.model_record = record
        report.model_closed = record.closed
    if demo.bridge is not None:
        report.bridge_stats = demo.bridge.stats
    for interruption in report.interruptions:
        # Not fixed by a later answer (there was none): nothing was heard after the clear.
        cut = (
            report.items.get(interruption.truncations[0].item_id)
            if interruption.truncations
            else None
        )
        if interruption.heard_ms is None and cut is not None and report.caller is not None:
            heard = len(report.caller.heard) - cut.offset_bytes
            interruption.heard_ms = MULAW_8K.duration_ms(max(0, heard))
    await asyncio.sleep(0)
    report.leaked_tasks = _running_tasks(before)
    demo.line("demo", "fake model, bridge and caller closed")
    return report


async def _place_call(
    demo: _Demo,
    token: str,
    caller_class: Any,
    dialect_class: Any,
    new_sid: Callable[[str], str],
) -> SimulatedCaller:
    """Fetch the TwiML, show a forged upgrade refused, connect signed; return the caller."""
    report = demo.report
    call_sid, account_sid = new_sid("CA"), new_sid("AC")
    report.call_sid = call_sid
    webhook = report.bridge_url + "/twiml"
    params = {
        "AccountSid": account_sid,
        "CallSid": call_sid,
        "From": "+15005550006",
        "To": "+15005550001",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    try:
        status, body = await _post_twiml(webhook, token, params)
    except Exception as exc:
        raise _StepFailed(f"POST /twiml failed: {type(exc).__name__}: {exc}") from None
    report.webhook_status = status
    report.stream_url = _stream_url(body) if status == 200 else None
    if report.stream_url is None:
        raise _StepFailed(f"POST /twiml answered {status} without a <Stream url>")
    demo.line("caller", f"POST /twiml (signed) -> {status}, TwiML <Stream url={report.stream_url}>")

    # A request signed with another token must not get in.
    forged = caller_class(
        report.stream_url, dialect_class(auth_token=token + "-forged"), open_timeout=_GUARD_S
    )
    demo.expected_log = "rejected /media-stream"  # the bridge's warning about it
    try:
        await forged.start()
    except Exception as exc:
        report.forged_status = _status_of(exc)
    finally:
        demo.expected_log = None
        await forged.close()
    demo.line(
        "bridge",
        f"upgrade signed with a wrong token refused: HTTP {report.forged_status or '-'}",
        alert=report.forged_status != 403,
    )

    dialect = dialect_class(auth_token=token, call_sid=call_sid, account_sid=account_sid)
    caller: SimulatedCaller = caller_class(
        report.stream_url, dialect, speed=demo.speed, strict=False, open_timeout=_GUARD_S
    )
    try:
        await caller.start()
    except Exception as exc:
        await caller.close()
        raise _StepFailed(f"the signed upgrade was refused: {type(exc).__name__}: {exc}") from None
    demo.caller = caller
    report.caller = caller
    report.signed_upgrade = True
    report.caller_offset_ms = demo.now_ms() - caller.now_ms()
    demo.line("caller", "signed upgrade accepted; sends 'connected', 'start', then media")
    await demo.until(lambda: report.call_started, "the bridge never reported call_start", call_ms=0)
    return caller


async def _converse(demo: _Demo, caller: SimulatedCaller) -> None:
    """Turn 1 (tool call), turn 2 (barge-in), the answer to the interruption."""
    from voicewire.testing.fake_realtime import DEMO_SCRIPT, speech_like

    report = demo.report
    options = demo.options
    turn1_text = DEMO_SCRIPT.turns[0].user or "What time is it?"
    turn2_text = DEMO_SCRIPT.turns[1].user or "Tell me about the opening hours."
    if options.first_turn is not None:
        turn1_audio = options.first_turn
        turn1_text = options.first_turn_label or "(WAV file)"
    else:
        turn1_audio = speech_like(1400, MULAW_8K, seed=turn1_text)
    await demo.say("turn 1", turn1_text, turn1_audio)
    await demo.until(
        lambda: bool(report.tool_calls),
        f"turn 1: the model never called {TOOL_NAME} (did it hear the caller?)",
        call_ms=2000,
    )
    await demo.until(
        lambda: demo.answered(0) is not None,
        "turn 1: the answer after the function call was not heard to its end",
        call_ms=12000,
    )
    answered = demo.answered(0)
    assert answered is not None

    await demo.say("turn 2", turn2_text, speech_like(1600, MULAW_8K, seed=turn2_text))
    await demo.until(
        lambda: demo.with_audio(answered.number) is not None,
        "turn 2: the model did not start answering",
        call_ms=3000,
    )
    long_answer = demo.with_audio(answered.number)
    assert long_answer is not None
    item = report.items[long_answer.item_ids[0]]
    try:
        await caller.wait_heard(
            item.offset_bytes + MULAW_8K.nbytes_for_ms(BARGE_IN_AFTER_MS),
            timeout=BARGE_IN_AFTER_MS / 1000.0 / demo.speed + _GUARD_S,
        )
    except TimeoutError:
        raise _StepFailed("turn 2: the caller never heard the long answer") from None
    demo.line("caller", f"has heard {_ms(BARGE_IN_AFTER_MS)} of the answer and talks over it")
    stop_watching = asyncio.Event()
    watcher = asyncio.get_running_loop().create_task(
        demo.watch_lag(stop_watching), name="voicewire-demo-lag"
    )
    try:
        await demo.say("barge-in", "Sorry, I have to go.", speech_like(900, MULAW_8K, seed="barge"))
        await demo.until(
            lambda: bool(report.interruptions),
            "barge-in: the bridge never interrupted",
            call_ms=1000,
        )
        try:
            entry = await caller.wait_entry("clear_received", timeout=_GUARD_S)
        except TimeoutError:
            raise _StepFailed("barge-in: the caller never received a clear") from None
    finally:
        stop_watching.set()
        await watcher
    queued = entry.detail.get("queued_bytes", 0)
    pending = entry.detail.get("pending_marks", 0)
    queued_ms = MULAW_8K.duration_ms(queued) if isinstance(queued, int) else 0.0
    demo.line(
        "caller",
        f"'clear' received: {_ms(queued_ms)} of queued audio dropped, {pending} marks returned",
        at_ms=report.caller_time(entry),
    )
    await demo.until(
        lambda: demo.answered(long_answer.number) is not None,
        "after the barge-in: the model's answer was not heard to its end",
        call_ms=6000,
    )


async def _hang_up(demo: _Demo, caller: SimulatedCaller) -> None:
    """Press a key, then hang up, and wait for the bridge to end the call."""
    report = demo.report
    demo.line("caller", f"presses {DTMF_KEY!r}")
    await caller.press(DTMF_KEY)
    await demo.until(lambda: bool(report.dtmf), "the DTMF key never reached the app", call_ms=0)
    demo.line("caller", "hangs up ('stop')")
    await caller.hang_up()
    await demo.until(
        lambda: report.call_stop_reason is not None, "the bridge never ended the call", call_ms=0
    )
