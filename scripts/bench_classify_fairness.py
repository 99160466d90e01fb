"""Query latency while one large classification embeds its label prompts: chunked (now) vs one pass (before).

Random-weight ViT-B-32 (open_clip's architecture JSON as a local spec: same compute as the real model).
Prints one JSON line.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import open_clip

from catalens.indexer.pipeline import reindex
from catalens.indexer.records import ItemRecord
from catalens.indexer.store import CatalogStore, EmbeddedItem
from catalens.models import load_model
from catalens.search.engine import SearchEngine, SearchOptions

LABELS = int(sys.argv[1]) if len(sys.argv) > 1 else 250


def main() -> None:
    root = Path(tempfile.mkdtemp())
    spec_path = root / "vit-b-32.json"
    shutil.copy(Path(open_clip.__file__).parent / "model_configs" / "ViT-B-32.json", spec_path)
    model = load_model(str(spec_path))
    store = CatalogStore.create(root / "store", model.spec, model.dim, "Flat")
    rng = np.random.default_rng(0)
    items = []
    for i in range(200):
        v = rng.normal(size=model.dim).astype(np.float32)
        items.append(
            EmbeddedItem(
                ItemRecord(id=f"i{i}", source=f"/x/{i}.png", origin="b"), f"{i:032x}", 1, 1, v / np.linalg.norm(v)
            )
        )
    with store.writer_lock():
        store.write_batch(embedded=items)
    store.close()
    reindex(root / "store", "Flat")
    engine = SearchEngine.open(root / "store", encoder=model)
    options = SearchOptions(k=10, mode="vector")

    def query_ms() -> float:
        start = time.perf_counter()
        engine.search_text("a red leather shoe", options)
        return (time.perf_counter() - start) * 1000

    idle = [query_ms() for _ in range(10)]
    out = {"labels": LABELS, "prompts": LABELS * 4, "idle_query_ms_median": round(statistics.median(idle), 1)}
    for name, chunk in (("chunked", None), ("one_pass", 10**9)):
        gate = engine._model  # benchmark only: "one_pass" replays the old behaviour (one lock hold)
        saved = gate._text_chunk
        if chunk:
            gate._text_chunk = chunk
        labels = [f"{name} label {i}" for i in range(LABELS)]
        done = threading.Event()
        result: dict[str, float] = {}

        def tag(labels: list[str] = labels, result: dict[str, float] = result, done: threading.Event = done) -> None:
            start = time.perf_counter()
            engine.label_vectors(labels)
            result["classify_s"] = time.perf_counter() - start
            done.set()

        worker = threading.Thread(target=tag)
        worker.start()
        time.sleep(0.5)
        during = []
        while not done.is_set():
            during.append(query_ms())
        worker.join()
        gate._text_chunk = saved
        out[name] = {
            "classify_s": round(result["classify_s"], 1),
            "queries_answered_during": len(during),
            "query_ms_median": round(statistics.median(during), 1) if during else None,
            "query_ms_max": round(max(during), 1) if during else None,
        }
    engine.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
