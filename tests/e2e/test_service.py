"""End to end: the real `catalens index` and `catalens serve` as subprocesses, queried over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import pattern_image
from tests.e2e.serving import REPO, start_serve, stop


def _catalens(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "catalens.search.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "CATALENS_REFRESH_INTERVAL_S": "0.2"}


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[Callable[[Path], str]]:
    processes: list[subprocess.Popen[str]] = []

    def serve(store: Path, *extra: str) -> str:
        base, process = start_serve(store, *extra, env=env)
        processes.append(process)
        return base

    yield serve
    for process in processes:
        stop(process)


@pytest.mark.slow
def test_index_then_serve_then_reindex_while_serving(
    tmp_path: Path,
    tiny_spec: str,
    make_catalog: Callable[..., Path],
    env: dict[str, str],
    served: Callable[[Path], str],
) -> None:
    catalog = make_catalog(12)
    store = tmp_path / "store"
    indexed = _catalens("index", str(catalog), "--store", str(store), "--model", tiny_spec, "--quiet", env=env)
    assert indexed.returncode == 0, indexed.stderr
    base = served(store)

    hits = httpx.get(f"{base}/v1/search", params={"q": "a product", "k": 5}).json()["hits"]
    assert len(hits) == 5
    thumbnail = httpx.get(f"{base}{hits[0]['thumbnail_url']}")
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    assert httpx.get(f"{base}/v1/items/item-003.jpg/similar", params={"k": 3}).status_code == 200
    assert httpx.get(f"{base}/v1/items/missing.jpg").status_code == 404
    with (catalog / "item-000.jpg").open("rb") as fh:
        added = httpx.post(f"{base}/v1/items", data={"id": "via-http"}, files={"image": ("a.jpg", fh, "image/jpeg")})
    assert added.status_code == 201

    # The indexer publishes a new generation while the service runs; the service picks it up by itself.
    pattern_image(500).save(catalog / "late-arrival.jpg")
    again = _catalens("index", str(catalog), "--store", str(store), "--quiet", "--json", env=env)
    assert again.returncode == 0, again.stderr
    deadline = time.monotonic() + 30
    while httpx.get(f"{base}/readyz").json()["generation"] != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert httpx.get(f"{base}/readyz").json() == {"status": "ready", "generation": 2, "items": 14}
    found = httpx.post(f"{base}/v1/search", json={"parts": [{"item_id": "late-arrival.jpg"}], "k": 1}).json()["hits"]
    assert found[0]["id"] == "late-arrival.jpg"
    assert httpx.get(f"{base}/v1/items/via-http").status_code == 200
    assert "catalens_index_generation 2.0" in httpx.get(f"{base}/metrics").text


def test_serve_reports_a_missing_store(tmp_path: Path, env: dict[str, str]) -> None:
    result = _catalens("serve", "--store", str(tmp_path / "nope"), env=env)
    assert result.returncode == 3 and "no catalens store" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_serve_with_workers_hands_its_settings_to_every_worker(
    tmp_path: Path,
    tiny_spec: str,
    make_catalog: Callable[..., Path],
    env: dict[str, str],
    served: Callable[..., str],
) -> None:
    store = tmp_path / "store"
    indexed = _catalens("index", str(make_catalog(4)), "--store", str(store), "--model", tiny_spec, "--quiet", env=env)
    assert indexed.returncode == 0, indexed.stderr
    env["CATALENS_MAX_K"] = "3"
    # A variable left over in the environment: serve's own arguments (no --text-encoder) win in every worker.
    env["CATALENS_TEXT_ENCODER"] = "st:no-such-text-encoder"
    base = served(store, "--workers", "2")
    for _ in range(6):  # requests land on either worker
        assert httpx.get(f"{base}/v1/info").json()["limits"]["max_k"] == 3
        assert len(httpx.get(f"{base}/v1/search", params={"q": "a product", "k": 3}).json()["hits"]) == 3
        assert httpx.get(f"{base}/v1/search", params={"q": "a product", "k": 4}).status_code == 422
