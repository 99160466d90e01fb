"""The argument-parser pieces every command shares: the parser class, value types and option groups.

Kept free of heavy imports: building the parser (``catalens --help``) never loads torch, FAISS or a model.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING, NoReturn

from catalens.search.cli.exits import EXIT_USAGE


class CliParser(argparse.ArgumentParser):
    """An argument parser whose usage errors exit with :data:`EXIT_USAGE` and a ``catalens: error:`` line."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"catalens: error: {message}\n")


if TYPE_CHECKING:
    from typing import TypeAlias

    from catalens.indexer.distributed import RayOptions

    #: What each command module's ``register_*`` functions add their sub-command to.
    Commands: TypeAlias = argparse._SubParsersAction[CliParser]


def positive_int(text: str) -> int:
    """An ``int`` of at least 1 (an argparse ``type``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def fraction(text: str) -> float:
    """A ``float`` between 0 and 1 (an argparse ``type``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must lie between 0 and 1")
    return value


def finite_float(text: str) -> float:
    """A finite ``float``: NaN and infinities are refused (an argparse ``type``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return value


def non_negative(text: str) -> float:
    """A finite ``float`` of at least 0 (an argparse ``type``)."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def add_caption_options(parser: argparse.ArgumentParser) -> None:
    """Captioner options of ``index`` and ``caption`` (and ``--device`` unless the command has one)."""
    parser.add_argument("--caption-prompt", help="text the captioner continues (BLIP, BLIP-2)")
    parser.add_argument("--caption-max-tokens", type=positive_int, default=30, help="longest caption, in tokens")
    parser.add_argument("--caption-batch-size", type=positive_int, help="images per captioner call")
    if not any(a.dest == "device" for a in parser._actions):
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")


def add_ray_options(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and the actor pool's shape, for the passes that can run on a Ray cluster."""
    group = parser.add_argument_group("Ray (pip install 'catalens[ray]')")
    group.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="read, decode and run the model on Ray; this process stays the store's one writer. Bare --ray starts "
        "a Ray on this machine for the run; ADDRESS (auto, HOST:PORT, ray://HOST:PORT) joins a cluster. Inputs must "
        "be URLs or paths every node can read",
    )
    group.add_argument(
        "--ray-actors", type=positive_int, metavar="N", help="model replicas (default: one per GPU, else per CPU)"
    )
    group.add_argument(
        "--ray-gpus-per-actor", type=non_negative, metavar="G", help="GPUs per replica (default 1 when there are GPUs)"
    )
    group.add_argument("--ray-cpus-per-actor", type=non_negative, metavar="C", help="CPUs per replica (default 1)")


def ray_options(args: argparse.Namespace) -> RayOptions | None:
    """The :class:`RayOptions` the ``--ray`` flags ask for, or ``None`` to run here."""
    if getattr(args, "ray", None) is None:
        return None
    from catalens.indexer.distributed import RayOptions

    return RayOptions.from_cli(
        args.ray,
        actors=args.ray_actors,
        gpus_per_actor=args.ray_gpus_per_actor,
        cpus_per_actor=args.ray_cpus_per_actor,
    )


def add_result_options(parser: argparse.ArgumentParser) -> None:
    """Paging, filter and output options of the commands that list hits (``search``, ``similar``)."""
    parser.add_argument("-k", type=positive_int, default=10, help="results to show")
    parser.add_argument("--offset", type=int, default=0, help="results to skip (pagination)")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="category=shoes (or shoes,bags), price=10..50, price_min=10, price_max=50, or ATTRIBUTE=VALUE; "
        "NAME:VALUE works too",
    )
    parser.add_argument("--min-score", type=finite_float, help="hide results less similar than this (cosine)")
    parser.add_argument("--collapse", action="store_true", help="one result per product_id")
    parser.add_argument("--explain", action="store_true", help="show why each result was returned")
    parser.add_argument("--device", default="auto")
    add_text_encoder_options(parser)
    parser.add_argument("--json", action="store_true")


def add_text_encoder_options(parser: argparse.ArgumentParser) -> None:
    """``--text-encoder`` and ``--allow-unpaired``: answer text with another encoder than the model's own."""
    parser.add_argument(
        "--text-encoder",
        metavar="SPEC",
        help="answer text with this encoder instead of the model's text tower, e.g. the multilingual "
        "clip-ViT-B-32-multilingual-v1 for a ViT-B-32:openai store (see `catalens models`)",
    )
    parser.add_argument(
        "--allow-unpaired", action="store_true", help="accept a text encoder not registered for the store's model"
    )


def add_ranking_options(parser: argparse.ArgumentParser, several_modes: bool = False) -> None:
    """Ranking-mode options of commands that rank by words (``search``, ``eval``)."""
    parser.add_argument(
        "--mode",
        default="hybrid",
        help="vector (embeddings), lexical (BM25 over titles, descriptions, attributes, captions, OCR text) or "
        "hybrid (both, fused by reciprocal rank; default)"
        + ("; a comma-separated list compares modes" if several_modes else ""),
    )
    parser.add_argument("--vector-weight", type=non_negative, help="hybrid: weight of the vector list (default 1)")
    parser.add_argument("--lexical-weight", type=non_negative, help="hybrid: weight of the lexical list (default 1.25)")
    parser.add_argument("--rrf-k", type=non_negative, help="hybrid: reciprocal-rank constant (default 10)")
    parser.add_argument(
        "--vector-captions",
        action="store_true",
        default=None,
        help="hybrid: match captions made from the store's own vectors (attributes) even when they are its "
        "only captions (default: left out, they restate the vector list)",
    )
