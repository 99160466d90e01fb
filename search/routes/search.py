"""Search routes: text (GET and POST), image upload optionally combined with text, similar items."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Form, Query
from fastapi.concurrency import run_in_threadpool

from catalens.indexer.images import decode_image
from catalens.search.engine import QueryPart
from catalens.search.routes.deps import (
    ACCESS_RESPONSES,
    LIMIT_RESPONSES,
    LIMITED,
    READ,
    EngineDep,
    LinksDep,
    SettingsDep,
)
from catalens.search.routes.params import ImageSearchForm, SearchQuery, SimilarQuery, search_options
from catalens.search.schemas import PydanticJSONResponse, SearchRequest, SearchResponse

router = APIRouter(prefix="/v1", tags=["search"], dependencies=[READ], responses=ACCESS_RESPONSES)

#: Statuses a query naming a stored item may answer besides 200 and 422 (documented in OpenAPI).
_ITEM_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"description": "an item id names no item"},
    409: {"description": "the item has no embedding (it failed to index)"},
}
_TOO_LARGE: dict[int | str, dict[str, object]] = {413: {"description": "the request body passes the upload limit"}}


@router.get("/search", response_model=SearchResponse, summary="Text search")
def search_get(
    engine: EngineDep,
    links: LinksDep,
    settings: SettingsDep,
    params: Annotated[SearchQuery, Query()],
) -> PydanticJSONResponse:
    options = params.options(settings, params.mode)
    return PydanticJSONResponse(SearchResponse.of(engine.search_text(params.q, options), links))


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Text or combined search (JSON body)",
    responses={**_ITEM_ERRORS, **_TOO_LARGE},
)
def search_post(engine: EngineDep, links: LinksDep, settings: SettingsDep, body: SearchRequest) -> PydanticJSONResponse:
    options = search_options(
        settings,
        body.filters,
        body.k,
        body.offset,
        body.min_score,
        body.collapse_by_product,
        mode=body.mode,
        explain=body.explain,
        dedupe=body.dedupe,
    )
    if body.exclude_ids:
        options = replace(options, exclude_ids=tuple(body.exclude_ids))
    parts = [QueryPart(text=body.query)] if body.query else []
    parts += [
        QueryPart(
            text=p.text,
            item_id=p.item_id,
            vector=np.asarray(p.vector, dtype=np.float64) if p.vector is not None else None,
            weight=p.weight,
        )
        for p in body.parts
    ]
    return PydanticJSONResponse(SearchResponse.of(engine.search(parts, options), links))


@router.post(
    "/search/image",
    response_model=SearchResponse,
    summary="Search by an uploaded image",
    responses={**_TOO_LARGE, **LIMIT_RESPONSES},
    dependencies=[LIMITED],
)
async def search_image(
    engine: EngineDep,
    links: LinksDep,
    settings: SettingsDep,
    form: Annotated[ImageSearchForm, Form(media_type="multipart/form-data")],
) -> PydanticJSONResponse:
    data = await form.image.read()
    # Decoded no larger than the model looks at: a huge upload costs a fraction of its full-size memory.
    decoded = await run_in_threadpool(
        decode_image,
        data,
        source=form.image.filename or "upload",
        draft_size=engine.encoder.decode_size,
        max_pixels=settings.max_image_pixels,
    )
    options = form.options(settings)
    result = await run_in_threadpool(engine.search, form.parts(decoded.image), options)
    return PydanticJSONResponse(SearchResponse.of(result, links))


@router.get(
    "/items/{item_id:path}/similar",
    response_model=SearchResponse,
    summary="Items like this one",
    responses=_ITEM_ERRORS,
)
def similar(
    engine: EngineDep, links: LinksDep, settings: SettingsDep, params: Annotated[SimilarQuery, Query()], item_id: str
) -> PydanticJSONResponse:
    result = engine.similar(item_id, params.options(settings, params.mode))
    return PydanticJSONResponse(SearchResponse.of(result, links))
