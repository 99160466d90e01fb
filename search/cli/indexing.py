"""``catalens index``, ``reindex`` and ``info``: build a store, rebuild its vector index, describe it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from catalens.indexer.publish import index_summary
from catalens.search.cli.enrichment import run_passes
from catalens.search.cli.exits import EXIT_FAILED, EXIT_OK
from catalens.search.cli.parsing import add_caption_options, add_ray_options, non_negative, positive_int, ray_options
from catalens.search.cli.render import describe_index, emit_json, print_index_report, print_pass, print_store_info

if TYPE_CHECKING:
    from catalens.indexer.store import CatalogStore
    from catalens.search.cli.parsing import Commands


def register_index(commands: Commands) -> None:
    """Add ``catalens index``."""
    index = commands.add_parser("index", help="index a folder or a CSV/JSONL/Parquet manifest into a store")
    index.add_argument("source", help="a folder of images, or a CSV/JSONL/Parquet manifest")
    index.add_argument("--store", required=True, help="the store directory (created when missing)")
    index.add_argument(
        "--model",
        help="model spec (default: the store's model; for a new store `auto`: pretrained ViT-B-32 when "
        "its weights are cached or downloadable, else the shipped catalens-mini)",
    )
    add_index_goal_options(index)
    index.add_argument("--batch-size", type=positive_int, help="images per forward pass")
    index.add_argument("--workers", type=positive_int, help="decode threads")
    index.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    index.add_argument("--rebuild", action="store_true", help="re-embed everything (required to switch models)")
    add_caption_options(index)
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
    index.add_argument(
        "--fetch-allow",
        action="append",
        type=_fetch_allow,
        metavar="HOSTS",
        help="hosts, .domains and networks whose image URLs may be fetched although they are not public "
        "(comma-separated, repeatable: cdn.example.com,10.2.0.0/16); loopback, private and link-local "
        "addresses are refused otherwise",
    )
    index.add_argument(
        "--fetch-deadline",
        type=non_negative,
        default=30.0,
        metavar="SECONDS",
        help="give up on an image URL after this long in all (default 30); the item fails and the run goes on",
    )
    index.add_argument(
        "--max-pixels",
        type=positive_int,
        metavar="N",
        help="fail images over N pixels whose format cannot be decoded at reduced size (all but JPEG), to bound "
        "the decoder's memory (about 4 bytes a pixel); default: Pillow's decompression-bomb limit",
    )
    add_ray_options(index)
    index.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    index.add_argument("--quiet", action="store_true", help="no progress bars")
    index.set_defaults(handler=run_index)


def add_index_goal_options(parser: argparse.ArgumentParser, *, switch: bool = False) -> None:
    """``--index``, ``--index-memory`` and ``--target-recall``, shared by ``index`` and ``reindex``."""
    parser.add_argument(
        "--index",
        dest="index_factory",
        metavar="FACTORY",
        help=("switch to " if switch else "")
        + "`auto` (the default for a new store: planned from the store's size and --index-memory) or a FAISS "
        "index-factory string (Flat, HNSW32, IVF4096,PQ64, ...); either way recall@10 is measured and the "
        "search settings tuned to --target-recall",
    )
    parser.add_argument(
        "--index-memory",
        type=_memory_size,
        metavar="SIZE",
        help="RAM the vector index may use, for `auto` (e.g. 128MB, 2GB; default a quarter of this machine's)",
    )
    parser.add_argument(
        "--target-recall",
        type=_recall,
        default=0.95,
        metavar="R",
        help="recall@10 (against exact search) the index's search settings are tuned to reach (default 0.95)",
    )


def _memory_size(text: str) -> int:
    from catalens.indexer.vectors.auto import parse_memory

    try:
        return parse_memory(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _recall(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"a recall target is in (0, 1], got {text}")
    return value


def _fetch_allow(text: str) -> str:
    from catalens.indexer.urlguard import parse_allow

    try:
        parse_allow(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def register_reindex(commands: Commands) -> None:
    """Add ``catalens reindex``."""
    reindex = commands.add_parser(
        "reindex", help="publish a new vector index from the store's SQLite alone, measured and tuned"
    )
    reindex.add_argument("--store", required=True)
    add_index_goal_options(reindex, switch=True)
    reindex.add_argument(
        "--retrain",
        action="store_true",
        help="build the index from scratch (retrain IVF/PQ on today's vectors) instead of extending the current one",
    )
    reindex.add_argument("--quiet", action="store_true", help="no progress bars")
    reindex.add_argument("--json", action="store_true")
    reindex.set_defaults(handler=run_reindex)


def register_info(commands: Commands) -> None:
    """Add ``catalens info``."""
    info = commands.add_parser("info", help="describe a store")
    info.add_argument("--store", required=True)
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=run_info)


def run_index(args: argparse.Namespace) -> int:
    """Index the catalog, then run the caption and OCR passes asked for; exit 1 when nothing (or, with
    ``--strict``, not everything) was indexed."""
    from catalens.indexer.fetch import FetchOptions
    from catalens.indexer.pipeline import IndexOptions, index_catalog
    from catalens.search.progress import TqdmProgress

    options = IndexOptions(
        model=args.model,
        index_factory=args.index_factory,
        index_memory=args.index_memory,
        target_recall=args.target_recall,
        batch_size=args.batch_size,
        rebuild=args.rebuild,
        device=args.device,
        fetch=FetchOptions(deadline_s=args.fetch_deadline, allow=tuple(args.fetch_allow or ())),
        max_pixels=args.max_pixels,
        ray=ray_options(args),
        **({"workers": args.workers} if args.workers else {}),
    )
    progress = TqdmProgress(enabled=not args.quiet)
    report = index_catalog(args.source, args.store, options, progress)
    # The vector index is published before captioning and OCR start, so slow passes never delay it.
    passes = run_passes(args, args.caption, args.ocr, progress) if report.indexed_total else []
    if args.json:
        emit_json({**report.to_dict(), "passes": [p.to_dict() for p in passes]} if passes else report.to_dict())
    else:
        print_index_report(report)
        for done in passes:
            print_pass(done)
    failed_passes = any(p.failed for p in passes)
    if report.indexed_total == 0 or (args.strict and (report.failed or failed_passes)):
        return EXIT_FAILED
    return EXIT_OK


def run_reindex(args: argparse.Namespace) -> int:
    """Rebuild the vector index from SQLite, optionally with another index factory."""
    from catalens.indexer.pipeline import reindex
    from catalens.indexer.publish import IndexGoals
    from catalens.search.progress import TqdmProgress

    goals = IndexGoals(memory_budget=args.index_memory, target_recall=args.target_recall, retrain=args.retrain)
    state = reindex(args.store, args.index_factory, TqdmProgress(enabled=not args.quiet), goals)
    summary = index_summary(state)
    if args.json:
        emit_json({"generation": state.generation, "factory": state.factory, "count": state.count, **summary})
    else:
        print(f"Published generation {state.generation}: {state.count} vectors, {state.factory}")
        print(describe_index(summary))
    return EXIT_OK


def run_info(args: argparse.Namespace) -> int:
    """Describe the store: schema, model, counts, index, passes, size and recent failures."""
    from catalens.indexer.store import CatalogStore

    with CatalogStore.open(args.store) as store:
        manifest = store.manifest
        index = manifest.index
        payload: dict[str, Any] = {
            "store": str(store.path),
            "schema_version": manifest.schema_version,
            "model": manifest.model,
            "model_digest": manifest.model_digest,
            "dim": manifest.dim,
            "items": store.status_counts(),
            "vectors": store.vector_count(),
            "index": {
                **index_summary(index),
                "factory": index.factory if index else manifest.index_factory,
                "requested": manifest.index_factory,
                "generation": index.generation if index else None,
                "count": index.count if index else 0,
                "built_at": index.built_at if index else None,
                **_index_health(store),
            },
            "passes": store.enrichment_counts(),
            "captions": _caption_sources(store),
            "size_bytes": store.size_on_disk(),
            "failures": [{"id": f.id, "source": f.source, "reason": f.reason} for f in store.failures(100)],
        }
    if args.json:
        emit_json(payload)
    else:
        print_store_info(payload)
        health = payload["index"]
        if health["status"] == "damaged":
            print(f"Index check DAMAGED: {health['problem']}")
        elif health["status"] == "ok":
            print(f"Index check ok{' (checksum verified)' if health['checksum'] else ''}")
    return EXIT_OK


def _caption_sources(store: CatalogStore) -> dict[str, Any]:
    """Captions made from the store's own vectors and from the pixels, and whether hybrid ranking (with the
    default fusion) matches them (see :func:`hybrid_matches_captions`)."""
    from catalens.search.engine import Fusion
    from catalens.search.engine.retrieval import hybrid_matches_captions

    sources = store.caption_sources()
    return {
        "from_vectors": sources.from_vectors,
        "other": sources.other,
        "matched_by_hybrid": hybrid_matches_captions(sources, Fusion()),
    }


def _index_health(store: CatalogStore) -> dict[str, Any]:
    """Whether the current generation's file is the one published: ``status`` is ``ok``, ``damaged`` (with
    ``problem``: missing, truncated, another store's) or ``none`` before the first publish."""
    from catalens.indexer.errors import IndexDamagedError
    from catalens.indexer.store.integrity import CHECKSUM_ALGORITHM
    from catalens.indexer.vectors import default_index_registry

    state = store.manifest.index
    checksum = store.manifest.checksum_of(state) if state else None
    if state is None:
        return {"status": "none", "problem": None, "checksum": None}
    try:
        if checksum is not None and checksum.startswith(f"{CHECKSUM_ALGORITHM}:"):
            # The file published with this checksum loaded then; reading it through in 4 MiB chunks proves it
            # is still that file without loading the index (2 GB of vectors for a million-item Flat index).
            _verify_checksum(store, state.file, checksum)
        else:
            store.load_index(state, default_index_registry().load)
    except IndexDamagedError as e:
        return {"status": "damaged", "problem": str(e), "checksum": checksum}
    return {"status": "ok", "problem": None, "checksum": checksum}


def _verify_checksum(store: CatalogStore, file: str, checksum: str) -> None:
    """Raise :class:`IndexDamagedError` unless the generation file exists and has the published checksum."""
    from catalens.indexer.errors import IndexDamagedError
    from catalens.indexer.store.integrity import file_checksum

    path = store.path / file
    try:
        found = file_checksum(path)
    except FileNotFoundError:
        raise IndexDamagedError(str(store.path), file, "the file is missing") from None
    except OSError as e:
        raise IndexDamagedError(str(store.path), file, f"it cannot be read ({e.strerror or e})") from e
    if found != checksum:
        reason = "its checksum is not the one recorded at publish (truncated, overwritten or from another store)"
        raise IndexDamagedError(str(store.path), file, reason)
