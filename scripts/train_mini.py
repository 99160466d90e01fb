#!/usr/bin/env python
"""Train catalens-mini on openly licensed emoji art from npm (CPU is enough; a GPU is used when present).

    .venv/bin/python scripts/train_mini.py --text minilm --out .cache/catalens-mini/run-minilm
    .venv/bin/python scripts/train_mini.py --text open_clip --out .cache/catalens-mini/run-scratch

Data: nine permissively licensed emoji styles (see ``scripts/mini_data.py``), each image labelled with
its Unicode CLDR name, keywords, shortcodes and group. The OpenMoji style is never loaded here; it is
the held-out style of ``scripts/eval_mini.py``.

Recipe: a timm CNN at 64 px, random init. Every step draws a batch of icons and augments it in torch
(scale, rotation, shift, outline drawing, colour jitter, blur, compositing onto plain, gradient and
noise backgrounds), draws one text per icon (name templates, keywords, shortcodes, group names), and
minimises an in-batch contrastive loss (texts that name the same emoji count as positives) plus a
cross-entropy over every emoji name (the "name bank"). The MiniLM text tower is frozen, so its text
embeddings are computed once; the from-scratch text tower is trained jointly and its name bank is
refreshed every ``--bank-every`` steps. Fixed seed, fixed schedule, last weights kept: no checkpoint
selection on any held-out data.

Prints progress, then one JSON line with the run's summary.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mini_data  # noqa: E402

from catalens.models.mini import ImageTowerConfig, MiniCLIP, MiniConfig, TextTowerConfig, save_mini  # noqa: E402

LABEL_TEMPLATES = (
    "{}",
    "a {}",
    "{} icon",
    "an emoji of {}",
    "a drawing of {}",
    "a picture of a {}",
    "{} clip art",
    "a photo of a {}.",
    "a product photo of a {}.",
    "a {} on a white background",
)
GROUP_TEMPLATES = ("an emoji of {}", "{}", "an icon from the {} group", "a photo of a {}.")


class TextBank:
    """Every training text, deduplicated, with per-emoji lists by kind."""

    def __init__(self, emoji: dict[str, mini_data.Emoji], classes: list[str]) -> None:
        self.texts: list[str] = []
        self._index: dict[str, int] = {}
        self.labels: list[int] = []  # the plain name of each class
        self.by_kind: list[dict[str, list[int]]] = []
        for hexcode in classes:
            e = emoji[hexcode]
            label = mini_data.clean_label(e.label)
            group = mini_data.GROUP_NAMES[e.group]
            kinds = {
                "label": [self._add(t.format(label)) for t in LABEL_TEMPLATES],
                "tags": [self._add(t) for t in e.tags if t != label][:12],
                "combined": [self._add(f"{label}, {', '.join(e.tags[:3])}")] if e.tags else [],
                "shortcodes": [self._add(c) for c in e.shortcodes][:4],
                "group": [self._add(t.format(group)) for t in GROUP_TEMPLATES]
                + ([self._add(e.subgroup.replace("-", " "))] if e.subgroup else []),
            }
            self.labels.append(kinds["label"][0])
            self.by_kind.append(kinds)

    def _add(self, text: str) -> int:
        if text not in self._index:
            self._index[text] = len(self.texts)
            self.texts.append(text)
        return self._index[text]

    def sample(self, classes: np.ndarray, rng: random.Random) -> np.ndarray:
        kinds = ("label", "tags", "combined", "shortcodes", "group")
        weights = (0.5, 0.2, 0.12, 0.06, 0.12)
        out = np.empty(len(classes), dtype=np.int64)
        for i, c in enumerate(classes):
            options = self.by_kind[int(c)]
            kind = rng.choices(kinds, weights)[0]
            choices = options[kind] or options["label"]
            out[i] = rng.choice(choices)
        return out


def load_training_data(cache: Path) -> tuple[dict[str, mini_data.Emoji], list[str], torch.Tensor, torch.Tensor, dict]:
    """All training styles as one uint8 tensor (N, 4, S, S) with a class index per image."""
    emoji = mini_data.load_emoji(cache)
    sets = mini_data.training_sets(cache, emoji)
    classes = sorted({h for s in sets for h in s.hexcodes})
    index = {h: i for i, h in enumerate(classes)}
    images = torch.from_numpy(np.concatenate([s.images for s in sets])).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([index[h] for s in sets for h in s.hexcodes], dtype=torch.long)
    counts = {s.key: len(s.hexcodes) for s in sets}
    return emoji, classes, images, labels, counts


def augment(batch: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Icons (B, 4, S, S) uint8 RGBA → augmented RGB product-like shots (B, 3, size, size) in [0, 1]."""
    b = batch.shape[0]
    x = batch.float() / 255.0
    rgb, alpha = x[:, :3] * x[:, 3:], x[:, 3:]
    x = torch.cat([rgb, alpha], 1)  # premultiplied, so resampling does not bleed black edges

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=gen)

    scale = u(0.5, 1.05)
    angle = torch.where(torch.rand(b, generator=gen) < 0.5, u(-0.3, 0.3), torch.zeros(b))
    aspect = torch.exp(u(-0.12, 0.12))
    room = (1.0 - scale).clamp(min=0.0)
    tx, ty = u(-1, 1) * room, u(-1, 1) * room
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([cos / (scale * aspect), -sin / scale, -tx / scale], 1),
            torch.stack([sin / scale, cos * aspect / scale, -ty / scale], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, [b, 4, size, size], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    rgb, alpha = x[:, :3], x[:, 3:]

    # Outline styles (OpenMoji-like line art is never seen; other outlined styles are): draw dark contours.
    outline = torch.rand(b, generator=gen) < 0.3
    if outline.any():
        width = 3 if torch.rand(1, generator=gen).item() < 0.5 else 5
        dilated = F.max_pool2d(alpha[outline], width, stride=1, padding=width // 2)
        ring = (dilated - alpha[outline]).clamp(0, 1)
        gray = rgb[outline].mean(1, keepdim=True)
        edges = (gray[..., :, 1:] - gray[..., :, :-1]).abs()
        edges = F.pad(edges, (0, 1)) + F.pad((gray[..., 1:, :] - gray[..., :-1, :]).abs(), (0, 0, 0, 1))
        lines = ((edges > 0.12).float() * alpha[outline] + ring).clamp(0, 1)
        ink = 0.1 * torch.rand(int(outline.sum()), 1, 1, 1, generator=gen)
        rgb[outline] = rgb[outline] * (1 - lines) + ink * lines
        alpha[outline] = torch.maximum(alpha[outline], dilated)

    # Colour jitter on the object only (hue is kept: colour words must stay true).
    bright = u(0.8, 1.2).view(b, 1, 1, 1)
    contrast = u(0.8, 1.2).view(b, 1, 1, 1)
    sat = u(0.6, 1.3).view(b, 1, 1, 1)
    gray = rgb.mean(1, keepdim=True)
    rgb = gray + (rgb - gray) * sat
    mean = rgb.mean((1, 2, 3), keepdim=True)
    rgb = ((rgb - mean) * contrast + mean) * bright
    rgb = torch.minimum(rgb.clamp(min=0), alpha)

    background = _backgrounds(b, size, gen)
    out = rgb + (1 - alpha) * background
    blur = torch.rand(b, generator=gen) < 0.15
    if blur.any():
        out[blur] = F.avg_pool2d(out[blur], 3, stride=1, padding=1, count_include_pad=False)
    return out.clamp(0, 1)


def _backgrounds(b: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """White, light, random solid, gradient or noisy texture backgrounds, like product shots."""
    kind = torch.multinomial(torch.tensor([0.4, 0.2, 0.15, 0.15, 0.1]), b, replacement=True, generator=gen)
    solid = torch.rand(b, 3, 1, 1, generator=gen)
    light = 0.85 + 0.15 * torch.rand(b, 3, 1, 1, generator=gen)
    bg = torch.ones(b, 3, size, size)
    bg = torch.where((kind == 1).view(b, 1, 1, 1), light.expand(b, 3, size, size), bg)
    bg = torch.where((kind == 2).view(b, 1, 1, 1), solid.expand(b, 3, size, size), bg)
    ramp = torch.linspace(0, 1, size).view(1, 1, size, 1)
    other = torch.rand(b, 3, 1, 1, generator=gen)
    gradient = solid + (other - solid) * ramp
    if torch.rand(1, generator=gen).item() < 0.5:
        gradient = gradient.transpose(2, 3)
    bg = torch.where((kind == 3).view(b, 1, 1, 1), gradient.expand(b, 3, size, size), bg)
    noise = F.interpolate(torch.rand(b, 3, size // 8, size // 8, generator=gen), size=size, mode="bilinear")
    texture = (solid * 0.6 + noise * 0.4).clamp(0, 1)
    return torch.where((kind == 4).view(b, 1, 1, 1), texture, bg)


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, positives: torch.Tensor, scale: torch.Tensor):
    """Symmetric InfoNCE where ``positives[i, j]`` marks text j as a right answer for image i."""
    logits = scale * image @ text.T
    targets = positives.float() / positives.float().sum(1, keepdim=True)
    targets_t = positives.T.float() / positives.T.float().sum(1, keepdim=True)
    i2t = -(targets * F.log_softmax(logits, 1)).sum(1).mean()
    t2i = -(targets_t * F.log_softmax(logits.T, 1)).sum(1).mean()
    return 0.5 * (i2t + t2i)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", choices=("minilm", "open_clip"), default="minilm", help="text tower")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    parser.add_argument("--cache", type=Path, default=Path(".cache/catalens-mini"), help="npm and render cache")
    parser.add_argument("--arch", default="resnet10t", help="timm image tower")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--text-lr", type=float, default=5e-4, help="learning rate of a from-scratch text tower")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--bank-weight", type=float, default=1.0, help="weight of the all-names cross-entropy")
    parser.add_argument("--bank-every", type=int, default=100, help="refresh a trained text tower's name bank")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    rng = random.Random(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.time()

    emoji, classes, images, labels, counts = load_training_data(args.cache)
    bank = TextBank(emoji, classes)
    print(f"{len(images)} images of {len(classes)} emoji in {len(counts)} styles; {len(bank.texts)} texts", flush=True)

    config = MiniConfig(
        embed_dim=384 if args.text == "minilm" else 256,
        image=ImageTowerConfig(timm_model=args.arch, image_size=args.image_size),
        text=TextTowerConfig(kind=args.text),
    )
    model = MiniCLIP(config, device=device).to(device)
    model.visual.to(memory_format=torch.channels_last)
    frozen_text = args.text == "minilm"
    text_table = model.text.encode(bank.texts, batch_size=256).to(device) if frozen_text else None
    print(f"text tower ready after {time.time() - started:.0f} s", flush=True)

    groups = [
        {"params": list(model.visual.parameters()) + list(model.projection.parameters()), "lr": args.lr},
        {"params": [model.logit_scale], "lr": args.lr, "weight_decay": 0.0},
    ]
    if not frozen_text:
        groups.append({"params": list(model.text.parameters()), "lr": args.text_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=args.weight_decay)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    mean = torch.tensor(config.image.mean).view(1, 3, 1, 1)
    std = torch.tensor(config.image.std).view(1, 3, 1, 1)
    label_ids = torch.tensor(bank.labels)
    # A frozen text tower's name bank never changes; a trained one is refreshed every --bank-every steps.
    names = text_table[label_ids] if text_table is not None else torch.zeros(0)

    model.train()
    last_print = time.time()
    for step in range(args.steps):
        factor = min(1.0, (step + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base * factor
        if not frozen_text and step % args.bank_every == 0:
            model.text.eval()
            names = model.text.encode([bank.texts[i] for i in bank.labels]).to(device)
            model.text.train()

        pick = torch.randint(len(images), (args.batch_size,), generator=gen)
        cls = labels[pick]
        pixels = ((augment(images[pick], args.image_size, gen) - mean) / std).to(device)
        text_ids = torch.from_numpy(bank.sample(cls.numpy(), rng))
        image_emb = model.encode_image(pixels)
        if frozen_text:
            assert text_table is not None
            text_emb = text_table[text_ids.to(device)]
        else:
            tokens = model.text.tokenize([bank.texts[i] for i in text_ids.tolist()]).to(device)
            text_emb = model.text(tokens)
        scale = model.logit_scale.exp().clamp(max=100)
        positives = (cls[:, None] == cls[None, :]) | (text_ids[:, None] == text_ids[None, :])
        loss = contrastive_loss(image_emb, text_emb, positives.to(device), scale)
        if args.bank_weight:
            loss = loss + args.bank_weight * F.cross_entropy(scale * image_emb @ names.T, cls.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if time.time() - last_print > 30 or step == args.steps - 1:
            last_print = time.time()
            rate = (step + 1) * args.batch_size / (time.time() - started)
            print(
                f"step {step + 1}/{args.steps} loss {loss.item():.3f} scale {scale.item():.1f} "
                f"{rate:.0f} img/s elapsed {(time.time() - started) / 60:.1f} min",
                flush=True,
            )

    model.eval()
    minutes = (time.time() - started) / 60
    training = {
        "script": "scripts/train_mini.py",
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in ("out", "cache")},
        "images": len(images),
        "emoji": len(classes),
        "styles": counts,
        "texts": len(bank.texts),
        "minutes": round(minutes, 1),
        "device": device,
        "torch_threads": torch.get_num_threads(),
    }
    model.config = replace(config, training=training)
    out = save_mini(model, args.out)
    print(json.dumps({"checkpoint": str(out), **training}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
