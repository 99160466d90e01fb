"""Kill the indexer with SIGKILL at random moments, many times, then prove the store came through whole.

Each round changes the catalog (10 to 80 images rewritten, one deleted, one added, so every run has writes
to do), starts ``python -m catalens.search.cli index`` on it, and kills it after a random delay.
After the last kill one clean run completes, and the store is checked by querying SQLite directly and
reading the published FAISS generation:

- every image in the catalog is indexed exactly once (no duplicates, no item left for a deleted image);
- no orphan vectors (a vector whose item is gone or not indexed);
- no orphan index ids (an id in the FAISS generation that is not an indexed item), none missing from it;
- the FTS5 rows in step with the indexed items.

Prints one line per round and a final JSON line. Usage::

    python scripts/kill_loop.py --kills 50                # the tiny random model, written to the work dir
    python scripts/kill_loop.py --kills 50 --model catalens-mini
    python scripts/kill_loop.py --kills 10 --ray          # the run on a local Ray, driver and cluster killed

With ``--ray`` each run starts a Ray on this machine (``catalens index --ray``), and a kill takes down the
driver and the Ray it started together (its process group), as a lost machine would; the kill is aimed after
the first batch the cluster sent back was committed, since Ray's start-up takes most of a short run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def write_image(path: Path, seed: int) -> None:
    """A distinct, deterministic JPEG per seed."""
    rng = random.Random(seed)
    image = Image.new("RGB", (96, 64), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    for _ in range(6):
        x, y = rng.randrange(80), rng.randrange(48)
        box = (x, y, x + rng.randrange(4, 16), y + rng.randrange(4, 16))
        image.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)), box)
    image.save(path, quality=90)


def mutate_catalog(catalog: Path, rng: random.Random, next_seed: int) -> int:
    """Rewrite 10 to 80 images, delete one and add one; returns the next unused seed.

    Enough work that the next run spends a second or more writing batches, where the kills aim.
    """
    files = sorted(catalog.glob("*.jpg"))
    for path in rng.sample(files, min(rng.randint(10, 80), len(files))):
        write_image(path, next_seed)
        next_seed += 1
    rng.choice(files).unlink()
    write_image(catalog / f"item-{next_seed:05d}.jpg", next_seed)
    return next_seed + 1


def index_ids(native: Any) -> Any:
    """Every id in a FAISS index: the id map of a flat or HNSW index (IDMap2), or an IVF's inverted lists."""
    import faiss
    import numpy as np

    if hasattr(native, "id_map"):
        return faiss.vector_to_array(native.id_map).astype(np.int64)
    invlists = faiss.extract_index_ivf(native).invlists
    parts = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy() for i in range(invlists.nlist)]
    return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)


def integrity(store: Path, catalog: Path) -> dict[str, int]:
    """The checks, straight from SQLite and the published FAISS file (schema: indexer/store/schema.py)."""
    import faiss

    expected = {str(p.resolve()) for p in catalog.glob("*.jpg")}
    db = sqlite3.connect(f"file:{store / 'catalog.sqlite3'}?mode=ro", uri=True)
    try:
        indexed = db.execute("SELECT key, source FROM items WHERE status = 'indexed'").fetchall()
        failed = db.execute("SELECT COUNT(*) FROM items WHERE status != 'indexed'").fetchone()[0]
        sources = [Path(source).resolve().as_posix() for _, source in indexed]
        keys = {key for key, _ in indexed}
        duplicates = len(sources) - len(set(sources))
        orphan_vectors = db.execute(
            "SELECT COUNT(*) FROM vectors v LEFT JOIN items i ON i.key = v.item_key "
            "WHERE i.key IS NULL OR i.status != 'indexed'"
        ).fetchone()[0]
        without_vector = db.execute(
            "SELECT COUNT(*) FROM items i WHERE i.status = 'indexed' "
            "AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.item_key = i.key)"
        ).fetchone()[0]
        fts = {row[0] for row in db.execute("SELECT rowid FROM items_fts")}
        seq = db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0]
    finally:
        db.close()
    manifest = json.loads((store / "manifest.json").read_text())
    index = manifest.get("index") or {}
    ids: set[int] = set()
    id_count = 0
    if index:
        found = index_ids(faiss.read_index(str(store / index["file"])))
        ids, id_count = set(found.tolist()), len(found)
    return {
        "items_expected": len(expected),
        "items_found": len(set(sources) & expected),
        "items_missing": len(expected - set(sources)),
        "stale_items": len(set(sources) - expected),
        "failed_items": failed,
        "duplicates": duplicates,
        "orphan_vectors": orphan_vectors,
        "items_without_vector": without_vector,
        "orphan_index_ids": len(ids - keys),
        "index_missing_ids": len(keys - ids),
        "index_duplicate_ids": id_count - len(ids),
        "index_stale": int(index.get("seq", -1) != seq),
        "fts_out_of_step": len(fts ^ keys),
    }


def _db_files_state(store: Path) -> tuple[int, ...]:
    state: list[int] = []
    for name in ("catalog.sqlite3", "catalog.sqlite3-wal", "manifest.json"):
        try:
            info = (store / name).stat()
            state += [info.st_mtime_ns, info.st_size]
        except FileNotFoundError:
            state += [0, 0]
    return tuple(state)


def wait_for_store_activity(store: Path, process: subprocess.Popen[bytes]) -> float:
    """Block until the indexer first changes the store's files (or exits); returns that moment."""
    initial = _db_files_state(store)
    while process.poll() is None and _db_files_state(store) == initial:
        time.sleep(0.01)
    return time.monotonic()


def change_seq(store: Path) -> int:
    """The store's change sequence (one step per committed write transaction); 0 before the store exists."""
    if not (store / "catalog.sqlite3").exists():
        return 0
    db = sqlite3.connect(f"file:{store / 'catalog.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        row = db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
        return int(row[0]) if row else 0
    except sqlite3.OperationalError:
        return 0  # the schema is not created yet
    finally:
        db.close()


def published_seq(store: Path) -> int:
    """The change sequence the published index generation was built at (0 before the first publish)."""
    try:
        index = json.loads((store / "manifest.json").read_text()).get("index") or {}
    except FileNotFoundError:
        return 0
    return int(index.get("seq", 0))


def wait_for_a_commit(store: Path, process: subprocess.Popen[bytes], settle: float = 2.0) -> float:
    """Block until a result batch is committed (or the run exits); returns that moment.

    The run's first transactions (removals, failed rows) come right after it starts; those after ``settle``
    seconds of quiet are the batches streaming back from the cluster.
    """
    wait_for_store_activity(store, process)
    deadline = time.monotonic() + settle
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    planned = change_seq(store)
    while process.poll() is None and change_seq(store) == planned:
        time.sleep(0.02)
    return time.monotonic()


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.workdir or tempfile.mkdtemp(prefix="catalens-kill-"))
    catalog, store = work / "catalog", work / "store"
    catalog.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        model = str(work / "tiny-clip.json")
        Path(model).write_text(json.dumps(TINY_CONFIG))
    for i in range(args.images):
        write_image(catalog / f"item-{i:05d}.jpg", i)
    rng = random.Random(args.seed)
    next_seed = args.images
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "catalens.search.cli", "index", str(catalog), "--store", str(store)]
    command += ["--model", model, "--batch-size", str(args.batch_size), "--workers", "1", "--quiet", "--json"]
    if args.ray:
        command += ["--ray", "--ray-cpus-per-actor", "1"]
    kills = finished_first = mid_run = 0
    started = time.monotonic()
    for round_ in range(1, args.kills + 1):
        before = change_seq(store)
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=args.ray
        )
        # Interpreter and model start-up take most of a run; aim the kill at the part that writes.
        anchor = wait_for_a_commit(store, process) if args.ray else wait_for_store_activity(store, process)
        delay = rng.uniform(0.0, args.window)
        try:
            process.wait(timeout=delay)
            finished_first += 1
            outcome = f"finished before the kill (exit {process.returncode})"
            if process.returncode != 0:
                assert process.stderr is not None
                raise SystemExit(f"indexer failed in round {round_}: {process.stderr.read().decode()[-2000:]}")
        except subprocess.TimeoutExpired:
            if args.ray:  # the driver and the Ray it started (raylet, GCS, workers) go down together
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            after = change_seq(store)
            unpublished = after - published_seq(store)
            mid_run += int(after > before)
            outcome = (
                f"killed {time.monotonic() - anchor:.2f} s after its first write; "
                f"{after - before} transactions committed, {unpublished} not yet in a published generation"
            )
        if process.stderr is not None:
            process.stderr.close()
        print(f"round {round_}/{args.kills}: {outcome}", file=sys.stderr, flush=True)
        next_seed = mutate_catalog(catalog, rng, next_seed)
    final = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if final.returncode != 0:
        raise SystemExit(f"the clean run failed: {final.stderr[-2000:]}")
    summary = json.loads(final.stdout)
    checks = integrity(store, catalog)
    return {
        "rounds": args.kills,
        "kills": kills,
        "kills_after_a_commit": mid_run,
        "finished_before_kill": finished_first,
        "images": checks["items_expected"],
        "clean_run_new": summary.get("new"),
        "clean_run_updated": summary.get("updated"),
        **checks,
        "seconds": round(time.monotonic() - started, 1),
        "workdir": str(work),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50, help="rounds, each killed at a random moment")
    parser.add_argument("--images", type=int, default=300, help="images in the generated catalog")
    parser.add_argument("--model", help="model spec (default: a tiny random open_clip config)")
    parser.add_argument("--batch-size", type=int, default=8, help="small batches: many transactions to interrupt")
    parser.add_argument(
        "--window", type=float, default=1.5, help="kill at a random moment this many seconds after the first write"
    )
    parser.add_argument("--ray", action="store_true", help="index on a local Ray (catalens index --ray)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", help="where the catalog and store go (default: a new temp folder)")
    result = run(parser.parse_args())
    print(json.dumps(result))
    clean = all(
        result[k] == 0
        for k in (
            "items_missing",
            "stale_items",
            "failed_items",
            "duplicates",
            "orphan_vectors",
            "items_without_vector",
            "orphan_index_ids",
            "index_missing_ids",
            "index_duplicate_ids",
            "fts_out_of_step",
        )
    )
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()
