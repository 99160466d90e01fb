"""``catalens models``: the model specs, architectures with their pretrained tags, and text-encoder pairings."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from catalens.search.cli.exits import EXIT_OK
from catalens.search.cli.render import emit_json, print_models

if TYPE_CHECKING:
    from catalens.search.cli.parsing import Commands


def register_models(commands: Commands) -> None:
    """Add ``catalens models``."""
    models = commands.add_parser("models", help="list model architectures and pretrained tags")
    models.add_argument("--json", action="store_true")
    models.set_defaults(handler=run_models)


def run_models(args: argparse.Namespace) -> int:
    """List model architectures, pretrained tags and text-encoder pairings."""
    from catalens.models import list_models
    from catalens.models.text_encoders import list_pairings

    infos = list_models()
    pairings = list_pairings()
    if args.json:
        emit_json(
            {
                "models": [{"backend": i.backend, "arch": i.arch, "tags": list(i.tags)} for i in infos],
                "text_encoders": [
                    {"text": p.text, "image": p.image, "languages": p.languages, "note": p.note} for p in pairings
                ],
            }
        )
    else:
        print_models(infos, pairings)
    return EXIT_OK
