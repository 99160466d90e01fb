#!/usr/bin/env python3
"""Memory and latency of a large store: reindex and serve peak RSS, ``/v1/info``, a first catalog page, bytes per item.

Issue 13 asks that ingest, reindex, info, facets and the catalog view stay bounded in memory at a million
items. This script measures, on one store:

* the planning state of a re-run (``CatalogStore.item_states``): seconds and peak RSS of a process doing only that;
* ``catalens reindex --index FACTORY``: seconds and peak RSS (``ru_maxrss`` of the child);
* ``catalens info --json``: seconds and peak RSS;
* ``catalens serve``: RSS after start-up and its peak after ``--queries`` text queries; ``/v1/info`` (first call and
  the median of the next five) and the web page's first catalog page (``/v1/search`` filtered to a category, as
  ``web/catalog.js`` collects it) in milliseconds;
* bytes per item on disk: the SQLite files, and the published index file.

``reindex`` writes a generation, so the store is copied first unless ``--in-place`` says it already is a copy.
``-n N`` instead makes a new N-item store in a temporary folder (``scripts/scale_data.fill_store``).
The last line printed is one JSON object.

    python scripts/bench_memory.py -n 20000
    cp -r /tmp/scale-1m /tmp/mem-1m && python scripts/bench_memory.py --store /tmp/mem-1m --in-place
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

CLI = [sys.executable, "-m", "catalens.search.cli"]


def _measured(command: list[str], timeout: float) -> tuple[float, float, str]:
    """Run a child to its end: ``(seconds, peak RSS in MB, stdout)``, the peak read by a wrapper process from
    ``RUSAGE_CHILDREN`` (its only child); raises when the child fails."""
    wrapper = (
        "import resource, subprocess, sys, json, time\n"
        "t = time.perf_counter(); p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(p.stderr); sys.stdout.write(p.stdout)\n"
        "print(json.dumps({'rc': p.returncode, 's': time.perf_counter() - t,"
        " 'rss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True, timeout=timeout)
    lines = proc.stdout.rstrip("\n").splitlines()
    meta = json.loads(lines[-1])
    if meta["rc"] != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {proc.stderr[-2000:]}")
    return meta["s"], meta["rss_kb"] / 1024, "\n".join(lines[:-1])


def _planning(store: Path, timeout: float) -> tuple[float, float]:
    code = (
        "import sys, time; from catalens.indexer.store import CatalogStore\n"
        "s = CatalogStore.open(sys.argv[1]); t = time.perf_counter(); n = len(s.item_states())\n"
        "print(n, time.perf_counter() - t)\n"
    )
    _, rss, out = _measured([sys.executable, "-c", code, str(store)], timeout)
    return float(out.split()[-1]), rss


def _rss_mb(pid: int) -> tuple[float, float]:
    """``(VmRSS, VmHWM)`` of a live process in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _get(url: str, timeout: float = 120) -> tuple[float, Any]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = json.loads(response.read())
    return (time.perf_counter() - started) * 1000, body


def _serve(store: Path, queries: int, timeout: float) -> dict[str, Any]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*CLI, "serve", "--store", str(store), "--port", str(port), "--device", "cpu"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        started = time.perf_counter()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            try:
                _, ready = _get(f"{base}/readyz", timeout=5)
                if ready.get("status") == "ready":
                    break
            except OSError:
                pass
            if time.perf_counter() - started > timeout:
                raise TimeoutError("serve did not get ready")
            time.sleep(0.5)
        startup_s = time.perf_counter() - started
        rss_start, _ = _rss_mb(proc.pid)
        info_first_ms, info = _get(f"{base}/v1/info?failures=100")
        info_ms = statistics.median(_get(f"{base}/v1/info?failures=100")[0] for _ in range(5))
        category = info["facets"]["category"][0]["value"] if info["facets"].get("category") else "shoes"
        page_url = f"{base}/v1/search?q={category}&k=50&offset=0&mode=vector&category={category}"
        page_first_ms, _ = _get(page_url)
        page_ms = statistics.median(_get(page_url)[0] for _ in range(3))
        words = ("red shoes", "leather bag", "blue lamp", "wooden chair", "silver watch")
        for i in range(queries):
            _get(f"{base}/v1/search?q={words[i % len(words)].replace(' ', '+')}+{i}&k=20&mode=vector")
        rss_after, hwm = _rss_mb(proc.pid)
        return {
            "serve_startup_s": round(startup_s, 1),
            "serve_rss_after_start_mb": round(rss_start, 1),
            "serve_rss_after_queries_mb": round(rss_after, 1),
            "serve_peak_rss_mb": round(hwm, 1),
            "info_first_ms": round(info_first_ms, 1),
            "info_ms": round(info_ms, 1),
            "catalog_page_first_ms": round(page_first_ms, 1),
            "catalog_page_ms": round(page_ms, 1),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench(store: Path, factory: str, queries: int, timeout: float) -> dict[str, Any]:
    """Every measurement on ``store`` (which is written to: a copy)."""
    from catalens.indexer.store import CatalogStore

    opened = time.perf_counter()
    with CatalogStore.open(store) as handle:  # an older schema is upgraded here, once
        upgrade_s = time.perf_counter() - opened
        items = sum(handle.status_counts().values())
    result: dict[str, Any] = {"items": items, "open_upgrade_s": round(upgrade_s, 2)}
    plan_s, plan_rss = _planning(store, timeout)
    result |= {"plan_item_states_s": round(plan_s, 2), "plan_peak_rss_mb": round(plan_rss, 1)}
    seconds, rss, _ = _measured([*CLI, "reindex", "--store", str(store), "--index", factory, "--json"], timeout)
    result |= {"factory": factory, "reindex_s": round(seconds, 1), "reindex_peak_rss_mb": round(rss, 1)}
    seconds, rss, _ = _measured([*CLI, "info", "--store", str(store), "--json"], timeout)
    result |= {"cli_info_s": round(seconds, 2), "cli_info_peak_rss_mb": round(rss, 1)}
    result |= _serve(store, queries, timeout)
    with CatalogStore.open(store) as handle:
        index_path = handle.index_path()
        index_bytes = index_path.stat().st_size if index_path else 0
    sqlite_bytes = sum(p.stat().st_size for p in store.glob("catalog.sqlite3*"))
    result |= {
        "sqlite_bytes_per_item": round(sqlite_bytes / max(items, 1), 1),
        "index_bytes_per_item": round(index_bytes / max(items, 1), 1),
        "index_mb": round(index_bytes / 2**20, 1),
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, help="an existing store (copied first unless --in-place)")
    parser.add_argument("--in-place", action="store_true", help="the store is a copy this run may write to")
    parser.add_argument("-n", type=int, default=20_000, help="without --store: items of a new synthetic store")
    parser.add_argument("--index", default="Flat", help="the index factory reindex builds (default Flat)")
    parser.add_argument("--queries", type=int, default=100, help="text queries sent to the service")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per step")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        if args.store is None:
            from scale_data import fill_store

            store = Path(tmp) / "store"
            fill_store(store, args.n)
        elif args.in_place:
            store = args.store
        else:
            store = Path(tmp) / "store"
            shutil.copytree(args.store, store, ignore=shutil.ignore_patterns("writer.lock"))
        result = bench(store, args.index, args.queries, args.timeout)
    result["self_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
