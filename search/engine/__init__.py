"""The query engine: text, image and combined queries, similar items and zero-shot classification.

Queries run in one of three modes: ``vector`` (cosine similarity of embeddings), ``lexical`` (BM25 over the
store's FTS5 index of titles, descriptions, attributes, captions and OCR text) or ``hybrid`` (the default:
both lists fused by reciprocal rank, so a brand name printed on a box and a visual description both count).
Image-only and item-only queries have no words, so hybrid answers them from vectors alone.

Modules, one concern each: ``types`` (queries, options, hits, results), ``snapshot`` (the index generation a
query searches, and its refresh), ``model_access`` (the model and the lock around its forward passes),
``embedding`` (query parts to a vector), ``retrieval`` (the vector and the lexical lists), ``fusion`` (hybrid
ranking), ``classification`` (zero-shot labels), ``recommend`` (more like these, less like those),
``diversity`` (MMR, caps per attribute, grouping, near-duplicate removal), ``session`` (recency weights) and ``facade``
(:class:`SearchEngine`, which composes them).
"""

from __future__ import annotations

from catalens.search.engine.classification import DEFAULT_TEMPLATES, MAX_LABELS, Classifier, ClassifyLimits
from catalens.search.engine.diversity import field_value
from catalens.search.engine.embedding import QueryEmbedder, raw_query_vector
from catalens.search.engine.facade import SearchEngine
from catalens.search.engine.fusion import FusedRanking, fusion_depth, reciprocal_rank_fusion
from catalens.search.engine.model_access import ModelGate
from catalens.search.engine.recommend import Recommender
from catalens.search.engine.retrieval import EXACT_FILTER_LIMIT, MAX_WIDENING, LexicalRetriever, VectorRetriever
from catalens.search.engine.session import DEFAULT_HALF_LIFE, recency_weights, session_examples
from catalens.search.engine.snapshot import Snapshot, Snapshots
from catalens.search.engine.types import (
    MAX_CANDIDATES,
    RECOMMEND_STRATEGIES,
    SEARCH_MODES,
    Classification,
    Example,
    Explanation,
    Fusion,
    Hit,
    HitGroup,
    Prediction,
    QueryPart,
    Recommendation,
    RecommendOptions,
    RecommendStrategy,
    SearchMode,
    SearchOptions,
    SearchResult,
    SkippedExample,
)

__all__ = [
    "DEFAULT_HALF_LIFE",
    "DEFAULT_TEMPLATES",
    "EXACT_FILTER_LIMIT",
    "MAX_CANDIDATES",
    "MAX_LABELS",
    "MAX_WIDENING",
    "RECOMMEND_STRATEGIES",
    "SEARCH_MODES",
    "Classification",
    "Classifier",
    "ClassifyLimits",
    "Example",
    "Explanation",
    "FusedRanking",
    "Fusion",
    "Hit",
    "HitGroup",
    "LexicalRetriever",
    "ModelGate",
    "Prediction",
    "QueryEmbedder",
    "QueryPart",
    "RecommendOptions",
    "RecommendStrategy",
    "Recommendation",
    "Recommender",
    "SearchEngine",
    "SearchMode",
    "SearchOptions",
    "SearchResult",
    "SkippedExample",
    "Snapshot",
    "Snapshots",
    "VectorRetriever",
    "field_value",
    "fusion_depth",
    "raw_query_vector",
    "reciprocal_rank_fusion",
    "recency_weights",
    "session_examples",
]
