#!/usr/bin/env python3
"""Synthetic catalog vectors with the low intrinsic dimension of real embeddings, and a store filled with them.

The generator is fixed by issue 13 so that every figure measured on it stays comparable:

* 4,096 cluster centres drawn N(0, 1) in a 48-dimensional latent space;
* cluster sizes from a Zipf law with exponent 1.3 (cluster ``r`` is picked with probability ∝ (r+1)^-1.3);
* a point is its centre + N(0, 0.5²) per latent dimension, mapped into 512-d by a random orthonormal
  512×48 matrix, plus isotropic 512-d Gaussian noise with per-coordinate standard deviation
  0.15·√(48/512) ≈ 0.046, then L2-normalised.

The mean cosine of a point to its centre's direction is then about 0.89. Points are made in fixed blocks
of :data:`BLOCK` rows, each from its own seeded generator, so point ``i`` is the same whatever chunk size a
caller streams with, and held-out queries (:func:`query_vectors`) come from a separate stream.

``fill_store`` writes ``n`` such vectors through the store's own write path (``CatalogStore.write_batch``)
with catalog metadata: a category and a brand that follow the cluster (as real catalogs do: similar
pictures share a category), a colour, a price, and a ``bucket`` attribute with 100 values spread uniformly
and independently of the vectors (``bucket=7`` keeps exactly 1 % of the items: the hard case for filtered
approximate search). Titles combine common words (a colour, the category) with an item number, so the
lexical leg meets both common and rare words.

Run it to make a store: ``python scripts/scale_data.py --store /tmp/scale-1m -n 1000000``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from catalens.indexer.records import ItemRecord  # noqa: E402
from catalens.indexer.store import CatalogStore, EmbeddedItem  # noqa: E402

DIM = 512
LATENT_DIM = 48
CLUSTERS = 4096
ZIPF_EXPONENT = 1.3
CLUSTER_SD = 0.5
NOISE_SD = 0.15 * float(np.sqrt(LATENT_DIM / DIM))
#: Rows per independently seeded block of points.
BLOCK = 65_536
#: The model recorded in the store: ViT-B-32's 512-d space, so text queries can be encoded against it.
STORE_MODEL = "ViT-B-32:random"

CATEGORIES = (
    "shoes", "boots", "sandals", "bags", "wallets", "belts", "hats", "scarves", "gloves", "jackets",
    "coats", "shirts", "t-shirts", "dresses", "skirts", "trousers", "jeans", "watches", "sunglasses", "jewellery",
    "mugs", "plates", "lamps", "chairs", "tables", "rugs", "cushions", "vases", "clocks", "mirrors",
    "toys", "puzzles", "books", "pens", "notebooks", "backpacks", "phones", "cables", "headphones", "speakers",
)  # fmt: skip
COLOURS = ("red", "blue", "black", "white", "green", "brown", "grey", "pink", "yellow", "orange", "purple", "beige")
MATERIALS = ("leather", "wool", "cotton", "linen", "silk", "denim", "canvas", "steel", "wooden", "ceramic")
BRANDS = tuple(f"brand{i:03d}" for i in range(200))
BUCKETS = 100


@dataclass(frozen=True)
class Generator:
    """The fixed parts of the synthetic space: cluster centres, cluster odds and the latent→512-d map."""

    centres: np.ndarray  # (CLUSTERS, LATENT_DIM)
    odds: np.ndarray  # (CLUSTERS,) cluster probabilities, largest first
    basis: np.ndarray  # (DIM, LATENT_DIM) orthonormal columns
    seed: int

    @classmethod
    def make(cls, seed: int = 0) -> Generator:
        rng = np.random.default_rng([seed, 0])
        centres = rng.standard_normal((CLUSTERS, LATENT_DIM))
        ranks = np.arange(1, CLUSTERS + 1, dtype=np.float64)
        odds = ranks**-ZIPF_EXPONENT
        odds /= odds.sum()
        basis, _ = np.linalg.qr(rng.standard_normal((DIM, LATENT_DIM)))
        return cls(centres, odds, basis, seed)

    def block(self, stream: int, index: int, rows: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
        """Block ``index`` of a stream (0: the catalog, 1: held-out queries): ``(clusters, vectors)``."""
        rng = np.random.default_rng([self.seed, 1 + stream, index])
        clusters = rng.choice(CLUSTERS, size=rows, p=self.odds)
        latent = self.centres[clusters] + rng.normal(0.0, CLUSTER_SD, size=(rows, LATENT_DIM))
        points = latent @ self.basis.T + rng.normal(0.0, NOISE_SD, size=(rows, DIM))
        points /= np.linalg.norm(points, axis=1, keepdims=True)
        return clusters, points.astype(np.float32)

    def stream(self, n: int, stream: int = 0, chunk: int = BLOCK) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """``(first_row, clusters, vectors)`` chunks of the first ``n`` points of a stream, at most ``chunk`` rows."""
        done = 0
        block = 0
        while done < n:
            clusters, vectors = self.block(stream, block)
            block += 1
            take = min(BLOCK, n - done)
            for lo in range(0, take, chunk):
                hi = min(take, lo + chunk)
                yield done + lo, clusters[lo:hi], vectors[lo:hi]
            done += take


def catalog_vectors(n: int, seed: int = 0) -> np.ndarray:
    """The first ``n`` catalog points, ``(n, 512)`` float32 (what :func:`fill_store` writes, in key order)."""
    generator = Generator.make(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for first, _, vectors in generator.stream(n):
        out[first : first + len(vectors)] = vectors
    return out


def query_vectors(n: int, seed: int = 0) -> np.ndarray:
    """``n`` held-out query points from the same distribution (never written to a store)."""
    generator = Generator.make(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for first, _, vectors in generator.stream(n, stream=1):
        out[first : first + len(vectors)] = vectors
    return out


def item_record(i: int, cluster: int, rng: np.random.Generator) -> ItemRecord:
    """The catalog metadata of synthetic item ``i`` (of cluster ``cluster``)."""
    category = CATEGORIES[cluster % len(CATEGORIES)]
    colour = COLOURS[int(rng.integers(len(COLOURS)))]
    material = MATERIALS[int(rng.integers(len(MATERIALS)))]
    brand = BRANDS[(cluster * 7) % len(BRANDS)]
    return ItemRecord(
        id=f"sku-{i}",
        source=f"/synthetic/{i}.jpg",
        origin="scale",
        title=f"{colour} {material} {category} {i}",
        category=category,
        price=round(float(rng.uniform(5, 500)), 2),
        product_id=f"prod-{i // 3}",
        attributes={"brand": brand, "colour": colour, "bucket": str(i % BUCKETS)},
    )


def fill_store(store_dir: Path, n: int, *, seed: int = 0, chunk: int = 5000, factory: str = "Flat") -> float:
    """Write ``n`` synthetic items into a new store through ``write_batch``; returns the seconds it took.

    The index is not built (call ``reindex``); the store's model is :data:`STORE_MODEL`.
    """
    started = time.perf_counter()
    generator = Generator.make(seed)
    rng = np.random.default_rng([seed, 99])
    store = CatalogStore.create(store_dir, STORE_MODEL, DIM, factory)
    try:
        with store.writer_lock():
            for first, clusters, vectors in generator.stream(n, chunk=chunk):
                items = [
                    EmbeddedItem(
                        item_record(first + j, int(clusters[j]), rng),
                        content_hash=f"{first + j:032x}",
                        width=800,
                        height=800,
                        vector=vectors[j],
                    )
                    for j in range(len(vectors))
                ]
                store.write_batch(embedded=items)
                if (first // chunk) % 20 == 0:
                    print(f"  wrote {first + len(vectors):,} of {n:,}", file=sys.stderr, flush=True)
    finally:
        store.close()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="a new store directory")
    parser.add_argument("-n", type=int, default=1_000_000, help="items (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seconds = fill_store(args.store, args.n, seed=args.seed)
    print(json.dumps({"store": str(args.store), "items": args.n, "fill_seconds": round(seconds, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
