"""The benchmarks' clip-art pool never holds a training picture, however Debian files it (no Debian package needed)."""

from __future__ import annotations

import random
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from tests.conftest import load_script


@pytest.fixture(scope="module")
def unseen() -> ModuleType:
    return load_script("clipart_unseen")


def _png(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)


@pytest.fixture
def tree(tmp_path: Path, unseen: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Path:
    """animals/cat (training), animals/dog (held out), a symlink to the cat and a byte copy of the dog in dropped
    folders, and computer/icons/z (dropped, nowhere else)."""
    png = tmp_path / "png"
    _png(png / "animals" / "cat.png", (200, 0, 0))
    _png(png / "animals" / "dog.png", (0, 200, 0))
    _png(png / "computer" / "icons" / "z.png", (0, 0, 200))
    (png / "signs_and_symbols").mkdir(parents=True)
    (png / "signs_and_symbols" / "cat_link.png").symlink_to(png / "animals" / "cat.png")
    (png / "computer" / "icons" / "dog_copy.png").write_bytes((png / "animals" / "dog.png").read_bytes())
    data = unseen.clipart_data

    def split(records: list) -> dict[str, list]:  # whole authors in the real split; here: the cat is trained on
        return {
            "train": [r for r in records if "cat" in r.path],
            "held_out": [r for r in records if "cat" not in r.path],
        }

    monkeypatch.setattr(data, "split_records", split)
    monkeypatch.setattr(data, "package_versions", lambda: {"openclipart-png": "test"})
    return png


def test_copies_of_a_training_picture_count_as_training(unseen: ModuleType, tree: Path) -> None:
    drawings = {d.path.relative_to(tree).as_posix(): d for d in unseen.classify(tree, tree.parent / "svg")}
    assert set(drawings) == {"animals/cat.png", "animals/dog.png", "computer/icons/z.png"}  # one per content
    assert drawings["animals/cat.png"].origin == "train"
    assert drawings["animals/dog.png"].origin == "held_out"
    assert drawings["computer/icons/z.png"].origin == "dropped"
    assert "computer/icons" in drawings["computer/icons/z.png"].reason


def test_pools_never_draw_training_pictures_and_report_short_folders(
    unseen: ModuleType, tree: Path, tmp_path: Path
) -> None:
    catalogue = unseen.load_catalogue(tmp_path / "cache", tree, tree.parent / "svg")
    assert not catalogue.source["from_cache"]
    picked, counts = unseen.draw(catalogue, ["animals", "computer"], 5, "unseen", random.Random(0))
    assert [d.path.name for d in picked["animals"]] == ["dog.png"]
    assert [d.path.name for d in picked["computer"]] == ["z.png"]
    assert counts["animals"]["used"] == {"held_out": 1, "dropped": 0}
    assert counts["animals"]["training_pictures_in_folder"] == 1
    report = unseen.pool_report("unseen", counts, catalogue)
    assert report["outside_training_split"] and report["short_categories"] == ["animals", "computer"]
    held, _ = unseen.draw(catalogue, ["animals", "computer"], 5, "held-out", random.Random(0))
    assert [d.path.name for d in held["animals"]] == ["dog.png"] and held["computer"] == []
    assert not unseen.pool_report("train", counts, catalogue)["outside_training_split"]
    with pytest.raises(ValueError, match="held-out"):
        unseen.draw(catalogue, ["animals"], 5, "everything", random.Random(0))


def test_the_sorting_is_cached_until_its_inputs_change(
    unseen: ModuleType, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = unseen.load_catalogue(cache, tree, tree.parent / "svg")
    again = unseen.load_catalogue(cache, tree, tree.parent / "svg")
    assert again.source["from_cache"] and [d.digest for d in again.drawings] == [d.digest for d in first.drawings]
    monkeypatch.setattr(unseen.clipart_data, "package_versions", lambda: {"openclipart-png": "newer"})
    assert not unseen.load_catalogue(cache, tree, tree.parent / "svg").source["from_cache"]
