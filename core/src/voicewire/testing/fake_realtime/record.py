"""What the fake server saw and did, per session: the recording API tests assert on."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = ["AuthOutcome", "SessionLog", "SessionRecord", "TruncationRecord"]

AuthOutcome = Literal["not_required", "matched", "mismatched", "missing"]
"""What the ``Authorization`` check concluded (the key itself is never stored)."""


@attrs.frozen(kw_only=True)
class TruncationRecord:
    """One ``conversation.item.truncate`` the server received.

    Attributes:
        item_id: The item named by the client.
        content_index: The content index named by the client.
        audio_end_ms: Where the client asked to cut.
        audio_sent_ms: Audio of that item the server had sent (``None`` for an unknown item).
        accepted: Whether the server answered ``conversation.item.truncated``.
    """

    item_id: str
    content_index: int
    audio_end_ms: int
    audio_sent_ms: int | None
    accepted: bool


@attrs.frozen(kw_only=True)
class SessionRecord:
    """A snapshot of one connection attempt and, if it was accepted, its session.

    Attributes:
        index: The connection index (0 for the first upgrade request the server saw).
        model: The ``model`` query parameter, if any.
        auth: What the ``Authorization`` check concluded.
        http_status: The HTTP status of a refused upgrade (401, 503, ...); ``None`` once upgraded.
        client_events: Every JSON object the client sent, parsed, in order (invalid ones too).
        unparsed_frames: Client frames that were not JSON objects (text shortened to 200 chars).
        server_events: Every event the server sent, in order.
        truncations: Every truncation request, accepted or not.
        faults_triggered: Names of the fault knobs that fired in this session, in order.
        session: The effective session configuration at the time of the snapshot.
        closed: Whether the connection has ended.
    """

    index: int
    model: str | None
    auth: AuthOutcome
    http_status: int | None
    client_events: tuple[Mapping[str, Any], ...]
    unparsed_frames: tuple[str, ...]
    server_events: tuple[Mapping[str, Any], ...]
    truncations: tuple[TruncationRecord, ...]
    faults_triggered: tuple[str, ...]
    session: Mapping[str, Any] | None
    closed: bool

    def client_types(self) -> list[str]:
        """The ``type`` of every client event, in order."""
        return [str(e.get("type")) for e in self.client_events]

    def server_types(self) -> list[str]:
        """The ``type`` of every server event, in order."""
        return [str(e.get("type")) for e in self.server_events]

    def server_events_of(self, kind: str) -> list[Mapping[str, Any]]:
        """Server events of one ``type``, in order."""
        return [e for e in self.server_events if e.get("type") == kind]

    def client_events_of(self, kind: str) -> list[Mapping[str, Any]]:
        """Client events of one ``type``, in order."""
        return [e for e in self.client_events if e.get("type") == kind]

    def errors(self) -> list[Mapping[str, Any]]:
        """The ``error`` objects of every ``error`` event sent."""
        return [e["error"] for e in self.server_events_of("error")]

    def audio_sent(self, response_id: str | None = None) -> bytes:
        """The audio of every ``response.output_audio.delta`` sent, decoded and joined in order;
        only that of ``response_id`` if given."""
        return b"".join(
            base64.b64decode(str(e["delta"]))
            for e in self.server_events_of("response.output_audio.delta")
            if response_id is None or e.get("response_id") == response_id
        )

    def audio_received(self) -> bytes:
        """The audio of every ``input_audio_buffer.append`` received, decoded and joined in order
        (an append whose audio is not valid base64, which the server refused, is left out)."""
        chunks = []
        for event in self.client_events_of("input_audio_buffer.append"):
            try:
                chunks.append(base64.b64decode(str(event.get("audio")), validate=True))
            except (binascii.Error, ValueError):
                continue
        return b"".join(chunks)


class SessionLog:
    """The mutable recorder behind :class:`SessionRecord` (internal to the fake)."""

    def __init__(self, index: int, model: str | None, auth: AuthOutcome) -> None:
        self.index = index
        self.model = model
        self.auth: AuthOutcome = auth
        self.http_status: int | None = None
        self.client_events: list[Mapping[str, Any]] = []
        self.unparsed_frames: list[str] = []
        self.server_events: list[Mapping[str, Any]] = []
        self.truncations: list[TruncationRecord] = []
        self.faults_triggered: list[str] = []
        self.session: Mapping[str, Any] | None = None
        self.closed = False

    def snapshot(self) -> SessionRecord:
        """A frozen copy of the log as it is now."""
        return SessionRecord(
            index=self.index,
            model=self.model,
            auth=self.auth,
            http_status=self.http_status,
            client_events=tuple(self.client_events),
            unparsed_frames=tuple(self.unparsed_frames),
            server_events=tuple(self.server_events),
            truncations=tuple(self.truncations),
            faults_triggered=tuple(self.faults_triggered),
            session=self.session,
            closed=self.closed,
        )
