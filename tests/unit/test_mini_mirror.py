"""catalens-mini's ``mirror_average``: a checkpoint that asks for it gives a picture and its mirror one vector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps

from catalens.models import load_model
from catalens.models.mini import ImageTowerConfig, MiniCLIP, MiniConfig, TextTowerConfig, save_mini


def _checkpoint(directory: Path, mirror_average: bool) -> Path:
    config = MiniConfig(
        embed_dim=16,
        image=ImageTowerConfig(timm_model="resnet10t", image_size=32, mirror_average=mirror_average),
        text=TextTowerConfig(kind="open_clip", context_length=16, width=32, heads=2, layers=1),
    )
    torch.manual_seed(0)  # the same weights for both checkpoints: only the setting differs
    return save_mini(MiniCLIP(config), directory)


def _boot() -> Image.Image:
    """An asymmetric product: a red boot's leg on the left, its toe pointing right."""
    image = Image.new("RGB", (96, 96), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 10, 40, 70), fill=(200, 30, 40))
    draw.rectangle((20, 60, 80, 80), fill=(120, 20, 30))
    return image


def test_a_picture_and_its_mirror_get_one_unit_vector_only_when_the_checkpoint_asks(tmp_path: Path) -> None:
    boot = _boot()
    mirrored = ImageOps.mirror(boot)
    plain = load_model(str(_checkpoint(tmp_path / "plain", False)))
    averaged = load_model(str(_checkpoint(tmp_path / "averaged", True)))
    left, right = averaged.encode_images([boot, mirrored])
    assert np.allclose(left, right, atol=1e-5)
    assert abs(float(np.linalg.norm(left)) - 1.0) < 1e-5
    plain_left, plain_right = plain.encode_images([boot, mirrored])
    assert not np.allclose(plain_left, plain_right, atol=1e-3)  # without it the tower sees two pictures
    # The averaged vector is the normalised mean of the two plain ones: the same weights, read both ways.
    expected = (plain_left + plain_right) / np.linalg.norm(plain_left + plain_right)
    assert np.allclose(left, expected, atol=1e-4)
    assert plain.weights_digest != averaged.weights_digest  # the setting is part of the checkpoint's identity


def test_a_config_written_before_the_setting_reads_it_as_off(tmp_path: Path) -> None:
    checkpoint = _checkpoint(tmp_path / "old", False)
    path = checkpoint / "mini_config.json"
    raw = json.loads(path.read_text())
    del raw["image"]["mirror_average"]
    path.write_text(json.dumps(raw))
    assert MiniConfig.from_json(path.read_text()).image.mirror_average is False
