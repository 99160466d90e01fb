"""JSON and YAML documents read into plain values that remember where each key sits, for precise error messages.

Taxonomy files are written by people, so a mistake must name its line (YAML) or its key path (JSON, whose parser
keeps no positions past syntax errors). YAML is composed into nodes with the safe loader (never arbitrary objects)
and turned into plain values here, recording each key's line; keys are kept as written (``yes:`` is the name
"yes", not True), and plain scalars that YAML reads as non-text keep their text too. Duplicate keys, which both
parsers would silently collapse to the last one, are errors, and so are alias expansions past a node budget.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from catalens.indexer.tagging.errors import TaxonomyError

MAX_NODES = 500_000  # YAML aliases can expand a small file exponentially ("billion laughs")

#: A key path: mapping keys and list indexes from the root.
KeyPath = tuple[str | int, ...]


@dataclass
class Document:
    """Plain values (dicts, lists, scalars) of a file, with positions where the format has them."""

    data: Any
    source: str
    lines: dict[KeyPath, int] = field(default_factory=dict)  # key path -> 1-based line of its key or list item
    raw: dict[KeyPath, str] = field(default_factory=dict)  # plain YAML scalars read as non-text: their text

    def line(self, path: KeyPath) -> int | None:
        """The line of ``path``, else of its nearest enclosing key that has one (None for JSON)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def read_document(text: str, source: str, fmt: str | None) -> Document:
    """Read ``text`` as ``"json"``, ``"yaml"``, or (None) JSON and else YAML.

    Raises:
        TaxonomyError: a syntax error (with the parser's line), a duplicate key, a non-plain YAML key.
        ValueError: an unknown ``fmt``.
    """
    if fmt == "json":
        return _read_json(text, source)
    if fmt == "yaml":
        return _read_yaml(text, source)
    if fmt is not None:
        raise ValueError(f"unknown taxonomy format {fmt!r}; choose 'json' or 'yaml'")
    try:
        return _read_json(text, source)
    except TaxonomyError as json_error:
        try:
            return _read_yaml(text, source)
        except TaxonomyError:
            if text.lstrip().startswith(("{", "[")):  # meant as JSON: its message is the useful one
                raise json_error from None
            raise


def located_error(message: str, source: str, line: int | None, path: KeyPath) -> TaxonomyError:
    """A TaxonomyError whose message always starts with ``source:line: key.path:`` (parts that are known)."""
    key = path_text(path)
    return TaxonomyError(f"{key}: {message}" if key else message, source=source, line=line, key=key or None)


def path_text(path: KeyPath) -> str:
    """``("attributes", "heel height", "values", 2)`` -> ``attributes.heel height.values[2]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers keys it saw twice (``json`` keeps only the last)."""

    duplicates: list[str]


def _json_object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _read_json(text: str, source: str) -> Document:
    try:
        data = json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as e:
        raise TaxonomyError(f"invalid JSON: {e.msg} (column {e.colno})", source=source, line=e.lineno) from e
    except RecursionError as e:
        raise TaxonomyError("invalid JSON: nested too deeply", source=source) from e

    def check(value: Any, path: KeyPath) -> None:
        if isinstance(value, _JsonObject):
            if value.duplicates:
                key = value.duplicates[0]
                raise located_error(f"duplicate key {key!r}", source, None, path + (key,))
            for key, item in value.items():
                check(item, path + (key,))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                check(item, path + (index,))

    try:
        check(data, ())
    except RecursionError as e:
        raise TaxonomyError("JSON nested too deeply", source=source) from e
    return Document(data, source)


def _read_yaml(text: str, source: str) -> Document:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise _yaml_error(e, source) from e
    doc = Document(None, source)
    if root is None:
        return doc
    doc.lines[()] = root.start_mark.line + 1
    loader = yaml.SafeLoader("")
    count = 0

    def build(node: yaml.Node, path: KeyPath, parents: tuple[int, ...]) -> Any:
        nonlocal count
        count += 1
        line = node.start_mark.line + 1
        if count > MAX_NODES:
            raise TaxonomyError(f"more than {MAX_NODES} YAML nodes (aliases expanding?)", source=source, line=line)
        if id(node) in parents:
            raise located_error("an alias that contains itself", source, line, path)
        inner = parents + (id(node),)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    message = "keys must be plain names (no complex or merge '<<' keys)"
                    raise located_error(message, source, key_line, path)
                key = str(key_node.value)  # the text as written: `yes:` is the name "yes", not True
                if key in out:
                    first = doc.lines[path + (key,)]
                    message = f"duplicate key {key!r} (first at line {first})"
                    raise located_error(message, source, key_line, path + (key,))
                doc.lines[path + (key,)] = key_line
                out[key] = build(value_node, path + (key,), inner)
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                doc.lines[path + (index,)] = item.start_mark.line + 1
                items.append(build(item, path + (index,), inner))
            return items
        try:
            value = loader.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            raise _yaml_error(e, source, line) from e
        if node.style is None and not isinstance(value, str):
            doc.raw[path] = str(node.value)
        return value

    try:
        doc.data = build(root, (), ())
    finally:
        loader.dispose()
    return doc


def _yaml_error(error: yaml.YAMLError, source: str, line: int | None = None) -> TaxonomyError:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else line
        what = " ".join(part for part in (error.context, error.problem) if part)
        return TaxonomyError(f"invalid YAML: {what or error}", source=source, line=line)
    return TaxonomyError(f"invalid YAML: {error}", source=source, line=line)
