"""Operational routes: liveness, readiness, Prometheus metrics, store facts, facets and failures."""

from __future__ import annotations

import dataclasses
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from catalens.indexer.publish import index_summary
from catalens.indexer.store import CaptionSources, CatalogStore
from catalens.search.engine import SearchEngine
from catalens.search.engine.retrieval import hybrid_matches_captions
from catalens.search.routes.deps import ACCESS_RESPONSES, READ, EngineDep, SettingsDep
from catalens.search.schemas import (
    CaptionSourcesOut,
    ClassifyLimitsOut,
    FacetValue,
    FailedItemOut,
    IndexOut,
    InfoOut,
    LimitsOut,
    PriceRangeOut,
)

router = APIRouter(tags=["operations"])

#: Attribute facets listed by ``/v1/info`` at most (besides category), the most widely set attributes first.
MAX_ATTRIBUTE_FACETS = 12


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the model and index are loaded",
    responses={503: {"description": "still loading the model or the index"}},
)
def readyz(request: Request) -> JSONResponse:
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    return JSONResponse({"status": "ready", "generation": engine.generation, "items": engine.size})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/v1/info",
    response_model=InfoOut,
    summary="The store: model, counts, index, facets, failures",
    dependencies=[READ],
    responses=ACCESS_RESPONSES,
)
def info(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    failures: Annotated[int, Query(ge=0, le=1000, description="how many failed items to list")] = 20,
) -> InfoOut:
    store = engine.store
    manifest = store.manifest
    facts = _store_facts(request, engine, failures)
    return InfoOut(
        model=manifest.model,
        model_digest=manifest.model_digest,
        dim=manifest.dim,
        items=facts["items"],
        index_factory=manifest.index.factory if manifest.index else manifest.index_factory,
        generation=engine.generation,
        index=IndexOut(**index_summary(manifest.index)) if manifest.index else None,
        index_count=facts["index_count"],
        facets=facts["facets"],
        price_range=facts["price_range"],
        passes=facts["passes"],
        captions=_captions(facts["captions"], engine),
        failures=facts["failures"][:failures],
        limits=LimitsOut(
            max_k=settings.max_k,
            max_upload_bytes=settings.max_upload_bytes,
            classify=ClassifyLimitsOut(**dataclasses.asdict(engine.classify_limits)),
        ),
        index_problem=engine.index_problem,
        tags=facts["tags"],
        read_only=settings.read_only,
    )


def _captions(sources: CaptionSources, engine: SearchEngine) -> CaptionSourcesOut:
    """The caption counts, and whether the service's hybrid ranking matches them (see ``Fusion.vector_captions``)."""
    return CaptionSourcesOut(
        from_vectors=sources.from_vectors,
        other=sources.other,
        matched_by_hybrid=hybrid_matches_captions(sources, engine.fusion),
    )


class _FactsCache:
    """The store facts of the last ``/v1/info``, reused until the database changes.

    Keyed by the store's change stamp (any commit, by this process or another, changes it), so an answer is
    never stale; it spares the enrichment counts (a join over every caption and OCR row) and the rest on
    every page load of a large catalog. One computation at a time: concurrent requests wait for it.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[Any, ...] | None = None
        self.facts: dict[str, Any] = {}


def _store_facts(request: Request, engine: SearchEngine, failures: int) -> dict[str, Any]:
    """Counts (items, and vectors searchable: a count over every vector), facets, price range, passes, tag
    counts per attribute and decision, and the ``failures`` most recent failures, cached per change of the store."""
    store: CatalogStore = engine.store
    cache: _FactsCache | None = getattr(request.app.state, "info_facts", None)
    if cache is None:
        cache = request.app.state.info_facts = _FactsCache()
    with cache.lock:
        key = (id(store), store.change_stamp())
        if cache.key == key and len(cache.facts["failures"]) >= min(failures, cache.facts["failed"]):
            return cache.facts
        prices = store.price_range()
        counts = store.status_counts()
        cache.facts = {
            "items": counts,
            "index_count": engine.size,
            "failed": counts.get("failed", 0),
            "facets": _facets(store),
            "price_range": PriceRangeOut(min=prices[0], max=prices[1]) if prices else None,
            "passes": store.enrichment_counts(),
            "captions": store.caption_sources(),
            "tags": store.tags.counts(),
            "failures": [FailedItemOut(id=f.id, source=f.source, reason=f.reason) for f in store.failures(failures)]
            if failures
            else [],
        }
        cache.key = key
        return cache.facts


def _facets(store: CatalogStore) -> dict[str, list[FacetValue]]:
    """Category counts, then value counts of every attribute the items share, the most widely set first."""
    facets = {"category": [FacetValue(value=v, count=c) for v, c in store.facet_counts("category")]}
    for name, _ in store.attribute_names():
        if len(facets) > MAX_ATTRIBUTE_FACETS:
            break
        values = store.facet_counts(name)
        if name == "category" or not values or values[0][0].startswith(("{", "[")):
            continue  # a nested object or list is no value to pick
        if values[0][1] > 1 or len(values) == 1:  # every value unique (a SKU, a URL): no use as a filter
            facets[name] = [FacetValue(value=v, count=c) for v, c in values]
    return facets
