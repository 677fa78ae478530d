"""voicewire.allocator.warm_up: after it, a 256 KiB buffer (asyncio's receive size) comes from the
heap, not from a mapping of its own. Checked in fresh interpreters: the test process's allocator
has long been warmed by whatever ran before."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from voicewire.allocator import warm_up

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the mmap threshold is glibc's",
)

# Prints whether a new 256 KiB buffer lies inside the [heap] mapping of /proc/self/maps.
PROBE = textwrap.dedent(
    """
    import ctypes, sys
    if sys.argv[1] == "warm":
        from voicewire.allocator import warm_up
        warm_up()
    buffer = bytearray(256 * 1024 + 64)
    address = ctypes.addressof((ctypes.c_char * 1).from_buffer(buffer))
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            low, high = (int(part, 16) for part in line.split()[0].split("-"))
            print(low <= address < high)
            break
    else:
        print(False)
    """
)


def _from_heap(mode: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], check=True, capture_output=True, text=True
    ).stdout
    return out.strip() == "True"


@glibc_only
def test_after_warm_up_a_receive_sized_buffer_comes_from_the_heap() -> None:
    assert _from_heap("warm")


@glibc_only
def test_a_fresh_interpreter_maps_such_a_buffer_on_its_own() -> None:
    # Why warm_up exists: without it the same buffer is an mmap (and later a munmap) of its own.
    assert not _from_heap("cold")


def test_a_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        warm_up(0)
    warm_up(4096)  # a small block is merely allocated and freed
