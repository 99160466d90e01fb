"""Taxonomy files: the attributes a tagging job asks about, their values, prompt texts and two-stage gates.

A taxonomy is a JSON or YAML mapping with ``attributes`` (required, order kept) and optional default
``templates``; the smallest one is ``{"attributes": {"kind": {"values": ["animals", "food"]}}}``. Each attribute
has ``values`` (a list of names or ``{name, prompts}`` items, or a mapping name -> prompt texts), and optionally
``multi_label``, ``templates`` (each with exactly one ``{}``), ``threshold`` (the accept threshold used without a
calibration) and ``applies_to`` (the values of another attribute it is asked for: shoes get ``heel height``, mugs
do not; a list is shorthand for values of the FIRST attribute).

Every mistake is a :class:`TaxonomyError` naming the key path and, for YAML, the line: the YAML is composed
into nodes (safe-loader semantics, never arbitrary objects) so each key keeps its position; JSON has no
positions past syntax errors, so its errors name the key path. Duplicate keys, which both parsers would
silently collapse to the last one, are errors too.

The parsed content has one canonical JSON form (:meth:`Taxonomy.to_json`): defaults made explicit, gates spelled
out, keys sorted except the attributes, whose order is content (as is the order of every list). Its sha256 is the
taxonomy's fingerprint: formatting, key order, JSON vs YAML and spelled-out defaults do not change it; any change to
what a job would compute does.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from catalens.indexer.tagging.documents import Document, KeyPath, located_error, read_document
from catalens.indexer.tagging.errors import TaxonomyError

DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a product photo of a {}.",
    "a photo of the {}, a product for sale.",
    "a close-up photo of a {}.",
)
DEFAULT_THRESHOLD = 0.8
MAX_ATTRIBUTES = 64
MAX_VALUES = 1000
MAX_PROMPTS = 4096  # per attribute: values x prompt texts x templates
MAX_FILE_BYTES = 16 * 1024 * 1024

_TOP_KEYS = ("attributes", "templates")
_ATTRIBUTE_KEYS = ("values", "multi_label", "templates", "threshold", "applies_to")
_VALUE_KEYS = ("name", "prompts")

_Path = KeyPath


@dataclass(frozen=True)
class TaxonomyValue:
    """One value of an attribute; ``prompts`` are its texts (synonyms), ``()`` meaning the name itself."""

    name: str
    prompts: tuple[str, ...] = ()

    def texts(self) -> tuple[str, ...]:
        """The texts put into the templates: the prompts, or the name when there are none."""
        return self.prompts or (self.name,)


@dataclass(frozen=True)
class Gate:
    """An attribute is asked only of items tagged (accepted) with one of ``values`` of ``attribute``."""

    attribute: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class TaxonomyAttribute:
    """One attribute: its values, single- or multi-label, its templates, its gate and default threshold."""

    name: str
    values: tuple[TaxonomyValue, ...]
    multi_label: bool = False
    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    gate: Gate | None = None
    threshold: float = DEFAULT_THRESHOLD

    def value_names(self) -> tuple[str, ...]:
        """The value names, in file order."""
        return tuple(value.name for value in self.values)

    def find_value(self, name: str) -> str | None:
        """The declared spelling of ``name`` (matched ignoring case and surrounding spaces), or None."""
        wanted = _fold(name)
        return next((value.name for value in self.values if _fold(value.name) == wanted), None)

    def prompts(self, value: str) -> tuple[str, ...]:
        """Every template filled with every text of ``value`` (text-major): the prompt ensemble to embed.

        Raises:
            TaxonomyError: ``value`` is not a value of this attribute.
        """
        for item in self.values:
            if item.name == value:
                return tuple(template.replace("{}", text) for text in item.texts() for template in self.templates)
        raise TaxonomyError(f"{value!r} is not a value of {self.name!r} (values: {_listing(self.value_names())})")


@dataclass(frozen=True)
class Taxonomy:
    """A parsed taxonomy; ``attributes`` put every gate before the attributes it gates (file order otherwise)."""

    attributes: tuple[TaxonomyAttribute, ...]
    fingerprint: str
    source: str = field(default="<taxonomy>", compare=False)

    def attribute(self, name: str) -> TaxonomyAttribute:
        """The attribute called ``name`` (exactly, else ignoring case and surrounding spaces).

        Raises:
            TaxonomyError: no such attribute.
        """
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        for attribute in self.attributes:
            if _fold(attribute.name) == _fold(name):
                return attribute
        names = _listing(a.name for a in self.attributes)
        raise TaxonomyError(f"unknown attribute {name!r} (attributes: {names})", source=self.source)

    def to_json(self) -> str:
        """The canonical JSON of the content; ``parse_taxonomy(t.to_json()) == t`` with the same fingerprint."""
        return _canonical_json(self.attributes)


def load_taxonomy(path: str | os.PathLike[str]) -> Taxonomy:
    """Read and check a taxonomy file: JSON for ``.json``, YAML for ``.yaml``/``.yml``, else JSON then YAML.

    Raises:
        TaxonomyError: the file cannot be read, or any mistake in it (the message names the line or key path).
    """
    source = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise TaxonomyError(f"cannot read the taxonomy: {e.strerror or e}", source=source) from e
    if len(data) > MAX_FILE_BYTES:
        raise TaxonomyError(f"file larger than {MAX_FILE_BYTES} bytes", source=source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TaxonomyError(f"not UTF-8 text (byte {e.start})", source=source) from e
    suffix = Path(source).suffix.lower()
    fmt = "json" if suffix == ".json" else "yaml" if suffix in (".yaml", ".yml") else None
    return parse_taxonomy(text, source=source, fmt=fmt)


def parse_taxonomy(text: str, *, source: str = "<taxonomy>", fmt: str | None = None) -> Taxonomy:
    """Parse and check taxonomy text; ``fmt`` is ``"json"``, ``"yaml"`` or None (JSON, else YAML).

    Raises:
        TaxonomyError: a syntax error (with the parser's line) or any mistake in the content.
        ValueError: an unknown ``fmt``.
    """
    return _Checker(read_document(text, source, fmt)).taxonomy()


# ---- checking: plain values -> a Taxonomy ----


class _Checker:
    """Turns a read document into a Taxonomy; every failure names the key path and, when known, the line."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc

    def fail(self, path: _Path, message: str) -> NoReturn:
        raise located_error(message, self.doc.source, self.doc.line(path), path)

    def taxonomy(self) -> Taxonomy:
        root = self.doc.data
        if not isinstance(root, dict):
            self.fail((), "a taxonomy is a mapping with an 'attributes' key")
        self.keys(root, _TOP_KEYS, ())
        templates = self.templates(root["templates"], ("templates",)) if "templates" in root else DEFAULT_TEMPLATES
        specs = root.get("attributes")
        if not isinstance(specs, dict) or not specs:
            self.fail(("attributes",), "'attributes' must be a non-empty mapping of attribute name -> values")
        if len(specs) > MAX_ATTRIBUTES:
            self.fail(("attributes",), f"{len(specs)} attributes: at most {MAX_ATTRIBUTES}")
        seen: dict[str, str] = {}
        parsed: list[TaxonomyAttribute] = []
        for key, spec in specs.items():
            path: _Path = ("attributes", key)
            name = key.strip()
            if not name:
                self.fail(path, "blank attribute name")
            if "=" in name:
                self.fail(path, f"attribute names cannot contain '=' ({name!r})")
            if _fold(name) in seen:
                self.fail(path, f"duplicate attribute {name!r} (same as {seen[_fold(name)]!r})")
            seen[_fold(name)] = name
            parsed.append(self.attribute(name, spec, path, templates))
        gates = {
            a.name: self.gate(a, specs[key], ("attributes", key), parsed) for a, key in zip(parsed, specs, strict=True)
        }
        attributes = [
            TaxonomyAttribute(a.name, a.values, a.multi_label, a.templates, gates[a.name], a.threshold) for a in parsed
        ]
        self.no_cycles(attributes, list(specs))
        ordered = _gates_first(attributes)
        return Taxonomy(ordered, hashlib.sha256(_canonical_json(ordered).encode()).hexdigest(), self.doc.source)

    def keys(self, obj: Mapping[str, Any], allowed: tuple[str, ...], path: _Path) -> None:
        for key in obj:
            if key not in allowed:
                self.fail(path + (key,), f"unknown key {key!r} (allowed: {', '.join(allowed)})")

    def attribute(self, name: str, spec: Any, path: _Path, default_templates: tuple[str, ...]) -> TaxonomyAttribute:
        if not isinstance(spec, dict):
            self.fail(path, "an attribute is a mapping with 'values' (e.g. {values: [a, b]})")
        self.keys(spec, _ATTRIBUTE_KEYS, path)
        if "values" not in spec:
            self.fail(path, "missing 'values'")
        values = self.values(spec["values"], path + ("values",))
        multi_label = spec.get("multi_label", False)
        if not isinstance(multi_label, bool):
            self.fail(path + ("multi_label",), f"multi_label must be true or false, not {multi_label!r}")
        templates = self.templates(spec["templates"], path + ("templates",)) if "templates" in spec else None
        templates = templates or default_templates
        threshold = spec.get("threshold", DEFAULT_THRESHOLD)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
            self.fail(path + ("threshold",), f"threshold must be a number in (0, 1], not {threshold!r}")
        prompts = sum(len(value.texts()) for value in values) * len(templates)
        if prompts > MAX_PROMPTS:
            self.fail(path, f"{prompts} prompts (values x texts x templates): at most {MAX_PROMPTS}")
        return TaxonomyAttribute(name, values, multi_label, templates, None, float(threshold))

    def values(self, spec: Any, path: _Path) -> tuple[TaxonomyValue, ...]:
        items: list[tuple[_Path, TaxonomyValue]] = []
        if isinstance(spec, dict):
            for key, prompts in spec.items():
                here = path + (key,)
                prompt_path = here
                if isinstance(prompts, dict):
                    self.keys(prompts, ("prompts",), here)
                    prompts, prompt_path = prompts.get("prompts"), here + ("prompts",)
                items.append((here, TaxonomyValue(self.name(key, here), self.prompts(prompts, prompt_path))))
        elif isinstance(spec, list):
            for index, item in enumerate(spec):
                here = path + (index,)
                if isinstance(item, dict):
                    self.keys(item, _VALUE_KEYS, here)
                    if "name" not in item:
                        self.fail(here, "a value written as a mapping needs 'name'")
                    name = self.name(item["name"], here + ("name",))
                    items.append((here, TaxonomyValue(name, self.prompts(item.get("prompts"), here + ("prompts",)))))
                else:
                    items.append((here, TaxonomyValue(self.name(item, here))))
        else:
            self.fail(path, "'values' must be a list of names or a mapping of name -> prompt texts")
        if not items:
            self.fail(path, "no values: an attribute needs at least one value")
        if len(items) > MAX_VALUES:
            self.fail(path, f"{len(items)} values: at most {MAX_VALUES}")
        seen: dict[str, str] = {}
        for here, value in items:
            if _fold(value.name) in seen:
                self.fail(here, f"duplicate value {value.name!r} (same as {seen[_fold(value.name)]!r})")
            seen[_fold(value.name)] = value.name
        return tuple(value for _, value in items)

    def name(self, value: Any, path: _Path) -> str:
        if isinstance(value, str):
            text = value
        elif path in self.doc.raw and value is not None:
            text = self.doc.raw[path]  # YAML `- yes` or `- 42`: the name as written
        elif isinstance(value, int | float) and not isinstance(value, bool):
            text = json.dumps(value)
        elif value is None:
            self.fail(path, "empty value name")
        else:
            self.fail(path, f"a value name must be text, not {value!r}")
        if not text.strip():
            self.fail(path, "empty value name")
        return text.strip()

    def prompts(self, spec: Any, path: _Path) -> tuple[str, ...]:
        if spec is None:
            return ()
        texts = [spec] if isinstance(spec, str) else spec
        if not isinstance(texts, list) or not texts:
            self.fail(path, "prompts must be a non-empty list of texts (leave it out to use the name)")
        out: list[str] = []
        for index, text in enumerate(texts):
            here = path + (index,) if texts is spec else path
            if not isinstance(text, str) or not text.strip():
                self.fail(here, f"a prompt must be non-empty text, not {text!r}")
            if _fold(text) in map(_fold, out):
                self.fail(here, f"duplicate prompt {text.strip()!r}")
            out.append(text.strip())
        return tuple(out)

    def templates(self, spec: Any, path: _Path) -> tuple[str, ...]:
        if not isinstance(spec, list) or not spec:
            self.fail(path, "templates must be a non-empty list of texts with one '{}' each")
        for index, template in enumerate(spec):
            if not isinstance(template, str) or template.count("{}") != 1:
                self.fail(path + (index,), f"a template needs exactly one '{{}}' placeholder: {template!r}")
            if template in spec[:index]:
                self.fail(path + (index,), f"duplicate template {template!r}")
        return tuple(spec)

    def gate(
        self, attribute: TaxonomyAttribute, spec: dict[str, Any], path: _Path, all_: list[TaxonomyAttribute]
    ) -> Gate | None:
        if "applies_to" not in spec:
            return None
        path = path + ("applies_to",)
        raw = spec["applies_to"]
        if isinstance(raw, dict):
            if len(raw) != 1:
                self.fail(path, "applies_to names exactly one attribute and its values, e.g. {category: [shoes]}")
            [(target_name, wanted)] = raw.items()
            value_path = path + (target_name,)
        else:
            target_name, wanted, value_path = all_[0].name, raw, path
        target = next((a for a in all_ if _fold(a.name) == _fold(str(target_name))), None)
        if target is None:
            self.fail(value_path, f"{target_name!r} is not an attribute of this taxonomy")
        if target.name == attribute.name:
            shorthand = "" if isinstance(raw, dict) else " (a list names values of the first attribute)"
            self.fail(value_path, f"{attribute.name!r} cannot apply to values of itself{shorthand}")
        listed = [wanted] if isinstance(wanted, str) else wanted
        if not isinstance(listed, list) or not listed:
            self.fail(value_path, f"applies_to needs a non-empty list of values of {target.name!r}")
        values: list[str] = []
        for index, item in enumerate(listed):
            here = value_path + (index,) if listed is wanted else value_path
            found = target.find_value(self.name(item, here))
            if found is None:
                self.fail(here, f"{self.name(item, here)!r} is not a value of {target.name!r}")
            if found in values:
                self.fail(here, f"duplicate value {found!r}")
            values.append(found)
        return Gate(target.name, tuple(values))

    def no_cycles(self, attributes: list[TaxonomyAttribute], keys: list[str]) -> None:
        gates = {a.name: a.gate.attribute for a in attributes if a.gate is not None}
        for attribute, key in zip(attributes, keys, strict=True):
            chain = [attribute.name]
            while chain[-1] in gates:
                chain.append(gates[chain[-1]])
                if chain[-1] == attribute.name:
                    self.fail(("attributes", key, "applies_to"), f"a cycle of gates: {' -> '.join(chain)}")
                if len(chain) > len(attributes):
                    break  # a cycle further up, reported for its own members


def _gates_first(attributes: list[TaxonomyAttribute]) -> tuple[TaxonomyAttribute, ...]:
    """File order, each gate pulled forward to just before the first attribute it gates (cycles already refused)."""
    by_name = {attribute.name: attribute for attribute in attributes}
    placed: dict[str, TaxonomyAttribute] = {}

    def place(attribute: TaxonomyAttribute) -> None:
        if attribute.name not in placed:
            if attribute.gate is not None:
                place(by_name[attribute.gate.attribute])
            placed[attribute.name] = attribute

    for attribute in attributes:
        place(attribute)
    return tuple(placed.values())


def _canonical_json(attributes: tuple[TaxonomyAttribute, ...]) -> str:
    """Keys sorted (built in order) except the attribute mapping, whose order is content; defaults explicit."""
    content: dict[str, Any] = {}
    for attribute in attributes:
        spec: dict[str, Any] = {}
        if attribute.gate is not None:
            spec["applies_to"] = {attribute.gate.attribute: list(attribute.gate.values)}
        spec["multi_label"] = attribute.multi_label
        spec["templates"] = list(attribute.templates)
        spec["threshold"] = attribute.threshold
        spec["values"] = [
            {"name": v.name, "prompts": list(v.prompts)} if v.prompts else v.name for v in attribute.values
        ]
        content[attribute.name] = spec
    return json.dumps({"attributes": content}, ensure_ascii=False, separators=(",", ":"))


def _fold(text: str) -> str:
    return text.strip().casefold()


def _listing(names: Any, limit: int = 20) -> str:
    names = list(names)
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(map(repr, names[:limit])) + more


__all__ = [
    "DEFAULT_TEMPLATES",
    "DEFAULT_THRESHOLD",
    "Gate",
    "Taxonomy",
    "TaxonomyAttribute",
    "TaxonomyValue",
    "load_taxonomy",
    "parse_taxonomy",
]
