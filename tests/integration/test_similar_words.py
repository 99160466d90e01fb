"""``similar`` by the item's picture and its own words ("more like this"), through the Python API, HTTP and CLI.

In hybrid mode (the default) the vector neighbours are fused with a lexical list whose query is the item's own
words, so items sharing a rare word of its title come first; vector mode is the stored embedding alone (checked
against the cosine ranking computed here); lexical mode is the words alone. Matches on words found in more
than half the catalog carry no information and never enter the list.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from catalens.indexer.store import CatalogStore, Enrichment, ItemFilter, vector_caption_spec
from catalens.search.cli import main
from catalens.search.engine import SearchEngine, SearchOptions
from catalens.search.errors import QueryError
from tests.integration.test_engine import random_catalog

KESTRELS = ("sku-0003", "sku-0017", "sku-0029")


@pytest.fixture
def worded(vector_store: Callable[..., Path]) -> Path:
    """40 items, every one "blue" or "red" (half the catalog each); three titled "Kestrel trail boot"; one
    whose only words are its colour; sku-0008 with "kestrel" only in a caption made from its vector."""
    catalog = random_catalog(40)
    for i, (_, fields) in enumerate(catalog.values()):
        fields["title"] = f"thing{i} widget{i}"
    for item_id in KESTRELS:
        catalog[item_id][1]["title"] = "Kestrel trail boot"
    catalog["sku-0005"][1]["title"] = None
    path = vector_store(catalog)
    with CatalogStore.open(path) as store, store.writer_lock():
        item = store.get_item("sku-0008")
        assert item is not None
        spec = vector_caption_spec("attributes", store.manifest.model_key)
        store.write_enrichments([(item.key, Enrichment("caption", spec, item.content_hash, "kestrel boot", {}))])
    return path


def by_cosine(engine: SearchEngine, item_id: str) -> list[str]:
    """Every other item, most similar stored vector first (computed here, not by the engine)."""
    keys = engine.store.matching_keys(ItemFilter())
    items = engine.store.get_items(keys.tolist())
    me = engine.item_vector(item_id)
    scores = {it.id: float(engine.item_vector(it.id) @ me) for it in items.values() if it.id != item_id}
    return sorted(scores, key=lambda i: -scores[i])


def test_similar_fuses_the_picture_with_the_items_own_words(worded: Path, tiny_model: Any) -> None:
    with SearchEngine.open(worded, encoder=tiny_model) as engine:
        vector = [h.id for h in engine.similar("sku-0003", SearchOptions(k=39, mode="vector")).hits]
        assert vector == by_cosine(engine, "sku-0003")

        hybrid = engine.similar("sku-0003", SearchOptions(k=39, explain=True)).hits
        assert {h.id for h in hybrid[:2]} == {"sku-0017", "sku-0029"}  # the shared title outranks any picture
        first = hybrid[0].explanation
        assert first is not None and first.mode == "hybrid" and first.lexical_rank is not None
        assert "title" in first.matched_fields and "caption" not in first.matched_fields
        # Only informative matches are in the lexical list: sharing "red" or "blue" (half the catalog each)
        # ranks nobody, so the rest keep the vector order.
        worded_hits = {h.id for h in hybrid if h.explanation is not None and h.explanation.lexical_rank is not None}
        assert worded_hits == {"sku-0017", "sku-0029"}
        assert [h.id for h in hybrid if h.id not in worded_hits] == [i for i in vector if i not in worded_hits]

        lexical = [h.id for h in engine.similar("sku-0003", SearchOptions(k=10, mode="lexical")).hits]
        assert set(lexical) == {"sku-0017", "sku-0029", "sku-0008"}  # every caption; no match on a colour alone

        # An item whose words match nothing informative is answered by its picture, exactly.
        colour_only = engine.similar("sku-0005", SearchOptions(k=39)).hits
        assert [h.id for h in colour_only] == by_cosine(engine, "sku-0005")
        assert [h.id for h in engine.similar("sku-0005", SearchOptions(k=5, mode="vector")).hits] == by_cosine(
            engine, "sku-0005"
        )[:5]

        # Filters, exclusions and pages hold as in any search.
        paged = [h.id for offset in (0, 5) for h in engine.similar("sku-0003", SearchOptions(k=5, offset=offset)).hits]
        assert paged == [h.id for h in hybrid[:10]]
        assert "sku-0017" not in {
            h.id for h in engine.similar("sku-0003", SearchOptions(exclude_ids=("sku-0017",))).hits
        }


@pytest.fixture
def wordless(vector_store: Callable[..., Path]) -> Path:
    """Six items with no title, description or attributes: nothing in the full-text index."""
    catalog = random_catalog(6)
    for _, fields in catalog.values():
        fields["attributes"] = {}
    return vector_store(catalog)


def test_lexical_similar_for_an_item_without_words_is_refused(wordless: Path, tiny_model: Any) -> None:
    with SearchEngine.open(wordless, encoder=tiny_model) as engine, pytest.raises(QueryError, match="no words"):
        engine.similar("sku-0001", SearchOptions(mode="lexical"))
    with SearchEngine.open(wordless, encoder=tiny_model) as engine:
        hybrid = [h.id for h in engine.similar("sku-0001", SearchOptions(k=5)).hits]
        assert hybrid == by_cosine(engine, "sku-0001")


def test_http_and_cli_similar_take_a_mode(
    worded: Path, open_service: Any, capsys: pytest.CaptureFixture[str], tiny_model: Any
) -> None:
    client = open_service(worded)
    default = client.get("/v1/items/sku-0003/similar", params={"k": 2}).json()["hits"]
    assert {h["id"] for h in default} == {"sku-0017", "sku-0029"}
    with SearchEngine.open(worded, encoder=tiny_model) as engine:
        cosine = by_cosine(engine, "sku-0003")
    vector = client.get("/v1/items/sku-0003/similar", params={"k": 5, "mode": "vector"}).json()["hits"]
    assert [h["id"] for h in vector] == cosine[:5]
    assert client.get("/v1/items/sku-0003/similar", params={"mode": "fuzzy"}).status_code == 422

    assert main(["similar", "sku-0003", "--store", str(worded), "-k", "2", "--json"]) == 0
    assert {h["id"] for h in json.loads(capsys.readouterr().out)["hits"]} == {"sku-0017", "sku-0029"}
    assert main(["similar", "sku-0003", "--store", str(worded), "-k", "5", "--mode", "vector", "--json"]) == 0
    assert [h["id"] for h in json.loads(capsys.readouterr().out)["hits"]] == cosine[:5]


def test_an_item_without_words_gets_422_in_lexical_mode_over_http(wordless: Path, open_service: Any) -> None:
    client = open_service(wordless)
    refused = client.get("/v1/items/sku-0001/similar", params={"mode": "lexical"})
    assert refused.status_code == 422 and "no words" in refused.json()["detail"]
    answered = client.get("/v1/items/sku-0001/similar", params={"k": 5})
    assert answered.status_code == 200 and len(answered.json()["hits"]) == 5
