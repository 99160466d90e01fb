"""New weights under the same model spec are noticed: stores record a weights digest and refuse to mix.

The scenario is a checkpoint directory trained again in place (or ``catalens-mini`` after an upgrade of
catalens): the spec is unchanged, the vectors it makes are not. Checkpoints are tiny open_clip and
catalens-mini models saved in ``tmp_path``; "retraining" is saving another seed's weights over them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from catalens.indexer.errors import StoreModelMismatchError, StoreWeightsMismatchError
from catalens.indexer.pipeline import IndexOptions, IndexReport, index_catalog
from catalens.indexer.store import CatalogStore
from catalens.indexer.store.manifest import MANIFEST_NAME
from catalens.indexer.weights_check import SAME_WEIGHTS_COSINE
from catalens.models import LoadOptions, load_model
from catalens.models.fingerprint import file_digest
from catalens.models.mini import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    ImageTowerConfig,
    MiniCLIP,
    MiniConfig,
    TextTowerConfig,
    save_mini,
)
from catalens.models.openclip import save_checkpoint
from catalens.search.api import create_app
from catalens.search.cli import main
from catalens.search.engine import SearchEngine
from catalens.search.settings import Settings


class Notes:
    """A progress sink that keeps the notes a run writes for people."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None

    def note(self, message: str) -> None:
        self.notes.append(message)


def _index(source: Path, store: Path, spec: str, sink: Any = None, **options: Any) -> IndexReport:
    return index_catalog(source, store, IndexOptions(model=spec, batch_size=4, workers=2, **options), progress=sink)


def _save_open_clip(tiny_spec: str, directory: Path, seed: int) -> str:
    """A tiny open_clip checkpoint directory holding the weights of ``seed``; returns its spec."""
    save_checkpoint(load_model(tiny_spec, LoadOptions(seed=seed)), directory)
    return str(directory)


def _save_mini(directory: Path, seed: int) -> str:
    import torch

    torch.manual_seed(seed)
    config = MiniConfig(
        embed_dim=16,
        image=ImageTowerConfig(timm_model="resnet10t", image_size=32),
        text=TextTowerConfig(kind="open_clip", context_length=16, width=32, heads=2, layers=1),
    )
    save_mini(MiniCLIP(config), directory)
    return str(directory)


def _forget_digest(store_dir: Path) -> None:
    """Make the store look like one written before catalens recorded weights digests."""
    path = store_dir / MANIFEST_NAME
    raw = json.loads(path.read_text())
    raw.pop("model_digest")
    path.write_text(json.dumps(raw))


def test_encoders_report_the_digest_of_the_files_they_loaded(tmp_path: Path, tiny_spec: str) -> None:
    spec = _save_open_clip(tiny_spec, tmp_path / "clip", seed=0)
    first, again = load_model(spec), load_model(spec)
    assert first.weights_digest is not None and first.weights_digest.startswith("sha256:")
    assert again.weights_digest == first.weights_digest  # the same files, the same digest
    _save_open_clip(tiny_spec, tmp_path / "clip", seed=1)
    assert load_model(spec).weights_digest != first.weights_digest  # retrained in place
    mini = _save_mini(tmp_path / "mini", seed=0)
    expected = file_digest([Path(mini) / CONFIG_NAME, Path(mini) / WEIGHTS_NAME])
    assert load_model(mini).weights_digest == expected
    assert load_model("catalens-mini").weights_digest is not None  # the shipped weights are fingerprinted too
    assert load_model(tiny_spec).weights_digest is None  # a seeded architecture has no weight files


def test_a_store_records_the_digest_and_refuses_retrained_weights_until_rebuild(
    tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path]
) -> None:
    catalog, store_dir = make_catalog(6), tmp_path / "store"
    spec = _save_open_clip(tiny_spec, tmp_path / "clip", seed=0)
    old_digest = load_model(spec).weights_digest
    _index(catalog, store_dir, spec)
    with CatalogStore.open(store_dir) as store:
        assert store.manifest.model_digest == old_digest
        old_vectors = dict(zip(*store.iter_vectors().__next__(), strict=True))
    assert _index(catalog, store_dir, spec).embedded == 0  # same weights: nothing to do

    _save_open_clip(tiny_spec, tmp_path / "clip", seed=1)
    new_digest = load_model(spec).weights_digest
    with pytest.raises(StoreWeightsMismatchError, match="--rebuild") as raised:
        _index(catalog, store_dir, spec)
    assert (raised.value.store_digest, raised.value.loaded_digest) == (old_digest, new_digest)
    assert isinstance(raised.value, StoreModelMismatchError)  # callers handling model switches handle this too
    with CatalogStore.open(store_dir) as store:  # nothing was written
        assert store.manifest.model_digest == old_digest and store.vector_count() == 6

    report = _index(catalog, store_dir, spec, rebuild=True)
    assert report.embedded == 6 and not report.failed
    with CatalogStore.open(store_dir) as store:
        assert store.manifest.model_digest == new_digest
        keys, vectors = next(store.iter_vectors())
    assert all(not np.allclose(old_vectors[k], v) for k, v in zip(keys, vectors, strict=True))


def test_readers_refuse_vectors_of_other_weights(
    tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store_dir = tmp_path / "store"
    spec = _save_open_clip(tiny_spec, tmp_path / "clip", seed=0)
    _index(make_catalog(4), store_dir, spec)
    with SearchEngine.open(store_dir, device="cpu") as engine:
        assert engine.search_text("anything").hits
        with TestClient(create_app(Settings(store=store_dir), engine)) as client:
            info = client.get("/v1/info").json()
        assert info["model"] == spec and info["model_digest"] == load_model(spec).weights_digest
    _save_open_clip(tiny_spec, tmp_path / "clip", seed=1)
    with pytest.raises(StoreWeightsMismatchError):
        SearchEngine.open(store_dir, device="cpu")
    code = main(["search", "--store", str(store_dir), "a red square", "--json"])
    _, err = capsys.readouterr()
    assert code != 0 and "--rebuild" in err and "Traceback" not in err
    code = main(["info", "--store", str(store_dir), "--json"])
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out)["model_digest"].startswith("sha256:")


def test_an_older_store_is_checked_by_embedding_a_sample_again(
    tmp_path: Path, make_catalog: Callable[..., Path]
) -> None:
    catalog, store_dir = make_catalog(6), tmp_path / "store"
    spec = _save_mini(tmp_path / "mini", seed=0)
    digest = load_model(spec).weights_digest
    _index(catalog, store_dir, spec)
    _forget_digest(store_dir)

    sink = Notes()  # the same weights: the sample agrees, the digest is recorded, nothing is re-embedded
    assert _index(catalog, store_dir, spec, sink).embedded == 0
    assert any("matched their stored vectors" in note for note in sink.notes)
    with CatalogStore.open(store_dir) as store:
        assert store.manifest.model_digest == digest

    _forget_digest(store_dir)
    _save_mini(tmp_path / "mini", seed=1)  # retrained in place before the store knew digests
    with pytest.raises(StoreWeightsMismatchError, match="cosine") as raised:
        _index(catalog, store_dir, spec)
    assert raised.value.store_digest is None
    assert raised.value.agreement is not None and raised.value.agreement < SAME_WEIGHTS_COSINE
    with CatalogStore.open(store_dir) as store:
        assert store.manifest.model_digest is None  # refused: nothing recorded


def test_an_older_store_whose_images_are_gone_is_trusted_and_says_so(
    tmp_path: Path, make_catalog: Callable[..., Path]
) -> None:
    catalog, store_dir = make_catalog(4), tmp_path / "store"
    spec = _save_mini(tmp_path / "mini", seed=0)
    _index(catalog, store_dir, spec)
    _forget_digest(store_dir)
    moved = tmp_path / "moved"
    catalog.rename(moved)
    sink = Notes()
    _index(moved, store_dir, spec, sink)  # another folder: new items, old ones removed; the check read nothing
    assert any("on trust" in note for note in sink.notes)
    with CatalogStore.open(store_dir) as store:
        assert store.manifest.model_digest == load_model(spec).weights_digest


def test_new_weights_redo_what_was_derived_from_the_vectors(
    tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    catalog, store_dir = make_catalog(4), tmp_path / "store"
    spec = _save_open_clip(tiny_spec, tmp_path / "clip", seed=0)
    _index(catalog, store_dir, spec)
    taxonomy = tmp_path / "taxonomy.json"
    taxonomy.write_text(json.dumps({"attributes": {"kind": {"values": ["animals", "food"]}}}))
    args = ["tag", "run", "--store", str(store_dir), "--taxonomy", str(taxonomy), "--json"]
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["tagged"] == 4
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["tagged"] == 0  # incremental

    _save_open_clip(tiny_spec, tmp_path / "clip", seed=1)
    assert main(args) != 0  # tagging refuses the new text tower against the old image vectors
    assert "--rebuild" in capsys.readouterr().err
    _index(catalog, store_dir, spec, rebuild=True)
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["tagged"] == 4  # every item tagged again
