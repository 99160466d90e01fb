"""The full-text index and hybrid ranking through the public surfaces: Python API, CLI and HTTP.

Rankings are checked against what the definitions say: lexical mode is BM25 over the FTS5 index, hybrid is
the reciprocal-rank fusion of the vector list and the lexical list, both computed here independently.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from catalens.indexer.pipeline import IndexOptions, index_catalog
from catalens.indexer.store import SCHEMA_VERSION, CatalogStore, EmbeddedItem, Enrichment, ItemFilter
from catalens.search.api import create_app
from catalens.search.cli import main
from catalens.search.engine import Fusion, QueryPart, SearchEngine, SearchOptions
from catalens.search.errors import QueryError
from catalens.search.settings import Settings
from tests.conftest import pattern_image
from tests.integration.test_engine import DIM, random_catalog

TITLES = ["Kestrel trail shoe", "Marigold cotton dress", "Kestrel rain jacket", "Plain mug", "Leather bag"]


def write_manifest(folder: Path, rows: list[dict[str, Any]], bad: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for row in rows:
        image = folder / f"{row['id']}.jpg"
        if row["id"] in bad:
            image.write_bytes(b"not an image")
        elif not image.exists():
            pattern_image(int(row["id"].split("-")[1])).save(image)
    path = folder / "catalog.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "image", "title", "category", "brand"])
        writer.writeheader()
        for row in rows:
            writer.writerow({"image": f"{row['id']}.jpg", "category": "shop", "brand": "", **row})
    return path


def lexical_ids(store: Path, tiny_model: Any, text: str) -> list[str]:
    with SearchEngine.open(store, encoder=tiny_model) as engine:
        return [h.id for h in engine.search_text(text, SearchOptions(k=20, mode="lexical")).hits]


def test_full_text_index_follows_every_add_update_and_delete(tmp_path: Path, tiny_spec: str, tiny_model: Any) -> None:
    store = tmp_path / "store"
    rows = [{"id": f"item-{i}", "title": title} for i, title in enumerate(TITLES)]
    rows.append({"id": "item-9", "title": "Ghost lantern"})
    options = IndexOptions(model=tiny_spec)
    index_catalog(write_manifest(tmp_path / "cat", rows, bad=("item-9",)), store, options)

    assert sorted(lexical_ids(store, tiny_model, "kestrel")) == ["item-0", "item-2"]
    assert lexical_ids(store, tiny_model, "dresses") == ["item-1"]  # stemmed: dresses -> dress
    assert lexical_ids(store, tiny_model, "ghost") == []  # failed items are not searchable, by words either

    # A metadata-only change (same image) reaches the full-text index; so do attributes.
    rows[3] = {"id": "item-3", "title": "Enamel camping mug", "brand": "Quendal"}
    index_catalog(write_manifest(tmp_path / "cat", rows, bad=("item-9",)), store, options)
    assert lexical_ids(store, tiny_model, "plain") == []
    assert lexical_ids(store, tiny_model, "enamel") == ["item-3"]
    assert lexical_ids(store, tiny_model, "quendal") == ["item-3"]

    # A row removed from the manifest leaves both indexes.
    del rows[0]
    index_catalog(write_manifest(tmp_path / "cat", rows, bad=("item-9",)), store, options)
    assert lexical_ids(store, tiny_model, "kestrel") == ["item-2"]


def test_ocr_and_caption_text_is_searchable_explained_and_dropped_with_its_image(
    vector_store: Callable[..., Path], tiny_model: Any
) -> None:
    path = vector_store(random_catalog(12))
    with CatalogStore.open(path) as store:
        key = store.get_item("sku-0005")
        assert key is not None
        with store.writer_lock():
            written = store.write_enrichments(
                [
                    (key.key, Enrichment("ocr", "rapidocr", key.content_hash, "ZORVIK XR-2040", {"words": []})),
                    (key.key, Enrichment("caption", "attributes", key.content_hash, "red striped mug", {})),
                ]
            )
        assert written == 2
    with SearchEngine.open(path, encoder=tiny_model) as engine:
        hits = engine.search_text("zorvik", SearchOptions(k=3, mode="lexical", explain=True)).hits
        assert [h.id for h in hits] == ["sku-0005"]
        explanation = hits[0].explanation
        assert explanation is not None and explanation.lexical_rank == 1 and explanation.vector_rank is None
        assert set(explanation.matched_fields) == {"ocr"}
        assert "\x02zorvik\x03" in explanation.matched_fields["ocr"].lower()
        # A model number is one phrase: "xr-2040" finds it, "2040 xr" as a phrase does not exist.
        assert [h.id for h in engine.search_text("XR-2040", SearchOptions(k=3, mode="lexical")).hits] == ["sku-0005"]
        assert [h.id for h in engine.search_text("striped", SearchOptions(k=3, mode="lexical")).hits] == ["sku-0005"]

    # The image changes: the OCR text and caption described the old pixels, so they leave the index.
    with CatalogStore.open(path) as store, store.writer_lock():
        item = store.get_item("sku-0005")
        assert item is not None
        record = _record_of(item)
        store.write_batch(embedded=[EmbeddedItem(record, "f" * 32, 96, 64, np.ones(DIM, dtype=np.float32) / DIM**0.5)])
        assert store.enrichments_for([item.key]) == {}
    assert lexical_ids(path, tiny_model, "zorvik") == []


def _record_of(item: Any) -> Any:
    from catalens.indexer.records import ItemRecord

    return ItemRecord(id=item.id, source=item.source, origin=item.origin, title=item.title, category=item.category)


def test_hybrid_is_the_reciprocal_rank_fusion_of_both_lists(vector_store: Callable[..., Path], tiny_model: Any) -> None:
    catalog = random_catalog(80)
    for i, (_, fields) in enumerate(catalog.values()):
        fields["title"] = "kestrel boot" if i % 9 == 0 else ("kestrel" if i % 13 == 0 else f"thing {i}")
    path = vector_store(catalog)
    with SearchEngine.open(path, encoder=tiny_model) as engine:
        query = "kestrel boot"
        deep = SearchOptions(k=80)
        vector = [h.id for h in engine.search_text(query, SearchOptions(k=80, mode="vector")).hits]
        lexical = [h.id for h in engine.search_text(query, SearchOptions(k=80, mode="lexical")).hits]
        assert set(lexical) == {f"sku-{i:04d}" for i in range(80) if i % 9 == 0 or i % 13 == 0}
        assert lexical.index("sku-0009") < lexical.index("sku-0013")  # both words beat one word

        fusion = Fusion(vector_weight=1.0, lexical_weight=2.0, rank_constant=10.0)
        expected = {
            item_id: 1.0 / (10 + vector.index(item_id) + 1)
            + (2.0 / (10 + lexical.index(item_id) + 1) if item_id in lexical else 0.0)
            for item_id in vector
        }
        hybrid = engine.search_text(query, SearchOptions(k=80, fusion=fusion, explain=True)).hits
        assert [h.id for h in hybrid] == sorted(expected, key=lambda i: (-expected[i], vector.index(i)))
        assert all(h.score == pytest.approx(expected[h.id]) for h in hybrid)
        top = hybrid[0].explanation
        assert top is not None and top.mode == "hybrid" and top.fused_score == pytest.approx(hybrid[0].score)
        assert top.lexical_rank is not None and "title" in top.matched_fields

        # With the lexical list weighted zero, hybrid ranks exactly as vector search does.
        silent = engine.search_text(query, SearchOptions(k=80, fusion=Fusion(lexical_weight=0.0))).hits
        assert [h.id for h in silent] == vector
        # The default (equal weights) puts an item matching both words above an unrelated one.
        default = [h.id for h in engine.search_text(query, deep).hits]
        assert default.index("sku-0000") < default.index(vector[-1])


def test_lexical_only_items_reach_hybrid_results_and_pages_filters_hold(
    vector_store: Callable[..., Path], tiny_model: Any
) -> None:
    path = vector_store(random_catalog(300))
    with SearchEngine.open(path, encoder=tiny_model) as engine:
        vector = [h.id for h in engine.search_text("quendal", SearchOptions(k=300, mode="vector")).hits]
        far = vector[250]  # beyond the vector list's fused depth (100)
        item = engine.store.get_item(far)
        assert item is not None and item.category == "common"
        with engine.store.writer_lock():
            engine.store.write_enrichments(
                [(item.key, Enrichment("ocr", "rapidocr", item.content_hash, "QUENDAL", {"words": []}))]
            )
        # Equal weights: lexical #1 ties with vector #1 (1/61 each); the tie keeps the vector order.
        equal = SearchOptions(k=10, fusion=Fusion(lexical_weight=1.0, rank_constant=60.0))
        assert [h.id for h in engine.search_text("quendal", equal).hits][:2] == [vector[0], far]
        # The default weighs words a little more, so the only item that has the word comes first.
        assert engine.search_text("quendal", SearchOptions(k=10)).hits[0].id == far

        options = SearchOptions(k=30, where=ItemFilter(categories=("common",), price_max=40))
        whole = engine.search_text("quendal", options).hits
        pages = [
            h
            for offset in (0, 10, 20)
            for h in engine.search_text("quendal", SearchOptions(k=10, offset=offset, where=options.where)).hits
        ]
        assert [h.id for h in pages] == [h.id for h in whole]
        assert all(h.category == "common" and (h.price or 0) <= 40 for h in whole)
        filtered_out = SearchOptions(k=10, where=ItemFilter(categories=("rare",)))
        assert far not in [h.id for h in engine.search_text("quendal", filtered_out).hits]
        collapsed = engine.search_text("quendal", SearchOptions(k=20, collapse_by_product=True)).hits
        assert len({h.product_id for h in collapsed}) == len(collapsed) == 20

        # An image-only query has no words: hybrid answers it from vectors alone.
        image_query = [QueryPart(image=pattern_image(1))]
        assert [h.id for h in engine.search(image_query, SearchOptions(k=5)).hits] == [
            h.id for h in engine.search(image_query, SearchOptions(k=5, mode="vector")).hits
        ]
        with pytest.raises(QueryError, match="needs words"):
            engine.search(image_query, SearchOptions(mode="lexical"))


@pytest.mark.parametrize(
    "text", ['"unbalanced', "NEAR(a b)", "title:kestrel", "*", "a AND OR NOT", "(((", "-kestrel", "ünïcödé crème"]
)
def test_any_text_is_a_valid_lexical_query(vector_store: Callable[..., Path], tiny_model: Any, text: str) -> None:
    catalog = random_catalog(10)
    catalog["sku-0003"][1]["title"] = "Kestrel creme"
    path = vector_store(catalog)
    with SearchEngine.open(path, encoder=tiny_model) as engine:
        engine.search_text(text, SearchOptions(k=5))  # hybrid never fails on the words
        if text in ("-kestrel", "ünïcödé crème"):
            assert "sku-0003" in [h.id for h in engine.search_text(text, SearchOptions(k=5, mode="lexical")).hits]


def test_a_version_1_store_is_upgraded_in_place(vector_store: Callable[..., Path], tiny_model: Any) -> None:
    catalog = random_catalog(6)
    catalog["sku-0002"][1]["title"] = "Kestrel boot"
    path = vector_store(catalog)
    db = sqlite3.connect(path / "catalog.sqlite3")
    db.executescript("DROP TABLE enrichments; DROP TABLE items_fts; PRAGMA user_version = 1;")
    db.close()
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["schema_version"] = 1
    (path / "manifest.json").write_text(json.dumps(manifest))

    assert lexical_ids(path, tiny_model, "kestrel") == ["sku-0002"]
    assert json.loads((path / "manifest.json").read_text())["schema_version"] == SCHEMA_VERSION


def test_http_modes_and_explanations(vector_store: Callable[..., Path], tiny_model: Any) -> None:
    catalog = random_catalog(30)
    catalog["sku-0007"][1]["title"] = "Kestrel <b>boot</b>"
    path = vector_store(catalog)
    with (
        SearchEngine.open(path, encoder=tiny_model) as engine,
        TestClient(create_app(Settings(store=path), engine)) as c,
    ):
        body = c.get("/v1/search", params={"q": "kestrel", "mode": "lexical", "explain": "true"}).json()
        assert [h["id"] for h in body["hits"]] == ["sku-0007"]
        why = body["hits"][0]["explanation"]
        assert why["mode"] == "lexical" and why["lexical_rank"] == 1
        assert why["matched_fields"]["title"] == "<mark>Kestrel</mark> &lt;b&gt;boot&lt;/b&gt;"  # escaped, marked

        posted = c.post("/v1/search", json={"query": "kestrel", "explain": True, "k": 5}).json()
        assert posted["hits"][0]["id"] == "sku-0007" and posted["hits"][0]["explanation"]["mode"] == "hybrid"
        plain = c.get("/v1/search", params={"q": "kestrel"}).json()["hits"][0]
        assert plain["explanation"] is None

        # exclude_ids: the item a "more like this" starts from never shows, and pages stay exact.
        like = {"parts": [{"item_id": "sku-0007"}, {"text": "boot"}], "exclude_ids": ["sku-0007"]}
        whole = [h["id"] for h in c.post("/v1/search", json={**like, "k": 20}).json()["hits"]]
        paged = [
            h["id"]
            for offset in (0, 10)
            for h in c.post("/v1/search", json={**like, "k": 10, "offset": offset}).json()["hits"]
        ]
        assert "sku-0007" not in whole and len(whole) == 20 and paged == whole

        bad_mode = c.get("/v1/search", params={"q": "kestrel", "mode": "fuzzy"})
        assert bad_mode.status_code == 422
        no_words = c.get("/v1/search", params={"q": "!!!", "mode": "lexical"})
        assert no_words.status_code == 422 and "needs words" in no_words.json()["detail"]


def test_cli_explains_and_compares_modes(
    vector_store: Callable[..., Path], tiny_model: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    catalog = random_catalog(30)
    catalog["sku-0007"][1]["title"] = "Kestrel boot"
    path = vector_store(catalog)
    assert main(["search", "kestrel", "--store", str(path), "--explain", "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "sku-0007" in out.splitlines()[1] and "lexical #1" in out and "title: [Kestrel] boot" in out

    assert main(["search", "kestrel", "--store", str(path), "--mode", "lexical", "--explain", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits[0]["explanation"]["matched_fields"] == {"title": "<mark>Kestrel</mark> boot"}

    assert main(["search", "kestrel", "--store", str(path), "--mode", "fuzzy"]) == 5
    assert "--mode" in capsys.readouterr().err

    labelled = tmp_path / "set.jsonl"
    labelled.write_text(json.dumps({"query": "kestrel", "relevant": ["sku-0007"]}) + "\n")
    assert main(["eval", str(labelled), "--store", str(path), "--mode", "vector,lexical,hybrid", "--json"]) == 0
    reports = json.loads(capsys.readouterr().out)["stores"]
    assert [r["mode"] for r in reports] == ["vector", "lexical", "hybrid"]
    assert reports[1]["retrieval"]["recall@1"] == 1.0
