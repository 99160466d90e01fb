"""``catalens finetune``: contrastive fine-tuning of the store's model on its own image–text pairs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from catalens.search.cli.exits import EXIT_OK
from catalens.search.cli.parsing import positive_int
from catalens.search.cli.render import emit_json, print_epoch, print_finetune

if TYPE_CHECKING:
    from catalens.search.cli.parsing import Commands


def register_finetune(commands: Commands) -> None:
    """Add ``catalens finetune``."""
    tune = commands.add_parser(
        "finetune",
        help="fine-tune the store's model on its own image–text pairs",
        description="Contrastive fine-tuning with a held-out split by product, evaluation before and after, and "
        "early stopping on held-out recall. Re-embed afterwards with: "
        "catalens index SOURCE --store DIR --model OUT --rebuild",
    )
    tune.add_argument("--store", required=True)
    tune.add_argument("--out", required=True, help="checkpoint directory to write (loadable as a model spec)")
    tune.add_argument("--model", help="start from this model (default: the store's)")
    tune.add_argument("--text-template", default="{title}. {description}", help="text built from item fields")
    tune.add_argument("--epochs", type=positive_int, default=10)
    tune.add_argument("--batch-size", type=positive_int, default=32)
    tune.add_argument("--lr", type=float, default=1e-5)
    tune.add_argument("--weight-decay", type=float, default=0.1)
    tune.add_argument("--lock-image", action="store_true", help="freeze the image tower")
    tune.add_argument("--lock-text", action="store_true", help="freeze the text tower")
    tune.add_argument("--trainable-blocks", type=int, help="train only the last N blocks of each unlocked tower")
    tune.add_argument("--heldout", type=float, default=0.2, help="share of products held out")
    tune.add_argument("--patience", type=positive_int, default=2)
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--device", default="auto")
    tune.add_argument("--json", action="store_true")
    tune.set_defaults(handler=run_finetune)


def run_finetune(args: argparse.Namespace) -> int:
    """Fine-tune, reporting each epoch on stderr, then the held-out metrics before and after."""
    from catalens.indexer.finetune import FinetuneJob
    from catalens.indexer.finetune import run_finetune as run_job
    from catalens.models.training import FinetuneConfig

    config = FinetuneConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        lock_image=args.lock_image,
        lock_text=args.lock_text,
        trainable_blocks=args.trainable_blocks,
        patience=args.patience,
        seed=args.seed,
    )
    job = FinetuneJob(args.store, args.out, args.model, args.text_template, args.heldout, args.device, config)
    report = run_job(job, print_epoch)
    if args.json:
        emit_json(report.to_dict())
    else:
        print_finetune(report, args.store)
    return EXIT_OK
