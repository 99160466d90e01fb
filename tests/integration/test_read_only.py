"""A read replica (``Settings.read_only``, ``catalens serve --read-only``) in process: reads served, every
write route refused with 405, the store never written, and the writer's items and generations followed."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from catalens.indexer.pipeline import reindex
from catalens.indexer.records import ItemRecord
from catalens.indexer.store import CatalogStore, EmbeddedItem
from catalens.search.api import create_app
from catalens.search.cli.serve import describe_access
from catalens.search.replica import WRITE_REFUSED
from catalens.search.settings import Settings
from tests.conftest import pattern_image, unit
from tests.integration.test_api import png
from tests.integration.test_engine import DIM, random_catalog


def _contents(root: Path) -> dict[str, str]:
    """Every file of the store but SQLite's shared-memory files (a WAL reader's, not the store's data)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def _wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_read_replica_serves_reads_refuses_writes_and_never_writes_the_store(
    vector_store: Callable[..., Path],
) -> None:
    root = vector_store(random_catalog(20))
    (root / "writer.lock").unlink(missing_ok=True)  # left by the build: the replica must not make it again
    before = _contents(root)
    with TestClient(create_app(Settings(store=root, read_only=True))) as client:
        assert client.get("/v1/search", params={"q": "red shoe", "k": 3}).status_code == 200
        assert client.get("/v1/items/sku-0001").status_code == 200
        assert client.get("/v1/items/sku-0001/thumbnail").status_code == 200
        assert client.get("/v1/info").json()["read_only"] is True

        refused = [
            client.post("/v1/items", data={"id": "new"}, files={"image": ("a.png", png(), "image/png")}),
            client.delete("/v1/items/sku-0001"),
            client.post("/v1/items/sku-0001/tags", json={"attribute": "color", "value": "red", "decision": "accept"}),
        ]
        for response in refused:
            assert response.status_code == 405 and response.json() == {"detail": WRITE_REFUSED}
            assert "Allow" in response.headers and "DELETE" not in response.headers["Allow"]
        assert "GET" in refused[1].headers["Allow"]  # the item itself is still served at that path
        assert client.get("/v1/items/sku-0001").status_code == 200  # the DELETE did not happen

        paths = client.get("/openapi.json").json()["paths"]
        assert "405" in paths["/v1/items"]["post"]["responses"]
        assert "405" in paths["/v1/items/{item_id}"]["delete"]["responses"]
        assert "405" in paths["/v1/items/{item_id}/tags"]["post"]["responses"]
        assert "405" not in paths["/v1/search"]["get"]["responses"]
    assert not (root / "writer.lock").exists()
    assert _contents(root) == before


def test_writer_mode_is_unchanged(vector_store: Callable[..., Path]) -> None:
    root = vector_store(random_catalog(5))
    with TestClient(create_app(Settings(store=root))) as client:
        assert client.get("/v1/info").json()["read_only"] is False
        assert client.delete("/v1/items/sku-0001").status_code == 204
        assert "405" not in client.get("/openapi.json").json()["paths"]["/v1/items"]["post"]["responses"]


def test_read_replica_follows_the_writers_items_and_generations(
    vector_store: Callable[..., Path], tiny_model: Any, tmp_path: Path
) -> None:
    root = vector_store(random_catalog(20))
    vector = unit(np.random.default_rng(99).normal(size=DIM))
    with TestClient(create_app(Settings(store=root, read_only=True, refresh_interval_s=0.05))) as client:

        def top() -> str:
            body = {"parts": [{"vector": vector.tolist()}], "k": 1}
            response = client.post("/v1/search", json=body)
            assert response.status_code == 200
            return str(response.json()["hits"][0]["id"])

        assert top() != "late" and client.get("/v1/info").json()["generation"] == 1
        # Another process writes an item: the replica searches it before any new generation (the delta).
        pattern_image(7).save(tmp_path / "late.png")
        with CatalogStore.open(root) as writer, writer.writer_lock():
            record = ItemRecord(id="late", source=str(tmp_path / "late.png"), origin="test")
            writer.write_batch(embedded=[EmbeddedItem(record, "f" * 32, 96, 64, vector)])
        assert _wait_for(lambda: top() == "late")
        # The writer publishes a new generation: the replica swaps it in and still finds the item.
        reindex(root, "Flat")
        assert _wait_for(lambda: client.get("/v1/info").json()["generation"] == 2)
        assert top() == "late"


def test_a_replica_on_any_address_needs_no_write_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALENS_READ_ONLY", "true")
    assert Settings(store=tmp_path).read_only
    monkeypatch.delenv("CATALENS_READ_ONLY")
    line = describe_access("0.0.0.0", Settings(store=tmp_path, read_only=True), insecure_writes=False)
    assert line is not None and "read-only" in line and "405" in line
    assert describe_access("0.0.0.0", Settings(store=tmp_path), insecure_writes=False) is None


def test_a_replicas_write_routes_answer_as_its_schema_documents(tmp_path: Path, tiny_model: Any) -> None:
    """Schemathesis over the write routes of a replica (the other routes are fuzzed in test_schemathesis.py):
    valid and invalid requests alike get the documented 405, never an undocumented 400 or 422."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from catalens.search.engine import SearchEngine
    from tests.integration.test_schemathesis import CHECKS, _small_store

    def statuses(operation: Any, media_type: str | None) -> set[int]:
        modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
        seen: set[int] = set()

        @given(case=st.one_of(*(operation.as_strategy(mode, media_type=media_type) for mode in modes)))
        @settings(
            max_examples=10, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def answers_as_documented(case: Any) -> None:
            seen.add(case.call_and_validate(checks=CHECKS).status_code)

        answers_as_documented()
        return seen

    store = _small_store(tmp_path, tiny_model)
    with SearchEngine.open(store, encoder=tiny_model) as engine:
        app = create_app(Settings(store=store, refresh_interval_s=3600, read_only=True), engine)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        writes = [("POST", "/v1/items", "multipart/form-data"), ("DELETE", "/v1/items/{item_id}", None)]
        writes.append(("POST", "/v1/items/{item_id}/tags", "application/json"))
        for method, path, media_type in writes:
            assert statuses(schema[path][method], media_type) == {405}, (method, path)
