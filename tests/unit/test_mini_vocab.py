"""catalens-mini's shop vocabulary and mirroring rule (scripts/mini_vocab.py), used by its training recipe."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.conftest import load_script


@pytest.fixture(scope="module")
def vocab() -> ModuleType:
    return load_script("mini_vocab")


def test_things_are_sold_in_the_department_shops_put_them_in(vocab: ModuleType) -> None:
    # CLDR files the running shoe and the handbag under "clothing"; shops sell them as footwear and accessories.
    assert vocab.department("running shoe", ("athletic", "shoe", "sneaker"), "clothing") == "shoes"
    assert vocab.department("handbag", ("bag", "clothing", "purse"), "clothing") == "accessories"
    assert vocab.department("t-shirt", ("clothing", "shirt", "tshirt"), "clothing") == "clothing"
    assert vocab.department("teapot", ("drink", "pot", "tea"), "food-prepared") == "kitchen"
    assert vocab.department("guitar", ("instrument", "music"), "musical-instrument") == "music"
    assert vocab.department("grinning face", ("face", "grin"), "face-smiling") is None  # not goods
    texts = vocab.department_texts("kitchen", "teapot")
    assert {"kitchen", "kitchenware", "teapot, kitchen"} <= set(texts)
    assert all(name in vocab.DEPARTMENTS for name in vocab.SUBGROUP_DEPARTMENT.values())
    assert all(name in vocab.DEPARTMENTS for name in vocab.WORD_DEPARTMENT.values())


def test_only_pictures_that_stay_the_same_thing_are_mirrored(vocab: ModuleType) -> None:
    assert vocab.mirrorable("running shoe", "objects")
    assert not vocab.mirrorable("left arrow", "symbols")
    assert not vocab.mirrorable("flag of Germany", "flags")
    assert not vocab.mirrorable("left-facing fist", "people-body")
    assert not vocab.mirrorable("clockwise vertical arrows", "symbols")
