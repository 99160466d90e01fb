"""Pydantic models at the HTTP boundary: requests are validated here, responses documented in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import Response

from catalens.indexer.lexical import highlight_html
from catalens.indexer.store import Enrichment, ItemFilter, StoredItem
from catalens.search.engine import Classification, Explanation, Hit, SearchMode, SearchResult

#: A JSON number that is neither NaN nor infinite (Python's JSON parser accepts ``NaN`` and ``Infinity``).
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]

#: Classification request limits also written into the schema (the service's settings may tighten them).
MAX_CLASSIFY_IDS = 1000


def _one_given(*names: str) -> dict[str, Any]:
    """A JSON-schema ``oneOf`` saying exactly one of ``names`` is present and not null."""
    return {"oneOf": [{"required": [n], "properties": {n: {"not": {"type": "null"}}}} for n in names]}


class Filters(BaseModel):
    """Metadata filters; every given condition must hold."""

    model_config = ConfigDict(extra="forbid")

    categories: list[str] = Field(default_factory=list, description="the item's category is one of these")
    price_min: FiniteFloat | None = Field(default=None, ge=0)
    price_max: FiniteFloat | None = Field(default=None, ge=0, description="at least price_min when both are given")
    attributes: dict[str, str] = Field(default_factory=dict, description="attribute name -> required value")

    @model_validator(mode="after")
    def _range(self) -> Filters:
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError("price_min must not exceed price_max")
        return self

    def to_item_filter(self) -> ItemFilter:
        return ItemFilter(
            categories=tuple(self.categories),
            price_min=self.price_min,
            price_max=self.price_max,
            attributes=tuple(sorted(self.attributes.items())),
        )


class QueryPartIn(BaseModel):
    """One weighted part of a combined query: exactly one of ``text``, ``item_id`` or ``vector``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_given("text", "item_id", "vector"))

    text: str | None = Field(default=None, min_length=1, max_length=1000)
    item_id: str | None = Field(default=None, min_length=1)
    vector: list[FiniteFloat] | None = Field(
        default=None,
        min_length=1,
        max_length=8192,
        description="the model's dimension of finite numbers (norm at most 1e6); normalised before use",
    )
    weight: FiniteFloat = Field(default=1.0, ge=-100, le=100, description="negative weights push results away")

    @model_validator(mode="after")
    def _exactly_one(self) -> QueryPartIn:
        given = [name for name in ("text", "item_id", "vector") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a query part needs exactly one of text, item_id or vector")
        return self


class SearchRequest(BaseModel):
    """A search: a plain text ``query`` and/or weighted ``parts``, with filters and paging."""

    # The schema says what the validator below checks: a query, or at least one part, must be given.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["query"], "properties": {"query": {"type": "string"}}},
                {"required": ["parts"], "properties": {"parts": {"minItems": 1}}},
            ]
        },
    )

    query: str | None = Field(default=None, min_length=1, max_length=1000, description="text query")
    parts: list[QueryPartIn] = Field(
        default_factory=list, max_length=16, description="weighted parts; give a query, parts or both"
    )
    k: int = Field(default=10, ge=1, description="hits per page, at most the service's max_k (see /v1/info)")
    offset: int = Field(default=0, ge=0, le=10_000)
    min_score: FiniteFloat | None = Field(default=None, ge=-1, le=1)
    filters: Filters = Field(default_factory=Filters)
    collapse_by_product: bool = False
    mode: SearchMode = Field(default="hybrid", description="vector, lexical or hybrid (both fused by rank)")
    explain: bool = Field(default=False, description="say why each hit was returned")
    dedupe: bool = Field(default=False, description="one item per stored near-duplicate group")
    exclude_ids: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="ids never returned, e.g. the item 'more like this' starts from",
    )

    @model_validator(mode="after")
    def _has_query(self) -> SearchRequest:
        if self.query is None and not self.parts:
            raise ValueError("give a query or at least one query part")
        return self


class CatalogItemOut(BaseModel):
    """The catalog fields every item answer carries, with links to its image and thumbnail.

    ``product_id`` ... ``attributes`` are :class:`catalens.indexer.records.CatalogFields`, declared here too
    so that type checkers see them; ``tests/unit/test_store.py`` fails when the two disagree.
    """

    id: str
    product_id: str | None
    title: str | None
    description: str | None
    category: str | None
    price: float | None
    attributes: dict[str, Any]
    source: str
    width: int | None
    height: int | None
    image_url: str
    thumbnail_url: str

    @classmethod
    def from_record(cls, record: Any, links: Any, **overrides: Any) -> Any:
        """Build from an engine or store record whose attribute names match the fields."""
        image, thumbnail = links(record.id)
        fields = {name: getattr(record, name) for name in cls.model_fields if hasattr(record, name)}
        return cls.model_validate({**fields, "image_url": image, "thumbnail_url": thumbnail, **overrides})


class ExplanationOut(BaseModel):
    """Why a hit was returned: its place in the vector and lexical lists, and the fields its words matched."""

    mode: SearchMode
    vector_rank: int | None = Field(description="1-based rank by cosine similarity (null: not in that list)")
    vector_score: float | None = Field(description="cosine similarity to the query")
    lexical_rank: int | None = Field(description="1-based rank by BM25 (null: no word matched)")
    lexical_score: float | None = Field(description="BM25 score of the matched words")
    fused_score: float | None = Field(description="reciprocal-rank fusion score (hybrid mode)")
    matched_fields: dict[str, str] = Field(
        description="field -> excerpt, HTML-escaped, with the matched words in <mark>...</mark>"
    )

    @classmethod
    def of(cls, explanation: Explanation) -> ExplanationOut:
        def rounded(value: float | None) -> float | None:
            return round(value, 6) if value is not None else None

        return cls(
            mode=explanation.mode,
            vector_rank=explanation.vector_rank,
            vector_score=rounded(explanation.vector_score),
            lexical_rank=explanation.lexical_rank,
            lexical_score=rounded(explanation.lexical_score),
            fused_score=rounded(explanation.fused_score),
            matched_fields={name: highlight_html(text) for name, text in explanation.matched_fields.items()},
        )


class HitOut(CatalogItemOut):
    score: float = Field(description="cosine (vector mode), BM25 (lexical) or the fused rank score (hybrid)")
    explanation: ExplanationOut | None = None

    @classmethod
    def of(cls, hit: Hit, links: Any) -> HitOut:
        explanation = ExplanationOut.of(hit.explanation) if hit.explanation else None
        result: HitOut = cls.from_record(hit, links, score=round(hit.score, 6), explanation=explanation)
        return result


class SearchResponse(BaseModel):
    hits: list[HitOut]
    k: int
    offset: int
    generation: int | None = Field(description="the index generation that answered")

    @classmethod
    def of(cls, result: SearchResult, links: Any) -> SearchResponse:
        return cls(
            hits=[HitOut.of(h, links) for h in result.hits],
            k=result.k,
            offset=result.offset,
            generation=result.generation,
        )


class OcrWordOut(BaseModel):
    text: str
    box: list[list[float]] = Field(description="polygon corners in image pixels, clockwise from the top left")
    confidence: float
    line: int = Field(default=0, description="the word's line, in reading order")


class CaptionOut(BaseModel):
    text: str
    spec: str = Field(description="the captioner that wrote it")
    tags: dict[str, str] = Field(default_factory=dict, description="attribute -> value (attribute captioner)")
    scores: dict[str, float] = Field(default_factory=dict, description="attribute -> confidence")


class OcrOut(BaseModel):
    text: str
    spec: str = Field(description="the OCR engine that read it")
    words: list[OcrWordOut]


class TagOut(BaseModel):
    """One tag of an item: a value of a taxonomy attribute, with its decision and where it came from."""

    model_config = ConfigDict(from_attributes=True)

    attribute: str
    value: str
    confidence: float | None = Field(description="the model's calibrated confidence; null for a person's tag")
    decision: Literal["accept", "review", "reject"] = Field(description="accepted tags filter and facet as attributes")
    source: Literal["model", "person"]
    runner_up: str | None = Field(default=None, description="the model's second choice (single-label attributes)")
    runner_up_confidence: float | None = None
    run_id: int | None = Field(default=None, description="the tagging run that wrote it")
    decided_by: str | None = Field(default=None, description="who decided (a person's tag)")
    updated_at: str


class ItemOut(CatalogItemOut):
    status: str
    error: str | None
    created_at: str
    updated_at: str
    caption: CaptionOut | None = Field(default=None, description="null until a caption pass has run")
    ocr: OcrOut | None = Field(default=None, description="text read in the image; null until an OCR pass has run")
    tags: list[TagOut] = Field(default_factory=list, description="tags of every decision (see catalens tag run)")

    @classmethod
    def of(
        cls, item: StoredItem, links: Any, enrichments: dict[str, Enrichment] | None = None, tags: Any = ()
    ) -> ItemOut:
        found = enrichments or {}
        caption = found.get("caption")
        ocr = found.get("ocr")
        result: ItemOut = cls.from_record(
            item,
            links,
            tags=[TagOut.model_validate(tag) for tag in tags],
            caption=CaptionOut(
                text=caption.text,
                spec=caption.spec,
                tags=caption.data.get("tags", {}),
                scores=caption.data.get("scores", {}),
            )
            if caption and caption.error is None
            else None,
            ocr=OcrOut(text=ocr.text, spec=ocr.spec, words=ocr.data.get("words", []))
            if ocr and ocr.error is None
            else None,
        )
        return result


class ClassifyRequest(BaseModel):
    """Zero-shot classification of stored items against a label list."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, max_length=MAX_CLASSIFY_IDS)
    labels: list[str] = Field(
        min_length=1,
        max_length=1000,
        description="unique, non-empty labels; the service's limits on labels, label length and "
        "labels x templates apply (see /v1/info)",
    )
    templates: list[str] | None = Field(
        default=None, max_length=32, description='prompts with exactly one "{}" for the label'
    )
    top_k: int = Field(default=3, ge=1, le=1000)


class PredictionOut(BaseModel):
    label: str
    probability: float
    score: float


class ClassificationOut(BaseModel):
    id: str | None
    predictions: list[PredictionOut]

    @classmethod
    def of(cls, classification: Classification) -> ClassificationOut:
        return cls(
            id=classification.id,
            predictions=[
                PredictionOut(label=p.label, probability=round(p.probability, 6), score=round(p.score, 6))
                for p in classification.predictions
            ],
        )


class ClassifyResponse(BaseModel):
    results: list[ClassificationOut]


class FacetValue(BaseModel):
    value: str
    count: int


class FailedItemOut(BaseModel):
    id: str
    source: str
    reason: str = Field(description="why the item could not be indexed")


class PriceRangeOut(BaseModel):
    min: float = Field(description="the lowest price of an indexed item")
    max: float = Field(description="the highest price of an indexed item")


class CaptionSourcesOut(BaseModel):
    """Where the words of the store's captions came from, and whether hybrid ranking matches them."""

    from_vectors: int = Field(description="captions made from the store's own vectors (the attributes captioner)")
    other: int = Field(description="captions that read the pixels with a model of their own (BLIP, BLIP-2)")
    matched_by_hybrid: bool | None = Field(
        description="whether this service's hybrid ranking matches caption words: not while every caption restates "
        "the vectors, unless CATALENS_VECTOR_CAPTIONS is set; null when the store has no caption"
    )


class ClassifyLimitsOut(BaseModel):
    """The most work one ``POST /v1/classify`` may ask for; a request past one gets 422 naming it."""

    max_labels: int
    max_templates: int
    max_label_chars: int
    max_template_chars: int
    max_prompts: int = Field(description="labels x templates")


class LimitsOut(BaseModel):
    max_k: int = Field(description="the largest page size a request may ask for")
    max_upload_bytes: int = Field(description="the largest request body accepted")
    classify: ClassifyLimitsOut | None = None


class IndexOut(BaseModel):
    """How the current index generation was chosen and what was measured on it (see ``catalens info``)."""

    factory: str
    chosen_by: str | None = Field(default=None, description="auto (planned from size and budget) or given")
    reason: str | None = Field(default=None, description="why auto chose this index")
    search_params: dict[str, int] | None = Field(
        default=None, description="tuned settings: nprobe / efSearch / k_factor, and rerank (exact re-scoring depth)"
    )
    recall_at_10: float | None = Field(default=None, description="measured against exact search on sampled items")
    target_recall: float | None = None
    target_met: bool | None = None
    latency_ms: float | None = Field(default=None, description="median single-query search time, one thread")
    p95_ms: float | None = None
    measured_queries: int | None = None
    bytes_per_vector: float | None = Field(default=None, description="the index file's size per vector")
    memory_budget: int | None = Field(default=None, description="bytes auto planned for")
    trained_on: int | None = None


class InfoOut(BaseModel):
    model: str
    model_digest: str | None = Field(
        default=None, description="digest of the model weights the vectors were made with (none: named by the spec)"
    )
    dim: int
    items: dict[str, int]
    index_factory: str
    generation: int | None
    index: IndexOut | None = Field(default=None, description="the current generation's measured recall and settings")
    index_count: int | None = Field(
        default=None, description="searchable vectors: the index generation plus later changes"
    )
    facets: dict[str, list[FacetValue]] = Field(
        description="item counts per value of category and of every attribute items share, most frequent first"
    )
    price_range: PriceRangeOut | None = Field(default=None, description="null when no indexed item has a price")
    passes: dict[str, dict[str, int]] = Field(
        default_factory=dict, description='caption and OCR passes: {kind: {spec: items}}; "(failed)" specs failed'
    )
    captions: CaptionSourcesOut | None = None
    failures: list[FailedItemOut] = Field(
        default_factory=list, description="items that could not be indexed, most recent first (see ?failures=)"
    )
    limits: LimitsOut | None = None
    index_problem: str | None = Field(
        default=None,
        description="why the current index file is not served (damaged) and what stands in; catalens reindex fixes it",
    )
    tags: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="tags per attribute and decision: {attribute: {accept, review, reject}}"
    )
    read_only: bool = Field(
        default=False, description="a read replica (catalens serve --read-only): item writes answer 405"
    )


class PydanticJSONResponse(Response):
    """Serialise a response model once, with pydantic's own JSON encoder.

    Returning a ``Response`` makes FastAPI skip its re-validation and ``jsonable_encoder`` pass over an
    already valid model, which cost a few milliseconds per search response; ``response_model`` on the
    route still documents the schema.
    """

    media_type = "application/json"

    def __init__(self, model: BaseModel, status_code: int = 200) -> None:
        super().__init__(content=model.model_dump_json(), status_code=status_code)


class JPEGResponse(Response):
    """A JPEG image: the response class of the image routes, so OpenAPI documents ``image/jpeg``."""

    media_type = "image/jpeg"


#: OpenAPI ``responses=`` declarations of the routes, beside the 422 every route documents: what each
#: route may answer besides success, so clients (and schemathesis) find every status documented.
ITEM_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no item with this id"}}
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the image, re-encoded as JPEG",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
    },
    304: {"description": "not modified (the If-None-Match ETag matches)"},
    404: {"description": "no item with this id, or its image cannot be read"},
}
STORE_BUSY: dict[int | str, dict[str, Any]] = {409: {"description": "an indexer is writing to the store; retry"}}
BODY_TOO_LARGE: dict[int | str, dict[str, Any]] = {413: {"description": "the request body passes the upload limit"}}
