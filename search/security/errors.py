"""Errors of access configuration: unusable key entries or keys files (the CLI maps them to exit code 5)."""

from __future__ import annotations

from pathlib import Path

from catalens.search.errors import SearchError


class KeysError(SearchError, ValueError):
    """A key setting that cannot be used (a malformed ``CATALENS_API_KEYS`` entry, an unknown scope...)."""


class KeysFileError(KeysError):
    """A keys file that cannot be read or written, or is not a keys file of a known schema version."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"keys file {str(path)!r}: {reason}")
