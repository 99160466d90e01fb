"""Labelled files for calibration: JSONL and CSV rows, each mistake named with its file line."""

from __future__ import annotations

import json

import pytest

from catalens.indexer.tagging.errors import CalibrationError
from catalens.indexer.tagging.labelled import LabelledRow, load_labelled

ALLOWED = {"category": ["shoes", "Mugs"], "colour": ["red", "blue"]}


def test_jsonl_rows_come_back_in_the_taxonomy_spelling(tmp_path) -> None:
    path = tmp_path / "labels.jsonl"
    rows = [{"id": "a/1", "attribute": "category", "label": " mugs "}, {"id": 7, "attribute": "Colour", "label": "RED"}]
    path.write_text("\n".join(json.dumps(r) for r in rows[:1]) + "\n\n" + json.dumps(rows[1]) + "\n")
    assert load_labelled(path, allowed=ALLOWED) == [
        LabelledRow("a/1", "category", "Mugs", 1),
        LabelledRow("7", "colour", "red", 3),
    ]


def test_csv_rows_with_extra_columns_and_quoted_newlines(tmp_path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text('label,id,note,attribute\nshoes,s1,"two\nlines",category\n\nblue,s2,,colour\n', encoding="utf-8")
    assert load_labelled(path, allowed=ALLOWED) == [
        LabelledRow("s1", "category", "shoes", 2),
        LabelledRow("s2", "colour", "blue", 5),
    ]


def test_without_a_taxonomy_any_names_are_kept(tmp_path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text('{"id": "x", "attribute": "kind", "label": "food"}\n')
    assert load_labelled(path) == [LabelledRow("x", "kind", "food", 1)]


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ('{"id": "a", "attribute": "category", "label": "shoes"}\n{"id": "b"}\n', ".jsonl", r"labels.jsonl:2: missing"),
        ('{"id": "a", "attribute": "category", "label": "shoes"}\n[1, 2]\n', ".jsonl", r":2: expected a JSON object"),
        ("{oops\n", ".jsonl", r"labels.jsonl:1: not a JSON object"),
        ('{"id": "", "attribute": "category", "label": "shoes"}\n', ".jsonl", r":1: empty 'id'"),
        ('{"id": "a", "attribute": "category", "label": null}\n', ".jsonl", r":1: 'label' must be a string"),
        ('{"id": "a", "attribute": "size", "label": "XL"}\n', ".jsonl", r":1: unknown attribute 'size'.*'category'"),
        ('{"id": "a", "attribute": "category", "label": "hats"}\n', ".jsonl", r":1: 'hats' is not a value.*'shoes'"),
        ("id,attribute\na,category\n", ".csv", r"labels.csv:1: .*needs columns id, attribute, label"),
        ("id,attribute,label\na,category,shoes\nb,category\n", ".csv", r"labels.csv:3: 2 cells"),
        ("id,attribute,label\na,colour,green\n", ".csv", r"labels.csv:2: 'green' is not a value of 'colour'"),
    ],
)
def test_bad_rows_name_the_line(tmp_path, text: str, suffix: str, message: str) -> None:
    path = tmp_path / f"labels{suffix}"
    path.write_text(text)
    with pytest.raises(CalibrationError, match=message):
        load_labelled(path, allowed=ALLOWED)


def test_a_taxonomy_gives_the_allowed_names(tmp_path) -> None:
    from catalens.indexer.tagging.taxonomy import parse_taxonomy

    taxonomy = parse_taxonomy('{"attributes": {"kind": {"values": ["animals", "food"]}}}')
    path = tmp_path / "labels.csv"
    path.write_text("id,attribute,label\na,kind,Food\nb,kind,cars\n")
    with pytest.raises(CalibrationError, match=r"labels.csv:3: 'cars' is not a value of 'kind'"):
        load_labelled(path, taxonomy)
    path.write_text("id,attribute,label\na,kind,Food\n")
    assert load_labelled(path, taxonomy) == [LabelledRow("a", "kind", "food", 2)]


def test_a_missing_file_is_a_calibration_error(tmp_path) -> None:
    with pytest.raises(CalibrationError, match="cannot read labelled file"):
        load_labelled(tmp_path / "nope.csv")
