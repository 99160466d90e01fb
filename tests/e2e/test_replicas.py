"""End to end: two read replicas (`catalens serve --read-only`) and one writer (`catalens index`) on one store.

Queries keep answering on both replicas while the writer indexes new images and publishes a generation, and
both then serve it: the new generation number and the new item.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import pattern_image
from tests.e2e.test_service import REPO, _catalens, env, served  # noqa: F401  (env, served: fixtures)


@pytest.mark.slow
def test_two_replicas_serve_a_new_generation_without_a_failed_query(
    tmp_path: Path,
    tiny_spec: str,
    make_catalog: Callable[..., Path],
    env: dict[str, str],  # noqa: F811
    served: Callable[..., str],  # noqa: F811
) -> None:
    catalog = make_catalog(8)
    store = tmp_path / "store"
    indexed = _catalens("index", str(catalog), "--store", str(store), "--model", tiny_spec, "--quiet", env=env)
    assert indexed.returncode == 0, indexed.stderr
    with ThreadPoolExecutor(2) as pool:  # both start (and load the model) at once
        replicas = list(pool.map(lambda _: served(store, "--read-only"), range(2)))
    for base in replicas:
        assert httpx.get(f"{base}/v1/info").json()["read_only"] is True
        refused = httpx.delete(f"{base}/v1/items/item-000.jpg")
        assert refused.status_code == 405 and "read-only" in refused.json()["detail"]
        assert refused.headers["Allow"] == "GET"

    # The writer indexes two new images and publishes generation 2 while both replicas are queried.
    for n in (500, 501):
        pattern_image(n).save(catalog / f"late-{n}.jpg")
    command = [sys.executable, "-m", "catalens.search.cli", "index", str(catalog), "--store", str(store), "--quiet"]
    writer = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    answered, failures = 0, []

    def query_all() -> list[int | None]:
        nonlocal answered
        generations: list[int | None] = []
        for base in replicas:
            response = httpx.get(f"{base}/v1/search", params={"q": "a product", "k": 3}, timeout=30)
            if response.status_code != 200:
                failures.append((base, response.status_code, response.text))
                generations.append(None)
                continue
            answered += 1
            generations.append(response.json()["generation"])
        return generations

    while writer.poll() is None:
        query_all()
    assert writer.returncode == 0, writer.communicate()[1]
    deadline = time.monotonic() + 60
    while query_all() != [2, 2] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert failures == [] and answered > 2
    for base in replicas:
        assert httpx.get(f"{base}/v1/info").json()["generation"] == 2
        found = httpx.post(f"{base}/v1/search", json={"parts": [{"item_id": "late-501.jpg"}], "k": 1}).json()
        assert found["hits"][0]["id"] == "late-501.jpg"
