"""Caption and OCR passes over a store: through ``catalens index --caption/--ocr``, ``catalens caption`` and
``catalens ocr``, the Python API and HTTP. Real RapidOCR (its models ship in the wheel) reads text the tests
render; captions come from the attribute captioner on the tiny model, or a stand-in that fails on purpose.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont

from catalens.indexer.enrich import EnrichOptions, caption_store
from catalens.indexer.store import CatalogStore, ItemFilter
from catalens.models.captioning import Caption
from catalens.search.api import create_app
from catalens.search.cli import main
from catalens.search.engine import SearchEngine, SearchOptions
from catalens.search.settings import Settings
from tests.conftest import pattern_image

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def product_with_text(text: str, colour: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A coloured product shot with ``text`` printed in a white box, the way a brand sits on packaging."""
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 34) if FONT.exists() else ImageFont.load_default(size=34)
    draw.rectangle((30, 80, 290, 150), fill=(255, 255, 255))
    draw.text((45, 95), text, fill=(20, 20, 20), font=font)
    return image


def write_catalog(folder: Path, items: dict[str, Image.Image]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "catalog.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "title"])
        for item_id, image in items.items():
            image.save(folder / f"{item_id}.png")
            writer.writerow([item_id, f"{item_id}.png", f"Product {item_id}"])
    return folder / "catalog.csv"


@pytest.fixture
def text_catalog(tmp_path: Path) -> Path:
    return write_catalog(
        tmp_path / "catalog",
        {
            "box-1": product_with_text("ZORVIK", (200, 40, 40)),
            "box-2": product_with_text("QUENDAL", (40, 90, 200)),
            "plain-3": pattern_image(3, (320, 240)),
        },
    )


def test_index_with_ocr_and_captions_makes_printed_words_searchable(
    tmp_path: Path, tiny_spec: str, tiny_model: Any, text_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    args = [str(text_catalog), "--store", str(store), "--model", tiny_spec, "--quiet", "--json"]
    assert main(["index", *args, "--caption", "attributes", "--ocr"]) == 0
    report = json.loads(capsys.readouterr().out)
    passes = {p["kind"]: p for p in report["passes"]}
    assert passes["caption"]["done"] == 3 and passes["caption"]["spec"] == f"attributes@{tiny_spec}"
    assert passes["ocr"]["done"] == 3 and passes["ocr"]["spec"] == "rapidocr" and not passes["ocr"]["failed"]

    with SearchEngine.open(store, encoder=tiny_model) as engine:
        hits = engine.search_text("zorvik", SearchOptions(k=3, mode="lexical", explain=True)).hits
        assert [h.id for h in hits] == ["box-1"]
        assert hits[0].explanation is not None and "ocr" in hits[0].explanation.matched_fields
        # The brand is found first in hybrid mode too, although the vectors of a random model know nothing.
        assert engine.search_text("Quendal", SearchOptions(k=3)).hits[0].id == "box-2"
        with TestClient(create_app(Settings(store=store), engine)) as client:
            item = client.get("/v1/items/box-1").json()
            assert item["ocr"]["spec"] == "rapidocr" and item["ocr"]["text"] == "ZORVIK"
            word = item["ocr"]["words"][0]
            assert word["text"] == "ZORVIK" and word["confidence"] > 0.9 and len(word["box"]) == 4
            assert item["caption"]["text"] and set(item["caption"]["tags"]) >= {"category"}
            assert client.get("/v1/items/plain-3").json()["ocr"]["words"] == []  # no text, no garbage

    # A second run finds every item done; `catalens info` counts them.
    assert main(["index", *args, "--caption", "attributes", "--ocr"]) == 0
    again = {p["kind"]: p for p in json.loads(capsys.readouterr().out)["passes"]}
    assert again["caption"]["done"] == 0 and again["caption"]["up_to_date"] == 3
    assert again["ocr"]["done"] == 0 and again["ocr"]["up_to_date"] == 3
    assert main(["info", "--store", str(store), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["passes"] == {"caption": {f"attributes@{tiny_spec}": 3}, "ocr": {"rapidocr": 3}}
    assert main(["info", "--store", str(store)]) == 0
    assert "OCR text    3 by rapidocr" in capsys.readouterr().out


def test_changed_images_are_redone_and_unreadable_ones_recorded(
    tmp_path: Path, tiny_spec: str, text_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    assert main(["index", str(text_catalog), "--store", str(store), "--model", tiny_spec, "--quiet"]) == 0
    assert main(["ocr", "--store", str(store), "--json", "--quiet"]) == 0
    capsys.readouterr()

    # box-2 gets a new image; plain-3's file disappears after indexing (the store still lists it).
    product_with_text("VELMORA", (30, 140, 60)).save(text_catalog.parent / "box-2.png")
    assert main(["index", str(text_catalog), "--store", str(store), "--quiet"]) == 0
    (text_catalog.parent / "plain-3.png").unlink()
    capsys.readouterr()
    assert main(["ocr", "--store", str(store), "--redo", "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["done"] == 2 and [f["id"] for f in report["failed"]] == ["plain-3"]
    assert "no such file" in report["failed"][0]["reason"].lower() or "not found" in report["failed"][0]["reason"]
    with CatalogStore.open(store) as opened:
        item = opened.get_item("box-2")
        assert item is not None
        assert opened.enrichments_for([item.key])[item.key]["ocr"].text == "VELMORA"
        assert opened.enrichment_counts()["ocr"] == {"rapidocr": 2, "rapidocr (failed)": 1}

    # A stricter threshold keeps other words: it is another run, so every readable item is read again.
    assert main(["ocr", "--store", str(store), "--min-confidence", "0.95", "--json", "--quiet"]) == 0
    stricter = json.loads(capsys.readouterr().out)
    assert stricter["spec"] == "rapidocr?min_confidence=0.95" and stricter["done"] == 2
    with pytest.raises(SystemExit) as usage:
        main(["ocr", "--store", str(store), "--min-confidence", "2"])
    assert usage.value.code == 2 and "between 0 and 1" in capsys.readouterr().err

    assert main(["ocr", "--store", str(store), "--engine", "easyocr"]) == 4
    assert "rapidocr" in capsys.readouterr().err
    assert main(["caption", "--store", str(store), "--captioner", "blip9"]) == 4


class FlakyCaptioner:
    """Captions images by their mean colour and breaks on the n-th call, like a run killed mid-way."""

    spec = "flaky"
    default_batch_size = 2

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.fail_on_call = fail_on_call
        self.seen = 0

    def caption(self, images: Sequence[Image.Image]) -> list[Caption]:
        self.calls += 1
        if self.fail_on_call == self.calls:
            raise KeyboardInterrupt
        self.seen += len(images)
        return [Caption(f"shade {int(np.asarray(im.convert('L')).mean())}") for im in images]


def test_an_interrupted_caption_pass_resumes_without_duplicates_or_loss(
    tmp_path: Path, tiny_spec: str, make_catalog: Any
) -> None:
    from catalens.indexer.pipeline import IndexOptions, index_catalog

    store_path = tmp_path / "store"
    index_catalog(make_catalog(9), store_path, IndexOptions(model=tiny_spec))
    with CatalogStore.open(store_path) as store, store.writer_lock():
        with pytest.raises(KeyboardInterrupt):
            caption_store(store, FlakyCaptioner(fail_on_call=3), EnrichOptions())
        assert store.enrichment_counts() == {"caption": {"flaky": 4}}  # two batches of two were committed
        resumed = FlakyCaptioner()
        report = caption_store(store, resumed, EnrichOptions())
        assert (report.done, report.up_to_date, resumed.seen) == (5, 4, 5)
        assert store.enrichment_counts() == {"caption": {"flaky": 9}}
        keys = list(store.get_items(store.matching_keys(ItemFilter())).keys())
        captions = store.enrichments_for(keys)
        assert len(captions) == 9 and all(c["caption"].text.startswith("shade ") for c in captions.values())


def test_blip_captions_are_stored_searchable_and_incremental(
    tmp_path: Path, tiny_spec: str, text_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from catalens.models.captioning import CaptionOptions, load_captioner
    from tests.integration.test_captioners import build_tiny_blip

    blip = build_tiny_blip(tmp_path / "tiny-blip")
    store = tmp_path / "store"
    assert main(["index", str(text_catalog), "--store", str(store), "--model", tiny_spec, "--quiet"]) == 0
    capsys.readouterr()
    caption = ["caption", "--store", str(store), "--captioner", f"blip:{blip}", "--json", "--quiet"]
    assert main([*caption, "--caption-max-tokens", "6", "--caption-batch-size", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["done"] == 3 and report["spec"] == f"blip:{blip}?max_new_tokens=6"

    direct = load_captioner(f"blip:{blip}", CaptionOptions(max_new_tokens=6))
    with CatalogStore.open(store) as opened:
        items = {i: opened.get_item(i) for i in ("box-1", "box-2", "plain-3")}
        found = opened.enrichments_for(item.key for item in items.values() if item is not None)
        for item_id, item in items.items():
            assert item is not None
            image = Image.open(text_catalog.parent / f"{item_id}.png").convert("RGB")
            assert found[item.key]["caption"].text == direct.caption([image])[0].text

    # Same options: nothing to do. Other options are another run: every item is captioned again.
    assert main([*caption, "--caption-max-tokens", "6"]) == 0
    assert json.loads(capsys.readouterr().out)["done"] == 0
    assert main(caption) == 0
    assert json.loads(capsys.readouterr().out)["done"] == 3


def test_the_attribute_captioner_classifies_with_the_stores_own_model(
    tmp_path: Path, tiny_spec: str, make_catalog: Any
) -> None:
    from catalens.indexer.enrich import enrich_store, load_store_captioner
    from catalens.indexer.pipeline import IndexOptions, index_catalog
    from catalens.models.captioning import CaptionOptions, VectorCaptioner

    store_path = tmp_path / "store"
    index_catalog(make_catalog(4), store_path, IndexOptions(model=tiny_spec))
    with CatalogStore.open(store_path) as store:
        captioner = load_store_captioner(store, "attributes", CaptionOptions(device="cpu"))
        assert isinstance(captioner, VectorCaptioner)
        _, vectors = store.vectors_for(store.matching_keys(ItemFilter()))
        assert vectors.shape[0] == 4 and len(captioner.caption_vectors(vectors)) == 4

    # The Python API runs both passes under the writer lock, captions first, loading each model itself.
    reports = enrich_store(store_path, captioner="attributes", caption_options=CaptionOptions(device="cpu"))
    assert [(r.kind, r.spec, r.done) for r in reports] == [("caption", f"attributes@{tiny_spec}", 4)]
    assert enrich_store(store_path) == []
