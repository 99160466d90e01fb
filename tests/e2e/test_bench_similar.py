"""``scripts/bench_similar.py`` runs end to end on a small store and reports what words add to ``similar``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.integration.test_engine import random_catalog

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_similar.py"
KINDS = ("alpha", "bravo", "charlie")


def test_bench_similar_measures_quality_and_latency_per_mode(vector_store: Callable[..., Path]) -> None:
    """Random pictures, titles naming the category: words put a category's items together, pictures do not."""
    catalog = random_catalog(60)
    for i, (_, fields) in enumerate(catalog.values()):
        fields["category"] = KINDS[i % 3]
        fields["title"] = f"{KINDS[i % 3]} thing{i}"
    store = vector_store(catalog)
    command = [sys.executable, str(SCRIPT), "--store", str(store), "--items", "100", "--rounds", "2"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["sampled"] == report["items_in_store"] == 60
    assert report["chance"] == round(19 / 59, 4)
    vector, hybrid = report["modes"]["vector"], report["modes"]["hybrid"]
    assert hybrid["at3"] == hybrid["at1"] == 1.0 and vector["at3"] < 0.6
    for row in (vector, hybrid):
        assert 0 < row["p50_ms"] <= row["p99_ms"]
    assert report["hybrid_over_vector_p50"] == round(hybrid["p50_ms"] / vector["p50_ms"], 2)
