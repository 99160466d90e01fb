#!/usr/bin/env python3
"""`make demo`: build the demo catalog, index it, ask it a few questions, then serve it.

Each step runs the real `catalens` command and prints it first, so the demo doubles as a tour of the CLI.
`--no-serve` stops before starting the service.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / ".demo"
CATALENS = [sys.executable, "-m", "search.cli"]
EXIT_MODEL = 4
FALLBACK_MODEL = "ViT-B-32:random"


def run(*args: str) -> int:
    print(f"\n$ catalens {shlex.join(args)}", flush=True)
    return subprocess.run([*CATALENS, *args], cwd=REPO).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-serve", action="store_true", help="do not start the service at the end")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "scripts"))
    from demo_catalog import write_catalog

    manifest = write_catalog(DEMO / "catalog")
    print(f"Demo catalog: {manifest} (36 drawn products)")
    store = str(DEMO / "store")
    code = run("index", str(manifest), "--store", store)
    if code == EXIT_MODEL:
        print(
            "\nThe default pretrained model is not available on this machine (see the message above), so the demo "
            f"goes on with {FALLBACK_MODEL}: the same architecture with random weights. Every step below runs "
            "the same way, but with random weights the rankings are meaningless.",
            flush=True,
        )
        store = str(DEMO / "store-random")
        code = run("index", str(manifest), "--store", store, "--model", FALLBACK_MODEL)
    if code != 0:
        return code
    run("info", "--store", store)
    print("\nA second run only looks at what changed:", flush=True)
    run("index", str(manifest), "--store", store, "--quiet")
    run("search", "--store", store, "red mug", "-k", "3")
    run("search", "--store", store, str(DEMO / "catalog/images/blue-cap.jpg"), "+", "red", "-k", "3")
    run("search", "--store", store, "bag", "--filter", "category=accessories", "--filter", "price=0..20", "-k", "3")
    run("similar", "--store", store, "green-sneaker", "-k", "3")
    run("classify", "--store", store, "--labels", "t-shirt,mug,cap,bag,bottle,sneaker", "--ids", "red-mug", "blue-cap")
    run("eval", str(DEMO / "catalog" / "eval.jsonl"), "--store", store)
    if args.no_serve:
        return 0
    print("\nStarting the service; open the URL below, press Ctrl-C to stop.", flush=True)
    return run("serve", "--store", store, "--port", args.port)


if __name__ == "__main__":
    sys.exit(main())
