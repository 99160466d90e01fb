#!/usr/bin/env python3
"""`make demo`: index the demo catalog that ships in the repository, ask it a few questions, then serve it.

Each step runs the real `catalens` command and prints it first, so the demo doubles as a tour of the CLI.
The catalog is 170 product shots of OpenMoji icons (``scripts/data/demo_catalog``, CC BY-SA 4.0). The
store uses the default model spec ``auto``: the pretrained ViT-B-32 when its weights are cached or
downloadable, else the shipped catalens-mini, so the demo works offline. `--no-serve` stops before
starting the service.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from catalens.search.cli.exits import EXIT_STORE

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / ".demo"
CATALOG = REPO / "scripts" / "data" / "demo_catalog"
CATALENS = [sys.executable, "-m", "catalens.search.cli"]


def run(*args: str) -> int:
    print(f"\n$ catalens {shlex.join(args)}", flush=True)
    return subprocess.run([*CATALENS, *args], cwd=REPO).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-serve", action="store_true", help="do not start the service at the end")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()
    manifest = CATALOG / "catalog.csv"
    print(f"Demo catalog: {manifest} (170 product shots; see {CATALOG / 'ATTRIBUTION.md'})")
    store = str(DEMO / "store")
    code = run("index", str(manifest), "--store", store)
    if code == EXIT_STORE and (DEMO / "store").is_dir():
        # The demo's store is made from files in the repository, so when an earlier demo left one this
        # catalens refuses (made with other weights of the model, e.g. before an upgrade), rebuild it.
        print("The demo store from an earlier run cannot be reused (see above); re-embedding it.", flush=True)
        code = run("index", str(manifest), "--store", store, "--rebuild")
    if code != 0:
        return code
    run("info", "--store", store)
    print("\nA second run only looks at what changed:", flush=True)
    run("index", str(manifest), "--store", store, "--quiet")
    run("search", "--store", store, "red apple", "-k", "3", "--explain")
    run("search", "--store", store, "kestrel shirt", "-k", "3", "--explain")  # a brand: found by words
    run("search", "--store", store, "a bag for school", "-k", "3")
    run("search", "--store", store, str(CATALOG / "images" / "guitar.jpg"), "-k", "3")
    run("search", "--store", store, "a bag", "--filter", "category=accessories", "--filter", "price=0..150", "-k", "3")
    run("similar", "--store", store, "teddy-bear", "-k", "3")
    labels = "clothing,shoes,accessories,food,drinks,kitchen,household,sports,electronics,toys,music,tools,stationery"
    run("classify", "--store", store, "--labels", labels, "--ids", "red-apple", "running-shoe", "guitar", "laptop")
    taxonomy = str(REPO / "scripts" / "data" / "taxonomies" / "demo.yaml")
    run("tag", "run", "--store", store, "--taxonomy", taxonomy, "--quiet")
    run("tag", "review", "--store", store, "--limit", "5")
    run("tag", "audit", "--store", store, "--taxonomy", taxonomy, "--attribute", "category", "--limit", "5")
    run("eval", str(CATALOG / "eval.jsonl"), "--store", store, "--mode", "vector,lexical,hybrid")
    if args.no_serve:
        return 0
    print("\nStarting the service; open the URL below, press Ctrl-C to stop.", flush=True)
    return run("serve", "--store", store, "--port", args.port)


if __name__ == "__main__":
    sys.exit(main())
