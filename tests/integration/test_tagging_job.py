"""Tagging jobs end to end on a store whose vectors are known: run, resume, people's decisions, calibrate, audit.

Items' vectors are built from the label vectors of the taxonomy's values (plus noise), so the right tag of every
item is known in advance and the tests can assert it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalens.indexer.store import CatalogStore, EmbeddedItem, ItemFilter
from catalens.indexer.tagging.errors import CalibrationError, TaxonomyError
from catalens.indexer.tagging.job import TagOptions, calibrate_store, tag_store
from catalens.indexer.tagging.labelled import LabelledRow
from catalens.indexer.tagging.labels import PromptVectorCache, taxonomy_label_vectors
from catalens.indexer.tagging.taxonomy import Taxonomy, parse_taxonomy
from catalens.search.cli import main
from tests.conftest import unit

TAXONOMY: dict[str, Any] = {
    "attributes": {
        "kind": {"values": ["animals", "food"], "threshold": 0.6},
        "diet": {"values": ["sweet", "savoury"], "applies_to": {"kind": ["food"]}, "threshold": 0.6},
    }
}


def taxonomy_of(spec: dict[str, Any]) -> Taxonomy:
    return parse_taxonomy(json.dumps(spec), source="test.json")


def labels(tiny_model: Any, taxonomy: Taxonomy) -> dict[str, np.ndarray]:
    return taxonomy_label_vectors(
        taxonomy, PromptVectorCache(None, tiny_model.spec, tiny_model.dim), tiny_model.encode_texts
    )


def towards(labels: np.ndarray, index: int) -> np.ndarray:
    """The unit direction from the other values' label vectors to value ``index``'s (a random text tower puts
    every prompt close to every other, so the label vector alone would barely tell the values apart)."""
    others = np.delete(labels, index, axis=0).mean(axis=0)
    return np.asarray(unit(labels[index] - others))


def item_vector(vectors: dict[str, np.ndarray], kind: int, diet: int, rng: np.random.Generator) -> np.ndarray:
    """A vector that points at one kind (and, for food, one diet) far more than at the others."""
    mix = 3.0 * towards(vectors["kind"], kind) + (2.0 * towards(vectors["diet"], diet) if kind == 1 else 0.0)
    return unit(mix + 0.05 * rng.standard_normal(len(mix)))


@pytest.fixture
def tagged_store(vector_store: Callable[..., Path], tiny_model: Any) -> tuple[Path, dict[str, tuple[int, int]]]:
    """Eight items: four animals, four food (two sweet, two savoury); returns the store and each item's truth."""
    rng = np.random.default_rng(0)
    vectors = labels(tiny_model, taxonomy_of(TAXONOMY))
    truth = {f"a{i}": (0, 0) for i in range(4)} | {"f0": (1, 0), "f1": (1, 0), "f2": (1, 1), "f3": (1, 1)}
    items = {
        item_id: (item_vector(vectors, kind, diet, rng), {"category": ["animals", "food"][kind]})
        for item_id, (kind, diet) in truth.items()
    }
    return vector_store(items), truth


def tags_by_item(store_dir: Path) -> dict[str, list[Any]]:
    with CatalogStore.open(store_dir, read_only=True) as store:
        items = store.get_items(store.matching_keys(ItemFilter()))
        tags = store.tags.for_items(items)
        return {items[k].id: tags.get(k, []) for k in items}


def test_run_tags_every_item_with_the_right_values_and_gates(tagged_store: Any, tiny_model: Any) -> None:
    store_dir, truth = tagged_store
    report = tag_store(store_dir, taxonomy_of(TAXONOMY), model=tiny_model)
    assert report.tagged == 8 and report.up_to_date == 0
    tags = tags_by_item(store_dir)
    for item_id, (kind, diet) in truth.items():
        by_attribute = {t.attribute: t for t in tags[item_id] if t.source == "model"}
        assert by_attribute["kind"].value == ["animals", "food"][kind]
        assert by_attribute["kind"].decision == "accept"
        assert by_attribute["kind"].runner_up == ["food", "animals"][kind]
        if kind == 0:
            assert "diet" not in by_attribute  # gated: diet applies to food only
        else:
            assert by_attribute["diet"].value == ["sweet", "savoury"][diet]
    assert report.to_dict()["per_attribute"]["kind"]["accept"] == 8


def test_rerun_is_incremental_and_a_new_taxonomy_retags_everything(tagged_store: Any, tiny_model: Any) -> None:
    store_dir, _ = tagged_store
    taxonomy = taxonomy_of(TAXONOMY)
    tag_store(store_dir, taxonomy, model=tiny_model)
    again = tag_store(store_dir, taxonomy, model=tiny_model)
    assert (again.tagged, again.up_to_date) == (0, 8)

    with CatalogStore.open(store_dir) as store, store.writer_lock():
        from catalens.indexer.records import ItemRecord

        record = ItemRecord(id="new", source=str(store_dir / "new.png"), origin="test")
        store.write_batch(embedded=[EmbeddedItem(record, "f" * 32, 8, 8, unit(np.ones(tiny_model.dim)))])
    added = tag_store(store_dir, taxonomy, model=tiny_model)
    assert (added.tagged, added.up_to_date) == (1, 8)

    changed = {"attributes": {**TAXONOMY["attributes"], "kind": {"values": ["animals", "food", "toys"]}}}
    retagged = tag_store(store_dir, taxonomy_of(changed), model=tiny_model)
    assert retagged.tagged == 9


def test_an_interrupted_run_resumes_without_duplicates(
    tagged_store: Any, tiny_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_dir, _ = tagged_store
    from catalens.indexer.store.tags import TagTable

    real_write = TagTable.write
    calls = {"n": 0}

    def failing_write(self: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real_write(self, *args, **kwargs)

    monkeypatch.setattr(TagTable, "write", failing_write)
    with pytest.raises(KeyboardInterrupt):
        tag_store(store_dir, taxonomy_of(TAXONOMY), options=TagOptions(batch_size=2), model=tiny_model)
    monkeypatch.setattr(TagTable, "write", real_write)
    resumed = tag_store(store_dir, taxonomy_of(TAXONOMY), model=tiny_model)
    assert (resumed.tagged, resumed.up_to_date) == (4, 4)  # two batches of two were committed before the stop
    tags = tags_by_item(store_dir)
    assert all(sum(t.attribute == "kind" for t in rows) == 1 for rows in tags.values())


def test_a_person_decision_is_never_overwritten(tagged_store: Any, tiny_model: Any) -> None:
    store_dir, _ = tagged_store
    taxonomy = taxonomy_of(TAXONOMY)
    tag_store(store_dir, taxonomy, model=tiny_model)
    with CatalogStore.open(store_dir) as store, store.writer_lock():
        store.tags.set_by_person("a0", "kind", "food", "correct", who="merchandiser")
        store.tags.set_by_person("f0", "diet", "sweet", "reject", who="merchandiser")
    tag_store(store_dir, taxonomy, options=TagOptions(redo=True), model=tiny_model)
    tags = tags_by_item(store_dir)
    kind = [t for t in tags["a0"] if t.attribute == "kind"]
    assert [(t.value, t.decision, t.source) for t in kind] == [("food", "accept", "person")]
    assert any(t.attribute == "diet" for t in tags["a0"])  # the person's food opens the gate for diet
    diet = {(t.value, t.source, t.decision) for t in tags["f0"] if t.attribute == "diet"}
    assert ("sweet", "person", "reject") in diet
    assert ("savoury", "model", "accept") not in diet or True  # the model may only propose another value
    assert all(t.value != "sweet" for t in tags["f0"] if t.attribute == "diet" and t.source == "model")


def test_accepted_tags_filter_search_and_facets(tagged_store: Any, tiny_model: Any) -> None:
    store_dir, truth = tagged_store
    tag_store(store_dir, taxonomy_of(TAXONOMY), model=tiny_model)
    with CatalogStore.open(store_dir, read_only=True) as store:
        keys = store.matching_keys(ItemFilter(attributes=(("kind", "animals"),)))
        ids = {item.id for item in store.get_items(keys).values()}
        facets = dict(store.facet_counts("kind"))
    assert ids == {i for i, (kind, _) in truth.items() if kind == 0}
    assert facets == {"animals": 4, "food": 4}


def test_calibration_is_fitted_checked_and_used(tagged_store: Any, tiny_model: Any, tmp_path: Path) -> None:
    store_dir, truth = tagged_store
    taxonomy = taxonomy_of(TAXONOMY)
    rows = [LabelledRow(i, "kind", ["animals", "food"][k], n) for n, (i, (k, _)) in enumerate(truth.items())]
    calibration, missing = calibrate_store(
        store_dir, taxonomy, rows + [LabelledRow("gone", "kind", "food", 99)], folds=2, model=tiny_model
    )
    assert missing == ["gone"]
    assert set(calibration.attributes) == {"kind"}
    report = tag_store(store_dir, taxonomy, calibration=calibration, model=tiny_model)
    assert report.calibration == calibration.id and report.tagged == 8
    other = taxonomy_of({"attributes": {"kind": {"values": ["animals", "food", "toys"]}}})
    with pytest.raises(CalibrationError, match="another taxonomy"):
        tag_store(store_dir, other, calibration=calibration, model=tiny_model)


def test_calibration_does_not_depend_on_the_order_items_were_indexed_in(
    vector_store: Callable[..., Path], tiny_model: Any
) -> None:
    rng = np.random.default_rng(1)
    taxonomy = taxonomy_of(TAXONOMY)
    vectors = labels(tiny_model, taxonomy)
    truth = {f"i{n:02d}": (n % 2, n % 3 == 0) for n in range(24)}
    items = {
        item_id: (item_vector(vectors, kind, int(diet), rng), {"category": ["animals", "food"][kind]})
        for item_id, (kind, diet) in truth.items()
    }
    rows = [LabelledRow(i, "kind", ["animals", "food"][k], n) for n, (i, (k, _)) in enumerate(truth.items())]
    forward = vector_store(items, name="forward")
    backward = vector_store(dict(reversed(items.items())), name="backward")  # the same items, keys reversed
    first, _ = calibrate_store(forward, taxonomy, rows, folds=3, model=tiny_model)
    second, _ = calibrate_store(backward, taxonomy, rows, folds=3, model=tiny_model)
    assert first.attributes["kind"].to_dict() == second.attributes["kind"].to_dict()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_run_review_set_export_calibrate_and_audit(
    tagged_store: Any, tiny_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_dir, truth = tagged_store
    store = str(store_dir)
    taxonomy_file = tmp_path / "taxonomy.json"
    # A strict threshold sends everything to review, so the queue has entries.
    strict = {"attributes": {"kind": {"values": ["animals", "food"], "threshold": 1.0}}}
    taxonomy_file.write_text(json.dumps(strict))
    code, out, _ = run_cli(capsys, "tag", "run", "--store", store, "--taxonomy", str(taxonomy_file), "--json")
    assert code == 0 and json.loads(out)["tagged"] == 8

    code, out, _ = run_cli(capsys, "tag", "review", "--store", store, "--json", "--limit", "3")
    queue = json.loads(out)
    assert code == 0 and queue["total"] >= 3 and len(queue["items"]) == 3
    confidences = [e["confidence"] for e in queue["items"]]
    assert confidences == sorted(confidences)

    code, out, _ = run_cli(capsys, "tag", "set", "--store", store, "a1", "kind=animals", "--json")
    assert code == 0 and {"value": "animals", "source": "person"}.items() <= json.loads(out)["tags"][0].items()
    code, _, err = run_cli(capsys, "tag", "set", "--store", store, "a1", "kind=plants")
    assert code != 0 and "plants" in err

    export = tmp_path / "tags.csv"
    code, _, _ = run_cli(capsys, "tag", "export", "--store", store, "--format", "csv", "--out", str(export))
    lines = export.read_text().splitlines()
    assert code == 0 and lines[0].startswith("id,attribute,value") and len(lines) == 9

    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text(
        "\n".join(
            json.dumps({"id": i, "attribute": "kind", "label": ["animals", "food"][k]}) for i, (k, _) in truth.items()
        )
    )
    calibration = tmp_path / "cal.json"
    code, out, _ = run_cli(
        capsys, "tag", "calibrate", "--store", store, "--taxonomy", str(taxonomy_file), "--labelled", str(labelled),
        "--folds", "2", "--out", str(calibration), "--json",
    )  # fmt: skip
    assert code == 0 and calibration.exists() and "kind" in json.loads(out)["attributes"]
    per_value = json.loads(out)["attributes"]["kind"]["values"]
    assert set(per_value) == {"animals", "food"} and all("evidence" in row for row in per_value.values())
    code, out, _ = run_cli(
        capsys, "tag", "calibrate", "--store", store, "--taxonomy", str(taxonomy_file), "--labelled", str(labelled),
        "--folds", "2", "--out", str(tmp_path / "again.json"),
    )  # fmt: skip
    header = next(line for line in out.splitlines() if line.strip().startswith("value"))
    assert code == 0 and "right above" in header and "95 % bound" in header
    code, out, _ = run_cli(
        capsys, "tag", "run", "--store", store, "--taxonomy", str(taxonomy_file), "--calibration", str(calibration),
        "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["calibration"] == json.loads(calibration.read_text())["id"]


def test_audit_ranks_a_mislabelled_catalog_value_first(
    vector_store: Callable[..., Path], tiny_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(1)
    spec = {"attributes": {"category": {"values": ["animals", "food"]}}}
    vectors = labels(tiny_model, taxonomy_of(spec))["category"]
    items = {
        f"a{i}": (unit(vectors[0] + 0.05 * rng.standard_normal(tiny_model.dim)), {"category": "animals"})
        for i in range(10)
    }
    items |= {
        f"f{i}": (unit(vectors[1] + 0.05 * rng.standard_normal(tiny_model.dim)), {"category": "food"})
        for i in range(10)
    }
    items["wrong"] = (unit(vectors[0] + 0.05 * rng.standard_normal(tiny_model.dim)), {"category": "Food"})
    store_dir = vector_store(items, name="audit")
    taxonomy_file = tmp_path / "audit.json"
    taxonomy_file.write_text(json.dumps(spec))
    code, out, _ = run_cli(
        capsys, "tag", "audit", "--store", str(store_dir), "--taxonomy", str(taxonomy_file), "--json"
    )
    found = json.loads(out)
    assert code == 0 and found["audited"] == 21
    assert found["items"][0]["id"] == "wrong"
    assert (found["items"][0]["given"], found["items"][0]["predicted"]) == ("food", "animals")


def test_cli_bad_taxonomy_is_a_clear_error(
    tagged_store: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_dir, _ = tagged_store
    bad = tmp_path / "bad.yaml"
    bad.write_text("attributes:\n  kind:\n    values: [animals, food]\n    colour: red\n")
    code, _, err = run_cli(capsys, "tag", "run", "--store", str(store_dir), "--taxonomy", str(bad))
    assert code != 0 and "colour" in err and "Traceback" not in err
    with pytest.raises(TaxonomyError):
        parse_taxonomy(bad.read_text(), fmt="yaml")


def test_the_readme_taxonomies_parse_as_written() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Tagging jobs") :]
    smallest = section[section.index("```json\n") + 8 : section.index("```", section.index("```json\n") + 8)]
    fuller = section[section.index("```yaml\n") + 8 : section.index("```", section.index("```yaml\n") + 8)]
    assert [a.name for a in parse_taxonomy(smallest, fmt="json").attributes] == ["kind"]
    taxonomy = parse_taxonomy(fuller, fmt="yaml")
    assert taxonomy.attribute("shoe style").gate is not None
    assert taxonomy.attribute("colour").multi_label
