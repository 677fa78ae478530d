"""``voicewire call``: a simulated phone caller against a running bridge.

It speaks the dialect of the telephony edge named by ``--telephony`` (default ``twilio``): the
registry factory of that edge carries a :data:`DIALECT_ATTRIBUTE` (``voicewire_caller_dialect``)
attribute, a callable returning a :class:`voicewire.testing.telephony.CallerDialect`. With
``--webhook URL`` the call starts the way the provider starts one: the factory's
:data:`WEBHOOK_ATTRIBUTE` (``voicewire_caller_webhook``), an async callable
``(webhook_url, **options) -> (stream_url, dialect)``, rings the bridge's webhook and returns the
stream to open and the dialect for that call.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from typing import TYPE_CHECKING, Any, Final

from voicewire.cli.base import CliCommand, CommandError, telephony_edge_spec

if TYPE_CHECKING:
    from voicewire.registry import Registry

__all__ = ["COMMAND", "DIALECT_ATTRIBUTE", "WEBHOOK_ATTRIBUTE", "find_dialect_factory"]

DIALECT_ATTRIBUTE: Final = "voicewire_caller_dialect"
"""The attribute of a telephony edge's registry factory that ``voicewire call`` uses."""

WEBHOOK_ATTRIBUTE: Final = "voicewire_caller_webhook"
"""The attribute that ``voicewire call --webhook`` uses (optional)."""


def find_dialect_factory(telephony: str, registry: Registry | None = None) -> Any:
    """The dialect factory of the telephony edge registered as ``telephony``.

    Args:
        telephony: The edge's registry name.
        registry: Where to look; the process-wide registry by default.

    Raises:
        CommandError: No such edge, or it offers no caller dialect.
    """
    spec = telephony_edge_spec(telephony, registry)
    factory = getattr(spec.factory, DIALECT_ATTRIBUTE, None)
    if factory is None or not callable(factory):
        raise CommandError(
            f"the telephony edge {telephony!r} offers no simulated caller: its registry factory"
            f" has no {DIALECT_ATTRIBUTE!r} attribute"
        )
    return factory


async def _ring(telephony: str, webhook: str, options: dict[str, Any]) -> tuple[str, Any]:
    spec = telephony_edge_spec(telephony)
    ring = getattr(spec.factory, WEBHOOK_ATTRIBUTE, None)
    if ring is None or not callable(ring):
        raise CommandError(
            f"the telephony edge {telephony!r} cannot ring a webhook: its registry factory has"
            f" no {WEBHOOK_ATTRIBUTE!r} attribute"
        )
    try:
        stream_url, dialect = await ring(webhook, **options)
    except Exception as exc:
        raise CommandError(f"the webhook {webhook} failed: {type(exc).__name__}: {exc}") from None
    return str(stream_url), dialect


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        metavar="URL",
        help="the bridge's media WebSocket (ws://...); with --webhook, where to connect instead"
        " of the stream URL of the TwiML",
    )
    parser.add_argument(
        "--webhook",
        metavar="URL",
        help="first POST the call's webhook there, as the provider does (Twilio: the bridge's"
        " /twiml), and stream as its TwiML says (its URL, parameters and call token)",
    )
    parser.add_argument(
        "--wav", metavar="FILE", help="16-bit PCM mono WAV to say (default: generated speech)"
    )
    parser.add_argument(
        "--seconds",
        type=_seconds,
        default=10.0,
        metavar="N",
        help="hang up N seconds after connecting (default 10)",
    )
    parser.add_argument(
        "--telephony", default="twilio", metavar="NAME", help="dialect to speak (default twilio)"
    )
    parser.add_argument(
        "--twilio-auth-token",
        metavar="TOKEN",
        help="sign the upgrade with this token (default: $TWILIO_AUTH_TOKEN)",
    )


async def run(args: argparse.Namespace) -> int:
    """Call the bridge, say the audio, listen until ``--seconds``, hang up, print a summary."""
    if args.url is None and args.webhook is None:
        raise CommandError(
            "give --url (the media WebSocket), --webhook (the call's webhook), or both"
        )
    if args.url is not None and not args.url.startswith(("ws://", "wss://")):
        raise CommandError(f"--url must be a ws:// or wss:// URL, got {args.url!r}")
    if args.webhook is not None and not args.webhook.startswith(("http://", "https://")):
        raise CommandError(f"--webhook must be an http:// or https:// URL, got {args.webhook!r}")
    from voicewire.testing.fake_realtime import speech_like
    from voicewire.testing.telephony import SimulatedCaller, load_wav

    token = args.twilio_auth_token or os.environ.get("TWILIO_AUTH_TOKEN") or None
    options: dict[str, Any] = {"auth_token": token} if token else {}
    if args.webhook is None:
        url, dialect = args.url, find_dialect_factory(args.telephony)(**options)
    else:
        stream_url, dialect = await _ring(args.telephony, args.webhook, options)
        print(f"the webhook answered: stream to {stream_url}", flush=True)
        url = args.url or stream_url
    fmt = dialect.audio_format
    if args.wav:
        try:
            audio = load_wav(args.wav, fmt)
        except OSError as exc:
            raise CommandError(f"cannot read {args.wav!r}: {exc.strerror or exc}") from None
    else:
        audio = speech_like(min(2000.0, args.seconds * 500), fmt, seed="voicewire call")
    caller = SimulatedCaller(url, dialect, strict=False)
    try:
        await caller.start()
    except Exception as exc:
        raise CommandError(f"cannot connect to {url}: {type(exc).__name__}: {exc}") from None
    print(f"connected to {url}", flush=True)
    try:
        caller.queue_audio(audio)
        print(f"saying {fmt.duration_ms(len(audio)):.0f} ms of audio", flush=True)
        deadline = args.seconds * 1000.0
        with contextlib.suppress(TimeoutError):
            await caller.wait_for(
                lambda: caller.closed or caller.now_ms() >= deadline,
                timeout=args.seconds + 5.0,
                what="end of call",
            )
        hung_up = not caller.closed
        if hung_up:
            await caller.hang_up()
    finally:
        await caller.close()
    counts = caller.counts
    print(
        f"heard {caller.heard_ms:.0f} ms of audio; marks: {counts['marks_received']} received,"
        f" {counts['marks_played']} played, {counts['marks_cleared']} cleared;"
        f" clears: {counts['clears']}"
    )
    if hung_up:
        print("hung up")
    else:
        print(f"the bridge closed the call (code {caller.close_code})")
    if caller.violations:
        print(
            f"voicewire call: error: the bridge broke the dialect {len(caller.violations)}"
            f" time(s); first: {caller.violations[0]}",
            file=sys.stderr,
        )
        return 1
    return 0


COMMAND = CliCommand(
    name="call",
    help="call a running bridge as a simulated phone caller (Twilio by default)",
    description=(
        "Connect to a bridge's media WebSocket as the telephony provider would (default dialect:"
        " twilio), say a WAV file or generated speech at real-time pace, play back and"
        " acknowledge the bridge's audio, hang up after --seconds and print a summary. Exits 1"
        " if the bridge broke the dialect. Signs the upgrade when a Twilio auth token is given."
        " With --webhook, rings the call's webhook first and streams as its TwiML says."
    ),
    configure=_configure,
    run=run,
)
