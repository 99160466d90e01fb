"""Item routes: read, add, delete, and the item's image and thumbnail (served only by id lookup)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from PIL import Image

from catalens.indexer.errors import ItemError
from catalens.indexer.fetch import Fetcher, FetchOptions
from catalens.indexer.images import decode_image
from catalens.indexer.store import StoredItem
from catalens.search.catalog_writer import NewItem, upload_path
from catalens.search.errors import ItemNotFoundError
from catalens.search.routes.deps import EngineDep, LinksDep, SettingsDep, WriterDep
from catalens.search.schemas import ItemOut

router = APIRouter(prefix="/v1/items", tags=["items"])


@router.get("/{item_id:path}/image", summary="The item's image (re-encoded, EXIF stripped)")
def item_image(engine: EngineDep, settings: SettingsDep, request: Request, item_id: str) -> Response:
    item = _item(engine, item_id)
    return _image_response(item, _load_image(engine.store.path, item, settings), None, request)


@router.get("/{item_id:path}/thumbnail", summary="A thumbnail of the item's image")
def item_thumbnail(
    engine: EngineDep,
    settings: SettingsDep,
    request: Request,
    item_id: str,
    size: Annotated[int, Query(ge=16, le=1024, description="longest side in pixels")] = 256,
) -> Response:
    item = _item(engine, item_id)
    return _image_response(item, _load_image(engine.store.path, item, settings), size, request)


@router.get("/{item_id:path}", response_model=ItemOut, summary="One item")
def get_item(engine: EngineDep, links: LinksDep, item_id: str) -> ItemOut:
    item = _item(engine, item_id)
    return ItemOut.of(item, links, engine.store.enrichments_for([item.key]).get(item.key))


@router.delete("/{item_id:path}", status_code=204, summary="Delete an item (leaves results at once)")
def delete_item(writer: WriterDep, item_id: str) -> Response:
    writer.delete(item_id)
    return Response(status_code=204)


@router.post("", response_model=ItemOut, status_code=201, summary="Add or replace an item")
async def add_item(
    writer: WriterDep,
    links: LinksDep,
    settings: SettingsDep,
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
    data = await image.read() if image is not None else None
    stored = await run_in_threadpool(lambda: writer.add(new, data=data, url=image_url))
    return ItemOut.of(stored, links)


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
        max_bytes=max(settings.max_upload_bytes, 50 * 1024 * 1024), timeout_s=settings.fetch_timeout_s
    )
    try:
        with Fetcher(options) as fetcher:
            return decode_image(fetcher.read(location), source=location).image
    except ItemError as e:
        raise HTTPException(
            status_code=404, detail=f"the image of item {item.id!r} cannot be read: {e.reason}"
        ) from None


def _image_response(item: StoredItem, image: Image.Image, size: int | None, request: Request) -> Response:
    etag = f'"{item.content_hash or item.updated_at}-{size or "full"}"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if size is not None:
        image = image.copy()
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88 if size else 92, optimize=True)
    return Response(content=buffer.getvalue(), media_type="image/jpeg", headers=headers)
