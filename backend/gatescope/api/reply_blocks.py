"""Shared-memory blocks for large binary replies: owned by the server, lent to workers.

A large `/run` body goes from the worker to the server in shared memory rather than
through the pool's pipe, which would pickle, copy and unpickle it (a fifth of the request's
time for 17 MiB). The server owns every block. It lends its largest free one to each binary
request and takes it back once the response is copied out or the request has ended, however
it ended. A worker whose reply does not fit makes a bigger block, named with the server's
prefix, and the server adopts it. So a worker that dies leaves at most a block it had just
made; the server sweeps its prefix when the pool is rebuilt and at shutdown, and at start
removes the blocks of servers that are gone.

Blocks are kept for reuse because a fresh one costs more than the copy: the kernel finds and
zeroes every page (~20 ms for 17 MiB here, against ~3 ms to write into a block used
before). A new block is allocated in full (posix_fallocate), so a full /dev/shm is an error
when it is made, and the reply goes through the pipe; never a SIGBUS in a worker writing
into it. Blocks are mapped with MAP_POPULATE: the page tables are filled in one call, not
by a fault on each of a 17 MiB body's 4,300 pages (~9 ms per reply here).
"""

from __future__ import annotations

import mmap
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import NamedTuple

from ..encoding import BinaryLayout

SHM_DIR = Path("/dev/shm")
MIN_BYTES = 1024 * 1024  # smaller bodies go through the pipe
KEEP_MAX_BYTES = 64 * 2**20  # a larger block is removed after its reply, not kept
_NAME = "gatescope_"  # + server pid + "_" + random hex
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux


class Block:
    """A file in /dev/shm, mapped into this process (made, and allocated in full, when
    `size` is given and `create` is set). Raises OSError if it cannot be."""

    def __init__(self, name: str, size: int | None = None, create: bool = False) -> None:
        path = SHM_DIR / name
        fd = os.open(path, os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0), 0o600)
        try:
            if create:
                os.posix_fallocate(fd, 0, size)  # every page now: ENOSPC here, not SIGBUS
            self.size = os.fstat(fd).st_size if size is None else size
            self.map = mmap.mmap(fd, self.size, flags=mmap.MAP_SHARED | _POPULATE)
        except BaseException:
            if create:
                path.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        self.name = name

    def remove(self) -> None:
        self.map.close()
        (SHM_DIR / self.name).unlink(missing_ok=True)


class Lent(NamedTuple):
    """A block lent to one request: its name and size in bytes."""

    name: str
    size: int


# ── in a worker ──────────────────────────────────────────────────────────────────────
def write(layout: BinaryLayout, lent: Lent | None, prefix: str) -> str | None:
    """Write a binary body into the lent block if it fits, else into a new block with the
    server's `prefix`; the block's name, or None if the body should go through the pipe
    (too small, or no room in /dev/shm)."""
    if layout.size < MIN_BYTES:
        return None
    try:
        if lent is not None and lent.size >= layout.size:
            block = _mapped.pop(lent.name, None) or Block(lent.name, lent.size)
        elif _has_room(size := layout.size + layout.size // 4):  # room to grow
            block = Block(prefix + secrets.token_hex(8), size, create=True)
        else:
            return None
    except OSError:
        return None
    with memoryview(block.map) as view:
        layout.write_into(view)
    _mapped[block.name] = block  # kept mapped for the next time it is lent here
    while len(_mapped) > _MAPPED_MAX:
        _mapped.pop(next(iter(_mapped))).map.close()  # the least recently used
    return block.name


# A worker keeps its last few blocks mapped: mapping one again costs ~3 ms for 17 MiB. A
# block the server has removed since stays in memory until it drops out of here.
_MAPPED_MAX = 2
_mapped: dict[str, Block] = {}


def _has_room(size: int) -> bool:
    try:
        return shutil.disk_usage(SHM_DIR).free > 2 * size
    except OSError:
        return False  # no /dev/shm here: the pipe it is


# ── in the server ────────────────────────────────────────────────────────────────────
class ReplyBlocks:
    """The server's blocks: at most `keep` free ones are kept between requests."""

    def __init__(self, keep: int) -> None:
        self.prefix = f"{_NAME}{os.getpid()}_"
        self.keep = keep
        self.owned: dict[str, Block] = {}
        self.free: list[Block] = []
        sweep_gone_servers()

    def lend(self) -> Lent | None:
        """The largest free block, for one binary request, or None."""
        if not self.free:
            return None
        block = max(self.free, key=lambda b: b.size)
        self.free.remove(block)
        return Lent(block.name, block.size)

    def read(self, name: str, size: int) -> bytes:
        """A copy of the first `size` bytes of a block, adopting a block a worker made."""
        return self._own(name).map[:size]

    def give_back(self, *names: str | None) -> None:
        """Blocks a request has finished with: kept for the next, or removed."""
        for name in dict.fromkeys(n for n in names if n is not None):
            try:
                block = self._own(name)  # or adopt one made for a reply nobody read
            except FileNotFoundError:
                continue
            if block in self.free:
                continue
            if block.size > KEEP_MAX_BYTES or len(self.free) >= self.keep:
                self._remove(block)
            else:
                self.free.append(block)

    def sweep(self, min_age: float = 10.0) -> None:
        """Remove blocks with this server's prefix that it does not own: made by a worker
        that died before it reported them. Younger ones may still be on their way."""
        for path in _blocks(self.prefix):
            if path.name not in self.owned and _age(path) >= min_age:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """At shutdown: remove every block."""
        for block in list(self.owned.values()):
            self._remove(block)
        self.sweep(min_age=0.0)

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
    """Remove the blocks of gatescope servers that are no longer running (a crash)."""
    for path in _blocks(_NAME):
        pid = path.name[len(_NAME):].split("_")[0]
        if pid.isdigit() and not _running(int(pid)):
            path.unlink(missing_ok=True)


def _blocks(prefix: str) -> list[Path]:
    try:
        return [p for p in SHM_DIR.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return []


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
