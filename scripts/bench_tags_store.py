#!/usr/bin/env python3
"""The tag store at scale: ``TagTable.write`` rows/s, ``pending``, ``counts``, facets, filters and the review queue.

Works on a store made by ``scripts/scale_data.py`` (COPY it first: this writes tags into it, and opening a
version 3 store upgrades it to version 4, timed as ``open_upgrade_seconds``)::

    python scripts/scale_data.py --store /tmp/s-tags -n 100000
    python scripts/bench_tags_store.py --store /tmp/s-tags

Every indexed item gets one tag for each of two attributes (single-label ``shade`` and multi-label ``finish``,
decisions drawn accept/review/reject 60/25/15), written in batches through the job's path; then the same again
(the re-run case: every model row replaced). Prints a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from catalens.indexer.store import CatalogStore, ItemFilter, ModelTag  # noqa: E402

SHADES = ("light", "dark", "pastel", "neon", "muted", "bright", "deep", "pale")
FINISHES = ("matte", "gloss", "satin", "metallic")
TAXONOMY = json.dumps(
    {"attributes": {"shade": {"values": list(SHADES)}, "finish": {"values": list(FINISHES), "multi_label": True}}}
)


def _results(keys: np.ndarray, rng: np.random.Generator) -> list[tuple[int, list[str], list[ModelTag]]]:
    decisions = rng.choice(np.array(["accept", "review", "reject"]), size=(len(keys), 2), p=[0.6, 0.25, 0.15])
    confidence = rng.random((len(keys), 2))
    shade, finish = rng.integers(0, len(SHADES), len(keys)), rng.integers(0, len(FINISHES), len(keys))
    return [
        (
            int(key),
            ["shade", "finish"],
            [
                ModelTag("shade", SHADES[shade[i]], float(confidence[i, 0]), str(decisions[i, 0]), SHADES[0], 0.1),
                ModelTag("finish", FINISHES[finish[i]], float(confidence[i, 1]), str(decisions[i, 1])),
            ],
        )
        for i, key in enumerate(keys)
    ]


def _timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    figures: dict[str, object] = {"store": args.store, "batch": args.batch}
    store, figures["open_upgrade_seconds"] = _timed(lambda: CatalogStore.open(args.store))
    rng = np.random.default_rng(0)
    with store, store.writer_lock():
        tags = store.tags
        for attempt in ("first", "rerun"):
            signature = f"bench-{attempt}"
            keys, figures[f"pending_{attempt}_seconds"] = _timed(lambda s=signature: tags.pending(s))
            figures["items"] = len(keys)
            run = tags.start_run(signature, "hash", TAXONOMY, store.manifest.model, None)
            seconds = 0.0
            for start in range(0, len(keys), args.batch):
                batch = _results(keys[start : start + args.batch], rng)
                _, took = _timed(lambda b=batch, r=run, s=signature: tags.write(r, s, b))
                seconds += took
            figures[f"write_{attempt}_seconds"] = round(seconds, 2)
            figures[f"write_{attempt}_rows_per_s"] = round(2 * len(keys) / seconds)
            tags.finish_run(run, {"items": len(keys)})
        left, figures["pending_after_seconds"] = _timed(lambda: tags.pending("bench-rerun"))
        figures["pending_after_items"] = len(left)
        counts, figures["counts_seconds"] = _timed(tags.counts)
        figures["counts"] = counts
        _, figures["facet_counts_seconds"] = _timed(lambda: store.facet_counts("shade"))
        _, figures["attribute_names_seconds"] = _timed(store.attribute_names)
        matched, figures["matching_keys_tag_seconds"] = _timed(
            lambda: store.matching_keys(ItemFilter(attributes=(("shade", "dark"),)))
        )
        figures["matching_keys_tag_items"] = len(matched)
        _, figures["review_queue_seconds"] = _timed(lambda: tags.review_queue("shade", limit=50, offset=1000))
        rows, figures["export_rows_seconds"] = _timed(lambda: sum(1 for _ in tags.rows(decision="accept")))
        figures["export_rows"] = rows
    for name, value in figures.items():
        if isinstance(value, float):
            figures[name] = round(value, 4)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
