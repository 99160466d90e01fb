"""`catalens eval` on a store whose rankings are known in advance."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalens.search.cli import EXIT_INPUT, EXIT_OK, main
from catalens.search.engine import DEFAULT_TEMPLATES, SearchEngine
from catalens.search.errors import QueryError
from catalens.search.evaluation import evaluate, load_eval_set
from tests.conftest import unit


def _store_with_known_ranks(vector_store: Any, tiny_model: Any) -> Path:
    """Item i{n} has cosine 0.95 - 0.05 n with the query "red apple"; two shoe/bag items for zero-shot."""
    query = tiny_model.encode_texts(["red apple"])[0]
    other = np.random.default_rng(0).normal(size=query.shape).astype(np.float32)
    other -= (other @ query) * query
    other /= np.linalg.norm(other)
    items: dict[str, Any] = {}
    for n in range(12):
        cosine = 0.95 - 0.05 * n
        category = "fruit" if n in (3, 4) else "other"
        items[f"i{n}"] = (cosine * query + math.sqrt(1 - cosine**2) * other, {"category": category})
    labels = tiny_model.encode_texts([t.format(label) for label in ("shoe", "bag") for t in DEFAULT_TEMPLATES])
    shoe, bag = (unit(v.mean(axis=0)) for v in labels.reshape(2, len(DEFAULT_TEMPLATES), -1))
    items["lab-shoe"] = (shoe, {"category": "label"})
    items["lab-bag"] = (bag, {"category": "label"})
    items["lab-bag-looks-like-shoe"] = (shoe, {"category": "label"})
    return vector_store(items)


def _write_set(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


ROWS = [
    {"query": "red apple", "relevant": ["i2"]},  # rank 3
    {"query": "red apple", "relevant_category": "fruit"},  # i3, i4: ranks 4 and 5
    {"query": "red apple", "relevant": ["i11"]},  # rank 12
    {"id": "lab-shoe", "label": "shoe"},
    {"id": "lab-bag", "label": "bag"},
    {"id": "lab-bag-looks-like-shoe", "label": "bag"},
]


def test_metrics_match_hand_computed_values(tmp_path: Path, vector_store: Any, tiny_model: Any) -> None:
    store = _store_with_known_ranks(vector_store, tiny_model)
    cases = load_eval_set(_write_set(tmp_path / "set.jsonl", ROWS))
    with SearchEngine.open(store, encoder=tiny_model) as engine:
        report = evaluate(engine, cases)
    assert report.queries == 3 and report.classified == 3 and report.skipped == []
    assert report.retrieval["recall@1"] == 0.0
    assert report.retrieval["recall@5"] == pytest.approx(2 / 3, abs=1e-6)
    assert report.retrieval["recall@10"] == pytest.approx(2 / 3, abs=1e-6)
    assert report.retrieval["mrr"] == pytest.approx((1 / 3 + 1 / 4 + 1 / 12) / 3, abs=1e-6)
    fruit = (1 / math.log2(5) + 1 / math.log2(6)) / (1 + 1 / math.log2(3))
    assert report.retrieval["ndcg@10"] == pytest.approx((1 / math.log2(4) + fruit + 0) / 3, abs=1e-6)
    assert report.classification == {"top1": pytest.approx(2 / 3, abs=1e-6), "top5": 1.0}
    assert (report.per_label["shoe"].precision, report.per_label["shoe"].recall) == (0.5, 1.0)
    assert (report.per_label["bag"].precision, report.per_label["bag"].recall) == (1.0, 0.5)


def test_unusable_rows_are_skipped_with_reasons(tmp_path: Path, vector_store: Any, tiny_model: Any) -> None:
    store = _store_with_known_ranks(vector_store, tiny_model)
    (tmp_path / "broken.jpg").write_text("not an image")
    rows = [
        {"query": "red apple", "relevant": ["i0"]},
        {"query_image": "broken.jpg", "relevant": ["i0"]},
        {"query": "x", "relevant_category": "no-such-category"},
        {"id": "missing-item", "label": "shoe"},
        {"id": "lab-shoe", "label": "shoe"},
    ]
    with SearchEngine.open(store, encoder=tiny_model) as engine:
        report = evaluate(engine, load_eval_set(_write_set(tmp_path / "set.jsonl", rows)), labels=["shoe", "bag"])
    assert (report.queries, report.classified) == (1, 1)
    assert len(report.skipped) == 3 and any("contains text" in reason for reason in report.skipped)
    assert report.retrieval["recall@1"] == 1.0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("", "no rows"), ("{bad\n", "invalid JSON"), ('{"query": "x"}\n', "relevant"), ('{"foo": 1}\n', "expected")],
)
def test_bad_sets_are_refused(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(content)
    with pytest.raises(QueryError, match=fragment):
        load_eval_set(path)


def test_eval_cli_json_and_compare(
    tmp_path: Path, vector_store: Any, tiny_model: Any, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    store = str(_store_with_known_ranks(vector_store, tiny_model))
    eval_set = str(_write_set(tmp_path / "set.jsonl", ROWS))
    assert main(["eval", eval_set, "--store", store, "--json"]) == EXIT_OK
    single = json.loads(capsys.readouterr().out)
    assert single["retrieval"]["queries"] == 3 and single["classification"]["per_label"]["shoe"]["support"] == 1
    assert main(["eval", eval_set, "--store", store, "--compare", store, "--json"]) == EXIT_OK
    both = json.loads(capsys.readouterr().out)["stores"]
    assert both[0]["retrieval"] == both[1]["retrieval"]
    assert main(["eval", eval_set, "--store", store, "--compare", store]) == EXIT_OK
    table = capsys.readouterr().out
    assert "retrieval recall@5" in table and "+0.000" in table and "Per label" in table
    assert main(["eval", str(tmp_path / "missing.jsonl"), "--store", store]) == EXIT_INPUT
    assert main(["eval", eval_set, "--store", store, "--labels", "shoe"]) == EXIT_INPUT  # "bag" is not listed
