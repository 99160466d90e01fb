"""catalens-mini's training texts and batch targets (scripts/train_mini.py): what counts as a right answer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import torch

from catalens.models.fingerprint import file_digest
from tests.conftest import load_script


@pytest.fixture(scope="module")
def train() -> ModuleType:
    return load_script("train_mini")


@pytest.fixture(scope="module")
def emoji(train: ModuleType) -> dict[str, object]:
    make = sys.modules["mini_data"].Emoji
    return {
        "1F34E": make("1F34E", "red apple", "food-drink", "food-fruit", ("apple", "fruit", "red")),
        "1F34C": make("1F34C", "banana", "food-drink", "food-fruit", ("banana", "fruit")),
        "1F45F": make("1F45F", "running shoe", "objects", "clothing", ("shoe", "sneaker")),
    }


def test_a_text_belongs_to_every_class_it_describes(train: ModuleType, emoji: dict[str, object]) -> None:
    bank = train.TextBank(emoji, ["1F34E", "1F34C", "1F45F"], shop=True)
    owners = bank.owners()
    index = {text: i for i, text in enumerate(bank.texts)}
    assert owners[index["an emoji of food and drink"]].tolist() == [0, 1]
    assert owners[index["fruit"]].tolist() == [0, 1]  # a keyword both fruits carry
    assert owners[index["footwear"]].tolist() == [2]  # the shoe's department
    assert owners[bank.labels[1]].tolist() == [1]  # "banana" names one class
    assert bank.texts[bank.labels[0]] == "red apple"


def test_a_shared_text_is_a_right_answer_for_every_picture_it_describes(
    train: ModuleType, emoji: dict[str, object]
) -> None:
    bank = train.TextBank(emoji, ["1F34E", "1F34C", "1F45F"])
    index = {text: i for i, text in enumerate(bank.texts)}
    # Pictures: apple, banana, shoe; the apple drew the food group text, the banana its name, the shoe its name.
    cls = torch.tensor([0, 1, 2])
    texts = torch.tensor([index["an emoji of food and drink"], bank.labels[1], bank.labels[2]])

    plain = train.batch_positives(cls, texts, None)
    assert plain.tolist() == [[True, False, False], [False, True, False], [False, False, True]]
    # With owners the banana is food too, the apple is not "banana" and the shoe is not food.
    shared = train.batch_positives(cls, texts, bank.owners())
    assert shared.tolist() == [[True, False, False], [True, True, False], [False, False, True]]


def test_drawings_that_share_a_title_are_one_class(
    train: ModuleType, emoji: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    drawings = SimpleNamespace(
        titles=["tools", "hammer", "tools"],
        keywords=[["wrench"], ["hammer", "nail"], ["saw"]],
        categories=[["tools"], ["tools"], ["tools", "hand tools"]],
        images=np.zeros((3, 8, 8, 4), dtype=np.uint8),
    )
    monkeypatch.setattr(train.clipart_data, "load_clipart", lambda *args, **kwargs: drawings)
    bank = train.TextBank(emoji, ["1F34E", "1F34C", "1F45F"], shop=True)
    images = torch.zeros((3, 4, 8, 8), dtype=torch.uint8)
    counts: dict[str, int] = {}
    images, labels = train.add_clipart(Path("unused"), bank, images, torch.tensor([0, 1, 2]), counts)

    assert labels.tolist() == [0, 1, 2, 3, 4, 3]  # both "tools" drawings are class 3
    assert counts == {"openclipart": 3, "openclipart_titles": 2}
    assert len(images) == 6
    index = {text: i for i, text in enumerate(bank.texts)}
    assert bank.texts[bank.labels[3]] == "tools"
    assert {"wrench", "saw"} <= {bank.texts[i] for i in bank.by_kind[3]["tags"]}  # keywords of both drawings
    assert bank.owners()[index["hardware"]].tolist() == [3, 4]  # the tools department, for both titles


def _tiny(train: ModuleType, image_size: int, embed_dim: int = 16) -> object:
    config = train.MiniConfig(
        embed_dim=embed_dim,
        image=train.ImageTowerConfig(timm_model="resnet10t", image_size=image_size),
        text=train.TextTowerConfig(kind="open_clip", context_length=16, width=32, heads=2, layers=1),
    )
    return train.MiniCLIP(config)


def test_a_second_phase_starts_from_the_first_at_another_input_size(train: ModuleType, tmp_path: Path) -> None:
    torch.manual_seed(0)
    first = _tiny(train, image_size=32)
    saved = train.save_mini(first, tmp_path / "phase-1")
    torch.manual_seed(1)
    second = _tiny(train, image_size=48)  # the 96-px phase of a 64-px model, in miniature
    provenance = train.start_from(second, saved)
    for name, value in first.trainable_state().items():
        expected = value.half().float() if value.is_floating_point() else value  # saved as fp16
        assert torch.equal(second.state_dict()[name].to(expected.dtype), expected), name
    assert provenance["weights_digest"] == file_digest([saved / "mini_config.json", saved / "mini_model.safetensors"])
    pixels = torch.rand(2, 3, 48, 48)
    assert second.encode_image(pixels).shape == (2, 16)  # global pooling: the tower takes the larger input
    with pytest.raises(SystemExit, match="another architecture"):
        train.start_from(_tiny(train, image_size=32, embed_dim=24), saved)


def test_bfloat16_training_keeps_float32_weights_and_embeddings_close_to_float32(train: ModuleType) -> None:
    torch.manual_seed(0)
    model = _tiny(train, image_size=32)
    pixels = torch.rand(4, 3, 32, 32)
    full = train.encode_pictures(model, pixels, "fp32")
    mixed = train.encode_pictures(model, pixels, "bf16")
    assert mixed.dtype == torch.float32
    assert torch.allclose(mixed.norm(dim=1), torch.ones(4), atol=1e-5)
    assert (full * mixed).sum(1).min().item() > 0.99  # the same embedding up to bfloat16 rounding
    assert not torch.equal(full, mixed)  # bfloat16 arithmetic did run
    mixed.sum().backward()
    gradients = [p.grad for p in model.visual.parameters() if p.grad is not None]
    assert gradients and all(g.dtype == torch.float32 for g in gradients)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_auto_precision_is_bfloat16_only_where_the_cpu_runs_it_natively(train: ModuleType, tmp_path: Path) -> None:
    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f amx_bf16 amx_tile\n")
    avx2 = tmp_path / "avx2"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\nbugs\t\t: avx512_bf16_is_not_a_flag_here\n")
    assert train.resolve_precision("auto", "cpu", amx) == "bf16"
    assert train.resolve_precision("auto", "cpu", avx2) == "fp32"
    assert train.resolve_precision("auto", "cpu", tmp_path / "missing") == "fp32"  # not Linux: stay in float32
    assert train.resolve_precision("bf16", "cpu", avx2) == "bf16"  # asked for explicitly
    assert train.resolve_precision("fp32", "cpu", amx) == "fp32"


def test_the_content_crop_option_takes_a_margin_or_off(train: ModuleType) -> None:
    assert train.content_crop_margin("0.12") == pytest.approx(0.12)
    assert train.content_crop_margin("off") is None
    for bad, why in (("wide", "not a number"), ("1.5", "between 0 and 1"), ("-0.1", "between 0 and 1")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            train.content_crop_margin(bad)


def test_the_scale_range_option_takes_two_ordered_shares(train: ModuleType) -> None:
    assert train.scale_range("0.7,1.0") == (0.7, 1.0)
    for bad, why in (("0.7", "LO,HI"), ("a,b", "LO,HI"), ("1.0,0.7", "LO <= HI"), ("0,1", "0 < LO")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            train.scale_range(bad)


def test_augmentation_draws_the_object_at_the_asked_scale(train: ModuleType) -> None:
    """A red square filling its icon covers about scale² of the frame; the default range is the shipped one."""
    augment = sys.modules["mini_augment"].augment
    icon = torch.zeros(64, 4, 32, 32, dtype=torch.uint8)
    icon[:, 0] = 255
    icon[:, 3] = 255

    def covered(scale: tuple[float, float]) -> torch.Tensor:
        # The same seed draws the same backgrounds for a transparent icon, so the difference is the object.
        drawn = augment(icon, 32, torch.Generator().manual_seed(0), scale_range=scale)
        backgrounds = augment(torch.zeros_like(icon), 32, torch.Generator().manual_seed(0), scale_range=scale)
        return ((drawn - backgrounds).abs().amax(1) > 0.05).float().mean((1, 2))

    small, large = covered((0.5, 0.5)).median().item(), covered((0.9, 0.9)).median().item()
    assert 0.15 < small < 0.4 and 0.6 < large <= 1.0
    default = augment(icon, 32, torch.Generator().manual_seed(0))
    same = augment(icon, 32, torch.Generator().manual_seed(0), scale_range=(0.5, 1.05))
    assert torch.equal(default, same)


def test_an_extra_style_joins_the_training_styles_only_when_named(train: ModuleType, tmp_path: Path) -> None:
    """``--extra-style KEY`` adds that npm set after the recipe's styles; an unknown key is refused."""
    data = sys.modules["mini_data"]
    for icon_set in (*data.TRAIN_SETS, *data.EXTRA_SETS):  # a cache as the first run leaves it: no npm, no cairo
        package = data.npm_dir(icon_set.package, tmp_path) / "package"
        package.mkdir(parents=True)
        (package / "package.json").write_text("{}")
        images = np.full((1, data.RENDER_SIZE, data.RENDER_SIZE, 4), len(icon_set.key), np.uint8)
        path = data.render_path(icon_set.key, tmp_path)
        path.parent.mkdir(exist_ok=True)
        np.savez(path, hexcodes=np.array(["1F34E"]), images=images)
    recipe = [s.key for s in data.training_sets(tmp_path, {})]
    assert recipe == [s.key for s in data.TRAIN_SETS]
    extra = data.EXTRA_SETS[0].key
    widened = data.training_sets(tmp_path, {}, extra=(extra,))
    assert [s.key for s in widened] == [*recipe, extra]
    assert int(widened[-1].images[0, 0, 0, 0]) == len(extra)
    with pytest.raises(ValueError, match="unknown extra style 'sparkles'"):
        data.training_sets(tmp_path, {}, extra=("sparkles",))
