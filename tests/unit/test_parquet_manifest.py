"""Parquet manifests: the same records as a CSV/JSONL manifest, typed values, per-row problems, unreadable files."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from catalens.indexer.errors import SourceError
from catalens.indexer.parquet_source import parquet_rows
from catalens.indexer.records import ItemRecord, ScanProblem
from catalens.indexer.sources import ManifestSource, ScanEntry, open_source
from catalens.indexer.store import CatalogStore
from catalens.search.cli import EXIT_INPUT, EXIT_OK, main
from tests.conftest import pattern_image

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROWS: list[dict[str, str]] = [
    {"id": "sku-1", "image": "img/1.jpg", "product_id": "p1", "title": "Red shoe", "price": "$19.90", "color": "red"},
    {"id": "sku-2", "image": "img/2.jpg", "product_id": "p1", "title": "Side", "price": "", "color": ""},
    {"id": "sku-3", "image": "https://example.com/x.jpg", "product_id": "", "title": "Bag", "price": "5", "color": ""},
    {"id": "sku-4", "image": "img/1.jpg", "product_id": "p4", "title": "Bad price", "price": "cheap", "color": ""},
    {"id": "", "image": "img/1.jpg", "product_id": "p5", "title": "No id", "price": "1", "color": ""},
    {"id": "sku-6", "image": "", "product_id": "p6", "title": "No image", "price": "", "color": "blue"},
]


def _images(root: Path) -> None:
    (root / "img").mkdir()
    pattern_image(1).save(root / "img" / "1.jpg")
    pattern_image(2).save(root / "img" / "2.jpg")


def _write_parquet(path: Path, rows: list[dict[str, Any]], schema: Any = None, **options: Any) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, **options)
    return path


def _comparable(entry: ScanEntry) -> ScanEntry:
    """An entry without its manifest's name, and CSV line numbers as Parquet row numbers (the header is line 1)."""
    if isinstance(entry, ItemRecord):
        return dataclasses.replace(entry, origin="")
    as_row = lambda text: re.sub(r"line (\d+)", lambda m: f"row {int(m[1]) - 1}", text)  # noqa: E731
    source = re.sub(r"catalog\.(csv|parquet)$", "catalog", entry.source)
    return ScanProblem(as_row(entry.id), source, as_row(entry.reason))


def test_parquet_manifest_gives_the_records_and_problems_of_the_same_csv(tmp_path: Path) -> None:
    _images(tmp_path)
    with (tmp_path / "catalog.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)
    # Several row groups and batches, so row numbers must carry across them.
    parquet = _write_parquet(tmp_path / "catalog.parquet", ROWS, row_group_size=2)
    from_csv = [_comparable(e) for e in ManifestSource(tmp_path / "catalog.csv").scan()]
    from_parquet = [_comparable(e) for e in open_source(parquet).scan()]
    assert from_parquet == from_csv
    assert sum(isinstance(e, ItemRecord) for e in from_parquet) == 3
    first = next(e for e in open_source(parquet).scan() if e.id == "sku-1")
    assert isinstance(first, ItemRecord) and first.origin == str(parquet.resolve()) and first.stat
    problems = {e.id: e.reason for e in from_parquet if isinstance(e, ScanProblem)}
    assert problems == {
        "sku-4": "row 4: price 'cheap' is not a number",
        "row 5": "the row has no id",
        "sku-6": "row 6 has no image",
    }
    small_batches = [where for where, _ in parquet_rows(parquet, 32, batch_rows=4)]
    assert small_batches == [f"row {n}" for n in range(1, 7)]


def test_typed_columns_become_json_values_and_nulls_are_missing(tmp_path: Path) -> None:
    _images(tmp_path)
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("image", pa.string()),
            ("title", pa.string()),
            ("price", pa.decimal128(10, 2)),
            ("in_stock", pa.bool_()),
            ("weight", pa.float64()),
            ("listed", pa.timestamp("us", tz="UTC")),
            ("released", pa.date32()),
            ("sizes", pa.list_(pa.string())),
            ("attributes", pa.struct([("brand", pa.string()), ("dims", pa.struct([("w", pa.int32())]))])),
            ("extra", pa.map_(pa.string(), pa.int64())),
            ("season", pa.dictionary(pa.int8(), pa.string())),
        ]
    )
    rows = [
        {
            "id": 101,
            "image": "img/1.jpg",
            "title": "  Boot ",
            "price": Decimal("19.90"),
            "in_stock": False,
            "weight": 1.5,
            "listed": dt.datetime(2026, 11, 1, 8, 30, tzinfo=dt.UTC),
            "released": dt.date(2026, 10, 2),
            "sizes": ["S", "M"],
            "attributes": {"brand": "Acme", "dims": {"w": 3}},
            "extra": [("pack", 2)],
            "season": "winter",
        },
        {"id": 102, "image": "img/2.jpg", "weight": float("nan"), "attributes": {"brand": None, "dims": None}},
    ]
    parquet = _write_parquet(tmp_path / "typed.parquet", rows, schema=schema)
    first, second = open_source(parquet).scan()
    assert isinstance(first, ItemRecord) and isinstance(second, ItemRecord)
    assert (first.id, first.title, first.price, first.product_id) == ("101", "Boot", 19.9, None)
    assert first.attributes == {
        "brand": "Acme",
        "dims": {"w": 3},
        "in_stock": False,
        "weight": 1.5,
        "listed": "2026-11-01T08:30:00+00:00",
        "released": "2026-10-02",
        "sizes": ["S", "M"],
        "extra": {"pack": 2},
        "season": "winter",
    }
    json.dumps(first.attributes, allow_nan=False)  # storable as the canonical JSON the store writes
    # Nulls and NaN are missing values; a null inside a struct stays a JSON null, as in a JSONL object.
    assert (second.title, second.price) == (None, None)
    assert second.attributes == {"brand": None, "dims": None}


def test_a_value_that_is_not_utf8_fails_only_its_row(tmp_path: Path) -> None:
    _images(tmp_path)
    schema = pa.schema([("id", pa.string()), ("image", pa.string()), ("code", pa.binary())])
    rows = [
        {"id": "a", "image": "img/1.jpg", "code": b"ok"},
        {"id": "b", "image": "img/1.jpg", "code": b"\xff\xfe"},
        {"id": "c", "image": "img/2.jpg", "code": None},
    ]
    entries = list(open_source(_write_parquet(tmp_path / "bin.parquet", rows, schema=schema)).scan())
    assert [type(e).__name__ for e in entries] == ["ItemRecord", "ScanProblem", "ItemRecord"]
    assert entries[0].attributes == {"code": "ok"}  # type: ignore[union-attr]
    assert entries[1].id == "row 2" and entries[1].reason.startswith("row 2 cannot be read")


def test_unusable_parquet_files_are_source_errors(tmp_path: Path) -> None:
    no_image = _write_parquet(tmp_path / "cols.parquet", [{"id": "a", "picture": "a.jpg"}])
    with pytest.raises(SourceError, match="lacks the column"):
        list(open_source(no_image).scan())
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"id,image\na,a.jpg\n")
    with pytest.raises(SourceError, match="not a readable Parquet file"):
        list(open_source(garbage).scan())
    whole = _write_parquet(tmp_path / "whole.parquet", ROWS).read_bytes()
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SourceError, match=r"truncated\.parquet"):
        list(open_source(truncated).scan())
    # Damage in the middle of the data: rows before it were read, then the file as a whole is refused (the run
    # applies nothing, so no item is removed for rows it could not see).
    many = [{"id": f"s{i}", "image": f"{i}.jpg", "title": f"title {i:050d}"} for i in range(3000)]
    data = bytearray(_write_parquet(tmp_path / "many.parquet", many, row_group_size=500).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 200] = bytes(200)
    (tmp_path / "damaged.parquet").write_bytes(bytes(data))
    with pytest.raises(SourceError, match="cannot be read past row"):
        list(open_source(tmp_path / "damaged.parquet").scan())


def test_without_pyarrow_a_parquet_manifest_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parquet = _write_parquet(tmp_path / "catalog.parquet", ROWS)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(SourceError, match=re.escape("pip install 'catalens[parquet]'")):
        open_source(parquet)
    with pytest.raises(SourceError, match="needs pyarrow"):
        list(ManifestSource(parquet).scan())


def test_catalens_index_of_a_parquet_catalog(tmp_path: Path, tiny_spec: str, capsys: Any) -> None:
    _images(tmp_path)
    rows: list[dict[str, Any]] = [
        {"id": "sku-1", "image": "img/1.jpg", "title": "Red shoe", "price": 19.9, "attributes": {"color": "red"}},
        {"id": "sku-2", "image": "img/2.jpg", "title": "Blue bag", "price": None, "attributes": {"color": "blue"}},
        {"id": "sku-3", "image": "img/missing.jpg", "title": "Gone", "price": 1.0, "attributes": None},
    ]
    parquet = _write_parquet(tmp_path / "catalog.parquet", rows)
    store = tmp_path / "store"
    argv = ["index", str(parquet), "--store", str(store), "--model", tiny_spec, "--json", "--quiet"]
    assert main(argv) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert (report["new"], report["indexed_total"]) == (2, 2)
    assert [f["id"] for f in report["failures"]] == ["sku-3"]
    with CatalogStore.open(store) as opened:
        first = opened.get_item("sku-1")
        assert first is not None and (first.title, first.price, first.attributes) == (
            "Red shoe",
            19.9,
            {"color": "red"},
        )
        second = opened.get_item("sku-2")
        assert second is not None and second.price is None and second.attributes == {"color": "blue"}

    # Incremental like any manifest: unchanged rows are skipped, a dropped row is removed.
    _write_parquet(parquet, rows[:1])
    assert main(argv) == EXIT_OK
    again = json.loads(capsys.readouterr().out)
    assert (again["unchanged"], again["removed"], again["indexed_total"]) == (1, 2, 1)

    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    assert main(["index", str(tmp_path / "broken.parquet"), "--store", str(store), "--quiet"]) == EXIT_INPUT
    assert "Traceback" not in capsys.readouterr().err
