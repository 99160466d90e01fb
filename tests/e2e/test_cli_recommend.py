"""``catalens recommend`` in-process through ``main``: the table, the JSON document, skipped ids, exit codes.

The store (the same one the HTTP tests use) is built once for the module; the ranking rules are tested on the
engine, so these tests hold what the command line adds: arguments, output and errors.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from catalens.search.cli import EXIT_INPUT, EXIT_OK, EXIT_USAGE, main
from tests.integration.test_recommend_api import BRANDS, N_ITEMS, build_store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_model: Any) -> str:
    return str(build_store(tmp_path_factory.mktemp("cli-recommend"), tiny_model))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["recommend", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_recommend_prints_a_table_and_names_skipped_ids_on_stderr(store: str, capsys: Any) -> None:
    code, out, err = run(capsys, "--store", store, "sku-01", "nope", "--negative", "sku-03", "-k", "3")
    lines = out.splitlines()
    assert code == EXIT_OK and lines[0].split()[:3] == ["#", "score", "id"] and len(lines) == 4
    assert not {"sku-01", "sku-03"} & {line.split()[2] for line in lines[1:]}
    assert "skipped nope: not found" in err

    code, out, err = run(capsys, "--store", store, "sku-00", "--group-by", "category", "--group-size", "2", "-k", "2")
    assert code == EXIT_OK and out.startswith("Group 1: ") and "\nGroup 2: " in out and err == ""


def test_recommend_json_with_weights_caps_groups_and_inputs(store: str, capsys: Any) -> None:
    code, out, _ = run(
        capsys,
        *("--store", store, "sku-01", "sku-02", "broken", "--weight", "sku-02", "3", "--include-inputs"),
        *("--max-per", "brand=1", "--strategy", "best_score", "--diversity", "0.3", "--candidates", "20"),
        *("--dedupe", "-k", "10", "--json"),
    )
    answer = json.loads(out)
    assert code == EXIT_OK and answer["groups"] is None and answer["k"] == 10
    assert [s["id"] for s in answer["skipped"]] == ["broken"]
    assert "not indexed" in answer["skipped"][0]["reason"]
    brands = [h["attributes"]["brand"] for h in answer["hits"]]
    assert len(brands) == len(set(brands)) == len(BRANDS)

    code, out, _ = run(capsys, "--store", store, "sku-00", "--group-by", "category", "-k", "2", "--json")
    grouped = json.loads(out)
    assert grouped["hits"] == [] and len(grouped["groups"]) == 2
    assert all({h["category"] for h in g["hits"]} == {g["value"]} for g in grouped["groups"])

    code, out, _ = run(capsys, "--store", store, "--negative", "sku-05", "-k", str(N_ITEMS), "--json")
    assert code == EXIT_OK and "sku-05" not in [h["id"] for h in json.loads(out)["hits"]]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["nope", "gone"], "'gone' (not found)"),
        ([], "at least one example"),
        (["sku-01", "--weight", "sku-09", "2"], "sku-09"),
        (["sku-01", "--weight", "sku-01", "0"], "weight"),
        (["sku-01", "--weight", "sku-01", "nan"], "finite"),
    ],
)
def test_unusable_examples_exit_with_bad_input(store: str, capsys: Any, argv: list[str], fragment: str) -> None:
    code, _, err = run(capsys, "--store", store, *argv)
    assert code == EXIT_INPUT and fragment in err, err


@pytest.mark.parametrize(
    "argv",
    [["--max-per", "brand"], ["--max-per", "brand=0"], ["--diversity", "2"], ["--strategy", "magic"]],
)
def test_malformed_options_are_usage_errors(store: str, capsys: Any, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["recommend", "--store", store, "sku-01", *argv])
    assert exited.value.code == EXIT_USAGE and argv[0] in capsys.readouterr().err


def test_session_weighs_recent_views_like_explicit_weights(store: str, capsys: Any) -> None:
    # Latest first, a repeat counted once at its latest view: sku-01 weighs 1, sku-02 0.5 with a half-life of 1.
    code, session, _ = run(capsys, "--store", store, "sku-01", "sku-02", "sku-01", "--session", "1", "--json")
    assert code == EXIT_OK
    code, weighted, _ = run(
        capsys, "--store", store, "sku-01", "sku-02", "--weight", "sku-01", "1", "--weight", "sku-02", "0.5", "--json"
    )
    assert code == EXIT_OK and json.loads(session) == json.loads(weighted)
    code, flipped, _ = run(capsys, "--store", store, "sku-02", "sku-01", "--session", "1", "--json")
    assert json.loads(flipped)["hits"] != json.loads(session)["hits"]  # the order of the views matters
    code, _, err = run(capsys, "--store", store, "sku-01", "--session", "0")
    assert code == EXIT_INPUT and "half-life" in err
