"""Captioner specs: grammar, canonical forms, errors; vocabulary files. No model is loaded here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from catalens.models.captioning import (
    CaptionerSpec,
    CaptionOptions,
    MissingEncoderError,
    list_captioners,
    load_captioner,
    parse_captioner_spec,
)
from catalens.models.captioning.vocabulary import (
    CATEGORY,
    Attribute,
    Vocabulary,
    VocabularyError,
    default_vocabulary,
    merge_vocabulary,
    read_vocabulary,
)
from catalens.models.errors import ModelError, ModelLoadError, UnknownModelError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("blip", "blip:Salesforce/blip-image-captioning-base"),
        (" blip ", "blip:Salesforce/blip-image-captioning-base"),
        ("blip-large", "blip:Salesforce/blip-image-captioning-large"),
        ("blip2", "blip2:Salesforce/blip2-opt-2.7b"),
        ("blip:Salesforce/blip-image-captioning-large", "blip:Salesforce/blip-image-captioning-large"),
        ("blip2:Salesforce/blip2-flan-t5-xl", "blip2:Salesforce/blip2-flan-t5-xl"),
        ("blip:acme/my-blip.v2", "blip:acme/my-blip.v2"),
        ("attributes", "attributes"),
    ],
)
def test_names_and_hub_ids_have_one_canonical_spec(text: str, canonical: str) -> None:
    spec = parse_captioner_spec(text)
    assert spec.canonical == canonical == str(spec)
    assert parse_captioner_spec(spec.canonical) == spec  # canonical specs parse to themselves


def test_local_directories_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "models" / "blip").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    for text in ("blip:models/blip", "blip:./models/blip", f"blip:{tmp_path}/models/../models/blip"):
        spec = parse_captioner_spec(text)
        assert spec == CaptionerSpec("blip", str(tmp_path / "models" / "blip"), local=True)
    # A path that does not exist yet still parses (loading says what is wrong with it).
    assert parse_captioner_spec("blip2:./nowhere").canonical == f"blip2:{tmp_path / 'nowhere'}"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_captioner_spec("blip2:~/models").canonical == f"blip2:{tmp_path / 'models'}"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("blipp", "did you mean blip"),
        ("clip", "no captioner backend"),
        ("ViT-B-32:openai", "no captioner backend"),
        ("blip:", "needs a hub id or a directory"),
        ("blip2: ", "needs a hub id or a directory"),
        ("blip:not a hub id", "neither a directory nor a hub id"),
        ("blip:a/b/c", "neither a directory nor a hub id"),
        ("attributes:", "needs a vocabulary file"),
        ("attributes:/no/such/vocab.json", "no such vocabulary file"),
    ],
)
def test_unknown_specs_list_the_valid_choices(text: str, reason: str) -> None:
    with pytest.raises(UnknownModelError, match=reason) as caught:
        parse_captioner_spec(text)
    assert isinstance(caught.value, ValueError)
    if "vocabulary" not in reason:
        assert {"blip", "blip-large", "blip2", "attributes"} <= set(caught.value.choices)
        assert "Valid choices" in str(caught.value)


def test_list_captioners_names_the_hub_ids() -> None:
    rows = {row.name: row for row in list_captioners()}
    assert rows["blip"].spec == "blip:Salesforce/blip-image-captioning-base"
    assert rows["blip-large"].spec == "blip:Salesforce/blip-image-captioning-large"
    assert rows["blip2"].spec == "blip2:Salesforce/blip2-opt-2.7b"
    assert {"attributes", "blip:ORG/NAME", "blip2:/path/to/dir"} <= set(rows)
    assert all(row.description for row in rows.values())


def test_vocabulary_specs_carry_the_content_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps({"colour": ["red", "teal"]}))
    monkeypatch.chdir(tmp_path)
    first = parse_captioner_spec("attributes:vocab.json")
    assert first.location == str(vocab) and first.digest and len(first.digest) == 12
    assert first.canonical == f"attributes:{vocab}@{first.digest}"
    assert parse_captioner_spec(first.canonical) == first == parse_captioner_spec(f"attributes:{vocab}")
    vocab.write_text(json.dumps({"colour": ["red", "teal", "mustard"]}))
    second = parse_captioner_spec("attributes:vocab.json")
    assert second.digest != first.digest, "editing the vocabulary must change the spec, so items are re-captioned"
    with pytest.raises(UnknownModelError, match="changed since this spec was recorded"):
        parse_captioner_spec(first.canonical)


def test_importing_the_captioners_does_not_import_torch() -> None:
    code = (
        "import sys, catalens.models.captioning, catalens.models.captioning.attributes\n"
        "catalens.models.captioning.parse_captioner_spec('blip'); catalens.models.captioning.list_captioners()\n"
        "heavy = [m for m in ('torch', 'transformers', 'open_clip') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_attributes_need_the_store_encoder() -> None:
    with pytest.raises(MissingEncoderError, match="encoder=") as caught:
        load_captioner("attributes")
    assert isinstance(caught.value, ModelError) and isinstance(caught.value, ValueError)
    assert caught.value.spec == "attributes"


def test_vocabulary_option_and_spec_must_agree(tmp_path: Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    one.write_text("{}")
    two.write_text("{}")
    with pytest.raises(VocabularyError, match="another vocabulary file"):
        load_captioner(f"attributes:{one}", CaptionOptions(vocabulary=str(two)))


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"num_beams": 0}, "num_beams"),
        ({"batch_size": 0}, "batch_size"),
        ({"precision": "bf16"}, "precision"),
    ],
)
def test_options_that_cannot_work_are_refused(options: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        CaptionOptions(**options)  # type: ignore[arg-type]


# -- vocabulary files ----------------------------------------------------------------------------------------


def test_default_vocabulary_covers_product_catalogs() -> None:
    vocabulary = default_vocabulary()
    assert vocabulary.names == ("colour", "pattern", "material", "style", CATEGORY)
    colour = vocabulary.get("colour")
    assert colour is not None and {"red", "blue", "black", "white", "grey", "beige"} <= set(colour.values)
    category = vocabulary.get(CATEGORY)
    assert category is not None and {"t-shirt", "dress", "shoe", "watch", "lamp", "chair", "mug"} <= set(
        category.values
    )
    for attribute in vocabulary.attributes:
        assert len(set(attribute.values)) == len(attribute.values) >= 10
        assert attribute.templates and all(t.count("{}") == 1 for t in attribute.templates)
        assert 0 < attribute.threshold < 1


def test_a_list_replaces_and_extend_adds() -> None:
    merged = merge_vocabulary(
        default_vocabulary(),
        {"colour": ["red", "teal"], "material": {"values": ["bamboo", "cork", "wool"], "extend": True}},
    )
    colour, default_colour = merged.get("colour"), default_vocabulary().get("colour")
    assert colour is not None and default_colour is not None
    assert colour == Attribute("colour", ("red", "teal"), default_colour.templates, threshold=default_colour.threshold)
    material = merged.get("material")
    default_material = default_vocabulary().get("material")
    assert material is not None and default_material is not None
    assert material.values == (*default_material.values, "cork")  # "bamboo" and "wool" were there already
    assert merged.get("style") == default_vocabulary().get("style")


def test_a_list_under_extend_adds_to_the_values() -> None:
    default_colour = default_vocabulary().get("colour")
    assert default_colour is not None
    merged = merge_vocabulary(default_vocabulary(), {"colour": {"extend": ["teal", "red", "mustard"]}})
    assert merged.get("colour") == Attribute(
        "colour",
        (*default_colour.values, "teal", "mustard"),  # "red" was there already
        default_colour.templates,
        threshold=default_colour.threshold,
    )
    # With values, a list under extend adds to them; a new attribute may be made of extensions alone.
    merged = merge_vocabulary(
        default_vocabulary(),
        {"colour": {"values": ["red", "blue"], "extend": ["teal"]}, "fit": {"extend": ["slim fit", "loose fit"]}},
    )
    colour, fit = merged.get("colour"), merged.get("fit")
    assert colour is not None and colour.values == ("red", "blue", "teal")
    assert fit is not None and fit.values == ("slim fit", "loose fit")


def test_the_readme_vocabulary_example_reads(tmp_path: Path) -> None:
    path = tmp_path / "vocab.json"
    path.write_text(
        '{"category": ["sofa", "lamp"], "colour": {"extend": ["teal"]}, "finish": {"values": ["matte", "glossy"], '
        '"templates": ["a {} surface"], "threshold": 0.4}}'
    )
    vocabulary, _ = read_vocabulary(path)
    category, colour, finish = vocabulary.get(CATEGORY), vocabulary.get("colour"), vocabulary.get("finish")
    default_colour = default_vocabulary().get("colour")
    assert category is not None and category.values == ("sofa", "lamp")
    assert colour is not None and default_colour is not None and colour.values == (*default_colour.values, "teal")
    assert finish is not None and finish.templates == ("a {} surface",) and finish.threshold == 0.4


def test_templates_thresholds_removal_and_new_attributes() -> None:
    merged = merge_vocabulary(
        default_vocabulary(),
        {
            "color": {"templates": ["a {} thing."], "threshold": 0.9},
            "style": None,
            "fit": {"values": ["slim fit", "loose fit"], "omit_in_text": []},
        },
    )
    colour = merged.get("colour")
    assert colour is not None and colour.templates == ("a {} thing.",) and colour.threshold == 0.9
    assert merged.get("style") is None
    fit = merged.get("fit")
    assert fit is not None and fit.templates == ("a photo of a {} product.", "a {} product.")
    # New attributes go after the known ones and before the category, which always comes last.
    assert merged.names == ("colour", "pattern", "material", "fit", CATEGORY)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (["red"], "top level must be an object"),
        ({"category": None}, "cannot be removed"),
        ({"colour": "red"}, "expected a list of values"),
        ({"colour": ["red"]}, "at least two values"),
        ({"colour": ["red", ""]}, "non-empty strings"),
        ({"colour": []}, "empty"),
        ({"colour": {"templates": ["no placeholder"]}}, "exactly one {}"),
        ({"colour": {"templates": ["{} and {}"]}}, "exactly one {}"),
        ({"colour": {"threshold": 1.5}}, "between 0 and 1"),
        ({"colour": {"threshold": True}}, "between 0 and 1"),
        ({"colour": {"valuez": ["a", "b"]}}, "unknown keys"),
        ({"fit": {"templates": ["a {} thing."]}}, "at least two values"),
        ({"colour": {"extend": "teal"}}, "colour.extend"),
        ({"colour": {"extend": ["teal", ""]}}, "non-empty strings"),
        ({"colour": {"extend": []}}, "empty"),
    ],
)
def test_bad_vocabularies_say_what_is_wrong(raw: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        merge_vocabulary(default_vocabulary(), raw)


def test_broken_vocabulary_files_are_load_errors(tmp_path: Path) -> None:
    path = tmp_path / "vocab.json"
    path.write_text("{ not json")
    with pytest.raises(VocabularyError, match="not valid JSON") as caught:
        read_vocabulary(path)
    assert isinstance(caught.value, ModelLoadError) and caught.value.path == str(path)
    path.write_text(json.dumps({"category": None}))
    with pytest.raises(VocabularyError, match="cannot be removed"):
        read_vocabulary(path)
    with pytest.raises(VocabularyError, match="cannot read"):
        read_vocabulary(tmp_path / "absent.json")


def test_a_vocabulary_needs_a_category() -> None:
    with pytest.raises(ValueError, match="category"):
        Vocabulary((Attribute("colour", ("red", "blue")),))
