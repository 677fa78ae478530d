"""What the demo concludes from a :class:`~voicewire.demo.scenario.DemoReport`.

:func:`summary_rows` gives the figures (turns, time to first audio, interruptions, truncation
accuracy, frames each way, errors), :func:`evaluate` checks every expectation of the scripted
call, and :func:`save_audio` writes what the caller heard and said as WAV files.
"""

from __future__ import annotations

import wave
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from voicewire.audio.formats import MULAW_8K
from voicewire.audio.g711 import mulaw_decode
from voicewire.demo.scenario import (
    DTMF_KEY,
    TOOL_NAME,
    TRUNCATION_TOLERANCE_MS,
    DemoReport,
    InterruptionRecord,
    ResponseRecord,
)

__all__ = [
    "HEARD_WAV",
    "SAID_WAV",
    "Check",
    "evaluate",
    "save_audio",
    "summary_rows",
    "machine_too_busy",
    "time_to_first_audio",
    "truncation_error_ms",
]

HEARD_WAV = "caller-heard.wav"
"""What the caller heard: the bridge's audio as played, without what a clear dropped."""

SAID_WAV = "caller-said.wav"
"""What the caller sent: its speech and the silence between, as the bridge received it."""


@attrs.frozen
class Check:
    """One expectation of the demo call.

    Attributes:
        passed: Whether it held.
        name: What was expected, in a few words.
        evidence: The figures behind the verdict.
    """

    passed: bool
    name: str
    evidence: str


def _ms(value: float) -> str:
    return f"{value:.0f} ms"


def _s(value_ms: float) -> str:
    return f"{value_ms / 1000.0:.2f} s"


def _short(value: str) -> str:
    return value if len(value) <= 14 else value[:10] + "…"


# -- locating things in the report ------------------------------------------------------------


def _tool_response(report: DemoReport) -> ResponseRecord | None:
    return next((r for r in report.responses if r.function_calls), None)


def _audio_after(report: DemoReport, number: int) -> ResponseRecord | None:
    return next((r for r in report.responses if r.number > number and r.item_ids), None)


def _interrupted(report: DemoReport) -> tuple[InterruptionRecord | None, ResponseRecord | None]:
    if not report.interruptions:
        return None, None
    first = report.interruptions[0]
    response = next((r for r in report.responses if r.response_id == first.response_id), None)
    return first, response


def truncation_error_ms(report: DemoReport) -> float | None:
    """How far the first truncation point is from what the caller heard of that item."""
    interruption, _ = _interrupted(report)
    if interruption is None or not interruption.truncations or interruption.heard_ms is None:
        return None
    return abs(interruption.truncations[0].audio_end_ms - interruption.heard_ms)


def machine_too_busy(report: DemoReport) -> bool:
    """Whether event-loop lag around the barge-in, times ``speed``, could blur the truncation.

    The caller's playback clock runs ``speed`` times faster than the wall clock while the
    sockets and the scheduler do not, so every millisecond the process waits for a CPU moves
    what the caller heard by ``speed`` milliseconds of call time.
    """
    lag = report.loop_lag_ms
    return lag is not None and lag * report.speed > TRUNCATION_TOLERANCE_MS / 2


def time_to_first_audio(report: DemoReport) -> list[tuple[str, float | None]]:
    """Per caller turn: call time from the end of its audio to the first answer audio heard.

    It includes the model's end-of-turn silence (its VAD waits for a pause), the function call
    of turn 1, and every hop over the loopback sockets.
    """
    caller = report.caller
    result: list[tuple[str, float | None]] = []
    if caller is None:
        return result
    starts = [report.caller_time(e) for e in caller.entries("playback_started")]
    for turn in report.turns:
        if turn.ended_ms is None:
            result.append((turn.label, None))
            continue
        later = [t for t in starts if t >= turn.ended_ms]
        result.append((turn.label, later[0] - turn.ended_ms if later else None))
    return result


# -- the figures ------------------------------------------------------------------------------


def summary_rows(report: DemoReport) -> list[tuple[str, str]]:
    """The summary table: one (figure, value) pair per row."""
    rows: list[tuple[str, str]] = []
    caller = report.caller
    responses = report.responses
    cancelled = sum(1 for r in responses if r.status not in (None, "completed"))
    calls = sum(len(r.function_calls) for r in responses)
    rows.append(
        (
            "Turns",
            f"{len(report.turns)} caller turns; {len(responses)} model responses"
            f" ({calls} function call, {cancelled} interrupted)",
        )
    )
    ttfa = time_to_first_audio(report)
    if ttfa:
        parts = [f"{label}: {_ms(v) if v is not None else '-'}" for label, v in ttfa]
        rows.append(("Time to first audio", "; ".join(parts)))
    interruption, interrupted = _interrupted(report)
    if interruption is None:
        rows.append(("Interruptions", "0"))
    else:
        which = f"response {interrupted.number}" if interrupted is not None else "a response"
        rows.append(
            (
                "Interruptions",
                f"{len(report.interruptions)}: {which}"
                f" ({interrupted.status if interrupted is not None else '?'})",
            )
        )
    error = truncation_error_ms(report)
    if interruption is not None and interruption.truncations:
        cut = interruption.truncations[0]
        heard = _ms(interruption.heard_ms) if interruption.heard_ms is not None else "?"
        off = _ms(error) if error is not None else "?"
        lag = report.loop_lag_ms
        late = f"; event loop late by {lag:.1f} ms at most" if lag is not None else ""
        rows.append(
            (
                "Truncation",
                f"item {_short(cut.item_id)} cut at {cut.audio_end_ms} ms; the caller heard"
                f" {heard} of it: off by {off} (limit {_ms(TRUNCATION_TOLERANCE_MS)}){late}",
            )
        )
    stats = report.bridge_stats
    if caller is not None:
        counts = caller.counts
        sent_ms = MULAW_8K.duration_ms(len(caller.sent))
        echoed = counts["marks_played"] + counts["marks_cleared"]
        received = caller.entries("audio_received")
        got = f"; bridge got {stats.caller_chunks}" if stats is not None else ""
        rows.append(
            (
                "Frames caller -> bridge",
                f"{counts['media_sent']} media ({_s(sent_ms)}){got}; {len(caller.entries('dtmf'))}"
                f" dtmf; {echoed} marks echoed ({counts['marks_played']} played,"
                f" {counts['marks_cleared']} cleared); {len(caller.entries('stop_sent'))} stop",
            )
        )
        rows.append(
            (
                "Frames bridge -> caller",
                f"{len(received)} media ({_s(MULAW_8K.duration_ms(len(caller.received)))});"
                f" {counts['marks_received']} marks; {counts['clears']} clear",
            )
        )
        rows.append(
            (
                "Audio heard",
                f"{_s(caller.heard_ms)} of {_s(MULAW_8K.duration_ms(len(caller.received)))}"
                f" received ({_ms(MULAW_8K.duration_ms(counts['audio_bytes_cleared']))} dropped"
                " by the clear)",
            )
        )
    violations = len(caller.violations) if caller is not None else 0
    rows.append(
        (
            "Errors",
            f"{len(report.errors)} error events or warnings; {violations} Twilio dialect"
            " violations",
        )
    )
    return rows


# -- the checks -------------------------------------------------------------------------------


def evaluate(report: DemoReport) -> list[Check]:
    """Check every expectation of the scripted call, in the order things happen."""
    checks: list[Check] = []
    add = checks.append
    if report.aborted is not None:
        add(Check(False, "the call ran to its end", report.aborted))
    add(
        Check(
            report.webhook_status == 200 and (report.stream_url or "").endswith("/media-stream"),
            "signed webhook answered",
            f"POST /twiml -> {report.webhook_status}, <Stream url={report.stream_url}>",
        )
    )
    add(
        Check(
            report.forged_status == 403,
            "forged signature refused",
            f"upgrade signed with a wrong token -> HTTP {report.forged_status}",
        )
    )
    add(
        Check(
            report.signed_upgrade and report.call_started,
            "signed upgrade accepted",
            "call_start carried the caller's CallSid"
            if report.call_started
            else "no call_start with the caller's CallSid",
        )
    )
    record = report.model_record
    add(
        Check(
            record is not None and record.auth == "matched",
            "model session authenticated",
            f"API key check at the model: {record.auth if record is not None else 'no session'}",
        )
    )
    _check_turn_one(report, add)
    _check_barge_in(report, add)
    caller = report.caller
    add(
        Check(
            report.dtmf == [DTMF_KEY],
            "DTMF reached the application",
            f"keys received: {report.dtmf}",
        )
    )
    add(
        Check(
            report.call_stop_reason == "stop" and report.model_closed,
            "hang-up ended the call",
            f"call_stop reason {report.call_stop_reason!r}; model WebSocket"
            f" {'closed' if report.model_closed else 'still open'}",
        )
    )
    _check_frames(report, add)
    violations = caller.violations if caller is not None else ()
    add(
        Check(
            not report.errors and not violations,
            "no errors",
            "; ".join([*report.errors[:2], *violations[:2]])
            or "no error event, warning or dialect violation",
        )
    )
    add(
        Check(
            not report.leaked_tasks,
            "nothing left running",
            f"tasks still running: {', '.join(report.leaked_tasks)}"
            if report.leaked_tasks
            else "every socket and task closed",
        )
    )
    return checks


def _check_turn_one(report: DemoReport, add: Callable[[Check], None]) -> None:
    tool = _tool_response(report)
    answered = [c for c in report.tool_calls if c.name == TOOL_NAME and c.error is None]
    add(
        Check(
            tool is not None and tool.function_calls == [TOOL_NAME] and len(answered) == 1,
            f"turn 1: {TOOL_NAME} called and answered",
            f"{TOOL_NAME} -> {answered[0].output}" if answered else "no answered call",
        )
    )
    answer = _audio_after(report, tool.number) if tool is not None else None
    add(
        Check(
            answer is not None and answer.heard_to_end,
            "turn 1: answer heard to its end",
            f"response {answer.number}: {answer.marks} marks acknowledged"
            if answer is not None
            else "the model did not speak after the function call",
        )
    )


def _check_barge_in(report: DemoReport, add: Callable[[Check], None]) -> None:
    interruption, interrupted = _interrupted(report)
    caller = report.caller
    clears = caller.counts["clears"] if caller is not None else 0
    add(
        Check(
            len(report.interruptions) == 1
            and clears == 1
            and interrupted is not None
            and interrupted.status == "cancelled",
            "turn 2: barge-in interrupted the answer",
            f"{len(report.interruptions)} interruption(s), {clears} clear(s) at the caller,"
            f" response status {interrupted.status if interrupted is not None else '-'}",
        )
    )
    error = truncation_error_ms(report)
    evidence = "no truncation"
    if interruption is not None and interruption.truncations:
        cut = interruption.truncations[0]
        heard = interruption.heard_ms
        evidence = (
            f"cut at {cut.audio_end_ms} ms, heard {_ms(heard) if heard is not None else '?'}"
            f" (off by {_ms(error) if error is not None else '?'})"
        )
    passed = error is not None and error <= TRUNCATION_TOLERANCE_MS
    if not passed and error is not None and machine_too_busy(report):
        lag = report.loop_lag_ms or 0.0
        evidence += (
            f"; the event loop was up to {lag:.0f} ms late (x{report.speed:g} speed ="
            f" {lag * report.speed:.0f} ms of call time): the machine is too busy to measure"
            " this at this --speed, try a lower one"
        )
    add(
        Check(
            passed,
            f"truncation within {_ms(TRUNCATION_TOLERANCE_MS)} of what was heard",
            evidence,
        )
    )
    record = report.model_record
    accepted = [t for t in record.truncations if t.accepted] if record is not None else []
    asked = (
        interruption.truncations[0].audio_end_ms
        if interruption and interruption.truncations
        else None
    )
    add(
        Check(
            len(accepted) == 1 and accepted[0].audio_end_ms == asked,
            "model accepted the truncation",
            f"conversation.item.truncate audio_end_ms={accepted[0].audio_end_ms}"
            f" (model had sent {accepted[0].audio_sent_ms} ms)"
            if accepted
            else "no accepted conversation.item.truncate",
        )
    )
    after = _audio_after(report, interrupted.number) if interrupted is not None else None
    add(
        Check(
            after is not None and after.heard_to_end,
            "after the barge-in: answer heard",
            f"response {after.number}: {after.transcript.strip()!r}"
            if after is not None
            else "no answer after the interruption",
        )
    )
    if caller is not None and interruption is not None and after is not None:
        cleared_at = [report.caller_time(e) for e in caller.entries("clear_received")]
        late = 0
        if cleared_at:
            late = sum(
                int(nbytes)
                for e in caller.entries("audio_received")
                if report.caller_time(e) > cleared_at[0]
                and isinstance(nbytes := e.detail.get("nbytes"), int)
            )
        expected = sum(report.items[i].audio_bytes for i in after.item_ids)
        add(
            Check(
                late == expected,
                "nothing of the cut answer after the clear",
                f"audio received after the clear: {_ms(MULAW_8K.duration_ms(late))}, all of it"
                f" the next answer ({_ms(MULAW_8K.duration_ms(expected))})"
                if late == expected
                else f"{_ms(MULAW_8K.duration_ms(late - expected))} of late audio",
            )
        )


def _check_frames(report: DemoReport, add: Callable[[Check], None]) -> None:
    caller, stats = report.caller, report.bridge_stats
    if caller is None or stats is None:
        add(Check(False, "every frame accounted for", "the call never started"))
        return
    counts = caller.counts
    echoed = counts["marks_played"] + counts["marks_cleared"]
    media_ok = counts["media_sent"] == stats.caller_chunks
    audio_ok = stats.edge_bytes_played == len(caller.received)
    marks_ok = counts["marks_received"] == echoed == stats.acknowledgements
    add(
        Check(
            media_ok and audio_ok and marks_ok,
            "every frame arrived",
            f"media {counts['media_sent']} sent / {stats.caller_chunks} received;"
            f" audio {stats.edge_bytes_played} / {len(caller.received)} bytes;"
            f" marks {counts['marks_received']} sent / {echoed} echoed",
        )
    )
    add(
        Check(
            stats.caller_unaccounted_bytes == 0 and stats.model_unaccounted_bytes == 0,
            "bridge lost no audio",
            f"unaccounted bytes: caller {stats.caller_unaccounted_bytes},"
            f" model {stats.model_unaccounted_bytes}",
        )
    )


# -- audio files ------------------------------------------------------------------------------


def _write_wav(path: Path, mulaw: bytes) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(MULAW_8K.sample_rate)
        wav.writeframes(mulaw_decode(mulaw))


def save_audio(report: DemoReport, directory: Path) -> Sequence[Path]:
    """Write :data:`HEARD_WAV` and :data:`SAID_WAV` (PCM16, 8 kHz, mono) into ``directory``.

    Returns:
        The paths written (none if the call never started).

    Raises:
        OSError: A file cannot be written.
    """
    caller = report.caller
    if caller is None:
        return ()
    directory.mkdir(parents=True, exist_ok=True)
    heard, said = directory / HEARD_WAV, directory / SAID_WAV
    _write_wav(heard, caller.heard)
    _write_wav(said, caller.sent)
    return (heard, said)
