"""Labelled files for calibration: rows ``{"id", "attribute", "label"}`` as JSONL or CSV, checked line by line.

A labelled file is a sample a person labelled, or catalog fields the shop already has, exported. Every problem is
a :class:`CalibrationError` naming the file and line: a row that is not an object / lacks a column, an empty
field, and (given the taxonomy's attributes and values) an unknown attribute or label, with the allowed names.
Labels match the taxonomy's values case-insensitively (after stripping) and come back in the taxonomy's spelling.
Unknown item ids are not checked here: the caller counts and skips them against the store.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from catalens.indexer.tagging.errors import CalibrationError

if TYPE_CHECKING:
    from catalens.indexer.tagging.taxonomy import Taxonomy

_FIELDS = ("id", "attribute", "label")
_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True, slots=True)
class LabelledRow:
    """One labelled row: the item id, the attribute, the value (taxonomy spelling when checked), the file line."""

    id: str
    attribute: str
    label: str
    line: int


def _names(options: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(repr(o) for o in list(options)[:limit])
    return shown + (f", ... ({len(options)} in all)" if len(options) > limit else "")


class _Checker:
    """Resolves attribute and label names against the taxonomy (when given), case-insensitively."""

    def __init__(self, source: str, allowed: Mapping[str, Sequence[str]] | None) -> None:
        self.source = source
        self.allowed = allowed
        self.attrs = {k.strip().casefold(): k for k in allowed} if allowed is not None else {}
        self.values = {k: {v.strip().casefold(): v for v in vs} for k, vs in allowed.items()} if allowed else {}

    def row(self, line: int, item_id: object, attribute: object, label: object) -> LabelledRow:
        fields = {"id": item_id, "attribute": attribute, "label": label}
        for key, value in fields.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise CalibrationError(f"{self.source}:{line}: {key!r} must be a string, got {value!r}")
            if not str(value).strip():
                raise CalibrationError(f"{self.source}:{line}: empty {key!r}")
        name, value = str(attribute).strip(), str(label).strip()
        if self.allowed is not None:
            found = self.attrs.get(name.casefold())
            if found is None:
                raise CalibrationError(
                    f"{self.source}:{line}: unknown attribute {name!r}; the taxonomy has {_names(list(self.allowed))}"
                )
            spelled = self.values[found].get(value.casefold())
            if spelled is None:
                raise CalibrationError(
                    f"{self.source}:{line}: {value!r} is not a value of {found!r}; "
                    f"allowed: {_names(list(self.allowed[found]))}"
                )
            name, value = found, spelled
        return LabelledRow(str(item_id).strip(), name, value, line)


def _read_jsonl(text: str, check: _Checker) -> list[LabelledRow]:
    rows = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            raise CalibrationError(f"{check.source}:{number}: not a JSON object: {e.msg}") from e
        if not isinstance(obj, dict):
            raise CalibrationError(f"{check.source}:{number}: expected a JSON object with id, attribute, label")
        missing = [f for f in _FIELDS if f not in obj]
        if missing:
            raise CalibrationError(f"{check.source}:{number}: missing {', '.join(missing)}")
        rows.append(check.row(number, obj["id"], obj["attribute"], obj["label"]))
    return rows


def _read_csv(text: str, check: _Checker) -> list[LabelledRow]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lstrip("\ufeff").casefold() for h in next(reader)]
    except StopIteration:
        return []
    except csv.Error as e:
        raise CalibrationError(f"{check.source}:1: bad CSV header: {e}") from e
    missing = [f for f in _FIELDS if f not in header]
    if missing:
        raise CalibrationError(
            f"{check.source}:1: the CSV header needs columns id, attribute, label (missing {missing})"
        )
    at = [header.index(f) for f in _FIELDS]
    rows = []
    start = reader.line_num + 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if len(cells) < len(header):
                raise CalibrationError(f"{check.source}:{line}: {len(cells)} cells, the header has {len(header)}")
            rows.append(check.row(line, *(cells[i] for i in at)))
    except csv.Error as e:
        raise CalibrationError(f"{check.source}:{reader.line_num}: bad CSV: {e}") from e
    return rows


def load_labelled(
    path: str | os.PathLike[str],
    taxonomy: Taxonomy | None = None,
    *,
    allowed: Mapping[str, Sequence[str]] | None = None,
) -> list[LabelledRow]:
    """Read a labelled file (JSONL by suffix ``.jsonl``/``.ndjson``/``.json`` or a first ``{``, else CSV).

    Args:
        path: the file.
        taxonomy: when given, unknown attribute and value names are errors and names come back in the
            taxonomy's spelling.
        allowed: the same check from a plain mapping attribute -> its values (when there is no taxonomy).

    Returns:
        The rows in file order. Several rows for one item and attribute are kept (multi-label attributes).

    Raises:
        CalibrationError: an unreadable file or a bad row (the message names ``file:line``).
    """
    source = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise CalibrationError(f"cannot read labelled file {source}: {e}") from e
    if taxonomy is not None:
        allowed = {a.name: a.value_names() for a in taxonomy.attributes}
    check = _Checker(os.path.basename(source) or source, allowed)
    is_jsonl = source.lower().endswith(_JSONL_SUFFIXES) or text.lstrip().startswith("{")
    return _read_jsonl(text, check) if is_jsonl else _read_csv(text, check)
