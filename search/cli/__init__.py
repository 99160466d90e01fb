"""The ``catalens`` command line. The only place that prints and chooses exit codes.

One module per command group, each adding its own sub-commands to the parser: ``indexing`` (index,
reindex, info), ``enrichment`` (caption, ocr, captioners), ``querying`` (search, similar, classify),
``evaluate`` (eval), ``finetune``, ``serve`` and ``models``; ``app`` assembles the parser and runs ``main``,
``parsing`` holds the shared options, ``engine_args`` turns options into engine objects, ``render`` prints
tables and JSON, and ``exits`` maps errors to exit codes.

Exit codes: 0 success; 1 the run finished but failed (``--strict`` with failures, or nothing indexed);
2 usage error; 3 store problem (missing, locked, other model, unreadable); 4 model unavailable or broken;
5 bad input (catalog source, index factory, query, filter, unknown item id, unreadable image, fine-tuning job).
"""

from __future__ import annotations

from catalens.search.cli.app import build_parser, main
from catalens.search.cli.exits import (
    EXIT_CLUSTER,
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_STORE,
    EXIT_USAGE,
)
from catalens.search.query_syntax import parse_filters

__all__ = [
    "EXIT_CLUSTER",
    "EXIT_FAILED",
    "EXIT_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_MODEL",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "parse_filters",
]
