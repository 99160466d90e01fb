"""catalens: multimodal semantic image search for product catalogs.

The flat public API, in the spirit of ``open_clip``'s ``__init__``: index a catalog, search it, open its
store, load a model, and catch the typed errors. The subpackages hold the rest:

- :mod:`catalens.models`: image–text encoders, captioners, OCR engines and text encoders, chosen by spec;
- :mod:`catalens.indexer`: catalog sources, safe decoding, the catalog store and its vector index;
- :mod:`catalens.search`: the query engine, the HTTP service and the command line;
- :mod:`catalens.web`: the static page the service serves.

Importing this package stays light: it never imports torch, open_clip or transformers (models load them
when a model is loaded), so ``import catalens`` is cheap in a web worker or a notebook.

Example::

    import catalens

    report = catalens.index_catalog("photos/", "store/", catalens.IndexOptions(model="catalens-mini"))
    with catalens.SearchEngine.open("store/") as engine:
        for hit in engine.search_text("red running shoes").hits:
            print(hit.item_id, hit.score)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from catalens.indexer.errors import (
    FetchError,
    ImageDecodeError,
    IndexBuildError,
    IndexerError,
    ItemError,
    SourceError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreModelMismatchError,
    StoreNotFoundError,
    StoreVersionError,
    StoreWeightsMismatchError,
)
from catalens.indexer.pipeline import IndexOptions, IndexReport, index_catalog, reindex
from catalens.indexer.store import CatalogStore, ItemFilter
from catalens.models.errors import (
    CatalensError,
    DeviceUnavailableError,
    ModelError,
    ModelLoadError,
    ModelUnavailableError,
    UnknownModelError,
)
from catalens.models.registry import DEFAULT_MODEL, list_models, load_model
from catalens.search.engine import (
    Example,
    QueryPart,
    Recommendation,
    RecommendOptions,
    SearchEngine,
    SearchOptions,
    SearchResult,
)
from catalens.search.errors import ItemNotFoundError, ItemNotIndexedError, QueryError, SearchError

try:
    __version__ = version("catalens")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "DEFAULT_MODEL",
    "CatalensError",
    "CatalogStore",
    "DeviceUnavailableError",
    "Example",
    "FetchError",
    "ImageDecodeError",
    "IndexBuildError",
    "IndexOptions",
    "IndexReport",
    "IndexerError",
    "ItemError",
    "ItemFilter",
    "ItemNotFoundError",
    "ItemNotIndexedError",
    "ModelError",
    "ModelLoadError",
    "ModelUnavailableError",
    "QueryError",
    "QueryPart",
    "RecommendOptions",
    "Recommendation",
    "SearchEngine",
    "SearchError",
    "SearchOptions",
    "SearchResult",
    "SourceError",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreModelMismatchError",
    "StoreWeightsMismatchError",
    "StoreNotFoundError",
    "StoreVersionError",
    "UnknownModelError",
    "index_catalog",
    "list_models",
    "load_model",
    "reindex",
]
