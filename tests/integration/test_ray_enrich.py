"""Caption and OCR passes on a local Ray (two CPUs): the same rows and failures as a local pass, resumable.

One Ray is started for the module (starting one costs seconds); each pass starts its own actor pool on it.
The captioner is a tiny random BLIP saved to disk, the OCR engine the real RapidOCR (its models ship in the
wheel), kept to two images because it is slow on two cores.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catalens.indexer.distributed import RayOptions
from catalens.indexer.enrich import EnrichOptions, EnrichReport, enrich_store
from catalens.indexer.errors import RayUnavailableError
from catalens.indexer.pipeline import IndexOptions, index_catalog
from catalens.indexer.store import CatalogStore, Enrichment, ItemFilter
from catalens.models.captioning import CaptionOptions
from catalens.search.cli import main
from tests.conftest import pattern_image
from tests.integration.test_captioners import build_tiny_blip
from tests.integration.test_enrich import product_with_text

ray = pytest.importorskip("ray")

#: One model replica: the other CPU reads and decodes.
ON_RAY = RayOptions(actors=1)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the module; every pass joins it (and leaves it running) instead of starting its own."""
    ray.init(address="local", num_cpus=2, include_dashboard=False)  # its own Ray, never another process's
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def blip(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"blip:{build_tiny_blip(tmp_path_factory.mktemp('ray-enrich') / 'tiny-blip')}"


def indexed_store(root: Path, tiny_spec: str, images: dict[str, Any]) -> tuple[Path, Path]:
    """A store indexing ``images`` (saved as PNGs under ``root/catalog``); returns the store and the folder."""
    folder = root / "catalog"
    folder.mkdir(parents=True)
    for name, image in images.items():
        image.save(folder / f"{name}.png")
    store = root / "store"
    index_catalog(folder, store, IndexOptions(model=tiny_spec, workers=1))
    return store, folder


def rows(store: Path, kind: str) -> dict[str, tuple[Any, ...]]:
    """Each item's stored result of ``kind``, without its timestamp: what a search or an export sees."""
    with CatalogStore.open(store) as opened:
        items = opened.get_items(opened.matching_keys(ItemFilter()))
        found = opened.enrichments_for(items)
    result: dict[str, tuple[Any, ...]] = {}
    for key, item in items.items():
        row: Enrichment = found[key][kind]
        result[item.id] = (row.spec, row.content_hash, row.text, row.data, row.error)
    return result


def ids_in_key_order(store: Path) -> list[str]:
    with CatalogStore.open(store) as opened:
        items = opened.get_items(opened.matching_keys(ItemFilter()))
    return [items[key].id for key in sorted(items)]


def failures(report: EnrichReport) -> list[tuple[str, str]]:
    return sorted((f.id, f.reason) for f in report.failed)


class StopAfter:
    """A progress sink that interrupts the run after its first committed batch, like a process killed mid-way."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def start(self, phase: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        raise KeyboardInterrupt

    def finish(self) -> None:
        pass

    def note(self, message: str) -> None:
        self.notes.append(message)


def test_without_ray_installed_ray_passes_say_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    CatalogStore.create(tmp_path / "store", "any-model", 32).close()
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees where Ray is not installed
    hint = r"pip install 'catalens\[ray\]'"
    with pytest.raises(RayUnavailableError, match=hint):
        enrich_store(tmp_path / "store", captioner="blip", options=EnrichOptions(ray=ON_RAY))
    with pytest.raises(RayUnavailableError, match=hint):
        enrich_store(tmp_path / "store", ocr="rapidocr", options=EnrichOptions(ray=ON_RAY))


def test_captions_on_ray_pick_up_after_a_kill_and_are_the_local_rows_with_the_same_failures(
    tmp_path: Path, tiny_spec: str, blip: str, local_ray: None, capsys: pytest.CaptureFixture[str]
) -> None:
    images = {f"item-{i}": pattern_image(i, (90 + 7 * i, 64)) for i in range(6)}
    store, folder = indexed_store(tmp_path, tiny_spec, images)
    # Passes take items in store-key order, and keys follow the order indexing finished items in: break the
    # second and fifth by key, so the killed run's one commit is a readable item whatever that order was.
    gone, corrupt = ids_in_key_order(store)[1:5:3]  # ids are the file names
    (folder / gone).unlink()  # gone after indexing
    (folder / corrupt).write_bytes(b"\x89PNG\r\n\x1a\n broken")  # corrupt after indexing
    options = CaptionOptions(max_new_tokens=4)

    # A run killed after its first commit; the re-run on Ray (through the CLI) does the rest, each item once.
    with pytest.raises(KeyboardInterrupt):
        enrich_store(
            store, captioner=blip, caption_options=options, options=EnrichOptions(batch_size=1), progress=StopAfter()
        )
    command = ["caption", "--store", str(store), "--captioner", blip, "--caption-max-tokens", "4"]
    assert main([*command, "--caption-batch-size", "1", "--ray", "--ray-actors", "1", "--json", "--quiet"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["spec"] == f"{blip}?max_new_tokens=4"
    assert (resumed["up_to_date"], resumed["done"], len(resumed["failed"])) == (1, 3, 2)
    assert resumed["ray"]["actors"] == 1 and resumed["ray"]["address"] == "local"
    assert sum(n["read"] for n in resumed["ray"]["nodes"]) == 5
    assert sum(n["processed"] for n in resumed["ray"]["nodes"]) == 3
    on_ray = rows(store, "caption")
    assert {spec for spec, *_ in on_ray.values()} == {resumed["spec"]}

    # A local run of the same captioner stores the same rows: captions, data, spec and failure reasons.
    [local] = enrich_store(store, captioner=blip, caption_options=options, options=EnrichOptions(redo=True))
    assert rows(store, "caption") == on_ray
    assert [f[0] for f in failures(local)] == sorted([gone, corrupt])
    assert sorted((f["id"], f["reason"]) for f in resumed["failed"]) == failures(local)
    assert local.ray is None and "ray" not in local.to_dict()


def test_ocr_on_ray_reads_the_text_a_local_pass_reads(
    tmp_path: Path, tiny_spec: str, local_ray: None, capsys: pytest.CaptureFixture[str]
) -> None:
    images = {
        "box-1": product_with_text("ZORVIK", (200, 40, 40)),
        "box-2": product_with_text("QUENDAL", (40, 90, 200)),
    }
    store, _ = indexed_store(tmp_path, tiny_spec, images)
    assert main(["ocr", "--store", str(store), "--ray", "--ray-actors", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "Read text in 2 items with rapidocr" in printed and "Ray at local: 1 model replica(s) on CPU" in printed
    on_ray = rows(store, "ocr")
    assert {item: row[2] for item, row in on_ray.items()} == {"box-1.png": "ZORVIK", "box-2.png": "QUENDAL"}
    [local] = enrich_store(store, ocr="rapidocr", options=EnrichOptions(redo=True))
    assert rows(store, "ocr") == on_ray and local.done == 2 and not local.failed
