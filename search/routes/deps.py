"""Request-scoped dependencies: the engine, the writer and settings from ``app.state``, and shared params.

They are ``async`` because none of them blocks: FastAPI runs plain ``def`` dependencies in its thread pool,
and each such hop costs more than the work they do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Query, Request

from search.catalog_writer import CatalogWriter
from search.engine import SearchEngine, SearchOptions
from search.schemas import Filters
from search.settings import Settings

Links = Callable[[str], tuple[str, str]]


async def get_engine(request: Request) -> SearchEngine:
    engine: SearchEngine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise HTTPException(status_code=503, detail="the search engine is still loading")
    return engine


async def get_writer(request: Request) -> CatalogWriter:
    await get_engine(request)
    writer: CatalogWriter = request.app.state.writer
    return writer


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_links(request: Request) -> Links:
    """Image and thumbnail URLs of an item, relative to the service root (ids are URL-quoted)."""
    root = request.scope.get("root_path", "")

    def links(item_id: str) -> tuple[str, str]:
        base = f"{root}/v1/items/{quote(item_id, safe='')}"
        return f"{base}/image", f"{base}/thumbnail"

    return links


EngineDep = Annotated[SearchEngine, Depends(get_engine)]
WriterDep = Annotated[CatalogWriter, Depends(get_writer)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LinksDep = Annotated[Links, Depends(get_links)]


def parse_attributes(pairs: list[str]) -> dict[str, str]:
    """``["color:red", "size:M"]`` -> ``{"color": "red", "size": "M"}``; 422 on a pair without ``:``."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition(":")
        if not sep or not name.strip():
            raise HTTPException(status_code=422, detail=f"attr must look like name:value, got {pair!r}")
        parsed[name.strip()] = value.strip()
    return parsed


async def filters_from_query(
    category: Annotated[list[str], Query(description="category to keep; repeat for several")] = [],  # noqa: B006
    price_min: Annotated[float | None, Query(ge=0)] = None,
    price_max: Annotated[float | None, Query(ge=0)] = None,
    attr: Annotated[list[str], Query(description="attribute filter name:value; repeat for several")] = [],  # noqa: B006
) -> Filters:
    try:
        return Filters(categories=category, price_min=price_min, price_max=price_max, attributes=parse_attributes(attr))
    except ValueError as e:
        raise HTTPException(status_code=422, detail=str(e)) from None


FiltersDep = Annotated[Filters, Depends(filters_from_query)]


async def page_options(
    settings: SettingsDep,
    filters: FiltersDep,
    k: Annotated[int, Query(ge=1, description="hits per page")] = 10,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    min_score: Annotated[float | None, Query(ge=-1, le=1)] = None,
    collapse: Annotated[bool, Query(description="one hit per product_id")] = False,
) -> SearchOptions:
    return search_options(settings, filters, k, offset, min_score, collapse)


def search_options(
    settings: Settings, filters: Filters, k: int, offset: int, min_score: float | None, collapse: bool
) -> SearchOptions:
    if k > settings.max_k:
        raise HTTPException(status_code=422, detail=f"k must be at most {settings.max_k}")
    return SearchOptions(
        k=k, offset=offset, min_score=min_score, where=filters.to_item_filter(), collapse_by_product=collapse
    )


OptionsDep = Annotated[SearchOptions, Depends(page_options)]
