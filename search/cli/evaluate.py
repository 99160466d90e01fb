"""``catalens eval``: retrieval and zero-shot quality on a labelled set, comparing stores or ranking modes."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from catalens.search.cli.engine_args import open_engine, parse_modes
from catalens.search.cli.exits import EXIT_OK
from catalens.search.cli.parsing import add_ranking_options, add_text_encoder_options, positive_int
from catalens.search.cli.render import emit_json, print_eval

if TYPE_CHECKING:
    from catalens.search.cli.parsing import Commands


def register_eval(commands: Commands) -> None:
    """Add ``catalens eval``."""
    evaluate = commands.add_parser(
        "eval",
        help="measure retrieval and zero-shot quality on a labelled JSONL set",
        description='Rows: {"query": ..., "relevant": [ids]} or {"query": ..., "relevant_category": ...} '
        '(or query_image: PATH), and {"id": ..., "label": ...} for zero-shot classification.',
    )
    evaluate.add_argument("set", help="the labelled set (JSONL)")
    evaluate.add_argument("--store", required=True)
    evaluate.add_argument("--compare", metavar="STORE2", help="a second store, evaluated on the same set")
    evaluate.add_argument("--labels", help="label list for classification rows (default: the set's labels)")
    evaluate.add_argument("--template", action="append", dest="templates", help='prompt with "{}" (repeatable)')
    evaluate.add_argument("--depth", type=positive_int, default=100, help="results ranked per query")
    add_ranking_options(evaluate, several_modes=True)
    evaluate.add_argument("--device", default="auto")
    add_text_encoder_options(evaluate)
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate ``--store`` (and ``--compare``) in each ``--mode`` on the set; one report per store and mode."""
    from catalens.search.errors import QueryError
    from catalens.search.evaluation import evaluate, load_eval_set

    cases = load_eval_set(args.set)
    labels = [label.strip() for label in args.labels.split(",") if label.strip()] if args.labels else None
    modes = parse_modes(args.mode, several=True)
    if len(modes) > 1 and args.compare:
        raise QueryError("compare either stores (--compare) or modes (--mode a,b), not both at once")
    reports = []
    for store in [args.store, *([args.compare] if args.compare else [])]:
        engine = open_engine(args, store)
        try:
            for mode in modes:
                reports.append(
                    evaluate(engine, cases, labels=labels, templates=args.templates, depth=args.depth, mode=mode)
                )
        finally:
            engine.close()
    if args.json:
        payload = [r.to_dict() for r in reports]
        emit_json(payload[0] if len(payload) == 1 else {"set": cases.path, "stores": payload})
    else:
        print_eval(reports)
    return EXIT_OK
