"""The HTTP service: ``create_app(settings)`` builds a FastAPI app serving one store.

The engine (and its model) is loaded once in ``lifespan`` and kept on ``app.state``; routes get it through
``Annotated`` dependencies. A background task swaps in index generations the indexer publishes (and, on a
read replica, ``Settings.read_only``, the items a writer adds between them; see :mod:`catalens.search.replica`).
Library errors map to 4xx answers with a message; bad input never produces a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from catalens.indexer.errors import ItemError, StoreLockedError, StoreWriteError
from catalens.indexer.fetch import FetchOptions
from catalens.indexer.store import CatalogStore
from catalens.models.faces import load_face_detector
from catalens.search.catalog_writer import CatalogWriter
from catalens.search.engine import SearchEngine
from catalens.search.errors import ItemNotFoundError, ItemNotIndexedError, QueryError
from catalens.search.middleware import BodySizeLimit, RequestMetrics
from catalens.search.replica import ChangeFollower, Operation, WriteRefusal, document_refusals, write_operations
from catalens.search.routes import classify, items, ops, recommend, tags
from catalens.search.routes import search as search_routes
from catalens.search.routes.bodies import is_form
from catalens.search.security import AccessControl, Rate, RateLimiter
from catalens.search.security.cors import add_cors
from catalens.search.settings import Settings

log = logging.getLogger("catalens.service")


class _IndexCollector(Collector):
    """Index gauges read at scrape time, so they are never stale."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        engine: SearchEngine | None = getattr(self._app.state, "engine", None)
        items = GaugeMetricFamily("catalens_index_items", "Items searchable in the index")
        generation = GaugeMetricFamily("catalens_index_generation", "Index generation being served")
        if engine is not None:
            items.add_metric([], engine.size)
            generation.add_metric([], engine.generation or 0)
        yield items
        yield generation


async def _refresh_forever(app: FastAPI, interval: float, follower: ChangeFollower | None) -> None:
    """Swap in each generation the indexer publishes; with a ``follower`` (a read replica, whose engine no
    write of this process updates) also the items the writer commits between generations."""
    engine: SearchEngine = app.state.engine
    while True:
        await asyncio.sleep(interval)
        try:
            refreshed = await run_in_threadpool(engine.refresh)
            if refreshed:
                log.info("now serving index generation %s", engine.generation)
            if follower is not None:
                await run_in_threadpool(follower.catch_up, engine, refreshed=refreshed)
        except Exception:  # a half-written manifest or a transient I/O error: try again next tick
            log.exception("index refresh failed; keeping the current generation")


def open_engine(settings: Settings) -> SearchEngine:
    """Open the engine the settings describe: the one place the service's engine is built.

    Used by the service's start-up and by ``catalens serve``, which opens it before serving so that a missing
    store or model is reported with an exit code rather than a crashed worker.

    Raises:
        StoreError: the store is missing, of another model or unreadable (or, for a read replica, one that
            needs an upgrade, which only a writer may do).
        ModelError: the store's model (or the text encoder) cannot be loaded.
    """
    if settings.read_only:
        # Opening for reading upgrades an older store in place; a replica refuses it instead (the read-only
        # open raises StoreVersionError saying so) and leaves the upgrade to the writer.
        CatalogStore.open(settings.store, read_only=True).close()
    return SearchEngine.open(
        settings.store,
        device=settings.device,
        fusion=settings.fusion(),
        text_encoder=settings.text_encoder,
        allow_unpaired=settings.allow_unpaired_text_encoder,
        classify_limits=settings.classify_limits(),
        text_cache_size=settings.text_cache_size,
    )


def create_app(settings: Settings, engine: SearchEngine | None = None) -> FastAPI:
    """Build the service.

    Args:
        settings: service settings (``Settings(store=...)``, or read from ``CATALENS_*``).
        engine: an engine to serve instead of opening ``settings.store`` at start-up (tests, embedding);
            the caller keeps ownership and closes it.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = engine is None
        app.state.engine = engine or await run_in_threadpool(open_engine, settings)
        fetch = FetchOptions(
            max_bytes=settings.max_upload_bytes,
            timeout_s=settings.fetch_timeout_s,
            deadline_s=settings.fetch_deadline_s,
            allow=(settings.fetch_allow,),
        )
        app.state.fetch_options = fetch
        # Bounds the URL fetches in flight, so slow servers never hold every worker thread (see routes/items).
        app.state.url_fetches = asyncio.Semaphore(settings.max_url_fetches)
        app.state.writer = CatalogWriter(
            app.state.engine,
            fetch,
            keep_location=settings.keep_upload_location,
            max_pixels=settings.max_image_pixels,
        )
        # Loaded once, only when asked for (OpenCV and the model stay unimported otherwise).
        app.state.face_detector = await run_in_threadpool(load_face_detector) if settings.blur_faces else None
        follower = ChangeFollower(app.state.engine) if settings.read_only else None
        refresher = asyncio.create_task(_refresh_forever(app, settings.refresh_interval_s, follower))
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            if owned:
                app.state.engine.close()
            app.state.engine = None

    app = FastAPI(
        title="catalens",
        version="1",
        summary="Semantic image search for product catalogs",
        lifespan=lifespan,
        responses={422: {"description": "invalid input, with a message"}},
    )
    app.state.settings = settings
    app.state.access = AccessControl.from_settings(settings)  # keys, scopes, the cross-site write check
    rate = Rate.parse(settings.rate_limit)
    app.state.rate_limiter = RateLimiter(rate) if rate is not None else None
    app.state.engine = None
    app.state.tag_decisions = threading.Lock()  # a person's tag decisions, one at a time (routes/tags)
    registry = CollectorRegistry()
    registry.register(_IndexCollector(app))
    app.state.metrics_registry = registry

    routers = [
        ops.router,
        search_routes.router,  # before items: /v1/items/{id}/similar must match first
        tags.router,  # before items: POST /v1/items/{id}/tags, where ids may hold slashes
        items.router,
        classify.router,
        recommend.router,
    ]
    writes = write_operations(route for router in routers for route in router.routes) if settings.read_only else None
    refusal = WriteRefusal(writes) if writes else None
    for router in routers:
        # A read replica refuses every write route (405) before its access checks run.
        app.include_router(router, dependencies=[Depends(refusal)] if refusal else None)
    if writes:
        _document(app, writes)
    _add_error_handlers(app, refusal)
    _add_web(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestMetrics, registry=registry)
    add_cors(app, app.state.access.origins)  # outermost: even a 413 or 401 carries the CORS headers
    return app


def _document(app: FastAPI, writes: frozenset[Operation]) -> None:
    """Have the app's OpenAPI schema list the 405 of the refused write routes."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return document_refusals(generate(), writes)

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (multi-worker serving): settings from ``CATALENS_*`` variables."""
    return create_app(Settings())  # type: ignore[call-arg]  # store comes from CATALENS_STORE


#: The detail of the 400 FastAPI raises itself when a JSON body cannot be decoded at all.
_BODY_PARSE_ERROR = "There was an error parsing the body"


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _describe_validation(error: RequestValidationError) -> str:
    """One readable line per problem; the offending input is not echoed (it may not even be JSON-safe)."""
    problems = []
    for item in error.errors()[:5]:
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


def _add_error_handlers(app: FastAPI, refusal: WriteRefusal | None = None) -> None:
    """Map library errors to statuses; on a read replica (``refusal``), a write's unreadable body gets the 405."""

    async def validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        refused = refusal.refusal(request) if refusal else None
        if refused is not None:
            return await http_exception_handler(request, refused)
        return _error(422, _describe_validation(exc))

    app.add_exception_handler(RequestValidationError, validation)

    async def unparsable(request: Request, exc: Exception) -> Response:
        # Only the framework answers 400, for a body it cannot parse before a route runs: FastAPI for JSON that is
        # not UTF-8 text, Starlette for a broken multipart form (a header with a control character, no closing
        # boundary). Every other malformed body is a 422, so these are too (a replica's write gets its 405 first).
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:
            refused = refusal.refusal(request) if refusal else None
            if refused is not None:
                return await http_exception_handler(request, refused)
            if is_form(request):
                reason = "it cannot be parsed" if exc.detail == _BODY_PARSE_ERROR else exc.detail
                return _error(422, f"body: unreadable multipart form: {reason}")
            return _error(422, "body: the request body cannot be read as JSON (it is not UTF-8 text)")
        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, unparsable)
    statuses: list[tuple[type[Exception], int]] = [
        (QueryError, 422),
        (ItemError, 422),
        (ItemNotFoundError, 404),
        (ItemNotIndexedError, 409),
        (StoreLockedError, 409),
    ]
    for error_type, status in statuses:

        async def handler(request: Request, exc: Exception, status: int = status) -> JSONResponse:
            return _error(status, str(exc))

        app.add_exception_handler(error_type, handler)

    async def write_failed(request: Request, exc: Exception) -> JSONResponse:
        # A read-only replica refuses writes (409); a full disk is the server's storage, not the request (507).
        return _error(409 if getattr(exc, "read_only", False) else 507, str(exc))

    app.add_exception_handler(StoreWriteError, write_failed)


def _add_web(app: FastAPI) -> None:
    """The page (``web/``, shipped as ``search.web``): ``index.html`` at ``/``, its other files under ``/static``.

    Both are sent with ``Cache-Control: no-cache``: browsers revalidate (a cheap 304) instead of guessing a
    freshness lifetime, so after an upgrade the page and its JavaScript modules never mix versions.
    """
    from starlette.types import Scope

    web = Path(str(files("catalens.web")))

    class RevalidatedFiles(StaticFiles):
        async def get_response(self, path: str, scope: Scope) -> Response:
            response = await super().get_response(path, scope)
            response.headers.setdefault("Cache-Control", "no-cache")
            return response

    app.mount("/static", RevalidatedFiles(directory=web), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> Any:
        return FileResponse(web / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})
