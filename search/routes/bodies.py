"""Reading request bodies that may be JSON or a multipart form on one path, with a 422 for every malformed one.

FastAPI picks neither a route nor a body model by media type, so the routes that take both (``/v1/classify``,
``/v1/recommend``, ``/v1/embed``) read the body themselves: :func:`is_form` tells which it is, :func:`validate_json`
checks JSON against the route's pydantic model, and the form helpers refuse what the multipart parser or a
misplaced part would otherwise turn into a 400 or a 500. :func:`decode_upload` decodes an uploaded image the way
``/v1/search/image`` does.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from PIL import Image
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from catalens.indexer.images import decode_image
from catalens.search.engine import SearchEngine
from catalens.search.settings import Settings

Model = TypeVar("Model", bound=BaseModel)

#: File parts a form may carry: the image, plus a few misplaced ones to answer with a clear 422.
MAX_FORM_FILES = 4
#: Validation problems named in one 422 (the input itself is never echoed).
MAX_PROBLEMS = 5


def is_form(request: Request) -> bool:
    """Whether the request body is a multipart form (otherwise it is read as JSON)."""
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


def validate_json(model: type[Model], raw: str | bytes, context: dict[str, Any] | None = None) -> Model:
    """``raw`` JSON as ``model``; 422 naming up to :data:`MAX_PROBLEMS` problems with where they are."""
    try:
        return model.model_validate_json(raw, context=context)
    except ValidationError as e:
        problems = []
        for error in e.errors()[:MAX_PROBLEMS]:
            where = ".".join(str(part) for part in error.get("loc", ())) or "body"
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")  # a validator's own words
            problems.append(f"{where}: {message}")
        raise HTTPException(status_code=422, detail="; ".join(problems)) from None


async def read_form(request: Request, *, max_fields: int, max_files: int = MAX_FORM_FILES) -> FormData:
    """Parse the multipart body; an unreadable form (e.g. a part without a name) is a 422, not a 500."""
    try:
        return await request.form(max_files=max_files, max_fields=max_fields)
    except StarletteHTTPException as e:  # Starlette turns its MultiPartException into a 400 inside an app
        raise HTTPException(status_code=422, detail=f"unreadable multipart form: {e.detail}") from None
    except (MultiPartException, KeyError, ValueError) as e:
        raise HTTPException(status_code=422, detail=f"unreadable multipart form: {e}") from None


def form_texts(form: FormData, name: str) -> list[str]:
    """The text values of a form field; a file sent where text belongs is refused, never read as its repr."""
    values = form.getlist(name)
    if any(not isinstance(v, str) for v in values):
        raise HTTPException(status_code=422, detail=f"{name} must be a text field, not a file")
    return [str(v) for v in values]


def form_text(form: FormData, name: str) -> str | None:
    """The last value of a text field, or ``None`` when the form has none."""
    values = form_texts(form, name)
    return values[-1] if values else None


def form_image(form: FormData) -> UploadFile:
    """The form's ``image`` file part; 422 when there is none (or it was sent as text)."""
    image = form.get("image")
    if not isinstance(image, UploadFile):
        raise HTTPException(status_code=422, detail="the form needs an image file field")
    return image


async def decode_upload(engine: SearchEngine, settings: Settings, upload: UploadFile) -> Image.Image:
    """The uploaded image, decoded no larger than the model looks at (``ImageDecodeError`` -> 422)."""
    decoded = await run_in_threadpool(
        decode_image,
        await upload.read(),
        source=upload.filename or "upload",
        draft_size=engine.encoder.decode_size,
        max_pixels=settings.max_image_pixels,
    )
    image: Image.Image = decoded.image
    return image
