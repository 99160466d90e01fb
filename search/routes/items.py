"""Item routes: read, add, delete, and the item's image and thumbnail (served only by id lookup)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from PIL import Image

from catalens.indexer.errors import ItemError
from catalens.indexer.fetch import Fetcher, FetchOptions
from catalens.indexer.images import decode_image
from catalens.indexer.privacy import blur_regions
from catalens.indexer.store import StoredItem
from catalens.models.faces import FaceDetector
from catalens.search.catalog_writer import NewItem, upload_path
from catalens.search.errors import ItemNotFoundError
from catalens.search.routes.deps import (
    ACCESS_RESPONSES,
    READ_GET_WRITE_OTHERS,
    EngineDep,
    LinksDep,
    SettingsDep,
    WriterDep,
)
from catalens.search.schemas import (
    BODY_TOO_LARGE,
    IMAGE_RESPONSES,
    ITEM_NOT_FOUND,
    STORE_BUSY,
    ItemOut,
    JPEGResponse,
)

# Reading items needs read scope; adding and deleting them (POST, DELETE) write scope.
router = APIRouter(prefix="/v1/items", tags=["items"], dependencies=[READ_GET_WRITE_OTHERS], responses=ACCESS_RESPONSES)
# How long a URL item waits for a free fetch slot before it gets 503: short, so a burst of slow URLs turns
# into quick refusals instead of a queue of requests that hold connections open.
URL_FETCH_WAIT_S = 1.0


@router.get(
    "/{item_id:path}/image",
    summary="The item's image (re-encoded, EXIF stripped)",
    response_class=JPEGResponse,
    responses=IMAGE_RESPONSES,
)
def item_image(engine: EngineDep, settings: SettingsDep, request: Request, item_id: str) -> Response:
    item = _item(engine, item_id)
    return _image_response(item, _load_image(engine.store.path, item, settings), None, request)


@router.get(
    "/{item_id:path}/thumbnail",
    summary="A thumbnail of the item's image",
    response_class=JPEGResponse,
    responses=IMAGE_RESPONSES,
)
def item_thumbnail(
    engine: EngineDep,
    settings: SettingsDep,
    request: Request,
    item_id: str,
    size: Annotated[int, Query(ge=16, le=1024, description="longest side in pixels")] = 256,
) -> Response:
    item = _item(engine, item_id)
    return _image_response(item, _load_image(engine.store.path, item, settings), size, request)


@router.get("/{item_id:path}", response_model=ItemOut, summary="One item", responses=ITEM_NOT_FOUND)
def get_item(engine: EngineDep, links: LinksDep, item_id: str) -> ItemOut:
    item = _item(engine, item_id)
    store = engine.store
    tags = store.tags.for_items([item.key]).get(item.key, [])
    return ItemOut.of(item, links, store.enrichments_for([item.key]).get(item.key), tags)


@router.delete(
    "/{item_id:path}",
    status_code=204,
    summary="Delete an item (leaves results at once)",
    responses={**ITEM_NOT_FOUND, **STORE_BUSY},
)
def delete_item(writer: WriterDep, item_id: str) -> Response:
    writer.delete(item_id)
    return Response(status_code=204)


@router.post(
    "",
    response_model=ItemOut,
    status_code=201,
    summary="Add or replace an item",
    responses={**STORE_BUSY, **BODY_TOO_LARGE},
)
async def add_item(
    writer: WriterDep,
    links: LinksDep,
    settings: SettingsDep,
    request: Request,
    id: Annotated[str, Form(min_length=1, max_length=500)],
    image: Annotated[UploadFile | None, File(description="the image; or give image_url")] = None,
    image_url: Annotated[str | None, Form(pattern=r"^https?://", max_length=2000)] = None,
    product_id: Annotated[str | None, Form(max_length=500)] = None,
    title: Annotated[str | None, Form(max_length=2000)] = None,
    description: Annotated[str | None, Form(max_length=20000)] = None,
    category: Annotated[str | None, Form(max_length=500)] = None,
    price: Annotated[float | None, Form(ge=0)] = None,
    attributes: Annotated[str | None, Form(description="a JSON object")] = None,
) -> ItemOut:
    if (image is None) == (image_url is None):
        raise HTTPException(status_code=422, detail="give exactly one of image (a file) or image_url")
    if image_url is not None and not settings.allow_url_items:
        raise HTTPException(status_code=422, detail="this service does not fetch images from URLs")
    new = NewItem(
        id=id,
        product_id=product_id,
        title=title,
        description=description,
        category=category,
        price=price,
        attributes=_attributes(attributes),
    )
    if image is not None:
        data = await image.read()
        stored = await run_in_threadpool(lambda: writer.add(new, data=data))
    else:
        stored = await _add_from_url(request, lambda: writer.add(new, url=image_url))
    return ItemOut.of(stored, links)


async def _add_from_url(request: Request, add: Callable[[], StoredItem]) -> StoredItem:
    """Run a URL item's fetch in a bounded number of threads (``max_url_fetches``); 503 when none frees soon.

    The URL guard (in the fetcher) refuses a URL before any connection with a 422 naming the rule; the
    fetch's total deadline bounds how long a slot is held.
    """
    slots: asyncio.Semaphore = request.app.state.url_fetches
    try:
        await asyncio.wait_for(slots.acquire(), timeout=URL_FETCH_WAIT_S)
    except TimeoutError:
        raise HTTPException(
            status_code=503,
            detail="too many image URL fetches are in flight; try again shortly",
            headers={"Retry-After": "2"},
        ) from None
    try:
        # Cancellation waits for the thread (anyio), so the slot is released only when the fetch has ended.
        return await run_in_threadpool(add)
    finally:
        slots.release()


def _attributes(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise HTTPException(status_code=422, detail=f"attributes must be a JSON object: {e.msg}") from None
    if not isinstance(value, dict):
        raise HTTPException(status_code=422, detail="attributes must be a JSON object")
    return value


def _item(engine: EngineDep, item_id: str) -> StoredItem:
    item = engine.store.get_item(item_id)
    if item is None:
        raise ItemNotFoundError(item_id)
    return item


def _load_image(store_path: Path, item: StoredItem, settings: SettingsDep) -> Image.Image:
    """Read the item's image from its recorded source (or the service's saved upload), decoded safely."""
    saved = upload_path(store_path, item.content_hash) if item.content_hash else None
    location = str(saved) if saved is not None else item.source
    options = FetchOptions(
        max_bytes=max(settings.max_upload_bytes, 50 * 1024 * 1024),
        timeout_s=settings.fetch_timeout_s,
        deadline_s=settings.fetch_deadline_s,
        allow=(settings.fetch_allow,),
    )
    try:
        with Fetcher(options) as fetcher:
            return decode_image(fetcher.read(location), source=location).image
    except ItemError as e:
        raise HTTPException(
            status_code=404, detail=f"the image of item {item.id!r} cannot be read: {e.reason}"
        ) from None


def _image_response(item: StoredItem, image: Image.Image, size: int | None, request: Request) -> Response:
    """The image re-encoded as a JPEG without metadata (no EXIF, GPS or XMP), faces blurred when the service
    was started with ``blur_faces``.

    Faces are found before resizing (small faces vanish in a thumbnail) and blurred at full size; the
    stored bytes are never touched. Blurred and plain responses have different ETags, so a cache never
    hands out one for the other when the setting changes.
    """
    detector: FaceDetector | None = getattr(request.app.state, "face_detector", None)
    variant = "-faces-blurred" if detector is not None else ""
    etag = f'"{item.content_hash or item.updated_at}-{size or "full"}{variant}"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if detector is not None:
        image = _blur_faces(detector, image, size)
    if size is not None:
        image = image.copy()
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    # Pillow writes only the metadata it is given; saying so keeps EXIF (GPS) and XMP out if that ever changes.
    image.save(buffer, format="JPEG", quality=88 if size else 92, optimize=True, exif=b"", xmp=b"")
    return Response(content=buffer.getvalue(), media_type="image/jpeg", headers=headers)


def _blur_faces(detector: FaceDetector, image: Image.Image, size: int | None) -> Image.Image:
    """``image`` with the faces the detector finds blurred.

    For a thumbnail, faces are looked for at twice its size (at least 512 px) rather than at full size: a face
    is found from about 24 px wide at the scale it is looked at (``scripts/bench_face_blur.py``), so every face
    that would be 12 px or more in the thumbnail is still looked for, at a fraction of the time.
    """
    probe, scale = image, 1.0
    if size is not None and max(image.size) > max(512, 2 * size):
        probe = image.copy()
        probe.thumbnail((max(512, 2 * size),) * 2, Image.Resampling.BILINEAR)
        scale = image.width / probe.width
    faces = detector.detect(probe)
    return blur_regions(image, [(f.x0 * scale, f.y0 * scale, f.x1 * scale, f.y1 * scale) for f in faces])
