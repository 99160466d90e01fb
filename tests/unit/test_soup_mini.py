"""scripts/soup_mini.py: catalens-mini checkpoints that share a first phase average into one loadable model."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

from catalens.models import load_model
from catalens.models.mini import ImageTowerConfig, MiniCLIP, MiniConfig, TextTowerConfig, read_weights, save_mini
from tests.conftest import load_script


@pytest.fixture(scope="module")
def soup() -> ModuleType:
    return load_script("soup_mini")


def _checkpoint(path: Path, seed: int, start: str | None, embed_dim: int = 16) -> Path:
    """A tiny checkpoint with random weights, recorded as trained from ``start`` (a weights digest)."""
    torch.manual_seed(seed)
    config = MiniConfig(
        embed_dim=embed_dim,
        image=ImageTowerConfig(timm_model="resnet10t", image_size=32),
        text=TextTowerConfig(kind="open_clip", context_length=16, width=32, heads=2, layers=1),
        training={"init": {"weights_digest": start}} if start else {},
    )
    return save_mini(MiniCLIP(config), path)


def test_two_second_phases_average_into_a_model_that_loads(soup: ModuleType, tmp_path: Path, capsys) -> None:
    a = _checkpoint(tmp_path / "a", 0, "sha256:phase1")
    b = _checkpoint(tmp_path / "b", 1, "sha256:phase1")
    assert soup.main(["--out", str(tmp_path / "soup"), str(a), str(b)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    wa, wb = read_weights(a / "mini_model.safetensors"), read_weights(b / "mini_model.safetensors")
    mixed = read_weights(tmp_path / "soup" / "mini_model.safetensors")
    assert set(mixed) == set(wa)
    for name, value in mixed.items():
        if value.is_floating_point():
            assert value.dtype == torch.float16  # written as train_mini writes
            expected = (wa[name].float() + wb[name].float()) / 2
            assert torch.allclose(value.float(), expected, atol=1e-3, rtol=1e-3), name
    config = json.loads((tmp_path / "soup" / "mini_config.json").read_text())
    assert [i["checkpoint"] for i in config["training"]["soup"]] == ["a", "b"]
    assert summary["ingredients"] == [i["weights_digest"] for i in config["training"]["soup"]]
    encoder = load_model(str(tmp_path / "soup"))  # the soup is a checkpoint like any other
    assert encoder.dim == 16


def test_checkpoints_without_a_shared_start_are_refused(soup: ModuleType, tmp_path: Path, capsys) -> None:
    a = _checkpoint(tmp_path / "a", 0, "sha256:phase1")
    other_start = _checkpoint(tmp_path / "c", 2, "sha256:another-phase1")
    scratch = _checkpoint(tmp_path / "d", 3, None)
    wider = _checkpoint(tmp_path / "e", 4, "sha256:phase1", embed_dim=24)
    with pytest.raises(soup.SoupError, match="do not share a starting point"):
        soup.make_soup([a, other_start])
    with pytest.raises(soup.SoupError, match="random init"):
        soup.make_soup([a, scratch])
    with pytest.raises(soup.SoupError, match="another architecture"):
        soup.make_soup([a, wider])
    with pytest.raises(soup.SoupError, match="at least two"):
        soup.make_soup([a])
    with pytest.raises(soup.SoupError, match="not a catalens-mini checkpoint"):
        soup.make_soup([a, tmp_path / "missing"])
    assert soup.main(["--out", str(tmp_path / "out"), str(a), str(other_start)]) == 2
    assert "do not share a starting point" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
