#!/usr/bin/env python
"""Average catalens-mini checkpoints weight by weight: a uniform "model soup" (Wortsman et al., 2022).

    .venv/bin/python scripts/soup_mini.py --out DIR PHASE2_A PHASE2_B [...]

Why: models fine-tuned from one starting point stay in one basin of the loss, so the average of their weights is
itself a model, and it often generalises better to data unlike the training data than any one of them, which is
catalens-mini's whole problem (a drawing style it never saw, product shots). Models trained from different random
starts are not in one basin (their units are permuted), so only checkpoints that share a starting point mix:
second phases of one first phase, which ``train_mini.py --init`` records as the same ``init`` weights digest.

The soup keeps the first checkpoint's config (tower, content crop, mirror averaging) and records its ingredients
(directory name, weights digest, training record) under ``training["soup"]``. Weights are averaged in float32 from
the checkpoints' fp16 and written as fp16, as ``train_mini.py`` writes them. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalens.models.errors import ModelLoadError  # noqa: E402
from catalens.models.mini import (  # noqa: E402
    CONFIG_NAME,
    WEIGHTS_NAME,
    MiniCLIP,
    MiniConfig,
    checkpoint_digest,
    load_weights,
    save_mini,
)


class SoupError(ValueError):
    """The checkpoints cannot be averaged into one model."""


def _shape(config: MiniConfig) -> tuple[object, ...]:
    """What must match for two checkpoints' weights to be averaged name by name."""
    return (config.embed_dim, config.image.timm_model, config.image.image_size, config.text)


def _start(config: MiniConfig) -> str | None:
    """The weights digest of the checkpoint this one was trained from (``train_mini.py --init``), if any."""
    init = config.training.get("init")
    return init.get("weights_digest") if isinstance(init, dict) else None


def make_soup(directories: Sequence[Path], device: str = "cpu") -> MiniCLIP:
    """The uniform average of the checkpoints in ``directories``, as a model with the first one's config.

    Raises:
        SoupError: fewer than two checkpoints, another architecture, no shared starting point, or a checkpoint
            that cannot be read.
    """
    if len(directories) < 2:
        raise SoupError("a soup needs at least two checkpoints")
    configs = []
    for directory in directories:
        try:
            configs.append(MiniConfig.from_json((directory / CONFIG_NAME).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise SoupError(f"{directory}: not a catalens-mini checkpoint ({error})") from error
    first = configs[0]
    for directory, config in zip(directories[1:], configs[1:], strict=True):
        if _shape(config) != _shape(first):
            raise SoupError(f"{directory}: another architecture than {directories[0]}; weights cannot be averaged")
    starts = {_start(c) for c in configs}
    if None in starts or len(starts) > 1:
        named = ", ".join(f"{d.name}: {_start(c) or 'random init'}" for d, c in zip(directories, configs, strict=True))
        raise SoupError(
            f"the checkpoints do not share a starting point ({named}); only runs trained from one checkpoint "
            "(train_mini.py --init, the same first phase) average into a model"
        )
    total: dict[str, torch.Tensor] = {}
    model = MiniCLIP(first, device=device)
    for directory in directories:
        try:
            load_weights(model, directory / WEIGHTS_NAME, str(directory))
        except ModelLoadError as error:
            raise SoupError(str(error)) from error
        for name, value in model.trainable_state().items():
            if value.is_floating_point():  # the model's weights are float32; clone: the next load overwrites them
                total[name] = total[name] + value if name in total else value.clone()
    state = {name: value / len(directories) for name, value in total.items()}
    model.load_state_dict(state, strict=False)
    ingredients = [
        {"checkpoint": d.name, "weights_digest": checkpoint_digest(d), "training": c.training}
        for d, c in zip(directories, configs, strict=True)
    ]
    model.config = replace(first, training={"script": "scripts/soup_mini.py", "soup": ingredients})
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="catalens-mini checkpoint directories")
    args = parser.parse_args(argv)
    try:
        model = make_soup(args.checkpoints)
    except SoupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = save_mini(model, args.out)
    summary = {"checkpoint": str(out), "weights_digest": checkpoint_digest(out)}
    summary["ingredients"] = [i["weights_digest"] for i in model.config.training["soup"]]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
