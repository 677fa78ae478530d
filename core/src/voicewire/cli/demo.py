"""``voicewire demo``: fake model, Twilio bridge and simulated caller in one command, offline.

Everything runs in this process over loopback sockets (see :mod:`voicewire.demo`). The command
prints the call as a timeline while it happens, then a summary and the list of expectations it
checked. It exits 0 when every expectation held, and 1 with a one-line reason otherwise.
"""

from __future__ import annotations

import argparse
import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

from voicewire.cli.base import CliCommand, CommandError, setup_tracing

if TYPE_CHECKING:
    from voicewire.demo.scenario import DemoReport
    from voicewire.demo.timeline import DemoOutput

__all__ = [
    "COMMAND",
    "MAX_SPEED",
    "MAX_WAV_SECONDS",
    "MIN_SPEED",
    "MIN_WAV_LEVEL_DBFS",
    "MIN_WAV_MS",
    "print_report",
]

MAX_SPEED: Final = 20.0
"""The fastest ``--speed``: beyond it, loopback latency times the speed blurs the figures."""

MIN_SPEED: Final = 0.25
"""The slowest ``--speed``."""

MIN_WAV_MS: Final = 300.0
"""A ``--wav`` shorter than this is refused: the model's VAD would not hear a turn."""

MAX_WAV_SECONDS: Final = 30.0
"""A ``--wav`` longer than this is refused: the demo is a short call."""

MIN_WAV_LEVEL_DBFS: Final = -40.0
"""A ``--wav`` whose loudest 20 ms stays below this is refused: the model would hear silence."""


def _loudest_dbfs(pcm16: bytes, frame_ms: int = 20, rate: int = 8000) -> float:
    import numpy as np

    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64) / 32768.0
    size = rate * frame_ms // 1000
    usable = samples[: samples.size - samples.size % size].reshape(-1, size)
    if usable.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(usable**2, axis=1)).max())
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or not MIN_SPEED <= value <= MAX_SPEED:
        raise argparse.ArgumentTypeError(
            f"must be within {MIN_SPEED:g}..{MAX_SPEED:g}, got {text!r}"
        )
    return value


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wav",
        metavar="FILE",
        help="16-bit PCM mono WAV the caller says as its first turn (default: generated speech)",
    )
    parser.add_argument(
        "--save-audio",
        metavar="DIR",
        help="write what the caller heard and said as WAV files (PCM16, 8 kHz) into DIR",
    )
    parser.add_argument(
        "--trace",
        choices=("none", "console", "otlp"),
        default="none",
        help="tracing: console prints the call's span tree; otlp exports (default none)",
    )
    parser.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="X",
        help=f"run the caller's and the model's clocks X times faster ({MIN_SPEED:g}..{MAX_SPEED:g},"
        " default 1); the checks do not change",
    )


def _load_wav(path: str) -> bytes:
    from voicewire.audio.formats import MULAW_8K
    from voicewire.errors import ConfigError
    from voicewire.testing.telephony import load_wav

    try:
        audio = load_wav(path, MULAW_8K)
    except OSError as exc:
        raise CommandError(f"--wav: cannot read {path!r}: {exc.strerror or exc}") from None
    except (ConfigError, EOFError) as exc:
        reason = str(exc)
        if isinstance(exc, ConfigError) and reason.startswith(f"{exc.field}: "):
            reason = reason[len(exc.field) + 2 :]
        raise CommandError(f"--wav: cannot use {path!r}: {reason or 'not a WAV file'}") from None
    ms = MULAW_8K.duration_ms(len(audio))
    if ms < MIN_WAV_MS:
        raise CommandError(
            f"--wav: {path!r} holds {ms:.0f} ms of audio; the caller needs at least"
            f" {MIN_WAV_MS:.0f} ms of speech"
        )
    if ms > MAX_WAV_SECONDS * 1000.0:
        raise CommandError(
            f"--wav: {path!r} holds {ms / 1000.0:.1f} s of audio; the demo takes at most"
            f" {MAX_WAV_SECONDS:.0f} s"
        )
    from voicewire.audio.g711 import mulaw_decode

    level = _loudest_dbfs(mulaw_decode(audio))
    if level < MIN_WAV_LEVEL_DBFS:
        shown = "silence" if math.isinf(level) else f"{level:.0f} dBFS"
        raise CommandError(
            f"--wav: {path!r} is too quiet (loudest 20 ms: {shown}); the model's voice activity"
            f" detection needs speech above {MIN_WAV_LEVEL_DBFS:.0f} dBFS"
        )
    return audio


def _audio_dir(path: str) -> Path:
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise CommandError(f"--save-audio: {path!r} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"--save-audio: cannot create {path!r}: {exc.strerror or exc}") from None
    if not os.access(directory, os.W_OK):
        raise CommandError(f"--save-audio: {path!r} is not writable")
    return directory


async def run(args: argparse.Namespace) -> int:
    """Run the demo call, print the timeline, the summary and the checks."""
    audio = _load_wav(args.wav) if args.wav else None
    audio_dir = _audio_dir(args.save_audio) if args.save_audio else None

    from voicewire.demo.scenario import DemoOptions, run_demo
    from voicewire.demo.timeline import make_output

    out = make_output()
    spans = io.StringIO()
    tracing = setup_tracing("demo", args.trace, spans)
    label = Path(args.wav).name if args.wav else None
    speed = "" if args.speed == 1.0 else f", run {args.speed:g}x faster than the wall clock"
    out.heading("voicewire demo")
    out.note(
        "A fake realtime model, the Twilio bridge and a simulated Twilio caller, in this process,"
        f" over loopback sockets; offline. Times are call time{speed}."
    )
    try:
        report = await run_demo(
            DemoOptions(speed=args.speed, first_turn=audio, first_turn_label=label), out
        )
    finally:
        if tracing is not None:
            tracing.shutdown()  # console: prints the traces still open and the metrics
    if args.trace == "console" and spans.getvalue():
        out.heading("Spans (--trace console; durations in wall-clock time)")
        out.raw(spans.getvalue())
    elif args.trace == "otlp" and tracing is not None:
        out.note("spans and metrics were exported over OTLP (OTEL_EXPORTER_OTLP_* settings)")
    print_report(out, report, audio_dir)
    return 0


def print_report(out: DemoOutput, report: DemoReport, audio_dir: Path | None) -> None:
    """Print the summary and the checks, save the audio; raise if an expectation failed.

    Raises:
        CommandError: An expectation failed (the first one is the message), or the audio
            cannot be written.
    """
    from voicewire.demo.summary import evaluate, save_audio, summary_rows

    out.table("Summary", ("figure", "value"), summary_rows(report))
    checks = evaluate(report)
    out.checks("Expectations", [(c.passed, c.name, c.evidence) for c in checks])
    if audio_dir is not None:
        try:
            paths = save_audio(report, audio_dir)
        except OSError as exc:
            raise CommandError(f"--save-audio: {exc.strerror or exc}") from None
        for path in paths:
            out.note(f"wrote {path}")
    failed = [c for c in checks if not c.passed]
    if failed:
        out.result(False, f"{len(failed)} of {len(checks)} expectations failed")
        first = failed[0]
        raise CommandError(f"the call did not go as expected: {first.name}: {first.evidence}")
    out.result(True, f"the call went as expected: {len(checks)} of {len(checks)} checks passed")


COMMAND = CliCommand(
    name="demo",
    help="run an offline demo call: fake model + Twilio bridge + simulated caller",
    description=(
        "Start the fake realtime model, the Twilio bridge server and a simulated Twilio caller in"
        " this process, over loopback sockets, offline, and place one call: the caller asks for"
        " the time (the model calls get_time, which the demo answers), talks over a long answer"
        " (barge-in: clear and truncation at what it heard), presses a key and hangs up. Prints"
        " a timeline, a summary and every expectation checked; exits 0 when all held, 1 with a"
        " one-line reason otherwise."
    ),
    configure=_configure,
    run=run,
)
