"""Zero-shot classification: stored items by id (JSON) or an uploaded image (multipart), one route.

Every malformed request is answered 422 with a message: a body that is not the documented JSON, a form the
multipart parser cannot read, a file where a text field belongs, a template without exactly one ``{}``, or
a label set past the engine's :class:`ClassifyLimits`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from catalens.search.routes.bodies import decode_upload, form_image, form_texts, is_form, read_form, validate_json
from catalens.search.routes.deps import ACCESS_RESPONSES, LIMIT_RESPONSES, LIMITED, READ, EngineDep, SettingsDep
from catalens.search.schemas import ClassificationOut, ClassifyRequest, ClassifyResponse

router = APIRouter(
    prefix="/v1",
    tags=["classify"],
    dependencies=[READ, LIMITED],
    responses={**ACCESS_RESPONSES, **LIMIT_RESPONSES},
)


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
async def classify(engine: EngineDep, settings: SettingsDep, request: Request) -> ClassifyResponse:
    if is_form(request):
        return await _classify_upload(engine, settings, request)
    body = validate_json(ClassifyRequest, await request.body())
    # Limits and templates are checked before any item is read or any label embedded (QueryError -> 422).
    await run_in_threadpool(engine.label_vectors, body.labels, body.templates)
    results = await run_in_threadpool(engine.classify_items, body.ids, body.labels, body.templates, body.top_k)
    return ClassifyResponse(results=[ClassificationOut.of(r) for r in results])


async def _classify_upload(engine: EngineDep, settings: SettingsDep, request: Request) -> ClassifyResponse:
    limits = engine.classify_limits
    form = await read_form(request, max_fields=limits.max_labels + limits.max_templates + 8)
    image = form_image(form)
    labels = [part.strip() for value in form_texts(form, "labels") for part in value.split(",") if part.strip()]
    templates = form_texts(form, "templates") or None
    top_k_text = form_texts(form, "top_k")
    try:
        top_k = int(top_k_text[-1]) if top_k_text else 3
    except ValueError:
        raise HTTPException(status_code=422, detail="top_k must be an integer") from None
    if not labels or top_k < 1:
        raise HTTPException(status_code=422, detail="give at least one label and a top_k of at least 1")
    await run_in_threadpool(engine.label_vectors, labels, templates)  # limits first, before decoding
    decoded = await decode_upload(engine, settings, image)
    result = await run_in_threadpool(engine.classify_image, decoded, labels, templates, top_k)
    return ClassifyResponse(results=[ClassificationOut.of(result)])
