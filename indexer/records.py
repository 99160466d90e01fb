"""The unit of work of the indexer: one catalog item as a source describes it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ItemRecord:
    """A catalog item as scanned from a folder or manifest, before any bytes are read.

    Attributes:
        id: the external id: the manifest's ``id`` column, or the path relative to the folder.
        source: where the image is: an absolute local path or an http(s) URL.
        origin: the catalog source the item came from (the folder or manifest path); a re-run of the same
            origin removes items that are no longer in it.
        stat: ``"size:mtime_ns"`` for local files, so unchanged files are not even read; ``None`` for URLs.
        product_id, title, description, category, price: optional catalog metadata.
        attributes: every other manifest column.
    """

    id: str
    source: str
    origin: str
    stat: str | None = None
    product_id: str | None = None
    title: str | None = None
    description: str | None = None
    category: str | None = None
    price: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def is_url(self) -> bool:
        return self.source.startswith(("http://", "https://"))

    def metadata(self) -> tuple[Any, ...]:
        """The fields whose change means a metadata update (and no re-embedding)."""
        return (
            self.source,
            self.product_id,
            self.title,
            self.description,
            self.category,
            self.price,
            attributes_json(self.attributes),
        )


def attributes_json(attributes: dict[str, Any]) -> str:
    """Canonical JSON for attributes, so equal dicts compare equal as stored text."""
    return json.dumps(attributes, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class ScanProblem:
    """A manifest row or folder entry that cannot become an :class:`ItemRecord`; reported as a failure."""

    id: str
    source: str
    reason: str
