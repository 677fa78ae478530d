"""History diff: the client events that make the server's conversation match a new history.

Rules, applied to ``old`` (what the server has) and ``new`` (what it should have), by item id:

1. *removed*: in ``old`` only; *added*: in ``new`` only (an item with an empty id is always
   added, and the server gives it an id); *changed*: in both, but not equal.
2. If an added or changed item is an assistant message holding ``output_audio``, raise
   :class:`~voicewire_openai_ws.protocol.errors.HistoryReplayError` **before producing any
   event**: the server does not take model audio from a client, and a half-applied history is
   worse than none. Unchanged assistant audio is fine.
3. ``conversation.item.delete`` for every removed item (``old`` order), then for every changed one
   (``new`` order), each id once.
4. ``conversation.item.create`` for every added item, then every changed one (``new`` order within
   each group), with the item's id; no ``previous_item_id``, so recreated items go to the end of
   the server's conversation.

Only messages can be recreated faithfully. Function calls, their outputs and MCP items are left
out of steps 3-4 when changed or added (a warning is logged): deleting a call the client cannot
put back would lose it. Removing them works.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from voicewire.items import (
    AssistantMessageItem,
    OutputAudio,
    RealtimeItem,
    SystemMessageItem,
    UserMessageItem,
)
from voicewire_openai_ws.protocol.client_events import (
    conversation_item_create,
    conversation_item_delete,
)
from voicewire_openai_ws.protocol.errors import HistoryReplayError

__all__ = ["diff_history", "is_recreatable"]

_log = logging.getLogger(__name__)

_MESSAGES = (SystemMessageItem, UserMessageItem, AssistantMessageItem)


def _holds_model_audio(item: RealtimeItem) -> bool:
    return isinstance(item, AssistantMessageItem) and any(
        isinstance(part, OutputAudio) for part in item.content
    )


def is_recreatable(item: RealtimeItem) -> bool:
    """Whether :func:`diff_history` can (re)create this kind of item: messages only."""
    return isinstance(item, _MESSAGES)


def diff_history(old: Sequence[RealtimeItem], new: Sequence[RealtimeItem]) -> list[dict[str, Any]]:
    """The deletes, then creates, that turn ``old`` into ``new`` on the server.

    Args:
        old: The conversation as the server has it.
        new: The conversation wanted.

    Returns:
        Client events, in sending order; empty when nothing changed.

    Raises:
        HistoryReplayError: An added or changed assistant message holds ``output_audio``. Raised
            before anything is produced.
    """
    old_by_id = {item.item_id: item for item in old if item.item_id}
    new_ids = {item.item_id for item in new if item.item_id}
    removed = [item for item in old if item.item_id and item.item_id not in new_ids]
    added: list[RealtimeItem] = []
    changed: list[RealtimeItem] = []
    seen: set[str] = set()
    for item in new:
        if item.item_id in seen:
            continue  # the server holds one item per id; a repeated id is one item
        if item.item_id:
            seen.add(item.item_id)
        previous = old_by_id.get(item.item_id) if item.item_id else None
        if previous is None:
            added.append(item)
        elif previous != item:
            changed.append(item)

    for item in (*added, *changed):
        if _holds_model_audio(item):
            raise HistoryReplayError(
                item.item_id,
                f"assistant message {item.item_id!r} holds output_audio, which cannot be sent to "
                "the server; turn its transcript into an OutputText part, or remove the item, "
                "before resetting the history (nothing was sent)",
            )

    skipped = [item for item in (*added, *changed) if not is_recreatable(item)]
    for item in skipped:
        _log.warning(
            "history reset: %s item %r cannot be added or changed by the client; left as it is",
            item.type,
            item.item_id,
        )
    changed = [item for item in changed if is_recreatable(item)]
    added = [item for item in added if is_recreatable(item)]

    events: list[dict[str, Any]] = []
    deleted: set[str] = set()
    for item in (*removed, *changed):
        if item.item_id not in deleted:
            deleted.add(item.item_id)
            events.append(conversation_item_delete(item.item_id))
    events.extend(conversation_item_create(item) for item in (*added, *changed))
    return events
