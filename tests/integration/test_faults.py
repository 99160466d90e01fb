"""Faults survived: backups taken while an indexer writes, and queries answered while everything changes.

``catalens backup`` copies a store consistently even while an indexer subprocess writes to it, and the copy
is a working store; 50 concurrent queries over loopback see only published generations and live items
while generations are re-published and items are added and deleted over HTTP.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from catalens.indexer.backup import BackupError, backup_store
from catalens.search.cli import EXIT_OK, EXIT_STORE, main
from tests.conftest import pattern_image

REPO = Path(__file__).resolve().parents[2]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def index_ids(path: Path) -> np.ndarray:
    native = faiss.read_index(str(path))
    return faiss.vector_to_array(native.id_map).astype(np.int64)


def assert_consistent_copy(copy: Path) -> dict[str, Any]:
    """The copy's manifest names a generation whose file is in the copy and whose ids are the copy's items.

    An id may only be missing from the copied items when its removal is logged after the generation's
    change sequence (a reader of that generation then hides it); every indexed item missing from the
    generation must have changed after it (a reader adds it from the change log).
    """
    manifest = json.loads((copy / "manifest.json").read_text())
    index = manifest["index"]
    assert index is not None
    files = sorted(p.name for p in (copy / "index").iterdir())
    assert files == [Path(index["file"]).name]
    assert manifest["previous_index"] is None and set(manifest["checksums"]) == {index["file"]}
    ids = index_ids(copy / index["file"])
    assert len(ids) == index["count"] == len(set(ids.tolist()))
    db = sqlite3.connect(copy / "catalog.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        indexed = dict(db.execute("SELECT key, seq FROM items WHERE status = 'indexed'").fetchall())
        removed = dict(db.execute("SELECT key, seq FROM removals").fetchall())
        seq = db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0]
        vectors = db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        fts = {r[0] for r in db.execute("SELECT rowid FROM items_fts")}
    finally:
        db.close()
    assert index["seq"] <= seq
    for key in set(ids.tolist()) - set(indexed):
        assert removed.get(key, -1) > index["seq"], f"id {key} in the generation is neither an item nor a removal"
    for key in set(indexed) - set(ids.tolist()):
        assert indexed[key] > index["seq"], f"item {key} is in neither the generation nor the change log"
    assert vectors == len(indexed) and fts == set(indexed)
    return {"generation": index["generation"], "seq": seq, "items": len(indexed)}


def test_backup_then_restore_by_pointing_at_the_copy(
    tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = make_catalog(12)
    store, copy = tmp_path / "store", tmp_path / "backups" / "monday"
    assert run_cli(capsys, "index", str(catalog), "--store", str(store), "--model", tiny_spec, "--quiet")[0] == 0

    code, out, _ = run_cli(capsys, "backup", "--store", str(store), str(copy), "--json", "--quiet")
    assert code == EXIT_OK
    report = json.loads(out)
    assert report["destination"] == str(copy.resolve())
    assert report["items"]["indexed"] == 12 and not report["items"].get("failed") and report["vectors"] == 12
    assert report["generation"] == 1 and report["index_count"] == 12 and report["bytes"] > 0
    assert assert_consistent_copy(copy)["items"] == 12
    assert not any(p.name.startswith(".monday.partial") for p in copy.parent.iterdir())

    # Restore: the copy is a store; search it while the original is gone.
    before = run_cli(capsys, "search", "a photo", "--store", str(store), "--json", "-k", "5")
    for path in sorted(store.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    code, out, err = run_cli(capsys, "search", "a photo", "--store", str(copy), "--json", "-k", "5")
    assert code == EXIT_OK, err
    assert [h["id"] for h in json.loads(out)["hits"]] == [h["id"] for h in json.loads(before[1])["hits"]]


def test_backup_summary_and_refusals(
    tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = make_catalog(3)
    store = tmp_path / "store"
    assert run_cli(capsys, "index", str(catalog), "--store", str(store), "--model", tiny_spec, "--quiet")[0] == 0

    code, out, _ = run_cli(capsys, "backup", "--store", str(store), str(tmp_path / "copy"), "--quiet")
    assert code == EXIT_OK
    assert "Backed up" in out and "3 indexed; 3 vectors" in out and "index generation 1 (3 vectors)" in out
    assert "catalens search --store" in out

    code, _, err = run_cli(capsys, "backup", "--store", str(store), str(tmp_path / "copy"), "--quiet")
    assert code == EXIT_STORE and "not an empty directory" in err
    code, _, err = run_cli(capsys, "backup", "--store", str(store), str(store / "inside"), "--quiet")
    assert code == EXIT_STORE and "inside the store" in err
    code, _, err = run_cli(capsys, "backup", "--store", str(tmp_path / "nowhere"), str(tmp_path / "x"), "--quiet")
    assert code == EXIT_STORE and "no catalens store" in err
    assert not (tmp_path / "x").exists()


def test_a_damaged_index_file_is_not_backed_up(
    tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, catalog = tmp_path / "store", make_catalog(3)
    assert run_cli(capsys, "index", str(catalog), "--store", str(store), "--model", tiny_spec, "--quiet")[0] == 0
    generation = next((store / "index").glob("gen-*.faiss"))
    data = bytearray(generation.read_bytes())
    data[-8:] = bytes(8)
    generation.write_bytes(bytes(data))
    code, _, err = run_cli(capsys, "backup", "--store", str(store), str(tmp_path / "copy"), "--quiet")
    assert code == EXIT_STORE and "checksum" in err and "catalens reindex" in err
    assert not (tmp_path / "copy").exists() and not list(tmp_path.glob(".copy.partial-*"))


def test_backup_of_a_store_with_no_index_generation_yet(tmp_path: Path, tiny_model: Any) -> None:
    from catalens.indexer.store import CatalogStore

    CatalogStore.create(tmp_path / "empty", tiny_model.spec, tiny_model.dim).close()
    report = backup_store(tmp_path / "empty", tmp_path / "copy")
    assert report.generation is None and not any(report.items.values()) and report.vectors == 0
    with CatalogStore.open(tmp_path / "copy") as copy:
        assert copy.manifest.index is None and copy.manifest.model == tiny_model.spec
    with pytest.raises(BackupError, match="not an empty directory"):
        backup_store(tmp_path / "empty", tmp_path / "copy")


@pytest.mark.slow
def test_backups_taken_while_an_indexer_subprocess_writes_are_consistent(
    tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = make_catalog(60)
    store = tmp_path / "store"
    assert run_cli(capsys, "index", str(catalog), "--store", str(store), "--model", tiny_spec, "--quiet")[0] == 0
    # The next run has re-embeds, deletions (logged removals) and many new items, in small batches.
    for i in range(0, 40):
        pattern_image(1000 + i).save(catalog / f"item-{i:03d}.jpg", quality=92)
    for i in range(40, 50):
        (catalog / f"item-{i:03d}.jpg").unlink()
    for i in range(300):
        pattern_image(2000 + i).save(catalog / f"new-{i:03d}.jpg", quality=92)
    command = [sys.executable, "-m", "catalens.search.cli", "index", str(catalog), "--store", str(store)]
    command += ["--model", tiny_spec, "--batch-size", "2", "--workers", "1", "--quiet", "--json"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seq_before = _seq(store)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and writer.poll() is None and _seq(store) == seq_before:
        time.sleep(0.01)

    overlapped: list[dict[str, Any]] = []
    n = 0
    while writer.poll() is None and n < 40:
        n += 1
        report = backup_store(store, tmp_path / "backups" / f"b{n:02d}")
        if writer.poll() is None:
            overlapped.append(assert_consistent_copy(Path(report.destination)))
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    assert overlapped, "no backup finished while the indexer was writing"
    assert len({c["seq"] for c in overlapped}) >= 2 or len(overlapped) == 1
    assert any(seq_before < c["seq"] for c in overlapped)

    final = backup_store(store, tmp_path / "backups" / "final")
    assert assert_consistent_copy(Path(final.destination))["items"] == 350
    code, out, err = run_cli(capsys, "search", "a photo", "--store", final.destination, "--json", "-k", "3")
    assert code == EXIT_OK, err
    assert len(json.loads(out)["hits"]) == 3
    # A copy taken mid-run is a working store too: the engine opens it and answers.
    code, out, err = run_cli(capsys, "search", "a photo", "--store", str(tmp_path / "backups" / "b01"), "--json")
    assert code == EXIT_OK, err


def _seq(store: Path) -> int:
    db = sqlite3.connect(f"file:{store / 'catalog.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        return int(db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0])
    finally:
        db.close()


@pytest.mark.slow
def test_concurrent_queries_while_generations_swap_and_items_change(
    tmp_path: Path, tiny_spec: str, tiny_model: Any, make_catalog: Callable[..., Path], capsys: Any
) -> None:
    """50 query threads on loopback while another thread re-publishes generations (``catalens reindex``) and
    adds and deletes items over HTTP: no 5xx, every answer names a generation that was published, and its
    hits are items that existed (never one whose delete had already returned when the query was sent)."""
    import httpx
    import uvicorn

    from catalens.search.api import create_app
    from catalens.search.engine import SearchEngine
    from catalens.search.settings import Settings

    catalog = make_catalog(30)
    store = tmp_path / "store"
    assert main(["index", str(catalog), "--store", str(store), "--model", tiny_spec, "--quiet"]) == EXIT_OK
    published = {_generation(store)}
    engine = SearchEngine.open(store, encoder=tiny_model)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Settings(store=store, refresh_interval_s=0.1), engine),  # type: ignore[call-arg]
            host="127.0.0.1",
            port=0,
            log_level="error",
        )
    )
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    while not server.started:
        assert serving.is_alive(), "the server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"

    known = {f"item-{i:03d}.jpg" for i in range(30)}
    deleted_at: dict[str, float] = {}
    stop = threading.Event()
    answers: list[tuple[float, int, int | None, list[str]]] = []
    problems: list[str] = []

    def mutate() -> None:
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                for n in range(5):
                    assert main(["reindex", "--store", str(store), "--json"]) == EXIT_OK
                    published.add(_generation(store))
                    buffer = io.BytesIO()
                    pattern_image(500 + n).save(buffer, format="PNG")
                    known.add(f"added-{n}")
                    files = {"image": ("a.png", buffer.getvalue(), "image/png")}
                    added = client.post("/v1/items", data={"id": f"added-{n}"}, files=files)
                    assert added.status_code == 201, added.text
                    victim = f"item-{n:03d}.jpg"
                    assert client.delete(f"/v1/items/{victim}").status_code == 204
                    deleted_at[victim] = time.monotonic()
        except Exception as e:  # reported by the main thread
            problems.append(f"mutator: {e!r}")
        finally:
            stop.set()

    def query(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            last = 0
            while not stop.is_set() or last < 2:
                last += 1
                sent = time.monotonic()
                response = client.post("/v1/search", json={"query": f"a photo {worker}", "k": 100})
                body = response.json()
                hits = [hit["id"] for hit in body.get("hits", [])]
                answers.append((sent, response.status_code, body.get("generation"), hits))

    try:
        writer = threading.Thread(target=mutate)
        readers = [threading.Thread(target=query, args=(w,)) for w in range(50)]
        for thread in [*readers, writer]:
            thread.start()
        for thread in [writer, *readers]:
            thread.join(timeout=300)
    finally:
        server.should_exit = True
        serving.join(timeout=30)
        engine.close()
    assert not problems, problems
    assert len(answers) >= 100
    assert {status for _, status, _, _ in answers} == {200}
    assert len(published) == 6
    generations = {generation for _, _, generation, _ in answers}
    assert generations <= published and len(generations) >= 2
    for sent, _, generation, hits in answers:
        assert len(hits) == len(set(hits)), f"duplicate hits in generation {generation}"
        assert set(hits) <= known, f"unknown ids {set(hits) - known}"
        stale = [h for h in hits if h in deleted_at and deleted_at[h] < sent]
        assert not stale, f"generation {generation} answered with deleted items {stale}"


def _generation(store: Path) -> int:
    return int(json.loads((store / "manifest.json").read_text())["index"]["generation"])
