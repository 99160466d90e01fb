"""Malformed manifests: bytes that are not UTF-8, huge fields, deep nesting fail their row, not the scan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalens.indexer.errors import SourceError
from catalens.indexer.records import ItemRecord, ScanProblem
from catalens.indexer.sources import MAX_NESTING, ManifestSource


def _scan(path: Path) -> tuple[list[str], dict[str, str]]:
    entries = list(ManifestSource(path).scan())
    ids = [e.id for e in entries if isinstance(e, ItemRecord)]
    problems = {e.id: e.reason for e in entries if isinstance(e, ScanProblem)}
    return ids, problems


def test_csv_rows_that_are_not_utf8_fail_alone(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"id,image,title\na,a.jpg,plain\nb,b.jpg,caf\xe9 latin-1\nc,c.jpg,caf\xc3\xa9\n")
    ids, problems = _scan(path)
    assert ids == ["a", "c"]
    assert problems == {
        "line 3": "line 3 is not valid UTF-8; save the manifest as UTF-8 (e.g. from a spreadsheet: CSV UTF-8)"
    }


def test_csv_header_that_is_not_utf8_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"id,image,t\xeftle\na,a.jpg,x\n")
    with pytest.raises(SourceError, match="header is not valid UTF-8"):
        list(ManifestSource(path).scan())


def test_csv_field_over_the_parser_limit_fails_only_its_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(f"id,image,description\na,a.jpg,short\nb,b.jpg,{'x' * 200_000}\nc,c.jpg,short\n")
    ids, problems = _scan(path)
    assert ids == ["a", "c"]
    assert list(problems) == ["line 3"] and "field larger than field limit" in problems["line 3"]


def test_jsonl_rows_not_utf8_or_deeply_nested_fail_alone(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    deep = '{"id": "deep", "image": "d.jpg", "attributes": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    nested = {
        "id": "nested",
        "image": "n.jpg",
        "attributes": {"x": json.loads("[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1))},
    }
    lines = [
        b'{"id": "a", "image": "a.jpg"}',
        b'{"id": "b", "image": "b.jpg", "title": "caf\xe9"}',
        deep.encode(),
        json.dumps(nested).encode(),
        b'{"id": "c", "image": "c.jpg", "title": "caf\xc3\xa9"}',
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    ids, problems = _scan(path)
    assert ids == ["a", "c"]
    assert set(problems) == {"line 2", "line 3", "line 4"}
    assert "not valid UTF-8" in problems["line 2"]
    assert "too deeply" in problems["line 3"]
    assert f"more than {MAX_NESTING} levels" in problems["line 4"]
