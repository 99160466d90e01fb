"""The ``catalens`` command line. The only place that prints and chooses exit codes.

Exit codes: 0 success; 1 the run finished but failed (``--strict`` with failures, or nothing indexed);
2 usage error; 3 store problem (missing, locked, other model, unreadable); 4 model unavailable or broken;
5 bad input (catalog source, index factory).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from indexer.errors import IndexBuildError, SourceError, StoreError
from models.errors import ModelError, ModelUnavailableError

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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one sub-command per job."""
    parser = _Parser(prog="catalens", description="Semantic image search for product catalogs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library log messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    index = commands.add_parser("index", help="index a folder or CSV/JSONL manifest into a store")
    index.add_argument("source", help="a folder of images, or a CSV/JSONL manifest")
    index.add_argument("--store", required=True, help="the store directory (created when missing)")
    index.add_argument("--model", help="model spec (default: the store's model, or ViT-B-32:laion2b_s34b_b79k)")
    index.add_argument("--index", dest="index_factory", help="FAISS index-factory string (default Flat: exact)")
    index.add_argument("--batch-size", type=_positive_int, help="images per forward pass")
    index.add_argument("--workers", type=_positive_int, help="decode threads")
    index.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    index.add_argument("--rebuild", action="store_true", help="re-embed everything (required to switch models)")
    index.add_argument("--strict", action="store_true", help="exit non-zero when any item failed")
    index.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    index.add_argument("--quiet", action="store_true", help="no progress bars")
    index.set_defaults(handler=_cmd_index)

    reindex = commands.add_parser("reindex", help="rebuild the FAISS index from the store's SQLite alone")
    reindex.add_argument("--store", required=True)
    reindex.add_argument("--index", dest="index_factory", help="switch to another FAISS index-factory string")
    reindex.add_argument("--json", action="store_true")
    reindex.set_defaults(handler=_cmd_reindex)

    info = commands.add_parser("info", help="describe a store")
    info.add_argument("--store", required=True)
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=_cmd_info)

    models = commands.add_parser("models", help="list model architectures and pretrained tags")
    models.add_argument("--json", action="store_true")
    models.set_defaults(handler=_cmd_models)
    return parser


def _emit_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False))


def _cmd_index(args: argparse.Namespace) -> int:
    from indexer.pipeline import IndexOptions, index_catalog
    from search.progress import TqdmProgress

    options = IndexOptions(
        model=args.model,
        index_factory=args.index_factory,
        batch_size=args.batch_size,
        rebuild=args.rebuild,
        device=args.device,
        **({"workers": args.workers} if args.workers else {}),
    )
    report = index_catalog(args.source, args.store, options, TqdmProgress(enabled=not args.quiet))
    if args.json:
        _emit_json(report.to_dict())
    else:
        _print_report(report)
    if report.indexed_total == 0 or (args.strict and report.failed):
        return EXIT_FAILED
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
    from indexer.pipeline import reindex

    state = reindex(args.store, args.index_factory)
    if args.json:
        _emit_json({"generation": state.generation, "factory": state.factory, "count": state.count})
    else:
        print(f"Rebuilt the index from SQLite: {state.count} vectors, {state.factory}, generation {state.generation}")
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from indexer.store import CatalogStore

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
    print(f"Size        {payload['size_bytes'] / 1e6:.1f} MB")
    if payload["failures"]:
        print("Failures:")
        for failure in payload["failures"][:20]:
            print(f"  {failure['id']}: {failure['reason']}")
    return EXIT_OK


def _cmd_models(args: argparse.Namespace) -> int:
    from models import list_models

    infos = list_models()
    if args.json:
        _emit_json([{"backend": i.backend, "arch": i.arch, "tags": list(i.tags)} for i in infos])
        return EXIT_OK
    print("Model specs: ARCH:TAG (pretrained), ARCH:random, ARCH:/path/weights, hf-hub:ORG/NAME, DIR, config.json")
    for info in infos:
        tags = ", ".join(info.tags) if info.tags else "(no pretrained tags; use ARCH:random or a checkpoint)"
        print(f"  {info.arch:<40} {tags}")
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
    except (SourceError, IndexBuildError) as e:
        return _fail(EXIT_INPUT, str(e))
    except KeyboardInterrupt:
        return _fail(130, "interrupted; work committed so far is kept, and a re-run continues from there")


if __name__ == "__main__":
    sys.exit(main())
