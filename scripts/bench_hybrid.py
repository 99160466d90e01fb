"""Vector vs lexical vs hybrid ranking, measured with `catalens eval` on three catalogs built here.

1. **text**: the synthetic text-bearing catalog (`scripts/make_text_catalog.py`, seed 7): brands and model
   numbers printed on the products, titles that never mention them; indexed with `--ocr`. Queries: each
   printed brand (rank 1 is the target) and each model number.
2. **demo**: the shipped demo catalog with its titles, descriptions and brands, captioned with
   `--caption attributes`; its 244 labelled queries.
3. **demo, images only**: the same images with no metadata at all (a folder-like manifest of id and
   image), so words come only from the attribute captions; the same queries.

Every step runs the real `catalens` CLI. Prints a table, then one JSON line.

    .venv/bin/python scripts/bench_hybrid.py [--model catalens-mini] [--n 100] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "scripts" / "data" / "demo_catalog"
MODES = "vector,lexical,hybrid"


def catalens(*args: str) -> Any:
    """Run the CLI with ``--json`` and return its parsed output."""
    done = subprocess.run(
        [sys.executable, "-m", "catalens.search.cli", *args, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"catalens {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def by_mode(report: Any) -> dict[str, dict[str, float]]:
    stores = report["stores"] if "stores" in report else [report]
    return {r["mode"]: r["retrieval"] for r in stores}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="catalens-mini")
    parser.add_argument("--n", type=int, default=100, help="items in the text catalog")
    parser.add_argument("--workdir", help="keep the catalogs and stores here (default: a temp dir)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="catalens-hybrid-"))
    work.mkdir(parents=True, exist_ok=True)

    text = work / "text-catalog"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_text_catalog.py"), "--out", str(text), "--n", str(args.n)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    rows = [json.loads(line) for line in (text / "eval.jsonl").read_text().splitlines() if line.strip()]
    (work / "brands.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[: args.n]))
    (work / "models.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[args.n :]))
    bare = work / "demo-images-only.csv"
    with (DEMO / "catalog.csv").open() as source, bare.open("w", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(["id", "image"])
        for row in csv.DictReader(source):
            writer.writerow([row["id"], str(DEMO / row["image"])])

    common = ["--model", args.model, "--quiet"]
    indexed = {
        "text": catalens("index", str(text / "catalog.csv"), "--store", str(work / "text-store"), "--ocr", *common),
        "demo": catalens(
            "index", str(DEMO / "catalog.csv"), "--store", str(work / "demo-store"), "--caption", "attributes", *common
        ),
        "bare": catalens("index", str(bare), "--store", str(work / "bare-store"), "--caption", "attributes", *common),
    }
    results = {
        "text catalog, brand queries": by_mode(
            catalens("eval", str(work / "brands.jsonl"), "--store", str(work / "text-store"), "--mode", MODES)
        ),
        "text catalog, model-number queries": by_mode(
            catalens("eval", str(work / "models.jsonl"), "--store", str(work / "text-store"), "--mode", MODES)
        ),
        "demo catalog": by_mode(
            catalens("eval", str(DEMO / "eval.jsonl"), "--store", str(work / "demo-store"), "--mode", MODES)
        ),
        "demo images only, attribute captions": by_mode(
            catalens("eval", str(DEMO / "eval.jsonl"), "--store", str(work / "bare-store"), "--mode", MODES)
        ),
    }
    print(f"model {args.model}; stores in {work}", file=sys.stderr)
    print(f"{'set':<40}{'mode':<9}{'R@1':>7}{'R@5':>7}{'R@10':>7}{'MRR':>7}", file=sys.stderr)
    for name, modes in results.items():
        for mode, metrics in modes.items():
            print(
                f"{name:<40}{mode:<9}{metrics['recall@1']:7.3f}{metrics['recall@5']:7.3f}"
                f"{metrics['recall@10']:7.3f}{metrics['mrr']:7.3f}",
                file=sys.stderr,
            )
    ocr = next(p for p in indexed["text"]["passes"] if p["kind"] == "ocr")
    print(
        json.dumps(
            {
                "model": args.model,
                "text_items": args.n,
                "ocr": {"spec": ocr["spec"], "seconds": ocr["seconds"], "items_per_second": ocr["items_per_second"]},
                "brand_rank1": {mode: m["recall@1"] for mode, m in results["text catalog, brand queries"].items()},
                "results": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
