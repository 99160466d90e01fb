#!/usr/bin/env python3
"""``--index auto`` measured on vectors a model made: every image the repository reaches, embedded with catalens-mini.

:mod:`bench_scale` measures on synthetic vectors whose intrinsic dimension is fixed by construction; this
benchmark checks the same indexes on real embeddings, whose spectrum nobody chose.

Images (all rendered or decoded here, nothing downloaded but the pinned npm packages of :mod:`mini_data`):

* the nine emoji styles catalens-mini was trained on (``mini_data.training_sets``),
* the demo catalog (``scripts/data/demo_catalog/images``),
* clip art from Debian's ``openclipart-png`` when installed (``--clipart``; skipped when the folder is absent),
* the held-out OpenMoji style (``mini_data.held_out_set``): the **queries**, never written to the store.

Steps:

1. Embed every image with catalens-mini (RGBA renders composited on white, as ``eval_mini.py`` does), in
   batches of 256; the vectors of each source are cached in ``--work`` (``vectors-{source}.npz``).
2. Write the catalog vectors (everything but OpenMoji) into a new store through ``CatalogStore.write_batch``.
3. For each configuration (``auto`` under a budget that forces the compressed recipe, ``auto`` under a
   budget that allows a graph, ``HNSW32``, ``Flat``, and any ``--extra`` factory strings): ``reindex`` with
   ``retrain=True``, then load the published generation as the engine does (tuned knob, exact re-ranking
   from the store's vectors) and measure on the OpenMoji queries: recall@10 against an exact scan of the
   store's vectors, single-thread p50 latency, bytes per vector; beside it the tuning's own recall (measured
   on sampled store vectors).
4. The vectors' intrinsic dimension: PCA explained variance at 32/64/96/128 components, and the components
   needed for 90/95/99 % of it.

Prints a human table on stderr and one JSON line last on stdout.

    python scripts/bench_real_vectors.py --work /tmp/real-bench
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import mini_data  # noqa: E402

from catalens.indexer.pipeline import reindex  # noqa: E402
from catalens.indexer.publish import IndexGoals, index_summary, load_tuned  # noqa: E402
from catalens.indexer.records import ItemRecord  # noqa: E402
from catalens.indexer.store import CatalogStore, EmbeddedItem  # noqa: E402
from catalens.indexer.vectors import default_index_registry  # noqa: E402
from catalens.indexer.vectors.rerank import rerank  # noqa: E402
from catalens.indexer.vectors.tuning import RERANK_DEPTHS, recall  # noqa: E402

K = 10
BATCH = 256
MODEL = "catalens-mini"
QUERY_SOURCE = "openmoji"
DEMO_IMAGES = REPO_ROOT / "scripts" / "data" / "demo_catalog" / "images"
#: Largest side clip art is shrunk to before embedding (the model sees 64 px; decoding 1000s of big PNGs is slow).
CLIPART_SIDE = 256
PCA_COMPONENTS = (32, 64, 96, 128)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def on_white(pixels: np.ndarray) -> Image.Image:
    """An RGBA render composited on white, as the evaluation catalog shows emoji."""
    rgba = Image.fromarray(pixels, "RGBA")
    white = Image.new("RGB", rgba.size, (255, 255, 255))
    white.paste(rgba, mask=rgba.getchannel("A"))
    return white


def open_flat(path: Path, side: int = CLIPART_SIDE) -> Image.Image:
    """A file's image, shrunk to at most ``side`` pixels, transparent parts on white."""
    with warnings.catch_warnings():  # a few clip art PNGs are over 100 megapixels: trusted system files
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(path)
    with image:
        image.draft("RGB", (side, side))
        image.thumbnail((side, side))
        rgba = image.convert("RGBA")
    white = Image.new("RGB", rgba.size, (255, 255, 255))
    white.paste(rgba, mask=rgba.getchannel("A"))
    return white


def emoji_sources(cache: Path) -> Iterator[tuple[str, list[str], np.ndarray]]:
    """``(source, ids, RGBA renders)`` of every training style, then of OpenMoji."""
    emoji = mini_data.load_emoji(cache)
    for rendered in [*mini_data.training_sets(cache, emoji), mini_data.held_out_set(cache, emoji)]:
        yield rendered.key, list(rendered.hexcodes), rendered.images


def file_sources(clipart: Path | None) -> Iterator[tuple[str, list[Path]]]:
    """``(source, image files)`` of the demo catalog and of the clip art folder (if present)."""
    yield "demo", sorted(DEMO_IMAGES.glob("*.jpg"))
    if clipart is not None and clipart.is_dir():
        files = (p for p in clipart.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        yield "clipart", sorted(p for p in files if not p.is_symlink())  # the package links some files twice


def embed_all(work: Path, cache: Path, clipart: Path | None) -> dict[str, tuple[list[str], np.ndarray]]:
    """Every source's ``(ids, vectors)``, embedded once and cached as ``work/vectors-{source}.npz``."""
    from catalens.models import load_model

    encoder: Any = None
    out: dict[str, tuple[list[str], np.ndarray]] = {}

    def cached(source: str) -> Path:
        return work / f"vectors-{source}.npz"

    def encode(images: list[Image.Image]) -> np.ndarray:
        nonlocal encoder
        if encoder is None:
            encoder = load_model(MODEL)
        return np.asarray(encoder.encode_images(images, batch_size=BATCH), dtype=np.float32)

    def save(source: str, ids: list[str], vectors: np.ndarray, seconds: float) -> None:
        np.savez(cached(source), ids=np.array(ids), vectors=vectors)
        out[source] = (ids, vectors)
        log(f"  {source}: {len(ids):,} images embedded in {seconds:.0f} s")

    for source, ids, renders in emoji_sources(cache):
        if cached(source).exists():
            with np.load(cached(source)) as data:
                out[source] = ([str(i) for i in data["ids"]], data["vectors"])
            continue
        started = time.perf_counter()
        parts = [encode([on_white(p) for p in renders[lo : lo + BATCH]]) for lo in range(0, len(ids), BATCH)]
        save(source, ids, np.concatenate(parts), time.perf_counter() - started)
    for source, files in file_sources(clipart):
        if cached(source).exists():
            with np.load(cached(source)) as data:
                out[source] = ([str(i) for i in data["ids"]], data["vectors"])
            continue
        started = time.perf_counter()
        ids, parts = [], []
        for lo in range(0, len(files), BATCH):
            batch, names = [], []
            for path in files[lo : lo + BATCH]:
                try:
                    batch.append(open_flat(path))
                    names.append(str(path.relative_to(DEMO_IMAGES if source == "demo" else clipart or path.parent)))
                except (OSError, ValueError, Image.DecompressionBombError):
                    continue  # an unreadable file is skipped, the source goes on
            if batch:
                parts.append(encode(batch))
                ids.extend(names)
        vectors = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
        save(source, ids, vectors, time.perf_counter() - started)
    return out


def fill_store(store_dir: Path, catalog: dict[str, tuple[list[str], np.ndarray]]) -> int:
    """Write every catalog vector into a new store through ``write_batch`` (the store's model: catalens-mini).

    Vectors identical to one already written (the same picture twice) are left out: their ties would make an
    exact answer ambiguous and recall a matter of tie order. Returns how many were left out.
    """
    dim = next(iter(catalog.values()))[1].shape[1]
    seen: set[bytes] = set()
    duplicates = 0
    from catalens.models import load_model

    spec = load_model(MODEL).spec
    store = CatalogStore.create(store_dir, spec, dim, "Flat")
    try:
        with store.writer_lock():
            serial = 0
            for source, (ids, vectors) in catalog.items():
                items = []
                for name, vector in zip(ids, vectors, strict=True):
                    if (fingerprint := np.round(vector, 5).tobytes()) in seen:
                        duplicates += 1
                        continue
                    seen.add(fingerprint)
                    record = ItemRecord(
                        id=f"{source}/{name}",
                        source=f"/real/{source}/{name}",
                        origin=f"real-{source}",
                        title=f"{source} {name}",
                        category=source,
                    )
                    items.append(EmbeddedItem(record, f"{serial:032x}", 96, 96, vector))
                    serial += 1
                for lo in range(0, len(items), 5000):
                    store.write_batch(embedded=items[lo : lo + 5000])
    finally:
        store.close()
    return duplicates


def store_vectors(store_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All ``(keys, vectors)`` of the store, read back through its own path."""
    with CatalogStore.open(store_path) as store:
        parts = list(store.iter_vectors())
    return np.concatenate([k for k, _ in parts]), np.concatenate([v for _, v in parts])


def exact_top(queries: np.ndarray, keys: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Exact top-K store keys of each query (inner product on L2-normalised vectors)."""
    scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return keys[order]


def measure(store_path: Path, queries: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Recall@10 and single-thread latency of the current generation, searched as the engine searches it."""
    store = CatalogStore.open(store_path)
    try:
        state = store.manifest.index
        assert state is not None
        index, depth = load_tuned(store, state)

        def lookup(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return store.vectors_for(keys.tolist())

        def one(query: np.ndarray) -> np.ndarray:
            found = index.search(query, max(K, depth), threads=1)
            if depth:
                return rerank(query, found.ids[0], lookup)[0][:K]
            return found.ids[0][:K]

        for query in queries[:20]:
            one(query)  # warm caches
        found = np.full((len(queries), K), -1, dtype=np.int64)
        times = []
        for row, query in enumerate(queries):
            started = time.perf_counter()
            ids = one(query)
            times.append((time.perf_counter() - started) * 1000)
            found[row, : len(ids)] = ids
        summary = index_summary(state)
        return {
            "factory": state.factory,
            "chosen_by": summary.get("chosen_by"),
            "search_params": summary.get("search_params"),
            "recall_at_10": round(recall(found, truth), 4),
            "recall_at_10_tuning": summary.get("recall_at_10"),
            "target_met_tuning": summary.get("target_met"),
            "p50_ms": round(statistics.median(times), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3),
            "tuning_p50_ms": summary.get("latency_ms"),
            "bytes_per_vector": summary.get("bytes_per_vector"),
            "reason": summary.get("reason"),
        }
    finally:
        store.close()


def query_sweep(store_path: Path, queries: np.ndarray, truth: np.ndarray, vectors: np.ndarray) -> list[dict[str, Any]]:
    """For an approximate index: recall@10 on the queries at every knob value and re-rank depth the tuning tries.

    Shows what setting the held-out queries would have needed, beside what the tuning chose from store vectors.
    """
    store = CatalogStore.open(store_path)
    try:
        state = store.manifest.index
        assert state is not None
        index = store.load_index(state, default_index_registry().load)
    finally:
        store.close()
    knob = index.search_knob()
    if knob is None and index.exact_scores:
        return []
    depths = (0,) if index.exact_scores else RERANK_DEPTHS
    rows = []
    for value in knob.values if knob else (None,):
        if knob is not None and value is not None:
            index.configure({knob.name: value})
        for depth in depths:
            if knob is not None and knob.name == "k_factor" and (value or 1) * max(K, depth) > 4 * len(vectors):
                continue  # beyond the whole store many times over: nothing left to learn, only slow
            # searched as served: max(K, depth) candidates (a Refine index's k_factor scales with that k)
            found = index.search(queries, max(K, depth)).ids
            if depth:
                exact = np.concatenate(
                    [
                        np.einsum("qd,qkd->qk", queries[lo : lo + 64], vectors[np.maximum(found[lo : lo + 64], 0)])
                        for lo in range(0, len(queries), 64)
                    ]
                )
                exact[found < 0] = -np.inf
                order = np.argsort(-exact, axis=1, kind="stable")[:, :K]
                top = np.take_along_axis(found, order, axis=1)
            else:
                top = found[:, :K]
            entry = {"rerank": depth, "recall_at_10": round(recall(top, truth), 4)}
            rows.append(({knob.name: value} if knob else {}) | entry)
    return rows


def pca_variance(vectors: np.ndarray) -> dict[str, Any]:
    """Share of the centred variance in the first 32/64/96/128 principal components; components for 90/95/99 %."""
    centred = vectors - vectors.mean(axis=0)
    eigen = np.linalg.eigvalsh((centred.T @ centred).astype(np.float64))[::-1]
    cumulative = np.cumsum(eigen) / eigen.sum()
    out: dict[str, Any] = {f"var_{c}": round(float(cumulative[c - 1]), 4) for c in PCA_COMPONENTS if c <= len(eigen)}
    for share in (0.90, 0.95, 0.99):
        out[f"dims_for_{int(share * 100)}pct"] = int(np.searchsorted(cumulative, share) + 1)
    return out


def pca_recall(vectors: np.ndarray, keys: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Recall@10 of an exact L2 search in the first ``p`` PCA dimensions, its top 10 / 100 / 400 re-ranked exactly.

    The best any ``PCAR{p},…`` recipe can do at that re-rank depth (its codes only lose more), so it says which
    ``p`` real embeddings need.
    """
    mean = vectors.mean(axis=0)
    _, _, components = np.linalg.svd(vectors - mean, full_matrices=False)
    out: dict[str, Any] = {}
    for p in (32, 64, 96, 128, 192):
        basis = components[:p].T
        base, probe = (vectors - mean) @ basis, (queries - mean) @ basis
        # L2 in the projected space, as catalens's PCA indexes search (inner products of centred projections
        # would drop each vector's x·mean term and rank wrongly).
        approx = -(np.square(probe).sum(1)[:, None] - 2 * probe @ base.T + np.square(base).sum(1)[None, :])
        for depth in (10, 100, 400):
            pool = np.argsort(-approx, axis=1)[:, :depth]
            exact = np.einsum("qd,qkd->qk", queries, vectors[pool])
            top = np.take_along_axis(pool, np.argsort(-exact, axis=1)[:, :K], axis=1)
            out[f"p{p}_rerank{depth}"] = round(recall(keys[top], truth), 4)
    return out


def configurations(count: int, dim: int, extra: list[str]) -> list[tuple[str, str, int | None]]:
    """``(name, factory, memory budget)`` for each build.

    The compressed budget is 100 bytes a vector plus the 64-dimension PCA matrix, so that ``auto`` picks
    ``PCAR64`` (88 bytes a vector) at any size, and never ``PCAR96`` (128).
    """
    configs: list[tuple[str, str, int | None]] = [
        ("auto_compressed", "auto", count * 100 + 2 * dim * 64 * 4),
        ("auto_large_budget", "auto", count * 3000),
        ("hnsw32", "HNSW32", None),
        ("flat", "Flat", None),
    ]
    return configs + [(f"extra:{factory}", factory, None) for factory in extra]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/real-bench"), help="vectors cache and store")
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / ".cache" / "catalens-mini", help="mini_data cache")
    parser.add_argument("--clipart", type=Path, default=Path("/usr/share/openclipart/png"), help="clip art folder")
    parser.add_argument("--target", type=float, default=0.95, help="recall@10 target (default 0.95)")
    parser.add_argument("--extra", default="", help="semicolon-separated factory strings to build as well")
    parser.add_argument("--sweep", action="store_true", help="recall on the queries at every setting the tuning tries")
    parser.add_argument("--fresh-store", action="store_true", help="rebuild the store even if it exists")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    log("collecting and embedding images ...")
    embedded = embed_all(args.work, args.cache, args.clipart)
    queries = embedded.pop(QUERY_SOURCE)[1]
    catalog = {source: pair for source, pair in embedded.items() if len(pair[0])}
    counts = {source: len(ids) for source, (ids, _) in catalog.items()} | {QUERY_SOURCE: len(queries)}
    store = args.work / "store"
    result: dict[str, Any] = {}
    if args.fresh_store and store.exists():
        shutil.rmtree(store)
    if not CatalogStore.exists(store):
        log("writing the store ...")
        result["duplicates_left_out"] = fill_store(store, catalog)
    keys, vectors = store_vectors(store)
    log(f"store: {len(keys):,} vectors of {vectors.shape[1]} dimensions; {len(queries):,} OpenMoji queries")
    truth = exact_top(queries, keys, vectors)
    by_key = np.zeros((int(keys.max()) + 1, vectors.shape[1]), dtype=np.float32)  # vectors by store key
    by_key[keys] = vectors
    result |= {"model": MODEL, "dim": int(vectors.shape[1]), "count": int(len(keys)), "counts": counts}
    result["pca"] = pca_variance(vectors)
    log(f"PCA variance: {json.dumps(result['pca'])}")
    result["pca_recall_queries"] = pca_recall(vectors, keys, queries, truth)
    log(f"PCA-space recall (exact search in p dims, re-ranked): {json.dumps(result['pca_recall_queries'])}")
    extra = [f.strip() for f in args.extra.split(";") if f.strip()]
    rows = []
    for name, factory, budget in configurations(len(keys), int(vectors.shape[1]), extra):
        log(f"reindex {name}: {factory} (budget {budget}) ...")
        started = time.perf_counter()
        goals = IndexGoals(memory_budget=budget, target_recall=args.target, retrain=True)
        reindex(store, factory, goals=goals)
        entry: dict[str, Any] = {"budget": budget, "build_seconds": round(time.perf_counter() - started, 1)}
        entry |= measure(store, queries, truth)
        if args.sweep and entry["factory"] != "Flat":
            entry["query_sweep"] = query_sweep(store, queries, truth, by_key)
            entry["queries_need"] = next((r for r in entry["query_sweep"] if r["recall_at_10"] >= args.target), None)
        result[name] = entry
        rows.append((name, entry))
        log(f"  {json.dumps(entry)}")
    log("")
    log(
        f"{'config':24} {'factory':30} {'tuned params':22} {'recall':>7} {'tuning':>7} {'p50 ms':>7} {'B/vec':>7}"
        f"  {'queries need (first sweep setting >= target)'}"
    )
    for name, e in rows:
        params = ",".join(f"{k}={v}" for k, v in (e["search_params"] or {}).items())
        need = e.get("queries_need")
        log(
            f"{name[:24]:24} {e['factory']:30} {params:22} {e['recall_at_10']:7.4f} "
            f"{e['recall_at_10_tuning'] or 0:7.4f} {e['p50_ms']:7.3f} {e['bytes_per_vector'] or 0:7.1f}  "
            + (",".join(f"{k}={v}" for k, v in need.items()) if need else "-" if "query_sweep" not in e else "none")
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
