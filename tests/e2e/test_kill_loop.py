"""The kill loop, short: ``scripts/kill_loop.py`` SIGKILLs the indexer subprocess 5 times, then one clean run
must leave every image indexed exactly once, no orphan vectors or index ids, and the full-text rows in step."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from catalens.indexer.store import CatalogStore

REPO = Path(__file__).resolve().parents[2]
CLEAN = (
    "items_missing",
    "stale_items",
    "failed_items",
    "duplicates",
    "orphan_vectors",
    "items_without_vector",
    "orphan_index_ids",
    "index_missing_ids",
    "index_duplicate_ids",
    "index_stale",
    "fts_out_of_step",
)


@pytest.mark.slow
def test_five_kills_then_a_clean_run_leave_a_whole_store(tmp_path: Path, tiny_spec: str) -> None:
    work = tmp_path / "kill"
    command = [sys.executable, str(REPO / "scripts" / "kill_loop.py"), "--kills", "5", "--images", "120"]
    command += ["--model", tiny_spec, "--workdir", str(work), "--seed", "3"]
    done = subprocess.run(
        command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["rounds"] == 5 and result["kills"] + result["finished_before_kill"] == 5
    assert result["kills_after_a_commit"] >= 1, "no run was killed while writing: the loop proved nothing"
    assert {name: result[name] for name in CLEAN} == dict.fromkeys(CLEAN, 0)

    # Checked again here, through the store's API and SQLite, not only by the script's own report.
    images = sorted(p.resolve() for p in (work / "catalog").glob("*.jpg"))
    assert result["items_found"] == result["items_expected"] == len(images)
    with CatalogStore.open(work / "store") as store:
        states = store.item_states()
        assert sorted(Path(s.source).resolve() for s in states.values()) == images
        assert store.status_counts().get("failed", 0) == 0
        assert store.vector_count() == len(images)
        index = store.manifest.index
        assert index is not None and index.count == len(images) and index.seq == store.current_seq()
    db = sqlite3.connect(work / "store" / "catalog.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        fts = db.execute("SELECT COUNT(*) FROM items_fts").fetchone()[0]
        orphans = db.execute("SELECT COUNT(*) FROM vectors WHERE item_key NOT IN (SELECT key FROM items)").fetchone()
    finally:
        db.close()
    assert fts == len(images) and orphans[0] == 0


@pytest.mark.slow
def test_a_killed_ray_run_resumes_with_every_image_exactly_once(tmp_path: Path, tiny_spec: str) -> None:
    """``catalens index --ray``: the driver and the Ray it started are SIGKILLed after a batch from the cluster
    was committed; one clean run on Ray then leaves every image indexed exactly once."""
    pytest.importorskip("ray")
    work = tmp_path / "kill"
    command = [sys.executable, str(REPO / "scripts" / "kill_loop.py"), "--kills", "1", "--images", "60", "--ray"]
    command += ["--model", tiny_spec, "--workdir", str(work), "--seed", "5", "--batch-size", "4", "--window", "0.2"]
    done = subprocess.run(
        command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["kills_after_a_commit"] == 1, "the run was not killed while writing: the loop proved nothing"
    assert {name: result[name] for name in CLEAN} == dict.fromkeys(CLEAN, 0)
    assert result["items_found"] == result["items_expected"] == 60
    with CatalogStore.open(work / "store") as store:
        assert store.vector_count() == 60 and store.status_counts().get("failed", 0) == 0
