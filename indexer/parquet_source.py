"""Parquet manifests: the rows of a ``.parquet`` catalog file as plain Python values, a record batch at a time.

Data lakes and ERP exports hand out Parquet; its columns are those of a CSV/JSONL manifest (``id``, ``image``,
``product_id``, ``title``, ...), and :class:`~catalens.indexer.sources.ManifestSource` turns the rows this module
yields into records exactly as it does JSONL rows. The file is read with ``ParquetFile.iter_batches`` so a manifest
of millions of rows never sits in memory whole.

Values become what a JSON row would hold, so they are stored and filtered like JSONL values: integers, floats,
strings, booleans and lists as they are; structs and maps as objects (a struct or map ``attributes`` column is
JSONL's ``attributes`` object); timestamps, dates and times as ISO 8601 text; decimals as floats; binary as UTF-8
text. Null (and a float NaN, which exports write for a missing number) is a missing value.

``pyarrow`` is an optional dependency (``pip install 'catalens[parquet]'``), imported only when a Parquet
manifest is read, so ``import catalens`` stays light.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from catalens.indexer.errors import SourceError
from catalens.indexer.records import ScanProblem

PARQUET_SUFFIX = ".parquet"
INSTALL_HINT = "pip install 'catalens[parquet]'"
#: Rows converted to Python at a time: small enough that rows with long descriptions stay a few MiB.
BATCH_ROWS = 1024
#: What converting a value may raise (UnicodeDecodeError is a ValueError; dates out of range, overflows).
_CONVERSION_ERRORS = (ValueError, ArithmeticError, NotImplementedError)
#: A row by where it is (``"row 12"``, counting data rows from 1), or the problem that stops it.
ParquetRow = tuple[str, dict[str, Any] | ScanProblem]


def require_pyarrow(source: str) -> Any:
    """``pyarrow.parquet``, imported on first use.

    Raises:
        SourceError: pyarrow is not installed; the message says how to install it.
    """
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise SourceError(source, f"reading a Parquet manifest needs pyarrow: {INSTALL_HINT}") from e
    return pq


def parquet_rows(path: Path, max_nesting: int, batch_rows: int = BATCH_ROWS) -> Iterator[ParquetRow]:
    """Every row of a Parquet manifest in file order, its values as JSON-like Python values.

    Args:
        path: the Parquet file.
        max_nesting: how deeply values may nest (the row itself is level 1), as for JSONL rows.
        batch_rows: rows read and converted at a time.

    Yields:
        ``(where, row)`` per data row; a row whose values cannot be converted is a :class:`ScanProblem`.

    Raises:
        SourceError: pyarrow is missing, the file is not readable Parquet, lacks ``id`` or ``image``, nests
            its columns too deeply, or breaks off part way (then nothing of the run is applied).
    """
    pq = require_pyarrow(str(path))
    import pyarrow as pa

    failures = (OSError, pa.ArrowException)
    try:
        handle = pq.ParquetFile(str(path))
    except failures as e:
        raise SourceError(str(path), f"not a readable Parquet file: {e}") from e
    with handle:
        _check_schema(path, handle.schema_arrow, max_nesting)
        batches = handle.iter_batches(batch_size=batch_rows)
        number = 0
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except failures as e:
                raise SourceError(str(path), f"the file cannot be read past row {number}: {e}") from e
            for row in _batch_rows(batch):
                number += 1
                where = f"row {number}"
                if isinstance(row, str):
                    yield where, ScanProblem(where, str(path), f"{where} {row}")
                else:
                    yield where, row


def _check_schema(path: Path, schema: Any, max_nesting: int) -> None:
    """Refuse, once for the whole file, a schema without ``id``/``image`` or nesting deeper than JSONL rows may."""
    names = [name.strip() for name in schema.names]
    missing = [c for c in ("id", "image") if c not in names]
    if missing:
        raise SourceError(str(path), f"the schema lacks the column(s) {', '.join(missing)}")
    for field in schema:
        if 1 + _type_depth(field.type) > max_nesting:
            reason = f"column {field.name!r} nests structs and lists more than {max_nesting} levels deep"
            raise SourceError(str(path), reason)


def _type_depth(kind: Any) -> int:
    """How many object/list levels values of an Arrow type add (a map is one object, like a struct)."""
    import pyarrow as pa

    deepest = 0
    stack: list[tuple[Any, int]] = [(kind, 0)]
    while stack:
        current, depth = stack.pop()
        if pa.types.is_map(current):
            stack.append((current.item_type, depth + 1))
        elif pa.types.is_dictionary(current):
            stack.append((current.value_type, depth))
        elif current.num_fields:
            stack.extend((current.field(i).type, depth + 1) for i in range(current.num_fields))
        deepest = max(deepest, depth)
    return deepest


def _batch_rows(batch: Any) -> Iterator[dict[str, Any] | str]:
    """A batch's rows as plain dicts; a row that cannot be converted is the reason why (a string).

    The whole batch is converted at once; only when that fails is it converted row by row, so that one bad
    value (a string column holding bytes that are not UTF-8) fails its own row only.
    """
    names = [name.strip() for name in batch.schema.names]
    try:
        rows = [tuple(row.values()) for row in batch.to_pylist(maps_as_pydicts="lossy")]
    except _CONVERSION_ERRORS:
        rows = None
    for index in range(batch.num_rows):
        try:
            values = rows[index] if rows is not None else tuple(_one_row(batch, index).values())
            yield {name: _plain(value) for name, value in zip(names, values, strict=True)}
        except _CONVERSION_ERRORS as e:
            yield f"cannot be read: {e}"


def _one_row(batch: Any, index: int) -> dict[str, Any]:
    row: dict[str, Any] = batch.slice(index, 1).to_pylist(maps_as_pydicts="lossy")[0]
    return row


def _plain(value: Any) -> Any:
    """A JSON value for what pyarrow's ``to_pylist`` gives (see the module docstring).

    Raises:
        UnicodeDecodeError: a binary value is not UTF-8 text.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value)
