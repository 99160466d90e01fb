"""The per-spec caption counts (schema version 6) equal a direct count after any sequence of writes.

Hybrid ranking reads these counts on every query to decide whether a store's captions all restate its vectors
(:meth:`CatalogStore.caption_sources`), so they must follow every way a caption row changes: written, replaced
by another captioner's, failed, dropped with its image, deleted with its item, its item failing or coming back.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalens.indexer.records import ItemRecord
from catalens.indexer.store import (
    DB_NAME,
    CaptionSources,
    CatalogStore,
    EmbeddedItem,
    Enrichment,
    FailedItem,
    vector_caption_spec,
)

DIM = 4
IDS = [f"item-{i}" for i in range(4)]
SPECS = ["blip:Salesforce/blip-image-captioning-base", "attributes@another-model"]

# (operation, item index, variant): caption with a spec (0: the store's vectors, 1-2: SPECS) or a failure (3);
# a new image (variant: which); delete; fail; index again.
OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["caption", "image", "delete", "fail", "index"]), st.integers(0, 3), st.integers(0, 3)),
    max_size=25,
)


def embedded(item_id: str, image: int) -> EmbeddedItem:
    record = ItemRecord(id=item_id, source=f"/images/{item_id}.jpg", origin="shop", stat="1:1")
    vector = np.random.default_rng(image).standard_normal(DIM).astype(np.float32)
    return EmbeddedItem(record, f"hash-{item_id}-{image}", 40, 30, vector / np.linalg.norm(vector))


def apply(store: CatalogStore, operation: str, item_id: str, variant: int) -> None:
    with store.writer_lock():
        if operation == "caption":
            item = store.get_item(item_id)
            if item is None:
                return
            spec = vector_caption_spec("attributes", store.manifest.model_key) if variant == 0 else SPECS[variant % 2]
            error = "the captioner failed" if variant == 3 else None
            text = "" if error else f"caption {variant}"
            store.write_enrichments([(item.key, Enrichment("caption", spec, item.content_hash, text, {}, error))])
        elif operation == "image" or operation == "index":
            store.write_batch(embedded=[embedded(item_id, variant if operation == "image" else 0)])
        elif operation == "delete":
            store.delete_items([item_id])
        else:
            store.write_batch(failed=[(FailedItem(item_id, f"/images/{item_id}.jpg", "unreadable"), None)])


def direct_counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path / DB_NAME)
    try:
        rows = db.execute(
            "SELECT spec, COUNT(*) FROM enrichments WHERE kind = 'caption' AND error IS NULL GROUP BY spec"
        ).fetchall()
    finally:
        db.close()
    return dict(rows)


@settings(max_examples=60, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(OPERATIONS)
def test_caption_counts_equal_a_direct_count_after_any_writes(operations: list[tuple[str, int, int]]) -> None:
    with tempfile.TemporaryDirectory() as folder, CatalogStore.create(Path(folder) / "s", "test-model", DIM) as store:
        with store.writer_lock():
            store.write_batch(embedded=[embedded(item_id, 0) for item_id in IDS])
        for operation, index, variant in operations:
            apply(store, operation, IDS[index], variant)
        counts = direct_counts(store.path)
        own = vector_caption_spec("attributes", store.manifest.model_key)
        expected = CaptionSources(counts.get(own, 0), sum(counts.values()) - counts.get(own, 0))
        assert store.caption_sources() == expected
