"""The OpenAPI surface fuzzed with schemathesis: no 5xx, and every answer is one the schema documents.

Schemathesis reads ``/openapi.json`` from the app in-process (no socket), generates requests from it (and
invalid ones against it) for every route, and checks each response: never a server error, a documented
status code and content type, and a body matching the documented schema. A bounded, derandomized number of
examples per route keeps it deterministic and quick; the store is small and the model tiny. A longer, random
run (``CATALENS_FUZZ_EXAMPLES``) found a NUL in query text (a 500 from FTS5) and multipart bodies Starlette cannot
parse (an undocumented 400); both have their own tests in ``test_requests.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402  (after the importorskip above)
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from catalens.search.api import create_app  # noqa: E402
from catalens.search.engine import SearchEngine  # noqa: E402
from catalens.search.settings import Settings  # noqa: E402
from tests.conftest import pattern_image, unit  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: Examples per route and media type. ``CATALENS_FUZZ_EXAMPLES=N`` asks for a longer hunt with fresh random
#: examples each run (1,500 a route take about 4 minutes here); CI keeps the quick, derandomized default.
LONG_RUN = os.environ.get("CATALENS_FUZZ_EXAMPLES", "").strip()
EXAMPLES_PER_ROUTE = int(LONG_RUN) if LONG_RUN else 20


def _small_store(root: Path, model: Any, n: int = 12) -> Path:
    """A store of ``n`` items with known random vectors, images on disk, a category, price and attribute."""
    from catalens.indexer.pipeline import reindex
    from catalens.indexer.records import ItemRecord
    from catalens.indexer.store import CatalogStore, EmbeddedItem

    store_path = root / "store"
    store = CatalogStore.create(store_path, model.spec, model.dim, "Flat")
    rng = np.random.default_rng(7)
    embedded = []
    for i in range(n):
        image = root / f"{i}.png"
        pattern_image(i).save(image)
        fields = {"category": "shoes" if i % 2 else "bags", "price": float(i), "attributes": {"color": "red"}}
        record = ItemRecord(id=f"sku-{i}", source=str(image), origin="test", title=f"item {i}", **fields)
        embedded.append(EmbeddedItem(record, f"{i:032x}", 96, 64, unit(rng.normal(size=model.dim))))
    with store.writer_lock():
        store.write_batch(embedded=embedded)
    store.close()
    reindex(store_path, "Flat")
    return store_path


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory, tiny_model: Any) -> Iterator[Any]:
    path = _small_store(tmp_path_factory.mktemp("fuzzed"), tiny_model)
    engine = SearchEngine.open(path, encoder=tiny_model)
    # No background refresh during the run: the engine is closed when the module ends, before interpreter exit.
    app = create_app(Settings(store=path, refresh_interval_s=3600, allow_url_items=False), engine)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    engine.close()


def _operations() -> list[tuple[str, str, str | None]]:
    """Every documented (method, path, request media type), read from the app's schema without a store.

    A route that takes several media types (classify: JSON or a multipart form) is fuzzed once per type.
    """
    document = create_app(Settings(store=Path("unused"))).openapi()
    found: list[tuple[str, str, str | None]] = []
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            media_types = list(spec.get("requestBody", {}).get("content", {})) or [None]
            found.extend((method.upper(), path, media_type) for media_type in media_types)
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "media_type"), _operations(), ids=lambda value: str(value))
def test_every_route_answers_as_documented(api_schema: Any, method: str, path: str, media_type: str | None) -> None:
    operation = api_schema[path][method]
    # Valid requests and requests that break the schema (each must get a documented 4xx, never a 5xx).
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, media_type=media_type),
        operation.as_strategy(GenerationMode.NEGATIVE, media_type=media_type),
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        derandomize=not LONG_RUN,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    answers_as_documented()
