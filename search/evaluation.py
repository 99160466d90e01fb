"""Relevance evaluation: how well a store answers a labelled set of queries (``catalens eval``).

A labelled set is JSONL; each row is one of

* a retrieval query: ``{"query": "red apple", "relevant": ["id", ...]}``, or with
  ``"relevant_category": "food"`` (every indexed item of that category is relevant), or with
  ``"query_image": "path.jpg"`` (relative to the set file) instead of ``"query"``;
* a classification case: ``{"id": "item-id", "label": "apple"}``, classified zero-shot against the label
  list (given, or every label in the set).

Retrieval metrics, averaged over queries, with binary relevance:

* ``recall@k``: the fraction of queries with at least one relevant item in the top k (the usual R@k of
  image–text retrieval);
* ``mrr``: the mean of 1 / rank of the first relevant item (0 when none is in the top ``depth``);
* ``ndcg@10``: DCG of the top 10 (gain 1 per relevant item, discount log2(rank + 1)) over the ideal DCG.

Classification: top-1 and top-5 accuracy, and per-label precision, recall and support of the top-1 label.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalens.indexer.errors import ItemError
from catalens.indexer.fetch import Fetcher
from catalens.indexer.images import decode_image
from catalens.indexer.store import ItemFilter
from catalens.models.training.metrics import NDCG_AT as NDCG_AT
from catalens.models.training.metrics import RECALL_AT as RECALL_AT
from catalens.models.training.metrics import first_relevant_rank as first_relevant_rank
from catalens.models.training.metrics import ndcg as ndcg
from catalens.models.training.metrics import retrieval_metrics as retrieval_metrics
from catalens.search.engine import QueryPart, SearchEngine, SearchMode, SearchOptions
from catalens.search.errors import ItemNotFoundError, ItemNotIndexedError, QueryError


@dataclass(frozen=True)
class RetrievalCase:
    """One retrieval query and the ids that count as correct answers."""

    line: int
    query: str | None
    query_image: str | None
    relevant: tuple[str, ...]
    relevant_category: str | None


@dataclass(frozen=True)
class ClassificationCase:
    line: int
    id: str
    label: str


@dataclass(frozen=True)
class EvalSet:
    """A parsed labelled set."""

    path: str
    retrieval: list[RetrievalCase]
    classification: list[ClassificationCase]

    @property
    def labels(self) -> list[str]:
        """Every label the classification cases use, sorted."""
        return sorted({case.label for case in self.classification})


@dataclass
class LabelStats:
    precision: float
    recall: float
    support: int


@dataclass
class EvalReport:
    """Metrics of one store on one set; ``skipped`` lists rows that could not be evaluated, with reasons."""

    store: str
    model: str
    mode: SearchMode = "hybrid"
    queries: int = 0
    retrieval: dict[str, float] = field(default_factory=dict)
    classified: int = 0
    classification: dict[str, float] = field(default_factory=dict)
    per_label: dict[str, LabelStats] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "model": self.model,
            "mode": self.mode,
            "retrieval": {"queries": self.queries, **self.retrieval},
            "classification": {
                "items": self.classified,
                **self.classification,
                "per_label": {label: vars(stats) for label, stats in self.per_label.items()},
            },
            "skipped": self.skipped,
        }


def load_eval_set(path: str | os.PathLike[str]) -> EvalSet:
    """Parse a labelled JSONL set.

    Raises:
        QueryError: the file cannot be read, or a row is neither a retrieval nor a classification case (the
            message names the line).
    """
    source = Path(path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise QueryError(f"cannot read the evaluation set {str(source)!r}: {e.strerror or e}") from e
    retrieval: list[RetrievalCase] = []
    classification: list[ClassificationCase] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            raise QueryError(f"{source}:{number}: invalid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise QueryError(f"{source}:{number}: a row must be a JSON object")
        if "query" in row or "query_image" in row:
            retrieval.append(_retrieval_case(source, number, row))
        elif "id" in row and "label" in row:
            classification.append(ClassificationCase(number, str(row["id"]), str(row["label"])))
        else:
            raise QueryError(
                f"{source}:{number}: expected a retrieval row (query or query_image, with relevant or "
                "relevant_category) or a classification row (id and label)"
            )
    if not retrieval and not classification:
        raise QueryError(f"the evaluation set {str(source)!r} has no rows")
    return EvalSet(str(source), retrieval, classification)


def _retrieval_case(source: Path, number: int, row: dict[str, Any]) -> RetrievalCase:
    relevant = row.get("relevant", [])
    category = row.get("relevant_category")
    if isinstance(relevant, str):
        relevant = [relevant]
    if not isinstance(relevant, list) or (not relevant and not category):
        raise QueryError(f"{source}:{number}: give relevant (a list of ids) or relevant_category")
    image = row.get("query_image")
    if image is not None:
        image = str(image) if os.path.isabs(str(image)) else str(source.parent / str(image))
    query = row.get("query")
    return RetrievalCase(
        line=number,
        query=str(query) if query is not None else None,
        query_image=image,
        relevant=tuple(str(r) for r in relevant),
        relevant_category=str(category) if category is not None else None,
    )


# -- metrics on rankings (pure functions) ------------------------------------------------------------------


def classification_metrics(
    truths: Sequence[str], predictions: Sequence[Sequence[str]], labels: Sequence[str]
) -> tuple[dict[str, float], dict[str, LabelStats]]:
    """Top-1/top-5 accuracy, and per-label precision/recall/support of the top-1 prediction."""
    n = len(truths)
    if n == 0:
        return {}, {}
    top1 = sum(1 for truth, ranked in zip(truths, predictions, strict=True) if ranked[:1] == [truth]) / n
    top5 = sum(1 for truth, ranked in zip(truths, predictions, strict=True) if truth in ranked[:5]) / n
    per_label: dict[str, LabelStats] = {}
    for label in labels:
        predicted = [truth for truth, ranked in zip(truths, predictions, strict=True) if ranked[:1] == [label]]
        support = sum(1 for truth in truths if truth == label)
        hits = sum(1 for truth in predicted if truth == label)
        per_label[label] = LabelStats(
            precision=round(hits / len(predicted), 6) if predicted else 0.0,
            recall=round(hits / support, 6) if support else 0.0,
            support=support,
        )
    return {"top1": round(top1, 6), "top5": round(top5, 6)}, per_label


# -- running a set against a store -------------------------------------------------------------------------


def evaluate(
    engine: SearchEngine,
    cases: EvalSet,
    *,
    labels: Sequence[str] | None = None,
    templates: Sequence[str] | None = None,
    depth: int = 100,
    mode: SearchMode = "hybrid",
) -> EvalReport:
    """Run every case of ``cases`` against ``engine`` and compute the metrics.

    Args:
        engine: the store and model to evaluate.
        cases: the labelled set.
        labels: the label list for classification (default: every label in the set).
        templates: prompt templates for classification (default: the engine's ensemble).
        depth: how many results are ranked per query (MRR counts a first hit beyond it as 0).
        mode: the ranking mode of the retrieval queries (with the engine's fusion settings for hybrid);
            image-only queries rank by vectors in every mode but lexical, where they are skipped.
    """
    report = EvalReport(store=str(engine.store.path), model=engine.encoder.spec, mode=mode)
    rankings: list[list[str]] = []
    relevants: list[set[str]] = []
    options = SearchOptions(k=max(depth, max(RECALL_AT), NDCG_AT), mode=mode)
    with Fetcher() as fetcher:
        for case in cases.retrieval:
            relevant = set(case.relevant) | _category_ids(engine, case.relevant_category)
            if not relevant:
                report.skipped.append(f"line {case.line}: no item is relevant (empty category?)")
                continue
            try:
                parts = []
                if case.query_image is not None:
                    parts.append(QueryPart(image=decode_image(fetcher.read(case.query_image)).image))
                if case.query:
                    parts.append(QueryPart(text=case.query))
                hits = engine.search(parts, options).hits
            except (QueryError, ItemNotFoundError, ItemNotIndexedError, ItemError) as e:
                report.skipped.append(f"line {case.line}: {e}")
                continue
            rankings.append([hit.id for hit in hits])
            relevants.append(relevant)
    report.queries = len(rankings)
    report.retrieval = retrieval_metrics(rankings, relevants)
    if cases.classification:
        _classify(engine, cases, list(labels or cases.labels), templates, report)
    return report


def _category_ids(engine: SearchEngine, category: str | None) -> set[str]:
    if category is None:
        return set()
    keys = engine.store.matching_keys(ItemFilter(categories=(category,)))
    return {item.id for item in engine.store.get_items(keys.tolist()).values()}


def _classify(
    engine: SearchEngine, cases: EvalSet, labels: list[str], templates: Sequence[str] | None, report: EvalReport
) -> None:
    unknown = sorted({case.label for case in cases.classification} - set(labels))
    if unknown:
        raise QueryError(f"classification rows use labels missing from the label list: {', '.join(unknown)}")
    truths: list[str] = []
    predictions: list[list[str]] = []
    for case in cases.classification:
        try:
            result = engine.classify_items([case.id], labels, templates, top_k=5)[0]
        except (ItemNotFoundError, ItemNotIndexedError) as e:
            report.skipped.append(f"line {case.line}: {e}")
            continue
        truths.append(case.label)
        predictions.append([p.label for p in result.predictions])
    report.classified = len(truths)
    report.classification, report.per_label = classification_metrics(truths, predictions, labels)
