"""The ``catalens`` parser, built from each command module's ``register_*`` functions, and ``main``.

``main`` is the only place that turns library errors into exit codes (through :data:`ERROR_EXITS`);
building the parser imports no command's dependencies, so ``catalens --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from catalens.search.cli import (
    backup,
    duplicates,
    enrichment,
    evaluate,
    finetune,
    indexing,
    keys,
    models,
    querying,
    recommend,
    serve,
    tagging,
)
from catalens.search.cli.exits import EXIT_INTERRUPTED, as_library_error, check_text_arguments, exit_code_for
from catalens.search.cli.parsing import CliParser
from catalens.search.cli.render import fail

if TYPE_CHECKING:
    from catalens.search.cli.parsing import Commands

#: Every sub-command, in the order ``catalens --help`` lists them.
_REGISTRARS: tuple[Callable[[Commands], None], ...] = (
    indexing.register_index,
    enrichment.register_caption,
    enrichment.register_ocr,
    enrichment.register_captioners,
    indexing.register_reindex,
    indexing.register_info,
    backup.register_backup,
    querying.register_search,
    querying.register_similar,
    recommend.register_recommend,
    querying.register_classify,
    tagging.register_tag,
    duplicates.register_duplicates,
    evaluate.register_eval,
    finetune.register_finetune,
    serve.register_serve,
    keys.register_keys,
    models.register_models,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one sub-command per job."""
    parser = CliParser(prog="catalens", description="Semantic image search for product catalogs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library log messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CliParser)
    for register in _REGISTRARS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    args = build_parser().parse_args(argv)
    # open_clip and huggingface_hub log warnings on the root logger (e.g. "initialised randomly");
    # people only see them with --verbose.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(message)s")
    # A damaged index the engine fell back from is worth a line even without --verbose.
    logging.getLogger("catalens.index").setLevel(logging.INFO if args.verbose else logging.WARNING)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        check_text_arguments(args)
        return handler(args)
    except KeyboardInterrupt:
        return fail(EXIT_INTERRUPTED, "interrupted; work committed so far is kept, and a re-run continues from there")
    except Exception as e:
        error = as_library_error(e)  # a full disk or read-only filesystem the library did not type
        code = exit_code_for(error)
        if code is None:
            raise
        return fail(code, str(error))
