"""Keep freed memory for the next run instead of returning it to the system.

A T = 1024, H = 256 run allocates ~100 MB of arrays. glibc's malloc serves blocks over its
mmap threshold with fresh pages from the kernel and gives freed heap tops back, so every run
touched ~7,500 new pages; each first touch is a page fault, and in a virtual machine a
fault costs microseconds: ~25 ms of a 130 ms run. Raising the mmap threshold to its
maximum (32 MiB) and the trim threshold to 256 MiB lets the next run reuse the same pages:
after the first run a run faults almost never.

The cost: the process keeps freed memory rather than returning it, up to 256 MiB at the
top of its heap and whatever sits below live blocks. It applies to the whole process that
imports gatescope's engine (a notebook, the server's workers, the trainer), which is why
it is said here and in the README.
"""

from __future__ import annotations

import ctypes
import sys

MMAP_THRESHOLD = 32 * 2**20  # glibc's upper limit for M_MMAP_THRESHOLD on 64-bit systems
TRIM_THRESHOLD = 256 * 2**20

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as above; True if it applied (Linux with glibc), else a no-op."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
