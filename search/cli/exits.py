"""Exit codes of the command line, and the one table mapping library errors to them.

0 success; 1 the run finished but failed (``--strict`` with failures, or nothing indexed); 2 usage error;
3 store problem (missing, locked, other model, unreadable); 4 model unavailable or broken; 5 bad input
(catalog source, index factory, query, filter, unknown item id, unreadable image, fine-tuning job);
130 interrupted.
"""

from __future__ import annotations

from catalens.indexer.errors import IndexBuildError, ItemError, SourceError, StoreError
from catalens.models.errors import ModelError
from catalens.models.training.errors import FinetuneError
from catalens.search.errors import SearchError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_MODEL = 4
EXIT_INPUT = 5
EXIT_INTERRUPTED = 130

#: Library errors and the exit code each gets, the first matching entry winning.
ERROR_EXITS: tuple[tuple[type[Exception], int], ...] = (
    (ModelError, EXIT_MODEL),  # ModelUnavailableError included
    (StoreError, EXIT_STORE),
    (SourceError, EXIT_INPUT),
    (IndexBuildError, EXIT_INPUT),
    (ItemError, EXIT_INPUT),
    (SearchError, EXIT_INPUT),
    (FinetuneError, EXIT_INPUT),  # a fine-tuning job's unusable inputs (held-out share, template, too few pairs)
)


def exit_code_for(error: Exception) -> int | None:
    """The exit code a library error maps to, or ``None`` when it is not one the CLI reports."""
    for error_type, code in ERROR_EXITS:
        if isinstance(error, error_type):
            return code
    return None
