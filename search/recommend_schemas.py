"""Pydantic models of ``POST /v1/recommend`` and ``POST /v1/embed``: requests validated here, answers documented.

A recommendation starts from examples: stored item ids (a bare string, or ``{"id", "weight"}``) and raw vectors
(``{"vector", "weight"}``, e.g. one ``/v1/embed`` returned), positive and negative. The answer carries the hits
exactly as :class:`SearchResponse` does, plus the example ids that were skipped and, with ``group_by``, groups.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from catalens.search.engine import Example, Recommendation, RecommendStrategy
from catalens.search.schemas import Filters, FiniteFloat, HitOut

#: The most examples one side (positive or negative) may hold; each costs a vector read (and, with
#: ``best_score``, a neighbour search).
MAX_EXAMPLES = 64
#: The most texts one ``/v1/embed`` call may embed, and the longest text (the search routes' limit).
MAX_EMBED_TEXTS = 64
MAX_TEXT_CHARS = 1000
#: The longest raw vector accepted (the search routes' limit); the model's own dimension is checked later.
MAX_VECTOR_DIM = 8192

ItemId = Annotated[str, Field(min_length=1, max_length=1000, description="a stored item's id")]
AttributeName = Annotated[str, Field(min_length=1, max_length=100)]
EmbedText = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]


class ExampleIn(BaseModel):
    """One weighted example: exactly one of ``id`` (a stored item) or ``vector`` (a raw embedding)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": [n], "properties": {n: {"not": {"type": "null"}}}} for n in ("id", "vector")]
        },
    )

    id: ItemId | None = None
    vector: list[FiniteFloat] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_VECTOR_DIM,
        description="the model's dimension of finite numbers (see /v1/embed); normalised before use",
    )
    weight: FiniteFloat = Field(default=1.0, gt=0, le=100, description="how much this example counts (> 0)")

    @model_validator(mode="after")
    def _exactly_one(self) -> ExampleIn:
        if (self.id is None) == (self.vector is None):
            raise ValueError("an example needs exactly one of id or vector")
        return self


ExampleSpec = ItemId | ExampleIn


def to_example(spec: ExampleSpec) -> Example:
    """The engine's :class:`Example` for a request's example (a bare id has weight 1)."""
    if isinstance(spec, str):
        return Example(item_id=spec)
    vector = np.asarray(spec.vector, dtype=np.float64) if spec.vector is not None else None
    return Example(item_id=spec.id, vector=vector, weight=spec.weight)


class RecommendRequest(BaseModel):
    """More like the positive examples, less like the negative ones: filtered, diversified, capped, grouped.

    In the multipart variant of the route this JSON travels as the ``request`` form field, and the uploaded
    ``image`` is one more positive example, so the JSON may then name no example at all.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["positive"], "properties": {"positive": {"minItems": 1}}},
                {"required": ["negative"], "properties": {"negative": {"minItems": 1}}},
            ]
        },
    )

    positive: list[ExampleSpec] = Field(
        default_factory=list, max_length=MAX_EXAMPLES, description="ids (weight 1), {id, weight} or {vector, weight}"
    )
    negative: list[ExampleSpec] = Field(
        default_factory=list, max_length=MAX_EXAMPLES, description="examples to move away from (negatives only works)"
    )
    strategy: RecommendStrategy = Field(
        default="average",
        description="average: one search for the weighted mean of positives minus negatives; best_score: each "
        "candidate scored against every example, negatives pulling down",
    )
    exclude_inputs: bool = Field(default=True, description="never return the example items")
    k: int = Field(default=10, ge=1, description="hits (or groups, with group_by) per page, at most max_k")
    offset: int = Field(default=0, ge=0, le=10_000)
    filters: Filters = Field(default_factory=Filters)
    min_score: FiniteFloat | None = Field(default=None, ge=-1, le=1)
    collapse_by_product: bool = False
    dedupe: bool = Field(default=False, description="one item per stored near-duplicate group")
    diversity: FiniteFloat = Field(default=0.0, ge=0, le=1, description="0: pure relevance; above 0: MMR reranking")
    candidates: int | None = Field(
        default=None, ge=1, le=10_000, description="the pool diversity, caps and groups pick from (default: 5 x page)"
    )
    max_per: dict[AttributeName, Annotated[int, Field(ge=1, le=10_000)]] = Field(
        default_factory=dict,
        max_length=16,
        description='at most N hits per value of an attribute: {"brand": 2}; category and product_id too',
    )
    group_by: AttributeName | None = Field(default=None, description="an attribute; k and offset then count groups")
    group_size: int = Field(default=3, ge=1, le=100, description="hits per group; k x group_size is at most max_k")
    explain: bool = Field(default=False, description="attach each hit's vector score")
    exclude_ids: list[ItemId] = Field(default_factory=list, max_length=1000, description="ids never returned")

    @model_validator(mode="after")
    def _has_examples(self, info: ValidationInfo) -> RecommendRequest:
        with_image = bool(info.context and info.context.get("image"))
        if not (self.positive or self.negative or with_image):
            raise ValueError("give at least one positive or negative example")
        return self


class SkippedOut(BaseModel):
    id: str
    reason: str = Field(description='"not found" or "not indexed" (with the item\'s error)')


class HitGroupOut(BaseModel):
    value: str = Field(description="the group_by attribute's value the hits share")
    hits: list[HitOut]


class RecommendResponse(BaseModel):
    """A page of recommendations; ``hits`` is empty and ``groups`` set when the request had ``group_by``."""

    hits: list[HitOut]
    k: int
    offset: int
    generation: int | None = Field(description="the index generation that answered")
    skipped: list[SkippedOut] = Field(description="example ids left out: unknown or without a vector")
    groups: list[HitGroupOut] | None = Field(default=None, description="set with group_by, best group first")

    @classmethod
    def of(cls, result: Recommendation, links: Any) -> RecommendResponse:
        groups = None
        if result.groups is not None:
            groups = [HitGroupOut(value=g.value, hits=[HitOut.of(h, links) for h in g.hits]) for g in result.groups]
        return cls(
            hits=[HitOut.of(h, links) for h in result.hits],
            k=result.k,
            offset=result.offset,
            generation=result.generation,
            skipped=[SkippedOut(id=s.item_id, reason=s.reason) for s in result.skipped],
            groups=groups,
        )


class EmbedRequest(BaseModel):
    """Texts to embed: exactly one of ``text`` or ``texts``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": [n], "properties": {n: {"not": {"type": "null"}}}} for n in ("text", "texts")]
        },
    )

    text: EmbedText | None = None
    texts: list[EmbedText] | None = Field(default=None, min_length=1, max_length=MAX_EMBED_TEXTS)

    @model_validator(mode="after")
    def _exactly_one(self) -> EmbedRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of text or texts")
        if any(not t.strip() for t in self.all_texts()):
            raise ValueError("a text to embed must not be blank")
        return self

    def all_texts(self) -> list[str]:
        """The texts to embed, stripped as the search routes strip a query."""
        return [t.strip() for t in ([self.text] if self.text is not None else self.texts or [])]


class EmbedResponse(BaseModel):
    model: str = Field(description="the model spec whose space the vectors are in")
    dim: int
    vectors: list[list[float]] = Field(description="unit vectors, one per text (or one for the image)")


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with every ``$ref`` to its ``$defs`` replaced by the definition itself.

    For a request body documented through ``openapi_extra``: a ``#/$defs/...`` reference would point into the
    OpenAPI document's root, where nothing is. The models here are not recursive, so inlining ends.
    """
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return {**resolve(defs[ref.removeprefix("#/$defs/")]), **resolve(rest)}
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
