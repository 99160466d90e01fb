"""``scripts/bench_memory.py`` runs end to end on a small synthetic store and reports every figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_memory.py"


@pytest.mark.slow
def test_bench_memory_prints_every_figure_as_its_last_line() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "-n", "2000", "--queries", "3"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["items"] == 2000
    for name in ("reindex_peak_rss_mb", "serve_peak_rss_mb", "info_ms", "catalog_page_ms", "sqlite_bytes_per_item"):
        assert result[name] > 0, name
    assert result["index_bytes_per_item"] >= 2048  # 512 float32 per item in a Flat index
