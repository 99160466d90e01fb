"""Zero-shot classification: stored items by id (JSON) or an uploaded image (multipart), one route.

Every malformed request is answered 422 with a message: a body that is not the documented JSON, a form the
multipart parser cannot read, a file where a text field belongs, a template without exactly one ``{}``, or
a label set past the engine's :class:`ClassifyLimits`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from catalens.indexer.images import decode_image
from catalens.search.routes.deps import ACCESS_RESPONSES, LIMIT_RESPONSES, LIMITED, READ, EngineDep
from catalens.search.schemas import ClassificationOut, ClassifyRequest, ClassifyResponse

router = APIRouter(
    prefix="/v1",
    tags=["classify"],
    dependencies=[READ, LIMITED],
    responses={**ACCESS_RESPONSES, **LIMIT_RESPONSES},
)

#: File parts a classify form may carry: the image, plus a few misplaced ones to answer with a clear 422.
_MAX_FORM_FILES = 4


def _request_doc() -> dict[str, Any]:
    """The route's request body in OpenAPI: the JSON model (inlined, so no dangling ``$ref``) or a form."""
    return {
        "requestBody": {
            "content": {
                "application/json": {"schema": ClassifyRequest.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["image", "labels"],
                        "properties": {
                            "image": {"type": "string", "format": "binary"},
                            "labels": {"type": "string", "description": "comma-separated, or repeat the field"},
                            "templates": {
                                "type": "string",
                                "description": 'a prompt with exactly one "{}"; repeat for several',
                            },
                            "top_k": {"type": "integer", "minimum": 1, "default": 3},
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
    openapi_extra=_request_doc(),
    responses={
        404: {"description": "an id names no item"},
        409: {"description": "an item has no embedding (it failed to index)"},
        413: {"description": "the request body passes the upload limit"},
    },
)
async def classify(engine: EngineDep, request: Request) -> ClassifyResponse:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _classify_upload(engine, request)
    try:
        body = ClassifyRequest.model_validate_json(await request.body())
    except ValidationError as e:
        raise HTTPException(status_code=422, detail=_first_error(e)) from None
    # Limits and templates are checked before any item is read or any label embedded (QueryError -> 422).
    await run_in_threadpool(engine.label_vectors, body.labels, body.templates)
    results = await run_in_threadpool(engine.classify_items, body.ids, body.labels, body.templates, body.top_k)
    return ClassifyResponse(results=[ClassificationOut.of(r) for r in results])


async def _classify_upload(engine: EngineDep, request: Request) -> ClassifyResponse:
    limits = engine.classify_limits
    form = await _read_form(request, max_fields=limits.max_labels + limits.max_templates + 8)
    image = form.get("image")
    if not isinstance(image, UploadFile):
        raise HTTPException(status_code=422, detail="the form needs an image file field")
    labels = [part.strip() for value in _texts(form, "labels") for part in value.split(",") if part.strip()]
    templates = _texts(form, "templates") or None
    top_k_text = _texts(form, "top_k")
    try:
        top_k = int(top_k_text[-1]) if top_k_text else 3
    except ValueError:
        raise HTTPException(status_code=422, detail="top_k must be an integer") from None
    if not labels or top_k < 1:
        raise HTTPException(status_code=422, detail="give at least one label and a top_k of at least 1")
    await run_in_threadpool(engine.label_vectors, labels, templates)  # limits first, before decoding
    decoded = await run_in_threadpool(
        decode_image,
        await image.read(),
        source=image.filename or "upload",
        draft_size=engine.encoder.image_size,
        max_pixels=request.app.state.settings.max_image_pixels,
    )
    result = await run_in_threadpool(engine.classify_image, decoded.image, labels, templates, top_k)
    return ClassifyResponse(results=[ClassificationOut.of(result)])


async def _read_form(request: Request, *, max_fields: int) -> FormData:
    """Parse the multipart body; an unreadable form (e.g. a part without a name) is a 422, not a 500."""
    try:
        return await request.form(max_files=_MAX_FORM_FILES, max_fields=max_fields)
    except StarletteHTTPException as e:  # Starlette turns its MultiPartException into a 400 inside an app
        raise HTTPException(status_code=422, detail=f"unreadable multipart form: {e.detail}") from None
    except (MultiPartException, KeyError, ValueError) as e:
        raise HTTPException(status_code=422, detail=f"unreadable multipart form: {e}") from None


def _texts(form: FormData, name: str) -> list[str]:
    """The text values of a form field; a file sent where text belongs is refused, never read as its repr."""
    values = form.getlist(name)
    if any(not isinstance(v, str) for v in values):
        raise HTTPException(status_code=422, detail=f"{name} must be a text field, not a file")
    return [str(v) for v in values]


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')}"
