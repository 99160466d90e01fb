"""Request and response models of the tagging routes: the review queue and a person's decision."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from catalens.search.schemas import TagOut


class TagDecisionIn(BaseModel):
    """A person's decision on one attribute of an item: accept or correct to ``value``, or reject ``value``."""

    model_config = ConfigDict(extra="forbid")

    attribute: str = Field(min_length=1, max_length=500)
    action: Literal["accept", "correct", "reject"]
    value: str = Field(min_length=1, max_length=1000)


class ItemTagsOut(BaseModel):
    id: str
    tags: list[TagOut] = Field(description="the item's tags after the decision")


class ReviewItemOut(BaseModel):
    """One suggestion waiting for a person: the model's value for an attribute of an item, and the choices."""

    id: str = Field(description="the item's id")
    attribute: str
    value: str = Field(description="the suggested value")
    confidence: float
    runner_up: str | None
    runner_up_confidence: float | None
    values: list[str] = Field(description="every value of the attribute, from the last run's taxonomy")
    multi_label: bool = Field(default=False, description="the item may have several values of the attribute")
    title: str | None
    image_url: str
    thumbnail_url: str


class ReviewPageOut(BaseModel):
    total: int = Field(description="suggestions waiting for review (for the attribute asked, or all)")
    items: list[ReviewItemOut] = Field(description="least confident first")
