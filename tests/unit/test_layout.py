"""The generic import names must resolve to this distribution, not to another installed package."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("package", ["models", "indexer", "search"])
def test_package_resolves_to_this_distribution(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == REPO / package


def test_console_script_points_at_cli() -> None:
    entry_points = importlib.metadata.distribution("catalens").entry_points
    scripts = {ep.name: ep.value for ep in entry_points if ep.group == "console_scripts"}
    assert scripts["catalens"] == "search.cli:main"


def test_web_page_ships_with_the_search_package() -> None:
    from importlib.resources import files

    assert (files("search.web") / "index.html").is_file()


def test_importing_models_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, models, indexer.store; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
