"""One writer per store: the lock file's ``flock``, and what happens when writing its holder line fails."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from catalens.indexer.errors import StoreLockedError
from catalens.indexer.lock import WriterLock


def test_a_second_writer_is_refused_with_the_holder(tmp_path: Path) -> None:
    with WriterLock(tmp_path / "lock", "store"):
        with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
            WriterLock(tmp_path / "lock", "store").acquire()
    with WriterLock(tmp_path / "lock", "store"):  # released on exit
        pass


def test_a_full_disk_while_writing_the_holder_line_does_not_leak_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(os, "pwrite", full)
        with pytest.raises(OSError, match="No space left"):
            WriterLock(tmp_path / "lock", "store").acquire()
    # Had the failed attempt kept its descriptor, this process would now be locked out of its own store.
    with WriterLock(tmp_path / "lock", "store"):
        pass
