"""``catalens search``, ``similar`` and ``classify``: query a store from the command line."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from catalens.search.cli.engine_args import open_engine, read_image, search_options
from catalens.search.cli.exits import EXIT_OK
from catalens.search.cli.parsing import add_ranking_options, add_result_options, add_text_encoder_options, positive_int
from catalens.search.cli.render import emit_json, print_classifications, print_hits

if TYPE_CHECKING:
    from catalens.search.cli.parsing import Commands
    from catalens.search.engine import Classification, QueryPart


def register_search(commands: Commands) -> None:
    """Add ``catalens search``."""
    search = commands.add_parser(
        "search",
        help="search a store: text, images and items combined",
        description='Terms joined by + and -, each optionally weighted: "2:red dress" + ./photo.jpg - leather. '
        "A term that names an existing file is an image; item:ID is a stored item; anything else is text.",
    )
    search.add_argument("query", nargs="*", help="the combined query (may be empty with --image)")
    search.add_argument("--store", required=True)
    search.add_argument("--image", action="append", default=[], help="add an image file to the query")
    add_result_options(search)
    add_ranking_options(search)
    search.set_defaults(handler=run_search)


def register_similar(commands: Commands) -> None:
    """Add ``catalens similar``."""
    similar = commands.add_parser("similar", help="items most like a stored item")
    similar.add_argument("id", help="the item's id")
    similar.add_argument("--store", required=True)
    add_result_options(similar)
    # hybrid: the item's picture and its own words ("more like this"), fused as a typed query's lists are.
    add_ranking_options(similar)
    similar.set_defaults(handler=run_similar)


def register_classify(commands: Commands) -> None:
    """Add ``catalens classify``."""
    classify = commands.add_parser("classify", help="zero-shot classification of items (or an image) by labels")
    classify.add_argument("--store", required=True)
    classify.add_argument("--labels", required=True, help='comma-separated labels: "shirt,shoe,bag"')
    classify.add_argument("--ids", nargs="+", help="items to classify (default: every indexed item)")
    classify.add_argument("--image", help="classify this image file instead of stored items")
    classify.add_argument("--template", action="append", dest="templates", help='prompt with "{}" (repeatable)')
    classify.add_argument("--top-k", type=positive_int, default=1, help="predictions per item")
    classify.add_argument("--device", default="auto")
    add_text_encoder_options(classify)
    classify.add_argument("--json", action="store_true")
    classify.set_defaults(handler=run_classify)


def run_search(args: argparse.Namespace) -> int:
    """Answer a combined query (text, image files, stored items, weighted) plus any ``--image`` files."""
    from catalens.search.engine import QueryPart
    from catalens.search.errors import QueryError
    from catalens.search.query_syntax import parse_query

    terms = parse_query(args.query) if args.query else []
    if not terms and not args.image:
        raise QueryError("give a query, an --image, or both")
    options = search_options(args)
    engine = open_engine(args)
    try:
        parts: list[QueryPart] = [QueryPart(image=read_image(path)) for path in args.image]
        for term in terms:
            if term.kind == "image":
                parts.append(QueryPart(image=read_image(term.value), weight=term.weight))
            elif term.kind == "item":
                parts.append(QueryPart(item_id=term.value, weight=term.weight))
            else:
                parts.append(QueryPart(text=term.value, weight=term.weight))
        result = engine.search(parts, options)
    finally:
        engine.close()
    print_hits(result, args.json)
    return EXIT_OK


def run_similar(args: argparse.Namespace) -> int:
    """List the items most like a stored item."""
    options = search_options(args)
    engine = open_engine(args)
    try:
        result = engine.similar(args.id, options)
    finally:
        engine.close()
    print_hits(result, args.json)
    return EXIT_OK


def run_classify(args: argparse.Namespace) -> int:
    """Zero-shot classify an image file, the given items, or every indexed item (in chunks of 256)."""
    from catalens.search.errors import QueryError

    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    if not labels:
        raise QueryError("--labels needs at least one label")
    engine = open_engine(args)
    try:
        results: list[Classification]
        if args.image:
            results = [engine.classify_image(read_image(args.image), labels, args.templates, args.top_k)]
        else:
            ids = args.ids or sorted(i for i, s in engine.store.item_states().items() if s.has_vector)
            results = []
            for start in range(0, len(ids), 256):
                chunk = ids[start : start + 256]
                results.extend(engine.classify_items(chunk, labels, args.templates, args.top_k))
    finally:
        engine.close()
    if args.json:
        emit_json([{"id": r.id, "predictions": [vars(p) for p in r.predictions]} for r in results])
    else:
        print_classifications(results, args.image)
    return EXIT_OK
