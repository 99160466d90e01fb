#!/usr/bin/env python3
"""`make demo`: build the demo catalog, index it, show what is in the store, and show an incremental re-run.

Each step runs the real `catalens` command and prints it first, so the demo doubles as a tour of the CLI.
"""

from __future__ import annotations

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
    sys.path.insert(0, str(REPO / "scripts"))
    from demo_catalog import write_catalog

    manifest = write_catalog(DEMO / "catalog")
    print(f"Demo catalog: {manifest} (36 drawn products)")
    store = str(DEMO / "store")
    code = run("index", str(manifest), "--store", store)
    if code == EXIT_MODEL:
        print(
            "\nThe default pretrained model is not available on this machine (see the message above), so the demo "
            f"goes on with {FALLBACK_MODEL}: the same architecture with random weights. Everything below works "
            "the same way, but search results with random weights are meaningless.",
            flush=True,
        )
        store = str(DEMO / "store-random")
        code = run("index", str(manifest), "--store", store, "--model", FALLBACK_MODEL)
    if code != 0:
        return code
    run("info", "--store", store)
    print("\nA second run only looks at what changed:", flush=True)
    return run("index", str(manifest), "--store", store, "--quiet")


if __name__ == "__main__":
    sys.exit(main())
