"""Recommendations and embeddings: ``POST /v1/recommend`` and ``POST /v1/embed``, JSON or multipart on one path.

Each route reads its body by content type, as ``POST /v1/classify`` does: FastAPI cannot pick a route (or a
body model) by media type, so the handler validates the JSON with the route's pydantic model itself, and the
OpenAPI document names both media types through ``openapi_extra``.

- ``/v1/recommend``: a JSON :class:`RecommendRequest`, or a form with ``image`` (one more positive example,
  weighted by ``image_weight``) and ``request`` (that JSON as text). Only the form runs the model (the image's
  forward pass), so only the form is rate-limited, like ``/v1/search/image``; a JSON request reads stored
  vectors, like ``POST /v1/search``.
- ``/v1/embed``: a JSON :class:`EmbedRequest` (texts), or a form with ``image``; both run the model, so the
  route is rate-limited. The vectors it returns are accepted back as ``{"vector": [...]}`` examples and search
  parts.

Every malformed request is answered 422 with a message (a broken image too, through ``ItemError``); when no
example of a recommendation is usable (every id unknown or unindexed) the engine's ``QueryError`` names them,
also 422: the request, not a resource in its path, is what cannot be answered.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from catalens.search.engine import Example, RecommendOptions, SearchOptions
from catalens.search.recommend_schemas import (
    EmbedRequest,
    EmbedResponse,
    RecommendRequest,
    RecommendResponse,
    inline_schema,
    to_example,
)
from catalens.search.routes.bodies import decode_upload, form_image, form_text, is_form, read_form, validate_json
from catalens.search.routes.deps import (
    ACCESS_RESPONSES,
    LIMIT_RESPONSES,
    LIMITED,
    READ,
    EngineDep,
    LinksDep,
    SettingsDep,
)
from catalens.search.routes.params import search_options
from catalens.search.schemas import BODY_TOO_LARGE, PydanticJSONResponse
from catalens.search.security import Caller, rate_limited, require_read
from catalens.search.settings import Settings

router = APIRouter(prefix="/v1", tags=["recommend"], dependencies=[READ], responses=ACCESS_RESPONSES)

#: Text fields a form may carry: a few, plus room for misplaced ones to get a clear 422.
_MAX_FORM_FIELDS = 16
_IMAGE_DOC = {"type": "string", "format": "binary", "description": "JPEG, PNG, WebP, GIF, BMP or TIFF"}


def _body_doc(model: type[BaseModel], form: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of a route taking ``model`` as JSON or ``form`` as multipart."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": inline_schema(model)},
                "multipart/form-data": {"schema": form},
            },
        }
    }


_RECOMMEND_FORM = {
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {**_IMAGE_DOC, "description": "a positive example"},
        "image_weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 100, "default": 1},
        "request": {
            "type": "string",
            "description": "the application/json request as text (default {}); its examples join the image",
        },
    },
}
_EMBED_FORM = {"type": "object", "required": ["image"], "properties": {"image": _IMAGE_DOC}}


@router.post(
    "/recommend",
    response_model=RecommendResponse,
    summary="More like these examples, less like those",
    description="Examples are stored item ids, {id, weight} or {vector, weight} (e.g. from /v1/embed), or an "
    "uploaded image (multipart). Unknown or unindexed ids are skipped and named in `skipped`; when no example "
    "is left the answer is 422 naming them. The multipart form is rate-limited like /v1/search/image.",
    openapi_extra=_body_doc(RecommendRequest, _RECOMMEND_FORM),
    responses={**BODY_TOO_LARGE, **LIMIT_RESPONSES},
)
async def recommend(
    engine: EngineDep,
    links: LinksDep,
    settings: SettingsDep,
    request: Request,
    caller: Annotated[Caller, Depends(require_read)],
) -> PydanticJSONResponse:
    upload: tuple[UploadFile, float] | None = None
    if is_form(request):
        await rate_limited(request, caller)  # only the form runs the model
        body, upload = await _recommend_form(request)
    else:
        body = validate_json(RecommendRequest, await request.body())
    options, shaping = _options(body, settings)  # every check before an upload is decoded
    positive = [to_example(e) for e in body.positive]
    if upload is not None:
        positive.append(Example(image=await decode_upload(engine, settings, upload[0]), weight=upload[1]))
    negative = [to_example(e) for e in body.negative]
    result = await run_in_threadpool(engine.recommend, positive, negative, options, shaping)
    return PydanticJSONResponse(RecommendResponse.of(result, links))


def _options(body: RecommendRequest, settings: Settings) -> tuple[SearchOptions, RecommendOptions]:
    """The engine options of a recommendation; 422 for a page past ``max_k`` or values the engine refuses."""
    options = search_options(
        settings,
        body.filters,
        body.k,
        body.offset,
        body.min_score,
        body.collapse_by_product,
        mode="vector",
        explain=body.explain,
        dedupe=body.dedupe,
    )
    if body.group_by is not None and body.k * body.group_size > settings.max_k:
        raise HTTPException(status_code=422, detail=f"with group_by, k x group_size must be at most {settings.max_k}")
    if body.exclude_ids:
        options = replace(options, exclude_ids=tuple(body.exclude_ids))
    shaping = RecommendOptions(  # raises QueryError (422)
        strategy=body.strategy,
        exclude_inputs=body.exclude_inputs,
        diversity=body.diversity,
        candidates=body.candidates,
        max_per=dict(body.max_per),
        group_by=body.group_by,
        group_size=body.group_size,
    )
    return options, shaping


@router.post(
    "/embed",
    response_model=EmbedResponse,
    summary="The vector of texts or of an uploaded image",
    description="JSON {text} or {texts} (up to 64), or a multipart form with an image. The vectors are in the "
    "store's model space: send them back as {vector} examples to /v1/recommend or parts to /v1/search.",
    openapi_extra=_body_doc(EmbedRequest, _EMBED_FORM),
    responses={**BODY_TOO_LARGE, **LIMIT_RESPONSES},
    dependencies=[LIMITED],
)
async def embed(engine: EngineDep, settings: SettingsDep, request: Request) -> PydanticJSONResponse:
    if is_form(request):
        form = await read_form(request, max_fields=_MAX_FORM_FIELDS)
        decoded = await decode_upload(engine, settings, form_image(form))
        vectors = await run_in_threadpool(engine.encode_images, [decoded])
    else:
        body = validate_json(EmbedRequest, await request.body())
        vectors = await run_in_threadpool(engine.encode_texts, body.all_texts())
    answer = EmbedResponse(model=engine.encoder.spec, dim=int(vectors.shape[1]), vectors=vectors.tolist())
    return PydanticJSONResponse(answer)


async def _recommend_form(request: Request) -> tuple[RecommendRequest, tuple[UploadFile, float]]:
    """The request JSON of a multipart recommendation, and its image upload with ``image_weight``."""
    form = await read_form(request, max_fields=_MAX_FORM_FIELDS)
    upload = form_image(form)
    text = form_text(form, "request")
    body = validate_json(RecommendRequest, text if text is not None else "{}", context={"image": True})
    weight_text = form_text(form, "image_weight")
    try:
        weight = float(weight_text) if weight_text is not None else 1.0
    except ValueError:
        weight = math.nan
    if not (math.isfinite(weight) and 0 < weight <= 100):
        raise HTTPException(status_code=422, detail="image_weight must be a number above 0 and at most 100")
    return body, (upload, weight)
