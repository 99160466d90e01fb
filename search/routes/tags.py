"""Tag routes: the review queue of suggestions a tagging run left for a person, and a person's decisions.

``GET /v1/tags/review`` lists the model's ``review`` suggestions, least confident first, each with the values
the person may choose from (the attribute's values in the last run's taxonomy). ``POST /v1/items/{id}/tags``
records a person's decision (accept, correct, reject); a person's tag is never overwritten by a later run.
Item ids may contain slashes, so the decision route is registered before the items router's catch-all
``/v1/items/{id}`` (which only answers GET and DELETE, but would otherwise be tried first).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from catalens.indexer.store import CatalogStore
from catalens.indexer.store.tags import taxonomy_choices
from catalens.indexer.tagging.errors import TagDecisionError
from catalens.search.errors import ItemNotFoundError
from catalens.search.routes.deps import ACCESS_RESPONSES, READ, EngineDep, LinksDep
from catalens.search.schemas import ITEM_NOT_FOUND, STORE_BUSY, TagOut
from catalens.search.security import Caller, require_write
from catalens.search.tag_schemas import ItemTagsOut, ReviewItemOut, ReviewPageOut, TagDecisionIn

router = APIRouter(tags=["tags"], responses=ACCESS_RESPONSES)

#: The most suggestions one review page may ask for.
MAX_REVIEW_PAGE = 500


@dataclass(frozen=True)
class _Choices:
    """What a person may choose for one attribute: its values, in taxonomy order, and whether several may hold."""

    values: tuple[str, ...]
    multi_label: bool


def _choices(store: CatalogStore) -> dict[str, _Choices]:
    """The attributes of the last tagging run's taxonomy (the one its suggestions were made with); ``{}`` when
    the store was never tagged."""
    run = store.tags.last_run()
    if run is None:
        return {}
    try:
        # The store's reading of the taxonomy, so the choices offered are the ones a decision is checked against.
        choices = taxonomy_choices(run.taxonomy)
    except TagDecisionError as e:  # a taxonomy stored by another catalens version: say so rather than a 500
        raise HTTPException(status_code=409, detail=str(e)) from None
    return {name: _Choices(values, multi) for name, (values, multi) in choices.items()}


@router.get(
    "/v1/tags/review",
    response_model=ReviewPageOut,
    summary="Suggestions waiting for a person, least confident first",
    dependencies=[READ],
    responses={409: {"description": "the last tagging run's taxonomy cannot be read by this version"}},
)
def review_queue(
    engine: EngineDep,
    links: LinksDep,
    attribute: Annotated[str | None, Query(min_length=1, max_length=500, description="only this attribute")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_REVIEW_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ReviewPageOut:
    store = engine.store
    choices = _choices(store)
    if attribute is not None and attribute not in choices:
        known = ", ".join(repr(name) for name in choices) or "none (no tagging run yet)"
        raise HTTPException(status_code=422, detail=f"unknown attribute {attribute!r}; the attributes are: {known}")
    if not choices:
        return ReviewPageOut(total=0, items=[])
    entries, total = store.tags.review_queue(attribute, limit=limit, offset=offset)
    found = store.get_items_by_id({e.item_id for e in entries})
    items = []
    for entry in entries:
        item = found.get(entry.item_id)
        choice = choices.get(entry.attribute, _Choices((), False))
        image, thumbnail = links(entry.item_id)
        items.append(
            ReviewItemOut(
                id=entry.item_id,
                attribute=entry.attribute,
                value=entry.value,
                confidence=entry.confidence,
                runner_up=entry.runner_up,
                runner_up_confidence=entry.runner_up_confidence,
                values=list(choice.values),
                multi_label=choice.multi_label,
                title=item.title if item is not None else None,
                image_url=image,
                thumbnail_url=thumbnail,
            )
        )
    return ReviewPageOut(total=total, items=items)


@router.post(
    "/v1/items/{item_id:path}/tags",
    response_model=ItemTagsOut,
    summary="Record a person's decision on an item's tag (accept, correct or reject a value)",
    responses={**ITEM_NOT_FOUND, **STORE_BUSY},
)
def decide(
    engine: EngineDep,
    request: Request,
    caller: Annotated[Caller, Depends(require_write)],
    item_id: str,
    decision: TagDecisionIn,
) -> ItemTagsOut:
    """Accept or correct: the value becomes the attribute's accepted tag (for a single-label attribute, its only
    one); reject: the value is kept as rejected, so no later run proposes it again."""
    store = engine.store
    if store.get_item(item_id) is None:
        raise ItemNotFoundError(item_id)
    who = f"api:{caller.key.name}" if caller.key is not None else "api"
    # flock is per open file, so two requests of this process must also be kept apart (as CatalogWriter does).
    with _decisions_lock(request), store.writer_lock():
        try:
            tags = store.tags.set_by_person(item_id, decision.attribute, decision.value, decision.action, who=who)
        except TagDecisionError as e:
            raise HTTPException(status_code=422, detail=str(e)) from None
    return ItemTagsOut(id=item_id, tags=[TagOut.model_validate(tag) for tag in tags])


def _decisions_lock(request: Request) -> threading.Lock:
    lock: threading.Lock = request.app.state.tag_decisions
    return lock
