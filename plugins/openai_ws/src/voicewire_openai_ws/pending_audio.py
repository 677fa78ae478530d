"""``PendingAudio``: input audio held while the transport is (re)connecting.

The reference transport drops audio sent before the socket is open. Here it is kept, up to a
byte limit, and sent in order once the session is ready. When the limit would be exceeded the
*oldest* whole chunks go first: after an outage the model hears the most recent speech, which is
what the caller is still talking about. Every dropped byte is counted; the transport reports it.
"""

from __future__ import annotations

from collections import deque

__all__ = ["PendingAudio"]


class PendingAudio:
    """A bounded FIFO of ``(audio, commit)`` chunks.

    Chunks are dropped whole (never cut), so a chunk aligned on samples stays aligned. A chunk
    larger than the whole limit is dropped itself rather than emptying the buffer for it. A
    dropped chunk's ``commit`` goes with it: committing a turn whose audio is gone would only
    make the server refuse an empty commit.

    Args:
        limit: Capacity in bytes (0: hold nothing, every chunk is dropped and counted).
    """

    __slots__ = ("_chunks", "_dropped_bytes", "_dropped_chunks", "_limit", "_size")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: deque[tuple[bytes, bool]] = deque()
        self._size = 0
        self._dropped_bytes = 0
        self._dropped_chunks = 0

    @property
    def limit(self) -> int:
        """Capacity in bytes."""
        return self._limit

    @property
    def size(self) -> int:
        """Bytes held."""
        return self._size

    @property
    def dropped_bytes(self) -> int:
        """Bytes dropped since the last :meth:`reset_counters`."""
        return self._dropped_bytes

    @property
    def dropped_chunks(self) -> int:
        """Chunks dropped since the last :meth:`reset_counters`."""
        return self._dropped_chunks

    def __len__(self) -> int:
        return len(self._chunks)

    def __bool__(self) -> bool:
        return bool(self._chunks)

    def add(self, data: bytes, commit: bool = False) -> int:
        """Append a chunk, dropping the oldest ones if it does not fit.

        Args:
            data: Audio bytes (may be empty when ``commit`` is set).
            commit: Whether the user turn ends after this chunk.

        Returns:
            How many bytes this call dropped (0 when everything fit).
        """
        size = len(data)
        if size > self._limit:
            self._count_drop(size)
            return size
        dropped = 0
        while self._size + size > self._limit and self._chunks:
            old, _ = self._chunks.popleft()
            self._size -= len(old)
            dropped += len(old)
            self._count_drop(len(old))
        self._chunks.append((data, commit))
        self._size += size
        return dropped

    def _count_drop(self, size: int) -> None:
        self._dropped_bytes += size
        self._dropped_chunks += 1

    def take(self) -> list[tuple[bytes, bool]]:
        """Remove everything held, merged into as few sends as the commits allow.

        Returns:
            ``(audio, commit)`` pairs in order: consecutive chunks are joined, and a run ends at
            each commit.
        """
        runs: list[tuple[bytes, bool]] = []
        parts: list[bytes] = []
        for data, commit in self._chunks:
            parts.append(data)
            if commit:
                runs.append((b"".join(parts), True))
                parts = []
        if parts:
            runs.append((b"".join(parts), False))
        self._chunks.clear()
        self._size = 0
        return runs

    def clear(self) -> int:
        """Discard everything held.

        Returns:
            How many bytes were discarded.
        """
        size = self._size
        self._chunks.clear()
        self._size = 0
        return size

    def reset_counters(self) -> None:
        """Start counting drops from zero."""
        self._dropped_bytes = 0
        self._dropped_chunks = 0
