"""The ``auto`` spec: pretrained ViT-B-32 when its weights can be had, else the shipped catalens-mini."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import constants

from catalens.models.auto import FALLBACK, PREFERRED, resolve_auto
from catalens.models.base import LoadOptions
from catalens.models.mini import MiniBackend
from catalens.models.openclip import OpenClipBackend
from catalens.models.registry import ModelRegistry

REPO_ID = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"


def _fake_cached_weights(cache: Path) -> None:
    """Lay out a Hugging Face cache entry for the preferred model's weights (content is irrelevant here)."""
    folder = cache / f"models--{REPO_ID.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    snapshot = folder / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"stub")


def test_unreachable_hub_and_empty_cache_resolve_to_catalens_mini(tmp_path: Path) -> None:
    resolution = resolve_auto(LoadOptions(cache_dir=str(tmp_path)), probe=lambda url: False)
    assert resolution.spec == FALLBACK
    assert "unreachable" in resolution.reason and "catalens-mini" in resolution.reason
    assert "\n" not in resolution.reason


def test_blocked_network_is_detected_by_the_real_probe(tmp_path: Path) -> None:
    # The autouse fixture blocks every non-loopback connection, like an air-gapped machine.
    assert resolve_auto(LoadOptions(cache_dir=str(tmp_path))).spec == FALLBACK


def test_reachable_hub_resolves_to_the_pretrained_model(tmp_path: Path) -> None:
    resolution = resolve_auto(LoadOptions(cache_dir=str(tmp_path)), probe=lambda url: True)
    assert resolution.spec == PREFERRED
    assert "reachable" in resolution.reason


def test_cached_weights_win_without_probing(tmp_path: Path) -> None:
    _fake_cached_weights(tmp_path)

    def probe(url: str) -> bool:
        raise AssertionError("cached weights must not trigger a network probe")

    resolution = resolve_auto(LoadOptions(cache_dir=str(tmp_path)), probe=probe)
    assert resolution.spec == PREFERRED
    assert "cached" in resolution.reason


def test_hf_hub_offline_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    resolution = resolve_auto(LoadOptions(cache_dir=str(tmp_path)), probe=lambda url: True)
    assert resolution.spec == FALLBACK
    assert "HF_HUB_OFFLINE" in resolution.reason


def test_registry_resolves_auto_and_leaves_other_specs_alone(tmp_path: Path) -> None:
    registry = ModelRegistry([MiniBackend(), OpenClipBackend()], probe=lambda url: False)
    spec, note = registry.resolve("auto", LoadOptions(cache_dir=str(tmp_path)))
    assert (spec.canonical, spec.backend) == ("catalens-mini", "mini")
    assert note is not None and "catalens-mini" in note
    spec, note = registry.resolve("ViT-B-32:random")
    assert (spec.canonical, note) == ("ViT-B-32:random", None)
