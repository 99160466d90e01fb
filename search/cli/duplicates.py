"""``catalens duplicates``: groups of near-identical images (re-encoded, resized, cropped, watermarked copies).

Finds the groups (:func:`catalens.indexer.duplicates.find_and_save`) and stores them, so search's ``dedupe``
shows one item per group; ``--dry-run`` only reports. Output: a summary and the first groups for people, every
group as JSON (``--json``) or one CSV row per member (``--csv``).
"""

from __future__ import annotations

import argparse
import csv
import sys
from typing import TYPE_CHECKING

from catalens.search.cli.exits import EXIT_OK
from catalens.search.cli.parsing import positive_int

if TYPE_CHECKING:
    from catalens.indexer.duplicates import DuplicateReport
    from catalens.search.cli.parsing import Commands

#: Shown in ``--help`` only; the library's ``DEFAULT_THRESHOLD`` applies (kept equal by a test).
HELP_THRESHOLD = 0.95


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r} must lie in (0, 1]")
    return value


def register_duplicates(commands: Commands) -> None:
    """Add ``catalens duplicates``."""
    parser = commands.add_parser(
        "duplicates", help="find groups of near-identical images (re-encoded, resized, watermarked copies)"
    )
    parser.add_argument("--store", required=True)
    parser.add_argument(
        "--threshold",
        type=_threshold,
        help=f"lowest cosine similarity of two images' vectors that makes them duplicates (default {HELP_THRESHOLD})",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="every group as one JSON document")
    output.add_argument("--csv", action="store_true", help="one row per member: group_id, item_id, similarity, exact")
    parser.add_argument("--dry-run", action="store_true", help="report the groups without storing them")
    parser.add_argument("--limit", type=positive_int, default=20, help="groups listed in the summary")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_duplicates)


def run_duplicates(args: argparse.Namespace) -> int:
    """Find (and unless ``--dry-run`` store) the groups, then print them."""
    from catalens.indexer.duplicates import DEFAULT_THRESHOLD, find_and_save
    from catalens.search.cli.render import emit_json
    from catalens.search.progress import TqdmProgress

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    progress = TqdmProgress(enabled=not (args.quiet or args.json or args.csv))
    report = find_and_save(args.store, threshold, progress=progress, dry_run=args.dry_run)
    if args.json:
        emit_json({**report.to_dict(), "stored": not args.dry_run})
    elif args.csv:
        write_csv(report)
    else:
        print_summary(report, stored=not args.dry_run, limit=args.limit)
    return EXIT_OK


def write_csv(report: DuplicateReport) -> None:
    """One row per group member, the group's first member first."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["group_id", "item_id", "similarity", "exact"])
    for group in report.groups:
        for member in group.members:
            writer.writerow([group.group_id, member.item_id, f"{member.similarity:.4f}", int(member.exact)])


def print_summary(report: DuplicateReport, *, stored: bool, limit: int) -> None:
    """What a person reads: the counts, where they came from, then the first ``limit`` groups."""
    from catalens.search.cli.render import cut

    run = report.run
    source = f"index generation {run.generation}" if run.generation is not None else "an exact comparison"
    print(
        f"Found {run.groups:,} groups of near-duplicates ({report.duplicate_items:,} items a dedupe hides) among "
        f"{run.items:,} items at similarity >= {run.threshold:g} in {report.seconds:.1f} s"
    )
    print(
        f"  searched {source}, {report.exact_compared:,} items compared exactly; "
        f"{report.pairs:,} similar pairs, {report.exact_sets:,} sets of byte-identical copies"
    )
    print(
        "  stored: search, similar and recommend with dedupe show one item per group"
        if stored
        else "  dry run: nothing stored"
    )
    for group in report.groups[:limit]:
        print(f"group {group.group_id} ({len(group.members)} items)")
        for member in group.members:
            print(f"  {cut(member.item_id, 48):<48} {member.similarity:6.3f}{'  exact copy' if member.exact else ''}")
    if len(report.groups) > limit:
        print(f"... and {len(report.groups) - limit:,} more groups (--json or --csv lists every one)")
