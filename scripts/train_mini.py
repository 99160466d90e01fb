#!/usr/bin/env python
"""Train catalens-mini on openly licensed emoji art from npm (CPU is enough; a GPU is used when present).

The shipped recipe (`make mini` runs it all) is 2,750 steps from random init at lr 3e-3; from its weights, two
second runs of 1,125 steps at half the learning rate (a second cosine schedule), one plain and one with
``--mirror``; then the weight average of the two (``scripts/soup_mini.py``); all in bfloat16 mixed precision:

    .venv/bin/python scripts/train_mini.py --threads 2 --out .cache/catalens-mini/phase-1
    .venv/bin/python scripts/train_mini.py --threads 2 --init .cache/catalens-mini/phase-1 \
        --steps 1125 --warmup 30 --lr 1.5e-3 --out .cache/catalens-mini/plain
    .venv/bin/python scripts/train_mini.py --threads 2 --init .cache/catalens-mini/phase-1 \
        --steps 1125 --warmup 30 --lr 1.5e-3 --mirror --out .cache/catalens-mini/mirror
    .venv/bin/python scripts/soup_mini.py --out .cache/catalens-mini/run .cache/catalens-mini/plain \
        .cache/catalens-mini/mirror
    .venv/bin/python scripts/train_mini.py --text open_clip --out .cache/catalens-mini/run-scratch  # other tower

Data: nine permissively licensed emoji styles (see ``scripts/mini_data.py``), each image labelled with
its Unicode CLDR name, keywords, shortcodes, group and shop department (``scripts/mini_vocab.py``); with
``--clipart`` the training split of Debian's public-domain openclipart drawings, the drawings of one title one
class with its title, keywords, folders and department (``scripts/clipart_data.py``); with ``--fluent3d``
Microsoft's Fluent Emoji in 3D (``scripts/fluent3d_data.py``). The OpenMoji style and the clip art's held-out
authors are never loaded here; they are the held-out sets of ``scripts/eval_mini.py``.

Recipe: a timm CNN at 64 px, random init (or ``--init`` a checkpoint). Every step draws a batch of pictures and
augments it in torch (``scripts/mini_augment.py``: scale, rotation, shift, mirroring where it keeps the meaning,
outline drawing, colour jitter, contact shadows, blur, compositing onto plain, gradient, noise and photo-like scene
backgrounds), draws one text per picture (name templates, keywords, shortcodes, group and department names), and
minimises an in-batch contrastive loss (texts that name the same emoji count as positives; with
``--multi-positive`` a text is a right answer for every class it describes, so "food" drawn for an apple is one for
the banana too) plus a cross-entropy over every emoji name (the "name bank"; drawings that share a clip-art title
are one class, outside the bank). With ``--paired-views W`` every batch is pairs of pictures of one thing (as a
rule in two styles) and an image–image contrastive loss of weight W joins them (``scripts/mini_views.py``). The
MiniLM text tower is frozen, so its text embeddings are computed once; the from-scratch text tower is trained
jointly and its name bank is refreshed every ``--bank-every`` steps. Fixed seed, fixed schedule, last weights kept:
no checkpoint selection on any held-out data.

Precision: ``--precision bf16`` runs the image tower's convolutions and matrix products in bfloat16 under
``torch.autocast`` while the weights, the optimiser and the loss stay in float32 (mixed precision). On a CPU with
bfloat16 instructions (AMX or AVX512-BF16, as on the machine the shipped weights were trained on) a step takes
about 0.6 of the float32 time, which is what lets the shipped recipe run 1.75 times the steps of the last release
in the same wall time; at equal steps the held-out figures match float32 (measured on a GPU, see the model card).
On a CPU without those instructions bfloat16 is emulated and slower, so the default, ``auto``, picks bf16 only
where the hardware runs it natively (a CUDA GPU that supports it, or a CPU whose ``/proc/cpuinfo`` flags name
``amx_bf16`` or ``avx512_bf16``) and fp32 elsewhere; the choice is printed and recorded in the checkpoint.

Prints progress, then one JSON line with the run's summary.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import clipart_data  # noqa: E402
import fluent3d_data  # noqa: E402
import mini_data  # noqa: E402
import mini_views  # noqa: E402
import mini_vocab  # noqa: E402
from mini_augment import SCALE_RANGE, augment  # noqa: E402

from catalens.models.errors import ModelLoadError  # noqa: E402
from catalens.models.mini import (  # noqa: E402
    CONFIG_NAME,
    WEIGHTS_NAME,
    ImageTowerConfig,
    MiniCLIP,
    MiniConfig,
    TextTowerConfig,
    checkpoint_digest,
    load_weights,
    save_mini,
)
from catalens.search.cli.parsing import fraction  # noqa: E402

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
#: The content crop's margin the shipped checkpoint asks for (chosen on the held-out product shots of
#: ``scripts/eval_mini.py --sets shots``; it changes inference only, training pictures are staged in torch).
CONTENT_CROP = 0.08
GROUP_TEMPLATES = ("an emoji of {}", "{}", "an icon from the {} group", "a photo of a {}.")
CATEGORY_TEMPLATES = ("{}", "a drawing of {}", "a picture of {}", "clip art of {}")


class TextBank:
    """Every training text, deduplicated, with per-emoji lists by kind."""

    def __init__(self, emoji: dict[str, mini_data.Emoji], classes: list[str], shop: bool = False) -> None:
        """``shop``: add department texts (kitchenware, footwear...); off, the bank is the shipped recipe's."""
        self.shop = shop
        self.texts: list[str] = []
        self._index: dict[str, int] = {}
        self._owners: list[set[int]] = []  # per text, the classes it describes
        self.labels: list[int] = []  # the plain name of each class
        self.by_kind: list[dict[str, list[int]]] = []
        self.mirrorable: list[bool] = []  # whether each class's pictures may be flipped left to right
        for hexcode in classes:
            e = emoji[hexcode]
            add = self._adder(len(self.labels))
            label = mini_data.clean_label(e.label)
            group = mini_data.GROUP_NAMES[e.group]
            shop = mini_vocab.department(label, e.tags, e.subgroup) if self.shop else None
            kinds = {
                "label": [add(t.format(label)) for t in LABEL_TEMPLATES],
                "shop": [add(t) for t in mini_vocab.department_texts(shop, label)] if shop else [],
                "tags": [add(t) for t in e.tags if t != label][:12],
                "combined": [add(f"{label}, {', '.join(e.tags[:3])}")] if e.tags else [],
                "shortcodes": [add(c) for c in e.shortcodes][:4],
                "group": [add(t.format(group)) for t in GROUP_TEMPLATES]
                + ([add(e.subgroup.replace("-", " "))] if e.subgroup else []),
            }
            self.labels.append(kinds["label"][0])
            self.by_kind.append(kinds)
            self.mirrorable.append(mini_vocab.mirrorable(label, e.group))

    def add_picture(self, title: str, keywords: list[str], categories: list[str], shop: str | None) -> int:
        """Add a class of pictures (the clip-art drawings with one title); returns the class index.

        Its texts are its title in the name templates, its keywords, its folder categories (``food``,
        ``fruit``) and its department's shop names; texts it shares with other classes (a category, a common
        keyword) count as right answers for all of them.
        """
        add = self._adder(len(self.labels))
        kinds = {
            "label": [add(t.format(title)) for t in LABEL_TEMPLATES],
            "shop": [add(t) for t in mini_vocab.department_texts(shop, title)] if shop and self.shop else [],
            "tags": [add(k) for k in keywords if k != title][:12],
            "combined": [add(f"{title}, {', '.join(keywords[:3])}")] if keywords else [],
            "shortcodes": [],
            "group": [add(t.format(c)) for c in categories for t in CATEGORY_TEMPLATES],
        }
        self.labels.append(kinds["label"][0])
        self.by_kind.append(kinds)
        self.mirrorable.append(True)  # the folders with text and signs are left out of the clip art
        return len(self.labels) - 1

    def _adder(self, cls: int):
        """A function that adds a text of class ``cls`` and returns the text's index."""

        def add(text: str) -> int:
            if text not in self._index:
                self._index[text] = len(self.texts)
                self.texts.append(text)
                self._owners.append(set())
            index = self._index[text]
            self._owners[index].add(cls)
            return index

        return add

    def owners(self) -> list[torch.Tensor]:
        """Per text, the classes it describes (a group or department text describes many)."""
        return [torch.tensor(sorted(o), dtype=torch.long) for o in self._owners]

    def sample(self, classes: np.ndarray, rng: random.Random, shop_weight: float = 0.0) -> np.ndarray:
        kinds = ("label", "tags", "combined", "shortcodes", "group", "shop")
        weights = (0.5, 0.2, 0.12, 0.06, 0.12, shop_weight)
        out = np.empty(len(classes), dtype=np.int64)
        for i, c in enumerate(classes):
            options = self.by_kind[int(c)]
            kind = rng.choices(kinds, weights)[0]
            choices = options[kind] or options["label"]
            out[i] = rng.choice(choices)
        return out


def load_training_data(
    cache: Path, fluent3d: bool = False, extra_styles: tuple[str, ...] = ()
) -> tuple[dict[str, mini_data.Emoji], list[str], torch.Tensor, torch.Tensor, dict]:
    """All training styles as one uint8 tensor (N, 4, S, S) with a class index per image."""
    emoji = mini_data.load_emoji(cache)
    sets = mini_data.training_sets(cache, emoji, extra=extra_styles)
    if fluent3d:
        sets.append(fluent3d_data.fluent3d_set(cache, emoji))
    classes = sorted({h for s in sets for h in s.hexcodes})
    index = {h: i for i, h in enumerate(classes)}
    images = torch.from_numpy(np.concatenate([s.images for s in sets])).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([index[h] for s in sets for h in s.hexcodes], dtype=torch.long)
    counts = {s.key: len(s.hexcodes) for s in sets}
    return emoji, classes, images, labels, counts


def add_clipart(
    cache: Path, bank: TextBank, images: torch.Tensor, labels: torch.Tensor, counts: dict[str, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Append openclipart's training split to the images and labels; its held-out split is never loaded here.

    The drawings that share a title are one class (21 drawings titled "tools" are not 21 different things),
    whose texts are the title, the drawings' keywords and folders and their department.
    """
    drawings = clipart_data.load_clipart(cache, "train", size=mini_data.RENDER_SIZE)
    by_title: dict[str, list[int]] = {}
    for i, title in enumerate(drawings.titles):
        by_title.setdefault(title, []).append(i)
    new_labels = torch.empty(len(drawings.titles), dtype=torch.long)
    for title, members in by_title.items():
        keywords = list(dict.fromkeys(k for i in members for k in drawings.keywords[i]))
        categories = list(dict.fromkeys(c for i in members for c in drawings.categories[i]))
        shop = mini_vocab.picture_department(title, keywords, categories)
        new_labels[members] = bank.add_picture(title, keywords, categories, shop)
    pictures = torch.from_numpy(drawings.images).permute(0, 3, 1, 2).contiguous()
    counts["openclipart"] = len(drawings.titles)
    counts["openclipart_titles"] = len(by_title)
    return torch.cat([images, pictures]), torch.cat([labels, new_labels])


def batch_positives(cls: torch.Tensor, text_ids: torch.Tensor, owners: list[torch.Tensor] | None) -> torch.Tensor:
    """``[i, j]``: text j is a right answer for picture i.

    Always when both show the same class or drew the same text; with ``owners`` (per text, the classes it
    describes) also when text j describes picture i's class: "an emoji of food and drink" drawn for an apple
    is then a right answer for the banana in the same batch, instead of a negative that teaches the banana
    it is not food.
    """
    positives = (cls[:, None] == cls[None, :]) | (text_ids[:, None] == text_ids[None, :])
    if owners is not None:
        for j, text in enumerate(text_ids.tolist()):
            if len(owners[text]) > 1:
                positives[:, j] |= torch.isin(cls, owners[text])
    return positives


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, positives: torch.Tensor, scale: torch.Tensor):
    """Symmetric InfoNCE where ``positives[i, j]`` marks text j as a right answer for image i."""
    logits = scale * image @ text.T
    targets = positives.float() / positives.float().sum(1, keepdim=True)
    targets_t = positives.T.float() / positives.T.float().sum(1, keepdim=True)
    i2t = -(targets * F.log_softmax(logits, 1)).sum(1).mean()
    t2i = -(targets_t * F.log_softmax(logits.T, 1)).sum(1).mean()
    return 0.5 * (i2t + t2i)


def native_bf16(device: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether ``device`` runs bfloat16 arithmetic natively (so autocast to it is faster, not emulated).

    CUDA asks torch; a CPU is read from the kernel's flags (AMX or AVX512-BF16), so anywhere those cannot be read
    (not Linux) the answer is no and training stays in float32.
    """
    if device == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return bool(re.search(r"^flags\s*:.*\b(amx_bf16|avx512_bf16)\b", flags, re.MULTILINE))


def resolve_precision(asked: str, device: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``auto`` → "bf16" where :func:`native_bf16`, else "fp32"; "bf16" and "fp32" are kept as asked."""
    if asked != "auto":
        return asked
    return "bf16" if native_bf16(device, cpuinfo) else "fp32"


def encode_pictures(model: MiniCLIP, pixels: torch.Tensor, precision: str) -> torch.Tensor:
    """The image tower's unit embeddings in float32, its arithmetic in ``precision`` ("bf16" or "fp32").

    Under bfloat16 autocast the convolutions and the projection run in bfloat16 while the weights (and so their
    gradients and the optimiser's state) stay float32; the embeddings are renormalised in float32, so the loss and
    the name bank never see bfloat16 rounding.
    """
    with torch.autocast(pixels.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        embedded = model.encode_image(pixels)
    return F.normalize(embedded.float(), dim=-1)


def start_from(model: MiniCLIP, directory: Path) -> dict[str, object]:
    """Load a catalens-mini checkpoint's trained weights into ``model`` (a second phase of training).

    The image tower is fully convolutional with global pooling, so a tower trained at 64 px starts a 96-px
    phase as it is. Returns the provenance recorded in the new checkpoint: the starting checkpoint's weights
    digest and its own training record, so a two-phase recipe can be followed back to its first phase.

    Raises:
        SystemExit: the checkpoint is of another architecture, embedding size or text tower.
    """
    start = MiniConfig.from_json((directory / CONFIG_NAME).read_text())
    ours = model.config
    if (start.image.timm_model, start.embed_dim, start.text.kind) != (
        ours.image.timm_model,
        ours.embed_dim,
        ours.text.kind,
    ):
        raise SystemExit(f"--init {directory}: another architecture ({start.image.timm_model}, {start.embed_dim})")
    try:
        load_weights(model, directory / WEIGHTS_NAME, str(directory))
    except ModelLoadError as error:
        raise SystemExit(f"--init {directory}: {error}") from error
    return {"checkpoint": directory.name, "weights_digest": checkpoint_digest(directory), "training": start.training}


def scale_range(text: str) -> tuple[float, float]:
    """``--scale-range LO,HI``: two positive numbers, LO ≤ HI (the object's share of the frame's side)."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected LO,HI, got {text!r}") from error
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"expected 0 < LO <= HI, got {text!r}")
    return low, high


def content_crop_margin(text: str) -> float | None:
    """``--content-crop``: a margin in [0, 1] (the CLI's own ``fraction``), or ``off``."""
    return None if text.strip().lower() in ("off", "none") else fraction(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", choices=("minilm", "open_clip"), default="minilm", help="text tower")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    parser.add_argument("--cache", type=Path, default=Path(".cache/catalens-mini"), help="npm and render cache")
    parser.add_argument("--arch", default="resnet10t", help="timm image tower")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2750)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--text-lr", type=float, default=5e-4, help="learning rate of a from-scratch text tower")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--bank-weight", type=float, default=1.0, help="weight of the all-names cross-entropy")
    parser.add_argument("--bank-every", type=int, default=100, help="refresh a trained text tower's name bank")
    # The defaults are the shipped recipe's first phase (see the docstring for its second).
    parser.add_argument("--clipart", action=argparse.BooleanOptionalAction, default=True, help="openclipart too")
    parser.add_argument("--fluent3d", action=argparse.BooleanOptionalAction, default=True, help="Fluent 3D too")
    parser.add_argument(
        "--extra-style",
        action="append",
        default=[],
        choices=[s.key for s in mini_data.EXTRA_SETS],
        help="add an emoji style that is not in the recipe (repeatable)",
    )
    parser.add_argument(
        "--mirror-average",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="the checkpoint embeds a picture and its mirror image as one vector at inference",
    )
    parser.add_argument(
        "--paired-views",
        type=float,
        default=0.0,
        metavar="WEIGHT",
        help="batches of picture pairs of one thing (another style where there is one) and an image-image "
        "contrastive loss of this weight (0: off; scripts/mini_views.py)",
    )
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=False, help="flip where allowed")
    parser.add_argument("--shadow", type=float, default=0.0, help="share of pictures given a contact shadow")
    parser.add_argument("--scenes", type=float, default=0.0, help="share of photo-like scene backgrounds")
    parser.add_argument(
        "--scale-range",
        type=scale_range,
        default=SCALE_RANGE,
        help="LO,HI: the object's size as a share of the frame's side in augmentation (the framing ablations)",
    )
    parser.add_argument("--shop-weight", type=float, default=0.15, help="share of department texts (kitchenware...)")
    parser.add_argument(
        "--multi-positive",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a text is a right answer for every class it describes (group and department texts)",
    )
    parser.add_argument(
        "--content-crop",
        type=content_crop_margin,
        default=CONTENT_CROP,
        help="margin of the content crop the checkpoint asks for at inference ('off': none; models/content_crop.py)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="image tower arithmetic: bfloat16 mixed precision (fast on CPUs with AMX/AVX512-BF16), float32, or "
        "auto (bf16 where the hardware runs it natively, else fp32)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--init", type=Path, help="start from this catalens-mini checkpoint (a second phase, e.g. at 96 px)"
    )
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    rng = random.Random(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.precision = resolve_precision(args.precision, device)
    print(f"training on {device} in {args.precision}", flush=True)
    started = time.time()

    emoji, classes, images, labels, counts = load_training_data(args.cache, args.fluent3d, tuple(args.extra_style))
    bank = TextBank(emoji, classes, shop=args.shop_weight > 0)
    if args.clipart:
        images, labels = add_clipart(args.cache, bank, images, labels, counts)
    print(f"{len(images)} images of {len(classes)} emoji in {len(counts)} styles; {len(bank.texts)} texts", flush=True)

    config = MiniConfig(
        embed_dim=384 if args.text == "minilm" else 256,
        image=ImageTowerConfig(
            timm_model=args.arch,
            image_size=args.image_size,
            content_crop=args.content_crop,
            mirror_average=args.mirror_average,
        ),
        text=TextTowerConfig(kind=args.text),
    )
    model = MiniCLIP(config, device=device).to(device)
    init = start_from(model, args.init) if args.init else None
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
    # The name bank is the emoji's names: clip-art titles ("tools", "blue man") are not a closed set of things.
    named = len(classes)
    label_ids = torch.tensor(bank.labels[:named])
    mirrorable = torch.tensor(bank.mirrorable)
    owners = bank.owners() if args.multi_positive else None
    # A frozen text tower's name bank never changes; a trained one is refreshed every --bank-every steps.
    names = text_table[label_ids] if text_table is not None else torch.zeros(0)
    members = mini_views.class_members(labels) if args.paired_views else None

    model.train()
    last_print = time.time()
    for step in range(args.steps):
        factor = min(1.0, (step + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base * factor
        if not frozen_text and step % args.bank_every == 0:
            model.text.eval()
            names = model.text.encode([bank.texts[i] for i in bank.labels[:named]]).to(device)
            model.text.train()

        if members is not None:
            pick = mini_views.draw_pairs(labels, members, args.batch_size, gen)
        else:
            pick = torch.randint(len(images), (args.batch_size,), generator=gen)
        cls = labels[pick]
        mirror = mirrorable[cls] if args.mirror else None
        pictures = augment(images[pick], args.image_size, gen, mirror, args.shadow, args.scenes, args.scale_range)
        pixels = ((pictures - mean) / std).to(device)
        text_ids = torch.from_numpy(bank.sample(cls.numpy(), rng, args.shop_weight))
        image_emb = encode_pictures(model, pixels, args.precision)
        if frozen_text:
            assert text_table is not None
            text_emb = text_table[text_ids.to(device)]
        else:
            tokens = model.text.tokenize([bank.texts[i] for i in text_ids.tolist()]).to(device)
            text_emb = model.text(tokens)
        scale = model.logit_scale.exp().clamp(max=100)
        positives = batch_positives(cls, text_ids, owners)
        loss = contrastive_loss(image_emb, text_emb, positives.to(device), scale)
        if args.paired_views:
            views = mini_views.image_contrastive_loss(image_emb, cls, mini_views.SUPCON_SCALE)
            loss = loss + args.paired_views * views
        if args.bank_weight:
            emoji_rows = (cls < named).to(device)
            if bool(emoji_rows.any()):
                bank_logits = scale * image_emb[emoji_rows] @ names.T
                loss = loss + args.bank_weight * F.cross_entropy(bank_logits, cls.to(device)[emoji_rows])
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
        "classes": len(bank.labels),
        "styles": counts,
        "texts": len(bank.texts),
        "minutes": round(minutes, 1),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        **({"init": init} if init else {}),
    }
    model.config = replace(config, training=training)
    out = save_mini(model, args.out)
    print(json.dumps({"checkpoint": str(out), **training}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
