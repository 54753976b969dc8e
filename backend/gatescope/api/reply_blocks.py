"""Shared-memory blocks for large binary replies: owned by the server, lent to workers.

A large `/run` body goes from the worker to the server in shared memory rather than
through the pool's pipe, which would pickle, copy and unpickle it (a fifth of the request's
time for 17 MiB). The server owns every block. It lends its largest free one to each binary
request and takes it back once the request has ended, however it ended. A worker whose
reply does not fit makes a bigger block, named with the server's prefix, and the server
adopts it. A worker that dies can leave a block it had just made: the server sweeps its
prefix when it rebuilds the pool (at once, and again once such a block can no longer be a
reply on its way) and at shutdown. Each server holds a lock file while it runs; a new
server removes the blocks of every server whose lock is free (one that crashed), which
works across processes that cannot see each other's pids.

Blocks are kept for reuse because a fresh one costs more than the copy: the kernel finds and
zeroes every page (~20 ms for 17 MiB here, against ~3 ms to write into a block used
before). A new block is allocated in full (posix_fallocate), so a full /dev/shm is an error
when it is made, and the reply goes through the pipe; never a SIGBUS in a worker writing
into it. Blocks are mapped with MAP_POPULATE: the page tables are filled in one call, not
by a fault on each of a 17 MiB body's 4,300 pages (~9 ms per reply here).

Linux only (/dev/shm, posix_fallocate, flock); elsewhere every reply takes the pipe.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
import shutil
import sys
import time
import weakref
from pathlib import Path
from typing import NamedTuple, Protocol


class Writable(Protocol):
    """A body that knows its size and writes itself into a buffer (BinaryLayout, Raw)."""

    size: int

    def write_into(self, buffer: memoryview | bytearray) -> None: ...


class Raw:
    """Encoded bytes (JSON, typed arrays) as a Writable."""

    def __init__(self, data: bytes) -> None:
        self.data, self.size = data, len(data)

    def write_into(self, buffer: memoryview | bytearray) -> None:
        buffer[:self.size] = self.data

    def tobytes(self) -> bytes:
        return self.data

SHM_DIR = Path("/dev/shm")
MIN_BYTES = 1024 * 1024  # smaller bodies go through the pipe
KEEP_MAX_BYTES = 64 * 2**20  # a larger block is removed after its reply, not kept
SWEEP_AFTER = 15.0  # s: a block made this long ago and not reported was a dead worker's
_NAME = "gatescope_"  # + server pid + "_" + random hex + "_" + (random hex | "lock")
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


def available() -> bool:
    return sys.platform == "linux" and SHM_DIR.is_dir()


class Lent(NamedTuple):
    """A block lent to one request: its name and size in bytes."""

    name: str
    size: int


class Block:
    """A file in /dev/shm, mapped into this process (made, and allocated in full, when
    `create` is set). Raises OSError if it cannot be."""

    def __init__(self, name: str, size: int | None = None, create: bool = False) -> None:
        path = SHM_DIR / name
        fd = os.open(path, os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0), 0o600)
        try:
            if create:
                assert size is not None, "a new block needs its size"
                os.posix_fallocate(fd, 0, size)  # every page now: ENOSPC here, not SIGBUS
            self.size = os.fstat(fd).st_size if size is None else size
            self.map = mmap.mmap(fd, self.size, flags=mmap.MAP_SHARED | _POPULATE)
        except BaseException:
            if create:
                _unlink(path)
            raise
        finally:
            os.close(fd)
        self.name = name

    def gone(self) -> bool:
        """Whether its file has been removed (by the server, or by someone else)."""
        return not (SHM_DIR / self.name).exists()  # names are random: never made again

    def remove(self) -> None:
        self.map.close()
        _unlink(SHM_DIR / self.name)


# ── in a worker ──────────────────────────────────────────────────────────────────────
def write(layout: Writable, lent: Lent | None, prefix: str) -> str | None:
    """Write a body into the lent block if it fits, else into a new block with the
    server's `prefix`; the block's name, or None if the body should go through the pipe
    (too small, or no room in /dev/shm)."""
    if layout.size < MIN_BYTES or not available():
        return None
    created = False
    try:
        if lent is not None and lent.size >= layout.size:
            block = _mapped.pop(lent.name, None) or Block(lent.name, lent.size)
        elif _has_room(size := layout.size + layout.size // 4):  # room to grow
            block, created = Block(prefix + secrets.token_hex(8), size, create=True), True
        else:
            return None
    except OSError:
        return None
    try:
        with memoryview(block.map) as view:
            layout.write_into(view)
    except BaseException:
        block.remove() if created else block.map.close()
        raise
    _keep_mapped(block)
    return block.name


def _keep_mapped(block: Block) -> None:
    """A worker keeps its last few blocks mapped: mapping one again costs ~3 ms for 17 MiB.
    Not those the server will not keep, nor those it has removed since: a mapping would
    hold their memory."""
    for name in [n for n, b in _mapped.items() if b.gone()]:
        _mapped.pop(name).map.close()
    if block.size > KEEP_MAX_BYTES:
        block.map.close()
        return
    _mapped[block.name] = block
    while len(_mapped) > _MAPPED_MAX:
        _mapped.pop(next(iter(_mapped))).map.close()  # the least recently used


_MAPPED_MAX = 2
_mapped: dict[str, Block] = {}


def _has_room(size: int) -> bool:
    try:
        return shutil.disk_usage(SHM_DIR).free > 2 * size
    except OSError:
        return False


# ── in the server ────────────────────────────────────────────────────────────────────
class ReplyBlocks:
    """The server's blocks: at most `keep` free ones, the largest, are kept between
    requests."""

    def __init__(self, keep: int) -> None:
        self.prefix = f"{_NAME}{os.getpid()}_{secrets.token_hex(4)}_"
        self.keep = keep
        self.owned: dict[str, Block] = {}
        self.free: list[Block] = []
        self._lock = _hold(SHM_DIR / (self.prefix + "lock")) if available() else None
        # at close(), or at exit for a server never closed: its files and its lock go
        self._release = weakref.finalize(self, _release, self.prefix, self._lock)
        sweep_gone_servers()

    def lend(self) -> Lent | None:
        """The largest free block, for one binary request, or None."""
        for block in [b for b in self.free if b.gone()]:
            self._remove(block)  # someone removed its file: it cannot be lent
        if not self.free:
            return None
        block = max(self.free, key=lambda b: b.size)
        self.free.remove(block)
        return Lent(block.name, block.size)

    def adopt(self, name: str) -> Block:
        """A block a reply is in, mapped here (a block a worker made becomes the server's).
        Raises OSError or ValueError if the block cannot be read."""
        return self._own(name)

    def read(self, name: str, size: int) -> bytes:
        """A copy of the first `size` bytes of a block (adopt(), and read it whole)."""
        return self.adopt(name).map[:size]

    def give_back(self, *names: str | None) -> None:
        """Blocks a request has finished with: kept for the next if among the `keep`
        largest, else removed."""
        for name in dict.fromkeys(n for n in names if n is not None):
            block = self.owned.get(name)
            if block is None:  # made by a worker for a reply nobody read: not kept
                _unlink(SHM_DIR / name)
                continue
            if block in self.free:
                continue
            self.free.append(block)
            self.free.sort(key=lambda b: b.size, reverse=True)
            doomed = self.free[self.keep:] + [b for b in self.free[:self.keep]
                                              if b.size > KEEP_MAX_BYTES]
            for extra in doomed:
                self._remove(extra)

    def discard(self, name: str | None) -> None:
        """A block that may still be written into (its worker's pool broke): removed."""
        if name is not None:
            if name in self.owned:
                self._remove(self.owned[name])
            else:
                _unlink(SHM_DIR / name)

    def sweep(self, min_age: float | None = None) -> None:
        """Remove blocks with this server's prefix that it does not own: made by a worker
        that died before it reported them. Younger ones (SWEEP_AFTER) may be on their way."""
        min_age = SWEEP_AFTER if min_age is None else min_age
        for path in _files(self.prefix):
            if path.name not in self.owned and not path.name.endswith("lock") \
                    and _age(path) >= min_age:
                _unlink(path)

    def close(self) -> None:
        """At shutdown: remove every block, then the lock."""
        for block in list(self.owned.values()):
            self._remove(block)
        self._release()

    def _own(self, name: str) -> Block:
        block = self.owned.get(name)
        if block is None:
            block = self.owned[name] = Block(name)
        return block

    def _remove(self, block: Block) -> None:
        self.owned.pop(block.name, None)
        if block in self.free:
            self.free.remove(block)
        block.remove()


def sweep_gone_servers() -> None:
    """Remove the blocks of gatescope servers that no longer run: those whose lock file
    nobody holds, or that have none."""
    import fcntl  # (Unix only: imported where it is used)

    prefixes = {p.name.rsplit("_", 1)[0] + "_" for p in _files(_NAME)}
    for prefix in prefixes:
        lock = SHM_DIR / (prefix + "lock")
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            fd = None  # no lock: its server is gone
        except OSError:
            continue  # not ours to judge
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its server runs
            for path in _files(prefix):
                _unlink(path)
        finally:
            if fd is not None:
                os.close(fd)


def _release(prefix: str, lock: int | None) -> None:
    """Remove every file with this prefix, the lock last, and let the lock go."""
    for path in sorted(_files(prefix), key=lambda p: p.name.endswith("lock")):
        _unlink(path)
    if lock is not None:
        with contextlib.suppress(OSError):
            os.close(lock)


def _hold(path: Path) -> int | None:
    """An exclusive lock on `path` for as long as this process runs (the fd is kept)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _files(prefix: str) -> list[Path]:
    if not available():
        return []
    try:
        return [p for p in SHM_DIR.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return []


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):  # another user's file in the sticky /dev/shm, say
        path.unlink(missing_ok=True)
