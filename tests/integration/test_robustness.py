"""Damaged, full, read-only and malformed: every fault gives a clear error or a safe fallback, never a traceback.

Faults are made for real where a test can (truncated and foreign index files, bad manifests, non-UTF-8
bytes) and injected where it cannot (a full disk: a write that raises ``ENOSPC``; SQLite's ``database or
disk is full``; a read-only filesystem, which root ignores, through the store's read-only open path and a
patched ``os.access``).
"""

from __future__ import annotations

import errno
import io
import json
import logging
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalens.indexer.errors import IndexDamagedError, StoreWriteError
from catalens.indexer.pipeline import reindex
from catalens.indexer.records import ItemRecord
from catalens.indexer.store import DB_NAME, MANIFEST_NAME, CatalogStore, EmbeddedItem
from catalens.search.cli import main
from catalens.search.engine import SearchEngine

DIM_ITEMS = 6


def _vectors(dim: int, seed: int) -> dict[str, tuple[Any, dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    return {f"item-{seed}-{n}": (rng.normal(size=dim), {"title": f"thing {n}"}) for n in range(DIM_ITEMS)}


@pytest.fixture
def two_generations(vector_store: Callable[..., Path], tiny_model: Any) -> tuple[Path, dict[str, Any]]:
    """A store with two published generations (the second current), and its items' vectors by id."""
    items = _vectors(tiny_model.dim, 1)
    root = vector_store(items)
    reindex(root)
    return root, {item_id: vector for item_id, (vector, _) in items.items()}


def _top_id(root: Path, model: Any, vector: Any, **open_args: Any) -> tuple[str, SearchEngine]:
    engine = SearchEngine.open(root, encoder=model, **open_args)
    result = engine.search_vector(np.asarray(vector, dtype=np.float32) / np.linalg.norm(vector))
    return result.hits[0].id, engine


def _current_file(root: Path) -> Path:
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    return root / manifest["index"]["file"]


# -- damaged and foreign index files ------------------------------------------------------------------------


def test_truncated_index_falls_back_to_the_previous_generation(
    two_generations: tuple[Path, dict[str, Any]], tiny_model: Any, caplog: pytest.LogCaptureFixture
) -> None:
    root, vectors = two_generations
    current = _current_file(root)
    current.write_bytes(current.read_bytes()[:100])
    wanted = next(iter(vectors))
    with caplog.at_level(logging.WARNING, logger="catalens.index"):
        top, engine = _top_id(root, tiny_model, vectors[wanted])
    with engine:
        assert top == wanted
        assert engine.generation == 1
        assert engine._snapshots.current.degraded is not None
    assert "damaged" in caplog.text and "previous generation 1" in caplog.text


def test_damaged_index_without_a_previous_one_searches_sqlite_exactly(
    two_generations: tuple[Path, dict[str, Any]], tiny_model: Any
) -> None:
    root, vectors = two_generations
    for path in (root / "index").glob("gen-*.faiss"):
        path.write_bytes(b"garbage")
    for wanted, vector in vectors.items():
        top, engine = _top_id(root, tiny_model, vector)
        with engine:
            assert top == wanted
            assert engine.generation is None
            assert "SQLite" in (engine._snapshots.current.degraded or "")


def test_index_file_of_another_store_is_refused(vector_store: Callable[..., Path], tiny_model: Any) -> None:
    ours = _vectors(tiny_model.dim, 1)
    root = vector_store(ours, name="ours")
    other = vector_store(_vectors(tiny_model.dim, 2), name="theirs")  # same size and dimension, other items
    shutil.copyfile(_current_file(other), _current_file(root))
    for wanted, (vector, _) in ours.items():
        top, engine = _top_id(root, tiny_model, vector)
        with engine:
            assert top == wanted  # never one of the other store's keys mapped onto our items
            assert "checksum" in (engine._snapshots.current.degraded or "")


def test_foreign_index_is_refused_by_its_size_in_a_manifest_without_checksums(
    vector_store: Callable[..., Path], tiny_model: Any
) -> None:
    ours = _vectors(tiny_model.dim, 1)
    root = vector_store(ours, name="ours")
    bigger = {**_vectors(tiny_model.dim, 2), **_vectors(tiny_model.dim, 3)}
    other = vector_store(bigger, name="theirs")
    shutil.copyfile(_current_file(other), _current_file(root))
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    del manifest["checksums"], manifest["previous_index"]  # as a catalens before checksums wrote it
    (root / MANIFEST_NAME).write_text(json.dumps(manifest))
    with CatalogStore.open(root) as store:
        assert store.manifest.index is not None
        from catalens.indexer.vectors import load_index

        with pytest.raises(IndexDamagedError, match=r"holds 12 vectors, the manifest recorded 6"):
            store.load_index(store.manifest.index, load_index)
    wanted, (vector, _) = next(iter(ours.items()))
    top, engine = _top_id(root, tiny_model, vector)
    engine.close()
    assert top == wanted


def test_manifest_with_checksums_stays_readable_by_the_old_reader(two_generations: tuple[Path, Any]) -> None:
    root, _ = two_generations
    raw = json.loads((root / MANIFEST_NAME).read_text())
    assert raw["checksums"][raw["index"]["file"]].startswith("crc32:")
    assert raw["previous_index"]["generation"] == 1
    # The reader before checksums: IndexState(**raw["index"]) and the top-level keys it knew.
    from catalens.indexer.store import IndexState

    assert IndexState(**raw["index"]).generation == 2


def test_info_reports_a_damaged_index(two_generations: tuple[Path, Any], capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = two_generations
    assert main(["info", "--store", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["index"]["status"] == "ok"
    current = _current_file(root)
    current.write_bytes(current.read_bytes()[:-50])
    assert main(["info", "--store", str(root), "--json"]) == 0
    index = json.loads(capsys.readouterr().out)["index"]
    assert index["status"] == "damaged" and "reindex" in index["problem"]
    assert main(["info", "--store", str(root)]) == 0
    assert "Index check DAMAGED" in capsys.readouterr().out


def test_cli_search_and_reindex_recover_from_a_truncated_index(
    two_generations: tuple[Path, Any], tiny_spec: str, capsys: pytest.CaptureFixture[str], caplog: Any
) -> None:
    root, _ = two_generations
    current = _current_file(root)
    current.write_bytes(current.read_bytes()[:64])
    with caplog.at_level(logging.WARNING, logger="catalens.index"):
        assert main(["search", "--store", str(root), "--json", "thing"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) > 0
    assert "is damaged" in caplog.text
    assert main(["reindex", "--store", str(root)]) == 0
    capsys.readouterr()
    assert main(["info", "--store", str(root), "--json"]) == 0
    index = json.loads(capsys.readouterr().out)["index"]
    assert (index["status"], index["generation"]) == ("ok", 3)


def test_service_starts_on_a_damaged_index_and_says_so(
    two_generations: tuple[Path, dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi.testclient import TestClient

    from catalens.search.api import create_app
    from catalens.search.settings import Settings

    root, _ = two_generations
    current = _current_file(root)
    current.write_bytes(b"\0" * current.stat().st_size)  # same size, other bytes
    with (
        caplog.at_level(logging.WARNING, logger="catalens.index"),
        TestClient(create_app(Settings(store=root))) as client,
    ):
        info = client.get("/v1/info")
        assert info.status_code == 200
        assert info.json()["generation"] == 1
        hits = client.get("/v1/search", params={"q": "thing", "k": 3})
        assert hits.status_code == 200 and len(hits.json()["hits"]) == 3
    assert "serving the previous generation 1" in caplog.text


# -- a full disk -----------------------------------------------------------------------------------------------


def _no_space(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_while_publishing_keeps_the_old_generation(
    two_generations: tuple[Path, dict[str, Any]], tiny_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, vectors = two_generations
    before = (root / MANIFEST_NAME).read_text()
    files_before = sorted(p.name for p in (root / "index").iterdir())
    monkeypatch.setattr("catalens.indexer.store.generations.atomic_write", _no_space)
    with pytest.raises(StoreWriteError, match="No space left on device") as raised:
        reindex(root)
    assert raised.value.operation == "publish the index" and not raised.value.read_only
    assert (root / MANIFEST_NAME).read_text() == before
    assert sorted(p.name for p in (root / "index").iterdir()) == files_before
    wanted = next(iter(vectors))
    top, engine = _top_id(root, tiny_model, vectors[wanted])
    with engine:
        assert (top, engine.generation, engine._snapshots.current.degraded) == (wanted, 2, None)


def test_full_disk_in_faiss_writer_is_a_store_error(
    two_generations: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = two_generations

    def faiss_short_write(self: Any, path: Path) -> None:
        path.write_bytes(b"partial")
        raise RuntimeError("Error in faiss::FileIOWriter::operator()\nwrite error: ret 0 < n 4096")

    monkeypatch.setattr("catalens.indexer.vectors.faiss_backend.FaissIndex.save", faiss_short_write)
    assert main(["reindex", "--store", str(root)]) == 3
    err = capsys.readouterr().err
    assert "cannot publish the index" in err and "disk" in err and "Traceback" not in err
    assert not list((root / "index").glob(".gen-*"))  # the temp file is gone
    assert main(["info", "--store", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["index"]["status"] == "ok"


def test_full_sqlite_database_rolls_back_the_batch(
    tmp_path: Path, tiny_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CatalogStore.create(tmp_path / "store", tiny_model.spec, tiny_model.dim)
    record = ItemRecord(id="a", source=str(tmp_path / "a.png"), origin="test")
    item = EmbeddedItem(record, "0" * 32, 8, 8, np.ones(tiny_model.dim, dtype=np.float32) / tiny_model.dim**0.5)

    def full(*args: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    with store, store.writer_lock():
        monkeypatch.setattr("catalens.indexer.store.items.write_items", full)
        with pytest.raises(StoreWriteError, match="database or disk is full"):
            store.write_batch(embedded=[item])
        monkeypatch.undo()
        assert store.status_counts() == {"indexed": 0, "failed": 0}
        assert store.current_seq() == 0  # the sequence bump rolled back with the batch
        store.write_batch(embedded=[item])  # the connection is usable again
        assert store.vector_count() == 1


def test_full_disk_on_the_lock_file_is_a_store_error(
    tmp_path: Path,
    tiny_spec: str,
    make_catalog: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    catalog = make_catalog(2)
    monkeypatch.setattr("catalens.indexer.lock.os.ftruncate", _no_space)
    code = main(["index", str(catalog), "--store", str(tmp_path / "store"), "--model", tiny_spec, "--quiet"])
    assert code == 3
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err


# -- a read-only store -------------------------------------------------------------------------------------


def _read_only_filesystem(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``os.access`` says on a read-only mount (root ignores permission bits, so chmod cannot show it)."""
    monkeypatch.setattr("catalens.indexer.store.faults.os.access", lambda path, mode: mode != 2)


def test_read_only_store_is_searched_without_writing_anything(
    two_generations: tuple[Path, dict[str, Any]],
    tiny_model: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, vectors = two_generations
    listing = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    _read_only_filesystem(monkeypatch)
    wanted = next(iter(vectors))
    top, engine = _top_id(root, tiny_model, vectors[wanted])
    with engine:
        assert top == wanted and engine.store.read_only and engine.generation == 2
        with pytest.raises(StoreWriteError, match="read-only"):
            engine.store.writer_lock()
        with pytest.raises(StoreWriteError, match="read-only") as raised:
            engine.store.delete_items([wanted])
        assert raised.value.read_only
    assert main(["info", "--store", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["index"]["status"] == "ok"
    assert main(["reindex", "--store", str(root)]) == 3
    assert "read-only" in capsys.readouterr().err
    # No -wal, -shm or lock file appeared, and nothing was touched.
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == listing
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == stamps


def test_service_on_a_read_only_store_searches_and_refuses_writes(
    two_generations: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from catalens.search.api import create_app
    from catalens.search.settings import Settings

    root, vectors = two_generations
    _read_only_filesystem(monkeypatch)
    with TestClient(create_app(Settings(store=root))) as client:
        assert client.get("/v1/search", params={"q": "thing", "k": 2}).status_code == 200
        refused = client.delete(f"/v1/items/{next(iter(vectors))}")
        assert refused.status_code == 409 and "read-only" in refused.json()["detail"]


def test_read_only_copy_taken_while_a_writer_had_it_open_sees_the_wal(tmp_path: Path, tiny_model: Any) -> None:
    store = CatalogStore.create(tmp_path / "live", tiny_model.spec, tiny_model.dim)
    store._db.execute("PRAGMA wal_autocheckpoint = 0")  # keep the batch in the -wal file, as a busy writer does
    record = ItemRecord(id="a", source=str(tmp_path / "a.png"), origin="test")
    vector = np.ones(tiny_model.dim, dtype=np.float32) / tiny_model.dim**0.5
    with store.writer_lock():
        store.write_batch(embedded=[EmbeddedItem(record, "0" * 32, 8, 8, vector)])
    assert (tmp_path / "live" / f"{DB_NAME}-wal").stat().st_size > 0
    shutil.copytree(tmp_path / "live", tmp_path / "replica")
    store.close()
    with CatalogStore.open(tmp_path / "replica", read_only=True) as replica:
        assert replica.read_only
        assert replica.get_item("a") is not None and replica.vector_count() == 1


# -- bytes that are not UTF-8 on the command line ----------------------------------------------------------


def test_query_that_is_not_utf8_is_an_input_error(
    two_generations: tuple[Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = two_generations
    query = b"caf\xe9 thing".decode("utf-8", "surrogateescape")  # what Python makes of such argv bytes
    assert main(["search", "--store", str(root), query]) == 5
    err = capsys.readouterr().err
    assert "query argument 'caf\\xe9 thing' is not valid UTF-8" in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_prints_one_warning_line_when_it_falls_back(two_generations: tuple[Path, Any]) -> None:
    import subprocess
    import sys

    root, _ = two_generations
    current = _current_file(root)
    current.write_bytes(current.read_bytes()[:64])
    done = subprocess.run(
        [sys.executable, "-m", "catalens.search.cli", "search", "--store", str(root), "--json", "thing"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING") and "damaged" in line]
    assert len(warnings) == 1 and "serving the previous generation 1" in warnings[0]
    assert "Traceback" not in done.stderr
    assert json.loads(done.stdout)["hits"]


def test_the_pixel_budget_fails_large_images_by_format_on_the_cli_and_over_http(
    tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """``--max-pixels`` / ``CATALENS_MAX_IMAGE_PIXELS`` bound formats decoded at full size; JPEGs decode reduced."""
    from fastapi.testclient import TestClient

    from catalens.search.api import create_app
    from catalens.search.settings import Settings
    from tests.conftest import pattern_image

    catalog = make_catalog(3, size=(96, 64))  # JPEGs of 6,144 pixels: decoded at reduced size, never refused
    pattern_image(9, (120, 100)).save(catalog / "big.png")  # 12,000 pixels, decoded at full size
    store = tmp_path / "store"
    code = main(["index", str(catalog), "--store", str(store), "--model", tiny_spec, "--max-pixels", "5000", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["new"] == 3
    (failure,) = report["failures"]
    assert failure["id"] == "big.png" and "exceeds the 5000-pixel budget" in failure["reason"]

    png = io.BytesIO()
    pattern_image(9, (120, 100)).save(png, format="PNG")
    jpeg = io.BytesIO()
    pattern_image(9, (120, 100)).save(jpeg, format="JPEG")
    settings = Settings(store=store, max_image_pixels=5000, refresh_interval_s=3600, rate_limit="off")
    with TestClient(create_app(settings)) as client:
        refused = client.post("/v1/search/image", files={"image": ("big.png", png.getvalue(), "image/png")})
        assert refused.status_code == 422 and "5000-pixel budget" in refused.json()["detail"]
        served = client.post("/v1/search/image", files={"image": ("big.jpg", jpeg.getvalue(), "image/jpeg")})
        assert served.status_code == 200 and served.json()["hits"]
