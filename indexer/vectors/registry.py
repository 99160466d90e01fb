"""Vector-index backends by name, and the factory strings that choose one.

A factory string is ``backend:description`` (``faiss:HNSW32``) or a bare description, which goes to the
default backend, FAISS: every store's recorded factory (``Flat``, ``HNSW32``, ``IVF1024,PQ64``) keeps its
meaning. The registry is built by a function rather than kept in a module global, and backends are imported
only when used, so importing this package does not import faiss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from catalens.indexer.vectors.base import VectorIndex
from catalens.indexer.vectors.errors import UnknownIndexBackendError

#: The factory a new store gets when none is given: planned from the store's size (see :mod:`.auto`).
DEFAULT_FACTORY = "auto"
BACKEND_SEPARATOR = ":"

#: Returns a backend's :class:`VectorIndex` class (imports it on first use).
BackendLoader = Callable[[], type[VectorIndex]]


class IndexRegistry:
    """Named vector-index backends; turns factory strings into new or loaded indexes."""

    def __init__(self, backends: Mapping[str, BackendLoader], default: str) -> None:
        """
        Args:
            backends: backend name -> a function returning its :class:`VectorIndex` class.
            default: the backend of factory strings without a ``backend:`` prefix.
        """
        if default not in backends:
            raise ValueError(f"the default backend {default!r} is not among {sorted(backends)}")
        self._backends = dict(backends)
        self._default = default

    def list_backends(self) -> list[str]:
        """The backend names, in registration order."""
        return list(self._backends)

    def parse(self, factory: str) -> tuple[str, str]:
        """Split a factory string into its backend name and the backend's own description.

        Raises:
            UnknownIndexBackendError: the prefix names no registered backend (a ``ValueError`` listing them).
        """
        prefix, separator, rest = factory.partition(BACKEND_SEPARATOR)
        if not separator:
            return self._default, factory
        name = prefix.strip().lower()
        if name not in self._backends:
            raise UnknownIndexBackendError(factory, name, self.list_backends())
        return name, rest

    def backend(self, name: str) -> type[VectorIndex]:
        """The index class of a backend.

        Raises:
            UnknownIndexBackendError: no backend has that name.
        """
        loader = self._backends.get(name)
        if loader is None:
            raise UnknownIndexBackendError(name, name, self.list_backends())
        return loader()

    def create(self, factory: str, dim: int) -> VectorIndex:
        """A new, empty index described by ``factory``.

        Raises:
            UnknownIndexBackendError, IndexBuildError: the factory string is not valid.
        """
        name, description = self.parse(factory)
        return self.backend(name).create(description, dim)

    def load(self, path: Path, factory: str) -> VectorIndex:
        """Load an index file written by the backend that ``factory`` (the string it was built from) names."""
        name, description = self.parse(factory)
        return self.backend(name).load(path, description)

    def validate(self, factory: str, dim: int) -> None:
        """Check that ``factory`` describes an index that can be made with ``dim`` dimensions.

        Raises:
            UnknownIndexBackendError, IndexBuildError.
        """
        self.create(factory, dim)


def _faiss() -> type[VectorIndex]:
    from catalens.indexer.vectors.faiss_backend import FaissIndex

    return FaissIndex


def default_index_registry() -> IndexRegistry:
    """The registry with every backend catalens ships (FAISS, also the default)."""
    return IndexRegistry({"faiss": _faiss}, default="faiss")


def create_index(factory: str, dim: int) -> VectorIndex:
    """A new, empty index from the default registry; see :meth:`IndexRegistry.create`."""
    return default_index_registry().create(factory, dim)


def load_index(path: Path, factory: str) -> VectorIndex:
    """Load an index file with the default registry; see :meth:`IndexRegistry.load`."""
    return default_index_registry().load(path, factory)


def validate_factory(factory: str, dim: int) -> None:
    """Check a factory string with the default registry.

    Raises:
        UnknownIndexBackendError: an unknown ``backend:`` prefix.
        IndexBuildError: the backend does not understand the description.
    """
    default_index_registry().validate(factory, dim)


def list_index_backends() -> list[str]:
    """The backend names of the default registry."""
    return default_index_registry().list_backends()
