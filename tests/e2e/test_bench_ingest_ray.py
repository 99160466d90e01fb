"""``scripts/bench_ingest.py --ray`` runs end to end on a tiny model: it indexes the same images locally and
through a local Ray, and its final JSON line has every figure the README quotes, with both modes holding the
same items and the same vectors (to 1e-5). Speed is the script's business, not the test's: no timings are
asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_ingest.py"


@pytest.mark.slow
def test_bench_ingest_ray_mode_on_a_tiny_model(tiny_spec: str) -> None:
    pytest.importorskip("ray")
    command = [sys.executable, str(SCRIPT), "--ray", "-n", "16", "--repeats", "1", "--size", "96x64"]
    command += ["--model", tiny_spec, "--batch-size", "8"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["mode"] == "ray" and result["images"] == 16 and result["batch_size"] == 8
    assert {"ray_start_s", "ratio_embed", "ratio_call", "model_alone_images_per_s"} <= result.keys()
    figures = {"indexed", "failed", "embed_images_per_s", "call_images_per_s", "first_commit_s", "steady_images_per_s"}
    for mode in ("local", "ray"):
        assert figures <= result[mode].keys()
        assert result[mode]["indexed"] == [16] and result[mode]["failed"] == 0
    on_ray = result["ray"]
    assert on_ray["pool"]["actors"] >= 1 and on_ray["pool"]["gpus_per_actor"] == 0
    assert sum(node["processed"] for node in on_ray["nodes"]) == 16
    assert sum(node["read"] for node in on_ray["nodes"]) == 16
    assert result["same_items"] is True
    assert result["max_abs_vector_diff"] is not None and result["max_abs_vector_diff"] <= 1e-5
