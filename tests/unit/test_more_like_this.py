"""``more_like_this``: an item's own words as a MATCH expression that FTS5 always accepts, in any column set."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalens.indexer.lexical import FIELDS, MORE_LIKE_THIS_WORDS, more_like_this
from catalens.indexer.records import ItemRecord
from catalens.indexer.store import CatalogStore, EmbeddedItem, ItemFilter

TITLES = ["Kestrel trail boot", 'Quendal "XR-2040" mug', "crème brûlée dish", "NEAR AND OR NOT"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogStore]:
    root = tmp_path_factory.mktemp("mlt") / "store"
    with CatalogStore.create(root, "test-model", 4) as created:
        with created.writer_lock():
            created.write_batch(
                embedded=[
                    EmbeddedItem(
                        ItemRecord(id=f"item-{i}", source=f"/images/{i}.jpg", origin="shop", title=title),
                        f"hash-{i}",
                        40,
                        30,
                        np.eye(4, dtype=np.float32)[i % 4],
                    )
                    for i, title in enumerate(TITLES)
                ]
            )
        yield created


def test_the_first_words_title_first_without_stopwords_or_repeats() -> None:
    expression = more_like_this(["The Kestrel boot", "kestrel: a boot for the trail", ""])
    assert expression == '"kestrel" OR "boot" OR "trail"'
    assert more_like_this(["", " ... ", "the and of"]) is None
    many = more_like_this([" ".join(f"w{i}" for i in range(100))])
    assert many is not None and many.count(" OR ") == MORE_LIKE_THIS_WORDS - 1


def test_an_items_words_find_the_items_sharing_them(store: CatalogStore) -> None:
    expression = more_like_this(["Quendal mug", "a boot"])
    assert expression is not None
    found = {store.get_items([m.key])[m.key].id for m in store.lexical_search(expression, ItemFilter(), 10)}
    assert found == {"item-0", "item-1"}


@settings(max_examples=300, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.text(max_size=60), max_size=4),
    st.sampled_from([None, [f for f in FIELDS if f != "caption"], ["title"], list(FIELDS)]),
)
def test_any_text_gives_an_expression_fts5_accepts_in_any_columns(
    store: CatalogStore, texts: list[str], columns: list[str] | None
) -> None:
    expression = more_like_this(texts)
    if expression is None:
        return
    assert expression.count(" OR ") < MORE_LIKE_THIS_WORDS
    store.lexical_search(expression, ItemFilter(), 10, columns=columns)  # never a syntax error
    assert isinstance(store.lexical_snippets(expression, [1, 2], columns=columns), dict)
