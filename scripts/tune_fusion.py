"""Choose hybrid ranking's fusion defaults by measurement: a grid over the lexical weight and the rank constant.

Each (store, labelled set) pair is evaluated with ``catalens eval``'s own code in vector, lexical and
hybrid mode; hybrid is run for every grid point. A default must not make any kind of catalog much worse
than the better of the two single modes would be on it, so the objective is the worst case over the sets of
hybrid MRR / max(vector MRR, lexical MRR); the mean over the sets breaks ties. Prints a table per set, then
a final JSON line with the winner.

    python scripts/tune_fusion.py --pair STORE SET.jsonl [--pair STORE2 SET2.jsonl ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

LEXICAL_WEIGHTS = (0.5, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0)
RANK_CONSTANTS = (10.0, 30.0, 60.0, 100.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", nargs=2, action="append", metavar=("STORE", "SET"), required=True)
    parser.add_argument("--metric", default="mrr", help="retrieval metric to maximise (mrr, recall@1, ...)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from catalens.search.engine import Fusion, SearchEngine
    from catalens.search.evaluation import evaluate, load_eval_set

    results: dict[str, dict[str, Any]] = {}
    grid = list(itertools.product(LEXICAL_WEIGHTS, RANK_CONSTANTS))
    for store, set_path in args.pair:
        cases = load_eval_set(set_path)
        engine = SearchEngine.open(store)
        try:
            rows: dict[str, Any] = {
                mode: evaluate(engine, cases, mode=mode).retrieval for mode in ("vector", "lexical")
            }
            for weight, constant in grid:
                engine.fusion = Fusion(lexical_weight=weight, rank_constant=constant)
                rows[f"hybrid w={weight:g} k={constant:g}"] = evaluate(engine, cases, mode="hybrid").retrieval
        finally:
            engine.close()
        results[f"{set_path} on {store}"] = rows
        print(f"\n{set_path} on {store} ({engine.encoder.spec})")
        print(f"{'ranking':<26}{'R@1':>8}{'R@5':>8}{'R@10':>8}{'MRR':>8}")
        for name, metrics in rows.items():
            print(
                f"{name:<26}{metrics['recall@1']:8.3f}{metrics['recall@5']:8.3f}"
                f"{metrics['recall@10']:8.3f}{metrics['mrr']:8.3f}"
            )

    def ratios(weight: float, constant: float) -> list[float]:
        key = f"hybrid w={weight:g} k={constant:g}"
        metric = args.metric
        return [
            rows[key][metric] / max(rows["vector"][metric], rows["lexical"][metric], 1e-9) for rows in results.values()
        ]

    def mean(weight: float, constant: float) -> float:
        key = f"hybrid w={weight:g} k={constant:g}"
        return sum(rows[key][args.metric] for rows in results.values()) / len(results)

    def score(point: tuple[float, float]) -> dict[str, float]:
        return {"worst_ratio": round(min(ratios(*point)), 4), f"mean_{args.metric}": round(mean(*point), 4)}

    best = max(grid, key=lambda point: (round(min(ratios(*point)), 4), mean(*point)))
    default = (1.0, 60.0)
    summary = {
        "metric": args.metric,
        "best": {"lexical_weight": best[0], "rank_constant": best[1], **score(best)},
        "textbook_default": {"lexical_weight": 1.0, "rank_constant": 60.0, **score(default)},
        "sets": {
            name: {
                mode: rows[mode]
                for mode in ("vector", "lexical", f"hybrid w={best[0]:g} k={best[1]:g}", "hybrid w=1 k=60")
            }
            for name, rows in results.items()
        },
    }
    print(
        f"\nBest: lexical weight {best[0]:g}, rank constant {best[1]:g} ({score(best)}); "
        f"textbook w=1 k=60: {score(default)}"
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
