"""Process set-up for servers that move many small socket messages: the C allocator's warm-up.

asyncio reads a socket into a new buffer of 256 KiB (``max_size`` of its selector transports)
and shrinks it to what arrived, a few hundred bytes for a media frame. glibc serves a request of
that size with ``mmap`` until its *mmap threshold* (128 KiB at start) has risen past it, and it
rises only when a block above the threshold is freed whole. A shrunk receive buffer never is, so
a process that happened not to free such a block at start-up pays ``mmap``, ``mremap`` and
``munmap`` (three system calls and a page fault) for every message it receives, for as long as it
runs. Seen in ``voicewire serve`` at 40 calls: one such triple per ``recvfrom``; with it gone (and
one other per-frame system call) the bridge used 13 % less CPU per call (docs/performance.md).

:func:`warm_up` frees one block of 1 MiB at start-up, which raises the threshold for good. Every
asyncio command of the ``voicewire`` CLI calls it; an application that runs the bridge in its own
process (its own aiohttp server, say) can call it once at start-up, or set the environment
variable ``MALLOC_MMAP_THRESHOLD_=1048576`` before Python starts (which also turns glibc's own
adjustment off).
"""

from __future__ import annotations

__all__ = ["warm_up"]

_DEFAULT_SIZE = 1 << 20


def warm_up(size: int = _DEFAULT_SIZE) -> None:
    """Allocate and free ``size`` bytes once, so that glibc serves smaller blocks from its heap.

    Harmless elsewhere: with another C library, or a threshold already higher, it allocates and
    frees a block and changes nothing. The heap may then keep up to twice ``size`` of free memory
    before it gives it back to the system.

    Args:
        size: Bytes; above every buffer the process allocates per message (asyncio's 256 KiB).

    Raises:
        ValueError: ``size`` is not positive.
    """
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    block = bytearray(size)
    del block
