"""The unit of work of the indexer, and the catalog fields every item type shares.

:class:`CatalogFields` declares the catalog's own fields of an item once. Every type that carries them
builds on it: :class:`ItemRecord` here, the store's ``StoredItem``, the service's new item and the query
engine's ``Hit``; the store maps them to the ``items`` columns of the same names by name, never by
position (:func:`catalog_columns`). A new catalog field is one new line here, plus a schema migration adding its
column to the store, and its line in the HTTP model ``search.schemas.CatalogItemOut`` (declared there for
type checkers; ``tests/unit/test_store.py`` fails until it matches).

How a type composes the fields: it subclasses :class:`CatalogFields`. Dataclass fields are collected in
reverse MRO order, so fields a type wants *before* the catalog fields (to keep its positional constructor)
go in a small dataclass listed *after* ``CatalogFields`` among its bases; the type's own fields come after
the catalog fields and, since those have defaults, need defaults or ``kw_only=True``::

    @dataclass(frozen=True)
    class _RecordLead:
        id: str
        source: str

    @dataclass(frozen=True)
    class ItemRecord(CatalogFields, _RecordLead): ...   # ItemRecord(id, source, product_id, title, ...)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class CatalogFields:
    """An item's catalog metadata, as the catalog (a manifest, an API call) gives it.

    Attributes:
        product_id: groups variants (colours, sizes) of one product; results can be collapsed by it.
        title, description: free text, indexed for lexical search.
        category: one category name, filterable and counted in facets.
        price: a non-negative number, filterable by range.
        attributes: every other catalog column, ``name -> value`` (filterable by equality, indexed as text).
    """

    product_id: str | None = None
    title: str | None = None
    description: str | None = None
    category: str | None = None
    price: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


#: The catalog field names, in declaration order; also the names of their columns in the store.
CATALOG_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(CatalogFields))


def catalog_values(item: CatalogFields) -> dict[str, Any]:
    """The catalog fields of any item type by name, to pass on as keywords: ``ItemRecord(..., **catalog_values(x))``."""
    return {name: getattr(item, name) for name in CATALOG_FIELDS}


def catalog_fields_of(item: CatalogFields) -> CatalogFields:
    """Just the catalog fields of any item type, as a plain :class:`CatalogFields` (comparable with ``==``)."""
    return CatalogFields(**catalog_values(item))


#: The catalog fields as the store's columns hold them: field (column) name -> value, attributes as canonical
#: JSON text. Two items with equal columns store the same metadata, so this is what a re-scan compares.
CatalogColumns = dict[str, Any]


def catalog_columns(item: CatalogFields) -> CatalogColumns:
    """The :data:`CatalogColumns` an item is stored as."""
    columns = catalog_values(item)
    columns["attributes"] = attributes_json(item.attributes)
    return columns


def attributes_json(attributes: dict[str, Any]) -> str:
    """Canonical JSON for attributes, so equal dicts compare equal as stored text."""
    return json.dumps(attributes, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class _RecordLead:
    """The fields of :class:`ItemRecord` that come before its catalog fields (see the module docstring)."""

    id: str
    source: str
    origin: str
    stat: str | None = None


@dataclass(frozen=True)
class ItemRecord(CatalogFields, _RecordLead):
    """A catalog item as scanned from a folder or manifest, before any bytes are read.

    Attributes:
        id: the external id: the manifest's ``id`` column, or the path relative to the folder.
        source: where the image is: an absolute local path or an http(s) URL.
        origin: the catalog source the item came from (the folder or manifest path); a re-run of the same
            origin removes items that are no longer in it.
        stat: ``"size:mtime_ns"`` for local files, so unchanged files are not even read; ``None`` for URLs.
        product_id, title, description, category, price, attributes: the :class:`CatalogFields`.
    """

    @property
    def is_url(self) -> bool:
        return self.source.startswith(("http://", "https://"))


@dataclass(frozen=True)
class ScanProblem:
    """A manifest row or folder entry that cannot become an :class:`ItemRecord`; reported as a failure."""

    id: str
    source: str
    reason: str
