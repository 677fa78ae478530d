"""``voicewire serve``, ``voicewire call`` and ``voicewire fake-model``, as a user runs them.

Commands run in subprocesses over loopback; every wait has a hang guard, nothing asserts time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from voicewire.cli import CommandError, build_parser
from voicewire.cli.call import find_dialect_factory
from voicewire.cli.serve import (
    SERVE_ATTRIBUTE,
    ServeRunner,
    ServeSettings,
    find_serve_runner,
    settings_from_args,
)
from voicewire.plugins import DISABLE_ENV_VAR, PluginLoadWarning, reset_plugin_manager
from voicewire.registry import Registry

GUARD = 20.0
# --trace console needs opentelemetry-sdk (the dev environment has it).
TRACE = "console" if importlib.util.find_spec("opentelemetry.sdk") else "none"
SECRET_ENV = (
    "OPENAI_API_KEY",
    "TWILIO_AUTH_TOKEN",
    "VOICEWIRE_PUBLIC_URL",
    "VOICEWIRE_REALTIME_URL",
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV and k != DISABLE_ENV_VAR}
    env.update(extra)
    return env


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicewire", *args],
        capture_output=True,
        text=True,
        env=_env(**env),
        timeout=GUARD,
        check=False,
    )


def _error_lines(stderr: str) -> list[str]:
    # The test plugins include one that fails to import on purpose; its warning is not ours.
    return [line for line in stderr.splitlines() if "vw_test_broken" not in line and line.strip()]


class Running:
    def __init__(self, process: asyncio.subprocess.Process, first_line: str) -> None:
        self.process = process
        self.first_line = first_line

    async def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(self.process.communicate(), GUARD)
        assert self.process.returncode is not None
        return self.process.returncode, stderr.decode()


async def start_cli(*args: str, **env: str) -> Running:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voicewire",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(**env),
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), GUARD)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return Running(process, line.decode().rstrip("\n"))


@contextlib.asynccontextmanager
async def running(*args: str, **env: str) -> AsyncIterator[Running]:
    process = await start_cli(*args, **env)
    try:
        yield process
    finally:
        if process.process.returncode is None:
            process.process.kill()
            await process.process.wait()


@pytest.fixture
def registry_manager() -> Iterator[None]:
    reset_plugin_manager()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        yield
    reset_plugin_manager()


# ---------------------------------------------------------------------------------------------
# serve: configuration
# ---------------------------------------------------------------------------------------------


def test_serve_refuses_to_start_without_a_token() -> None:
    result = run_cli("serve", "--port", "0")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = _error_lines(result.stderr)
    assert line.startswith("voicewire serve: error: refusing to start without a Twilio auth token")
    assert "--insecure-skip-signature" in line


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "--trace", "loud"),
        ("serve", "--port", "many"),
        ("serve", "--max-calls", "lots"),
        ("call", "--url", "ws://x", "--seconds", "-1"),
        ("fake-model", "--mode", "parrot"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    (line,) = _error_lines(result.stderr)
    assert line.startswith("voicewire ")
    assert "error:" in line


def test_serve_needs_an_openai_key_for_openai() -> None:
    result = run_cli("serve", "--port", "0", "--insecure-skip-signature")
    assert result.returncode == 1
    lines = _error_lines(result.stderr)
    assert lines[-1].startswith("voicewire serve: error: api_key:")


def test_serve_finds_the_server_through_the_registry(registry_manager: None) -> None:
    del registry_manager
    with pytest.raises(CommandError, match="unknown telephony edge 'nope'"):
        find_serve_runner("nope")
    assert isinstance(find_serve_runner("twilio"), ServeRunner)
    assert callable(find_dialect_factory("twilio"))
    # An edge whose plugin offers no server and no caller dialect.
    registry = Registry()
    registry.add_telephony_edge("plain", lambda **options: object())
    with pytest.raises(CommandError, match=SERVE_ATTRIBUTE):
        find_serve_runner("plain", registry)
    with pytest.raises(CommandError, match="voicewire_caller_dialect"):
        find_dialect_factory("plain", registry)

    # Any telephony plugin serves the same way: an attribute on its registry factory.
    async def my_serve(settings: ServeSettings, ready: Callable[[str], None]) -> None:
        del settings, ready

    class MyFactory:
        voicewire_serve = staticmethod(my_serve)

        def __call__(self, **options: object) -> object:
            return object()

    registry.add_telephony_edge("mine", MyFactory())
    assert find_serve_runner("mine", registry) is my_serve


def test_settings_read_the_environment_and_hide_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-env")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token-secret-env")
    monkeypatch.setenv("VOICEWIRE_PUBLIC_URL", "https://public.example.com")
    monkeypatch.setenv("VOICEWIRE_REALTIME_URL", "ws://127.0.0.1:9/v1/realtime")
    parser = build_parser()
    args = parser.parse_args(["serve", "--voice", "marin"])
    settings = settings_from_args(args)
    assert settings == ServeSettings(
        api_key="sk-secret-env",
        auth_token="token-secret-env",
        public_url="https://public.example.com",
        realtime_url="ws://127.0.0.1:9/v1/realtime",
        voice="marin",
    )
    text = repr(settings)
    assert "sk-secret-env" not in text
    assert "token-secret-env" not in text
    flags = parser.parse_args(["serve", "--twilio-auth-token", "flag-token", "--port", "0"])
    assert settings_from_args(flags).auth_token == "flag-token"
    assert isinstance(args, argparse.Namespace)


def test_capacity_flags_reach_the_runner() -> None:
    parser = build_parser()
    base = ["serve", "--insecure-skip-signature"]
    default = settings_from_args(parser.parse_args(base))
    assert (default.max_calls, default.shutdown_timeout) == (None, 30.0)
    args = parser.parse_args([*base, "--max-calls", "40", "--shutdown-timeout", "120"])
    settings = settings_from_args(args)
    assert (settings.max_calls, settings.shutdown_timeout) == (40, 120.0)
    signed = parser.parse_args(["serve", "--twilio-auth-token", "t", "--require-call-token"])
    assert settings_from_args(signed).require_call_token is True
    assert default.require_call_token is False


def test_the_account_sid_comes_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parser = build_parser()
    base = ["serve", "--insecure-skip-signature"]
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    assert settings_from_args(parser.parse_args(base)).account_sid is None
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "a" * 32)
    assert settings_from_args(parser.parse_args(base)).account_sid == "AC" + "a" * 32
    flag = parser.parse_args([*base, "--twilio-account-sid", "AC" + "b" * 32])
    assert settings_from_args(flag).account_sid == "AC" + "b" * 32


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (("--max-calls", "0"), "--max-calls must be at least 1, got 0"),
        (("--shutdown-timeout", "-1"), "--shutdown-timeout must be a finite number"),
        (("--shutdown-timeout", "nan"), "--shutdown-timeout must be a finite number"),
        (("--shutdown-timeout", "inf"), "--shutdown-timeout must be a finite number"),
        (("--twilio-account-sid", "SK" + "0" * 32), "must be AC and 32 hex digits, got 'SK00"),
        (("--twilio-account-sid", "AC123"), "must be AC and 32 hex digits, got 'AC123'"),
        (("--require-call-token",), "--require-call-token needs signature checks"),
    ],
)
def test_unusable_capacity_flags_are_refused(flags: tuple[str, ...], reason: str) -> None:
    args = build_parser().parse_args(["serve", "--insecure-skip-signature", *flags])
    with pytest.raises(CommandError, match=re.escape(reason)):
        settings_from_args(args)


# ---------------------------------------------------------------------------------------------
# fake-model, serve and call together
# ---------------------------------------------------------------------------------------------


async def test_fake_model_prints_its_line_and_stops_on_sigterm() -> None:
    async with running("fake-model", "--port", "0") as fake:
        assert re.fullmatch(r"listening on ws://127\.0\.0\.1:\d+/v1/realtime", fake.first_line)
        code, stderr = await fake.stop()
    assert code == 0
    assert "stopped" in stderr


def test_fake_model_refuses_a_script_without_script_mode(tmp_path: object) -> None:
    result = run_cli("fake-model", "--script", "x.json")
    assert result.returncode == 1
    assert _error_lines(result.stderr) == [
        "voicewire fake-model: error: --script needs --mode script"
    ]
    missing = run_cli("fake-model", "--mode", "script", "--script", "/nonexistent/script.json")
    assert missing.returncode == 1
    (line,) = _error_lines(missing.stderr)
    assert line.startswith("voicewire fake-model: error: script: cannot read")


async def call_cli(*args: str, **env: str) -> tuple[int, str, str]:
    """``voicewire call ARGS``: exit code, standard output, standard error."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voicewire",
        "call",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(**env),
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), GUARD)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@contextlib.asynccontextmanager
async def serving_a_fake_model(*serve_args: str, **env: str) -> AsyncIterator[Running]:
    """``voicewire fake-model``, and ``voicewire serve SERVE_ARGS`` in front of it."""
    async with running("fake-model", "--port", "0") as fake:
        realtime_url = fake.first_line.removeprefix("listening on ")
        async with running(
            "serve", "--port", "0", "--realtime-url", realtime_url, *serve_args, **env
        ) as serve:
            yield serve
        await fake.stop()


async def test_call_against_a_running_serve() -> None:
    async with serving_a_fake_model(
        "--insecure-skip-signature", "--trace", TRACE, OPENAI_API_KEY="sk-cli-secret"
    ) as serve:
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)", serve.first_line)
        assert match, serve.first_line
        url = match[1].replace("http://", "ws://") + "/media-stream"
        code, out, err = await call_cli("--url", url, "--seconds", "3")
        assert code == 0, err
        assert out.startswith(f"connected to {url}")
        heard = re.search(r"heard (\d+) ms of audio", out)
        assert heard, out
        assert int(heard[1]) > 0
        assert "hung up" in out
        code, serve_stderr = await serve.stop()
    assert code == 0
    if TRACE == "console":
        # The tracing plugin printed the call's span tree when the session ended.
        assert "voicewire.session" in serve_stderr
    assert "no --public-url" in serve_stderr
    assert "sk-cli-secret" not in serve_stderr


async def test_call_rings_the_webhook_of_a_serve_that_requires_call_tokens() -> None:
    token = "cli-auth-token-secret"
    async with serving_a_fake_model("--require-call-token", TWILIO_AUTH_TOKEN=token) as serve:
        base = serve.first_line.removeprefix("listening on ")
        stream = base.replace("http://", "ws://") + "/media-stream"
        # Through the webhook, as Twilio does: the TwiML's token opens the stream.
        code, out, err = await call_cli(
            "--webhook", f"{base}/twiml", "--seconds", "3", TWILIO_AUTH_TOKEN=token
        )
        assert code == 0, err
        assert out.startswith(f"the webhook answered: stream to {stream}\nconnected to")
        heard = re.search(r"heard (\d+) ms of audio", out)
        assert heard, out
        assert int(heard[1]) > 0
        # Straight to the stream, with a valid upgrade signature but no token: ended at once.
        code, out, err = await call_cli("--url", stream, "--seconds", "3", TWILIO_AUTH_TOKEN=token)
        assert code == 0, err
        assert "heard 0 ms of audio" in out
        assert "the bridge closed the call" in out
        code, serve_stderr = await serve.stop()
    assert code == 0
    assert "call_token_refused" in serve_stderr
    assert token not in serve_stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((), "give --url (the media WebSocket), --webhook (the call's webhook), or both"),
        (("--webhook", "ws://127.0.0.1:1/twiml"), "--webhook must be an http:// or https:// URL"),
        (("--webhook", "http://127.0.0.1:1/twiml"), "the webhook http://127.0.0.1:1/twiml failed"),
    ],
)
def test_call_without_a_usable_address_says_why(args: tuple[str, ...], reason: str) -> None:
    result = run_cli("call", *args)
    assert result.returncode == 1
    (line,) = _error_lines(result.stderr)
    assert line.startswith(f"voicewire call: error: {reason}")


def test_trace_without_the_tracing_plugin_says_so() -> None:
    result = run_cli(
        "serve",
        "--port",
        "70000",
        "--insecure-skip-signature",
        "--trace",
        "otlp",
        VOICEWIRE_DISABLE_PLUGINS="tracing",
    )
    assert result.returncode == 1
    lines = _error_lines(result.stderr)
    assert lines[-1] == "voicewire serve: error: --port must be within 0..65535, got 70000"
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from voicewire.cli.base import setup_tracing;"
            " sys.exit(setup_tracing('serve', 'console') is not None)",
        ],
        capture_output=True,
        text=True,
        env=_env(VOICEWIRE_DISABLE_PLUGINS="tracing"),
        timeout=GUARD,
        check=False,
    )
    assert probe.returncode == 0
    assert "the tracing plugin is not installed or is disabled" in probe.stderr


def test_call_refuses_a_bad_url_and_an_unreachable_bridge() -> None:
    result = run_cli("call", "--url", "http://127.0.0.1:1/media-stream")
    assert result.returncode == 1
    (line,) = _error_lines(result.stderr)
    assert line.startswith("voicewire call: error: --url must be a ws://")
    unreachable = run_cli("call", "--url", "ws://127.0.0.1:1/media-stream", "--seconds", "1")
    assert unreachable.returncode == 1
    (line,) = _error_lines(unreachable.stderr)
    assert line.startswith("voicewire call: error: cannot connect to ws://127.0.0.1:1/media-stream")
