"""Multilingual queries: a text model distilled into an image–text model's text space serves its store.

Everything is tiny and built here: a WordPiece BERT student (sentence-transformers layout) is distilled for a
few hundred steps into the text space of the tiny random open_clip model from ``conftest`` (the teacher),
with the multilingual-distillation recipe: the student's embeddings of English phrases *and of their
translations* are pulled to the teacher's embedding of the English phrase.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from catalens.models import (
    ImageTextEncoder,
    LoadOptions,
    ModelLoadError,
    ModelUnavailableError,
    UnknownModelError,
    load_model,
)
from catalens.models.text_encoders import (
    PairedEncoder,
    PairingError,
    TextEncoder,
    check_pairing,
    list_pairings,
    load_text_encoder,
    pair_encoders,
    pair_text_encoder,
    pairing_for,
    parse_text_encoder_spec,
)
from catalens.search.engine import SearchEngine, SearchOptions
from tests.conftest import pattern_image

# (en, de, fr, es) product phrases; the index's items are the English ones.
CATALOG: dict[str, tuple[str, str, str, str]] = {
    "shoes": ("red leather shoes", "rote Lederschuhe", "chaussures en cuir rouge", "zapatos de cuero rojo"),
    "jacket": ("blue denim jacket", "blaue Jeansjacke", "veste en jean bleue", "chaqueta vaquera azul"),
    "hat": ("black wool hat", "schwarze Wollmütze", "bonnet en laine noir", "gorro de lana negro"),
    "shirt": ("white cotton shirt", "weißes Baumwollhemd", "chemise en coton blanche", "camisa de algodón blanca"),
    "vase": ("green glass vase", "grüne Glasvase", "vase en verre vert", "jarrón de vidrio verde"),
    "chair": ("brown wooden chair", "brauner Holzstuhl", "chaise en bois marron", "silla de madera marrón"),
}
LANGUAGES = ("en", "de", "fr", "es")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
HIDDEN = 64
DIM = 32  # the tiny open_clip model's embed_dim
STEPS = 150  # the loss is below 1e-6 after about 100 steps


def bert_normalise(word: str) -> str:
    """What an uncased BERT tokenizer does to a word: lower case, accents stripped."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def vocabulary() -> list[str]:
    words = sorted({bert_normalise(w) for phrases in CATALOG.values() for p in phrases for w in p.split()})
    return [*SPECIALS, *words, "extra"]


def write_bert(directory: Path, seed: int = 0) -> Path:
    """A tiny random BERT with a whole-word WordPiece vocabulary, saved in the Hugging Face layout."""
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = vocabulary()
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, model_max_length=32)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_student(directory: Path, out_dim: int = DIM, seed: int = 0) -> Any:
    """A sentence-transformers model: the tiny BERT, mean pooling, a linear head to ``out_dim``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer

    bert = write_bert(directory / "bert", seed)
    transformer = Transformer(str(bert), max_seq_length=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = Dense(HIDDEN, out_dim, activation_function=torch.nn.Identity())
    return SentenceTransformer(modules=[transformer, Pooling(HIDDEN), head], device="cpu")


def distil(student: Any, teacher: ImageTextEncoder, steps: int = STEPS) -> float:
    """Multilingual knowledge distillation; returns the final loss.

    The loss is the MSE between the student's embedding of each English phrase and of each translation and
    the teacher's embedding of the English phrase.
    """
    phrases = [p for group in CATALOG.values() for p in group]
    targets = torch.from_numpy(
        np.repeat(teacher.encode_texts([g[0] for g in CATALOG.values()]), len(LANGUAGES), axis=0)
    )
    features = student.preprocess(phrases)
    assert not (features["input_ids"] == SPECIALS.index("[UNK]")).any(), "the vocabulary misses a word"
    optimiser = torch.optim.Adam(student.parameters(), lr=3e-3)
    student.train()
    loss = torch.tensor(0.0)
    # On matrices this small, a second thread only adds synchronisation: one thread is ~10x faster on busy cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            optimiser.zero_grad()
            predicted = student(dict(features))["sentence_embedding"]
            loss = torch.nn.functional.mse_loss(predicted, targets)
            loss.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    student.eval()
    return loss.item()


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model: ImageTextEncoder) -> Path:
    """The distilled student, saved as a sentence-transformers directory."""
    root = tmp_path_factory.mktemp("student")
    student = build_student(root)
    final_loss = distil(student, tiny_model)
    assert final_loss < 1e-4, f"distillation did not converge (loss {final_loss:.2e})"
    out = root / "st-student"
    student.save(str(out))
    return out


@pytest.fixture(scope="module")
def student(student_dir: Path) -> TextEncoder:
    return load_text_encoder(f"st:{student_dir}")


# -- specs and rules -------------------------------------------------------------------------------------------


def test_specs_parse_to_one_canonical_form(student_dir: Path) -> None:
    multilingual = "st:sentence-transformers/clip-ViT-B-32-multilingual-v1"
    assert parse_text_encoder_spec("clip-ViT-B-32-multilingual-v1") == multilingual
    assert parse_text_encoder_spec("sentence-transformers/clip-ViT-B-32-multilingual-v1") == multilingual
    assert parse_text_encoder_spec("st:clip-ViT-B-32-multilingual-v1") == multilingual
    assert parse_text_encoder_spec(f" {multilingual} ") == multilingual
    assert parse_text_encoder_spec("M-CLIP/XLM-Roberta-Large-Vit-B-32") == "mclip:M-CLIP/XLM-Roberta-Large-Vit-B-32"
    assert parse_text_encoder_spec("mclip:XLM-Roberta-Large-Vit-L-14") == "mclip:M-CLIP/XLM-Roberta-Large-Vit-L-14"
    assert parse_text_encoder_spec("st:someone/their-model") == "st:someone/their-model"
    assert parse_text_encoder_spec(f"st:{student_dir}") == f"st:{student_dir.resolve()}"
    assert parse_text_encoder_spec(str(student_dir)) == f"st:{student_dir.resolve()}"  # detected by modules.json


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "empty"),
        ("clip-ViT-B-32-multilingual", "did you mean clip-ViT-B-32-multilingual-v1"),
        ("ViT-B-32:openai", "st:..., mclip:..."),
        ("st:", "needs a hub id or a directory"),
        ("st:/no/such/dir", "no such directory"),
        ("mclip:not a hub id!", "neither an existing directory nor a hub id"),
    ],
)
def test_unknown_specs_raise_with_choices(spec: str, fragment: str) -> None:
    with pytest.raises(UnknownModelError) as caught:
        parse_text_encoder_spec(spec)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)
    if spec != "st:/no/such/dir" and not spec.startswith("mclip:"):
        assert "clip-ViT-B-32-multilingual-v1" in caught.value.choices


def test_a_directory_that_is_no_text_model_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="neither a sentence-transformers model"):
        parse_text_encoder_spec(str(tmp_path))


def test_registered_pairings_name_real_image_specs() -> None:
    from catalens.models import parse_spec

    pairings = list_pairings()
    assert {p.text for p in pairings} >= {
        "st:sentence-transformers/clip-ViT-B-32-multilingual-v1",
        "mclip:M-CLIP/XLM-Roberta-Large-Vit-B-32",
        "mclip:M-CLIP/XLM-Roberta-Large-Vit-L-14",
        "mclip:M-CLIP/XLM-Roberta-Large-Vit-B-16Plus",
    }
    for pairing in pairings:
        assert parse_text_encoder_spec(pairing.text) == pairing.text
        for image in pairing.images:
            assert parse_spec(image).canonical == image  # every image spec is one the registry accepts as is
        assert pairing.languages and pairing.note
    multilingual = pairing_for("clip-ViT-B-32-multilingual-v1")
    assert multilingual is not None and multilingual.image == "ViT-B-32:openai"
    assert pairing_for("st:someone/their-model") is None


def test_registered_text_models_pair_only_with_their_image_model() -> None:
    assert check_pairing("clip-ViT-B-32-multilingual-v1", "ViT-B-32:openai") is not None
    assert check_pairing("clip-ViT-B-32-multilingual-v1", "ViT-B-32-quickgelu:openai") is not None  # same weights
    with pytest.raises(PairingError) as caught:
        check_pairing("clip-ViT-B-32-multilingual-v1", "ViT-B-32:laion2b_s34b_b79k")
    assert "aligned to ViT-B-32:openai" in str(caught.value)
    assert caught.value.image_spec == "ViT-B-32:laion2b_s34b_b79k"
    with pytest.raises(PairingError, match="goes with ViT-L-14:openai"):
        check_pairing("st:someone/their-model", "ViT-L-14:openai")
    assert check_pairing("st:someone/their-model", "ViT-L-14:openai", allow_unpaired=True) is None


def test_specs_and_rules_need_no_torch() -> None:
    """Settings validation and ``--help`` can parse text encoder specs without importing torch."""
    code = (
        "import sys, catalens.models.text_encoders as t; "
        "t.check_pairing('clip-ViT-B-32-multilingual-v1', 'ViT-B-32:openai'); "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


# -- loading ---------------------------------------------------------------------------------------------------


def test_a_local_sentence_transformers_model_encodes_normalised_float32(student: TextEncoder) -> None:
    assert isinstance(student, TextEncoder)
    assert student.dim == DIM
    vectors = student.encode_texts(["red leather shoes", "rote Lederschuhe", "something unknown"])
    assert vectors.shape == (3, DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(student.encode_texts(["red leather shoes"], batch_size=1), vectors[:1], atol=1e-6)
    assert student.encode_texts([]).shape == (0, DIM)


def test_a_loaded_sentence_transformers_model_saves_itself(tmp_path: Path, student: Any) -> None:
    saved = student.save(tmp_path / "saved")
    again = load_text_encoder(str(saved))  # a bare directory with modules.json is a sentence-transformers model
    assert again.spec == f"st:{saved}" and again.dim == student.dim
    texts = ["rote Lederschuhe", "green glass vase"]
    np.testing.assert_allclose(again.encode_texts(texts), student.encode_texts(texts), atol=1e-6)


def fake_hub_cache(cache: Path, repo_id: str, files: Path) -> Path:
    """Lay ``files`` out as huggingface_hub caches a downloaded repository; returns the snapshot folder."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(files, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return repo / "snapshots" / commit


def test_a_cached_hub_model_loads_without_the_network(tmp_path: Path, student_dir: Path, student: Any) -> None:
    fake_hub_cache(tmp_path / "hub", "catalens/tiny-student", student_dir)
    started = time.monotonic()
    cached = load_text_encoder("st:catalens/tiny-student", LoadOptions(cache_dir=str(tmp_path / "hub")))
    assert time.monotonic() - started < 5
    assert cached.spec == "st:catalens/tiny-student"
    texts = ["blaue Jeansjacke", "green glass vase"]
    np.testing.assert_allclose(cached.encode_texts(texts), student.encode_texts(texts), atol=1e-6)


def test_an_incomplete_cached_copy_is_reported_as_unavailable(tmp_path: Path, student_dir: Path) -> None:
    snapshot = fake_hub_cache(tmp_path / "hub", "catalens/tiny-student", student_dir)
    (snapshot / "config.json").unlink()  # the transformer's config never finished downloading
    with pytest.raises(ModelUnavailableError) as caught:
        load_text_encoder("st:catalens/tiny-student", LoadOptions(cache_dir=str(tmp_path / "hub")))
    assert caught.value.cause.startswith("the cached copy is incomplete")


@pytest.mark.parametrize("spec", ["clip-ViT-B-32-multilingual-v1", "M-CLIP/XLM-Roberta-Large-Vit-B-32"])
def test_a_hub_model_that_is_not_cached_fails_fast_offline(tmp_path: Path, spec: str) -> None:
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as caught:
        load_text_encoder(spec, LoadOptions(cache_dir=str(tmp_path)))
    assert time.monotonic() - started < 5
    assert "huggingface.co cannot be reached" in caught.value.cause
    assert caught.value.looked_in == [str(tmp_path)]


def test_hf_hub_offline_fails_without_probing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    import catalens.models.hub as text_encoders  # the hub probe of every loader lives in the hub helper

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(text_encoders, "reachable", lambda *a, **k: pytest.fail("probed the hub"))
    with pytest.raises(ModelUnavailableError, match="HF_HUB_OFFLINE"):
        load_text_encoder("clip-ViT-B-32-multilingual-v1", LoadOptions(cache_dir=str(tmp_path)))


def test_a_broken_directory_raises_model_load_error(tmp_path: Path, student_dir: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(student_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError) as caught:
        load_text_encoder(f"st:{broken}")
    assert caught.value.spec == f"st:{broken}" and caught.value.reason
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError):
        load_text_encoder(f"st:{empty}")


# -- pairing with the tiny open_clip image model ----------------------------------------------------------------


def test_pairing_needs_allow_unpaired_for_an_unregistered_model(tiny_model: Any, student_dir: Path) -> None:
    with pytest.raises(PairingError, match="not a registered pairing"):
        pair_text_encoder(tiny_model, f"st:{student_dir}")


def test_the_paired_encoder_serves_images_from_the_image_tower(tiny_model: Any, student_dir: Path) -> None:
    paired = pair_text_encoder(tiny_model, f"st:{student_dir}", allow_unpaired=True)
    assert isinstance(paired, PairedEncoder) and isinstance(paired, ImageTextEncoder)
    assert paired.spec == tiny_model.spec  # the store's vectors are the image tower's
    assert paired.text_spec == f"st:{student_dir.resolve()}"
    assert (paired.dim, paired.image_size, paired.default_batch_size, paired.device, paired.logit_scale) == (
        tiny_model.dim,
        tiny_model.image_size,
        tiny_model.default_batch_size,
        tiny_model.device,
        tiny_model.logit_scale,
    )
    images = [pattern_image(i) for i in range(3)]
    np.testing.assert_array_equal(paired.encode_images(images), tiny_model.encode_images(images))
    pixels = np.stack([paired.preprocess(im) for im in images])
    np.testing.assert_array_equal(pixels, np.stack([tiny_model.preprocess(im) for im in images]))
    np.testing.assert_array_equal(paired.encode_pixels(pixels), tiny_model.encode_pixels(pixels))
    texts = ["rote Lederschuhe"]
    np.testing.assert_array_equal(paired.encode_texts(texts), paired.text_encoder.encode_texts(texts))
    assert not np.allclose(paired.encode_texts(texts), tiny_model.encode_texts(texts), atol=1e-3)


def test_dimensions_must_match(other_tiny_spec: str, student: TextEncoder) -> None:
    other = load_model(other_tiny_spec)  # embed_dim 24
    with pytest.raises(PairingError) as caught:
        pair_encoders(other, student, allow_unpaired=True)
    assert "32 dimensions" in str(caught.value) and "24" in str(caught.value)


# -- the point: queries in other languages hit the same index ----------------------------------------------------


def test_queries_in_german_french_and_spanish_hit_the_english_index(
    vector_store: Any, tiny_model: Any, student_dir: Path
) -> None:
    teacher_vectors = tiny_model.encode_texts([phrases[0] for phrases in CATALOG.values()])
    # The index's items sit where the teacher puts their English descriptions (as a real CLIP puts a
    # product photo near its English caption).
    path = vector_store(
        {
            item: (vector, {"title": phrases[0], "category": "demo"})
            for (item, phrases), vector in zip(CATALOG.items(), teacher_vectors, strict=True)
        }
    )
    paired = pair_text_encoder(tiny_model, f"st:{student_dir}", allow_unpaired=True)
    vector_only = SearchOptions(k=len(CATALOG), mode="vector")
    with SearchEngine.open(path, encoder=paired) as engine:
        for item, phrases in CATALOG.items():
            for language, query in zip(LANGUAGES, phrases, strict=True):
                hits = engine.search_text(query, vector_only).hits
                assert hits[0].id == item, f"{language} query {query!r} ranked {hits[0].id!r} first"
                assert hits[0].score > 0.9
    # Without the paired text model, the image model's own (English-only) text tower misses foreign queries.
    with SearchEngine.open(path, encoder=tiny_model) as engine:
        foreign = [(item, q) for item, phrases in CATALOG.items() for q in phrases[1:]]
        missed = sum(engine.search_text(q, vector_only).hits[0].id != item for item, q in foreign)
    assert missed > 0


def test_cli_and_service_answer_foreign_queries_with_a_paired_text_encoder(
    vector_store: Any, tiny_model: Any, student_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fastapi.testclient import TestClient

    from catalens.search.api import create_app
    from catalens.search.cli import main
    from catalens.search.settings import Settings

    teacher_vectors = tiny_model.encode_texts([phrases[0] for phrases in CATALOG.values()])
    path = vector_store(
        {item: (vector, {}) for item, vector in zip(CATALOG, teacher_vectors, strict=True)}, name="multi"
    )
    german = ["search", "rote Lederschuhe", "--store", str(path), "--mode", "vector", "--json", "-k", "1"]
    # Unregistered pairs are refused with the rule, then accepted when the user vouches for them.
    assert main([*german, "--text-encoder", f"st:{student_dir}"]) == 4
    assert "allow" in capsys.readouterr().err
    assert main([*german, "--text-encoder", f"st:{student_dir}", "--allow-unpaired"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"][0]["id"] == "shoes"

    settings = Settings(store=path, text_encoder=f"st:{student_dir}", allow_unpaired_text_encoder=True)
    with TestClient(create_app(settings)) as client:  # the service loads the store's model and pairs it
        hits = client.get("/v1/search", params={"q": "veste en jean bleue", "mode": "vector", "k": 1}).json()["hits"]
        assert hits[0]["id"] == "jacket"


# -- M-CLIP ------------------------------------------------------------------------------------------------------


def write_mclip(directory: Path, bert: Path, seed: int = 1) -> Path:
    """A tiny model in Multilingual-CLIP's hub layout: config.json, pytorch_model.bin, tokenizer files."""
    from transformers import BertModel

    directory.mkdir(parents=True)
    config = {"model_type": "M-CLIP", "modelBase": str(bert), "transformerDimensions": HIDDEN, "numDims": DIM}
    (directory / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(bert / name, directory / name)
    transformer = BertModel.from_pretrained(str(bert))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        linear = torch.nn.Linear(HIDDEN, DIM)
    state = {f"transformer.{k}": v for k, v in transformer.state_dict().items()}
    state |= {f"LinearTransformation.{k}": v for k, v in linear.state_dict().items()}
    state["transformer.embeddings.position_ids"] = torch.arange(32).unsqueeze(0)  # as old checkpoints carry it
    torch.save(state, directory / "pytorch_model.bin")
    return directory


def test_an_mclip_directory_loads_and_matches_the_published_forward(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertModel

    bert = write_bert(tmp_path / "bert", seed=3)
    mclip = write_mclip(tmp_path / "mclip", bert)
    assert parse_text_encoder_spec(str(mclip)) == f"mclip:{mclip}"  # detected by its config.json
    encoder = load_text_encoder(f"mclip:{mclip}")
    texts = ["rote Lederschuhe", "green glass vase and brown wooden chair"]
    vectors = encoder.encode_texts(texts)
    assert vectors.shape == (2, DIM) and vectors.dtype == np.float32

    # Multilingual-CLIP's forward: attention-masked mean of the token embeddings, then the linear layer.
    state = torch.load(mclip / "pytorch_model.bin", weights_only=True)
    transformer = BertModel.from_pretrained(str(bert)).eval()
    transformer.load_state_dict(
        {k.removeprefix("transformer."): v for k, v in state.items() if k.startswith("transformer.")}, strict=False
    )
    tokens = AutoTokenizer.from_pretrained(str(mclip))(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        embs = transformer(**tokens)[0]
        mask = tokens["attention_mask"]
        pooled = (embs * mask.unsqueeze(2)).sum(dim=1) / mask.sum(dim=1)[:, None]
        expected = pooled @ state["LinearTransformation.weight"].T + state["LinearTransformation.bias"]
    expected = torch.nn.functional.normalize(expected, dim=-1).numpy()
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_a_broken_mclip_directory_raises_model_load_error(tmp_path: Path) -> None:
    bert = write_bert(tmp_path / "bert")
    mclip = write_mclip(tmp_path / "mclip", bert)
    state = torch.load(mclip / "pytorch_model.bin", weights_only=True)
    del state["LinearTransformation.bias"]
    torch.save(state, mclip / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="LinearTransformation"):
        load_text_encoder(f"mclip:{mclip}")
    config = json.loads((mclip / "config.json").read_text())
    (mclip / "config.json").write_text(json.dumps({**config, "numDims": 16}))
    state["LinearTransformation.bias"] = torch.zeros(DIM)
    torch.save(state, mclip / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="do not fit the config"):
        load_text_encoder(f"mclip:{mclip}")
    (mclip / "config.json").write_text(json.dumps(config))
    del state["transformer.encoder.layer.1.output.dense.weight"]
    torch.save(state, mclip / "pytorch_model.bin")
    with pytest.raises(
        ModelLoadError, match=r"do not fit modelBase \(missing \['encoder.layer.1.output.dense.weight'\]"
    ):
        load_text_encoder(f"mclip:{mclip}")
    (mclip / "pytorch_model.bin").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError):
        load_text_encoder(f"mclip:{mclip}")
