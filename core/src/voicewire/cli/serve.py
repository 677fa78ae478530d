"""``voicewire serve``: run a telephony bridge server.

The server itself belongs to the telephony plugin: the core only reads the flags and the
environment, checks them, and hands a :class:`ServeSettings` to the plugin. It finds the plugin
through the registry: the factory registered for the telephony edge named by ``--telephony``
carries a :data:`SERVE_ATTRIBUTE` (``voicewire_serve``) attribute, a :class:`ServeRunner`. Any
telephony plugin can serve the same way::

    class MyEdgeFactory:
        voicewire_serve = staticmethod(my_serve)     # async def my_serve(settings, ready)

        def __call__(self, **options): return MyEdge(**options)

    registry.add_telephony_edge("myprovider", MyEdgeFactory())
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, Literal, Protocol, runtime_checkable

import attrs

from voicewire.cli.base import CliCommand, CommandError, setup_tracing, telephony_edge_spec

if TYPE_CHECKING:
    from voicewire.registry import Registry

__all__ = [
    "COMMAND",
    "DEFAULT_REALTIME_URL",
    "SERVE_ATTRIBUTE",
    "ServeRunner",
    "ServeSettings",
    "find_serve_runner",
    "settings_from_args",
]

SERVE_ATTRIBUTE: Final = "voicewire_serve"
"""The attribute of a telephony edge's registry factory that makes ``voicewire serve`` work."""

DEFAULT_REALTIME_URL: Final = "wss://api.openai.com/v1/realtime"
"""``--realtime-url`` when neither the flag nor ``VOICEWIRE_REALTIME_URL`` is given."""

_DEFAULT_SHUTDOWN_TIMEOUT: Final = 30.0

_ACCOUNT_SID: Final = re.compile(r"AC[0-9a-fA-F]{32}")

TraceMode = Literal["none", "console", "otlp"]


def _redact(value: object) -> str:
    return "None" if value is None else "'***'"


@attrs.frozen(kw_only=True)
class ServeSettings:
    """What ``voicewire serve`` hands to a telephony plugin's :class:`ServeRunner`.

    Secrets (``api_key``, ``auth_token``) never appear in the repr.

    Attributes:
        host: Interface to listen on.
        port: TCP port (0 picks a free one).
        realtime_url: The model's WebSocket endpoint.
        api_key: The model's API key (``OPENAI_API_KEY``), if any.
        model: The model name, if given.
        instructions: Session instructions, if given.
        voice: Output voice, if given.
        public_url: The public base URL the provider reaches, if given.
        telephony: The telephony edge's registry name.
        model_transport: The model transport's registry name.
        auth_token: The provider's request-signing secret (``--twilio-auth-token`` /
            ``TWILIO_AUTH_TOKEN``), if any.
        account_sid: The Twilio account (``AC...``) every stream must belong to
            (``--twilio-account-sid`` / ``TWILIO_ACCOUNT_SID``), if given. Runners of other
            providers ignore it.
        require_call_token: Bind each stream to the signed webhook of its call with a call
            token in the TwiML (Twilio: ``create_app(require_call_token=True)``).
        insecure_skip_signature: Accept unsigned requests.
        trace: The requested tracing mode.
        shutdown_timeout: Seconds active calls get to finish on shutdown.
        max_calls: Calls carried at once; the server answers more with 503. ``None``: no limit.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    realtime_url: str = DEFAULT_REALTIME_URL
    api_key: str | None = attrs.field(default=None, repr=_redact)
    model: str | None = None
    instructions: str | None = None
    voice: str | None = None
    public_url: str | None = None
    telephony: str = "twilio"
    model_transport: str = "openai_ws"
    auth_token: str | None = attrs.field(default=None, repr=_redact)
    account_sid: str | None = None
    require_call_token: bool = False
    insecure_skip_signature: bool = False
    trace: TraceMode = "none"
    shutdown_timeout: float = _DEFAULT_SHUTDOWN_TIMEOUT
    max_calls: int | None = None


@runtime_checkable
class ServeRunner(Protocol):
    """Runs a telephony plugin's server until cancelled.

    It must call ``ready(url)`` once listening (``url`` is ``http://HOST:PORT``), and shut down
    gracefully when cancelled. A :class:`~voicewire.errors.ConfigError` (or any
    ``VoicewireError``) raised before ``ready`` ends the command with its message.
    """

    def __call__(self, settings: ServeSettings, ready: Callable[[str], None]) -> Awaitable[None]:
        """Serve."""
        ...


def find_serve_runner(telephony: str, registry: Registry | None = None) -> ServeRunner:
    """The :class:`ServeRunner` of the telephony edge registered as ``telephony``.

    Args:
        telephony: The edge's registry name.
        registry: Where to look; the process-wide registry by default.

    Raises:
        CommandError: No such edge, or its plugin offers no server.
    """
    spec = telephony_edge_spec(telephony, registry)
    runner = getattr(spec.factory, SERVE_ATTRIBUTE, None)
    if runner is None or not callable(runner):
        owner = f"plugin {spec.plugin!r}" if spec.plugin else "the application"
        raise CommandError(
            f"the telephony edge {telephony!r} (registered by {owner}) offers no server:"
            f" its registry factory has no {SERVE_ATTRIBUTE!r} attribute"
        )
    return runner  # type: ignore[no-any-return]


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """Combine the flags with the environment and check what can be checked up front.

    Raises:
        CommandError: No auth token and no ``--insecure-skip-signature``, or another unusable
            value.
    """
    auth_token = args.twilio_auth_token or _env("TWILIO_AUTH_TOKEN")
    if not auth_token and not args.insecure_skip_signature:
        raise CommandError(
            "refusing to start without a Twilio auth token: requests could not be verified as"
            " coming from Twilio; pass --twilio-auth-token or set TWILIO_AUTH_TOKEN"
            " (--insecure-skip-signature turns the check off, for local testing only)"
        )
    account_sid = args.twilio_account_sid or _env("TWILIO_ACCOUNT_SID")
    if account_sid is not None and not _ACCOUNT_SID.fullmatch(account_sid):
        raise CommandError(
            "--twilio-account-sid (or TWILIO_ACCOUNT_SID) must be AC and 32 hex digits,"
            f" got {account_sid[:40]!r}"
        )
    if args.require_call_token and args.insecure_skip_signature:
        raise CommandError(
            "--require-call-token needs signature checks: drop --insecure-skip-signature"
        )
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port must be within 0..65535, got {args.port}")
    if args.max_calls is not None and args.max_calls < 1:
        raise CommandError(f"--max-calls must be at least 1, got {args.max_calls}")
    if not 0 <= args.shutdown_timeout < math.inf:
        raise CommandError(
            f"--shutdown-timeout must be a finite number of seconds >= 0, got {args.shutdown_timeout}"
        )
    return ServeSettings(
        host=args.host,
        port=args.port,
        realtime_url=args.realtime_url or _env("VOICEWIRE_REALTIME_URL") or DEFAULT_REALTIME_URL,
        api_key=_env("OPENAI_API_KEY"),
        model=args.model,
        instructions=args.instructions,
        voice=args.voice,
        public_url=args.public_url or _env("VOICEWIRE_PUBLIC_URL"),
        telephony=args.telephony,
        model_transport=args.model_transport,
        auth_token=auth_token,
        account_sid=account_sid,
        require_call_token=args.require_call_token,
        insecure_skip_signature=args.insecure_skip_signature,
        trace=args.trace,
        shutdown_timeout=args.shutdown_timeout,
        max_calls=args.max_calls,
    )


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0: any)")
    parser.add_argument(
        "--realtime-url",
        metavar="URL",
        help="model endpoint (default: $VOICEWIRE_REALTIME_URL or " + DEFAULT_REALTIME_URL + ")",
    )
    parser.add_argument("--model", metavar="NAME", help="model name")
    parser.add_argument("--instructions", metavar="TEXT", help="session instructions")
    parser.add_argument("--voice", metavar="NAME", help="output voice")
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="public https:// base URL the provider reaches (default: $VOICEWIRE_PUBLIC_URL)",
    )
    parser.add_argument(
        "--twilio-auth-token",
        metavar="TOKEN",
        help="Twilio auth token for X-Twilio-Signature (default: $TWILIO_AUTH_TOKEN)",
    )
    parser.add_argument(
        "--twilio-account-sid",
        metavar="SID",
        help="the Twilio account (AC...) every stream's 'start' must name"
        " (default: $TWILIO_ACCOUNT_SID; none: no check)",
    )
    parser.add_argument(
        "--require-call-token",
        action="store_true",
        help="end a stream whose 'start' lacks the call token this server's /twiml put in the"
        " TwiML (stops replayed upgrades; needs /twiml as the call's TwiML)",
    )
    parser.add_argument(
        "--telephony", default="twilio", metavar="NAME", help="telephony edge (default twilio)"
    )
    parser.add_argument(
        "--model-transport",
        default="openai_ws",
        metavar="NAME",
        help="model transport (default openai_ws)",
    )
    parser.add_argument(
        "--insecure-skip-signature",
        action="store_true",
        help="accept unsigned requests (local testing only)",
    )
    parser.add_argument(
        "--trace",
        choices=("none", "console", "otlp"),
        default="none",
        help="tracing output (default none)",
    )
    parser.add_argument(
        "--max-calls",
        type=int,
        metavar="N",
        help="calls carried at once; more are answered 503 (default: no limit)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=_DEFAULT_SHUTDOWN_TIMEOUT,
        metavar="SECONDS",
        help="on SIGTERM, how long calls in progress may go on before they are closed"
        f" (default {_DEFAULT_SHUTDOWN_TIMEOUT:g})",
    )


async def run(args: argparse.Namespace) -> int:
    """Check the configuration, find the telephony plugin's server, and run it until a signal."""
    settings = settings_from_args(args)
    runner = find_serve_runner(settings.telephony)
    tracing = setup_tracing("serve", settings.trace)
    if settings.public_url is None:
        print(
            "voicewire serve: warning: no --public-url: the TwiML points at each request's Host"
            " header, which is wrong behind a proxy or tunnel",
            file=sys.stderr,
        )

    def ready(url: str) -> None:
        print(f"listening on {url}", flush=True)

    loop = asyncio.get_running_loop()

    async def serve() -> None:
        await runner(settings, ready)

    task = loop.create_task(serve(), name="voicewire-serve")
    signalled: list[int] = []

    def stop(signum: int) -> None:
        signalled.append(signum)
        task.cancel()

    installed: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not available on every platform (Windows): Ctrl-C then arrives as KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop, signum)
            installed.append(signum)
    try:
        await task
    except asyncio.CancelledError:
        if not signalled:
            raise
        print("voicewire serve: stopped", file=sys.stderr)
    finally:
        for number in installed:
            loop.remove_signal_handler(number)
        if tracing is not None:
            tracing.shutdown()  # flushes: console prints what is still open
    return 0


COMMAND = CliCommand(
    name="serve",
    help="run the telephony bridge server (Twilio by default)",
    description=(
        "Run the bridge server of a telephony plugin (default: twilio): the provider's webhook"
        " (POST /twiml), its media-stream WebSocket (GET /media-stream) and GET /healthz, each"
        " call joined to a model transport (default: openai_ws). Prints 'listening on"
        " http://HOST:PORT' first. Environment: OPENAI_API_KEY, VOICEWIRE_REALTIME_URL,"
        " TWILIO_AUTH_TOKEN, TWILIO_ACCOUNT_SID, VOICEWIRE_PUBLIC_URL. Refuses to start"
        " without a Twilio auth token unless --insecure-skip-signature is given. Stops on"
        " SIGINT/SIGTERM, letting active calls finish (up to --shutdown-timeout)."
    ),
    configure=_configure,
    run=run,
)
