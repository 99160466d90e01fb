"""The spec grammar: one string names a model everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalens.models import UnknownModelError, list_models, parse_spec
from catalens.models.specs import SpecParts, split_spec


def test_pretrained_tag() -> None:
    spec = parse_spec("ViT-B-32:laion2b_s34b_b79k")
    assert (spec.kind, spec.arch, spec.tag) == ("pretrained", "ViT-B-32", "laion2b_s34b_b79k")
    assert spec.canonical == "ViT-B-32:laion2b_s34b_b79k"


def test_random_weights() -> None:
    spec = parse_spec("ViT-B-32:random")
    assert spec.kind == "random" and spec.canonical == "ViT-B-32:random"


def test_hf_hub() -> None:
    spec = parse_spec("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    assert spec.kind == "hf-hub" and spec.canonical == "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"


def test_local_config_and_checkpoint_dir(tmp_path: Path, tiny_spec: str) -> None:
    assert parse_spec(tiny_spec).kind == "config"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": {}}))
    assert parse_spec(str(folder)).kind == "checkpoint-dir"
    assert parse_spec(str(folder / "open_clip_config.json")).canonical == str(folder.resolve())


def test_checkpoint_file_with_architecture(tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    spec = parse_spec(f"ViT-B-32:{weights}")
    assert spec.kind == "checkpoint-file" and spec.path == str(weights.resolve())


@pytest.mark.parametrize(
    ("text", "fragment", "choice"),
    [
        ("ViT-B-3", "no architecture named", "ViT-B-32"),
        ("ViT-B-32", "needs a weights tag", "ViT-B-32:laion2b_s34b_b79k"),
        ("ViT-B-32:laion2b", "has no pretrained tag", "ViT-B-32:laion2b_s34b_b79k"),
        ("", "empty", "ViT-B-32:laion2b_s34b_b79k"),
    ],
)
def test_unknown_specs_list_valid_choices(text: str, fragment: str, choice: str) -> None:
    with pytest.raises(ValueError, match=fragment) as caught:
        parse_spec(text)
    assert isinstance(caught.value, UnknownModelError)
    assert choice in caught.value.choices[:10]


@pytest.mark.parametrize("text", ["hf-hub:nohyphen", "/no/such/dir", "./missing.json"])
def test_bad_local_and_hub_specs(text: str) -> None:
    with pytest.raises(UnknownModelError):
        parse_spec(text)


def test_bare_checkpoint_file_asks_for_architecture(tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"x")
    with pytest.raises(UnknownModelError, match="needs its architecture"):
        parse_spec(str(weights))


def test_list_models_has_architectures_and_tags() -> None:
    infos = {info.arch: info for info in list_models()}
    assert "laion2b_s34b_b79k" in infos["ViT-B-32"].tags
    assert len(infos) > 50


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        (" ViT-B-32:openai ", SpecParts("ViT-B-32:openai", None, "ViT-B-32", "openai")),
        ("hf-hub: org/name", SpecParts("hf-hub: org/name", "hf-hub", "org/name", None)),
        ("blip:Salesforce/blip", SpecParts("blip:Salesforce/blip", "blip", "Salesforce/blip", None)),
        ("catalens-mini", SpecParts("catalens-mini", None, "catalens-mini", None)),
        ("ViT-B-32:", SpecParts("ViT-B-32:", None, "ViT-B-32", "")),
    ],
)
def test_one_grammar_splits_every_spec(text: str, parts: SpecParts) -> None:
    assert split_spec(text, prefixes={"hf-hub", "blip"}) == parts


def test_every_family_refuses_empty_and_unknown_specs_the_same_way() -> None:
    from catalens.models.captioning import parse_captioner_spec
    from catalens.models.ocr import parse_ocr_spec
    from catalens.models.text_encoders import parse_text_encoder_spec

    for parse in (parse_spec, parse_captioner_spec, parse_text_encoder_spec, parse_ocr_spec):
        for text in ("", "  ", "no-such-thing-anywhere"):
            with pytest.raises(UnknownModelError) as caught:
                parse(text)
            assert isinstance(caught.value, ValueError) and caught.value.choices, (parse.__name__, text)
            assert "Valid choices" in str(caught.value)
