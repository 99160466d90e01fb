"""Online backup of a store directory: a consistent copy taken while an indexer may be writing.

The copy holds the SQLite database (through SQLite's online backup API, one read snapshot, so a writer in
WAL mode goes on undisturbed), the manifest, and the one index generation file the manifest names. Order
matters for consistency: the database is copied first, and the manifest is read after it. A writer
publishes a generation only after the vectors it holds are committed, and prunes change-log rows only after
switching the manifest, so the manifest read afterwards names a generation at least as new as the one
current at the snapshot; its items are in the copy as long as it was built at or before the copy's change
sequence, which is checked (and the copy taken again when a publish slipped in between).

The copy is built in a hidden sibling folder and renamed into place at the end, so the destination is
either a complete store or absent. Restoring is pointing ``--store`` at the copy (or moving it back).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import BinaryIO

from catalens.indexer.errors import StoreError
from catalens.indexer.fsutil import fsync_dir
from catalens.indexer.progress import NoProgress, ProgressSink
from catalens.indexer.store import DB_NAME, INDEX_DIR, CatalogStore, StoreManifest
from catalens.indexer.store.integrity import file_checksum
from catalens.indexer.store.manifest import read_manifest, write_manifest

#: Bytes per read when copying the index file (the unit progress advances by).
_CHUNK = 8 * 2**20


class BackupError(StoreError):
    """A backup could not be made: a bad destination, or no consistent copy within the attempts allowed."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot back up the store to {path!r}: {reason}")


@dataclass(frozen=True)
class BackupReport:
    """What a backup copied.

    Attributes:
        store: the source store directory.
        destination: the copy (a store directory of its own).
        items: item counts by status in the copy.
        vectors: vectors in the copy.
        generation: the index generation copied (``None`` when the store had none yet).
        index_count: vectors in that generation's file.
        seq: the copy's change sequence (readers apply changes after the generation's own on top).
        bytes: size of the copy on disk.
        attempts: snapshots taken (more than one when a publish slipped in while copying).
        seconds: wall time.
    """

    store: str
    destination: str
    items: dict[str, int]
    vectors: int
    generation: int | None
    index_count: int
    seq: int
    bytes: int
    attempts: int
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def backup_store(
    store_path: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    progress: ProgressSink | None = None,
    attempts: int = 5,
) -> BackupReport:
    """Copy a store consistently, while other processes may read it and one may write it.

    Args:
        store_path: the store to copy.
        destination: a new (or empty) directory for the copy; it must not lie inside the store.
        progress: receives a ``database`` phase and an ``index file`` phase (in bytes).
        attempts: snapshots to try before giving up when publishes keep slipping in between.

    Returns:
        What was copied.

    Raises:
        StoreNotFoundError, StoreVersionError, StoreCorruptError: the source store is unusable.
        BackupError: the destination is not empty or lies in the store, or no consistent copy was made.
    """
    sink = progress or NoProgress()
    started = time.monotonic()
    with CatalogStore.open(store_path) as store:
        source = store.path
    target = _checked_destination(source, Path(destination))
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    try:
        for attempt in range(1, attempts + 1):
            shutil.rmtree(staging, ignore_errors=True)
            (staging / INDEX_DIR).mkdir(parents=True)
            manifest = _snapshot(source, staging, target, sink)
            if manifest is None:
                continue
            with CatalogStore.open(staging) as copy:
                seq = copy.current_seq()
                index = manifest.index
                if index is not None and index.seq > seq:
                    continue  # a generation built on writes newer than the snapshot: take it again
                items, vectors = copy.status_counts(), copy.vector_count()
            _fsync_tree(staging)
            if target.exists():
                target.rmdir()  # checked empty above
            os.rename(staging, target)
            fsync_dir(target.parent)
            return BackupReport(
                store=str(source),
                destination=str(target),
                items=items,
                vectors=vectors,
                generation=index.generation if index else None,
                index_count=index.count if index else 0,
                seq=seq,
                bytes=sum(p.stat().st_size for p in target.rglob("*") if p.is_file()),
                attempts=attempt,
                seconds=round(time.monotonic() - started, 3),
            )
        raise BackupError(str(target), f"the store kept publishing new index generations; tried {attempts} times")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _checked_destination(source: Path, destination: Path) -> Path:
    target = destination.expanduser().resolve()
    if target == source or source in target.parents:
        raise BackupError(str(destination), "the destination lies inside the store being copied")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(str(destination), "the destination exists and is not an empty directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _snapshot(source: Path, staging: Path, target: Path, sink: ProgressSink) -> StoreManifest | None:
    """Copy the database, then the manifest and the index file it names; ``None`` when that file was
    pruned in between (a newer generation was published: the caller takes the snapshot again).

    Only the current generation travels: the copy's manifest keeps no previous generation, and the checksum
    of the copied file only.

    Raises:
        BackupError: the copied index file is not the one the manifest's checksum describes.
    """
    _copy_database(source / DB_NAME, staging / DB_NAME, sink)
    manifest = read_manifest(source)
    index = manifest.index
    if index is not None:
        try:
            # Opened before copying: a writer may prune the file, but an open file stays readable.
            handle = (source / index.file).open("rb")
        except FileNotFoundError:
            return None
        with handle:
            _copy_file(handle, staging / index.file, sink)
        recorded = manifest.checksum_of(index)
        if recorded is not None and file_checksum(staging / index.file) != recorded:
            raise BackupError(
                str(target),
                f"the store's index file {index.file} does not match the checksum it was published with; "
                "rebuild it with `catalens reindex` and back up again",
            )
    checksums = {index.file: manifest.checksums[index.file]} if index and index.file in manifest.checksums else {}
    manifest = replace(manifest, previous_index=None, checksums=checksums)
    write_manifest(staging, manifest)
    return manifest


def _copy_database(source: Path, target: Path, sink: ProgressSink) -> None:
    """SQLite's online backup in one step: one read snapshot, so concurrent commits never restart it."""
    wal = source.with_name(source.name + "-wal")
    size = source.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    sink.start("database", size)
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            # The copy is read by whoever restores it; leave it as one self-contained file.
            dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            dst.close()
    finally:
        src.close()
    sink.advance(size)
    sink.finish()


def _copy_file(handle: BinaryIO, target: Path, sink: ProgressSink) -> None:
    size = os.fstat(handle.fileno()).st_size
    sink.start("index file", size)
    with target.open("wb") as out:
        while chunk := handle.read(_CHUNK):
            out.write(chunk)
            sink.advance(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    sink.finish()


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())
    fsync_dir(root / INDEX_DIR)
    fsync_dir(root)
