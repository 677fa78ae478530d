"""The conversation as the server confirmed it, kept so it can be replayed on a new connection.

:class:`ConversationState` follows ``conversation.item.added``, ``.done``, ``.retrieved`` and
``.deleted``. Items are kept in conversation order (after their ``previous_item_id`` when the
state knows it, else at the end). Audio payloads are not kept: a long call would hold megabytes
of base64 that a replay cannot use anyway.

A replay (:meth:`ConversationState.replay_events`) recreates what a new session can take:

* system messages as they are;
* user messages with ``input_audio`` parts turned into ``input_text`` of their transcript (the
  model never reads an audio part's transcript, and the audio is gone); parts without a
  transcript are left out;
* assistant messages with ``output_audio`` turned into ``output_text`` of their transcript (the
  server does not take model audio from a client);
* function calls and their outputs as they are;
* items left without content, and MCP items (server-side state the client cannot recreate), are
  skipped.

Item ids are kept, so events about replayed items still match the application's history. A status
of ``in_progress`` is sent as ``incomplete``: nothing is in progress in a new session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from voicewire.config import SessionConfig
from voicewire.errors import ProtocolError
from voicewire.items import (
    AssistantContent,
    AssistantMessageItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputAudio,
    InputText,
    ItemStatus,
    OutputAudio,
    OutputText,
    RealtimeItem,
    SystemMessageItem,
    UserContent,
    UserMessageItem,
    item_from_wire,
)
from voicewire_openai_ws.protocol.client_events import conversation_item_create, session_update
from voicewire_openai_ws.protocol.session_payload import build_session_payload

__all__ = ["ConversationState", "replayable"]

_ITEM_EVENTS: dict[str, ItemStatus] = {
    "conversation.item.added": "in_progress",
    "conversation.item.done": "completed",
    "conversation.item.retrieved": "completed",
}


def _without_audio(item: RealtimeItem) -> RealtimeItem:
    if isinstance(item, UserMessageItem) and any(
        isinstance(p, InputAudio) and p.audio is not None for p in item.content
    ):
        user_parts: list[UserContent] = [
            attrs.evolve(p, audio=None) if isinstance(p, InputAudio) else p for p in item.content
        ]
        return attrs.evolve(item, content=user_parts)
    if isinstance(item, AssistantMessageItem) and any(
        isinstance(p, OutputAudio) and p.audio is not None for p in item.content
    ):
        parts: list[AssistantContent] = [
            attrs.evolve(p, audio=None) if isinstance(p, OutputAudio) else p for p in item.content
        ]
        return attrs.evolve(item, content=parts)
    return item


def replayable(item: RealtimeItem) -> RealtimeItem | None:
    """The form of ``item`` a new session can take, or ``None`` if it cannot be replayed.

    See the module documentation for the conversions.
    """
    if isinstance(item, SystemMessageItem | FunctionCallOutputItem):
        return item
    if isinstance(item, FunctionCallItem):
        return _settled(item)
    if isinstance(item, UserMessageItem):
        user_parts: list[UserContent] = []
        for part in item.content:
            if not isinstance(part, InputAudio):
                user_parts.append(part)
            elif part.transcript:
                user_parts.append(InputText(text=part.transcript))
        return _settled(attrs.evolve(item, content=user_parts)) if user_parts else None
    if isinstance(item, AssistantMessageItem):
        parts: list[AssistantContent] = []
        for piece in item.content:
            if not isinstance(piece, OutputAudio):
                parts.append(piece)
            elif piece.transcript:
                parts.append(OutputText(text=piece.transcript))
        return _settled(attrs.evolve(item, content=parts)) if parts else None
    return None


def _settled(
    item: UserMessageItem | AssistantMessageItem | FunctionCallItem,
) -> UserMessageItem | AssistantMessageItem | FunctionCallItem:
    if item.status == "in_progress":
        return attrs.evolve(item, status="incomplete")
    return item


class ConversationState:
    """The items the server confirmed, in order; fed with server events."""

    def __init__(self) -> None:
        self._order: list[str] = []
        self._items: dict[str, RealtimeItem] = {}

    def __len__(self) -> int:
        return len(self._order)

    def history(self) -> list[RealtimeItem]:
        """The confirmed items, in conversation order (audio payloads removed)."""
        return [self._items[item_id] for item_id in self._order]

    def get(self, item_id: str) -> RealtimeItem | None:
        """The confirmed item with this id, if any."""
        return self._items.get(item_id)

    def previous_item_id(self, item_id: str) -> str | None:
        """The id of the item before ``item_id``, as the server placed it, if known."""
        item = self._items.get(item_id)
        return None if item is None else item.previous_item_id

    def apply(self, message: Mapping[str, Any]) -> bool:
        """Apply one server event, if it is about a conversation item.

        Only pass events that parsed cleanly (see
        :attr:`~voicewire_openai_ws.protocol.server_events.ParsedFrame.usable`); items this
        state cannot represent are ignored.

        Returns:
            Whether the state changed.
        """
        kind = message.get("type")
        if kind == "conversation.item.deleted":
            return self.remove(message.get("item_id"))
        if not isinstance(kind, str) or kind not in _ITEM_EVENTS:
            return False
        raw = message.get("item")
        if not isinstance(raw, Mapping):
            return False
        previous = (
            message.get("previous_item_id") if kind != "conversation.item.retrieved" else None
        )
        try:
            item = item_from_wire(
                {**raw, "previous_item_id": previous},
                default_status=_ITEM_EVENTS[kind],
            )
        except ProtocolError:
            return False  # not an item voicewire represents (the parser reported it)
        self.upsert(item)
        return True

    def upsert(self, item: RealtimeItem) -> None:
        """Add an item, or replace the one with its id (keeping its place and known predecessor)."""
        item = _without_audio(item)
        existing = self._items.get(item.item_id)
        if existing is not None:
            if item.previous_item_id is None and existing.previous_item_id is not None:
                item = attrs.evolve(item, previous_item_id=existing.previous_item_id)
            self._items[item.item_id] = item
            return
        self._items[item.item_id] = item
        previous = item.previous_item_id
        if previous is not None and previous in self._items:
            self._order.insert(self._order.index(previous) + 1, item.item_id)
        else:
            self._order.append(item.item_id)

    def remove(self, item_id: object) -> bool:
        """Forget an item; returns whether it was known."""
        if not isinstance(item_id, str) or item_id not in self._items:
            return False
        del self._items[item_id]
        self._order.remove(item_id)
        return True

    def clear(self) -> None:
        """Forget every item."""
        self._order.clear()
        self._items.clear()

    def replay_events(self) -> list[dict[str, Any]]:
        """``conversation.item.create`` events that rebuild the conversation, in order."""
        events: list[dict[str, Any]] = []
        for item in self.history():
            replay = replayable(item)
            if replay is not None:
                events.append(conversation_item_create(replay))
        return events

    def replay_frames(
        self, config: SessionConfig | None = None, *, model: str | None = None
    ) -> list[dict[str, Any]]:
        """Everything a new connection needs: ``session.update`` for ``config``, then the items.

        Args:
            config: The session configuration to restore (``None``: defaults).
            model: The connection's model, when ``config`` does not name one.
        """
        return [session_update(build_session_payload(config, model=model)), *self.replay_events()]
