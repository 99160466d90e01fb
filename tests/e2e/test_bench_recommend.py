"""``scripts/bench_recommend.py`` runs end to end on a tiny synthetic store and reports sane numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_recommend.py"
VARIANTS = ("plain", "average", "best_score_5", "mmr_0.3", "max_per_brand_2")


def test_bench_recommend_measures_latency_and_quality(tmp_path: Path) -> None:
    command = [sys.executable, str(SCRIPT), "--store", str(tmp_path / "store"), "--items", "600", "--factory", "Flat"]
    options = ["--rounds", "6", "--quality", "store", "--quality-queries", "6"]
    proc = subprocess.run([*command, *options], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["items"] == 600
    latency = report["latency"]
    for name in VARIANTS:
        assert 0 < latency[name]["p50_ms"] <= latency[name]["p90_ms"] and latency[name]["ratio"] > 0, name
    assert latency["plain"]["ratio"] == 1.0 and isinstance(latency["all_within_2x"], bool)
    quality = report["quality"]
    assert quality["catalog"] == "store" and quality["queries"] == 6
    ils = quality["intra_list_similarity"]
    assert set(ils) == {"0.0", "0.3", "0.7"} and ils["0.0"] >= ils["0.7"]
    for name, cap in (("brand", 2), ("category", 3)):
        share = quality[f"same_{name}_share"]
        assert 0 <= share[f"max_per_{cap}"] <= cap / 10 + 1e-9 and 0 <= share["without_max_per"] <= 1
        assert quality[f"most_per_{name}"][f"max_per_{cap}"] <= cap


def test_the_demo_store_is_re_embedded_when_the_model_changes(
    tmp_path: Path, tiny_spec: str, other_tiny_spec: str
) -> None:
    """A demo store left by other weights would report the old model's figures: it is brought up to date first."""
    bench = load_script("bench_recommend")
    with bench.demo_engine(tmp_path, tiny_spec) as engine:
        assert engine.store.manifest.model == tiny_spec
        count = engine.store.vector_count()
    with bench.demo_engine(tmp_path, other_tiny_spec) as engine:
        assert (engine.store.manifest.model, engine.store.manifest.dim) == (other_tiny_spec, 24)
        assert engine.store.vector_count() == count == 170
