"""``catalens recommend``: items like some stored items (and image files), unlike others.

The command line of :meth:`SearchEngine.recommend`: positive ids (and ``--image`` files), ``--negative`` ids,
``--weight ID W`` for either, the strategy, MMR diversity, per-attribute caps and grouping. Example ids the
store does not have (or could not index) are skipped and reported: on stderr for people, in the JSON document
with ``--json``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from catalens.search.cli.engine_args import open_engine, read_image, search_options
from catalens.search.cli.exits import EXIT_OK, check_text_arguments
from catalens.search.cli.parsing import add_result_options, finite_float, fraction, positive_int
from catalens.search.cli.render import emit_json, print_hits

if TYPE_CHECKING:
    from catalens.search.cli.parsing import Commands
    from catalens.search.engine import Example, Hit, Recommendation


def register_recommend(commands: Commands) -> None:
    """Add ``catalens recommend``."""
    recommend = commands.add_parser(
        "recommend",
        help="items like these stored items, unlike others: weighted, diverse, capped per attribute",
        description="More like the given item ids (and --image files), less like the --negative ids. "
        "Unknown or unindexed ids are skipped and reported; the inputs are never returned unless --include-inputs.",
    )
    recommend.add_argument("ids", nargs="*", metavar="ID", help="positive example items")
    recommend.add_argument("--store", required=True)
    recommend.add_argument("--negative", action="append", default=[], metavar="ID", help="an item to move away from")
    recommend.add_argument("--image", action="append", default=[], metavar="FILE", help="an image file as a positive")
    recommend.add_argument(
        "--weight",
        action="append",
        nargs=2,
        default=[],
        metavar=("ID", "W"),
        help="weight of an example id, positive or negative (default 1; above 0)",
    )
    recommend.add_argument(
        "--strategy",
        choices=("average", "best_score"),
        default="average",
        help="average: one search for the weighted mean (default); best_score: each candidate against every example",
    )
    recommend.add_argument("--diversity", type=fraction, default=0.0, help="0 (pure relevance) to 1: MMR reranking")
    recommend.add_argument("--candidates", type=positive_int, help="the pool diversity, caps and groups pick from")
    recommend.add_argument(
        "--max-per",
        action="append",
        type=_cap,
        default=[],
        metavar="ATTR=N",
        help="at most N results per value of an attribute (brand=2, category=3); repeatable",
    )
    recommend.add_argument("--group-by", metavar="ATTR", help="group the results by an attribute; -k counts groups")
    recommend.add_argument("--group-size", type=positive_int, default=3, help="results per group (default 3)")
    recommend.add_argument("--dedupe", action="store_true", help="one item per stored near-duplicate group")
    recommend.add_argument("--include-inputs", action="store_true", help="the example items may be returned")
    recommend.add_argument(
        "--session",
        nargs="?",
        const=3.0,
        type=finite_float,
        metavar="HALF_LIFE",
        help="the IDs are a shopper's recent views, latest first: weigh them 0.5^(i/HALF_LIFE) (default 3 views)",
    )
    add_result_options(recommend)
    recommend.set_defaults(handler=run_recommend)


def _cap(text: str) -> tuple[str, int]:
    """``ATTR=N`` as ``(ATTR, N)`` (an argparse ``type``)."""
    name, sep, count = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not ATTR=N")
    return name.strip(), positive_int(count)


def examples(args: argparse.Namespace) -> tuple[list[Example], list[Example]]:
    """The positive and negative examples the arguments name, each id with its ``--weight``.

    Raises:
        QueryError: no example at all, a weight that is not above 0, or a ``--weight`` naming an id that is
            not an example.
        ItemError: an ``--image`` file is missing or not an image.
    """
    from catalens.search.engine import Example
    from catalens.search.errors import QueryError

    weights: dict[str, float] = {}
    for item_id, text in args.weight:
        try:
            weights[item_id] = finite_float(text)
        except argparse.ArgumentTypeError as e:
            raise QueryError(f"--weight {item_id}: {e}") from None
    check_text_arguments(argparse.Namespace(ids=[*args.negative, *weights]))
    unknown = sorted(set(weights) - set(args.ids) - set(args.negative))
    if unknown:
        raise QueryError(f"--weight names {', '.join(unknown)}, which is neither an ID nor a --negative")
    if not (args.ids or args.negative or args.image):
        raise QueryError("give at least one example: an ID, an --image or a --negative")
    if args.session is not None:
        from catalens.search.engine import recency_weights

        if weights:
            raise QueryError("--session weighs the IDs by recency: leave out --weight")
        ids = list(dict.fromkeys(args.ids))  # viewed twice: counts once, at its latest view
        weights = dict(zip(ids, recency_weights(len(ids), args.session), strict=True))
    positive = [Example(item_id=i, weight=weights.get(i, 1.0)) for i in dict.fromkeys(args.ids)]
    positive += [Example(image=read_image(path)) for path in args.image]
    negative = [Example(item_id=i, weight=weights.get(i, 1.0)) for i in args.negative]
    return positive, negative


def run_recommend(args: argparse.Namespace) -> int:
    """Recommend from the given examples and print the page (or groups), then the skipped ids."""
    from catalens.search.engine import RecommendOptions

    options = replace(search_options(args), mode="vector", dedupe=args.dedupe)
    shaping = RecommendOptions(
        strategy=args.strategy,
        exclude_inputs=not args.include_inputs,
        diversity=args.diversity,
        candidates=args.candidates,
        max_per=dict(args.max_per),
        group_by=args.group_by,
        group_size=args.group_size,
    )
    positive, negative = examples(args)
    engine = open_engine(args)
    try:
        result = engine.recommend(positive, negative, options, shaping)
    finally:
        engine.close()
    print_recommendation(result, args.json)
    return EXIT_OK


def print_recommendation(result: Recommendation, as_json: bool) -> None:
    """The page as a table (a titled table per group), the skipped ids on stderr; or one JSON document."""
    from catalens.search.engine import SearchResult

    if as_json:
        emit_json(
            {
                "generation": result.generation,
                "k": result.k,
                "offset": result.offset,
                "hits": [_row(h) for h in result.hits],
                "skipped": [{"id": s.item_id, "reason": s.reason} for s in result.skipped],
                "groups": None
                if result.groups is None
                else [{"value": g.value, "hits": [_row(h) for h in g.hits]} for g in result.groups],
            }
        )
        return
    for skipped in result.skipped:
        print(f"catalens: skipped {skipped.item_id}: {skipped.reason}", file=sys.stderr)
    if result.groups is None:
        print_hits(SearchResult(result.hits, result.k, result.offset, result.generation), as_json=False)
        return
    if not result.groups:
        print("No results.")
    for number, group in enumerate(result.groups, start=result.offset + 1):
        if number > result.offset + 1:
            print()
        print(f"Group {number}: {group.value}")
        print_hits(SearchResult(group.hits, len(group.hits), 0, result.generation), as_json=False)


def _row(hit: Hit) -> dict[str, Any]:
    """A hit as ``catalens search --json`` prints it (explanation excerpts HTML-escaped and marked)."""
    from catalens.indexer.lexical import highlight_html

    row = asdict(hit)
    if row["explanation"] is not None:
        fields = row["explanation"]["matched_fields"]
        row["explanation"]["matched_fields"] = {name: highlight_html(text) for name, text in fields.items()}
    return row
