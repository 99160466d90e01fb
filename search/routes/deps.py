"""Request-scoped dependencies: the engine, the writer, settings and item links from ``app.state``; access.

Routes attach the access rules as ``dependencies=[READ]``, ``[WRITE]`` or ``[READ, LIMITED]`` (see
:mod:`catalens.search.security.access`: keys, scopes, the cross-site write check, rate limits).

They are ``async`` because none of them blocks: FastAPI runs plain ``def`` dependencies in its thread pool,
and each such hop costs more than the work they do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request

from catalens.search.catalog_writer import CatalogWriter
from catalens.search.engine import SearchEngine
from catalens.search.security import rate_limited, require_by_method, require_read, require_write
from catalens.search.settings import Settings

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

#: Route dependencies: a read route, a write route, reads by GET and writes by other methods, and a
#: rate-limited (expensive) route.
READ = Depends(require_read)
WRITE = Depends(require_write)
READ_GET_WRITE_OTHERS = Depends(require_by_method)
LIMITED = Depends(rate_limited)

#: OpenAPI documentation of the answers access control adds (merged into each router's ``responses``).
ACCESS_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "an API key is needed, or the one sent is not valid"},
    403: {"description": "the key's scope is too narrow, or a write came from another site"},
}
LIMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    429: {"description": "too many requests for this key or address; see Retry-After"},
}
