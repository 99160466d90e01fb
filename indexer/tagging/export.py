"""Tag export: CSV for spreadsheets, JSONL for pipelines, Label Studio predictions for reviewing there.

Rows come from the store (``CatalogStore.tags.rows()``, ordered by item); any objects with the attributes of
:class:`ExportRow` will do, so this module does not depend on the store. CSV cells a spreadsheet would run as
formulas (starting with ``= + - @``, a tab or a carriage return) get a leading ``'``, as the page's CSV export does.

The Label Studio file is its task import format with pre-annotations: a JSON list of tasks, one per item, each with
``data`` (``image``, ``item_id``) and ``predictions``; one prediction per model version (``<model>@<taxonomy
fingerprint[:12]>``, or ``person`` for people's decisions) whose ``result`` holds one ``choices`` region per
attribute (``from_name`` = the attribute, ``to_name`` = ``image``). :func:`label_studio_config` writes the matching
labelling configuration, gated attributes shown only when their gate value is chosen.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator
from itertools import groupby
from typing import Any, Literal, Protocol, TextIO
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from catalens.indexer.tagging.errors import TaggingError
from catalens.indexer.tagging.taxonomy import Taxonomy

ExportFormat = Literal["csv", "jsonl", "label-studio"]
EXPORT_FORMATS: tuple[str, ...] = ("csv", "jsonl", "label-studio")
CSV_COLUMNS = (
    "id",
    "attribute",
    "value",
    "confidence",
    "decision",
    "source",
    "runner_up",
    "runner_up_confidence",
    "model",
    "taxonomy",
    "calibration",
    "updated_at",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_DIGITS = 6  # confidences are float32 scores: six decimals carry all they mean


class ExportRow(Protocol):
    """What export reads of a tag row (the store's ``TagRow`` has these and more)."""

    @property
    def item_id(self) -> str: ...
    @property
    def attribute(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def confidence(self) -> float | None: ...
    @property
    def decision(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def runner_up(self) -> str | None: ...
    @property
    def runner_up_confidence(self) -> float | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def taxonomy(self) -> str | None: ...
    @property
    def calibration(self) -> str | None: ...
    @property
    def updated_at(self) -> str: ...


def export_tags(
    rows: Iterable[ExportRow],
    out: TextIO,
    fmt: ExportFormat,
    *,
    image_url: Callable[[str], str] | None = None,
) -> int:
    """Write ``rows`` to ``out`` as CSV, JSONL or Label Studio predictions; streams, holding one item at a time.

    Args:
        rows: tag rows, all rows of an item next to each other (the store yields them by item key).
        out: a text stream (open files with ``newline=""``: CSV rows end with CRLF, as RFC 4180 says).
        fmt: ``"csv"``, ``"jsonl"`` or ``"label-studio"``.
        image_url: item id -> the image URL Label Studio loads; default the service's ``/v1/items/{id}/image``
            (relative: give Label Studio an absolute URL in production).

    Returns:
        The number of tag rows written (Label Studio: the rows that became choices).

    Raises:
        ValueError: an unknown format.
        TaggingError: Label Studio export of rows whose items are not grouped together.
    """
    if fmt == "csv":
        return _write_csv(rows, out)
    if fmt == "jsonl":
        count = 0
        for row in rows:
            out.write(json.dumps(_record(row), ensure_ascii=False) + "\n")
            count += 1
        return count
    if fmt == "label-studio":
        return _write_label_studio(rows, out, image_url or _service_image_url)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")


def csv_cell(value: object) -> str:
    """A value as a CSV cell: None -> empty, text a spreadsheet would run as a formula -> prefixed with ``'``."""
    if value is None:
        return ""
    if isinstance(value, float):
        return _number_text(value)
    text = str(value)
    return "'" + text if isinstance(value, str) and text.startswith(_FORMULA_STARTS) else text


def label_studio_config(taxonomy: Taxonomy) -> str:
    """The Label Studio labelling configuration matching the export: one ``Choices`` per attribute.

    Gated attributes are shown only when a gate value is chosen (``visibleWhen="choice-selected"``).
    """
    lines = ["<View>", '  <Image name="image" value="$image"/>']
    for attribute in taxonomy.attributes:
        extra = ""
        if attribute.gate is not None:
            extra = (
                f' visibleWhen="choice-selected" whenTagName={quoteattr(attribute.gate.attribute)}'
                f" whenChoiceValue={quoteattr(','.join(attribute.gate.values))}"
            )
        choice = "multiple" if attribute.multi_label else "single"
        lines.append(
            f'  <Header value={quoteattr(attribute.name)}/>\n  <Choices name={quoteattr(attribute.name)} toName="image"'
            f' choice="{choice}" showInLine="true"{extra}>'
        )
        lines.extend(f"    <Choice value={quoteattr(value)}/>" for value in attribute.value_names())
        lines.append("  </Choices>")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _write_csv(rows: Iterable[ExportRow], out: TextIO) -> int:
    writer = csv.writer(out)  # excel dialect: CRLF rows, and any cell holding \r or \n is quoted
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([csv_cell(value) for value in _record(row).values()])
        count += 1
    return count


def _record(row: ExportRow) -> dict[str, Any]:
    """One row as a mapping in :data:`CSV_COLUMNS` order (the JSONL object)."""
    return {
        "id": row.item_id,
        "attribute": row.attribute,
        "value": row.value,
        "confidence": _number(row.confidence),
        "decision": row.decision,
        "source": row.source,
        "runner_up": row.runner_up,
        "runner_up_confidence": _number(row.runner_up_confidence),
        "model": row.model,
        "taxonomy": row.taxonomy,
        "calibration": row.calibration,
        "updated_at": row.updated_at,
    }


def _write_label_studio(rows: Iterable[ExportRow], out: TextIO, image_url: Callable[[str], str]) -> int:
    out.write("[")
    tasks = count = 0
    for item_id, item_rows in _items(rows):
        task = _task(tasks + 1, item_id, item_rows, image_url)
        if task is None:
            continue
        out.write(("\n" if tasks == 0 else ",\n") + json.dumps(task, ensure_ascii=False))
        tasks += 1
        count += sum(len(result["value"]["choices"]) for p in task["predictions"] for result in p["result"])
    out.write("\n]\n" if tasks else "]\n")
    return count


def _items(rows: Iterable[ExportRow]) -> Iterator[tuple[str, list[ExportRow]]]:
    """Consecutive rows of each item; an item seen again after another one is an error (rows must be grouped)."""
    seen: set[str] = set()
    for item_id, group in groupby(rows, key=lambda row: row.item_id):
        if item_id in seen:
            raise TaggingError(f"tag rows of item {item_id!r} are not together: export needs rows ordered by item")
        seen.add(item_id)
        yield item_id, list(group)


def _task(number: int, item_id: str, rows: list[ExportRow], image_url: Callable[[str], str]) -> dict[str, Any] | None:
    """One Label Studio task; None when no row is a choice (only values a person rejected)."""
    versions: dict[str, dict[str, list[ExportRow]]] = {}
    for row in rows:
        if row.source == "person" and row.decision == "reject":
            continue  # a person's "not this value": nothing to pre-select
        version = _model_version(row)
        versions.setdefault(version, {}).setdefault(row.attribute, []).append(row)
    if not versions:
        return None
    predictions = []
    for version, attributes in versions.items():
        results = []
        for attribute, chosen in attributes.items():
            result: dict[str, Any] = {
                "id": hashlib.sha1(f"{item_id}\0{version}\0{attribute}".encode()).hexdigest()[:10],
                "from_name": attribute,
                "to_name": "image",
                "type": "choices",
                "value": {"choices": [row.value for row in chosen]},
            }
            score = _mean(row.confidence for row in chosen)
            if score is not None:
                result["score"] = score
            results.append(result)
        prediction: dict[str, Any] = {"model_version": version}
        score = _mean(row.confidence for rows_ in attributes.values() for row in rows_)
        if score is not None:
            prediction["score"] = score
        prediction["result"] = results
        predictions.append(prediction)
    return {"id": number, "data": {"image": image_url(item_id), "item_id": item_id}, "predictions": predictions}


def _model_version(row: ExportRow) -> str:
    if row.source == "person":
        return "person"
    if not row.model:
        return "unknown"
    return f"{row.model}@{row.taxonomy[:12]}" if row.taxonomy else row.model


def _service_image_url(item_id: str) -> str:
    return f"/v1/items/{quote(item_id, safe='')}/image"


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None and math.isfinite(v)]
    return round(sum(known) / len(known), _DIGITS) if known else None


def _number(value: float | None) -> float | None:
    return round(float(value), _DIGITS) if value is not None and math.isfinite(value) else None


def _number_text(value: float) -> str:
    return repr(value) if math.isfinite(value) else ""
