"""Operational routes: liveness, readiness, Prometheus metrics, store facts and facets."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from search.routes.deps import EngineDep
from search.schemas import FacetValue, InfoOut

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the model and index are loaded")
def readyz(request: Request) -> JSONResponse:
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    return JSONResponse({"status": "ready", "generation": engine.generation, "items": engine.size})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/info", response_model=InfoOut, summary="The store: model, counts, index, facets")
def info(engine: EngineDep) -> InfoOut:
    store = engine.store
    manifest = store.manifest
    attribute_names = ("color", "material", "size", "brand")
    facets = {"category": [FacetValue(value=v, count=c) for v, c in store.facet_counts("category")]}
    for name in attribute_names:
        values = store.facet_counts(name)
        if values:
            facets[name] = [FacetValue(value=v, count=c) for v, c in values]
    return InfoOut(
        model=manifest.model,
        dim=manifest.dim,
        items=store.status_counts(),
        index_factory=manifest.index.factory if manifest.index else manifest.index_factory,
        generation=engine.generation,
        facets=facets,
    )
