"""The clip-art data module on a tiny fake openclipart tree (no Debian package needed)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from tests.conftest import load_script

SVG = """<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:dc="http://purl.org/dc/elements/1.1/"
  xmlns:cc="http://web.resource.org/cc/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<metadata><rdf:RDF><cc:Work rdf:about="">
  <dc:title>{title}</dc:title>
  <dc:description>{description}</dc:description>
  <dc:subject><rdf:Bag>{keywords}</rdf:Bag></dc:subject>
  <dc:publisher><cc:Agent><dc:title>Open Clip Art Library</dc:title></cc:Agent></dc:publisher>
  <dc:creator><cc:Agent><dc:title>{author}</dc:title></cc:Agent></dc:creator>
</cc:Work></rdf:RDF></metadata></svg>
"""


@pytest.fixture(scope="module")
def clipart() -> ModuleType:
    return load_script("clipart_data")


@pytest.fixture(scope="module")
def meta(clipart: ModuleType) -> ModuleType:
    return sys.modules["clipart_meta"]  # imported by clipart_data from the scripts folder


def _png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 20)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGBA", (size[0] + 20, size[1] + 20), (0, 0, 0, 0))
    image.paste(Image.new("RGBA", size, (*colour, 255)), (10, 10))
    image.save(path)


def _svg(path: Path, title: str, author: str, keywords: tuple[str, ...] = (), description: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    items = "".join(f"<rdf:li>{k}</rdf:li>" for k in keywords)
    path.write_text(SVG.format(title=title, author=author, keywords=items, description=description))


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    png, svg = tmp_path / "png", tmp_path / "svg"
    _png(png / "food/fruit/apple_bitten_dan_gerhard_01.png", (200, 0, 0))
    _svg(svg / "food/fruit/apple_bitten_dan_gerhard_01.svg", "Apple Bitten", "Dan Gerhards", ("food", "apple"))
    (png / "food/apple_bitten_dan_gerhard_01.png").symlink_to("fruit/apple_bitten_dan_gerhard_01.png")
    _png(png / "animals/cat_jane_doe_01.png", (90, 90, 90))  # no SVG: the title comes from the file name
    _png(png / "animals/dog_jane_doe.png", (120, 80, 0))
    _svg(svg / "animals/dog_jane_doe.svg", "Jane Doe", "Jane Doe", ("dog", "pet"))  # the title is the author
    _png(png / "plants/rose_01.png", (250, 0, 100))
    _svg(svg / "plants/rose_01.svg", "Red Rose 01", "Ann Smith", ("flower",), "A red rose.")
    _png(png / "shapes/stars/star.png", (255, 255, 0))
    _svg(svg / "shapes/stars/star.svg", "Star", "Ann Smith")
    return png, svg


def test_svg_metadata_takes_the_works_title_not_the_agents(meta: ModuleType) -> None:
    parsed = meta.parse_svg_metadata(SVG.format(title="Apple &amp; Pear", author="Dan", keywords="", description=""))
    assert parsed.title == "Apple & Pear"
    assert parsed.creator == "Dan"


@pytest.mark.parametrize(
    ("raw", "author", "expected"),
    [
        ("Apple Bitten", "", "apple bitten"),
        ("Red Rose 01", "", "red rose"),
        ("8 ball", "", "8 ball"),
        ("t-shirt.svg", "", "t-shirt"),
        ("A boy plays soccer", "", "a boy plays soccer"),
        ("Camera Michael Tunnicliffe", "Michael Tunnicliffe", "camera"),
    ],
)
def test_titles_are_cleaned_to_what_people_type(meta: ModuleType, raw: str, author: str, expected: str) -> None:
    assert meta.clean_title(raw, author) == expected


def test_file_names_lose_a_known_possibly_truncated_author(meta: ModuleType) -> None:
    authors = ["Dan Gerhards", "Ganson"]
    assert meta.title_from_filename("apple_bitten_dan_gerhard_01", authors) == "apple bitten"
    assert meta.title_from_filename("apple_with_worm_dan_gerh_01", authors) == "apple with worm"
    assert meta.title_from_filename("burrito_ganson", authors) == "burrito"
    assert meta.title_from_filename("box_r", authors) == "box"


def test_scan_merges_symlinks_drops_abstract_folders_and_falls_back_to_file_names(
    clipart: ModuleType, tree: tuple[Path, Path]
) -> None:
    result = clipart.scan(*tree)
    by_path = {r.path: r for r in result.records}
    assert set(by_path) == {
        "food/fruit/apple_bitten_dan_gerhard_01.png",
        "animals/cat_jane_doe_01.png",
        "animals/dog_jane_doe.png",
        "plants/rose_01.png",
    }
    assert result.files == 6 and result.unique == 5
    assert result.dropped == {"shapes": 1}
    apple = by_path["food/fruit/apple_bitten_dan_gerhard_01.png"]
    assert apple.title == "apple bitten" and apple.title_source == "svg"
    assert apple.categories == ("food", "fruit") and apple.kind == "food" and apple.author == "Dan Gerhards"
    cat = by_path["animals/cat_jane_doe_01.png"]
    assert (cat.title, cat.title_source, cat.kind) == ("cat", "file", "animal")  # "Jane Doe" known from the dog
    dog = by_path["animals/dog_jane_doe.png"]
    assert (dog.title, dog.title_source) == ("dog", "file")
    rose = by_path["plants/rose_01.png"]
    assert (rose.title, rose.keywords, rose.description) == ("red rose", ("flower",), "A red rose.")


def test_held_out_slice_is_whole_authors_and_deterministic(clipart: ModuleType, tree: tuple[Path, Path]) -> None:
    records = clipart.scan(*tree).records
    first = clipart.split_records(records)
    second = clipart.split_records(list(reversed(records)))
    assert {r.path for r in first["held_out"]} == {r.path for r in second["held_out"]}
    held_authors = {r.author for r in first["held_out"]}
    assert held_authors and not held_authors & {r.author for r in first["train"]}
    assert len(first["train"]) + len(first["held_out"]) == len(records)


def test_load_builds_a_cache_with_alpha_and_reads_it_back(
    clipart: ModuleType, tree: tuple[Path, Path], tmp_path: Path
) -> None:
    png, svg = tree
    cache = tmp_path / "cache"
    parts = [clipart.load_clipart(cache, split, 16, png, svg, workers=1) for split in clipart.SPLITS]
    assert sum(len(p) for p in parts) == 4
    assert clipart.cache_path(cache, "train", 16).exists()
    for part in parts:
        assert part.images.shape[1:] == (16, 16, 4) and part.images.dtype == np.uint8
        assert part.source["kept"] == 4 and part.source["schema"] == clipart.SCHEMA_VERSION
    apple = next(p for p in parts if "food/fruit/apple_bitten_dan_gerhard_01.png" in p.paths)
    i = apple.paths.index("food/fruit/apple_bitten_dan_gerhard_01.png")
    pixels = apple.images[i]
    assert pixels[8, 8].tolist() == [200, 0, 0, 255]  # cropped to the drawing, so the centre is the apple
    assert pixels[0, 0, 3] == 0  # a 2:1 drawing leaves transparent bands above and below
    assert apple.texts(i) == ["apple bitten", "food", "apple", "fruit"]
    again = clipart.load_clipart(cache, apple.split, 16, png / "missing", svg)  # from the cache, not the tree
    assert again.paths == apple.paths


def test_a_huge_png_is_drawn_from_its_svg(clipart: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("cairosvg")
    _png(tmp_path / "big.png", (0, 0, 0), (40, 20))
    (tmp_path / "big.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="60" height="40"><rect x="10" y="10" width="40" '
        'height="20" fill="#00ff00"/></svg>'
    )
    assert clipart.png_size(tmp_path / "big.png") == (60, 40)
    monkeypatch.setattr(clipart, "MAX_PNG_PIXELS", 100)
    pixels = clipart.render_png(tmp_path / "big.png", 16, tmp_path / "big.svg")
    assert pixels[8, 8].tolist() == [0, 255, 0, 255]  # the SVG's green, not the PNG's black
    with pytest.raises(ValueError, match="no SVG"):
        clipart.render_png(tmp_path / "big.png", 16, tmp_path / "missing.svg")
