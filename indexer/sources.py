"""Catalog sources: a folder of images, or a CSV/JSONL/Parquet manifest with ids, image locations and metadata.

A source yields :class:`ItemRecord` objects for items it can describe and :class:`ScanProblem` objects
for rows it cannot, so a bad manifest row is reported like a bad image instead of stopping the scan.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO, get_type_hints

from catalens.indexer.errors import SourceError
from catalens.indexer.images import sniff_format
from catalens.indexer.parquet_source import PARQUET_SUFFIX, parquet_rows, require_pyarrow
from catalens.indexer.records import CatalogFields, ItemRecord, ScanProblem

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson", PARQUET_SUFFIX)
#: Catalog fields (those typed ``str | None``) that a manifest column of the same name fills as plain text;
#: ``price`` is parsed as a number, and every column not known here becomes an attribute.
TEXT_FIELDS: tuple[str, ...] = tuple(name for name, kind in get_type_hints(CatalogFields).items() if kind == str | None)
KNOWN_COLUMNS = ("id", "image", *TEXT_FIELDS, "price")
ScanEntry = ItemRecord | ScanProblem
#: How deeply a row's values may nest (objects in lists in objects...): deeper rows fail on their own.
MAX_NESTING = 32
#: Bytes a manifest could not decode as UTF-8 become these lone surrogates (``surrogateescape``).
_UNDECODABLE = re.compile("[\udc80-\udcff]")


class Source(Protocol):
    """Anything that can enumerate catalog items."""

    @property
    def origin(self) -> str:
        """A stable name for the source; items from earlier runs of the same origin can be removed."""
        ...

    def scan(self) -> Iterator[ScanEntry]:
        """Yield one record or problem per catalog item."""
        ...


def open_source(location: str | os.PathLike[str]) -> Source:
    """Choose the source type for a path: a directory is a folder source, a CSV/JSONL/Parquet file a manifest.

    Raises:
        SourceError: the path does not exist or is neither a directory nor a manifest; a Parquet manifest
            without pyarrow installed (said before any model is loaded).
    """
    path = Path(location).expanduser().resolve()
    if path.is_dir():
        return FolderSource(path)
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        if path.suffix.lower() == PARQUET_SUFFIX:
            require_pyarrow(str(path))
        return ManifestSource(path)
    if not path.exists():
        raise SourceError(str(location), "no such file or directory")
    raise SourceError(str(location), f"expected a folder of images or a manifest ({', '.join(MANIFEST_SUFFIXES)})")


def file_stat(path: Path) -> str:
    """The size and modification time that decide whether a file must be read again."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


@dataclass(frozen=True)
class FolderSource:
    """Every image below a folder, recursively, ids being paths relative to the folder.

    Images are recognised by content (magic bytes), so extension-less or misnamed images are found; a file
    with an image extension whose content is not an image is still yielded, so that it is reported with a
    reason instead of silently ignored. Hidden files and folders are skipped; symlinked folders are followed
    once each, so link loops end.
    """

    root: Path

    @property
    def origin(self) -> str:
        return str(self.root)

    def scan(self) -> Iterator[ScanEntry]:
        if not self.root.is_dir():
            raise SourceError(str(self.root), "not a directory")
        seen_dirs: set[tuple[int, int]] = set()
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            st = os.stat(dirpath)
            if (st.st_dev, st.st_ino) in seen_dirs:
                dirnames.clear()
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                entry = self._entry(Path(dirpath, name))
                if entry is not None:
                    yield entry

    def _entry(self, path: Path) -> ScanEntry | None:
        rel = path.relative_to(self.root).as_posix()
        try:
            if not path.is_file():
                return None
            with path.open("rb") as fh:
                head = fh.read(16)
            stat = file_stat(path)
        except OSError as e:
            return ScanProblem(rel, str(path), f"cannot read file: {e.strerror or e}")
        if sniff_format(head) is None and path.suffix.lower() not in IMAGE_SUFFIXES:
            return None
        return ItemRecord(id=rel, source=str(path), origin=self.origin, stat=stat)


@dataclass(frozen=True)
class ManifestSource:
    """A CSV, JSONL or Parquet manifest: one row per item.

    Columns: ``id`` and ``image`` (required; ``image`` is a path relative to the manifest, an absolute
    path, or an http(s) URL), optional ``product_id``, ``title``, ``description``, ``category``, ``price``;
    every other column (and a JSONL ``attributes`` object, a Parquet ``attributes`` struct or map) becomes an
    attribute. Problems are located by line (CSV, JSONL) or by data row counted from 1 (Parquet).
    """

    path: Path

    @property
    def origin(self) -> str:
        return str(self.path)

    def scan(self) -> Iterator[ScanEntry]:
        for where, row in self._rows():
            if isinstance(row, ScanProblem):
                yield row
            else:
                yield self._record(where, row)

    def _rows(self) -> Iterator[tuple[str, dict[str, Any] | ScanProblem]]:
        """Rows with where they are (``"line 3"``, ``"row 3"``), whatever the manifest's format."""
        suffix = self.path.suffix.lower()
        if suffix == PARQUET_SUFFIX:
            return parquet_rows(self.path, MAX_NESTING)
        rows = self._jsonl_rows() if suffix in (".jsonl", ".ndjson") else self._csv_rows()
        return ((f"line {line}", row) for line, row in rows)

    def _csv_rows(self) -> Iterator[tuple[int, dict[str, Any] | ScanProblem]]:
        """Rows by line number; a row that is not UTF-8 or that the CSV parser refuses (a field over its
        128 KiB limit, a NUL byte) fails on its own and the rows after it are still read."""
        with self._open(newline="") as handle:
            reader = csv.DictReader(handle)
            try:
                header = reader.fieldnames or []
            except csv.Error as e:
                raise SourceError(str(self.path), f"the header cannot be parsed: {e}") from e
            if any(_UNDECODABLE.search(c) for c in header if c):
                raise SourceError(str(self.path), f"the header is not valid UTF-8; {_SAVE_AS_UTF8}")
            columns = [c.strip() for c in header]
            missing = [c for c in ("id", "image") if c not in columns]
            if missing:
                raise SourceError(str(self.path), f"the header lacks the column(s) {', '.join(missing)}")
            while True:
                before = reader.line_num
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    # The parser skips to the next line on its own; its line count stops before the bad one.
                    where = f"line {before + 1}"
                    yield before + 1, ScanProblem(where, str(self.path), f"{where} cannot be parsed as CSV: {e}")
                    continue
                clean = {(k or "").strip(): v for k, v in row.items() if k is not None}
                where = f"line {reader.line_num}"
                if any(isinstance(v, str) and _UNDECODABLE.search(v) for v in clean.values()):
                    yield reader.line_num, ScanProblem(where, str(self.path), f"{where} {_NOT_UTF8}")
                    continue
                yield reader.line_num, clean

    def _jsonl_rows(self) -> Iterator[tuple[int, dict[str, Any] | ScanProblem]]:
        with self._open() as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                where = f"line {number}"
                if _UNDECODABLE.search(text):
                    yield number, ScanProblem(where, str(self.path), f"{where} {_NOT_UTF8}")
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as e:
                    yield number, ScanProblem(where, str(self.path), f"invalid JSON: {e.msg}")
                    continue
                except RecursionError:
                    yield number, ScanProblem(where, str(self.path), f"{where} nests JSON too deeply to read")
                    continue
                if not isinstance(row, dict):
                    yield number, ScanProblem(where, str(self.path), "a row must be a JSON object")
                    continue
                if _too_deep(row, MAX_NESTING):
                    reason = f"{where} nests objects and lists more than {MAX_NESTING} levels deep"
                    yield number, ScanProblem(where, str(self.path), reason)
                    continue
                yield number, row

    def _open(self, newline: str | None = None) -> TextIO:
        """The manifest as text; bytes that are not UTF-8 are kept as lone surrogates for the rows to report.

        Raises:
            SourceError: the file cannot be opened.
        """
        try:
            return self.path.open(newline=newline, encoding="utf-8-sig", errors="surrogateescape")
        except OSError as e:
            raise SourceError(str(self.path), e.strerror or str(e)) from e

    def _record(self, where: str, row: dict[str, Any]) -> ScanEntry:
        item_id = _text(row.get("id"))
        image = _text(row.get("image"))
        if not item_id:
            return ScanProblem(where, str(self.path), "the row has no id")
        if not image:
            return ScanProblem(item_id, str(self.path), f"{where} has no image")
        price_text = row.get("price")
        price: float | None = None
        if price_text not in (None, ""):
            try:
                price = float(str(price_text).strip().lstrip("$€£"))
            except ValueError:
                return ScanProblem(item_id, image, f"{where}: price {price_text!r} is not a number")
            if not math.isfinite(price) or price < 0:
                return ScanProblem(item_id, image, f"{where}: price {price_text!r} is not a non-negative number")
        attributes: dict[str, Any] = {}
        nested = row.get("attributes")
        if isinstance(nested, dict):
            attributes.update(nested)
        for key, value in row.items():
            if key not in KNOWN_COLUMNS and key != "attributes" and key and value not in (None, ""):
                attributes[key] = value
        source, stat = self._locate(image)
        texts: dict[str, Any] = {name: _text(row.get(name)) for name in TEXT_FIELDS}
        return ItemRecord(
            id=item_id, source=source, origin=self.origin, stat=stat, price=price, attributes=attributes, **texts
        )

    def _locate(self, image: str) -> tuple[str, str | None]:
        if image.startswith(("http://", "https://")):
            return image, None
        path = Path(image).expanduser()
        if not path.is_absolute():
            path = self.path.parent / path
        path = path.resolve()
        try:
            return str(path), file_stat(path)
        except OSError:
            return str(path), None  # reported when the bytes are read


_SAVE_AS_UTF8 = "save the manifest as UTF-8 (e.g. from a spreadsheet: CSV UTF-8)"
_NOT_UTF8 = f"is not valid UTF-8; {_SAVE_AS_UTF8}"


def _too_deep(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests dicts and lists more than ``limit`` levels (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        children = current.values() if isinstance(current, dict) else current if isinstance(current, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
