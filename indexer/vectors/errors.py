"""Typed errors of the vector-index layer.

Both derive from the indexer's hierarchy, so the CLI's error table and the service's status table map them
without knowing about vector indexes; the unknown-backend error is also a ``ValueError``, as every registry's
"unknown name" error is in catalens.
"""

from __future__ import annotations

from collections.abc import Sequence

from catalens.indexer.errors import IndexBuildError, IndexerError


class UnknownIndexBackendError(IndexBuildError, ValueError):
    """An index factory string names a backend (``name:...``) that the registry does not know.

    Attributes:
        factory: the whole factory string.
        backend: the unknown backend name.
        choices: the backends the registry knows.
    """

    def __init__(self, factory: str, backend: str, choices: Sequence[str]) -> None:
        self.factory = factory
        self.backend = backend
        self.choices = tuple(choices)
        self.reason = f"unknown vector index backend {backend!r}; choose one of: {', '.join(self.choices)}"
        # Not IndexBuildError's own message: that one names FAISS, and this string names no FAISS index.
        IndexerError.__init__(self, f"cannot build a vector index {factory!r}: {self.reason}")


class VectorIndexError(IndexerError):
    """An index cannot do what was asked of it (e.g. remove vectors from an HNSW graph, wrong dimensions).

    Attributes:
        factory: the index's factory string.
        operation: what was attempted (``"remove"``, ``"add"``, ``"search"``, ``"load"``).
        reason: why it failed, for a person.
    """

    def __init__(self, factory: str, operation: str, reason: str) -> None:
        self.factory = factory
        self.operation = operation
        self.reason = reason
        super().__init__(f"the vector index {factory!r} cannot {operation}: {reason}")
