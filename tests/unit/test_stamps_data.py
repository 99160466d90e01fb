"""The Tux Paint stamps set (issue 17's kept-aside evaluation) on a tiny fake stamps tree (no Debian package)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from tests.conftest import load_script


@pytest.fixture(scope="module")
def stamps() -> ModuleType:
    return load_script("stamps_data")


def _stamp(root: Path, relative: str, description: str | None, colour: tuple[int, int, int] | None) -> None:
    """A described stamp: ``relative``.txt (English first, then a translation) and a transparent-edged PNG."""
    base = root / relative
    base.parent.mkdir(parents=True, exist_ok=True)
    if description is not None:
        base.with_suffix(".txt").write_text(f"{description}\nfr.utf8=Traduction.\n", encoding="utf-8")
    if colour is not None:
        pixels = np.zeros((300, 200, 4), dtype=np.uint8)
        pixels[50:250, 40:160] = (*colour, 255)
        Image.fromarray(pixels, "RGBA").save(base.with_suffix(".png"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "stamps"
    _stamp(root, "animals/mammals/dog", "A brown dog.", (120, 80, 40))
    _stamp(root, "animals/mammals/dog_shadow", None, (0, 0, 0))  # a variant: no description of its own
    _stamp(root, "food/fruit/apple", "A red apple.", (220, 20, 20))
    _stamp(root, "symbols/star", "A yellow star.", (250, 220, 0))  # outside the 8 kinds: a distractor
    _stamp(root, "seasonal/gift", "A gift.", None)  # a description without a picture
    _stamp(root, "clothes/hat", "A hat.", None)
    (root / "clothes" / "hat.png").write_bytes(b"not a png")  # a picture that cannot be decoded
    (root / "household").mkdir()
    (root / "household" / "empty.txt").write_text("\n")  # no description: not a stamp
    return root


def test_find_stamps_reads_english_descriptions_and_pictures(stamps: ModuleType, tree: Path) -> None:
    found = {s.id: s for s in stamps.find_stamps(tree)}
    assert sorted(found) == ["animals-mammals-dog", "clothes-hat", "food-fruit-apple", "seasonal-gift", "symbols-star"]
    dog = found["animals-mammals-dog"]
    assert (dog.folder, dog.description) == ("animals", "A brown dog.")
    assert dog.picture == tree / "animals" / "mammals" / "dog.png"
    assert found["seasonal-gift"].picture is None


def test_write_stamps_builds_the_gallery_and_both_sets_and_skips_with_reasons(
    stamps: ModuleType, tree: Path, tmp_path: Path
) -> None:
    written = stamps.write_stamps(tmp_path / "out", tree)
    with written.manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == ["animals-mammals-dog", "food-fruit-apple", "symbols-star"]
    assert all(r["title"] == "" for r in rows)  # no words: vectors alone are measured
    picture = Image.open(written.manifest.parent / rows[0]["image"])
    assert picture.mode == "RGB" and max(picture.size) <= stamps.SIZE
    assert picture.getpixel((0, 0)) == (255, 255, 255)  # composited on white
    texts = [json.loads(line) for line in written.sets["stamps_texts"].read_text().splitlines()]
    assert texts == [
        {"query": "A brown dog.", "relevant": ["animals-mammals-dog"]},
        {"query": "A red apple.", "relevant": ["food-fruit-apple"]},
        {"query": "A yellow star.", "relevant": ["symbols-star"]},
    ]
    kinds = [json.loads(line) for line in written.sets["stamps_kinds"].read_text().splitlines()]
    assert kinds == [{"id": "animals-mammals-dog", "label": "animals"}, {"id": "food-fruit-apple", "label": "food"}]
    assert written.stamps == 3
    reasons = dict(written.skipped)
    assert reasons["seasonal-gift"] == "no picture beside the description"
    assert reasons["clothes-hat"].startswith("cannot read hat.png")


def test_a_missing_package_is_a_clear_error(stamps: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(stamps.StampsNotInstalledError, match="apt-get install tuxpaint-stamps-default"):
        stamps.find_stamps(tmp_path / "nowhere")


def test_eval_mini_runs_stamps_only_when_asked(stamps: ModuleType) -> None:
    eval_mini = load_script("eval_mini")
    assert "stamps" not in eval_mini.DEFAULT_SETS
    assert eval_mini.parse_sets("stamps,openmoji") == ["openmoji", "stamps"]
