"""``scripts/bench_tagging.py`` runs end to end on the demo catalog and keeps the promise calibration makes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_tagging.py"


@pytest.mark.slow
def test_bench_tagging_measures_the_demo_catalog(tmp_path: Path) -> None:
    # Twenty half-splits: one accepts 0-13 demo tags, too few to test a 0.9 promise (a rule whose twenty splits
    # pooled 0.77 passed single splits at 1.00).
    command = [
        sys.executable,
        str(SCRIPT),
        "--catalogs",
        "demo",
        "--shots",
        "5",
        "--repeats",
        "1",
        "--trust-splits",
        "20",
    ]
    proc = subprocess.run([*command, "--work", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    demo = json.loads(proc.stdout.strip().splitlines()[-1])["demo"]
    assert demo["items"] == 170 and demo["values"] == 13
    five = demo["learning_curve"]["shots"]["5"]  # every demo category has at least 5 + 2 items
    for method in ("zero_shot", "calibrated", "probe", "blended"):
        assert 0.0 <= five[method] <= 1.0, method
    assert five["test_items"] >= 80
    report = demo["calibration_report"]
    assert report["support"] > 0 and report["ece_after"] >= 0.0 and "held_out" in report
    held = demo["held_out"]
    assert set(held) == {"calibrated", "uncalibrated"}
    for measured in held.values():
        assert 0.0 <= measured["coverage"] <= 1.0 and measured["held_out"] >= 80
    # What calibration promised: accepted tags on held-out items, all twenty splits together, are at least
    # target - 0.05 precise, and there are enough of them to say so.
    pooled = demo["trust_pooled"]["calibrated"]
    assert demo["precision_holds"] and pooled["accepted"] >= 30, pooled
