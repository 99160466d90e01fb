"""``catalens tag run|calibrate|review|set|audit|export``: catalog tagging jobs a merchandiser can trust.

``run`` tags the store against a taxonomy (incremental, resumable), ``calibrate`` fits thresholds, temperatures
and linear probes on labelled items and reports what precision and coverage they give on held-out folds,
``review`` lists the least confident suggestions, ``set`` records a person's decision (which no later run
overwrites), ``audit`` ranks catalog values the model confidently disagrees with, ``export`` writes the tags
as CSV, JSONL or Label Studio predictions.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from catalens.search.cli.exits import EXIT_OK
from catalens.search.cli.parsing import positive_int

if TYPE_CHECKING:
    from catalens.indexer.tagging.calibration import Calibration
    from catalens.search.cli.parsing import Commands


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 1]")
    return value


def _band(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1)")
    return value


def register_tag(commands: Commands) -> None:
    """Add ``catalens tag`` and its actions."""
    tag = commands.add_parser("tag", help="tag the catalog against a taxonomy; calibrate, review, audit, export")
    actions = tag.add_subparsers(dest="tag_command", required=True, metavar="ACTION", parser_class=type(tag))

    run = actions.add_parser("run", help="tag every item (or the filtered ones) that is not tagged yet")
    run.add_argument("--store", required=True)
    run.add_argument("--taxonomy", required=True, help="the attributes and values, a YAML or JSON file")
    run.add_argument("--calibration", help="thresholds and probes from `catalens tag calibrate` (a JSON file)")
    run.add_argument("--filter", action="append", default=[], metavar="NAME=VALUE", help="tag only matching items")
    run.add_argument("--redo", action="store_true", help="tag matching items again even if up to date")
    run.add_argument("--review-band", type=_band, default=0.25, help="uncalibrated: review this far under threshold")
    run.add_argument("--batch-size", type=positive_int, default=4096, help="items per committed batch")
    run.add_argument("--device", default="auto", help="where the label prompts are embedded")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--json", action="store_true")
    run.set_defaults(handler=run_tag_run)

    calibrate = actions.add_parser("calibrate", help="fit thresholds and probes on labelled items; report on folds")
    calibrate.add_argument("--store", required=True)
    calibrate.add_argument("--taxonomy", required=True)
    calibrate.add_argument("--labelled", required=True, help='JSONL or CSV rows {"id", "attribute", "label"}')
    calibrate.add_argument("--target-precision", type=_unit_interval, default=0.9)
    calibrate.add_argument("--folds", type=positive_int, default=5)
    calibrate.add_argument("--seed", type=int, default=0)
    calibrate.add_argument("--out", required=True, help="where to write the calibration (JSON)")
    calibrate.add_argument("--no-people", action="store_true", help="ignore the tags people accepted in the store")
    calibrate.add_argument("--device", default="auto")
    calibrate.add_argument("--json", action="store_true")
    calibrate.set_defaults(handler=run_tag_calibrate)

    review = actions.add_parser("review", help="suggestions waiting for a person, least confident first")
    review.add_argument("--store", required=True)
    review.add_argument("--attribute")
    review.add_argument("--limit", type=positive_int, default=20)
    review.add_argument("--offset", type=int, default=0)
    review.add_argument("--json", action="store_true")
    review.set_defaults(handler=run_tag_review)

    decide = actions.add_parser("set", help="record a person's decision: ATTRIBUTE=VALUE accepts (or corrects)")
    decide.add_argument("--store", required=True)
    decide.add_argument("id", help="the item's id")
    decide.add_argument("decision", metavar="ATTRIBUTE=VALUE")
    decide.add_argument("--reject", action="store_true", help="the value is wrong (never suggested again)")
    decide.add_argument("--who", default="cli", help="recorded as the decision's author")
    decide.add_argument("--json", action="store_true")
    decide.set_defaults(handler=run_tag_set)

    audit = actions.add_parser("audit", help="catalog values the model confidently disagrees with")
    audit.add_argument("--store", required=True)
    audit.add_argument("--taxonomy", required=True)
    audit.add_argument("--attribute", default="category")
    audit.add_argument("--limit", type=positive_int, default=50)
    audit.add_argument("--device", default="auto")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(handler=run_tag_audit)

    export = actions.add_parser("export", help="write the tags as CSV, JSONL or Label Studio predictions")
    export.add_argument("--store", required=True)
    export.add_argument("--format", choices=("csv", "jsonl", "label-studio"), default="csv")
    export.add_argument("--decision", choices=("accept", "review", "reject"))
    export.add_argument("--attribute")
    export.add_argument("--out", help="a file (default: standard output)")
    export.add_argument("--image-base", help="Label Studio: image URL prefix, e.g. http://host:8000/v1/items/")
    export.set_defaults(handler=run_tag_export)


def _calibration(path: str | None) -> Calibration | None:
    if not path:
        return None
    from catalens.indexer.tagging.calibration import Calibration

    return Calibration.load(path)


def run_tag_run(args: argparse.Namespace) -> int:
    """Tag the store and print the summary (items, tags per decision, per attribute)."""
    from catalens.indexer.tagging.job import TagOptions, tag_store
    from catalens.indexer.tagging.taxonomy import load_taxonomy
    from catalens.search.cli.render import emit_json
    from catalens.search.progress import TqdmProgress
    from catalens.search.query_syntax import parse_filters

    taxonomy = load_taxonomy(args.taxonomy)
    where = parse_filters(args.filter, what="--filter") if args.filter else None
    options = TagOptions(batch_size=args.batch_size, device=args.device, review_band=args.review_band, redo=args.redo)
    calibration = _calibration(args.calibration)
    report = tag_store(
        args.store,
        taxonomy,
        calibration=calibration,
        where=where,
        options=options,
        progress=TqdmProgress(enabled=not args.quiet and not args.json),
    )
    if args.json:
        emit_json(report.to_dict())
        return EXIT_OK
    summary = report.to_dict()
    calibrated = f"calibration {report.calibration}" if report.calibration else "uncalibrated (zero-shot thresholds)"
    print(
        f"Tagged {report.tagged:,} items in {report.seconds:.1f} s ({report.items_per_second:,.0f} items/s), "
        f"{report.up_to_date:,} already up to date; {calibrated}."
    )
    decisions = summary["decisions"]
    print(
        f"Tags: {decisions['accept']:,} accepted, {decisions['review']:,} to review, {decisions['reject']:,} rejected"
    )
    for name, counts in summary["per_attribute"].items():
        print(
            f"  {name:<24} accept {counts['accept']:>8,}  review {counts['review']:>8,}  reject {counts['reject']:>8,}"
        )
    if calibration is not None:
        for name, attribute in calibration.attributes.items():
            _print_weak_evidence(name, attribute.report)
    return EXIT_OK


def run_tag_calibrate(args: argparse.Namespace) -> int:
    """Fit the calibration, save it, and print the held-out report per attribute and value."""
    from catalens.indexer.tagging.job import calibrate_store
    from catalens.indexer.tagging.labelled import load_labelled
    from catalens.indexer.tagging.taxonomy import load_taxonomy
    from catalens.search.cli.render import emit_json

    taxonomy = load_taxonomy(args.taxonomy)
    rows = load_labelled(args.labelled, taxonomy)
    calibration, missing = calibrate_store(
        args.store,
        taxonomy,
        rows,
        target_precision=args.target_precision,
        folds=args.folds,
        seed=args.seed,
        device=args.device,
        include_people=not args.no_people,
    )
    calibration.save(args.out)
    reports = {name: cal.report for name, cal in calibration.attributes.items()}
    if args.json:
        emit_json({"calibration": calibration.id, "out": args.out, "skipped_ids": missing, "attributes": reports})
        return EXIT_OK
    print(f"Calibration {calibration.id} written to {args.out} (target precision {args.target_precision}).")
    if missing:
        print(f"{len(missing)} labelled ids are not in the store and were skipped, e.g. {', '.join(missing[:3])}")
    for name, report in reports.items():
        _print_attribute_report(name, report)
    return EXIT_OK


def _print_attribute_report(name: str, report: dict[str, Any]) -> None:
    """One attribute's held-out report: accuracies, calibration error, decision shares, then per value."""
    held = report.get("held_out") or {}
    accuracy = report.get("accuracy") or {}
    print(f"\n{name}: {report.get('support', '?')} labelled items, {report.get('folds', '?')} folds")
    shown = ", ".join(f"{k.replace('_', '-')} {v:.3f}" for k, v in accuracy.items() if v is not None)
    if shown:
        print(f"  accuracy on held-out folds: {shown}")
    if report.get("ece_before") is not None:
        print(f"  expected calibration error: {report['ece_before']:.3f} before, {report['ece_after']:.3f} after")
    if held:
        precision = held.get("precision")
        print(
            f"  accepted tags on held-out folds: precision {_num(precision, 0).strip()}, "
            f"coverage {100 * held.get('coverage', 0):.0f} %"
        )
        shares = held.get("shares") or {}
        if shares:
            print("  decisions: " + ", ".join(f"{k} {100 * v:.0f} %" for k, v in shares.items()))
    values = report.get("values") or {}
    if values:
        print(
            f"  {'value':<24} {'support':>7} {'precision':>9} {'recall':>6} {'f1':>5} {'threshold':>9}"
            f" {'right above':>11} {'95 % bound':>10}"
        )
        for value, row in values.items():
            threshold = row.get("threshold")
            limit = f"{threshold:.3f}" if threshold is not None else "review"
            evidence = row.get("evidence") or {}
            above = f"{evidence['right_above']}/{evidence['labelled_above']}" if evidence else "-"
            pooled = " (pooled threshold)" if evidence.get("source") == "pooled" else ""
            print(
                f"  {value[:24]:<24} {row.get('support', 0):>7} {_num(row.get('precision'))} "
                f"{_num(row.get('recall'), 6)} {_num(row.get('f1'), 5)} {limit:>9} {above:>11} "
                f"{_num(evidence.get('precision_lower_95'), 10)}{pooled}"
            )
        print("  precision, recall, f1: on held-out folds. right above: the labelled predictions at or above the")
        print("  threshold (it was chosen on them); 95 % bound: the least precision they promise, at 95 % confidence.")
    _print_weak_evidence(name, report)


def weak_evidence(report: dict[str, Any]) -> list[str]:
    """The values of an attribute's calibration report whose threshold promises less than the target at 95 %.

    ``value (bound, right/labelled above)`` for each; a borrowed threshold with no labelled prediction above it
    counts too (nothing backs it). Reports written before thresholds carried their evidence list nothing.
    """
    target = report.get("target_precision")
    weak = []
    for value, row in (report.get("values") or {}).items():
        evidence = row.get("evidence")
        if not evidence or target is None:
            continue
        bound = evidence.get("precision_lower_95")
        if bound is None or bound < target:
            shown = "no bound" if bound is None else f"{bound:.2f}"
            weak.append(f"{value} ({shown}, {evidence['right_above']}/{evidence['labelled_above']})")
    return weak


def _print_weak_evidence(name: str, report: dict[str, Any]) -> None:
    weak = weak_evidence(report)
    if weak:
        print(
            f"  note: {name}: {len(weak)} accepting value(s) promise less than the target "
            f"{report.get('target_precision')} at 95 % confidence: {', '.join(weak[:8])}"
            f"{' ...' if len(weak) > 8 else ''}; label more items of them to firm it up."
        )


def _num(value: Any, width: int = 9) -> str:
    return f"{value:>{width}.3f}" if isinstance(value, int | float) else f"{'-':>{width}}"


def run_tag_review(args: argparse.Namespace) -> int:
    """List the review queue, least confident first."""
    from catalens.indexer.store import CatalogStore
    from catalens.search.cli.render import emit_json
    from catalens.search.errors import QueryError

    if args.offset < 0:
        raise QueryError("--offset must be 0 or more")
    with CatalogStore.open(args.store, read_only=True) as store:
        entries, total = store.tags.review_queue(args.attribute, args.limit, args.offset)
    if args.json:
        emit_json({"total": total, "items": [vars(e) for e in entries]})
        return EXIT_OK
    if not entries:
        print("Nothing to review." if total == 0 else f"No entries past offset {args.offset} ({total} in the queue).")
        return EXIT_OK
    print(f"{total:,} suggestions to review; the least confident first:")
    for e in entries:
        runner = f"  (or {e.runner_up} {e.runner_up_confidence:.2f})" if e.runner_up is not None else ""
        print(f"  {e.item_id:<32} {e.attribute}={e.value} {e.confidence:.2f}{runner}")
    return EXIT_OK


def run_tag_set(args: argparse.Namespace) -> int:
    """Record a person's decision on one item's attribute."""
    from catalens.indexer.store import CatalogStore
    from catalens.search.cli.render import emit_json
    from catalens.search.errors import QueryError

    attribute, sep, value = args.decision.partition("=")
    if not sep or not attribute.strip() or not value.strip():
        raise QueryError(f"{args.decision!r}: write ATTRIBUTE=VALUE, e.g. colour=red")
    action = "reject" if args.reject else "correct"
    with CatalogStore.open(args.store) as store, store.writer_lock():
        tags = store.tags.set_by_person(args.id, attribute.strip(), value.strip(), action, who=args.who)
    if args.json:
        emit_json({"id": args.id, "tags": [vars(t) for t in tags]})
    else:
        verb = "rejected" if args.reject else "set"
        print(f"{args.id}: {attribute.strip()}={value.strip()} {verb} by {args.who}; no later run will change it.")
    return EXIT_OK


def run_tag_audit(args: argparse.Namespace) -> int:
    """Rank the catalog values the model confidently disagrees with."""
    from catalens.indexer.tagging.job import audit_store
    from catalens.indexer.tagging.taxonomy import load_taxonomy
    from catalens.search.cli.render import emit_json

    taxonomy = load_taxonomy(args.taxonomy)
    findings, audited = audit_store(args.store, taxonomy, args.attribute, device=args.device)
    shown = findings[: args.limit]
    if args.json:
        emit_json({"audited": audited, "suspects": len(findings), "items": [vars(f) for f in shown]})
        return EXIT_OK
    print(f"Audited {audited:,} items by their catalog {args.attribute}; {len(findings):,} look mislabelled:")
    for f in shown:
        print(
            f"  {f.id:<32} catalog says {f.given!r} ({f.self_confidence:.2f}), "
            f"the model {f.predicted!r} ({f.predicted_confidence:.2f})"
        )
    return EXIT_OK


def run_tag_export(args: argparse.Namespace) -> int:
    """Write the tags in the chosen format to a file or standard output."""
    from catalens.indexer.store import CatalogStore
    from catalens.indexer.tagging.export import export_tags

    base = args.image_base

    def image_url(item_id: str) -> str:
        from urllib.parse import quote

        return f"{base.rstrip('/')}/{quote(item_id, safe='')}/image" if base else item_id

    with CatalogStore.open(args.store, read_only=True) as store:
        rows = store.tags.rows(args.decision, args.attribute)
        if args.out:
            with open(args.out, "w", encoding="utf-8", newline="") as out:
                count = export_tags(rows, out, args.format, image_url=image_url)
            print(f"Wrote {count:,} tags to {args.out}", file=sys.stderr)
        else:
            export_tags(rows, sys.stdout, args.format, image_url=image_url)
    return EXIT_OK
