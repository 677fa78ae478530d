"""The API key never appears in logs, reprs, exceptions or events, whatever happens.

Logging is captured at DEBUG for every logger, ``websockets`` included (which logs each handshake
header at that level), through a connection, a conversation, a drop, a reconnect with a key from
a callable, a refused reconnect and a refused first connect with a wrong key. When the test suite
runs under tox, the captured log is also written to ``$VOICEWIRE_TEST_SECRETS_LOG`` for review.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from voicewire import ConnectOptions
from voicewire.testing import CloseMidResponse, RefuseConnection
from voicewire_openai_ws import ConnectFailedError, OpenAIRealtimeWebSocket, ReconnectPolicy

if TYPE_CHECKING:
    from tests.openai_ws.conftest import EventLog, ServerFactory, TransportFactory

pytestmark = pytest.mark.usefixtures("no_task_leaks")

KEY = "sk-proj-VOICEWIRE-secret-0f9e8d7c6b5a"
WRONG = "sk-proj-VOICEWIRE-wrong-1a2b3c4d5e6f"
HEADER_KEY = "azure-VOICEWIRE-header-9z8y7x6w"
Record = Callable[[OpenAIRealtimeWebSocket], "EventLog"]


def _keep_for_review(captured: str) -> None:
    target = os.environ.get("VOICEWIRE_TEST_SECRETS_LOG")
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(f"--- {__name__}\n{captured}\n")


def _texts(log: EventLog, transport: OpenAIRealtimeWebSocket, *extra: Any) -> list[str]:
    texts = [repr(transport), str(transport)]
    for event in log.events:
        texts += [repr(event), str(event)]
        error = getattr(event, "error", None)
        if error is not None:
            texts += [repr(error), str(error)]
            cause = error.__cause__ or error.__context__
            if cause is not None:
                texts += [repr(cause), str(cause)]
    for item in extra:
        texts += [repr(item), str(item)]
    return texts


async def test_the_key_never_leaks(
    fake_server: ServerFactory,
    make_transport: TransportFactory,
    record: Record,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("websockets", "websockets.client", "voicewire", "aiohttp"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        server = await fake_server(
            api_key=KEY,
            faults=[
                # Session 1 is the reconnect; 2 is the second connect; 3 its refused reconnect.
                CloseMidResponse(after_audio_deltas=2, sessions={0, 2}),
                RefuseConnection(status=503, sessions={3}),
            ],
        )

        async def fetch_key() -> str:
            return KEY

        transport = make_transport(
            url=server.url,
            api_key=fetch_key,
            reconnect=ReconnectPolicy(initial_delay=0, jitter=0, max_attempts=1),
        )
        log = record(transport)
        await transport.connect()
        await transport.send_message("hello")
        await log.wait_event("reconnected")  # drop, new key from the callable, replay
        await transport.close()

        # A second session: a drop whose only reconnect attempt is refused.
        await transport.connect(ConnectOptions(api_key=KEY))
        await transport.send_message("hello again")
        await log.wait_event("reconnected", count=1)
        await log.wait_for(lambda: bool(log.errors("reconnect_failed")), "reconnect gave up")

        wrong = make_transport(url=server.url, api_key=WRONG)
        wrong_log = record(wrong)
        with pytest.raises(ConnectFailedError) as refused:
            await wrong.connect()
        assert refused.value.http_status == 401

        # A credential in an explicit header (Azure style) is hidden the same way.
        azure = make_transport(url=server.url, extra_headers={"api-key": HEADER_KEY})
        with pytest.raises(ConnectFailedError) as missing:
            await azure.connect()
        assert missing.value.http_status == 401
    finally:
        for name in ("websockets", "websockets.client", "voicewire", "aiohttp"):
            logging.getLogger(name).setLevel(logging.NOTSET)

    captured = "\n".join([caplog.text, *(record.getMessage() for record in caplog.records)])
    _keep_for_review(captured)

    # The handshake headers were logged, so the redaction was put to the test.
    assert "Authorization: Bearer ***" in captured
    assert "api-key: ***" in captured
    assert any(
        r.name == "websockets.client" and r.pathname.endswith("client.py") for r in caplog.records
    )
    texts = [
        captured,
        *_texts(log, transport),
        *_texts(wrong_log, wrong, refused.value, refused.value.__cause__),
        repr(azure),
        str(missing.value),
    ]
    for text in texts:
        assert KEY not in text
        assert WRONG not in text
        assert HEADER_KEY not in text
    assert {s.auth for s in server.sessions if s.http_status is None} == {"matched"}
