"""FakeRealtimeServer over real sockets, driven by a real ``websockets`` client.

Every test waits on events (never on the clock); timeouts are hang guards only. After each test
every server event of every session is checked against the official GA models (``openai``),
strictly: a key the models do not declare fails, except the few the real service adds too.
"""

from __future__ import annotations

import asyncio
import base64
import json
import typing
from collections.abc import AsyncIterator, Mapping
from typing import Any

import numpy as np
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from voicewire.audio.formats import MULAW_8K, PCM16_24K, AudioFormat
from voicewire.errors import ConfigError
from voicewire.testing.fake_realtime import (
    FakeRealtimeServer,
    FunctionCall,
    Say,
    Script,
    SessionRecord,
    Turn,
    speech_like,
)
from voicewire.testing.fake_realtime.audio import decode, rms_dbfs

GUARD = 10.0  # seconds; a hang guard, never a timing assertion
PCMU = {"type": "audio/pcmu"}
PCM = {"type": "audio/pcm", "rate": 24000}
# Keys the real service sends that the request-shaped SDK models do not declare (protocols §3.3).
ALLOWED_EXTRA = {"$.session.object", "$.session.id", "$.session.expires_at", "$.obfuscation"}


# ---------------------------------------------------------------------------------------------
# strict GA validation of what the server sent
# ---------------------------------------------------------------------------------------------


def _server_models() -> dict[str, Any]:
    from openai.types.realtime import RealtimeServerEvent

    union = typing.get_args(RealtimeServerEvent)[0]
    return {
        literal: cls
        for cls in typing.get_args(union)
        for literal in typing.get_args(cls.model_fields["type"].annotation)
    }


def _unknown(obj: object, path: str = "$") -> list[str]:
    from pydantic import BaseModel

    found: list[str] = []
    if isinstance(obj, BaseModel):
        found += [f"{path}.{k}" for k in (obj.model_extra or {})]
        for name in type(obj).model_fields:
            found += _unknown(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            found += _unknown(item, f"{path}[{i}]")
    return found


def assert_ga_valid(record: SessionRecord) -> None:
    try:
        models = _server_models()
    except ImportError:  # the official models are optional; without them there is no oracle
        return
    for event in record.server_events:
        model = models[str(event["type"])].model_validate(dict(event))
        extra = [p for p in _unknown(model) if p not in ALLOWED_EXTRA]
        assert not extra, f"{event['type']}: keys unknown to the GA models: {extra}"


# ---------------------------------------------------------------------------------------------
# a small client
# ---------------------------------------------------------------------------------------------


class Client:
    """A websockets client that keeps every event it received."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []
        self._cursor = 0

    async def send(self, event: Mapping[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    async def recv(self) -> dict[str, Any]:
        frame = await asyncio.wait_for(self.ws.recv(), GUARD)
        event = json.loads(frame)
        self.received.append(event)
        return event  # type: ignore[no-any-return]

    async def expect(self, kind: str) -> dict[str, Any]:
        """The next event of ``kind`` after the last one expected (reading more if needed)."""
        while True:
            while self._cursor < len(self.received):
                event = self.received[self._cursor]
                self._cursor += 1
                if event["type"] == kind:
                    return event
            await self.recv()

    def find(self, kind: str) -> dict[str, Any]:
        """The first event of ``kind`` received so far."""
        return next(e for e in self.received if e["type"] == kind)

    def types(self) -> list[str]:
        return [e["type"] for e in self.received]

    async def append_audio(self, audio: bytes, fmt: AudioFormat, frame_ms: int = 20) -> None:
        step = fmt.nbytes_for_ms(frame_ms)
        for i in range(0, len(audio), step):
            chunk = base64.b64encode(audio[i : i + step]).decode("ascii")
            await self.send({"type": "input_audio_buffer.append", "audio": chunk})

    async def configure(self, **session: Any) -> dict[str, Any]:
        await self.send({"type": "session.update", "session": {"type": "realtime", **session}})
        return await self.expect("session.updated")


async def connect(url: str, **kwargs: Any) -> Client:
    ws = await websockets.connect(url, ping_interval=None, open_timeout=GUARD, **kwargs)
    return Client(ws)


@pytest.fixture
async def make_server() -> AsyncIterator[Any]:
    servers: list[FakeRealtimeServer] = []

    async def make(**kwargs: Any) -> FakeRealtimeServer:
        server = FakeRealtimeServer(**kwargs)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()
        for record in server.sessions:
            assert_ga_valid(record)


def utterance(fmt: AudioFormat, speech_ms: int = 800, seed: int = 1) -> bytes:
    """Silence, speech-like audio, then enough silence for the VAD to end the turn."""
    return fmt.silence(200) + speech_like(speech_ms, fmt, seed=seed) + fmt.silence(900)


def audio_of(events: list[dict[str, Any]], response_id: str | None = None) -> bytes:
    return b"".join(
        base64.b64decode(e["delta"])
        for e in events
        if e["type"] == "response.output_audio.delta"
        and (response_id is None or e["response_id"] == response_id)
    )


PCMU_SESSION = {"audio": {"input": {"format": PCMU}, "output": {"format": PCMU}}}
NO_VAD_SESSION = {
    "audio": {"input": {"format": PCMU, "turn_detection": None}, "output": {"format": PCMU}}
}


# ---------------------------------------------------------------------------------------------
# handshake, auth, session
# ---------------------------------------------------------------------------------------------


async def test_url_and_session_created_first(make_server: Any) -> None:
    server = await make_server(pace=0)
    assert server.url.startswith("ws://127.0.0.1:")
    assert server.url.endswith("/v1/realtime")
    client = await connect(server.url + "?model=gpt-realtime-mini")
    first = await client.recv()
    assert first["type"] == "session.created"
    session = first["session"]
    assert session["model"] == "gpt-realtime-mini"
    assert session["type"] == "realtime"
    assert session["object"] == "realtime.session"
    assert session["audio"]["input"]["format"] == PCM
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert first["event_id"].startswith("event_")
    await client.ws.close()
    record = await server.wait_closed(0, timeout=GUARD)
    assert record.auth == "not_required"
    assert record.model == "gpt-realtime-mini"
    assert record.server_types() == ["session.created"]


async def test_unknown_path_is_404(make_server: Any) -> None:
    server = await make_server()
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(server.url.replace("/v1/realtime", "/v1/other"))
    assert info.value.response.status_code == 404


async def test_api_key_is_checked_and_never_recorded(make_server: Any) -> None:
    key = "sk-test-secret-123"
    server = await make_server(api_key=key)
    with pytest.raises(websockets.InvalidStatus) as missing:
        await connect(server.url)
    assert missing.value.response.status_code == 401
    with pytest.raises(websockets.InvalidStatus) as wrong:
        await connect(server.url, additional_headers={"Authorization": "Bearer sk-nope"})
    assert wrong.value.response.status_code == 401
    assert b"invalid_api_key" in wrong.value.response.body
    client = await connect(server.url, additional_headers={"Authorization": f"Bearer {key}"})
    assert (await client.recv())["type"] == "session.created"
    browser = await connect(server.url, subprotocols=["realtime", f"openai-insecure-api-key.{key}"])
    assert browser.ws.subprotocol == "realtime"
    assert (await browser.recv())["type"] == "session.created"
    outcomes = [r.auth for r in server.sessions]
    assert outcomes == ["missing", "mismatched", "matched", "matched"]
    assert [r.http_status for r in server.sessions] == [401, 401, None, None]
    assert key not in repr(server.sessions)


async def test_session_update_merges_and_answers_with_full_session(make_server: Any) -> None:
    server = await make_server(pace=0)
    client = await connect(server.url)
    await client.expect("session.created")
    updated = await client.configure(
        instructions="Be brief.",
        audio={
            "input": {
                "format": PCMU,
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
            },
            "output": {"format": PCMU, "voice": "marin"},
        },
    )
    session = updated["session"]
    assert session["instructions"] == "Be brief."
    assert session["audio"]["input"]["format"] == PCMU
    vad = session["audio"]["input"]["turn_detection"]
    assert vad["silence_duration_ms"] == 500
    assert vad["threshold"] == 0.5  # untouched fields keep their values
    assert vad["create_response"] is True
    assert session["audio"]["output"] == {"format": PCMU, "voice": "marin", "speed": 1.0}
    assert session["model"] == "gpt-realtime"
    cleared = await client.configure(audio={"input": {"turn_detection": None}}, tools=[])
    assert cleared["session"]["audio"]["input"]["turn_detection"] is None
    assert cleared["session"]["audio"]["input"]["format"] == PCMU
    assert server.session(0).session is not None
    assert server.session(0).session["audio"]["input"]["turn_detection"] is None


# ---------------------------------------------------------------------------------------------
# validation errors
# ---------------------------------------------------------------------------------------------

INVALID_CASES = [
    pytest.param(
        {
            "type": "session.update",
            "event_id": "evt_client_7",
            "session": {"type": "realtime", "input_audio_format": "g711_ulaw"},
        },
        "unknown_parameter",
        "Unknown parameter: 'session.input_audio_format'.",
        "session.input_audio_format",
        "evt_client_7",
        id="unknown-session-key",
    ),
    pytest.param(
        {"type": "session.update", "event_id": "e2", "session": {"instructions": "x"}},
        "missing_required_parameter",
        "Missing required parameter: 'session.type'.",
        "session.type",
        "e2",
        id="missing-session-type",
    ),
    pytest.param(
        {"type": "session.update", "session": {"type": "session"}},
        "invalid_value",
        "Invalid value: 'session'. Supported values are: 'realtime' and 'transcription'.",
        "session.type",
        None,
        id="bad-session-type",
    ),
    pytest.param(
        {"type": "input_audio_buffer.append", "event_id": "e4"},
        "missing_required_parameter",
        "Missing required parameter: 'audio'.",
        "audio",
        "e4",
        id="missing-audio",
    ),
    pytest.param(
        {"type": "response.explode", "event_id": "e5"},
        "invalid_value",
        None,
        "type",
        "e5",
        id="unknown-type",
    ),
    pytest.param(
        {"type": "output_audio_buffer.clear"},
        "invalid_value",
        None,
        "type",
        None,
        id="webrtc-only-type",
    ),
    pytest.param(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"format": {"type": "g711_ulaw"}}}},
        },
        "invalid_value",
        None,
        "session.audio.input.format.type",
        None,
        id="beta-format-name",
    ),
    pytest.param(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "audio"}]},
        },
        "invalid_value",
        None,
        "item.content[0].type",
        None,
        id="beta-content-type",
    ),
]


@pytest.mark.parametrize("validation", ["openai", "builtin"])
@pytest.mark.parametrize(("event", "code", "message", "param", "client_event_id"), INVALID_CASES)
async def test_invalid_events_get_ga_errors(
    make_server: Any,
    validation: str,
    event: dict[str, Any],
    code: str,
    message: str | None,
    param: str,
    client_event_id: str | None,
) -> None:
    if validation == "openai":
        pytest.importorskip("openai")
    server = await make_server(pace=0, validation=validation)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.send(event)
    error_event = await client.expect("error")
    assert set(error_event) == {"type", "event_id", "error"}
    assert isinstance(error_event["event_id"], str)
    error = error_event["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code
    assert error["param"] == param
    assert error["event_id"] == client_event_id
    if message is not None:
        assert error["message"] == message
    # Errors are not fatal: the session keeps working.
    await client.configure(instructions="still here")
    assert server.session(0).client_events[0] == event


async def test_invalid_json_and_binary_frames_get_errors(make_server: Any) -> None:
    server = await make_server(pace=0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.ws.send("{not json")
    assert (await client.expect("error"))["error"]["code"] == "invalid_json"
    await client.ws.send(b"\x00\x01")
    assert (await client.expect("error"))["error"]["type"] == "invalid_request_error"
    record = await server.wait_for_session(0)
    assert record.unparsed_frames == ("{not json", "<binary frame of 2 bytes>")


# ---------------------------------------------------------------------------------------------
# audio turns
# ---------------------------------------------------------------------------------------------


async def test_echo_round_trip_pcmu(make_server: Any) -> None:
    server = await make_server(pace=0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(**PCMU_SESSION)
    spoken = speech_like(800, MULAW_8K, seed=7)
    audio = MULAW_8K.silence(200) + spoken + MULAW_8K.silence(900)
    await client.append_audio(audio, MULAW_8K)
    started = await client.expect("input_audio_buffer.speech_started")
    stopped = await client.expect("input_audio_buffer.speech_stopped")
    committed = await client.expect("input_audio_buffer.committed")
    user_item = await client.expect("conversation.item.added")
    await client.expect("conversation.item.done")
    created = await client.expect("response.created")
    done = await client.expect("response.done")

    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    assert user_item["item"]["id"] == started["item_id"]
    assert user_item["item"]["role"] == "user"
    assert user_item["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    # Offsets are on the audio clock: speech begins after 200 ms of silence, minus the padding.
    assert 0 <= started["audio_start_ms"] <= 200
    assert 1000 <= stopped["audio_end_ms"] <= 1100 + 400 + 40
    assert done["response"]["status"] == "completed"
    assert done["response"]["id"] == created["response"]["id"]
    assert done["response"]["usage"]["total_tokens"] > 0

    types = client.types()
    order = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]
    positions = [types.index(t) for t in order]
    assert positions == sorted(positions)

    echoed = audio_of(client.received)
    # Same format in and out: the echo is the caller's own bytes, from the padded start.
    assert echoed
    assert echoed in audio
    assert spoken[:400] in echoed
    transcript = client.find("response.output_audio_transcript.done")["transcript"]
    assert transcript == f"echo: {round(len(echoed) / 8)} ms"
    item = done["response"]["output"][0]
    assert item["content"] == [{"type": "output_audio", "transcript": transcript}]


async def test_echo_converts_to_the_output_format(make_server: Any) -> None:
    server = await make_server(pace=0, chunk_ms=100)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(audio={"input": {"format": PCMU}, "output": {"format": PCM}})
    await client.append_audio(utterance(MULAW_8K), MULAW_8K)
    done = await client.expect("response.done")
    deltas = [e for e in client.received if e["type"] == "response.output_audio.delta"]
    assert all(len(base64.b64decode(d["delta"])) <= PCM16_24K.nbytes_for_ms(100) for d in deltas)
    echoed = audio_of(client.received)
    heard_ms = PCM16_24K.duration_ms(len(echoed))
    assert done["response"]["audio"]["output"]["format"] == PCM
    transcript = done["response"]["output"][0]["content"][0]["transcript"]
    assert transcript == f"echo: {round(heard_ms)} ms"
    assert rms_dbfs(decode(echoed, PCM16_24K)) > -40


async def test_text_message_gets_a_spoken_answer(make_server: Any) -> None:
    server = await make_server(pace=0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(**NO_VAD_SESSION)
    await client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hello there"}],
            },
        }
    )
    added = await client.expect("conversation.item.added")
    assert added["item"]["id"].startswith("item_")
    assert added["previous_item_id"] is None
    await client.expect("conversation.item.done")
    await client.send({"type": "response.create"})
    done = await client.expect("response.done")
    transcript = done["response"]["output"][0]["content"][0]["transcript"]
    assert "hello there" in transcript
    audio = audio_of(client.received)
    assert MULAW_8K.duration_ms(len(audio)) >= 300
    assert rms_dbfs(decode(audio, MULAW_8K)) > -35  # speech-like, not silence
    deltas = "".join(
        e["delta"] for e in client.received if e["type"] == "response.output_audio_transcript.delta"
    )
    assert deltas == transcript


async def test_manual_commit_without_vad(make_server: Any) -> None:
    server = await make_server(pace=0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(**NO_VAD_SESSION)
    await client.append_audio(MULAW_8K.silence(60), MULAW_8K)
    await client.send({"type": "input_audio_buffer.commit", "event_id": "c1"})
    error = (await client.expect("error"))["error"]
    assert error["code"] == "input_audio_buffer_commit_empty"
    assert error["message"].endswith("but buffer only has 60.00ms of audio.")
    assert error["event_id"] == "c1"
    await client.append_audio(utterance(MULAW_8K), MULAW_8K)
    await client.send({"type": "input_audio_buffer.commit"})
    committed = await client.expect("input_audio_buffer.committed")
    await client.expect("conversation.item.done")
    assert "input_audio_buffer.speech_started" not in client.types()
    assert "response.created" not in client.types()  # without VAD the client asks for responses
    await client.send({"type": "response.create"})
    done = await client.expect("response.done")
    assert done["response"]["output"][0]["content"][0]["transcript"].startswith("echo: ")
    await client.send({"type": "conversation.item.retrieve", "item_id": committed["item_id"]})
    retrieved = await client.expect("conversation.item.retrieved")
    stored = base64.b64decode(retrieved["item"]["content"][0]["audio"])
    assert MULAW_8K.duration_ms(len(stored)) == 60 + 200 + 800 + 900


async def test_clear_drops_buffered_audio(make_server: Any) -> None:
    server = await make_server(pace=0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(**NO_VAD_SESSION)
    await client.append_audio(MULAW_8K.silence(500), MULAW_8K)
    await client.send({"type": "input_audio_buffer.clear"})
    await client.expect("input_audio_buffer.cleared")
    await client.send({"type": "input_audio_buffer.commit"})
    assert (await client.expect("error"))["error"]["code"] == "input_audio_buffer_commit_empty"


async def test_input_transcription_events(make_server: Any) -> None:
    server = await make_server(pace=0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(
        audio={
            "input": {"format": PCMU, "transcription": {"model": "gpt-4o-mini-transcribe"}},
            "output": {"format": PCMU},
        }
    )
    await client.append_audio(utterance(MULAW_8K), MULAW_8K)
    committed = await client.expect("input_audio_buffer.committed")
    completed = await client.expect("conversation.item.input_audio_transcription.completed")
    assert completed["item_id"] == committed["item_id"]
    assert completed["transcript"].endswith("ms of speech)")
    await client.expect("response.done")


async def test_text_output_modality(make_server: Any) -> None:
    server = await make_server(pace=0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(output_modalities=["text"], **NO_VAD_SESSION)
    await client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            },
        }
    )
    await client.send({"type": "response.create"})
    done = await client.expect("response.done")
    text = client.find("response.output_text.done")["text"]
    assert done["response"]["output"][0]["content"] == [{"type": "output_text", "text": text}]
    assert "response.output_audio.delta" not in client.types()


# ---------------------------------------------------------------------------------------------
# responses: concurrency, cancel, barge-in, truncate, items
# ---------------------------------------------------------------------------------------------


async def _long_text_turn(client: Client) -> dict[str, Any]:
    await client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "tell me a long story " * 8}],
            },
        }
    )
    await client.send({"type": "response.create"})
    return await client.expect("response.created")


async def test_second_response_while_active_is_refused(make_server: Any) -> None:
    server = await make_server(pace=1.0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(**NO_VAD_SESSION)
    created = await _long_text_turn(client)
    await client.expect("response.output_audio.delta")
    await client.send({"type": "response.create", "event_id": "again"})
    error = (await client.expect("error"))["error"]
    assert error["code"] == "conversation_already_has_active_response"
    assert error["event_id"] == "again"
    assert error["message"] == (
        "Conversation already has an active response in progress: "
        f"{created['response']['id']}. Wait until the response is finished before creating a "
        "new one."
    )


async def test_cancel_stops_the_active_response(make_server: Any) -> None:
    server = await make_server(pace=1.0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(**NO_VAD_SESSION)
    created = await _long_text_turn(client)
    await client.expect("response.output_audio.delta")
    await client.send({"type": "response.cancel"})
    done = await client.expect("response.done")
    assert done["response"]["id"] == created["response"]["id"]
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["response"]["output"][0]["status"] == "incomplete"
    assert client.find("response.output_item.done")["item"]["status"] == "incomplete"
    await client.send({"type": "response.cancel", "event_id": "late"})
    error = (await client.expect("error"))["error"]
    assert error == {
        "type": "invalid_request_error",
        "code": "response_cancel_not_active",
        "message": "Cancellation failed: no active response found",
        "param": None,
        "event_id": "late",
    }


async def test_speech_during_a_response_interrupts_it(make_server: Any) -> None:
    server = await make_server(pace=1.0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(**PCMU_SESSION)
    created = await _long_text_turn(client)
    await client.expect("response.output_audio.delta")
    await client.append_audio(speech_like(600, MULAW_8K, seed=3), MULAW_8K)
    started = await client.expect("input_audio_buffer.speech_started")
    done = await client.expect("response.done")
    assert done["response"]["id"] == created["response"]["id"]
    assert done["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    types = client.types()
    assert types.index("input_audio_buffer.speech_started") < types.index("response.done")
    assert started["item_id"].startswith("item_")


async def test_interrupt_response_false_keeps_the_response(make_server: Any) -> None:
    server = await make_server(pace=0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(
        audio={
            "input": {
                "format": PCMU,
                "turn_detection": {
                    "type": "server_vad",
                    "interrupt_response": False,
                    "create_response": False,
                },
            },
            "output": {"format": PCMU},
        }
    )
    await client.append_audio(utterance(MULAW_8K), MULAW_8K)
    await client.expect("conversation.item.done")
    await client.send({"type": "response.create"})
    assert (await client.expect("response.done"))["response"]["status"] == "completed"


async def test_truncate_is_validated_against_audio_sent(make_server: Any) -> None:
    server = await make_server(pace=0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(**NO_VAD_SESSION)
    await _long_text_turn(client)
    done = await client.expect("response.done")
    item_id = done["response"]["output"][0]["id"]
    sent_ms = int(MULAW_8K.duration_ms(len(audio_of(client.received))))

    await client.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 1840,
        }
    )
    truncated = await client.expect("conversation.item.truncated")
    assert (truncated["item_id"], truncated["content_index"], truncated["audio_end_ms"]) == (
        item_id,
        0,
        1840,
    )

    await client.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": sent_ms + 5000,
            "event_id": "too-far",
        }
    )
    error = (await client.expect("error"))["error"]
    assert error["code"] is None
    assert error["message"] == f"Audio content of 1840ms is already shorter than {sent_ms + 5000}ms"
    assert error["event_id"] == "too-far"

    await client.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": -11,
        }
    )
    error = (await client.expect("error"))["error"]
    assert error["code"] == "integer_below_min_value"
    assert error["param"] == "audio_end_ms"

    await client.send(
        {
            "type": "conversation.item.truncate",
            "item_id": "item_missing",
            "content_index": 0,
            "audio_end_ms": 0,
        }
    )
    await client.expect("error")
    await client.send({"type": "conversation.item.retrieve", "item_id": item_id})
    retrieved = (await client.expect("conversation.item.retrieved"))["item"]
    assert retrieved["content"][0]["transcript"] == ""
    assert MULAW_8K.duration_ms(len(base64.b64decode(retrieved["content"][0]["audio"]))) == 1840

    record = server.session(0)
    assert [(t.audio_end_ms, t.accepted) for t in record.truncations] == [
        (1840, True),
        (sent_ms + 5000, False),
        (-11, False),
        (0, False),
    ]
    assert record.truncations[0].audio_sent_ms == sent_ms
    assert record.truncations[3].audio_sent_ms is None


async def test_truncate_before_full_audio_uses_the_audio_sent_so_far(make_server: Any) -> None:
    server = await make_server(pace=1.0, chunk_ms=40)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(**NO_VAD_SESSION)
    await _long_text_turn(client)
    delta = await client.expect("response.output_audio.delta")
    await client.send({"type": "response.cancel"})
    await client.expect("response.done")
    sent_ms = int(MULAW_8K.duration_ms(len(audio_of(client.received))))
    await client.send(
        {
            "type": "conversation.item.truncate",
            "item_id": delta["item_id"],
            "content_index": 0,
            "audio_end_ms": sent_ms + 1,
        }
    )
    assert (await client.expect("error"))["error"]["message"] == (
        f"Audio content of {sent_ms}ms is already shorter than {sent_ms + 1}ms"
    )


async def test_items_create_retrieve_delete(make_server: Any) -> None:
    server = await make_server(pace=0)
    client = await connect(server.url)
    await client.expect("session.created")
    user = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]}
    await client.send({"type": "conversation.item.create", "item": {**user, "id": "item_a"}})
    await client.expect("conversation.item.done")
    await client.send(
        {
            "type": "conversation.item.create",
            "item": {**user, "id": "item_b"},
            "previous_item_id": "root",
        }
    )
    added = await client.expect("conversation.item.added")
    assert added["previous_item_id"] is None
    await client.send(
        {"type": "conversation.item.create", "item": user, "previous_item_id": "item_nope"}
    )
    assert (await client.expect("error"))["error"]["param"] == "previous_item_id"
    await client.send({"type": "conversation.item.retrieve", "item_id": "item_a"})
    assert (await client.expect("conversation.item.retrieved"))["item"]["id"] == "item_a"
    await client.send({"type": "conversation.item.delete", "item_id": "item_a"})
    assert (await client.expect("conversation.item.deleted"))["item_id"] == "item_a"
    await client.send({"type": "conversation.item.delete", "item_id": "item_a", "event_id": "d"})
    error = (await client.expect("error"))["error"]
    assert (error["param"], error["event_id"]) == ("item_id", "d")


# ---------------------------------------------------------------------------------------------
# script mode
# ---------------------------------------------------------------------------------------------


async def test_script_mode_function_call_then_speech_then_long_answer(make_server: Any) -> None:
    script = Script(
        turns=(
            Turn(
                user="what time is it",
                reply=(
                    FunctionCall(name="get_time", arguments='{"tz":"UTC"}'),
                    Say(text="It is noon.", ms=600),
                ),
            ),
            Turn(reply=(Say(text="A long answer.", ms=3000),)),
        )
    )
    server = await make_server(mode="script", script=script, pace=0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(**PCMU_SESSION)

    await client.append_audio(utterance(MULAW_8K), MULAW_8K)
    args_done = await client.expect("response.function_call_arguments.done")
    assert (args_done["name"], args_done["arguments"]) == ("get_time", '{"tz":"UTC"}')
    first = await client.expect("response.done")
    assert first["response"]["status"] == "completed"
    call = first["response"]["output"][0]
    assert call["type"] == "function_call"
    assert call["call_id"] == args_done["call_id"]
    assert "response.output_audio.delta" not in client.types()
    deltas = [
        e["delta"] for e in client.received if e["type"] == "response.function_call_arguments.delta"
    ]
    assert "".join(deltas) == '{"tz":"UTC"}'

    await client.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call["call_id"], "output": "12:00"},
        }
    )
    output_added = await client.expect("conversation.item.added")
    assert output_added["previous_item_id"] == call["id"]
    await client.send({"type": "response.create"})
    second = await client.expect("response.done")
    assert second["response"]["output"][0]["content"][0]["transcript"] == "It is noon."
    spoken = audio_of(client.received, second["response"]["id"])
    assert MULAW_8K.duration_ms(len(spoken)) == 600

    await client.append_audio(utterance(MULAW_8K, seed=2), MULAW_8K)
    third = await client.expect("response.done")
    assert third["response"]["output"][0]["content"][0]["transcript"] == "A long answer."
    assert MULAW_8K.duration_ms(len(audio_of(client.received, third["response"]["id"]))) == 3000

    await client.send({"type": "response.create"})
    fallback = await client.expect("response.done")
    assert fallback["response"]["output"][0]["content"][0]["transcript"] == (
        "I have nothing more to say."
    )


async def test_script_mode_defaults_to_the_demo_script(make_server: Any) -> None:
    server = await make_server(mode="script", pace=0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(**NO_VAD_SESSION)
    await client.send({"type": "response.create"})
    done = await client.expect("response.done")
    assert done["response"]["output"][0]["name"] == "get_time"


async def test_scripted_turn_is_abandoned_when_interrupted(make_server: Any) -> None:
    script = Script(
        turns=(
            Turn(reply=(Say(text="long", ms=20_000), Say(text="never said", ms=500))),
            Turn(reply=(Say(text="second turn", ms=300),)),
        )
    )
    server = await make_server(mode="script", script=script, pace=1.0)
    client = await connect(server.url)
    await client.expect("session.created")
    await client.configure(**PCMU_SESSION)
    await client.send({"type": "response.create"})
    await client.expect("response.output_audio.delta")
    await client.append_audio(utterance(MULAW_8K), MULAW_8K)
    cancelled = await client.expect("response.done")
    assert cancelled["response"]["status"] == "cancelled"
    answer = await client.expect("response.done")
    assert answer["response"]["output"][0]["content"][0]["transcript"] == "second turn"


# ---------------------------------------------------------------------------------------------
# isolation, shutdown, the official SDK
# ---------------------------------------------------------------------------------------------


async def test_concurrent_sessions_are_isolated(make_server: Any) -> None:
    from voicewire.testing.fake_realtime import CloseMidResponse

    server = await make_server(
        pace=0, faults=[CloseMidResponse(after_audio_deltas=2, sessions={0})]
    )
    first = await connect(server.url)
    second = await connect(server.url)
    await first.expect("session.created")
    await second.expect("session.created")
    await first.configure(**PCMU_SESSION)
    await asyncio.gather(
        first.append_audio(utterance(MULAW_8K, seed=4), MULAW_8K),
        second.append_audio(utterance(PCM16_24K, seed=5), PCM16_24K),
    )
    with pytest.raises(websockets.ConnectionClosed):
        await first.expect("response.done")
    done = await second.expect("response.done")
    assert done["response"]["status"] == "completed"
    assert done["response"]["audio"]["output"]["format"] == PCM
    records = server.sessions
    assert records[0].faults_triggered == ("close_mid_response",)
    assert records[1].faults_triggered == ()
    assert records[0].session is not None
    assert records[1].session is not None
    assert records[0].session["id"] != records[1].session["id"]
    assert records[1].session["audio"]["input"]["format"] == PCM


async def test_close_ends_every_session_and_leaves_no_task() -> None:
    from voicewire.testing.fake_realtime import Stall

    before = asyncio.all_tasks()
    server = FakeRealtimeServer(pace=1.0, faults=[Stall(after_events=1, sessions={1})])
    await server.start()
    busy = await connect(server.url)
    stalled = await connect(server.url)
    await busy.expect("session.created")
    await stalled.expect("session.created")
    await busy.configure(**NO_VAD_SESSION)
    await _long_text_turn(busy)
    await busy.expect("response.output_audio.delta")
    await server.close()
    await server.close()  # idempotent
    assert asyncio.all_tasks() - before == set()
    with pytest.raises(websockets.ConnectionClosed) as info:
        await busy.expect("response.done")
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1001
    assert all(r.closed for r in server.sessions)
    await stalled.ws.close()


async def test_the_official_openai_sdk_can_talk_to_it(make_server: Any) -> None:
    openai = pytest.importorskip("openai")
    server = await make_server(pace=0, api_key="sk-test")
    base = server.url.rsplit("/realtime", 1)[0]
    client = openai.AsyncOpenAI(api_key="sk-test", websocket_base_url=base)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        created = await asyncio.wait_for(conn.recv(), GUARD)
        assert created.type == "session.created"
        await conn.session.update(session={"type": "realtime", "instructions": "hi"})
        updated = await asyncio.wait_for(conn.recv(), GUARD)
        assert updated.type == "session.updated"
    record = await server.wait_closed(0, timeout=GUARD)
    assert record.auth == "matched"
    assert record.model == "gpt-realtime"


def test_constructor_rejects_bad_options() -> None:
    with pytest.raises(ConfigError, match="mode"):
        FakeRealtimeServer(mode="chat")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="chunk_ms"):
        FakeRealtimeServer(chunk_ms=5)
    with pytest.raises(ConfigError, match="pace"):
        FakeRealtimeServer(pace=-1)
    with pytest.raises(ConfigError, match="script"):
        FakeRealtimeServer(script=Script(turns=()))
    with pytest.raises(ConfigError, match="faults"):
        FakeRealtimeServer(faults=["boom"])  # type: ignore[list-item]


def test_echoed_speech_is_loud_enough_for_the_vad() -> None:
    samples = decode(speech_like(1000, MULAW_8K, seed=9), MULAW_8K)
    assert float(np.max(np.abs(samples))) > 0.1
