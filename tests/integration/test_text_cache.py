"""Repeated query texts and label prompts are embedded once per engine (an LRU keyed by model and text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalens.search.engine import SearchEngine
from catalens.search.engine.model_access import ModelGate
from catalens.search.engine.text_cache import TextVectorCache
from tests.integration.test_requests import RecordingEncoder, store_path  # noqa: F401  (a fixture)


def test_a_repeated_query_runs_the_text_tower_once(store_path: Path, tiny_model: Any) -> None:  # noqa: F811
    recording = RecordingEncoder(tiny_model)
    with SearchEngine.open(store_path, encoder=recording) as engine:
        first = engine.search_text("red striped shirt").hits
        again = engine.search_text("red striped shirt").hits
        assert [h.id for h in first] == [h.id for h in again]
        assert [kind for kind, _ in recording.calls].count("texts") == 1
        engine.classify_items(["sku-0001"], ["shirt", "mug"])
        passes = len(recording.calls)
        engine.classify_items(["sku-0002"], ["mug", "shirt"])  # the same prompts, in another order
        assert len(recording.calls) == passes


def test_cached_vectors_equal_computed_ones_and_batches_mix_hits_and_misses(tiny_model: Any) -> None:
    gate = ModelGate(tiny_model)
    alone = gate.encode_texts(["blue mug"])
    mixed = gate.encode_texts(["green cap", "blue mug", "green cap"])
    np.testing.assert_allclose(mixed[1], alone[0], atol=1e-7)
    np.testing.assert_allclose(mixed[0], mixed[2], atol=0)
    np.testing.assert_allclose(mixed, tiny_model.encode_texts(["green cap", "blue mug", "green cap"]), atol=1e-5)
    assert gate.text_cache.hits >= 1 and len(gate.text_cache) == 2


def test_the_cache_keeps_the_most_recently_used_and_never_mixes_models() -> None:
    cache = TextVectorCache(capacity=2)
    cache.put("model-a", "x", np.ones(3, dtype=np.float32))
    cache.put("model-a", "y", np.zeros(3, dtype=np.float32))
    assert cache.get("model-a", "x") is not None  # x is now the most recently used
    cache.put("model-a", "z", np.full(3, 2.0, dtype=np.float32))
    assert cache.get("model-a", "y") is None and cache.get("model-a", "x") is not None
    assert cache.get("model-b", "x") is None
    kept = cache.get("model-a", "x")
    assert kept is not None and not kept.flags.writeable  # a caller cannot change what later hits return
    off = TextVectorCache(capacity=0)
    off.put("model-a", "x", np.ones(3, dtype=np.float32))
    assert len(off) == 0
    with pytest.raises(ValueError):
        TextVectorCache(capacity=-1)


def test_the_cache_size_is_a_setting_and_zero_turns_it_off(store_path: Path, tiny_model: Any) -> None:  # noqa: F811
    recording = RecordingEncoder(tiny_model)
    engine = SearchEngine.open(store_path, encoder=recording, text_cache_size=0)
    with engine:
        engine.search_text("red striped shirt")
        engine.search_text("red striped shirt")
    assert [kind for kind, _ in recording.calls].count("texts") == 2
