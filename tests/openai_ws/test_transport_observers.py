"""The observer calls of OpenAIRealtimeWebSocket (what the tracing plugin will build on)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from voicewire import ConnectOptions, SessionConfig
from voicewire.audio.formats import PCM16_24K
from voicewire.config import DISABLED
from voicewire.events import AudioInterruptedEvent, ErrorEvent, FunctionCallEvent, TurnDoneEvent
from voicewire.testing import CloseMidResponse, Script, speech_like
from voicewire_openai_ws import OpenAIRealtimeWebSocket, ReconnectPolicy

if TYPE_CHECKING:
    from tests.openai_ws.conftest import EventLog, ServerFactory, TransportFactory

pytestmark = pytest.mark.usefixtures("no_task_leaks")

Record = Callable[[OpenAIRealtimeWebSocket], "EventLog"]
SCRIPT = Script.from_obj(
    {
        "turns": [
            {
                "reply": [
                    {"function_call": {"name": "lookup", "arguments": {}}},
                    {"say": "Found it.", "ms": 300},
                ]
            },
            {"reply": [{"say": "A long answer.", "ms": 4000}]},
        ]
    }
)


class Observer:
    """Records every call, as (method, args)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def args_of(self, name: str) -> list[tuple[Any, ...]]:
        return [args for called, args in self.calls if called == name]

    def on_connection_change(self, status: str) -> None:
        self.calls.append(("on_connection_change", (status,)))

    def on_client_event(
        self, event_type: str, size: int, payload: Mapping[str, Any] | None
    ) -> None:
        self.calls.append(("on_client_event", (event_type, size, payload)))

    def on_server_event(
        self, event_type: str, size: int, payload: Mapping[str, Any] | None
    ) -> None:
        self.calls.append(("on_server_event", (event_type, size, payload)))

    def on_speech_started(self) -> None:
        self.calls.append(("on_speech_started", ()))

    def on_speech_stopped(self) -> None:
        self.calls.append(("on_speech_stopped", ()))

    def on_turn_started(self, response_id: str | None) -> None:
        self.calls.append(("on_turn_started", (response_id,)))

    def on_turn_done(self, event: TurnDoneEvent) -> None:
        self.calls.append(("on_turn_done", (event,)))

    def on_first_audio(self, response_id: str | None, latency_ms: float | None) -> None:
        self.calls.append(("on_first_audio", (response_id, latency_ms)))

    def on_interruption(self, event: AudioInterruptedEvent) -> None:
        self.calls.append(("on_interruption", (event,)))

    def on_function_call(self, event: FunctionCallEvent) -> None:
        self.calls.append(("on_function_call", (event,)))

    def on_function_call_output(self, call_id: str, output: str) -> None:
        self.calls.append(("on_function_call_output", (call_id, output)))

    def on_reconnect(self, attempt: int, state_restored: bool) -> None:
        self.calls.append(("on_reconnect", (attempt, state_restored)))

    def on_error(self, event: ErrorEvent) -> None:
        self.calls.append(("on_error", (event,)))

    def on_close(self, reason: str | None) -> None:
        self.calls.append(("on_close", (reason,)))


async def test_observers_see_the_whole_session(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(mode="script", script=SCRIPT, pace=1.0)
    observer = Observer()
    transport = make_transport(url=server.url, observers=[observer])
    log = record(transport)
    config = SessionConfig(turn_detection=DISABLED)
    await transport.connect(ConnectOptions(initial_session_config=config))

    await transport.send_message("look it up")
    call = await log.wait_event("function_call")
    await log.wait_event("turn_done")
    await transport.send_function_call_output(call, "42")
    await log.wait_event("turn_done", count=2)
    await transport.send_message("now talk for a while")
    await log.wait_event("audio", count=log.count("audio") + 2)
    await transport.interrupt()
    await log.wait_event("turn_done", count=3)
    await log.wait_raw("conversation.item.truncated")
    await transport.close()

    names = observer.names()
    assert [s for (s,) in observer.args_of("on_connection_change")] == [
        "connecting",
        "connected",
        "disconnecting",
        "disconnected",
    ]
    client = observer.args_of("on_client_event")
    assert client[0][0] == "session.update"
    assert all(size > 0 and payload is None for _, size, payload in client)
    sent_types = [t for t, _, _ in client]
    assert sent_types.count("response.create") == 3
    assert "conversation.item.truncate" in sent_types
    assert sent_types == server.session(0).client_types()  # one call per frame, same order

    server_calls = observer.args_of("on_server_event")
    assert server_calls[0][0] == "session.created"
    received = [t for t, _, _ in server_calls]
    # The server may have sent more (the item retrieved after the truncation) as we closed.
    assert received == server.session(0).server_types()[: len(received)]
    assert "conversation.item.truncated" in received

    responses = [r for (r,) in observer.args_of("on_turn_started")]
    assert len(responses) == 3
    first_audio = observer.args_of("on_first_audio")
    assert [r for r, _ in first_audio] == responses[1:]  # the function-call turn had no audio
    assert all(latency is not None and latency >= 0 for _, latency in first_audio)
    [(function_call,)] = observer.args_of("on_function_call")
    assert function_call == call
    assert observer.args_of("on_function_call_output") == [(call.call_id, "42")]
    assert [e.status for (e,) in observer.args_of("on_turn_done")] == [
        "completed",
        "completed",
        "cancelled",
    ]
    [(interruption,)] = observer.args_of("on_interruption")
    assert interruption.truncations
    assert observer.args_of("on_close") == [("closed by the application",)]
    assert names[-1] == "on_close"  # nothing after it


async def test_observers_hear_about_errors_and_reconnects(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server(faults=[CloseMidResponse(after_audio_deltas=2, sessions={0})])
    observer = Observer()
    transport = make_transport(
        url=server.url,
        observers=[observer],
        reconnect=ReconnectPolicy(initial_delay=0, jitter=0),
    )
    log = record(transport)
    await transport.connect()
    await transport.send_message("hello")
    await log.wait_event("reconnected")
    await transport.truncate("item_unknown", 0, 5)  # the server answers with an error
    await log.wait_for(lambda: bool([e for e in log.errors() if e.source == "server"]), "error")

    errors = [e for (e,) in observer.args_of("on_error")]
    assert [e.code for e in errors if e.source == "transport"] == ["connection_lost"]
    assert [e.source for e in errors][-1] == "server"
    assert observer.args_of("on_reconnect") == [(1, True)]
    assert [e.status for (e,) in observer.args_of("on_turn_done")] == ["failed"]
    statuses = [s for (s,) in observer.args_of("on_connection_change")]
    assert statuses == ["connecting", "connected", "connecting", "connected"]


async def test_observers_hear_speech_and_time_the_first_audio_from_its_end(
    fake_server: ServerFactory, make_transport: TransportFactory, record: Record
) -> None:
    server = await fake_server()  # echo mode, server VAD on the audio clock
    observer = Observer()
    transport = make_transport(url=server.url, observers=[observer])
    log = record(transport)
    await transport.connect()

    await transport.send_audio(speech_like(500, PCM16_24K, seed="hello"))
    await transport.send_audio(PCM16_24K.silence(800))
    await log.wait_event("turn_done")

    names = observer.names()
    assert names.index("on_speech_started") < names.index("on_speech_stopped")
    assert names.index("on_speech_stopped") < names.index("on_first_audio")
    [(response_id, latency)] = observer.args_of("on_first_audio")
    assert response_id == log.of("turn_done")[0].response_id
    assert latency is not None
    assert latency >= 0
    assert log.count("speech_started") == 1
    assert log.count("speech_stopped") == 1


async def test_audio_sent_without_waiting_is_observed_like_any_other(
    fake_server: ServerFactory, make_transport: TransportFactory
) -> None:
    class AudioObserver(Observer):
        def on_audio_to_model(self, nbytes: int) -> None:
            self.calls.append(("on_audio_to_model", (nbytes,)))

    server = await fake_server()
    observer = AudioObserver()
    transport = make_transport(url=server.url, observers=[observer])
    await transport.connect(ConnectOptions(initial_session_config=SessionConfig()))
    observer.calls.clear()
    assert transport.send_audio_nowait(b"\x00\x00" * 480)
    assert observer.args_of("on_audio_to_model") == [(960,)]
    ((kind, size, payload),) = observer.args_of("on_client_event")
    assert (kind, payload) == ("input_audio_buffer.append", None)
    assert size > 960  # the base64 JSON frame
