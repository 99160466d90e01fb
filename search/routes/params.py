"""Request parameter models of the search routes, and how they become engine options.

``GET /v1/search`` and ``GET /v1/items/{id}/similar`` take query-parameter models; ``POST /v1/search/image``
takes one multipart form model; each takes ``dedupe`` (one item per stored near-duplicate group). Filters
everywhere use the shared syntax of :mod:`catalens.search.query_syntax`: ``attr`` accepts ``name:value`` and
``name=value`` alike, the same expressions as the CLI's ``--filter``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import HTTPException, UploadFile
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from catalens.search.engine import QueryPart, SearchMode, SearchOptions
from catalens.search.query_syntax import parse_filters
from catalens.search.schemas import Filters
from catalens.search.settings import Settings

_ATTR_DOC = "attribute filter name:value or name=value (category and price too, as in --filter); repeat for several"


class PageQuery(BaseModel):
    """Paging and filter query parameters shared by ``GET /v1/search`` and ``GET /v1/items/{id}/similar``.

    Declared as one query-parameter model: FastAPI validates it in a single pydantic pass, about a
    millisecond cheaper per request than ten separately declared parameters.
    """

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=10, ge=1, description="hits per page")
    offset: int = Field(default=0, ge=0, le=10_000)
    min_score: float | None = Field(default=None, ge=-1, le=1)
    collapse: bool = Field(default=False, description="one hit per product_id")
    category: list[str] = Field(default_factory=list, description="category to keep; repeat for several")
    price_min: float | None = Field(default=None, ge=0)
    price_max: float | None = Field(default=None, ge=0)
    attr: list[str] = Field(default_factory=list, description=_ATTR_DOC)
    explain: bool = Field(default=False, description="say why each hit was returned")
    dedupe: bool = Field(default=False, description="one item per stored near-duplicate group (catalens duplicates)")

    def options(self, settings: Settings, mode: SearchMode = "vector") -> SearchOptions:
        """The engine options these parameters ask for; 422 on bad filters or a page over the limit."""
        filters = request_filters(self.category, self.price_min, self.price_max, self.attr)
        return search_options(
            settings,
            filters,
            self.k,
            self.offset,
            self.min_score,
            self.collapse,
            mode=mode,
            explain=self.explain,
            dedupe=self.dedupe,
        )


class SearchQuery(PageQuery):
    """``GET /v1/search`` parameters: the text query plus paging, filters and the ranking mode."""

    q: str = Field(min_length=1, max_length=1000, description="what to look for")
    mode: SearchMode = Field(default="hybrid", description="vector, lexical or hybrid (both fused by rank)")


class SimilarQuery(PageQuery):
    """``GET /v1/items/{id}/similar`` parameters: paging, filters and how "like this" is judged."""

    mode: SearchMode = Field(
        default="hybrid",
        description="hybrid: the item's picture and its own words (more like this) fused by rank; vector: the "
        "picture alone; lexical: the words alone (422 for an item without words)",
    )


class ImageSearchForm(BaseModel):
    """Form fields of ``POST /v1/search/image``: the uploaded image, words to add or avoid, paging, filters."""

    # Injected as Annotated[ImageSearchForm, Form(media_type="multipart/form-data")]: the media type must be
    # named because FastAPI does not look for the file field inside a form model. Undeclared fields are ignored.

    image: UploadFile = Field(description="JPEG, PNG, WebP, GIF, BMP or TIFF")
    text: str | None = Field(default=None, max_length=1000, description="words to add: 'but in red'")
    negative: str | None = Field(default=None, max_length=1000, description="words to move away from")
    image_weight: float = Field(default=1.0, ge=0, le=100)
    text_weight: float = Field(default=1.0, ge=0, le=100)
    k: int = Field(default=10, ge=1)
    offset: int = Field(default=0, ge=0, le=10_000)
    min_score: float | None = Field(default=None, ge=-1, le=1)
    collapse: bool = False
    category: list[str] | None = None
    price_min: float | None = Field(default=None, ge=0)
    price_max: float | None = Field(default=None, ge=0)
    attr: list[str] | None = None
    mode: SearchMode = Field(default="hybrid", description="hybrid also matches the words of `text`")
    explain: bool = False
    dedupe: bool = Field(default=False, description="one item per stored near-duplicate group")

    def options(self, settings: Settings) -> SearchOptions:
        """The engine options this form asks for; 422 on bad filters or a page over the limit."""
        filters = request_filters(self.category or [], self.price_min, self.price_max, self.attr or [])
        return search_options(
            settings,
            filters,
            self.k,
            self.offset,
            self.min_score,
            self.collapse,
            mode=self.mode,
            explain=self.explain,
            dedupe=self.dedupe,
        )

    def parts(self, image: Image.Image) -> list[QueryPart]:
        """The weighted query: the decoded image, plus ``text`` and minus ``negative`` when given."""
        parts = [QueryPart(image=image, weight=self.image_weight)]
        if self.text and self.text.strip():
            parts.append(QueryPart(text=self.text, weight=self.text_weight))
        if self.negative and self.negative.strip():
            parts.append(QueryPart(text=self.negative, weight=-self.text_weight))
        return parts


def request_filters(
    categories: Sequence[str], price_min: float | None, price_max: float | None, attr: Sequence[str]
) -> Filters:
    """The filters of a request: its category and price parameters, and its ``attr`` filter expressions.

    ``attr`` takes the shared filter syntax, so it may also name categories or a price range; every
    condition must hold, so two price bounds of one side combine to the tighter. A repeated attribute name
    keeps its last value.

    Raises:
        HTTPException: 422 with the message of a malformed expression or an inverted price range.
    """
    try:
        parsed = parse_filters(attr, what="attr")
        return Filters(
            categories=[*categories, *parsed.categories],
            price_min=_tighter(max, price_min, parsed.price_min),
            price_max=_tighter(min, price_max, parsed.price_max),
            attributes=dict(parsed.attributes),
        )
    except ValueError as e:  # QueryError and pydantic's ValidationError are both ValueErrors
        raise HTTPException(status_code=422, detail=str(e)) from None


def _tighter(pick: Callable[[float, float], float], given: float | None, parsed: float | None) -> float | None:
    if given is None or parsed is None:
        return given if parsed is None else parsed
    return pick(given, parsed)


def search_options(
    settings: Settings,
    filters: Filters,
    k: int,
    offset: int,
    min_score: float | None,
    collapse: bool,
    *,
    mode: SearchMode = "hybrid",
    explain: bool = False,
    dedupe: bool = False,
) -> SearchOptions:
    """Engine options for a request; 422 when ``k`` passes the service's ``max_k``."""
    if k > settings.max_k:
        raise HTTPException(status_code=422, detail=f"k must be at most {settings.max_k}")
    return SearchOptions(
        k=k,
        offset=offset,
        min_score=min_score,
        where=filters.to_item_filter(),
        collapse_by_product=collapse,
        mode=mode,
        explain=explain,
        dedupe=dedupe,
    )
