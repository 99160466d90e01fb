"""Tag export: CSV with spreadsheet formulas defused, JSONL one object per row, and Label Studio's task import
format with predictions (one task per item, ``choices`` results per attribute, model version and scores) plus the
labelling configuration that matches it."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from catalens.indexer.tagging.errors import TaggingError
from catalens.indexer.tagging.export import CSV_COLUMNS, ExportRow, export_tags, label_studio_config
from catalens.indexer.tagging.taxonomy import parse_taxonomy

TAXONOMY = "f" * 12 + "0123456789abcdef"


@dataclass(frozen=True)
class Row:
    """The store's TagRow shape (Tag's fields + item_id, model, taxonomy, calibration)."""

    attribute: str
    value: str
    confidence: float | None
    decision: str
    source: str
    runner_up: str | None
    runner_up_confidence: float | None
    run_id: int | None
    decided_by: str | None
    updated_at: str
    item_id: str
    model: str | None
    taxonomy: str | None
    calibration: str | None


def _row(
    item_id: str, attribute: str, value: str, confidence: float | None, decision: str = "accept", **kw: Any
) -> Row:
    fields = {
        "source": "model",
        "runner_up": None,
        "runner_up_confidence": None,
        "run_id": 1,
        "decided_by": None,
        "updated_at": "2025-01-02T03:04:05Z",
        "model": "catalens-mini",
        "taxonomy": TAXONOMY,
        "calibration": None,
    }
    fields.update(kw)
    return Row(attribute, value, confidence, decision, item_id=item_id, **fields)  # type: ignore[arg-type]


ROWS = [
    _row("mug-1", "category", "kitchen", 0.91234567, runner_up="drinks", runner_up_confidence=0.05),
    _row("mug-1", "colour", "red", 0.7, "review"),
    _row("mug-1", "colour", "white", 0.5, "review"),
    _row(
        "shoe/2", "category", "shoes", None, source="person", run_id=None, decided_by="cli", model=None, taxonomy=None
    ),
    _row("shoe/2", "shoe style", "boot", 0.4, "reject", calibration="cal-1"),
    _row("shoe/2", "shoe style", "sneaker", None, "reject", source="person", run_id=None, model=None, taxonomy=None),
    _row("only-rejected", "category", "toys", None, "reject", source="person", run_id=None, model=None, taxonomy=None),
]


def _export(rows: Sequence[ExportRow], fmt: str, **kw: Any) -> tuple[int, str]:
    out = io.StringIO(newline="")
    count = export_tags(rows, out, fmt, **kw)  # type: ignore[arg-type]
    return count, out.getvalue()


def test_csv_has_the_documented_columns_and_every_row() -> None:
    count, text = _export(ROWS, "csv")
    table = list(csv.reader(io.StringIO(text)))
    assert count == len(ROWS) and len(table) == len(ROWS) + 1
    assert (
        tuple(table[0])
        == CSV_COLUMNS
        == (
            "id",
            "attribute",
            "value",
            "confidence",
            "decision",
            "source",
            "runner_up",
            "runner_up_confidence",
            "model",
            "taxonomy",
            "calibration",
            "updated_at",
        )
    )
    first = dict(zip(CSV_COLUMNS, table[1], strict=True))
    assert first == {
        "id": "mug-1",
        "attribute": "category",
        "value": "kitchen",
        "confidence": "0.912346",
        "decision": "accept",
        "source": "model",
        "runner_up": "drinks",
        "runner_up_confidence": "0.05",
        "model": "catalens-mini",
        "taxonomy": TAXONOMY,
        "calibration": "",
        "updated_at": "2025-01-02T03:04:05Z",
    }
    person = dict(zip(CSV_COLUMNS, table[4], strict=True))
    assert person["confidence"] == "" and person["source"] == "person" and person["model"] == ""


def test_csv_defuses_spreadsheet_formulas_and_keeps_other_text_intact() -> None:
    risky = ["=SUM(A1:A9)", "+44 20", "-2+3", "@cmd", "\tx", "\rx"]
    rows = [_row(value, "note, with comma", value, 0.5) for value in risky]
    rows.append(_row("plain id", 'say "hi"\nthen', "a=b", 0.5))
    _, text = _export(rows, "csv")
    table = list(csv.reader(io.StringIO(text)))[1:]
    for value, cells in zip(risky, table, strict=False):
        assert cells[0] == cells[2] == "'" + value
        assert cells[1] == "note, with comma"
    assert table[-1][:3] == ["plain id", 'say "hi"\nthen', "a=b"]


def test_jsonl_writes_one_object_per_row_with_nulls_and_raw_text() -> None:
    rows = [*ROWS, _row("=x", "category", "+1", 0.25)]
    count, text = _export(rows, "jsonl")
    objects = [json.loads(line) for line in text.splitlines()]
    assert count == len(objects) == len(rows)
    assert all(tuple(obj) == CSV_COLUMNS for obj in objects)
    assert objects[0]["confidence"] == 0.912346 and objects[0]["runner_up"] == "drinks"
    assert objects[3]["confidence"] is None and objects[3]["model"] is None
    assert objects[-1]["id"] == "=x" and objects[-1]["value"] == "+1"  # only CSV needs formula escaping


def test_label_studio_tasks_carry_predictions_per_model_version_with_choices() -> None:
    count, text = _export(ROWS, "label-studio")
    tasks = json.loads(text)
    assert [task["id"] for task in tasks] == [1, 2]  # the item with only a person's rejection has nothing to show
    mug, shoe = tasks
    assert mug["data"] == {"image": "/v1/items/mug-1/image", "item_id": "mug-1"}
    assert shoe["data"] == {"image": "/v1/items/shoe%2F2/image", "item_id": "shoe/2"}
    (prediction,) = mug["predictions"]
    assert prediction["model_version"] == "catalens-mini@" + TAXONOMY[:12]
    assert prediction["score"] == pytest.approx((0.91234567 + 0.7 + 0.5) / 3, abs=1e-6)
    category, colour = prediction["result"]
    assert {k: category[k] for k in ("from_name", "to_name", "type", "value")} == {
        "from_name": "category",
        "to_name": "image",
        "type": "choices",
        "value": {"choices": ["kitchen"]},
    }
    assert category["score"] == 0.912346 and isinstance(category["id"], str) and category["id"] != colour["id"]
    assert colour["value"] == {"choices": ["red", "white"]} and colour["score"] == pytest.approx(0.6)
    person, model = shoe["predictions"]
    assert person["model_version"] == "person" and "score" not in person
    assert person["result"][0]["value"] == {"choices": ["shoes"]}
    assert model["result"][0]["value"] == {"choices": ["boot"]}  # the person-rejected sneaker is left out
    assert count == 5  # rows that became choices


def test_label_studio_image_urls_empty_exports_and_grouping() -> None:
    _, text = _export(ROWS[:1], "label-studio", image_url=lambda item_id: f"https://shop.example/img/{item_id}.jpg")
    assert json.loads(text)[0]["data"]["image"] == "https://shop.example/img/mug-1.jpg"
    assert _export([], "label-studio") == (0, "[]\n")
    with pytest.raises(TaggingError, match="rows of item 'mug-1' are not together"):
        _export([ROWS[0], ROWS[3], ROWS[1]], "label-studio")
    with pytest.raises(ValueError, match="unknown export format 'xlsx'"):
        _export(ROWS, "xlsx")


def test_label_studio_config_matches_the_exported_names() -> None:
    taxonomy = parse_taxonomy(
        """
attributes:
  category: {values: [shoes, bags & belts]}
  shoe style: {values: [boot, "high \\"heel\\""], applies_to: [shoes]}
  colour: {values: [red, blue], multi_label: true, applies_to: {category: [shoes, bags & belts]}}
"""
    )
    root = ET.fromstring(label_studio_config(taxonomy))
    assert root.find("Image").attrib == {"name": "image", "value": "$image"}  # type: ignore[union-attr]
    choices = {c.attrib["name"]: c for c in root.iter("Choices")}
    assert list(choices) == ["category", "shoe style", "colour"]
    assert [c.attrib["value"] for c in choices["shoe style"]] == ["boot", 'high "heel"']
    assert choices["category"].attrib["choice"] == "single" and "visibleWhen" not in choices["category"].attrib
    assert choices["colour"].attrib["choice"] == "multiple"
    assert choices["colour"].attrib["whenTagName"] == "category"
    assert choices["colour"].attrib["whenChoiceValue"] == "shoes,bags & belts"
    assert all(c.attrib["toName"] == "image" for c in choices.values())


def test_the_store_tag_rows_export_as_they_are() -> None:
    from catalens.indexer.store.tags import TagRow

    fields = dict(vars(ROWS[0]))
    row = TagRow(**fields)
    assert _export([row], "csv")[1] == _export([ROWS[0]], "csv")[1]
    assert json.loads(_export([row], "label-studio")[1]) == json.loads(_export([ROWS[0]], "label-studio")[1])
