"""The ``catalens`` command line: output, JSON, exit codes, and a run killed with SIGKILL then resumed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from catalens.indexer.store import CatalogStore, ItemFilter
from catalens.search.cli import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_STORE,
    EXIT_USAGE,
    main,
    parse_filters,
)
from catalens.search.errors import QueryError

REPO = Path(__file__).resolve().parents[2]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_index_info_and_reindex(
    tmp_path: Path, tiny_spec: str, capsys: Any, make_catalog: Callable[..., Path], bad_files: Any
) -> None:
    catalog = make_catalog(5)
    bad_files(catalog / "bad")
    store = str(tmp_path / "store")
    code, out, _ = run_cli(capsys, "index", str(catalog), "--store", store, "--model", tiny_spec, "--json", "--quiet")
    assert code == EXIT_OK
    report = json.loads(out)
    assert (report["new"], report["failed"], report["indexed_total"], report["generation"]) == (5, 4, 5, 1)
    assert {f["id"] for f in report["failures"]} == {
        "bad/zero.jpg",
        "bad/notes-named.jpg",
        "bad/truncated.jpg",
        "bad/bomb.png",
    }

    code, out, _ = run_cli(capsys, "index", str(catalog), "--store", store, "--quiet")
    assert code == EXIT_OK and "unchanged" in out and "bad/bomb.png: decompression bomb" in out

    code, out, _ = run_cli(capsys, "index", str(catalog), "--store", store, "--strict", "--quiet")
    assert code == EXIT_FAILED

    code, out, _ = run_cli(capsys, "info", "--store", store, "--json")
    info = json.loads(out)
    assert info["model"] == tiny_spec and info["dim"] == 32
    assert info["items"] == {"indexed": 5, "failed": 4} and info["index"]["factory"] == "Flat"
    assert info["size_bytes"] > 0 and len(info["failures"]) == 4

    code, out, _ = run_cli(capsys, "info", "--store", store)
    assert code == EXIT_OK and "5 indexed, 4 failed" in out

    code, out, _ = run_cli(capsys, "reindex", "--store", store, "--index", "HNSW32", "--json")
    reindexed = json.loads(out)
    assert code == EXIT_OK and (reindexed["generation"], reindexed["factory"], reindexed["count"]) == (2, "HNSW32", 5)
    assert reindexed["chosen_by"] == "given" and reindexed["recall_at_10"] == 1.0 and reindexed["target_met"]


def test_nothing_indexed_is_a_failure(tmp_path: Path, tiny_spec: str, capsys: Any, bad_files: Any) -> None:
    bad_files(tmp_path / "only-bad")
    code, out, _ = run_cli(
        capsys, "index", str(tmp_path / "only-bad"), "--store", str(tmp_path / "s"), "--model", tiny_spec, "--quiet"
    )
    assert code == EXIT_FAILED and "failed" in out


def test_error_exit_codes_and_messages(
    tmp_path: Path, tiny_spec: str, other_tiny_spec: str, capsys: Any, make_catalog: Callable[..., Path]
) -> None:
    catalog = str(make_catalog(2))
    store = str(tmp_path / "store")
    assert run_cli(capsys, "index", catalog, "--store", store, "--model", tiny_spec, "--quiet")[0] == EXIT_OK

    code, _, err = run_cli(capsys, "info", "--store", str(tmp_path / "nope"))
    assert code == EXIT_STORE and "no catalens store" in err

    code, _, err = run_cli(capsys, "index", catalog, "--store", store, "--model", other_tiny_spec, "--quiet")
    assert code == EXIT_STORE and "--rebuild" in err

    with CatalogStore.open(store) as opened, opened.writer_lock():
        code, _, err = run_cli(capsys, "index", catalog, "--store", store, "--quiet")
    assert code == EXIT_STORE and "another process" in err

    code, _, err = run_cli(capsys, "index", catalog, "--store", store, "--index", "Bogus", "--quiet")
    assert code == EXIT_INPUT and "Bogus" in err

    code, _, err = run_cli(capsys, "index", str(tmp_path / "missing"), "--store", store, "--quiet")
    assert code == EXIT_INPUT and "no such file" in err

    code, _, err = run_cli(capsys, "index", catalog, "--store", str(tmp_path / "s2"), "--model", "ViT-B-3", "--quiet")
    assert code == EXIT_MODEL and "ViT-B-32" in err

    with pytest.raises(SystemExit) as exited:
        main(["index", catalog])
    assert exited.value.code == EXIT_USAGE
    assert "--store" in capsys.readouterr().err


def test_unavailable_weights_give_one_paragraph_and_no_traceback(
    tmp_path: Path, capsys: Any, make_catalog: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    code, _, err = run_cli(
        capsys, "index", str(make_catalog(1)), "--store", str(tmp_path / "s"), "--model", "ViT-B-32:laion2b_s34b_b79k"
    )
    assert code == EXIT_MODEL
    assert "ViT-B-32:laion2b_s34b_b79k" in err and "HF_HOME" in err and "Traceback" not in err
    assert err.strip().count("\n") == 0


def test_models_listing(capsys: Any) -> None:
    code, out, _ = run_cli(capsys, "models", "--json")
    listing = json.loads(out)
    models = {m["arch"]: m for m in listing["models"]}
    assert models["catalens-mini"]["backend"] == "mini"
    assert code == EXIT_OK and "laion2b_s34b_b79k" in models["ViT-B-32"]["tags"]
    pairs = {p["text"]: p["image"] for p in listing["text_encoders"]}
    assert pairs["st:sentence-transformers/clip-ViT-B-32-multilingual-v1"] == "ViT-B-32:openai"
    code, out, _ = run_cli(capsys, "models")
    assert "ViT-B-32" in out and "hf-hub:ORG/NAME" in out and "clip-ViT-B-32-multilingual-v1" in out


def _indexed(store: Path) -> int:
    db = sqlite3.connect(f"file:{store / 'catalog.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        return int(db.execute("SELECT COUNT(*) FROM items WHERE status = 'indexed'").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


@pytest.mark.slow
def test_kill_9_then_resume_has_no_duplicates_and_no_loss(
    tmp_path: Path, tiny_spec: str, make_catalog: Callable[..., Path]
) -> None:
    total = 600
    catalog = make_catalog(total, size=(160, 120))
    store = tmp_path / "store"
    command = [
        sys.executable,
        "-m",
        "catalens.search.cli",
        "index",
        str(catalog),
        "--store",
        str(store),
        "--model",
        tiny_spec,
        "--batch-size",
        "2",
        "--workers",
        "1",
        "--quiet",
        "--json",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    victim = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and victim.poll() is None:
        if (store / "catalog.sqlite3").exists() and _indexed(store) >= 20:
            break
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL, victim.stderr.read() if victim.stderr else ""
    committed = _indexed(store)
    assert 0 < committed < total, "the run must be killed in the middle for this test to mean anything"

    resumed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == EXIT_OK, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["new"] == total - committed and report["unchanged"] == committed
    assert report["failed"] == 0 and report["indexed_total"] == total
    with CatalogStore.open(store) as opened:
        assert opened.vector_count() == total
        assert opened.manifest.index is not None and opened.manifest.index.count == total
        assert len(opened.item_states()) == total


def test_search_similar_and_classify_commands(
    tmp_path: Path, tiny_spec: str, capsys: Any, make_catalog: Callable[..., Path]
) -> None:
    catalog = make_catalog(8)
    manifest = tmp_path / "catalog.csv"
    rows = [
        f"sku-{i},catalog/item-{i:03d}.jpg,p{i // 2},Item {i},{'shoes' if i < 3 else 'bags'},{i}.5" for i in range(8)
    ]
    manifest.write_text("id,image,product_id,title,category,price\n" + "\n".join(rows) + "\n")
    store = str(tmp_path / "store")
    assert run_cli(capsys, "index", str(manifest), "--store", store, "--model", tiny_spec, "--quiet")[0] == EXIT_OK

    code, out, _ = run_cli(capsys, "search", "--store", store, "a bag", "-k", "3")
    assert code == EXIT_OK and out.splitlines()[0].split()[:3] == ["#", "score", "id"] and len(out.splitlines()) == 4

    query_image = str(catalog / "item-002.jpg")
    code, out, _ = run_cli(capsys, "search", "--store", store, f"2:{query_image}", "+", "red", "-", "leather", "--json")
    result = json.loads(out)
    assert code == EXIT_OK and result["hits"][0]["id"] == "sku-2" and len(result["hits"]) == 8

    code, out, _ = run_cli(
        capsys,
        "search",
        "--store",
        store,
        "--image",
        query_image,
        "--filter",
        "category=shoes",
        "--filter",
        "price=0..1",
        "--json",
    )
    assert [h["id"] for h in json.loads(out)["hits"]] == ["sku-0"]
    # NAME:VALUE, the HTTP service's attr syntax, is the same filter.
    colon = ["--filter", "category:shoes", "--filter", "price:0..1", "--json"]
    code, out, _ = run_cli(capsys, "search", "--store", store, "--image", query_image, *colon)
    assert code == EXIT_OK and [h["id"] for h in json.loads(out)["hits"]] == ["sku-0"]

    code, out, _ = run_cli(capsys, "search", "--store", store, "x", "--collapse", "--json", "-k", "8")
    assert len(json.loads(out)["hits"]) == 4

    code, out, _ = run_cli(capsys, "similar", "--store", store, "sku-2", "-k", "2", "--json")
    assert code == EXIT_OK and "sku-2" not in [h["id"] for h in json.loads(out)["hits"]]

    code, out, _ = run_cli(capsys, "classify", "--store", store, "--labels", "shoe,bag", "--json")
    predictions = json.loads(out)
    assert code == EXIT_OK and len(predictions) == 8 and all(len(p["predictions"]) == 1 for p in predictions)
    code, out, _ = run_cli(
        capsys, "classify", "--store", store, "--labels", "shoe,bag", "--ids", "sku-1", "--top-k", "2"
    )
    assert code == EXIT_OK and "sku-1" in out and "shoe" in out and "bag" in out
    code, out, _ = run_cli(
        capsys, "classify", "--store", store, "--labels", "shoe,bag", "--image", query_image, "--json"
    )
    assert code == EXIT_OK and json.loads(out)[0]["id"] is None

    for argv, fragment in [
        (["similar", "--store", store, "nope"], "no item"),
        (["search", "--store", store, "+", "x"], "between two terms"),
        (["search", "--store", store, "x", "--filter", "price=cheap"], "price"),
        (["search", "--store", store, "x", "--filter", "novalue"], "NAME=VALUE"),
        (["search", "--store", store], "give a query"),
        (["classify", "--store", store, "--labels", " , "], "label"),
        (["search", "--store", store, "--image", str(tmp_path / "catalog.csv")], "not an image"),
    ]:
        code, _, err = run_cli(capsys, *argv)
        assert code == EXIT_INPUT and fragment in err, (argv, err)
    code, _, err = run_cli(capsys, "search", "--store", str(tmp_path / "nope"), "x")
    assert code == EXIT_STORE


def test_filters_take_name_equals_value_and_name_colon_value_alike() -> None:
    equals = parse_filters(["category=shoes,bags", "price=10..50", "color=red", "size=M:L"])
    colons = parse_filters(["category:shoes,bags", "price:10..50", "color:red", "size:M:L"])
    assert equals == colons == ItemFilter(("shoes", "bags"), 10.0, 50.0, (("color", "red"), ("size", "M:L")))
    # The first separator splits: what follows may hold either.
    assert parse_filters(["url=http://a/b", "ratio:1=2"]).attributes == (("url", "http://a/b"), ("ratio", "1=2"))
    assert parse_filters(["price:..40", "price_min:5"]) == ItemFilter(price_min=5.0, price_max=40.0)
    for bad, fragment in [("novalue", "NAME=VALUE or NAME:VALUE"), ("color:", "NAME:VALUE"), ("price:cheap", "price")]:
        with pytest.raises(QueryError, match=fragment):
            parse_filters([bad])


def test_help_loads_no_model_library_nor_web_stack() -> None:
    probe = (
        "import sys\n"
        "from catalens.search.cli import build_parser\n"
        "parser = build_parser()\n"
        "parser.format_help()\n"
        "commands = next(a for a in parser._actions if a.dest == 'command')\n"
        "for sub in commands.choices.values(): sub.format_help()\n"
        "heavy = [m for m in ('torch', 'open_clip', 'transformers', 'uvicorn', 'fastapi') if m in sys.modules]\n"
        "print(len(commands.choices), heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["18", "[]"]
    help_text = subprocess.run(
        [sys.executable, "-m", "catalens.search.cli", "search", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert help_text.returncode == EXIT_OK and "NAME:VALUE works too" in help_text.stdout
