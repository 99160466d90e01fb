"""Exit codes of the command line, and the one table mapping library errors to them.

0 success; 1 the run finished but failed (``--strict`` with failures, or nothing indexed); 2 usage error;
3 store problem (missing, locked, other model, unreadable, damaged, not writable: a full disk or a
read-only filesystem); 4 model unavailable or broken; 5 bad input
(catalog source, index factory, query, filter, unknown item id, unreadable image, fine-tuning job);
6 Ray not installed, not reachable, or its pass failed (what was committed stays); 130 interrupted.
"""

from __future__ import annotations

import errno

from catalens.indexer.errors import (
    IndexBuildError,
    ItemError,
    RayRunError,
    RayUnavailableError,
    SourceError,
    StoreError,
    StoreWriteError,
)
from catalens.indexer.tagging.errors import TaggingError
from catalens.models.errors import ModelError
from catalens.models.training.errors import FinetuneError
from catalens.search.errors import SearchError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_MODEL = 4
EXIT_INPUT = 5
EXIT_CLUSTER = 6
EXIT_INTERRUPTED = 130

#: Library errors and the exit code each gets, the first matching entry winning.
ERROR_EXITS: tuple[tuple[type[Exception], int], ...] = (
    (ModelError, EXIT_MODEL),  # ModelUnavailableError included
    (StoreError, EXIT_STORE),
    (SourceError, EXIT_INPUT),
    (IndexBuildError, EXIT_INPUT),
    (ItemError, EXIT_INPUT),
    (SearchError, EXIT_INPUT),
    (TaggingError, EXIT_INPUT),  # a bad taxonomy, labelled or calibration file, or a decision that cannot apply
    (FinetuneError, EXIT_INPUT),  # a fine-tuning job's unusable inputs (held-out share, template, too few pairs)
    (RayUnavailableError, EXIT_CLUSTER),
    (RayRunError, EXIT_CLUSTER),
)


def exit_code_for(error: Exception) -> int | None:
    """The exit code a library error maps to, or ``None`` when it is not one the CLI reports."""
    for error_type, code in ERROR_EXITS:
        if isinstance(error, error_type):
            return code
    return None


#: Operating-system errors that mean a file could not be written for want of space or permission.
_WRITE_ERRNOS = {
    errno.ENOSPC: False,
    errno.EDQUOT: False,
    errno.EFBIG: False,
    errno.EROFS: True,
    errno.EACCES: True,
    errno.EPERM: True,
}


def as_library_error(error: Exception) -> Exception:
    """A raw write failure that escaped the library (a full disk, a read-only filesystem) as the typed
    :class:`StoreWriteError` the table maps; any other error unchanged.
    """
    if isinstance(error, OSError) and error.errno in _WRITE_ERRNOS:
        where = str(error.filename) if error.filename else ""
        reason = error.strerror or str(error)
        return StoreWriteError(where, "write", reason, read_only=_WRITE_ERRNOS[error.errno])
    return error


#: Arguments that are text sent to the model, SQLite or the filter parser (not file paths, which may be bytes).
TEXT_ARGUMENTS = ("query", "labels", "templates", "id", "ids", "filters", "filter")


def check_text_arguments(args: object) -> None:
    """Refuse text arguments that are not valid UTF-8 (the shell passed bytes Python keeps as surrogates).

    Raises:
        QueryError: names the argument (exit code 5).
    """
    from catalens.search.errors import QueryError

    for name in TEXT_ARGUMENTS:
        value = getattr(args, name, None)
        values = value if isinstance(value, list | tuple) else [value]
        for text in values:
            if isinstance(text, str) and any("\udc80" <= ch <= "\udcff" for ch in text):
                shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                raise QueryError(f"the {name} argument '{shown}' is not valid UTF-8; check the terminal's encoding")
