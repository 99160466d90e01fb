"""The indexing pipeline through its Python API: incremental runs, bad files, index rebuilds, store rules."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from catalens.indexer.errors import (
    IndexBuildError,
    StoreLockedError,
    StoreModelMismatchError,
    StoreVersionError,
)
from catalens.indexer.fetch import FetchOptions
from catalens.indexer.pipeline import IndexOptions, IndexReport, index_catalog, reindex
from catalens.indexer.store import CatalogStore
from catalens.indexer.vectors.faiss_backend import FaissIndex
from catalens.search.engine import SearchEngine, SearchOptions
from tests.conftest import pattern_image


def _index(source: Path, store: Path, spec: str, **options: Any) -> IndexReport:
    return index_catalog(source, store, IndexOptions(model=spec, batch_size=4, workers=2, **options))


def _top_hits(store_dir: Path, model: Any, images: list[Any], k: int = 3) -> list[list[str]]:
    with CatalogStore.open(store_dir) as store:
        path = store.index_path()
        assert path is not None and store.manifest.index is not None
        index = FaissIndex.load(path, store.manifest.index.factory)
        try:  # probe every IVF list: these tests check contents, not approximate recall
            ivf = faiss.extract_index_ivf(index.native)
            ivf.nprobe = ivf.nlist
        except RuntimeError:
            pass
        _, keys, _ = index.search(model.encode_images(images), k)
        items = store.get_items(int(key) for key in keys.ravel() if key >= 0)
        return [[items[int(key)].id for key in row if key >= 0] for row in keys]


def test_folder_with_bad_files_indexes_the_rest(
    tmp_path: Path, tiny_spec: str, tiny_model: Any, make_catalog: Callable[..., Path], bad_files: Any
) -> None:
    catalog = make_catalog(10)
    expected = bad_files(catalog / "broken")
    report = _index(catalog, tmp_path / "store", tiny_spec)
    assert (report.new, report.updated, report.unchanged, report.indexed_total) == (10, 0, 0, 10)
    reasons = {f.id: f.reason for f in report.failed}
    assert set(reasons) == {f"broken/{name}" for name in expected}
    for name, fragment in expected.items():
        assert fragment in reasons[f"broken/{name}"]
    assert report.generation == 1
    with CatalogStore.open(tmp_path / "store") as store:
        assert store.status_counts() == {"indexed": 10, "failed": 4}
        assert store.vector_count() == 10
        item = store.get_item("item-003.jpg")
        assert item is not None and (item.width, item.height) == (96, 64) and item.content_hash
    hits = _top_hits(tmp_path / "store", tiny_model, [pattern_image(3)])
    assert hits[0][0] == "item-003.jpg"


def test_incremental_runs(tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path]) -> None:
    catalog = make_catalog(6)
    store = tmp_path / "store"
    _index(catalog, store, tiny_spec)

    again = _index(catalog, store, tiny_spec)
    assert (again.new, again.updated, again.unchanged, again.embedded, again.generation) == (0, 0, 6, 0, 1)

    pattern_image(42).save(catalog / "item-001.jpg")  # changed content
    (catalog / "item-002.jpg").unlink()  # removed
    pattern_image(43).save(catalog / "new.jpg")  # new
    shutil.copy(catalog / "item-003.jpg", catalog / "copy-of-3.jpg")  # new id, same bytes
    changed = _index(catalog, store, tiny_spec)
    assert (changed.new, changed.updated, changed.removed, changed.unchanged) == (2, 1, 1, 4)
    assert changed.generation == 2
    with CatalogStore.open(store) as opened:
        assert opened.get_item("item-002.jpg") is None
        assert opened.vector_count() == opened.status_counts()["indexed"] == 7
        assert opened.manifest.index is not None and opened.manifest.index.count == 7


def test_touched_file_with_same_bytes_is_not_reembedded(
    tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path]
) -> None:
    catalog = make_catalog(3)
    store = tmp_path / "store"
    _index(catalog, store, tiny_spec)
    target = catalog / "item-000.jpg"
    target.write_bytes(target.read_bytes())  # new mtime, same content
    report = _index(catalog, store, tiny_spec)
    assert (report.embedded, report.unchanged, report.generation) == (0, 3, 1)


def test_manifest_metadata_change_updates_without_reembedding(
    tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path]
) -> None:
    make_catalog(3)
    manifest = tmp_path / "catalog.jsonl"

    def write(title: str) -> None:
        rows = [
            {
                "id": f"sku-{i}",
                "image": f"catalog/item-{i:03d}.jpg",
                "title": title if i == 1 else f"T{i}",
                "category": "shoes",
                "price": 10 + i,
                "color": "red",
            }
            for i in range(3)
        ]
        manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    write("Old title")
    store = tmp_path / "store"
    first = _index(manifest, store, tiny_spec)
    assert first.new == 3
    write("New title")
    second = _index(manifest, store, tiny_spec)
    assert (second.metadata_updated, second.embedded, second.unchanged, second.generation) == (1, 0, 2, 1)
    with CatalogStore.open(store) as opened:
        item = opened.get_item("sku-1")
        assert item is not None and item.title == "New title" and item.price == 11.0
        assert item.attributes == {"color": "red"} and item.category == "shoes"


def test_url_items(tmp_path: Path, tiny_spec: str, http_server: Callable[..., str]) -> None:
    import io

    buffer = io.BytesIO()
    pattern_image(5).save(buffer, format="PNG")
    base = http_server({"/ok.png": (200, buffer.getvalue())})
    manifest = tmp_path / "catalog.csv"
    manifest.write_text(
        "id,image,title\n"
        f"ok,{base}/ok.png,Good\n"
        f"missing,{base}/missing.png,Gone\n"
        "offline,http://images.example.com/x.jpg,Blocked host\n"
    )
    # The test server is on loopback, which the URL guard refuses unless the run allows it.
    report = _index(manifest, tmp_path / "store", tiny_spec, fetch=FetchOptions(allow=("127.0.0.1",)))
    reasons = {f.id: f.reason for f in report.failed}
    assert report.new == 1 and set(reasons) == {"missing", "offline"}
    assert "HTTP 404" in reasons["missing"] and "cannot connect" in reasons["offline"]


def test_reindex_from_sqlite_gives_same_results(
    tmp_path: Path, tiny_spec: str, tiny_model: Any, make_catalog: Callable[..., Path]
) -> None:
    store = tmp_path / "store"
    _index(make_catalog(12), store, tiny_spec)
    queries = [pattern_image(i) for i in (0, 5, 11)]
    before = _top_hits(store, tiny_model, queries, k=5)
    for path in (store / "index").glob("*.faiss"):
        path.unlink()
    state = reindex(store)
    assert state.generation == 2 and state.count == 12
    assert _top_hits(store, tiny_model, queries, k=5) == before


@pytest.mark.parametrize("factory", ["HNSW16", "IVF4,Flat", "IVF2,PQ4x4"])
def test_index_factories(tmp_path: Path, tiny_spec: str, tiny_model: Any, factory: str, make_catalog: Any) -> None:
    store = tmp_path / "store"
    report = _index(make_catalog(40), store, tiny_spec, index_factory=factory)
    assert report.index_factory == factory
    with CatalogStore.open(store) as opened:
        state = opened.manifest.index
        assert state is not None and state.factory == factory and state.tuning is not None
    # Through the engine, as users search: a lossy index (PQ codes) is re-scored with the exact vectors to the
    # depth the build tuned, so the query's own picture comes first with its exact cosine. The raw PQ ranking
    # alone is not reliable on 40 points (16 centroids per sub-quantiser, trained on 40 vectors).
    assert (state.tuning["params"].get("rerank", 0) > 0) == ("PQ" in factory)
    with SearchEngine.open(store, encoder=tiny_model) as engine:
        hits = engine.search_vector(tiny_model.encode_images([pattern_image(7)])[0], SearchOptions(k=5)).hits
    assert hits[0].id == "item-007.jpg" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_invalid_factory_and_untrainable_index(tmp_path: Path, tiny_spec: str, make_catalog: Any) -> None:
    catalog = make_catalog(3)
    with pytest.raises(IndexBuildError, match="does not understand"):
        _index(catalog, tmp_path / "a", tiny_spec, index_factory="NotAnIndex99")
    with pytest.raises(IndexBuildError, match="training"):
        _index(catalog, tmp_path / "b", tiny_spec, index_factory="IVF64,Flat")


def test_second_writer_is_refused(tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path]) -> None:
    catalog = make_catalog(2)
    store = tmp_path / "store"
    _index(catalog, store, tiny_spec)
    with CatalogStore.open(store) as opened, opened.writer_lock():
        with pytest.raises(StoreLockedError, match=r"another process \(pid \d+"):
            _index(catalog, store, tiny_spec)
    assert _index(catalog, store, tiny_spec).unchanged == 2


def test_store_with_another_model_is_refused_unless_rebuilt(
    tmp_path: Path, tiny_spec: str, other_tiny_spec: str, make_catalog: Callable[..., Path]
) -> None:
    catalog = make_catalog(3)
    store = tmp_path / "store"
    _index(catalog, store, tiny_spec)
    with pytest.raises(StoreModelMismatchError, match="--rebuild"):
        _index(catalog, store, other_tiny_spec)
    rebuilt = _index(catalog, store, other_tiny_spec, rebuild=True)
    assert (rebuilt.updated, rebuilt.model) == (3, other_tiny_spec)
    with CatalogStore.open(store) as opened:
        assert (opened.manifest.model, opened.manifest.dim, opened.vector_count()) == (other_tiny_spec, 24, 3)
    # Without --model, a run keeps the store's model.
    assert index_catalog(catalog, store, IndexOptions(batch_size=4)).unchanged == 3


def test_newer_schema_version_is_refused(tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path]) -> None:
    store = tmp_path / "store"
    _index(make_catalog(1), store, tiny_spec)
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (store / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreVersionError, match="newer catalens"):
        CatalogStore.open(store)


def test_vectors_round_trip_exactly(tmp_path: Path, tiny_spec: str, tiny_model: Any, make_catalog: Any) -> None:
    catalog = make_catalog(5)
    store = tmp_path / "store"
    _index(catalog, store, tiny_spec)
    with CatalogStore.open(store) as opened:
        keys, vectors = next(opened.iter_vectors())
        ids = [opened.get_items([int(k)])[int(k)].id for k in keys]
    from catalens.indexer.images import decode_image

    expected = tiny_model.encode_images(
        [decode_image((catalog / i).read_bytes(), draft_size=tiny_model.image_size).image for i in ids]
    )
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_unknown_index_backend_is_refused_with_the_choices(tmp_path: Path, tiny_spec: str, make_catalog: Any) -> None:
    with pytest.raises(IndexBuildError, match="choose one of: faiss") as caught:
        _index(make_catalog(2), tmp_path / "store", tiny_spec, index_factory="annoy:trees=10")
    assert isinstance(caught.value, ValueError)
    assert not (tmp_path / "store" / "manifest.json").exists()


def test_a_one_thread_search_leaves_the_model_its_threads() -> None:
    """Index tuning and the engine search on one FAISS thread; the OpenMP setting they share with torch must come
    back, or a caption pass after publishing (``catalens index --caption``) runs its model on one core."""
    import torch

    torch.set_num_threads(2)
    faiss.omp_set_num_threads(2)  # whether torch sees FAISS's setting depends on which loaded OpenMP first
    index = FaissIndex.create("Flat", 8)
    vectors = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    index.add(np.arange(20, dtype=np.int64), vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    index.search(vectors[:1], 5, threads=1)
    index.range_search(vectors[:2], 0.9, threads=1)
    assert faiss.omp_get_max_threads() == 2 and torch.get_num_threads() == 2
