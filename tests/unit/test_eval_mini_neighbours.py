"""eval_mini's picture → picture figure (scripts/eval_mini.py ``neighbour_agreement``) on a store of known vectors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.conftest import load_script


@pytest.fixture(scope="module")
def eval_mini() -> ModuleType:
    return load_script("eval_mini")


def test_neighbour_agreement_counts_the_neighbours_of_the_same_group(
    eval_mini: ModuleType, vector_store: Callable[..., Path], tiny_model: Any, tmp_path: Path
) -> None:
    def vec(*xs: float) -> np.ndarray:
        out = np.zeros(tiny_model.dim, dtype=np.float32)
        out[: len(xs)] = xs
        return out

    # Two a's near the first axis, three b's, one of which (b3) sits among the a's.
    items = {
        "a1": vec(1, 0, 0),
        "a2": vec(0.9, 0.1, 0),
        "b1": vec(0, 1, 0),
        "b2": vec(0, 0.9, 0.1),
        "b3": vec(0.7, 0.3, 0),
    }
    store = vector_store({k: (v, {"category": k[0]}) for k, v in items.items()})
    groups = {k: k[0] for k in items}
    figures = eval_mini.neighbour_agreement(store, groups, k=2)
    # Nearest two: a1 → a2, b3 (1/2); a2 → a1, b3 (1/2); b1 → b2, b3 (1); b2 → b1, b3 (1); b3 → a2, a1 (0).
    assert figures["at2"] == pytest.approx(0.6)
    assert figures["at1"] == pytest.approx(0.8)
    # A random neighbour of an a is an a 1 time in 4, of a b a b 2 times in 4: (2 * 1/4 + 3 * 2/4) / 5.
    assert figures["chance"] == pytest.approx(0.4)
    assert (figures["items"], figures["groups"]) == (5, 2)

    csv_path = tmp_path / "catalog.csv"
    csv_path.write_text("id,image,category\na1,x.png,toys\nb1,y.png,shoes\n")
    assert eval_mini.catalog_groups(csv_path) == {"a1": "toys", "b1": "shoes"}
