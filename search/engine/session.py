"""Session recommendations: a shopper's recent items as positive examples, the most recent weighing most.

A session is the same call as any recommendation (:meth:`SearchEngine.recommend`); only the weights are
chosen here. They decay exponentially with how long ago an item was viewed, counted in views: the item
``half_life`` views back weighs half as much as the latest, so a session drifting from boots to bags
recommends bags without forgetting the boots at once. Exponential decay is the usual choice in session-based
recommenders (it needs no timestamps and one parameter); a half-life of 3 views weighs the last 5 items about
1, 0.79, 0.63, 0.5, 0.4.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from catalens.search.engine.types import Example
from catalens.search.errors import QueryError

#: Views back at which an item weighs half as much as the latest one.
DEFAULT_HALF_LIFE = 3.0


def recency_weights(count: int, half_life: float = DEFAULT_HALF_LIFE) -> list[float]:
    """Weights of ``count`` items listed most recent first: ``0.5 ** (i / half_life)`` for the i-th.

    Raises:
        QueryError: a half-life that is not a positive finite number.
    """
    if not (math.isfinite(half_life) and half_life > 0):
        raise QueryError("the half-life of a session must be a positive number of views")
    return [0.5 ** (i / half_life) for i in range(count)]


def session_examples(recent: Sequence[str], half_life: float = DEFAULT_HALF_LIFE) -> list[Example]:
    """Positive examples for a session's items, most recent first; an item viewed twice counts once, at its latest.

    Raises:
        QueryError: no items, or a bad half-life.
    """
    unique = list(dict.fromkeys(recent))
    if not unique:
        raise QueryError("a session needs at least one recent item")
    return [Example(item_id=i, weight=w) for i, w in zip(unique, recency_weights(len(unique), half_life), strict=True)]
