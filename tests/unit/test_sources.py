"""Catalog sources: folders found by content, manifests with metadata, and per-row problems."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from catalens.indexer.errors import SourceError
from catalens.indexer.records import ItemRecord, ScanProblem
from catalens.indexer.sources import FolderSource, ManifestSource, open_source
from tests.conftest import pattern_image


def test_folder_finds_images_by_content_and_handles_link_loops(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    (root / "shoes" / "deep").mkdir(parents=True)
    pattern_image(1).save(root / "shoes" / "a.jpg")
    pattern_image(2).save(root / "shoes" / "deep" / "b.png")
    pattern_image(3).save(root / "no-extension", format="PNG")
    (root / "readme.txt").write_text("not an image")
    (root / "fake.jpg").write_text("text named like an image")
    (root / ".hidden.jpg").write_bytes((root / "shoes" / "a.jpg").read_bytes())
    os.symlink(root, root / "shoes" / "loop")
    entries = list(FolderSource(root).scan())
    ids = sorted(e.id for e in entries)
    assert ids == ["fake.jpg", "no-extension", "shoes/a.jpg", "shoes/deep/b.png"]
    assert all(isinstance(e, ItemRecord) and e.stat for e in entries)
    assert open_source(root).origin == str(root.resolve())


def test_csv_manifest_with_metadata_and_attributes(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    pattern_image(1).save(tmp_path / "img" / "1.jpg")
    absolute = tmp_path / "abs.png"
    pattern_image(2).save(absolute)
    manifest = tmp_path / "catalog.csv"
    manifest.write_text(
        "id,image,product_id,title,category,price,color,material\n"
        "sku-1,img/1.jpg,p1,Red shoe,shoes,$19.90,red,leather\n"
        f"sku-2,{absolute},p1,Red shoe (side),shoes,,red,\n"
        "sku-3,https://example.com/x.jpg,p3,Bag,bags,5,,\n"
        "sku-4,img/1.jpg,p4,Bad price,bags,cheap,,\n"
        ",img/1.jpg,p5,No id,bags,1,,\n"
    )
    entries = {e.id: e for e in ManifestSource(manifest).scan()}
    first = entries["sku-1"]
    assert isinstance(first, ItemRecord)
    assert first.source == str((tmp_path / "img" / "1.jpg").resolve()) and first.stat
    assert (first.product_id, first.title, first.category, first.price) == ("p1", "Red shoe", "shoes", 19.9)
    assert first.attributes == {"color": "red", "material": "leather"}
    second = entries["sku-2"]
    assert isinstance(second, ItemRecord) and second.price is None and second.attributes == {"color": "red"}
    third = entries["sku-3"]
    assert isinstance(third, ItemRecord) and third.is_url and third.stat is None
    assert isinstance(entries["sku-4"], ScanProblem) and "not a number" in entries["sku-4"].reason
    assert isinstance(entries["line 6"], ScanProblem) and "no id" in entries["line 6"].reason


def test_jsonl_manifest_nested_attributes_and_bad_lines(tmp_path: Path) -> None:
    manifest = tmp_path / "catalog.jsonl"
    rows = [
        json.dumps({"id": "a", "image": "a.jpg", "title": "A", "attributes": {"size": "M"}, "brand": "Acme"}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"id": "b"}),
    ]
    manifest.write_text("\n".join(rows) + "\n")
    entries = list(ManifestSource(manifest).scan())
    assert isinstance(entries[0], ItemRecord) and entries[0].attributes == {"size": "M", "brand": "Acme"}
    reasons = [e.reason for e in entries[1:] if isinstance(e, ScanProblem)]
    assert len(reasons) == 3
    assert "invalid JSON" in reasons[0] and "JSON object" in reasons[1] and "no image" in reasons[2]


def test_manifest_without_required_columns_is_a_source_error(tmp_path: Path) -> None:
    manifest = tmp_path / "catalog.csv"
    manifest.write_text("sku,picture\n1,a.jpg\n")
    with pytest.raises(SourceError, match="id, image"):
        list(ManifestSource(manifest).scan())


@pytest.mark.parametrize("name", ["missing-folder", "catalog.xlsx"])
def test_unusable_source_paths(tmp_path: Path, name: str, make_catalog: Callable[..., Path]) -> None:
    if name.endswith(".xlsx"):
        (tmp_path / name).write_bytes(b"PK")
    with pytest.raises(SourceError):
        open_source(tmp_path / name)
