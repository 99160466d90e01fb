"""Bad requests get a 4xx with a message, the schema says what the service accepts, and one request cannot
starve the rest: classification bounds and chunking, the model gate shared by queries and writes, finite
query vectors and ranges (HTTP, Python API and CLI alike), and an OpenAPI document that resolves.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from catalens.indexer.store import ItemFilter
from catalens.search.api import create_app
from catalens.search.catalog_writer import CatalogWriter, NewItem
from catalens.search.cli import main
from catalens.search.cli.exits import EXIT_INPUT, EXIT_USAGE
from catalens.search.engine import ClassifyLimits, QueryPart, SearchEngine, SearchOptions
from catalens.search.engine.model_access import TEXT_CHUNK
from catalens.search.errors import QueryError
from catalens.search.settings import Settings
from tests.conftest import pattern_image
from tests.integration.test_engine import DIM, random_catalog


def png(seed: int = 1) -> bytes:
    buffer = io.BytesIO()
    pattern_image(seed).save(buffer, format="PNG")
    return buffer.getvalue()


class RecordingEncoder:
    """The tiny model, recording each forward pass and how many ran at once (it must never be more than one).

    ``hold_first_batch`` makes the first multi-text pass wait, while it runs, until ``release`` is set.
    """

    def __init__(self, inner: Any, pause_s: float = 0.0) -> None:
        self._inner = inner
        self._pause_s = pause_s
        self._guard = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.calls: list[tuple[str, int]] = []
        self.hold_first_batch = False
        self.in_batch = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _enter(self, kind: str, n: int) -> None:
        with self._guard:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.calls.append((kind, n))

    def _leave(self) -> None:
        with self._guard:
            self.running -= 1

    def encode_texts(self, texts: Any, batch_size: int | None = None) -> Any:
        self._enter("texts", len(texts))
        try:
            if self.hold_first_batch and len(texts) > 1 and not self.in_batch.is_set():
                self.in_batch.set()
                assert self.release.wait(30), "the test never released the first batch"
            return self._inner.encode_texts(texts)
        finally:
            self._leave()

    def encode_images(self, images: Any, batch_size: int | None = None) -> Any:
        self._enter("images", len(images))
        try:
            if self._pause_s:
                threading.Event().wait(self._pause_s)  # widen the window in which another pass could overlap
            return self._inner.encode_images(images)
        finally:
            self._leave()


@pytest.fixture
def store_path(vector_store: Any) -> Path:
    path: Path = vector_store(random_catalog(20))
    return path


@pytest.fixture
def serve(store_path: Path, tiny_model: Any, open_service: Any) -> Callable[..., TestClient]:
    """Start the service over the store with an engine built as the test asks (limits, a recording model)."""

    def start(encoder: Any = None, **engine_args: Any) -> TestClient:
        engine = SearchEngine.open(store_path, encoder=encoder or tiny_model)
        if engine_args:
            engine = SearchEngine(engine.store, encoder or tiny_model, **engine_args)
        client: TestClient = open_service(store_path, engine=engine, refresh_interval_s=3600)
        return client

    return start


# -- classification: malformed requests -----------------------------------------------------------------


@pytest.mark.parametrize("template", ["{}{}", "{0}", "{label}", "a {} of {", "{:>9}", "no placeholder"])
def test_classify_refuses_templates_without_exactly_one_placeholder(serve: Any, template: str) -> None:
    client = serve()
    body = {"ids": ["sku-0001"], "labels": ["shoe", "bag"], "templates": [template]}
    response = client.post("/v1/classify", json=body)
    assert response.status_code == 422
    assert "template" in response.json()["detail"]


def test_classify_accepts_literal_braces_in_a_template(serve: Any) -> None:
    client = serve()
    body = {"ids": ["sku-0001"], "labels": ["shoe", "bag"], "templates": ["a {{photo}} of a {}"]}
    response = client.post("/v1/classify", json=body)
    assert response.status_code == 200
    assert {p["label"] for p in response.json()["results"][0]["predictions"]} <= {"shoe", "bag"}


def test_classify_form_with_an_unnamed_part_is_a_422(serve: Any) -> None:
    client = serve()
    boundary = "catalensboundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data\r\n\r\nshoe\r\n--{boundary}--\r\n"  # no name=
    ).encode()
    response = client.post(
        "/v1/classify", content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 422, response.text
    assert "multipart" in response.json()["detail"]


def test_classify_form_refuses_labels_sent_as_a_file(serve: Any) -> None:
    client = serve()
    files = {"image": ("a.png", png(), "image/png"), "labels": ("labels.txt", b"shoe,bag", "text/plain")}
    response = client.post("/v1/classify", files=files)
    assert response.status_code == 422
    assert response.json()["detail"] == "labels must be a text field, not a file"


def test_classify_form_still_classifies_an_upload(serve: Any) -> None:
    client = serve()
    response = client.post(
        "/v1/classify", files={"image": ("a.png", png(), "image/png")}, data={"labels": "shoe,bag", "top_k": "1"}
    )
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["id"] is None and result["predictions"][0]["label"] in {"shoe", "bag"}


# -- classification: bounded work, and no starving ------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "templates", "limit"),
    [
        ([f"label {i}" for i in range(6)], None, "max_labels"),
        (["shoe"], [f"{{}} {i}" for i in range(5)], "max_templates"),
        (["x" * 41], None, "max_label_chars"),
        (["shoe"], ["a photo of a {} " + "y" * 40], "max_template_chars"),
        (["a", "b", "c"], ["{}", "a {}", "the {}"], "max_prompts"),
    ],
)
def test_classify_over_a_limit_is_a_422_naming_it(
    serve: Any, labels: list[str], templates: list[str] | None, limit: str
) -> None:
    limits = ClassifyLimits(max_labels=5, max_templates=4, max_label_chars=40, max_template_chars=40, max_prompts=8)
    client = serve(classify_limits=limits)
    body: dict[str, Any] = {"ids": ["sku-0001"], "labels": labels}
    if templates is not None:
        body["templates"] = templates
    response = client.post("/v1/classify", json=body)
    assert response.status_code == 422
    assert f"({limit})" in response.json()["detail"]
    form = {"labels": ",".join(labels), **({"templates": templates} if templates else {})}
    upload = client.post("/v1/classify", files={"image": ("a.png", png(), "image/png")}, data=form)
    assert upload.status_code == 422 and f"({limit})" in upload.json()["detail"]


def test_classify_limits_are_service_settings_shown_by_info(
    store_path: Path, tiny_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``CATALENS_CLASSIFY_MAX_*`` reach the engine the service opens, and ``/v1/info`` tells clients."""
    monkeypatch.setenv("CATALENS_CLASSIFY_MAX_LABELS", "2")
    settings = Settings(store=store_path, refresh_interval_s=3600)
    with TestClient(create_app(settings)) as client:
        refused = client.post("/v1/classify", json={"ids": ["sku-0001"], "labels": ["a", "b", "c"]})
        assert refused.status_code == 422 and "(max_labels)" in refused.json()["detail"]
        assert client.post("/v1/classify", json={"ids": ["sku-0001"], "labels": ["a", "b"]}).status_code == 200
        assert client.get("/v1/info").json()["limits"]["classify"]["max_labels"] == 2


def test_the_default_limits_refuse_the_20_mb_request_before_embedding_anything(serve: Any, tiny_model: Any) -> None:
    """The request of the issue: 1,000 labels of 20 KB and 32 templates, under the upload limit."""
    recording = RecordingEncoder(tiny_model)
    client = serve(encoder=recording)
    labels = [f"{i:05d}" + "x" * 20_000 for i in range(1000)]
    templates = [f"{{}} {i}" for i in range(32)]
    response = client.post("/v1/classify", json={"ids": ["sku-0001"], "labels": labels, "templates": templates})
    assert response.status_code == 422
    assert "max_label_chars" in response.json()["detail"]
    assert recording.calls == []


def test_a_query_runs_between_the_chunks_of_a_large_label_set(store_path: Path, tiny_model: Any) -> None:
    """300 labels x 4 templates take many chunked passes; a query arriving during the first runs right after it."""
    recording = RecordingEncoder(tiny_model)
    recording.hold_first_batch = True
    engine = SearchEngine.open(store_path, encoder=recording)
    labels = [f"label {i}" for i in range(300)]
    try:
        with ThreadPoolExecutor(2) as pool:
            tagging = pool.submit(engine.label_vectors, labels)
            assert recording.in_batch.wait(30)
            query = pool.submit(engine.search_text, "red shoe", SearchOptions(k=3, mode="vector"))
            for _ in range(3000):  # until the query waits for the model (it queues behind the running pass)
                if engine.model_queue >= 2:
                    break
                threading.Event().wait(0.01)
            assert engine.model_queue == 2
            recording.release.set()
            assert len(query.result(60).hits) == 3
            vectors = tagging.result(120)
    finally:
        engine.close()
    assert vectors.shape == (300, DIM)
    text_calls = [n for kind, n in recording.calls if kind == "texts"]
    assert text_calls[0] == TEXT_CHUNK and text_calls[1] == 1  # the query's pass came second
    assert len(text_calls) == 1 + -(-1200 // TEXT_CHUNK)
    assert recording.most_at_once == 1


# -- one owner of the model: writes and queries go through the same gate ----------------------------------


def test_concurrent_adds_and_queries_never_run_two_forward_passes_at_once(store_path: Path, tiny_model: Any) -> None:
    recording = RecordingEncoder(tiny_model, pause_s=0.005)
    engine = SearchEngine.open(store_path, encoder=recording)
    writer = CatalogWriter(engine)

    def add(n: int) -> str:
        return writer.add(NewItem(id=f"new-{n}", title=f"new {n}"), data=png(100 + n)).id

    def query(n: int) -> int:
        image = pattern_image(200 + n)
        return len(engine.search([QueryPart(image=image)], SearchOptions(k=5, mode="vector")).hits)

    try:
        with ThreadPoolExecutor(6) as pool:
            added = [pool.submit(add, n) for n in range(8)]
            found = [pool.submit(query, n) for n in range(8)]
            assert sorted(f.result(120) for f in added) == sorted(f"new-{n}" for n in range(8))
            assert all(f.result(120) == 5 for f in found)
        assert recording.most_at_once == 1
        assert sum(1 for kind, _ in recording.calls if kind == "images") == 16
        assert {h.id for h in engine.search_text("x", SearchOptions(k=50, mode="vector")).hits} >= {
            f"new-{n}" for n in range(8)
        }
    finally:
        engine.close()


# -- query vectors, ranges and scores: finite, or refused ---------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e308])
def test_a_query_vector_that_is_not_finite_or_huge_is_a_422(serve: Any, bad: float) -> None:
    client = serve()
    vector = [0.1] * DIM
    vector[3] = bad
    body = json.dumps({"parts": [{"vector": vector}], "k": 3})  # NaN and Infinity as Python's JSON writes them
    response = client.post("/v1/search", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "vector" in response.json()["detail"]


def test_a_query_vector_of_1e308_everywhere_is_refused_by_the_python_api(store_path: Path, tiny_model: Any) -> None:
    with SearchEngine.open(store_path, encoder=tiny_model) as engine:
        for values in (np.full(DIM, np.nan), np.full(DIM, 1e308), np.full(DIM, np.inf)):
            with pytest.raises(QueryError, match="query vector"):
                engine.search([QueryPart(vector=values)], SearchOptions(mode="vector"))
        with pytest.raises(QueryError, match="weight"):
            engine.search([QueryPart(text="shoe", weight=float("nan"))], SearchOptions(mode="vector"))
        with pytest.raises(QueryError, match="min_score"):
            engine.search_text("shoe", SearchOptions(min_score=float("nan")))
        with pytest.raises(QueryError, match="price range"):
            engine.search_text("shoe", SearchOptions(where=ItemFilter(price_min=50, price_max=10)))
        good = engine.search([QueryPart(vector=np.ones(DIM) * 3)], SearchOptions(k=2, mode="vector"))
        assert len(good.hits) == 2


@pytest.mark.parametrize(
    "params",
    [
        {"q": "shoe", "attr": "price=50..10"},
        {"q": "shoe", "attr": "price:nan..10"},
        {"q": "shoe", "price_min": 50, "price_max": 10},
        {"q": "shoe", "min_score": "nan"},
    ],
)
def test_inverted_or_nan_ranges_over_http_are_a_422(serve: Any, params: dict[str, Any]) -> None:
    response = serve().get("/v1/search", params=params)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_inverted_price_filter_in_a_post_body_is_a_422(serve: Any) -> None:
    response = serve().post("/v1/search", json={"query": "shoe", "filters": {"price_min": 50, "price_max": 10}})
    assert response.status_code == 422


def test_cli_refuses_nan_scores_and_weights_and_inverted_prices(
    store_path: Path, tiny_spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for flag in (["--min-score", "nan"], ["--vector-weight", "nan"], ["--rrf-k", "inf"], ["--lexical-weight", "-1"]):
        with pytest.raises(SystemExit) as exited:
            main(["search", "shoe", "--store", str(store_path), *flag])
        assert exited.value.code == EXIT_USAGE
        assert "catalens: error:" in capsys.readouterr().err
    code = main(["search", "shoe", "--store", str(store_path), "--filter", "price=50..10"])
    assert code == EXIT_INPUT
    assert "price range 50..10 is empty" in capsys.readouterr().err


# -- what a long schemathesis run found: control characters and broken multipart bodies ---------------------


@pytest.mark.parametrize("mode", ["hybrid", "lexical"])
def test_a_nul_or_control_character_in_query_text_is_a_word_break_not_a_500(serve: Any, mode: str) -> None:
    client = serve()
    posted = client.post("/v1/search", json={"parts": [{"text": "0\u0000"}], "mode": mode, "k": 3})
    assert posted.status_code == 200, posted.text
    got = client.get("/v1/search", params={"q": "item\u0000\u0002 1", "mode": mode, "k": 3})
    assert got.status_code == 200, got.text
    plain = client.get("/v1/search", params={"q": "item 1", "mode": mode, "k": 3})
    assert [h["id"] for h in got.json()["hits"]] == [h["id"] for h in plain.json()["hits"]]


@pytest.mark.parametrize(
    "body",
    [
        b"--B\r\n634722--B--\r\n",  # a part with no headers at all
        b'--B\r\nContent-Disposition\x1f: form-data; name="image"\r\n\r\nx\r\n--B--\r\n',  # control char, header
    ],
)
@pytest.mark.parametrize("route", ["/v1/search/image", "/v1/items"])
def test_a_multipart_body_starlette_cannot_parse_is_a_422_naming_the_form(serve: Any, route: str, body: bytes) -> None:
    client = serve()
    response = client.post(route, content=body, headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("body: unreadable multipart form: ")


def test_json_that_is_not_utf8_is_still_a_422_saying_so(serve: Any) -> None:
    client = serve()
    response = client.post("/v1/search", content=b'{"query": "caf\xe9"}', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"] == "body: the request body cannot be read as JSON (it is not UTF-8 text)"


# -- the schema says what is accepted ----------------------------------------------------------------------


def test_an_empty_search_body_is_refused_and_the_schema_says_so(serve: Any) -> None:
    client = serve()
    response = client.post("/v1/search", json={})
    assert response.status_code == 422
    assert "query" in response.json()["detail"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["SearchRequest"]
    assert {"required": ["query"], "properties": {"query": {"type": "string"}}} in schema["anyOf"]


def test_the_openapi_document_resolves_and_declares_item_statuses_and_jpeg(serve: Any) -> None:
    document = serve().get("/openapi.json").json()

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    components = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in components, ref
    paths = document["paths"]
    for route in ("/v1/items/{item_id}/image", "/v1/items/{item_id}/thumbnail"):
        responses = paths[route]["get"]["responses"]
        assert list(responses["200"]["content"]) == ["image/jpeg"] and "404" in responses
    assert "404" in paths["/v1/items/{item_id}"]["get"]["responses"]
    assert "404" in paths["/v1/items/{item_id}"]["delete"]["responses"]
    classify_body = paths["/v1/classify"]["post"]["requestBody"]["content"]
    assert set(classify_body) == {"application/json", "multipart/form-data"}
