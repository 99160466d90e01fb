"""Turning parsed arguments into engine objects: the engine itself, search options, ranking modes, images.

Shared by the commands that query a store (``search``, ``similar``, ``classify``, ``eval``). Every heavy
import happens inside the functions, when a command runs.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from PIL import Image

    from catalens.search.engine import Fusion, SearchEngine, SearchMode, SearchOptions


def parse_modes(text: str, several: bool = False) -> list[SearchMode]:
    """Parse ``--mode`` (a comma-separated list where ``several`` is allowed).

    Raises:
        QueryError: an unknown mode, no mode, or several where one is expected.
    """
    from catalens.search.engine import SEARCH_MODES
    from catalens.search.errors import QueryError

    modes = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in SEARCH_MODES]
    if unknown or not modes or (len(modes) > 1 and not several):
        wanted = "a comma-separated list of" if several else "one of"
        raise QueryError(f"--mode takes {wanted} {', '.join(SEARCH_MODES)}; got {text!r}")
    return cast("list[SearchMode]", modes)  # each one checked against SEARCH_MODES above


def fusion_from_args(args: argparse.Namespace) -> Fusion:
    """The hybrid fusion settings from ``--vector-weight``, ``--lexical-weight``, ``--rrf-k`` and
    ``--vector-captions``."""
    from catalens.search.engine import Fusion

    given = {
        "vector_weight": getattr(args, "vector_weight", None),
        "lexical_weight": getattr(args, "lexical_weight", None),
        "rank_constant": getattr(args, "rrf_k", None),
        "vector_captions": getattr(args, "vector_captions", None),
    }
    return Fusion(**{name: value for name, value in given.items() if value is not None})


def search_options(args: argparse.Namespace) -> SearchOptions:
    """The engine options of ``search`` and ``similar``: page, filters, collapsing, explanations, ranking.

    Raises:
        QueryError: a negative offset, a malformed ``--filter`` or an unknown ``--mode``.
    """
    from catalens.search.engine import SearchOptions
    from catalens.search.errors import QueryError
    from catalens.search.query_syntax import parse_filters

    if args.offset < 0:
        raise QueryError("--offset must be 0 or more")
    options = SearchOptions(
        k=args.k,
        offset=args.offset,
        min_score=args.min_score,
        where=parse_filters(args.filter, what="--filter"),
        collapse_by_product=args.collapse,
        explain=args.explain,
    )
    if hasattr(args, "mode"):  # commands that rank by words: search, and similar (by the item's own words)
        options = replace(options, mode=parse_modes(args.mode)[0], fusion=fusion_from_args(args))
    return options


def open_engine(args: argparse.Namespace, store: str | None = None) -> SearchEngine:
    """Open the engine over ``--store`` (or ``store``) with ``--device`` and the text-encoder options."""
    from catalens.search.engine import SearchEngine

    return SearchEngine.open(
        store or args.store,
        device=args.device,
        fusion=fusion_from_args(args),
        text_encoder=getattr(args, "text_encoder", None),
        allow_unpaired=getattr(args, "allow_unpaired", False),
    )


def read_image(path: str) -> Image.Image:
    """Read and safely decode an image file given on the command line.

    Raises:
        ItemError: the file is missing, too large or not an image.
    """
    from catalens.indexer.fetch import Fetcher
    from catalens.indexer.images import decode_image

    with Fetcher() as fetcher:
        return decode_image(fetcher.read(path), source=path).image
