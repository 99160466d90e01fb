"""Text queries run at their true token length: the same vectors as open_clip's padded path, on several towers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from catalens.models import LoadOptions, load_model
from catalens.models.openclip_text import encode_text_trimmed, trimmable, trimmed_tokens, true_length
from tests.conftest import TINY_CONFIG

TEXTS = ["red running shoe", "a photo of a ceramic mug with a blue handle and a gold rim", "", "XR-2040"]


def _padded(encoder: Any, texts: list[str]) -> np.ndarray:
    """open_clip's own path: every text padded to the context length."""
    with torch.inference_mode():
        features = encoder.torch_module.encode_text(encoder.tokenize(texts))
    return torch.nn.functional.normalize(features, dim=-1).numpy()


def _config(tmp_path: Path, **text_cfg: Any) -> str:
    config = json.loads(json.dumps(TINY_CONFIG))
    config["text_cfg"].update(text_cfg)
    path = tmp_path / "tiny-variant.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_the_tiny_tower_gives_the_padded_vectors_from_fewer_positions(tiny_model: Any) -> None:
    tokens = tiny_model.tokenize(TEXTS)
    model = tiny_model.torch_module
    assert trimmable(model)
    assert true_length(model, tokens) < tokens.shape[1]  # the work really shrinks
    assert torch.equal(trimmed_tokens(model, tokens), tokens[:, : true_length(model, tokens)])
    np.testing.assert_allclose(tiny_model.encode_texts(TEXTS), _padded(tiny_model, TEXTS), atol=1e-5)
    # One text alone and in a batch with a longer one: the batch runs at its longest text's length.
    np.testing.assert_allclose(tiny_model.encode_texts(TEXTS[:1])[0], tiny_model.encode_texts(TEXTS)[0], atol=1e-5)


def test_a_text_filling_the_whole_context_is_encoded_exactly(tiny_model: Any) -> None:
    long = " ".join(["word"] * 100)  # cut at the context length, end-of-text token in the last position
    np.testing.assert_allclose(tiny_model.encode_texts([long]), _padded(tiny_model, [long]), atol=1e-5)


def test_towers_that_read_the_padding_take_the_padded_path(tmp_path: Path) -> None:
    """``last`` pooling reads the final (padding) position, so trimming would change the vector: it is not used."""
    encoder = load_model(_config(tmp_path, pool_type="last", no_causal_mask=True))
    model = encoder.torch_module
    assert not trimmable(model)
    tokens = encoder.tokenize(TEXTS)
    assert trimmed_tokens(model, tokens) is tokens
    with torch.inference_mode():
        assert torch.equal(encode_text_trimmed(model, tokens), model.encode_text(tokens))
    np.testing.assert_allclose(encoder.encode_texts(TEXTS), _padded(encoder, TEXTS), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["ViT-B-32:random", "RN50:random", "ViT-L-14:random"])
def test_built_in_architectures_give_the_padded_vectors(spec: str) -> None:
    encoder = load_model(spec, LoadOptions(text_runtime="torch"))  # the torch path (ONNX: test_onnx_text.py)
    assert trimmable(encoder.torch_module)
    np.testing.assert_allclose(encoder.encode_texts(TEXTS), _padded(encoder, TEXTS), atol=1e-4)
