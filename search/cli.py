"""The ``catalens`` command line. The only place that prints and chooses exit codes.

Exit codes: 0 success; 1 the run finished but failed (``--strict`` with failures, or nothing indexed);
2 usage error; 3 store problem (missing, locked, other model, unreadable); 4 model unavailable or broken;
5 bad input (catalog source, index factory, query, filter, unknown item id, unreadable image).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from catalens.indexer.errors import IndexBuildError, ItemError, SourceError, StoreError
from catalens.models.errors import ModelError, ModelUnavailableError
from catalens.search.errors import SearchError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_MODEL = 4
EXIT_INPUT = 5


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"catalens: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must lie between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one sub-command per job."""
    parser = _Parser(prog="catalens", description="Semantic image search for product catalogs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library log messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    index = commands.add_parser("index", help="index a folder or CSV/JSONL manifest into a store")
    index.add_argument("source", help="a folder of images, or a CSV/JSONL manifest")
    index.add_argument("--store", required=True, help="the store directory (created when missing)")
    index.add_argument(
        "--model",
        help="model spec (default: the store's model; for a new store `auto`: pretrained ViT-B-32 when "
        "its weights are cached or downloadable, else the shipped catalens-mini)",
    )
    index.add_argument("--index", dest="index_factory", help="FAISS index-factory string (default Flat: exact)")
    index.add_argument("--batch-size", type=_positive_int, help="images per forward pass")
    index.add_argument("--workers", type=_positive_int, help="decode threads")
    index.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    index.add_argument("--rebuild", action="store_true", help="re-embed everything (required to switch models)")
    _add_caption_options(index)
    index.add_argument("--strict", action="store_true", help="exit non-zero when any item failed")
    index.add_argument(
        "--caption",
        metavar="SPEC",
        help="caption every image after indexing: blip, blip-large, blip2, blip:DIR, attributes (zero-shot with "
        "the store's model; no extra weights), attributes:VOCAB.json; see `catalens captioners`",
    )
    index.add_argument(
        "--ocr",
        nargs="?",
        const="default",
        metavar="ENGINE",
        help="read the text in every image after indexing (rapidocr, the default, or tesseract)",
    )
    index.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    index.add_argument("--quiet", action="store_true", help="no progress bars")
    index.set_defaults(handler=_cmd_index)

    caption = commands.add_parser(
        "caption",
        help="caption a store's images (incremental: only items not yet captioned by this captioner)",
    )
    caption.add_argument("--store", required=True)
    caption.add_argument("--captioner", required=True, metavar="SPEC", help="see `catalens captioners`")
    _add_caption_options(caption)
    caption.add_argument("--redo", action="store_true", help="caption every item again")
    caption.add_argument("--json", action="store_true")
    caption.add_argument("--quiet", action="store_true", help="no progress bars")
    caption.set_defaults(handler=_cmd_caption)

    ocr = commands.add_parser("ocr", help="read the text in a store's images (incremental)")
    ocr.add_argument("--store", required=True)
    ocr.add_argument("--engine", default="default", help="rapidocr (default) or tesseract")
    ocr.add_argument("--min-confidence", type=_fraction, help="drop words read with less confidence (0..1)")
    ocr.add_argument("--redo", action="store_true", help="read every item again")
    ocr.add_argument("--json", action="store_true")
    ocr.add_argument("--quiet", action="store_true", help="no progress bars")
    ocr.set_defaults(handler=_cmd_ocr)

    captioners = commands.add_parser("captioners", help="list captioners and OCR engines")
    captioners.add_argument("--json", action="store_true")
    captioners.set_defaults(handler=_cmd_captioners)

    reindex = commands.add_parser("reindex", help="rebuild the FAISS index from the store's SQLite alone")
    reindex.add_argument("--store", required=True)
    reindex.add_argument("--index", dest="index_factory", help="switch to another FAISS index-factory string")
    reindex.add_argument("--json", action="store_true")
    reindex.set_defaults(handler=_cmd_reindex)

    info = commands.add_parser("info", help="describe a store")
    info.add_argument("--store", required=True)
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=_cmd_info)

    search = commands.add_parser(
        "search",
        help="search a store: text, images and items combined",
        description='Terms joined by + and -, each optionally weighted: "2:red dress" + ./photo.jpg - leather. '
        "A term that names an existing file is an image; item:ID is a stored item; anything else is text.",
    )
    search.add_argument("query", nargs="*", help="the combined query (may be empty with --image)")
    search.add_argument("--store", required=True)
    search.add_argument("--image", action="append", default=[], help="add an image file to the query")
    _add_result_options(search)
    _add_ranking_options(search)
    search.set_defaults(handler=_cmd_search)

    similar = commands.add_parser("similar", help="items most like a stored item")
    similar.add_argument("id", help="the item's id")
    similar.add_argument("--store", required=True)
    _add_result_options(similar)
    similar.set_defaults(handler=_cmd_similar)

    classify = commands.add_parser("classify", help="zero-shot classification of items (or an image) by labels")
    classify.add_argument("--store", required=True)
    classify.add_argument("--labels", required=True, help='comma-separated labels: "shirt,shoe,bag"')
    classify.add_argument("--ids", nargs="+", help="items to classify (default: every indexed item)")
    classify.add_argument("--image", help="classify this image file instead of stored items")
    classify.add_argument("--template", action="append", dest="templates", help='prompt with "{}" (repeatable)')
    classify.add_argument("--top-k", type=_positive_int, default=1, help="predictions per item")
    classify.add_argument("--device", default="auto")
    _add_text_encoder_options(classify)
    classify.add_argument("--json", action="store_true")
    classify.set_defaults(handler=_cmd_classify)

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
    evaluate.add_argument("--depth", type=_positive_int, default=100, help="results ranked per query")
    _add_ranking_options(evaluate, several_modes=True)
    evaluate.add_argument("--device", default="auto")
    _add_text_encoder_options(evaluate)
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=_cmd_eval)

    tune = commands.add_parser(
        "finetune",
        help="fine-tune the store's model on its own image–text pairs",
        description="Contrastive fine-tuning with a held-out split by product, evaluation before and after, and "
        "early stopping on held-out recall. Re-embed afterwards with: "
        "catalens index SOURCE --store DIR --model OUT --rebuild",
    )
    tune.add_argument("--store", required=True)
    tune.add_argument("--out", required=True, help="checkpoint directory to write (loadable as a model spec)")
    tune.add_argument("--model", help="start from this model (default: the store's)")
    tune.add_argument("--text-template", default="{title}. {description}", help="text built from item fields")
    tune.add_argument("--epochs", type=_positive_int, default=10)
    tune.add_argument("--batch-size", type=_positive_int, default=32)
    tune.add_argument("--lr", type=float, default=1e-5)
    tune.add_argument("--weight-decay", type=float, default=0.1)
    tune.add_argument("--lock-image", action="store_true", help="freeze the image tower")
    tune.add_argument("--lock-text", action="store_true", help="freeze the text tower")
    tune.add_argument("--trainable-blocks", type=int, help="train only the last N blocks of each unlocked tower")
    tune.add_argument("--heldout", type=float, default=0.2, help="share of products held out")
    tune.add_argument("--patience", type=_positive_int, default=2)
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--device", default="auto")
    tune.add_argument("--json", action="store_true")
    tune.set_defaults(handler=_cmd_finetune)

    serve = commands.add_parser("serve", help="serve the HTTP API and web page for a store")
    serve.add_argument("--store", required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=_positive_int, default=1, help="worker processes (each loads the model)")
    serve.add_argument("--device", default="auto")
    _add_text_encoder_options(serve)
    serve.set_defaults(handler=_cmd_serve)

    models = commands.add_parser("models", help="list model architectures and pretrained tags")
    models.add_argument("--json", action="store_true")
    models.set_defaults(handler=_cmd_models)
    return parser


def _add_caption_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--caption-prompt", help="text the captioner continues (BLIP, BLIP-2)")
    parser.add_argument("--caption-max-tokens", type=_positive_int, default=30, help="longest caption, in tokens")
    parser.add_argument("--caption-batch-size", type=_positive_int, help="images per captioner call")
    if not any(a.dest == "device" for a in parser._actions):
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")


def _add_result_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-k", type=_positive_int, default=10, help="results to show")
    parser.add_argument("--offset", type=int, default=0, help="results to skip (pagination)")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="category=shoes (or shoes,bags), price=10..50, price_min=10, price_max=50, or ATTRIBUTE=VALUE",
    )
    parser.add_argument("--min-score", type=float, help="hide results less similar than this (cosine)")
    parser.add_argument("--collapse", action="store_true", help="one result per product_id")
    parser.add_argument("--explain", action="store_true", help="show why each result was returned")
    parser.add_argument("--device", default="auto")
    _add_text_encoder_options(parser)
    parser.add_argument("--json", action="store_true")


def _add_text_encoder_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--text-encoder",
        metavar="SPEC",
        help="answer text with this encoder instead of the model's text tower, e.g. the multilingual "
        "clip-ViT-B-32-multilingual-v1 for a ViT-B-32:openai store (see `catalens models`)",
    )
    parser.add_argument(
        "--allow-unpaired", action="store_true", help="accept a text encoder not registered for the store's model"
    )


def _add_ranking_options(parser: argparse.ArgumentParser, several_modes: bool = False) -> None:
    """Ranking-mode options of commands that rank by words (search, eval)."""
    parser.add_argument(
        "--mode",
        default="hybrid",
        help="vector (embeddings), lexical (BM25 over titles, descriptions, attributes, captions, OCR text) or "
        "hybrid (both, fused by reciprocal rank; default)"
        + ("; a comma-separated list compares modes" if several_modes else ""),
    )
    parser.add_argument("--vector-weight", type=float, help="hybrid: weight of the vector list (default 1)")
    parser.add_argument("--lexical-weight", type=float, help="hybrid: weight of the lexical list (default 1)")
    parser.add_argument("--rrf-k", type=float, help="hybrid: reciprocal-rank constant (default 60)")


def parse_filters(specs: Sequence[str]) -> Any:
    """Turn ``--filter`` values into an :class:`ItemFilter`; raises ``QueryError`` with the bad value."""
    from catalens.indexer.store import ItemFilter
    from catalens.search.errors import QueryError

    categories: list[str] = []
    attributes: list[tuple[str, str]] = []
    bounds: dict[str, float | None] = {"price_min": None, "price_max": None}
    for spec in specs:
        name, sep, value = spec.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise QueryError(f"--filter needs NAME=VALUE, got {spec!r}")
        try:
            if name == "category":
                categories.extend(v.strip() for v in value.split(",") if v.strip())
            elif name == "price":
                low, dots, high = value.partition("..")
                if not dots:
                    raise ValueError(value)
                bounds["price_min"] = float(low) if low else None
                bounds["price_max"] = float(high) if high else None
            elif name in bounds:
                bounds[name] = float(value)
            else:
                attributes.append((name, value))
        except ValueError:
            raise QueryError(f"--filter {spec!r}: price filters take numbers, e.g. price=10..50") from None
    return ItemFilter(tuple(categories), bounds["price_min"], bounds["price_max"], tuple(attributes))


def _modes(text: str, several: bool = False) -> list[Any]:
    """Parse ``--mode`` (a comma-separated list where ``several`` is allowed)."""
    from catalens.search.engine import SEARCH_MODES
    from catalens.search.errors import QueryError

    modes = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in SEARCH_MODES]
    if unknown or not modes or (len(modes) > 1 and not several):
        wanted = "a comma-separated list of" if several else "one of"
        raise QueryError(f"--mode takes {wanted} {', '.join(SEARCH_MODES)}; got {text!r}")
    return modes


def _fusion(args: argparse.Namespace) -> Any:
    """The hybrid fusion settings from ``--vector-weight``, ``--lexical-weight`` and ``--rrf-k``."""
    from catalens.search.engine import Fusion

    given = {
        "vector_weight": getattr(args, "vector_weight", None),
        "lexical_weight": getattr(args, "lexical_weight", None),
        "rank_constant": getattr(args, "rrf_k", None),
    }
    return Fusion(**{name: value for name, value in given.items() if value is not None})


def _options(args: argparse.Namespace) -> Any:
    from catalens.search.engine import SearchOptions
    from catalens.search.errors import QueryError

    if args.offset < 0:
        raise QueryError("--offset must be 0 or more")
    return SearchOptions(
        k=args.k,
        offset=args.offset,
        min_score=args.min_score,
        where=parse_filters(args.filter),
        collapse_by_product=args.collapse,
        explain=args.explain,
        **({"mode": _modes(args.mode)[0], "fusion": _fusion(args)} if hasattr(args, "mode") else {}),
    )


def _open_engine(args: argparse.Namespace, **kwargs: Any) -> Any:
    from catalens.search.engine import SearchEngine

    return SearchEngine.open(
        args.store,
        device=args.device,
        text_encoder=getattr(args, "text_encoder", None),
        allow_unpaired=getattr(args, "allow_unpaired", False),
        **kwargs,
    )


def _read_image(path: str) -> Any:
    from catalens.indexer.fetch import Fetcher
    from catalens.indexer.images import decode_image

    with Fetcher() as fetcher:
        return decode_image(fetcher.read(path), source=path).image


def _cmd_search(args: argparse.Namespace) -> int:
    from catalens.search.engine import QueryPart
    from catalens.search.errors import QueryError
    from catalens.search.query_syntax import parse_query

    terms = parse_query(args.query) if args.query else []
    if not terms and not args.image:
        raise QueryError("give a query, an --image, or both")
    options = _options(args)
    engine = _open_engine(args)
    try:
        parts = [QueryPart(image=_read_image(path)) for path in args.image]
        for term in terms:
            if term.kind == "image":
                parts.append(QueryPart(image=_read_image(term.value), weight=term.weight))
            elif term.kind == "item":
                parts.append(QueryPart(item_id=term.value, weight=term.weight))
            else:
                parts.append(QueryPart(text=term.value, weight=term.weight))
        result = engine.search(parts, options)
    finally:
        engine.close()
    _print_hits(result, args.json)
    return EXIT_OK


def _cmd_similar(args: argparse.Namespace) -> int:
    options = _options(args)
    engine = _open_engine(args)
    try:
        result = engine.similar(args.id, options)
    finally:
        engine.close()
    _print_hits(result, args.json)
    return EXIT_OK


def _print_hits(result: Any, as_json: bool) -> None:
    from dataclasses import asdict

    from catalens.indexer.lexical import highlight_html, highlight_plain

    if as_json:
        hits = []
        for hit in result.hits:
            row = asdict(hit)
            if row["explanation"] is not None:
                fields = row["explanation"]["matched_fields"]
                row["explanation"]["matched_fields"] = {name: highlight_html(text) for name, text in fields.items()}
            hits.append(row)
        _emit_json({"generation": result.generation, "k": result.k, "offset": result.offset, "hits": hits})
        return
    if not result.hits:
        print("No results.")
        return
    print(f"{'#':>3}  {'score':>6}  {'id':<32} {'title':<32} {'category':<14} {'price':>9}")
    for rank, hit in enumerate(result.hits, start=result.offset + 1):
        price = f"{hit.price:.2f}" if hit.price is not None else ""
        print(
            f"{rank:>3}  {hit.score:6.3f}  {_cut(hit.id, 32):<32} {_cut(hit.title or '', 32):<32} "
            f"{_cut(hit.category or '', 14):<14} {price:>9}"
        )
        why = hit.explanation
        if why is not None:
            vector = f"vector #{why.vector_rank} ({why.vector_score:.3f})" if why.vector_rank else "vector -"
            lexical = f"lexical #{why.lexical_rank} ({why.lexical_score:.2f})" if why.lexical_rank else "lexical -"
            print(f"{'':13}{' · '.join([vector, lexical] if why.mode != 'lexical' else [lexical])}")
            for name, text in why.matched_fields.items():
                print(f"{'':13}{name}: {_cut(' '.join(highlight_plain(text).split()), 90)}")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _cmd_classify(args: argparse.Namespace) -> int:
    from catalens.search.errors import QueryError

    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    if not labels:
        raise QueryError("--labels needs at least one label")
    engine = _open_engine(args)
    try:
        if args.image:
            results = [engine.classify_image(_read_image(args.image), labels, args.templates, args.top_k)]
        else:
            ids = args.ids or sorted(i for i, s in engine.store.item_states().items() if s.has_vector)
            results = []
            for start in range(0, len(ids), 256):
                chunk = ids[start : start + 256]
                results.extend(engine.classify_items(chunk, labels, args.templates, args.top_k))
    finally:
        engine.close()
    if args.json:
        _emit_json([{"id": r.id, "predictions": [vars(p) for p in r.predictions]} for r in results])
        return EXIT_OK
    print(f"{'id':<40} {'label':<24} {'probability':>11}")
    for result in results:
        for rank, prediction in enumerate(result.predictions):
            name = _cut(result.id or args.image, 40) if rank == 0 else ""
            print(f"{name:<40} {_cut(prediction.label, 24):<24} {prediction.probability:11.3f}")
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace) -> int:
    from catalens.search.engine import SearchEngine
    from catalens.search.errors import QueryError
    from catalens.search.evaluation import evaluate, load_eval_set

    cases = load_eval_set(args.set)
    labels = [label.strip() for label in args.labels.split(",") if label.strip()] if args.labels else None
    modes = _modes(args.mode, several=True)
    if len(modes) > 1 and args.compare:
        raise QueryError("compare either stores (--compare) or modes (--mode a,b), not both at once")
    reports = []
    for store in [args.store, *([args.compare] if args.compare else [])]:
        engine = SearchEngine.open(
            store,
            device=args.device,
            fusion=_fusion(args),
            text_encoder=args.text_encoder,
            allow_unpaired=args.allow_unpaired,
        )
        try:
            for mode in modes:
                reports.append(
                    evaluate(engine, cases, labels=labels, templates=args.templates, depth=args.depth, mode=mode)
                )
        finally:
            engine.close()
    if args.json:
        payload = [r.to_dict() for r in reports]
        _emit_json(payload[0] if len(payload) == 1 else {"set": cases.path, "stores": payload})
        return EXIT_OK
    _print_eval(reports)
    return EXIT_OK


def _print_eval(reports: list[Any]) -> None:
    names = [f"{_cut(r.model, 28 - len(r.mode) - 3)} [{r.mode}]" for r in reports]
    header = f"{'metric':<22}" + "".join(f"{name:>30}" for name in names)
    header += "  change" if len(reports) == 2 else ""
    first = reports[0]
    print(f"Set: {first.queries} retrieval queries, {first.classified} classified items")
    print(header)
    rows = [("retrieval " + m, [r.retrieval.get(m) for r in reports]) for m in first.retrieval]
    rows += [("zero-shot " + m, [r.classification.get(m) for r in reports]) for m in first.classification]
    for name, values in rows:
        cells = "".join(f"{v:>30.3f}" if v is not None else f"{'-':>30}" for v in values)
        change = ""
        if len(values) == 2 and None not in values:
            change = f"  {values[1] - values[0]:+.3f}"
        print(f"{name:<22}{cells}{change}")
    shown: set[str] = set()
    for report in reports:
        if report.per_label and report.store not in shown:  # zero-shot results do not depend on the mode
            shown.add(report.store)
            print(f"\nPer label ({report.model}):")
            print(f"  {'label':<24} {'precision':>9} {'recall':>9} {'support':>8}")
            for label, stats in report.per_label.items():
                print(f"  {_cut(label, 24):<24} {stats.precision:9.3f} {stats.recall:9.3f} {stats.support:8d}")
        for reason in report.skipped[:20]:
            print(f"skipped ({report.model}): {reason}")


def _cmd_finetune(args: argparse.Namespace) -> int:
    from catalens.models.training import EpochLog, FinetuneConfig
    from catalens.search.finetuning import FinetuneJob, run_finetune

    config = FinetuneConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        lock_image=args.lock_image,
        lock_text=args.lock_text,
        trainable_blocks=args.trainable_blocks,
        patience=args.patience,
        seed=args.seed,
    )
    job = FinetuneJob(args.store, args.out, args.model, args.text_template, args.heldout, args.device, config)

    def progress(log: EpochLog) -> None:
        print(
            f"epoch {log.epoch}: loss {log.train_loss:.4f}, held-out mean recall {log.heldout_score:.3f} "
            f"({log.seconds:.1f} s)",
            file=sys.stderr,
            flush=True,
        )

    report = run_finetune(job, progress)
    if args.json:
        _emit_json(report.to_dict())
        return EXIT_OK
    print(f"Fine-tuned {report.model} on {report.train_pairs} pairs; {report.heldout_pairs} held out")
    print(f"{'held-out metric':<16} {'before':>8} {'after':>8}")
    for name, value in report.before.items():
        print(f"{name:<16} {value:8.3f} {report.after[name]:8.3f}")
    print(f"Best epoch {report.best_epoch}; checkpoint {report.checkpoint}")
    print(
        f"Re-embed the store with it: catalens index SOURCE --store {args.store} --model {report.checkpoint} --rebuild"
    )
    for reason in report.skipped[:20]:
        print(f"skipped {reason}")
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from catalens.search.api import create_app
    from catalens.search.engine import SearchEngine
    from catalens.search.settings import Settings

    settings = Settings(
        store=args.store,
        device=args.device,
        text_encoder=args.text_encoder,
        allow_unpaired_text_encoder=args.allow_unpaired,
    )
    # Load once here so that a missing store or model is reported with an exit code, not a worker crash.
    engine = SearchEngine.open(
        settings.store,
        device=settings.device,
        fusion=settings.fusion(),
        text_encoder=settings.text_encoder,
        allow_unpaired=settings.allow_unpaired_text_encoder,
    )
    url = f"http://{args.host}:{args.port}/"
    print(f"Serving {engine.store.path} ({engine.size} items, {engine.encoder.spec}) at {url}", flush=True)
    print(f"  web page {url}   API docs {url}docs   metrics {url}metrics", flush=True)
    if args.workers == 1:
        try:
            uvicorn.run(create_app(settings, engine), host=args.host, port=args.port, log_level="warning")
        finally:
            engine.close()
        return EXIT_OK
    engine.close()
    os.environ["CATALENS_STORE"] = str(settings.store)
    os.environ["CATALENS_DEVICE"] = settings.device
    if settings.text_encoder:
        os.environ["CATALENS_TEXT_ENCODER"] = settings.text_encoder
        os.environ["CATALENS_ALLOW_UNPAIRED_TEXT_ENCODER"] = str(settings.allow_unpaired_text_encoder).lower()
    uvicorn.run(
        "catalens.search.api:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
    )
    return EXIT_OK


def _emit_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False))


def _cmd_index(args: argparse.Namespace) -> int:
    from catalens.indexer.pipeline import IndexOptions, index_catalog
    from catalens.search.progress import TqdmProgress

    options = IndexOptions(
        model=args.model,
        index_factory=args.index_factory,
        batch_size=args.batch_size,
        rebuild=args.rebuild,
        device=args.device,
        **({"workers": args.workers} if args.workers else {}),
    )
    progress = TqdmProgress(enabled=not args.quiet)
    report = index_catalog(args.source, args.store, options, progress)
    # The vector index is published before captioning and OCR start, so slow passes never delay it.
    passes = _enrich(args, args.caption, args.ocr, progress) if report.indexed_total else []
    if args.json:
        _emit_json({**report.to_dict(), "passes": [p.to_dict() for p in passes]} if passes else report.to_dict())
    else:
        _print_report(report)
        for done in passes:
            _print_pass(done)
    failed_passes = any(p.failed for p in passes)
    if report.indexed_total == 0 or (args.strict and (report.failed or failed_passes)):
        return EXIT_FAILED
    return EXIT_OK


def _enrich(args: argparse.Namespace, captioner_spec: str | None, ocr_spec: str | None, progress: Any) -> list[Any]:
    """Run the caption and OCR passes asked for, under the store's writer lock; returns their reports."""
    from catalens.indexer.enrich import EnrichOptions, caption_store, ocr_store
    from catalens.indexer.store import CatalogStore

    if not captioner_spec and not ocr_spec:
        return []
    options = EnrichOptions(redo=getattr(args, "redo", False), batch_size=getattr(args, "caption_batch_size", None))
    reports = []
    with CatalogStore.open(args.store) as store, store.writer_lock():
        if captioner_spec:
            captioner = _load_captioner(args, captioner_spec, store)
            reports.append(caption_store(store, captioner, options, progress))
        if ocr_spec:
            reports.append(ocr_store(store, _load_ocr(args, ocr_spec), options, progress))
    return reports


def _load_captioner(args: argparse.Namespace, spec: str, store: Any) -> Any:
    from catalens.models import LoadOptions, default_registry
    from catalens.models.captioning import CaptionOptions, load_captioner, parse_captioner_spec

    options = CaptionOptions(
        device=args.device,
        prompt=args.caption_prompt,
        max_new_tokens=args.caption_max_tokens,
        batch_size=args.caption_batch_size,
    )
    parsed = parse_captioner_spec(spec)
    encoder = None
    if parsed.kind == "attributes":  # the attribute captioner classifies with the store's own model
        encoder = default_registry().load(store.manifest.model, LoadOptions(device=args.device))
    return load_captioner(parsed, options, encoder=encoder)


def _load_ocr(args: argparse.Namespace, spec: str) -> Any:
    from catalens.models.ocr import DEFAULT_OCR, OcrOptions, load_ocr

    confidence = getattr(args, "min_confidence", None)
    options = OcrOptions(min_confidence=confidence) if confidence is not None else OcrOptions()
    return load_ocr(DEFAULT_OCR if spec == "default" else spec, options)


def _print_pass(report: Any) -> None:
    what = "Captioned" if report.kind == "caption" else "Read text in"
    print(
        f"{what} {report.done} items with {report.spec} ({report.up_to_date} already done, "
        f"{len(report.failed)} failed; {report.seconds:.1f} s, {report.items_per_second:.1f} items/s)"
    )
    for failure in report.failed[:20]:
        print(f"  {failure.id}: {failure.reason}")
    if len(report.failed) > 20:
        print(f"  ... and {len(report.failed) - 20} more")


def _cmd_caption(args: argparse.Namespace) -> int:
    from catalens.search.progress import TqdmProgress

    reports = _enrich(args, args.captioner, None, TqdmProgress(enabled=not args.quiet))
    return _finish_pass(args, reports[0])


def _cmd_ocr(args: argparse.Namespace) -> int:
    from catalens.search.progress import TqdmProgress

    reports = _enrich(args, None, args.engine, TqdmProgress(enabled=not args.quiet))
    return _finish_pass(args, reports[0])


def _finish_pass(args: argparse.Namespace, report: Any) -> int:
    if args.json:
        _emit_json(report.to_dict())
    else:
        _print_pass(report)
    return EXIT_OK


def _cmd_captioners(args: argparse.Namespace) -> int:
    from catalens.models.captioning import list_captioners
    from catalens.models.ocr import DEFAULT_OCR, list_ocr_engines

    captioners = list_captioners()
    engines = list_ocr_engines()
    if args.json:
        _emit_json(
            {
                "captioners": [vars(c) for c in captioners],
                "ocr": engines,
                "default_ocr": DEFAULT_OCR,
            }
        )
        return EXIT_OK
    print("Captioners (catalens index --caption SPEC, catalens caption --captioner SPEC):")
    width = max(len(c.name) for c in captioners)
    for captioner in captioners:
        print(f"  {captioner.name:<{width}}  {captioner.description}")
    print(f"OCR engines (--ocr ENGINE; default {DEFAULT_OCR}): {', '.join(engines)}")
    return EXIT_OK


def _print_report(report: Any) -> None:
    rows = [
        ("new", report.new),
        ("updated", report.updated),
        ("metadata updated", report.metadata_updated),
        ("unchanged", report.unchanged),
        ("removed", report.removed),
        ("failed", len(report.failed)),
    ]
    print(f"Indexed into {report.store} with {report.model}")
    for label, value in rows:
        print(f"  {label:<17} {value:>8}")
    speed = f", {report.images_per_second:.1f} images/s" if report.embedded else ""
    print(
        f"  {report.indexed_total} items searchable; index {report.index_factory}, generation {report.generation}; "
        f"{report.elapsed_seconds:.1f} s{speed}"
    )
    if report.failed:
        print("Failed items:")
        for failure in report.failed[:50]:
            print(f"  {failure.id}: {failure.reason}")
        if len(report.failed) > 50:
            print(f"  ... and {len(report.failed) - 50} more (see `catalens info --json`)")


def _cmd_reindex(args: argparse.Namespace) -> int:
    from catalens.indexer.pipeline import reindex

    state = reindex(args.store, args.index_factory)
    if args.json:
        _emit_json({"generation": state.generation, "factory": state.factory, "count": state.count})
    else:
        print(f"Rebuilt the index from SQLite: {state.count} vectors, {state.factory}, generation {state.generation}")
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from catalens.indexer.store import CatalogStore

    with CatalogStore.open(args.store) as store:
        manifest = store.manifest
        counts = store.status_counts()
        index = manifest.index
        payload: dict[str, Any] = {
            "store": str(store.path),
            "schema_version": manifest.schema_version,
            "model": manifest.model,
            "dim": manifest.dim,
            "items": counts,
            "vectors": store.vector_count(),
            "index": {
                "factory": index.factory if index else manifest.index_factory,
                "generation": index.generation if index else None,
                "count": index.count if index else 0,
                "built_at": index.built_at if index else None,
            },
            "passes": store.enrichment_counts(),
            "size_bytes": store.size_on_disk(),
            "failures": [{"id": f.id, "source": f.source, "reason": f.reason} for f in store.failures(100)],
        }
    if args.json:
        _emit_json(payload)
        return EXIT_OK
    print(f"Store       {payload['store']} (schema v{payload['schema_version']})")
    print(f"Model       {payload['model']} ({payload['dim']} dimensions)")
    print(f"Items       {counts['indexed']} indexed, {counts['failed']} failed")
    generation = payload["index"]["generation"]
    built = f"generation {generation}, {payload['index']['count']} vectors" if generation else "not built yet"
    print(f"Index       {payload['index']['factory']}, {built}")
    for kind, specs in payload["passes"].items():
        done = ", ".join(f"{n} by {spec}" for spec, n in specs.items())
        print(f"{'Captions' if kind == 'caption' else 'OCR text':<12}{done}")
    print(f"Size        {payload['size_bytes'] / 1e6:.1f} MB")
    if payload["failures"]:
        print("Failures:")
        for failure in payload["failures"][:20]:
            print(f"  {failure['id']}: {failure['reason']}")
    return EXIT_OK


def _cmd_models(args: argparse.Namespace) -> int:
    from catalens.models import list_models
    from catalens.models.text_encoders import list_pairings

    infos = list_models()
    pairings = list_pairings()
    if args.json:
        _emit_json(
            {
                "models": [{"backend": i.backend, "arch": i.arch, "tags": list(i.tags)} for i in infos],
                "text_encoders": [
                    {"text": p.text, "image": p.image, "languages": p.languages, "note": p.note} for p in pairings
                ],
            }
        )
        return EXIT_OK
    print(
        "Model specs: auto (default), catalens-mini (shipped, offline), ARCH:TAG (pretrained), ARCH:random, "
        "ARCH:/path/weights, hf-hub:ORG/NAME, DIR, config.json"
    )
    for info in infos:
        tags = ", ".join(info.tags) if info.tags else "(no pretrained tags; use ARCH:random or a checkpoint)"
        print(f"  {info.arch:<40} {tags}")
    print("\nText encoders for queries (--text-encoder SPEC), each paired with the image model it was aligned to:")
    for pairing in pairings:
        print(f"  {pairing.text:<54} -> {pairing.image:<34} {pairing.languages}")
    return EXIT_OK


def _fail(code: int, message: str) -> int:
    print(f"catalens: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    args = build_parser().parse_args(argv)
    # open_clip and huggingface_hub log warnings on the root logger (e.g. "initialised randomly");
    # people only see them with --verbose.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(message)s")
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ModelUnavailableError as e:
        return _fail(EXIT_MODEL, str(e))
    except ModelError as e:
        return _fail(EXIT_MODEL, str(e))
    except StoreError as e:
        return _fail(EXIT_STORE, str(e))
    except (SourceError, IndexBuildError, ItemError, SearchError) as e:
        return _fail(EXIT_INPUT, str(e))
    except KeyboardInterrupt:
        return _fail(130, "interrupted; work committed so far is kept, and a re-run continues from there")


if __name__ == "__main__":
    sys.exit(main())
