"""Loading models through the same spec path users use: tiny random configs and local checkpoints."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalens.models import ImageTextEncoder, LoadOptions, ModelUnavailableError, load_model
from catalens.models.openclip import save_checkpoint
from tests.conftest import pattern_image


def test_encoder_protocol_and_normalisation(tiny_model: Any) -> None:
    assert isinstance(tiny_model, ImageTextEncoder)
    assert tiny_model.dim == 32 and tiny_model.device == "cpu" and tiny_model.logit_scale > 1
    images = tiny_model.encode_images([pattern_image(i) for i in range(3)])
    texts = tiny_model.encode_texts(["a red shoe", "a blue bag"])
    assert images.shape == (3, 32) and texts.shape == (2, 32)
    assert images.dtype == np.float32 and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert tiny_model.encode_images([]).shape == (0, 32)


def test_preprocess_then_encode_pixels_matches_encode_images(tiny_model: Any) -> None:
    images = [pattern_image(i) for i in range(4)]
    pixels = np.stack([tiny_model.preprocess(im) for im in images])
    np.testing.assert_allclose(tiny_model.encode_pixels(pixels), tiny_model.encode_images(images), atol=1e-6)


def test_random_weights_are_seeded(tiny_spec: str, tiny_model: Any) -> None:
    again = load_model(tiny_spec)
    other = load_model(tiny_spec, LoadOptions(seed=1))
    probe = [pattern_image(5)]
    np.testing.assert_allclose(again.encode_images(probe), tiny_model.encode_images(probe), atol=1e-6)
    assert not np.allclose(other.encode_images(probe), tiny_model.encode_images(probe), atol=1e-3)


def test_saved_checkpoint_directory_loads_by_path(tmp_path: Path, tiny_model: Any) -> None:
    folder = save_checkpoint(tiny_model, tmp_path / "finetuned")
    loaded = load_model(str(folder))
    assert loaded.spec == str(folder)
    probe = [pattern_image(3), pattern_image(4)]
    np.testing.assert_allclose(loaded.encode_images(probe), tiny_model.encode_images(probe), atol=1e-6)
    np.testing.assert_allclose(loaded.encode_texts(["shoe"]), tiny_model.encode_texts(["shoe"]), atol=1e-6)


def test_builtin_architecture_with_local_checkpoint_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = load_model("ViT-S-32-alt:random")
    weights = tmp_path / "vit-s-32-alt.safetensors"
    save_file({k: v.contiguous() for k, v in source.torch_module.state_dict().items()}, str(weights))  # type: ignore[attr-defined]
    loaded = load_model(f"ViT-S-32-alt:{weights}", LoadOptions(seed=123))
    probe = [pattern_image(1)]
    np.testing.assert_allclose(loaded.encode_images(probe), source.encode_images(probe), atol=1e-5)


def test_missing_weights_fail_fast_with_guidance(tmp_path: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as caught:
        load_model("ViT-B-32:laion2b_s34b_b79k", LoadOptions(cache_dir=str(tmp_path / "hf-cache")))
    assert time.perf_counter() - started < 20
    message = str(caught.value)
    assert "ViT-B-32:laion2b_s34b_b79k" in message
    assert str(tmp_path / "hf-cache") in message
    assert "HF_HOME" in message and "local checkpoint" in message


def test_hf_hub_offline_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="HF_HUB_OFFLINE=1"):
        load_model("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", LoadOptions(cache_dir=str(tmp_path)))


@pytest.mark.parametrize("size", [(640, 480), (300, 500), (32, 32), (31, 90)])
def test_numpy_preprocess_matches_open_clip_transform(tiny_model: Any, size: tuple[int, int]) -> None:
    image = pattern_image(4, size)
    fast = tiny_model.preprocess(image)
    np.testing.assert_allclose(fast, tiny_model.preprocess_reference(image), atol=1e-5)
    assert fast.dtype == np.float32 and fast.shape == (3, 32, 32)
