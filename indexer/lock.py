"""One writer per store: an exclusive, non-blocking ``flock`` on a lock file.

The kernel drops the lock when the holder dies, even on ``kill -9``, so a crashed indexer never leaves a
stale lock behind. The holder writes its pid and start time into the file for the error message.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from catalens.indexer.errors import StoreLockedError


class WriterLock:
    """An exclusive lock on ``path``; use as a context manager.

    Raises:
        StoreLockedError: on entry, when another process holds the lock.
    """

    def __init__(self, path: Path, store: str) -> None:
        self._path = path
        self._store = store
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown process"
            os.close(fd)
            raise StoreLockedError(self._store, holder) from None
        try:  # who holds the lock, for the message a second writer gets; a full disk must not leak the lock
            os.ftruncate(fd, 0)
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {started}".encode(), 0)
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
