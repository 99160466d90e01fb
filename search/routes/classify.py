"""Zero-shot classification: stored items by id (JSON) or an uploaded image (multipart), one route."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from catalens.indexer.images import decode_image
from catalens.search.routes.deps import EngineDep
from catalens.search.schemas import ClassificationOut, ClassifyRequest, ClassifyResponse

router = APIRouter(prefix="/v1", tags=["classify"])

_MULTIPART_DOC = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ClassifyRequest"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image", "labels"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "labels": {"type": "string", "description": "comma-separated, or repeat the field"},
                        "templates": {"type": "string", "description": 'a prompt with "{}"; repeat for several'},
                        "top_k": {"type": "integer", "default": 3},
                    },
                }
            },
        },
        "required": True,
    }
}


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    summary="Zero-shot classification of items or of an uploaded image",
    openapi_extra=_MULTIPART_DOC,
)
async def classify(engine: EngineDep, request: Request) -> ClassifyResponse:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _classify_upload(engine, request)
    try:
        body = ClassifyRequest.model_validate_json(await request.body())
    except ValidationError as e:
        raise HTTPException(status_code=422, detail=_first_error(e)) from None
    results = await run_in_threadpool(engine.classify_items, body.ids, body.labels, body.templates, body.top_k)
    return ClassifyResponse(results=[ClassificationOut.of(r) for r in results])


async def _classify_upload(engine: EngineDep, request: Request) -> ClassifyResponse:
    form = await request.form()
    image = form.get("image")
    if not isinstance(image, UploadFile):
        raise HTTPException(status_code=422, detail="the form needs an image file field")
    labels = [part.strip() for value in form.getlist("labels") for part in str(value).split(",") if part.strip()]
    templates = [str(t) for t in form.getlist("templates")] or None
    try:
        top_k = int(str(form.get("top_k") or 3))
    except ValueError:
        raise HTTPException(status_code=422, detail="top_k must be an integer") from None
    if not labels or top_k < 1:
        raise HTTPException(status_code=422, detail="give at least one label and a top_k of at least 1")
    decoded = await run_in_threadpool(decode_image, await image.read(), source=image.filename or "upload")
    result = await run_in_threadpool(engine.classify_image, decoded.image, labels, templates, top_k)
    return ClassifyResponse(results=[ClassificationOut.of(result)])


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')}"
