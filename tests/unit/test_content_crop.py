"""Content crop: a product on a studio backdrop is framed; scenes, full-frame objects and noise are left whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from catalens.models import load_model
from catalens.models.content_crop import ContentCrop
from catalens.models.mini import ImageTowerConfig, MiniCLIP, MiniConfig, TextTowerConfig, save_mini

RED = (200, 30, 40)


def _shot(size: tuple[int, int] = (400, 300), box: tuple[int, int, int, int] = (170, 110, 230, 170)) -> Image.Image:
    """A red product on white, with a soft grey floor shadow under it (as catalog shots have)."""
    image = Image.new("RGB", size, "white")
    shadow = Image.new("L", size, 0)
    ImageDraw.Draw(shadow).ellipse((box[0], box[3] - 4, box[2], box[3] + 8), fill=80)
    image.paste((90, 90, 90), mask=shadow.filter(ImageFilter.GaussianBlur(3)))
    ImageDraw.Draw(image).rectangle(box, fill=RED)
    return image


def _red_pixels(image: Image.Image) -> int:
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    return int(((pixels[..., 0] > 150) & (pixels[..., 1] < 80)).sum())


def test_a_product_on_a_plain_backdrop_is_framed_square_with_the_margin() -> None:
    crop = ContentCrop(margin=0.1)
    found = crop.find(_shot())
    assert found is not None
    (left, top, right, bottom), backdrop = found.box, found.backdrop
    assert right - left == pytest.approx(bottom - top)
    # The 61-px product plus its shadow, 10 % of the longer side on each side, centred on the product.
    assert 61 * 1.2 <= right - left <= 80 * 1.2
    assert left < 170 and right > 231 and top < 110 and bottom > 171
    assert all(channel > 240 for channel in backdrop)
    framed = crop.apply(_shot())
    assert framed.width == framed.height == round(right - left)
    assert _red_pixels(framed) / (framed.width * framed.height) > 0.4  # was 3 % of the whole picture


def test_a_gradient_backdrop_is_still_a_backdrop() -> None:
    image = Image.new("RGB", (300, 300))
    draw = ImageDraw.Draw(image)
    for y in range(300):
        shade = 250 - y // 5  # 60 levels top to bottom: more than the threshold, smooth at every step
        draw.line([(0, y), (300, y)], fill=(shade, shade, shade - 10))
    draw.ellipse((120, 140, 180, 200), fill=RED)
    found = ContentCrop(margin=0.0).find(image)
    assert found is not None
    left, top, right, bottom = found.box
    assert 55 <= right - left <= 70 and 115 <= left <= 125


def test_a_long_thin_product_is_letterboxed_not_cut() -> None:
    image = Image.new("RGB", (400, 400), (240, 240, 235))
    ImageDraw.Draw(image).rectangle((40, 190, 360, 205), fill=RED)  # a pen across the picture
    before = _red_pixels(image)
    framed = ContentCrop(margin=0.08).apply(image)
    assert framed.width == framed.height > 320
    assert _red_pixels(framed) == before  # every pixel of the pen survives
    assert framed.getpixel((0, 0)) == (240, 240, 235)  # padding, where there is any, is the backdrop
    # What the model reads: the same framing drawn straight at its input size.
    framing = ContentCrop(margin=0.08).find(image)
    assert framing is not None
    small = np.asarray(framing.render(image, 64), dtype=np.int16)
    pen = (small[..., 0] > 150) & (small[..., 1] < 80)
    assert small.shape == (64, 64, 3) and tuple(small[0, 0]) == (240, 240, 235)
    assert pen[:, 5].any() and pen[:, -6].any()  # both ends of the pen are in the picture


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300, 3), np.uint8)), id="scene"),
        pytest.param(Image.new("RGB", (200, 200), "white"), id="empty"),
        pytest.param(_shot((200, 200), (0, 0, 199, 199)), id="full-frame"),
        pytest.param(_shot((400, 400), (200, 200, 202, 202)), id="speck"),
    ],
)
def test_pictures_without_a_framed_product_are_kept_whole(image: Image.Image) -> None:
    crop = ContentCrop()
    assert crop.find(image) is None
    assert crop.apply(image).size == image.size


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="margin"):
        ContentCrop(margin=-0.1)
    with pytest.raises(ValueError, match="probe"):
        ContentCrop(probe=4)


def _checkpoint(directory: Path, content_crop: float | None) -> Path:
    config = MiniConfig(
        embed_dim=16,
        image=ImageTowerConfig(timm_model="resnet10t", image_size=32, content_crop=content_crop),
        text=TextTowerConfig(kind="open_clip", context_length=16, width=32, heads=2, layers=1),
    )
    torch.manual_seed(0)
    return save_mini(MiniCLIP(config), directory)


def test_a_checkpoint_that_asks_for_it_embeds_a_wide_shot_like_a_tight_one(tmp_path: Path) -> None:
    wide = _shot((400, 400), (170, 170, 230, 230))
    tight = ContentCrop(margin=0.08).apply(wide)
    plain = load_model(str(_checkpoint(tmp_path / "plain", None)))
    framed = load_model(str(_checkpoint(tmp_path / "framed", 0.08)))
    wide_plain, tight_plain = plain.encode_images([wide, tight])
    wide_framed, tight_framed = framed.encode_images([wide, tight])
    assert float(wide_framed @ tight_framed) > 0.99  # the model sees (nearly) the same picture
    assert float(wide_plain @ tight_plain) < 0.98  # without it, a wide shot and a tight one differ
    assert plain.weights_digest != framed.weights_digest  # the setting is part of the checkpoint's identity


def test_the_indexer_decodes_a_large_shot_finely_enough_for_the_crop(tmp_path: Path) -> None:
    """A JPEG is decoded at the model's ``decode_size``, not its input size: the framed product keeps its detail."""
    from catalens.indexer.pipeline import IndexOptions, index_catalog
    from catalens.search.engine import SearchEngine

    checkpoint = _checkpoint(tmp_path / "framed", 0.08)
    model = load_model(str(checkpoint))
    assert model.decode_size == 4 * model.image_size
    folder = tmp_path / "catalog"
    folder.mkdir()
    shot = Image.new("RGB", (800, 800), "white")
    draw = ImageDraw.Draw(shot)
    for i in range(12):  # a striped product on a fifth of the picture's side: fine detail at input size
        draw.rectangle((320 + 13 * i, 320, 326 + 13 * i, 480), fill=RED if i % 2 else (30, 60, 200))
    shot.save(folder / "striped.jpg", quality=95)
    index_catalog(folder, tmp_path / "store", IndexOptions(model=str(checkpoint)))
    with SearchEngine.open(tmp_path / "store") as engine:
        stored = engine.item_vector("striped.jpg")
    full = model.encode_images([Image.open(folder / "striped.jpg").convert("RGB")])[0]
    assert float(stored @ full) > 0.995
