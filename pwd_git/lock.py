"""A process lock that cannot go stale: `flock` on a file that also records the holder's pid.

The kernel drops the lock when the holder dies (kill -9 included), so a lock file left by a
dead process is simply taken over; the pid inside is only for messages ("pid 1234 is
running the queue"). POSIX only, like git hooks themselves.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path


class LockHeld(Exception):
    """Another live process holds the lock."""

    def __init__(self, path: Path, pid: int | None):
        super().__init__(f"{path} is held by pid {pid}")
        self.path, self.pid = path, pid


class PidLock:
    """`with PidLock(path):` or acquire()/release(); raises LockHeld when taken (after waiting
    up to `wait` seconds for the holder to let go: short critical sections such as a notes
    write queue up instead of failing)."""

    def __init__(self, path: Path, wait: float = 0.0):
        self.path, self.wait = path, wait
        self.fd: int | None = None

    def acquire(self) -> PidLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockHeld(self.path, holder(self.path)) from None
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> PidLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(path: Path) -> int | None:
    """The pid recorded in `path` if that process is alive (for messages; never locks, so
    asking cannot make a real acquire fail)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
