"""Text towers exported to ONNX: open_clip's padded vectors, a disk cache that survives corruption, a clean fallback."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from catalens.models import LoadOptions, load_model, onnx_text
from catalens.models.onnx_text import MODEL_FILE, TextExportError, default_cache_root, load_or_export
from tests.conftest import TINY_CONFIG

TEXTS = ["red running shoe", "a photo of a ceramic mug with a blue handle and a gold rim", "", "XR-2040"]
LONG = " ".join(["word"] * 100)  # cut at the context length: the end-of-text token sits in the last position

#: A second architecture: other widths and heads, QuickGELU, a biased linear projection, a longer context.
OTHER_CONFIG: dict[str, Any] = {
    "embed_dim": 24,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 32},
    "text_cfg": {
        "context_length": 40,
        "vocab_size": 49408,
        "width": 48,
        "heads": 4,
        "layers": 3,
        "proj_bias": True,
    },
}


def _padded(encoder: Any, texts: list[str]) -> np.ndarray:
    """open_clip's own path: every text padded to the context length, run by torch."""
    with torch.inference_mode():
        features = encoder.torch_module.encode_text(encoder.tokenize(texts))
    return torch.nn.functional.normalize(features, dim=-1).numpy()


def _spec(directory: Path, config: dict[str, Any], name: str) -> str:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache directory for the module, so each architecture is exported once."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module", params=["tiny", "other"])
def onnx_model(request: pytest.FixtureRequest, cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = TINY_CONFIG if request.param == "tiny" else OTHER_CONFIG
    spec = _spec(tmp_path_factory.mktemp("models"), config, request.param)
    return load_model(spec, LoadOptions(text_runtime="onnx", cache_dir=str(cache)))


def test_onnx_gives_open_clips_padded_vectors(onnx_model: Any) -> None:
    assert onnx_model.text_runtime == "onnx"
    np.testing.assert_allclose(onnx_model.encode_texts(TEXTS), _padded(onnx_model, TEXTS), atol=1e-4)
    for text in [*TEXTS, LONG]:  # one query at a time: each at its own length
        np.testing.assert_allclose(onnx_model.encode_texts([text]), _padded(onnx_model, [text]), atol=1e-4)


def test_large_batches_run_in_chunks_of_the_dynamic_batch(onnx_model: Any) -> None:
    texts = [f"a photo of a {i} {TEXTS[i % len(TEXTS)]}" for i in range(70)] + [LONG]
    got = onnx_model.encode_texts(texts, batch_size=32)
    assert got.shape == (len(texts), onnx_model.dim) and got.dtype == np.float32
    np.testing.assert_allclose(got, _padded(onnx_model, texts), atol=1e-4)
    assert onnx_model.encode_texts([]).shape == (0, onnx_model.dim)


def test_a_second_load_uses_the_cached_file_and_a_corrupt_one_is_exported_again(tmp_path: Path) -> None:
    spec = _spec(tmp_path, TINY_CONFIG, "cached")
    options = LoadOptions(text_runtime="torch", cache_dir=str(tmp_path / "cache"))
    encoder = load_model(spec, options)  # torch: the module and tokenizer to export from
    root = default_cache_root(options.cache_dir)
    model, tokenizer = encoder.torch_module, encoder.tokenize

    _, first = load_or_export(encoder.spec, model, tokenizer, root)
    assert first.exported and first.path.is_file() and first.path.parent.parent == root
    _, second = load_or_export(encoder.spec, model, tokenizer, root)
    assert not second.exported and second.path == first.path
    assert [p.name for p in root.iterdir()] == [first.path.parent.name]  # no staging directories left behind

    first.path.write_bytes(b"not an onnx file")
    runner, third = load_or_export(encoder.spec, model, tokenizer, root)
    assert third.exported and third.path == first.path
    tokens = encoder.tokenize(["red running shoe"])[:, :5]
    features = runner(tokens.numpy())
    expected = _padded(encoder, ["red running shoe"])
    np.testing.assert_allclose(features / np.linalg.norm(features), expected, atol=1e-4)


def test_other_weights_get_another_cache_entry(tmp_path: Path) -> None:
    spec = _spec(tmp_path, TINY_CONFIG, "seeded")
    one = load_model(spec, LoadOptions(text_runtime="torch", seed=0)).torch_module
    two = load_model(spec, LoadOptions(text_runtime="torch", seed=1)).torch_module
    assert onnx_text.cache_key(spec, one) == onnx_text.cache_key(spec, one)
    assert onnx_text.cache_key(spec, one) != onnx_text.cache_key(spec, two)
    assert onnx_text.cache_key(spec, one) != onnx_text.cache_key(spec + "-renamed", one)


def test_missing_onnx_falls_back_to_torch_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # `import onnxscript` now raises ImportError
    with caplog.at_level(logging.WARNING, logger=onnx_text.__name__):
        encoder = load_model(_spec(tmp_path, TINY_CONFIG, "no-onnx"), LoadOptions(text_runtime="onnx"))
    assert encoder.text_runtime == "torch"
    assert [r for r in caplog.records if "onnxscript is not installed" in r.getMessage()]
    np.testing.assert_allclose(encoder.encode_texts(TEXTS), _padded(encoder, TEXTS), atol=1e-5)


def test_a_failed_export_falls_back_to_torch_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(model: Any, directory: Path) -> float:
        raise TextExportError("exporting the text tower failed: simulated")

    monkeypatch.setattr(onnx_text, "export_text_tower", broken)
    cache_dir = tmp_path / "cache"
    with caplog.at_level(logging.WARNING, logger=onnx_text.__name__):
        encoder = load_model(
            _spec(tmp_path, TINY_CONFIG, "broken"), LoadOptions(text_runtime="onnx", cache_dir=str(cache_dir))
        )
    assert encoder.text_runtime == "torch"
    assert [r for r in caplog.records if "simulated" in r.getMessage()]
    assert not any(p.name.endswith(MODEL_FILE) for p in cache_dir.rglob("*"))
    np.testing.assert_allclose(encoder.encode_texts(TEXTS), _padded(encoder, TEXTS), atol=1e-5)


def test_the_runtime_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path, TINY_CONFIG, "off")
    cache_dir = tmp_path / "cache"
    assert load_model(spec, LoadOptions(text_runtime="torch", cache_dir=str(cache_dir))).text_runtime == "torch"
    # auto: the tiny tower is below the size where an export pays off.
    assert load_model(spec, LoadOptions(cache_dir=str(cache_dir))).text_runtime == "torch"
    monkeypatch.setenv("CATALENS_TEXT_RUNTIME", "torch")
    big = {**TINY_CONFIG, "text_cfg": {**TINY_CONFIG["text_cfg"], "width": 512, "heads": 8, "layers": 8}}
    encoder = load_model(_spec(tmp_path, big, "big"), LoadOptions(cache_dir=str(cache_dir)))
    assert onnx_text.worth_exporting(encoder.torch_module)  # auto would export it, but the variable says no
    assert encoder.text_runtime == "torch"
    assert not cache_dir.exists()  # nothing was exported


def test_weights_changed_in_place_switch_back_to_torch(tmp_path: Path, cache: Path) -> None:
    """Training updates the torch module in place: the exported graph is stale, so torch takes over."""
    encoder = load_model(
        _spec(tmp_path, TINY_CONFIG, "trained"), LoadOptions(text_runtime="onnx", cache_dir=str(cache))
    )
    assert encoder.text_runtime == "onnx"
    before = encoder.encode_texts(TEXTS)
    with torch.no_grad():
        encoder.torch_module.ln_final.bias.add_(torch.linspace(-1.0, 1.0, TINY_CONFIG["text_cfg"]["width"]))
    after = encoder.encode_texts(TEXTS)
    assert encoder.text_runtime == "torch"
    assert not np.allclose(before, after, atol=1e-3)
    np.testing.assert_allclose(after, _padded(encoder, TEXTS), atol=1e-5)


@pytest.mark.slow
def test_vit_b_32_uses_onnx_by_default(tmp_path: Path) -> None:
    encoder = load_model("ViT-B-32:random", LoadOptions(cache_dir=str(tmp_path)))
    assert encoder.text_runtime == "onnx"
    np.testing.assert_allclose(encoder.encode_texts(TEXTS), _padded(encoder, TEXTS), atol=1e-4)
