"""Hybrid ranking and captions that restate the store's own vectors (the ``attributes`` captioner's labels).

Such captions are zero-shot labels of the very vectors the vector list ranks by, so hybrid ranking leaves them
out of its lexical list while they are a store's only captions; captions that read the pixels (BLIP) always
count, lexical mode always matches every caption, and ``Fusion.vector_captions`` (``--vector-captions``,
``CATALENS_VECTOR_CAPTIONS``) puts them back. Which captions a store holds is counted per recorded spec by
triggers (schema version 6), checked here against a direct count after every kind of write and after an
upgrade from version 5.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalens.indexer.records import ItemRecord
from catalens.indexer.store import (
    DB_NAME,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    CaptionSources,
    CatalogStore,
    EmbeddedItem,
    Enrichment,
    vector_caption_spec,
)
from catalens.search.cli import main
from catalens.search.engine import Fusion, SearchEngine, SearchOptions
from catalens.search.settings import Settings
from tests.integration.test_engine import DIM, random_catalog
from tests.unit.test_caption_counts import direct_counts

BLIP = "blip:Salesforce/blip-image-captioning-base"


def write_captions(path: Path, captions: dict[str, tuple[str, str]], error: str | None = None) -> None:
    """Store ``{item id: (spec, text)}`` as captions of the items' current images."""
    with CatalogStore.open(path) as store, store.writer_lock():
        results = []
        for item_id, (spec, text) in captions.items():
            item = store.get_item(item_id)
            assert item is not None
            results.append((item.key, Enrichment("caption", spec, item.content_hash, text, {}, error)))
        assert store.write_enrichments(results) == len(results)


def vector_spec(path: Path) -> str:
    with CatalogStore.open(path) as store:
        return vector_caption_spec("attributes", store.manifest.model_key)


def lexical_ranks(engine: SearchEngine, text: str, options: SearchOptions) -> dict[str, int | None]:
    hits = engine.search_text(text, options).hits
    return {h.id: h.explanation.lexical_rank for h in hits if h.explanation is not None}


@pytest.fixture
def captioned(vector_store: Callable[..., Path]) -> Path:
    """40 items; "kestrel" in one title and in the vector-made captions of two others."""
    catalog = random_catalog(40)
    catalog["sku-0011"][1]["title"] = "Kestrel boot"
    path = vector_store(catalog)
    spec = vector_spec(path)
    write_captions(path, {"sku-0005": (spec, "red kestrel mug"), "sku-0007": (spec, "kestrel shirt")})
    return path


def test_hybrid_leaves_out_captions_that_restate_the_vectors(captioned: Path, tiny_model: Any) -> None:
    deep = SearchOptions(k=40, explain=True)
    with SearchEngine.open(captioned, encoder=tiny_model) as engine:
        assert engine.store.caption_sources() == CaptionSources(from_vectors=2, other=0)
        lexical = engine.search_text("kestrel", SearchOptions(k=10, mode="lexical")).hits
        assert {h.id for h in lexical} == {"sku-0005", "sku-0007", "sku-0011"}  # lexical mode reads every caption

        ranks = lexical_ranks(engine, "kestrel", deep)
        assert len(ranks) == 40 and {i for i, r in ranks.items() if r is not None} == {"sku-0011"}
        top = engine.search_text("kestrel", SearchOptions(k=1, explain=True)).hits[0]
        assert top.id == "sku-0011" and top.explanation is not None and "caption" not in top.explanation.matched_fields
        # Without the words of those captions, hybrid ranks the rest exactly as vector search does.
        vector = [h.id for h in engine.search_text("kestrel", SearchOptions(k=40, mode="vector")).hits]
        fused = [h.id for h in engine.search_text("kestrel", SearchOptions(k=40)).hits]
        assert [i for i in fused if i != "sku-0011"] == [i for i in vector if i != "sku-0011"]

        # Asked for, they count again, and the explanation shows the caption matched.
        counted = replace(deep, fusion=Fusion(vector_captions=True))
        ranks = lexical_ranks(engine, "kestrel", counted)
        assert {i for i, r in ranks.items() if r is not None} == {"sku-0005", "sku-0007", "sku-0011"}
        mug = next(h for h in engine.search_text("kestrel", counted).hits if h.id == "sku-0005")
        assert mug.explanation is not None and "caption" in mug.explanation.matched_fields

    # One caption that read the pixels (BLIP) makes the store's captions evidence of their own: all count.
    write_captions(captioned, {"sku-0020": (BLIP, "a kestrel on a lamp")})
    with SearchEngine.open(captioned, encoder=tiny_model) as engine:
        assert engine.store.caption_sources() == CaptionSources(from_vectors=2, other=1)
        ranks = lexical_ranks(engine, "kestrel", deep)
        assert {i for i, r in ranks.items() if r is not None} == {"sku-0005", "sku-0007", "sku-0011", "sku-0020"}


def test_the_cli_and_the_service_settings_choose_it(
    captioned: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    open_service: Any,
    tiny_model: Any,
) -> None:
    def explained(*flags: str) -> dict[str, Any]:
        assert main(["search", "kestrel", "--store", str(captioned), "--explain", "-k", "40", "--json", *flags]) == 0
        return {h["id"]: h["explanation"] for h in json.loads(capsys.readouterr().out)["hits"]}

    assert explained()["sku-0005"]["lexical_rank"] is None
    counted = explained("--vector-captions")["sku-0005"]
    assert counted["lexical_rank"] is not None and "<mark>kestrel</mark>" in counted["matched_fields"]["caption"]

    assert main(["info", "--store", str(captioned), "--json"]) == 0
    captions = json.loads(capsys.readouterr().out)["captions"]
    assert captions == {"from_vectors": 2, "other": 0, "matched_by_hybrid": False}
    assert main(["info", "--store", str(captioned)]) == 0
    assert "hybrid ranking leaves them out" in capsys.readouterr().out

    monkeypatch.setenv("CATALENS_VECTOR_CAPTIONS", "true")
    assert Settings(store=captioned).fusion().vector_captions
    monkeypatch.delenv("CATALENS_VECTOR_CAPTIONS")
    assert not Settings(store=captioned).fusion().vector_captions
    client = open_service(captioned)
    hits = client.get("/v1/search", params={"q": "kestrel", "k": 40, "explain": "true"}).json()["hits"]
    assert {h["id"] for h in hits if h["explanation"]["lexical_rank"] is not None} == {"sku-0011"}
    captions = client.get("/v1/info").json()["captions"]
    assert captions == {"from_vectors": 2, "other": 0, "matched_by_hybrid": False}
    # The service's fusion comes from its settings (CATALENS_VECTOR_CAPTIONS, checked above) when it opens the
    # engine; here the test hands it one opened the same way.
    counting = open_service(
        captioned, SearchEngine.open(captioned, encoder=tiny_model, fusion=Fusion(vector_captions=True))
    )
    assert counting.get("/v1/info").json()["captions"]["matched_by_hybrid"] is True
    hits = counting.get("/v1/search", params={"q": "kestrel", "k": 40, "explain": "true"}).json()["hits"]
    assert {h["id"] for h in hits if h["explanation"]["lexical_rank"] is not None} == {
        "sku-0005",
        "sku-0007",
        "sku-0011",
    }


def counted_by_triggers(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path / DB_NAME)
    try:
        rows = db.execute("SELECT name, n FROM facets WHERE kind = 'caption_spec' AND n > 0").fetchall()
    finally:
        db.close()
    return {spec: n for spec, n in rows}


def test_caption_counts_follow_every_write_and_an_upgrade(vector_store: Callable[..., Path]) -> None:
    path = vector_store(random_catalog(8))
    spec = vector_spec(path)
    write_captions(path, {f"sku-000{i}": (spec, "blue mug") for i in range(5)})
    write_captions(path, {"sku-0005": (spec, "")}, error="the captioner failed")  # no words: not counted
    assert counted_by_triggers(path) == direct_counts(path) == {spec: 5}

    write_captions(path, {"sku-0000": (BLIP, "a blue mug"), "sku-0006": (BLIP, "a lamp")})  # replaced, added
    assert counted_by_triggers(path) == direct_counts(path) == {spec: 4, BLIP: 2}

    with CatalogStore.open(path) as store, store.writer_lock():
        # A new image drops the old one's caption; a deleted item takes its caption with it.
        item = store.get_item("sku-0001")
        assert item is not None
        record = ItemRecord(id=item.id, source=item.source, origin=item.origin)
        store.write_batch(embedded=[EmbeddedItem(record, "e" * 32, 96, 64, np.ones(DIM, dtype=np.float32) / DIM**0.5)])
        assert store.delete_items(["sku-0002", "sku-0006"]) == 2
        assert store.caption_sources() == CaptionSources(from_vectors=2, other=1)
    assert counted_by_triggers(path) == direct_counts(path) == {spec: 2, BLIP: 1}

    # A version 5 store (no triggers, no counts) is counted once when upgraded, then kept counted.
    db = sqlite3.connect(path / DB_NAME)
    db.executescript(
        "DROP TRIGGER enrichments_caption_insert; DROP TRIGGER enrichments_caption_update; "
        "DROP TRIGGER enrichments_caption_delete; DELETE FROM facets WHERE kind = 'caption_spec'; "
        "PRAGMA user_version = 5;"
    )
    db.close()
    manifest = path / MANIFEST_NAME
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "schema_version": 5}))
    with CatalogStore.open(path) as upgraded:
        assert upgraded.manifest.schema_version == SCHEMA_VERSION == 6
        assert upgraded.caption_sources() == CaptionSources(from_vectors=2, other=1)
    write_captions(path, {"sku-0007": (spec, "green lamp")})
    assert counted_by_triggers(path) == direct_counts(path) == {spec: 3, BLIP: 1}
