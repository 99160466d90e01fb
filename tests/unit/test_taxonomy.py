"""Taxonomy files: the smallest one works in JSON and YAML, the full form parses to gates-first attributes with
their prompt ensembles, the canonical JSON round-trips, the fingerprint ignores formatting but not content, and
every mistake is a TaxonomyError whose message names the line (YAML) or the key path (JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalens.indexer.tagging.errors import TaxonomyError
from catalens.indexer.tagging.taxonomy import (
    DEFAULT_TEMPLATES,
    DEFAULT_THRESHOLD,
    Gate,
    Taxonomy,
    load_taxonomy,
    parse_taxonomy,
)

TAXONOMIES = Path(__file__).resolve().parents[2] / "scripts" / "data" / "taxonomies"
DEMO_CATALOG = Path(__file__).resolve().parents[2] / "scripts" / "data" / "demo_catalog" / "catalog.csv"

FULL = """\
templates: ["a photo of a {}.", "a product photo of a {}."]
attributes:
  heel height:
    values: [flat, low heel, high heel]
    applies_to: {category: [Shoes]}
  category:
    values:
      - shoes
      - {name: mug, prompts: ["mug", "coffee cup"]}
      - yes
    threshold: 0.5
  colour:
    multi_label: true
    templates: ["a {} thing"]
    values:
      red: [red, crimson]
      blue: {prompts: [blue]}
      green: null
"""


def _error(text: str, fmt: str | None = "yaml") -> TaxonomyError:
    with pytest.raises(TaxonomyError) as caught:
        parse_taxonomy(text, source="t.yaml" if fmt == "yaml" else "t.json", fmt=fmt)
    return caught.value


def test_smallest_taxonomy_works_as_json_and_as_yaml(tmp_path: Path) -> None:
    json_file = tmp_path / "kinds.json"
    json_file.write_text('{"attributes": {"kind": {"values": ["animals", "food"]}}}')
    yaml_file = tmp_path / "kinds.yml"
    yaml_file.write_text("attributes:\n  kind:\n    values: [animals, food]\n")
    from_json, from_yaml = load_taxonomy(json_file), load_taxonomy(yaml_file)
    assert from_json == from_yaml and from_json.fingerprint == from_yaml.fingerprint
    (kind,) = from_json.attributes
    assert kind.name == "kind" and kind.value_names() == ("animals", "food")
    assert not kind.multi_label and kind.gate is None and kind.threshold == DEFAULT_THRESHOLD
    assert kind.templates == DEFAULT_TEMPLATES
    assert kind.prompts("food") == tuple(t.replace("{}", "food") for t in DEFAULT_TEMPLATES)
    assert from_json.source == str(json_file)
    assert load_taxonomy(TAXONOMIES / "minimal.json") == from_json


def test_full_form_puts_gates_first_and_builds_prompt_ensembles() -> None:
    taxonomy = parse_taxonomy(FULL, fmt="yaml")
    assert [a.name for a in taxonomy.attributes] == ["category", "heel height", "colour"]
    category, heel, colour = taxonomy.attributes
    assert category.value_names() == ("shoes", "mug", "yes")  # `yes` stays the text it is, not True
    assert category.threshold == 0.5 and category.templates == ("a photo of a {}.", "a product photo of a {}.")
    assert category.prompts("mug") == (
        "a photo of a mug.",
        "a product photo of a mug.",
        "a photo of a coffee cup.",
        "a product photo of a coffee cup.",
    )
    assert heel.gate == Gate("category", ("shoes",))  # the declared spelling, whatever the case written
    assert colour.multi_label and colour.prompts("red") == ("a red thing", "a crimson thing")
    assert colour.prompts("green") == ("a green thing",)
    assert taxonomy.attribute("Colour ") is colour and category.find_value(" MUG") == "mug"
    with pytest.raises(TaxonomyError, match="unknown attribute 'size'.*'category'"):
        taxonomy.attribute("size")
    with pytest.raises(TaxonomyError, match="'cup' is not a value of 'category'"):
        category.prompts("cup")


def test_list_shorthand_gates_on_the_first_attribute_and_chains_are_ordered() -> None:
    text = """\
attributes:
  category: {values: [shoes, mugs]}
  style: {values: [pump, stiletto], applies_to: {heel: [high]}}
  heel: {values: [flat, high], applies_to: [shoes]}
"""
    taxonomy = parse_taxonomy(text)
    assert [a.name for a in taxonomy.attributes] == ["category", "heel", "style"]
    assert taxonomy.attribute("heel").gate == Gate("category", ("shoes",))
    assert taxonomy.attribute("style").gate == Gate("heel", ("high",))
    # with `style` first in the file, the list shorthand names style's values
    style_first = text.replace("  category: {values: [shoes, mugs]}\n", "") + "  category: {values: [shoes, mugs]}\n"
    with pytest.raises(TaxonomyError, match=r":3: attributes.heel.applies_to\[0\]: 'shoes' is not a value of 'style'"):
        parse_taxonomy(style_first)


def test_to_json_round_trips_with_the_same_fingerprint() -> None:
    for taxonomy in (parse_taxonomy(FULL), load_taxonomy(TAXONOMIES / "demo.yaml")):
        again = parse_taxonomy(taxonomy.to_json(), fmt="json")
        assert again == taxonomy and again.fingerprint == taxonomy.fingerprint
        assert again.to_json() == taxonomy.to_json()
        assert json.loads(taxonomy.to_json())["attributes"]  # plain JSON, a valid taxonomy file itself


def test_fingerprint_ignores_formatting_key_order_and_spelled_out_defaults() -> None:
    base = parse_taxonomy('{"attributes": {"kind": {"values": ["animals", "food"], "multi_label": false}}}')
    templates = json.dumps(list(DEFAULT_TEMPLATES))
    same = [
        "attributes:\n  kind:\n    values:\n      - animals\n      - food\n",
        '{"attributes":{"kind":{"multi_label":false,"values":["animals","food"]}}}',
        '{ "attributes" : { "kind" : { "threshold": 0.8, "values" : [ {"name": "animals"}, "food" ] } } }',
        "attributes: {kind: {values: {animals: null, food: }, templates: " + templates + "}}",
        "templates: " + templates + "\nattributes: {kind: {values: [' animals ', food]}}",
    ]
    for text in same:
        assert parse_taxonomy(text).fingerprint == base.fingerprint, text


def test_fingerprint_changes_with_any_content_change() -> None:
    base = parse_taxonomy(FULL).fingerprint
    changes = [
        ("[flat, low heel, high heel]", "[low heel, flat, high heel]"),  # value order is content
        ("[flat, low heel, high heel]", "[flat, low heel, high heels]"),
        ('["mug", "coffee cup"]', '["coffee cup", "mug"]'),
        ('["mug", "coffee cup"]', '["mug", "coffee mug"]'),
        ("threshold: 0.5", "threshold: 0.6"),
        ("multi_label: true", "multi_label: false"),
        ('"a product photo of a {}."', '"a product image of a {}."'),
        ('["a {} thing"]', '["a {} object"]'),
        ("{category: [Shoes]}", "{category: [shoes, mug]}"),
        ("    applies_to: {category: [Shoes]}\n", ""),
        ("      green: null\n", ""),
    ]
    fingerprints = {base}
    for old, new in changes:
        assert old in FULL, old
        fingerprints.add(parse_taxonomy(FULL.replace(old, new, 1)).fingerprint)
    assert len(fingerprints) == len(changes) + 1


def test_demo_taxonomy_covers_the_demo_catalog_categories() -> None:
    import csv

    taxonomy = load_taxonomy(TAXONOMIES / "demo.yaml")
    category = taxonomy.attributes[0]
    with DEMO_CATALOG.open(newline="") as handle:
        catalog_categories = {row["category"] for row in csv.DictReader(handle)}
    assert category.name == "category" and set(category.value_names()) == catalog_categories
    assert len(catalog_categories) == 13 and all(len(value.prompts) >= 3 for value in category.values)
    gated = [a for a in taxonomy.attributes if a.gate is not None]
    assert gated and all(a.gate is not None and a.gate.attribute == "category" for a in gated)
    assert any(a.multi_label for a in gated)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("attributes:\n  kind:\n    values: [a, b\n", 4, "t.yaml:4: invalid YAML"),
        (
            "attributes:\n  kind:\n    values: [a]\n    colour: red\n",
            4,
            "attributes.kind.colour: unknown key 'colour' (allowed: values, multi_label",
        ),
        (
            "attributes:\n  kind: {values: [a]}\nlabels: [x]\n",
            3,
            "labels: unknown key 'labels' (allowed: attributes, templates)",
        ),
        (
            "attributes:\n  kind:\n    values:\n      - cat\n      - dog\n      - ' Cat'\n",
            6,
            "attributes.kind.values[2]: duplicate value 'Cat' (same as 'cat')",
        ),
        ("attributes:\n  kind:\n    values: []\n", 3, "attributes.kind.values: no values"),
        ("attributes:\n  kind:\n    multi_label: true\n", 2, "attributes.kind: missing 'values'"),
        ("attributes:\n  kind:\n    values: [a, '  ']\n", 3, "attributes.kind.values[1]: empty value name"),
        ("attributes:\n  kind:\n    values:\n      - a\n      -\n", 5, "attributes.kind.values[1]: empty value name"),
        (
            "attributes:\n  a: {values: [x]}\n  b:\n    values: [y]\n    applies_to: {c: [x]}\n",
            5,
            "attributes.b.applies_to.c: 'c' is not an attribute",
        ),
        (
            "attributes:\n  category: {values: [shoes]}\n  heel:\n    values: [flat]\n    applies_to: [sneakers]\n",
            5,
            "attributes.heel.applies_to[0]: 'sneakers' is not a value of 'category'",
        ),
        (
            "attributes:\n  a:\n    values: [x]\n    applies_to: {a: [x]}\n",
            4,
            "attributes.a.applies_to.a: 'a' cannot apply to values of itself",
        ),
        ("attributes:\n  a:\n    values: [x]\n    applies_to: [x]\n", 4, "a list names values of the first attribute"),
        (
            "attributes:\n  a: {values: [x], applies_to: {b: [y]}}\n  b:\n    values: [y]\n    applies_to: {a: [x]}\n",
            2,
            "attributes.a.applies_to: a cycle of gates: a -> b -> a",
        ),
        (
            "attributes:\n  a:\n    values: [x]\n    templates: ['a photo of {} and {}']\n",
            4,
            "attributes.a.templates[0]: a template needs exactly one '{}'",
        ),
        (
            "templates: [a photo]\nattributes: {a: {values: [x]}}\n",
            1,
            "templates[0]: a template needs exactly one '{}'",
        ),
        (
            "attributes:\n  a:\n    values: [x]\n    multi_label: 'yes'\n",
            4,
            "attributes.a.multi_label: multi_label must be true or false, not 'yes'",
        ),
        (
            "attributes:\n  a:\n    values: [x]\n    threshold: 0\n",
            4,
            "attributes.a.threshold: threshold must be a number in (0, 1], not 0",
        ),
        (
            "attributes:\n  a:\n    values: [x]\n    threshold: 1.5\n",
            4,
            "threshold must be a number in (0, 1], not 1.5",
        ),
        (
            "attributes:\n  a:\n    values: [x]\n  a:\n    values: [y]\n",
            4,
            "attributes.a: duplicate key 'a' (first at line 2)",
        ),
        (
            "attributes:\n  Colour: {values: [x]}\n  colour: {values: [y]}\n",
            3,
            "attributes.colour: duplicate attribute 'colour' (same as 'Colour')",
        ),
        (
            "attributes:\n  a:\n    values:\n      x: [one, ' One']\n",
            4,
            "attributes.a.values.x[1]: duplicate prompt 'One'",
        ),
        ("attributes:\n  a=b: {values: [x]}\n", 2, "attributes.a=b: attribute names cannot contain '='"),
        ("attributes: {}\n", 1, "attributes: 'attributes' must be a non-empty mapping"),
        ("- a\n- b\n", 1, "a taxonomy is a mapping with an 'attributes' key"),
        ("attributes:\n  a:\n    values: [!!python/object:os.system x]\n", 3, "invalid YAML"),
        ("base: &b {values: [x]}\nattributes:\n  a:\n    <<: *b\n", 4, "keys must be plain names"),
    ],
)
def test_yaml_mistakes_name_the_line_and_key_path(text: str, line: int, message: str) -> None:
    error = _error(text)
    assert message in str(error)
    assert error.line == line and str(error).startswith(f"t.yaml:{line}: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"attributes": {"kind": {"values": ["a", "b"]}}', "t.json:1: invalid JSON: Expecting ',' delimiter"),
        (
            '{"attributes": {"kind": {"values": ["a"], "values": ["b"]}}}',
            "attributes.kind.values: duplicate key 'values'",
        ),
        ('{"attributes": {"kind": {"values": ["a"], "size": 1}}}', "attributes.kind.size: unknown key 'size'"),
        ('{"attributes": {"kind": {"values": ["a", "A "]}}}', "attributes.kind.values[1]: duplicate value 'A'"),
        ('{"attributes": {"kind": {"values": {}}}}', "attributes.kind.values: no values"),
        (
            '{"attributes": {"kind": {"values": [{"prompts": ["x"]}]}}}',
            "attributes.kind.values[0]: a value written as a mapping needs 'name'",
        ),
        (
            '{"attributes": {"kind": {"values": [true]}}}',
            "attributes.kind.values[0]: a value name must be text, not True",
        ),
        ('{"attributes": {"kind": {"values": [null]}}}', "attributes.kind.values[0]: empty value name"),
        (
            '{"attributes": {"kind": {"values": ["a"], "applies_to": ["a"]}}}',
            "attributes.kind.applies_to: 'kind' cannot apply",
        ),
        (
            '{"attributes": {"k": {"values": ["a"]}, "j": {"values": ["b"], "applies_to": {"k": ["z"]}}}}',
            "attributes.j.applies_to.k[0]: 'z' is not a value of 'k'",
        ),
        (
            '{"attributes": {"k": {"values": ["a"], "threshold": NaN}}}',
            "attributes.k.threshold: threshold must be a number in (0, 1], not nan",
        ),
        (
            '{"attributes": {"k": {"values": ["a"], "templates": []}}}',
            "attributes.k.templates: templates must be a non-empty list",
        ),
        (
            '{"attributes": {"k": {"values": {"a": {"prompts": [""]}}}}}',
            "attributes.k.values.a.prompts[0]: a prompt must be non-empty text",
        ),
    ],
)
def test_json_mistakes_name_the_key_path(text: str, message: str) -> None:
    assert message in str(_error(text, fmt="json"))


def test_limits_are_errors() -> None:
    many_values = {"attributes": {"a": {"values": [f"v{i}" for i in range(1001)]}}}
    assert "attributes.a.values: 1001 values: at most 1000" in str(_error(json.dumps(many_values), "json"))
    many_attributes = {"attributes": {f"a{i}": {"values": ["x"]} for i in range(65)}}
    assert "attributes: 65 attributes: at most 64" in str(_error(json.dumps(many_attributes), "json"))
    prompts = {"attributes": {"a": {"values": {f"v{i}": ["x", "y"] for i in range(600)}}}}  # 600 x 2 x 4 templates
    assert "attributes.a: 4800 prompts (values x texts x templates): at most 4096" in str(
        _error(json.dumps(prompts), "json")
    )
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdef", "bcdefg", strict=True)
    )
    assert "YAML nodes (aliases expanding?)" in str(_error(bomb))


def test_unreadable_files_and_format_guessing(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="missing.yaml: cannot read the taxonomy"):
        load_taxonomy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"attributes": \xff}')
    with pytest.raises(TaxonomyError, match="bad.json: not UTF-8 text"):
        load_taxonomy(bad)
    guessed = tmp_path / "taxonomy.txt"
    guessed.write_text("attributes:\n  kind: {values: [animals, food]}\n")
    assert isinstance(load_taxonomy(guessed), Taxonomy)
    guessed.write_text('{"attributes": {"kind": {"values": ["a"}}}')  # JSON meant: the JSON error is reported
    with pytest.raises(TaxonomyError, match="taxonomy.txt:1: invalid JSON"):
        load_taxonomy(guessed)
    with pytest.raises(ValueError, match="unknown taxonomy format 'toml'"):
        parse_taxonomy("", fmt="toml")
