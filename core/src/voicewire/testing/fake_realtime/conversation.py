"""The fake's conversation store: items in order, with the audio behind each audio item."""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from typing import Any

from voicewire.audio.formats import AudioFormat

__all__ = ["Conversation"]


class Conversation:
    """Ordered conversation items (GA wire dicts without audio) plus each item's audio bytes."""

    def __init__(self) -> None:
        self._items: list[dict[str, Any]] = []
        self._audio: dict[str, tuple[bytearray, AudioFormat]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def ids(self) -> list[str]:
        """Item ids in conversation order."""
        return [str(item["id"]) for item in self._items]

    def last_id(self) -> str | None:
        """The id of the last item, or ``None`` for an empty conversation."""
        return str(self._items[-1]["id"]) if self._items else None

    def items(self) -> list[dict[str, Any]]:
        """Copies of the items, in order."""
        return copy.deepcopy(self._items)

    def get(self, item_id: str) -> dict[str, Any] | None:
        """A copy of one item, or ``None``."""
        for item in self._items:
            if item["id"] == item_id:
                return copy.deepcopy(item)
        return None

    def __contains__(self, item_id: object) -> bool:
        return any(item["id"] == item_id for item in self._items)

    def insert(self, item: Mapping[str, Any], after: str | object | None = ...) -> str | None:
        """Insert an item; return the id of the item before it (``None`` at the start).

        Args:
            item: The item (with its ``id``).
            after: ``...`` appends; ``None`` inserts at the start; an id inserts after that item.
        """
        stored = copy.deepcopy(dict(item))
        if after is ...:
            previous = self.last_id()
            self._items.append(stored)
            return previous
        if after is None:
            self._items.insert(0, stored)
            return None
        index = self.ids().index(str(after))
        self._items.insert(index + 1, stored)
        return str(after)

    def replace(self, item: Mapping[str, Any]) -> None:
        """Replace the item that has the same ``id`` (no-op if it is gone)."""
        for i, existing in enumerate(self._items):
            if existing["id"] == item["id"]:
                self._items[i] = copy.deepcopy(dict(item))
                return

    def previous_id(self, item_id: str) -> str | None:
        """The id of the item before ``item_id``."""
        ids = self.ids()
        index = ids.index(item_id)
        return ids[index - 1] if index > 0 else None

    def delete(self, item_id: str) -> bool:
        """Remove an item; return whether it existed."""
        for i, item in enumerate(self._items):
            if item["id"] == item_id:
                del self._items[i]
                self._audio.pop(item_id, None)
                return True
        return False

    def add_audio(self, item_id: str, data: bytes, fmt: AudioFormat) -> None:
        """Append audio to an item's stored audio."""
        buf, _ = self._audio.setdefault(item_id, (bytearray(), fmt))
        buf += data

    def audio(self, item_id: str) -> tuple[bytes, AudioFormat] | None:
        """An item's audio and its format, if it has any."""
        entry = self._audio.get(item_id)
        return (bytes(entry[0]), entry[1]) if entry is not None else None

    def audio_ms(self, item_id: str) -> float:
        """Milliseconds of audio stored for an item (0 if none)."""
        entry = self._audio.get(item_id)
        return entry[1].duration_ms(len(entry[0])) if entry is not None else 0.0

    def cut_audio(self, item_id: str, end_ms: int) -> None:
        """Keep only the first ``end_ms`` milliseconds of an item's audio."""
        entry = self._audio.get(item_id)
        if entry is not None:
            buf, fmt = entry
            del buf[fmt.nbytes_for_ms(end_ms) :]

    def with_audio(self, item_id: str) -> dict[str, Any] | None:
        """An item as ``conversation.item.retrieved`` shows it: audio parts carry base64 audio."""
        item = self.get(item_id)
        if item is None:
            return None
        stored = self.audio(item_id)
        if stored is not None:
            for part in item.get("content", []):
                if part.get("type") in ("input_audio", "output_audio"):
                    part["audio"] = base64.b64encode(stored[0]).decode("ascii")
        return item
