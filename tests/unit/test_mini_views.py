"""Paired views for catalens-mini's training (scripts/mini_views.py): which pictures make a batch, and the loss."""

from __future__ import annotations

from types import ModuleType

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import load_script


@pytest.fixture(scope="module")
def views() -> ModuleType:
    return load_script("mini_views")


# Class 0 has three pictures (three styles), class 1 two, class 2 one; pictures are filed out of class order.
LABELS = torch.tensor([1, 0, 2, 0, 1, 0])


def test_each_anchor_is_followed_by_another_picture_of_its_class(views: ModuleType) -> None:
    members = views.class_members(LABELS)
    gen = torch.Generator().manual_seed(0)
    seen: dict[int, set[int]] = {}
    for _ in range(200):
        pick = views.draw_pairs(LABELS, members, 8, gen)
        assert pick.shape == (8,)
        anchors, partners = pick[0::2], pick[1::2]
        assert torch.equal(LABELS[anchors], LABELS[partners])
        for a, p in zip(anchors.tolist(), partners.tolist(), strict=True):
            if LABELS[a] == 2:
                assert p == a  # the only picture of its class: its second augmentation is the positive
            else:
                assert p != a
            seen.setdefault(a, set()).add(p)
    # Every picture is drawn as an anchor, and a picture of class 0 meets both of its class's other pictures.
    assert set(seen) == set(range(len(LABELS)))
    assert seen[1] == {3, 5}
    assert seen[0] == {4}


def test_paired_views_need_an_even_batch(views: ModuleType) -> None:
    members = views.class_members(LABELS)
    with pytest.raises(ValueError, match="even batch size"):
        views.draw_pairs(LABELS, members, 7, torch.Generator())


def test_the_loss_is_low_when_partners_agree_and_high_when_they_do_not(views: ModuleType) -> None:
    gen = torch.Generator().manual_seed(1)
    cls = torch.arange(16).repeat_interleave(2)  # 16 pairs
    base = F.normalize(torch.randn(16, 32, generator=gen), dim=1)
    agreeing = F.normalize(base.repeat_interleave(2, 0) + 0.05 * torch.randn(32, 32, generator=gen), dim=1)
    scattered = F.normalize(torch.randn(32, 32, generator=gen), dim=1)
    low = views.image_contrastive_loss(agreeing, cls, views.SUPCON_SCALE)
    high = views.image_contrastive_loss(scattered, cls, views.SUPCON_SCALE)
    assert float(low) < 0.2 * float(high)
    # Unrelated embeddings score at least chance: one positive among 31 candidates.
    assert float(high) > 0.9 * torch.log(torch.tensor(31.0)).item()


def test_rows_without_a_positive_do_not_count_and_gradients_flow(views: ModuleType) -> None:
    emb = F.normalize(torch.randn(4, 8), dim=1).requires_grad_()
    alone = views.image_contrastive_loss(emb, torch.tensor([0, 1, 2, 3]), views.SUPCON_SCALE)
    assert alone.item() == 0.0
    paired = views.image_contrastive_loss(emb, torch.tensor([0, 0, 1, 2]), views.SUPCON_SCALE)
    # Only rows 0 and 1 count: each has the other as its one positive among three candidates.
    logits = views.SUPCON_SCALE * emb @ emb.T
    row0 = -F.log_softmax(logits[0, [1, 2, 3]], 0)[0]
    row1 = -F.log_softmax(logits[1, [0, 2, 3]], 0)[0]
    assert paired.item() == pytest.approx(((row0 + row1) / 2).item(), rel=1e-5)
    paired.backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0
