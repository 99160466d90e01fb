"""BLIP and BLIP-2 captioners: tiny random checkpoints saved in the tests and loaded through the specs.

The models are built from tiny configs with random weights (no hub), with tokenizers made from vocabularies
written here, and saved with ``save_pretrained``, so the loading code is the one real checkpoints go through.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from catalens.models.captioning import (
    BlipCaptioner,
    Caption,
    Captioner,
    CaptionOptions,
    VectorCaptioner,
    load_captioner,
)
from catalens.models.errors import DeviceUnavailableError, ModelLoadError, ModelUnavailableError, UnknownModelError

_WORDS = (
    "a an the of in on with and is this what product photo question answer red green blue black white shirt "
    "shoe bag mug lamp chair dress watch striped cotton leather wooden table"
).split()
_PROMPT = "a product photo of"
_QUESTION = "Question: what product is this? Answer:"


def _tiny_vision(image_size: int = 32) -> dict[str, Any]:
    return {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": image_size,
        "patch_size": 8,
        "initializer_range": 0.5,
    }


def build_tiny_blip(directory: Path) -> Path:
    """A random BLIP captioning model, its BertTokenizer and image processor, saved to ``directory``."""
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    directory.mkdir(parents=True, exist_ok=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + list("abcdefghijklmnopqrstuvwxyz?:.,-")
    vocab = special + _WORDS + pieces
    vocab_file = directory.parent / f"{directory.name}-vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(vocab_file), bos_token="[DEC]")
    processor = BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer)
    text = {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "encoder_hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 128,
        "initializer_range": 0.5,
        "pad_token_id": vocab.index("[PAD]"),
        "bos_token_id": vocab.index("[DEC]"),
        "eos_token_id": vocab.index("[SEP]"),
        "sep_token_id": vocab.index("[SEP]"),
    }
    config = BlipConfig(text_config=text, vision_config=_tiny_vision(), projection_dim=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BlipForConditionalGeneration(config).eval()
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def build_tiny_blip2(directory: Path) -> Path:
    """A random BLIP-2 model (tiny ViT, Q-Former and OPT), a byte-level BPE tokenizer and image processor."""
    import torch
    from transformers import (
        Blip2Config,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        BlipImageProcessor,
        GPT2Tokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for char in bytes_to_unicode().values():
        vocab[char] = len(vocab)
    # The tokenizers backend wants pairs, whatever transformers' annotation says.
    merges: Any = [("Ġ", "a"), ("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "s"), ("i", "s")]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    tokenizer = GPT2Tokenizer(
        vocab=vocab, merges=merges, bos_token="</s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    num_query_tokens = 4
    processor = Blip2Processor(
        BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer, num_query_tokens=num_query_tokens
    )
    image_token = processor.tokenizer.convert_tokens_to_ids("<image>")
    config = Blip2Config(
        vision_config=_tiny_vision(),
        qformer_config={
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "encoder_hidden_size": 32,
            "vocab_size": 64,
            "max_position_embeddings": 64,
        },
        text_config={
            "model_type": "opt",
            "vocab_size": len(processor.tokenizer) + 1,
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "ffn_dim": 64,
            "num_attention_heads": 2,
            "max_position_embeddings": 128,
            "word_embed_proj_dim": 32,
            "init_std": 0.5,
            "pad_token_id": 1,
            "bos_token_id": 2,
            "eos_token_id": 2,
        },
        num_query_tokens=num_query_tokens,
        image_token_index=image_token,
        initializer_range=0.5,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Blip2ForConditionalGeneration(config).eval()
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def product_images(n: int, size: tuple[int, int] = (48, 40)) -> list[Image.Image]:
    """Distinct images: noise with a per-image colour cast (random models need varied pixels to differ)."""
    rng = np.random.default_rng(7)
    images = []
    for i in range(n):
        base = np.array([(i * 67) % 256, (i * 131) % 256, (i * 29) % 256], dtype=np.float32)
        noise = rng.uniform(-60, 60, size=(size[1], size[0], 3))
        images.append(Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB"))
    return images


@pytest.fixture(scope="session")
def blip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_blip(tmp_path_factory.mktemp("captioners") / "tiny-blip")


@pytest.fixture(scope="session")
def blip2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_blip2(tmp_path_factory.mktemp("captioners") / "tiny-blip2")


def captions(spec: str, images: list[Image.Image], **options: Any) -> list[str]:
    captioner = load_captioner(spec, CaptionOptions(**{"max_new_tokens": 8, **options}))
    return [c.text for c in captioner.caption(images)]


@pytest.mark.parametrize("kind", ["blip", "blip2"])
def test_one_caption_per_image_in_order(kind: str, request: pytest.FixtureRequest) -> None:
    directory = request.getfixturevalue(f"{kind}_dir")
    captioner = load_captioner(f"{kind}:{directory}", CaptionOptions(max_new_tokens=6, batch_size=3))
    assert isinstance(captioner, Captioner)
    assert not isinstance(captioner, VectorCaptioner)
    assert captioner.spec == f"{kind}:{directory}"
    images = product_images(4)
    result = captioner.caption(images)
    assert len(result) == 4
    assert all(isinstance(c, Caption) and c.tags == {} and c.scores == {} for c in result)
    assert all(c.text == c.text.strip() and "  " not in c.text for c in result)
    # Each caption belongs to its own image: captioning the images one by one gives the same list.
    assert [c.text for c in result] == [captioner.caption([image])[0].text for image in images]
    assert len({c.text for c in result}) > 1, "the tiny model should tell these images apart"
    assert captioner.caption([]) == []


@pytest.mark.parametrize("kind", ["blip", "blip2"])
def test_batch_size_does_not_change_greedy_captions(kind: str, request: pytest.FixtureRequest) -> None:
    spec = f"{kind}:{request.getfixturevalue(f'{kind}_dir')}"
    images = product_images(5)
    assert captions(spec, images, batch_size=2) == captions(spec, images, batch_size=5)


@pytest.mark.parametrize("kind", ["blip", "blip2"])
def test_max_new_tokens_bounds_the_caption(kind: str, request: pytest.FixtureRequest) -> None:
    directory = request.getfixturevalue(f"{kind}_dir")
    captioner = load_captioner(f"{kind}:{directory}", CaptionOptions(max_new_tokens=3, prompt="what is"))
    assert isinstance(captioner, BlipCaptioner)
    model = captioner._model
    generate = model.generate
    new_tokens: list[int] = []

    def spy(**inputs: Any) -> Any:
        output = generate(**inputs)
        new_tokens.append(int(output.shape[1] - inputs["input_ids"].shape[1]))
        return output

    model.generate = spy
    images = product_images(5)
    short = [c.text for c in captioner.caption(images)]
    # BLIP's decoder drops the prompt's trailing [SEP], so its output is one shorter than the input ids.
    assert new_tokens and max(new_tokens) <= (3 - 1 if kind == "blip" else 3)
    long = captions(f"{kind}:{directory}", images, max_new_tokens=12, prompt="what is")
    assert sum(map(len, long)) > sum(map(len, short))


@pytest.mark.parametrize(("kind", "prompt"), [("blip", _PROMPT), ("blip2", _QUESTION)])
def test_prompt_conditions_the_caption_and_is_not_returned(
    kind: str, prompt: str, request: pytest.FixtureRequest
) -> None:
    spec = f"{kind}:{request.getfixturevalue(f'{kind}_dir')}"
    images = product_images(5)
    prompted = captions(spec, images, prompt=prompt)
    assert len(prompted) == 5
    assert not any(text.lower().startswith(prompt.lower()[:8]) for text in prompted)
    assert prompted != captions(spec, images), "the prompt is fed to the decoder"
    assert prompted == captions(spec, images, prompt=prompt, batch_size=2)


@pytest.mark.parametrize(("kind", "prompt"), [("blip", _PROMPT), ("blip2", _QUESTION), ("blip", None), ("blip2", None)])
def test_decoding_drops_the_echoed_prompt(kind: str, prompt: str | None, request: pytest.FixtureRequest) -> None:
    import torch

    captioner = load_captioner(f"{kind}:{request.getfixturevalue(f'{kind}_dir')}", CaptionOptions(prompt=prompt))
    assert isinstance(captioner, BlipCaptioner)
    processor = captioner._processor
    tokenizer = processor.tokenizer
    answer = tokenizer("red striped shirt", add_special_tokens=False)["input_ids"]
    text = [prompt or ""] if prompt or kind == "blip2" else None
    inputs = dict(processor(images=product_images(1), text=text, return_tensors="pt"))
    echo = captioner._echo(inputs)
    if kind == "blip":  # BLIP's decoder output: [DEC] + the prompt without its [SEP] + the answer + [SEP]
        row = [tokenizer.bos_token_id, *inputs.get("input_ids", torch.zeros(1, 2, dtype=torch.long))[0, 1:-1]]
        row += [*answer, tokenizer.sep_token_id]
    else:  # OPT's output: the image tokens, BOS, the prompt, then the answer and EOS
        row = [*inputs["input_ids"][0], *answer, tokenizer.eos_token_id]
    assert echo == [int(t) for t in row[: len(echo)]]
    assert captioner._decode(torch.tensor([int(t) for t in row]), echo, prompt or "") == "red striped shirt"
    # Models (or library versions) that return only the new tokens are decoded as they are.
    only_new = torch.tensor([*answer, tokenizer.eos_token_id if kind == "blip2" else tokenizer.sep_token_id])
    assert captioner._decode(only_new, echo, prompt or "") == "red striped shirt"


def test_a_loaded_captioner_saves_itself_as_a_directory_that_loads_again(blip_dir: Path, tmp_path: Path) -> None:
    captioner = load_captioner(f"blip:{blip_dir}", CaptionOptions(max_new_tokens=4))
    assert isinstance(captioner, BlipCaptioner)
    saved = captioner.save(tmp_path / "saved-blip")
    again = load_captioner(f"blip:{saved}", CaptionOptions(max_new_tokens=4))
    assert again.spec == f"blip:{saved}"
    images = product_images(3)
    assert [c.text for c in again.caption(images)] == [c.text for c in captioner.caption(images)]


def test_images_of_any_mode_are_captioned(blip_dir: Path) -> None:
    captioner = load_captioner(f"blip:{blip_dir}", CaptionOptions(max_new_tokens=4))
    rgb = product_images(1)[0]
    images = [rgb.convert("L"), rgb.convert("RGBA"), rgb.convert("P"), rgb]
    assert len(captioner.caption(images)) == 4


def test_beam_search_runs(blip_dir: Path) -> None:
    beams = captions(f"blip:{blip_dir}", product_images(3), num_beams=3, max_new_tokens=5)
    assert len(beams) == 3 and all(isinstance(text, str) for text in beams)


def test_default_batch_size_follows_the_device_and_options(blip_dir: Path, blip2_dir: Path) -> None:
    assert load_captioner(f"blip:{blip_dir}", CaptionOptions(device="cpu")).default_batch_size == 8
    assert load_captioner(f"blip2:{blip2_dir}", CaptionOptions(device="cpu")).default_batch_size == 2
    assert load_captioner(f"blip:{blip_dir}", CaptionOptions(batch_size=5)).default_batch_size == 5


def test_fp16_on_cpu_is_refused(blip_dir: Path) -> None:
    with pytest.raises(DeviceUnavailableError, match="fp16"):
        load_captioner(f"blip:{blip_dir}", CaptionOptions(device="cpu", precision="fp16"))


def test_missing_directory_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such directory"):
        load_captioner(f"blip:{tmp_path / 'absent'}")


def test_directory_without_config_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="config.json"):
        load_captioner(f"blip2:{tmp_path}")


def test_corrupt_weights_are_a_load_error(blip_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(blip_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError) as caught:
        load_captioner(f"blip:{broken}")
    assert caught.value.spec == f"blip:{broken}"
    assert caught.value.reason


def test_broken_config_is_a_load_error(blip_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-config"
    shutil.copytree(blip_dir, broken)
    (broken / "config.json").write_text("{ not json")
    with pytest.raises(ModelLoadError):
        load_captioner(f"blip:{broken}")


@pytest.mark.parametrize(("kind", "other"), [("blip", "blip2"), ("blip2", "blip")])
def test_a_checkpoint_of_the_other_kind_says_so(kind: str, other: str, request: pytest.FixtureRequest) -> None:
    directory = request.getfixturevalue(f"{other}_dir")
    with pytest.raises(ModelLoadError, match=f"load it as {other}:"):
        load_captioner(f"{kind}:{directory}")


def _hub_cache_with(directory: Path, cache: Path, repo_id: str) -> None:
    """Lay ``directory`` out as a Hugging Face hub cache entry for ``repo_id`` (what a download leaves)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    entry = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(directory, entry / "snapshots" / commit)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(commit)


@pytest.mark.parametrize("offline", [False, True])
def test_cached_hub_model_loads_without_the_network(
    offline: bool, blip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    _hub_cache_with(blip_dir, tmp_path, "acme/tiny-blip")
    started = time.monotonic()
    captioner = load_captioner("blip:acme/tiny-blip", CaptionOptions(cache_dir=str(tmp_path), max_new_tokens=4))
    assert time.monotonic() - started < 10
    assert captioner.spec == "blip:acme/tiny-blip"
    expected = captions(f"blip:{blip_dir}", product_images(2), max_new_tokens=4)
    assert [c.text for c in captioner.caption(product_images(2))] == expected


@pytest.mark.parametrize("offline", [False, True])
def test_uncached_hub_model_fails_fast_without_the_network(
    offline: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as caught:
        load_captioner("blip", CaptionOptions(cache_dir=str(tmp_path)))
    assert time.monotonic() - started < 5
    assert caught.value.spec == "blip:Salesforce/blip-image-captioning-base"
    assert caught.value.looked_in == [str(tmp_path)]
    assert ("HF_HUB_OFFLINE" if offline else "cannot be reached") in caught.value.cause


def test_incomplete_cache_is_reported_as_unavailable(blip_dir: Path, tmp_path: Path) -> None:
    _hub_cache_with(blip_dir, tmp_path, "acme/partial-blip")
    snapshot = next((tmp_path / "models--acme--partial-blip" / "snapshots").iterdir())
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "processor_config.json"):
        (snapshot / name).unlink(missing_ok=True)
    with pytest.raises(ModelUnavailableError, match="incomplete or damaged") as caught:
        load_captioner("blip:acme/partial-blip", CaptionOptions(cache_dir=str(tmp_path)))
    assert "blip:/path/to/dir" in str(caught.value)


def test_unknown_specs_are_refused_before_anything_loads() -> None:
    with pytest.raises(UnknownModelError, match="Valid choices"):
        load_captioner("blip3")


def test_hub_specs_do_not_record_local_paths(blip_dir: Path) -> None:
    captioner = load_captioner(f"blip:{blip_dir}/../{blip_dir.name}", CaptionOptions(max_new_tokens=2))
    assert captioner.spec == f"blip:{blip_dir}"
    assert json.loads((blip_dir / "config.json").read_text())["model_type"] == "blip"
