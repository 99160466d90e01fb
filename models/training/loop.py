"""Contrastive fine-tuning of an open_clip model on image–text pairs (the training half of `catalens finetune`).

The caller (the catalog job, ``catalens.indexer.finetune``) supplies preprocessed pixels, texts and a
held-out scoring function; this module owns the torch side: tower locking (open_clip's LiT-style
``lock_image_tower`` / ``lock_text_tower``), the symmetric InfoNCE loss (open_clip's ``ClipLoss``), AdamW,
mixed precision on CUDA, early stopping on the held-out score, and restoring the best weights at the end.
torch is imported only when training starts, so the recipe and log types (and the metrics beside them)
can be imported by the CLI and by ``catalens eval`` without it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from catalens.models.errors import ModelError

if TYPE_CHECKING:
    from catalens.models.openclip import OpenClipEncoder


@dataclass(frozen=True)
class FinetuneConfig:
    """How to fine-tune.

    Attributes:
        epochs: the most passes over the training pairs.
        batch_size: pairs per step; in-batch negatives, so larger is better while memory allows.
        lr: AdamW learning rate (1e-5 suits pretrained CLIP; tiny random models need far more).
        weight_decay: AdamW weight decay.
        lock_image: keep the image tower frozen.
        lock_text: keep the text tower frozen (locked-text tuning).
        trainable_blocks: when set, only the last N blocks of each unlocked tower are trained.
        patience: epochs without a better held-out score before stopping.
        seed: seeds batch order and any random initialisation.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-5
    weight_decay: float = 0.1
    lock_image: bool = False
    lock_text: bool = False
    trainable_blocks: int | None = None
    patience: int = 2
    seed: int = 0


@dataclass
class EpochLog:
    """One epoch: its mean training loss, the held-out score after it, and its wall time."""

    epoch: int
    train_loss: float
    heldout_score: float
    seconds: float


@dataclass
class FinetuneResult:
    """Held-out score before training, per epoch, and of the weights kept (the best epoch's)."""

    before: float
    best: float
    best_epoch: int
    epochs: list[EpochLog] = field(default_factory=list)
    stopped_early: bool = False


def finetune(
    encoder: OpenClipEncoder,
    pixels: np.ndarray,
    texts: Sequence[str],
    heldout_score: Callable[[], float],
    config: FinetuneConfig,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> FinetuneResult:
    """Fine-tune ``encoder`` in place on ``(pixels[i], texts[i])`` pairs.

    Args:
        encoder: the model to train; after the call it holds the best epoch's weights.
        pixels: preprocessed images ``(n, 3, H, W)`` float32 (``encoder.preprocess``).
        texts: one text per image.
        heldout_score: scores the encoder's current weights on held-out data (higher is better).
        config: the recipe.
        on_epoch: called after every epoch (progress reporting).

    Raises:
        ModelError: fewer than two pairs, or every parameter is locked.
    """
    if len(pixels) != len(texts) or len(texts) < 2:
        raise ModelError("fine-tuning needs at least two image–text pairs, one text per image")
    module: Any = encoder.torch_module
    _apply_locks(module, config)
    trainable = [p for p in module.parameters() if p.requires_grad]
    if not trainable:
        raise ModelError("every parameter is locked: unlock a tower or raise --trainable-blocks")
    import torch
    from open_clip.loss import ClipLoss

    device = encoder.device
    use_amp = device.startswith("cuda")
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    loss_fn = ClipLoss()
    rng = np.random.default_rng(config.seed)

    before = heldout_score()
    result = FinetuneResult(before=before, best=before, best_epoch=0)
    best_state = copy.deepcopy(module.state_dict())
    stale = 0
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        module.train()
        order = rng.permutation(len(texts))
        losses = []
        for start in range(0, len(order) - 1, config.batch_size):
            batch = order[start : start + config.batch_size]
            if len(batch) < 2:  # a contrastive step needs negatives
                continue
            images = torch.from_numpy(np.ascontiguousarray(pixels[batch])).to(device)
            tokens = encoder.tokenize([texts[i] for i in batch]).to(device)
            autocast = torch.autocast(device_type="cuda", dtype=torch.float16) if use_amp else nullcontext()
            with autocast:
                image_features = module.encode_image(images, normalize=True)
                text_features = module.encode_text(tokens, normalize=True)
                loss = loss_fn(image_features, text_features, module.logit_scale.exp())
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            with torch.no_grad():  # CLIP's temperature clamp
                module.logit_scale.clamp_(0, float(np.log(100)))
            losses.append(float(loss.detach()))
        module.eval()
        score = heldout_score()
        log = EpochLog(epoch, float(np.mean(losses)) if losses else float("nan"), score, time.perf_counter() - started)
        result.epochs.append(log)
        if on_epoch is not None:
            on_epoch(log)
        if score > result.best:
            result.best, result.best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                result.stopped_early = epoch < config.epochs
                break
    module.load_state_dict(best_state)
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(True)
    return result


def _apply_locks(module: Any, config: FinetuneConfig) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(True)
    blocks = config.trainable_blocks
    if config.lock_image:
        module.lock_image_tower(unlocked_groups=0)
    elif blocks is not None:
        module.lock_image_tower(unlocked_groups=blocks)
    if config.lock_text:
        module.lock_text_tower(unlocked_layers=0)
    elif blocks is not None:
        module.lock_text_tower(unlocked_layers=blocks)
