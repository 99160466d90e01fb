"""``catalens backup``: a consistent copy of a store, taken while it is served and indexed.

Restoring is pointing ``--store`` at the copy (``catalens search --store COPY ...``), or moving it back in
place of the original while nothing runs on it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from catalens.search.cli.exits import EXIT_OK
from catalens.search.cli.parsing import positive_int
from catalens.search.cli.render import emit_json

if TYPE_CHECKING:
    from catalens.indexer.backup import BackupReport
    from catalens.search.cli.parsing import Commands


def register_backup(commands: Commands) -> None:
    """Add ``catalens backup``."""
    backup = commands.add_parser(
        "backup",
        help="copy a store consistently while it is being served or indexed (restore: use --store on the copy)",
    )
    backup.add_argument("destination", metavar="OUT", help="a new or empty directory for the copy")
    backup.add_argument("--store", required=True, help="the store to copy")
    backup.add_argument(
        "--attempts", type=positive_int, default=5, help="snapshots to try while new index generations keep landing"
    )
    backup.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    backup.add_argument("--quiet", action="store_true", help="no progress bars")
    backup.set_defaults(handler=run_backup)


def run_backup(args: argparse.Namespace) -> int:
    """Copy the store to OUT and print what was copied."""
    from catalens.indexer.backup import backup_store
    from catalens.search.progress import TqdmProgress

    report = backup_store(
        args.store, args.destination, TqdmProgress(enabled=not args.quiet, unit="B"), attempts=args.attempts
    )
    if args.json:
        emit_json(report.to_dict())
    else:
        print_backup(report)
    return EXIT_OK


def print_backup(report: BackupReport) -> None:
    """The human summary of a backup."""
    items = ", ".join(f"{count} {status}" for status, count in sorted(report.items.items()) if count) or "no items"
    index = (
        f"index generation {report.generation} ({report.index_count} vectors)"
        if report.generation is not None
        else "no index generation yet"
    )
    print(f"Backed up {report.store}")
    print(f"       to {report.destination}")
    print(f"Items       {items}; {report.vectors} vectors")
    print(f"Index       {index}; change sequence {report.seq}")
    print(f"Size        {report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s", end="")
    print(f" ({report.attempts} snapshots)" if report.attempts > 1 else "")
    print(f"Restore     catalens search --store {report.destination} ...  (or move it back in place)")
