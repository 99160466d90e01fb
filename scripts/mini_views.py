"""Paired views for catalens-mini's training (``scripts/train_mini.py --paired-views``).

Why: the image tower only learns image–text alignment, so two pictures of one thing in two drawing styles are
close only as far as each lands near the same words. The held-out style (OpenMoji) and ``similar`` (picture →
picture) need the tower to see *through* a style. Supervised contrastive learning (Khosla et al., 2020, "SupCon")
trains that directly: every batch holds pairs of pictures of one class, as a rule the same emoji in another style
(or another drawing with the same clip-art title), and an image–image InfoNCE pulls each picture to its partner
and pushes it from the rest of the batch. Where a class has one picture the partner is that picture again, which
the batch's independent augmentation turns into a second view (SimCLR's positive pair).

Two pieces, both torch only: :func:`draw_pairs` (which pictures make a batch) and :func:`image_contrastive_loss`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

#: The image–image loss's inverse temperature: SupCon's temperature 0.1.
SUPCON_SCALE = 10.0


class ClassMembers(NamedTuple):
    """Pictures grouped by class, computed once per run: ``order[starts[c]:starts[c + 1]]`` are class c's
    pictures, and ``position[i]`` is picture i's place among them."""

    order: torch.Tensor
    starts: torch.Tensor
    position: torch.Tensor


def class_members(labels: torch.Tensor) -> ClassMembers:
    """Group the pictures by their class labels (see :class:`ClassMembers`)."""
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=int(labels.max()) + 1)
    starts = torch.zeros(len(counts) + 1, dtype=torch.long)
    starts[1:] = torch.cumsum(counts, 0)
    position = torch.empty_like(labels)
    position[order] = torch.arange(len(order)) - starts[labels[order]]
    return ClassMembers(order, starts, position)


def draw_pairs(labels: torch.Tensor, members: ClassMembers, batch_size: int, gen: torch.Generator) -> torch.Tensor:
    """Picture indices for one batch: ``batch_size // 2`` anchors drawn uniformly, each followed by a partner.

    The partner is another picture of the anchor's class where the class has one (drawn uniformly among the
    others), else the anchor itself (its second augmentation is the positive). Uniform anchors keep the mix of
    styles and classes the unpaired recipe sees. Returns a (batch_size,) tensor ``[a0, p0, a1, p1, ...]``.
    """
    if batch_size < 2 or batch_size % 2:
        raise ValueError(f"paired views need an even batch size of at least 2, got {batch_size}")
    order, starts, position = members
    anchors = torch.randint(len(labels), (batch_size // 2,), generator=gen)
    cls = labels[anchors]
    first, size = starts[cls], starts[cls + 1] - starts[cls]
    # Another member: an offset in [1, size) from the anchor's own position in its class, wrapping round.
    own = position[anchors]
    offset = (torch.rand(len(anchors), generator=gen) * (size - 1).clamp(min=0)).long() + 1
    partner = order[first + (own + offset) % size]
    partner = torch.where(size > 1, partner, anchors)
    return torch.stack([anchors, partner], 1).reshape(-1)


def image_contrastive_loss(image: torch.Tensor, cls: torch.Tensor, scale: float) -> torch.Tensor:
    """Supervised contrastive loss over one batch's image embeddings (L2-normalised, one row per picture).

    Row i's positives are the other pictures of its class (at least its partner from :func:`draw_pairs`); the
    rest of the batch are negatives; a picture is never compared with itself. ``scale`` is the inverse
    temperature (SupCon's 0.1 is 10). Rows without a positive do not count.
    """
    image = image.float()
    logits = scale * image @ image.T
    self_mask = torch.eye(len(cls), dtype=torch.bool, device=image.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    positives = (cls[:, None] == cls[None, :]).to(image.device) & ~self_mask
    counted = positives.any(1)
    if not bool(counted.any()):
        return image.sum() * 0.0
    log_prob = F.log_softmax(logits, 1).masked_fill(~positives, 0.0)
    per_row = -log_prob.sum(1) / positives.sum(1).clamp(min=1)
    return per_row[counted].mean()
