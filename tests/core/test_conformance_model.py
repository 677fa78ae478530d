"""``check_model_transport`` passes for the real OpenAI transport and fails for broken ones.

The broken transports are subclasses of ``OpenAIRealtimeWebSocket`` that each get one thing
wrong, through the protected helpers a transport author uses (``_emit``, ``_report_error``) or
the public methods. Every run is over loopback against ``FakeRealtimeServer``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from voicewire.audio.formats import MULAW_8K
from voicewire.config import SessionConfig
from voicewire.events import AudioEvent, ErrorEvent
from voicewire.testing import FakeRealtimeServer
from voicewire.testing.conformance import ConformanceError, check_model_transport
from voicewire.transport import ConnectOptions
from voicewire_openai_ws import OpenAIRealtimeWebSocket

FAST_TIMEOUT = 3.0
FAST_GRACE = 0.5


def transport() -> OpenAIRealtimeWebSocket:
    return OpenAIRealtimeWebSocket(plugin_observers=False)


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer(pace=0) as server:
        yield server


async def test_the_openai_transport_passes(
    no_task_leaks: None, fake_server: FakeRealtimeServer
) -> None:
    await check_model_transport(transport, fake_server=fake_server)


async def test_the_openai_transport_passes_at_real_time_pace(no_task_leaks: None) -> None:
    # Answers stream in real time, so the interruption lands mid-answer.
    async with FakeRealtimeServer(pace=1.0) as server:
        await check_model_transport(transport, fake_server=server)


async def test_the_openai_transport_passes_with_g711_sessions(
    no_task_leaks: None, fake_server: FakeRealtimeServer
) -> None:
    config = SessionConfig(input_audio_format=MULAW_8K, output_audio_format=MULAW_8K)
    await check_model_transport(
        transport,
        fake_server=fake_server,
        connect_options=ConnectOptions(api_key="sk-test", initial_session_config=config),
    )


async def test_an_api_key_the_server_requires_comes_from_the_options(
    no_task_leaks: None,
) -> None:
    async with FakeRealtimeServer(pace=0, api_key="sk-right") as server:
        await check_model_transport(
            transport, fake_server=server, connect_options=ConnectOptions(api_key="sk-right")
        )
        assert {record.auth for record in server.sessions} == {"matched"}


# --- broken transports -----------------------------------------------------------------------


FORGOTTEN: list[asyncio.Task[Any]] = []
"""The tasks LeaksOnClose leaves behind, so that the test can end them once the check saw them."""


class LeaksOnClose(OpenAIRealtimeWebSocket):
    async def close(self) -> None:
        await super().close()
        task = asyncio.get_running_loop().create_task(
            asyncio.Event().wait(), name="forgotten-pinger"
        )
        FORGOTTEN.append(task)


class DropsAnAudioByte(OpenAIRealtimeWebSocket):
    def _emit(self, event: Any) -> None:
        if isinstance(event, AudioEvent) and not getattr(self, "_dropped", False):
            self._dropped = True
            event = attrs.evolve(event, data=event.data[1:])
        super()._emit(event)


class SwallowsErrors(OpenAIRealtimeWebSocket):
    def _report_error(self, message: str, **kwargs: Any) -> ErrorEvent:
        return ErrorEvent(message=message)  # never emitted


class CloseDoesNothing(OpenAIRealtimeWebSocket):
    async def close(self) -> None:
        return None


class TruncatesElsewhere(OpenAIRealtimeWebSocket):
    async def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        await super().truncate(item_id, content_index, audio_end_ms // 2)


@pytest.mark.parametrize(
    ("broken", "step", "words"),
    [
        (LeaksOnClose, "life cycle", "forgotten-pinger"),
        (CloseDoesNothing, "life cycle", "after close() returned"),
        (DropsAnAudioByte, "audio", "do not carry exactly the server's audio"),
        (TruncatesElsewhere, "truncate at the heard position", "reached the server as"),
        (SwallowsErrors, "bad input", "was not reported as an 'error' event"),
    ],
)
async def test_a_broken_transport_fails(
    no_task_leaks: None,
    fake_server: FakeRealtimeServer,
    broken: type[OpenAIRealtimeWebSocket],
    step: str,
    words: str,
) -> None:
    with pytest.raises(ConformanceError) as caught:
        await check_model_transport(
            lambda: broken(plugin_observers=False),
            fake_server=fake_server,
            timeout=FAST_TIMEOUT,
            leak_grace=FAST_GRACE,
        )
    for task in FORGOTTEN:
        task.cancel()
    await asyncio.gather(*FORGOTTEN, return_exceptions=True)
    FORGOTTEN.clear()
    error = caught.value
    assert error.check == "check_model_transport"
    assert error.step.startswith(step)
    assert words in error.detail


async def test_a_factory_that_builds_no_transport_is_reported(
    no_task_leaks: None, fake_server: FakeRealtimeServer
) -> None:
    def not_a_transport() -> Any:
        return object()

    with pytest.raises(ConformanceError, match="not a RealtimeTransportLayer"):
        await check_model_transport(
            not_a_transport, fake_server=fake_server, timeout=FAST_TIMEOUT, leak_grace=FAST_GRACE
        )
