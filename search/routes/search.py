"""Search routes: text (GET and POST), image upload optionally combined with text, similar items."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool

from catalens.indexer.images import decode_image
from catalens.search.engine import QueryPart, SearchMode
from catalens.search.routes.deps import (
    EngineDep,
    LinksDep,
    PageQuery,
    SearchQuery,
    SettingsDep,
    parse_attributes,
    search_options,
)
from catalens.search.schemas import Filters, PydanticJSONResponse, SearchRequest, SearchResponse

router = APIRouter(prefix="/v1", tags=["search"])


@router.get("/search", response_model=SearchResponse, summary="Text search")
def search_get(
    engine: EngineDep,
    links: LinksDep,
    settings: SettingsDep,
    params: Annotated[SearchQuery, Query()],
) -> PydanticJSONResponse:
    options = params.options(settings, params.mode)
    return PydanticJSONResponse(SearchResponse.of(engine.search_text(params.q, options), links))


@router.post("/search", response_model=SearchResponse, summary="Text or combined search (JSON body)")
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
    )
    if body.exclude_ids:
        options = replace(options, exclude_ids=tuple(body.exclude_ids))
    parts = [QueryPart(text=body.query)] if body.query else []
    parts += [
        QueryPart(
            text=p.text,
            item_id=p.item_id,
            vector=np.asarray(p.vector, dtype=np.float32) if p.vector is not None else None,
            weight=p.weight,
        )
        for p in body.parts
    ]
    return PydanticJSONResponse(SearchResponse.of(engine.search(parts, options), links))


@router.post("/search/image", response_model=SearchResponse, summary="Search by an uploaded image")
async def search_image(
    engine: EngineDep,
    links: LinksDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File(description="JPEG, PNG, WebP, GIF, BMP or TIFF")],
    text: Annotated[str | None, Form(max_length=1000, description="words to add: 'but in red'")] = None,
    negative: Annotated[str | None, Form(max_length=1000, description="words to move away from")] = None,
    image_weight: Annotated[float, Form(ge=0, le=100)] = 1.0,
    text_weight: Annotated[float, Form(ge=0, le=100)] = 1.0,
    k: Annotated[int, Form(ge=1)] = 10,
    offset: Annotated[int, Form(ge=0, le=10_000)] = 0,
    min_score: Annotated[float | None, Form(ge=-1, le=1)] = None,
    collapse: Annotated[bool, Form()] = False,
    category: Annotated[list[str] | None, Form()] = None,
    price_min: Annotated[float | None, Form(ge=0)] = None,
    price_max: Annotated[float | None, Form(ge=0)] = None,
    attr: Annotated[list[str] | None, Form()] = None,
    mode: Annotated[SearchMode, Form(description="hybrid also matches the words of `text`")] = "hybrid",
    explain: Annotated[bool, Form()] = False,
) -> PydanticJSONResponse:
    data = await image.read()
    decoded = await run_in_threadpool(decode_image, data, source=image.filename or "upload")
    try:
        filters = Filters(
            categories=category or [],
            price_min=price_min,
            price_max=price_max,
            attributes=parse_attributes(attr or []),
        )
    except ValueError as e:
        raise HTTPException(status_code=422, detail=str(e)) from None
    options = search_options(settings, filters, k, offset, min_score, collapse, mode=mode, explain=explain)
    parts = [QueryPart(image=decoded.image, weight=image_weight)]
    if text and text.strip():
        parts.append(QueryPart(text=text, weight=text_weight))
    if negative and negative.strip():
        parts.append(QueryPart(text=negative, weight=-text_weight))
    result = await run_in_threadpool(engine.search, parts, options)
    return PydanticJSONResponse(SearchResponse.of(result, links))


@router.get("/items/{item_id:path}/similar", response_model=SearchResponse, summary="Items like this one")
def similar(
    engine: EngineDep, links: LinksDep, settings: SettingsDep, params: Annotated[PageQuery, Query()], item_id: str
) -> PydanticJSONResponse:
    return PydanticJSONResponse(SearchResponse.of(engine.similar(item_id, params.options(settings)), links))
