"""One import package: catalens installs exactly ``catalens`` and works beside a user's own packages."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import catalens

REPO = Path(__file__).resolve().parents[2]
#: Each folder of the repository and the import package it becomes (pyproject.toml's package-dir).
MAPPED = {
    "catalens": "catalens",
    "models": "catalens.models",
    "indexer": "catalens.indexer",
    "search": "catalens.search",
    "web": "catalens.web",
}


@pytest.mark.parametrize(("folder", "package"), sorted(MAPPED.items()))
def test_each_folder_is_a_package_of_catalens(folder: str, package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == REPO / folder


def test_console_script_points_at_cli() -> None:
    entry_points = importlib.metadata.distribution("catalens").entry_points
    scripts = {ep.name: ep.value for ep in entry_points if ep.group == "console_scripts"}
    assert scripts["catalens"] == "catalens.search.cli:main"


def test_web_page_ships_as_catalens_web() -> None:
    from importlib.resources import files

    assert (files("catalens.web") / "index.html").is_file()


def test_the_flat_public_api() -> None:
    expected = {
        "index_catalog", "reindex", "IndexOptions", "IndexReport",
        "SearchEngine", "SearchOptions", "SearchResult", "QueryPart", "ItemFilter",
        "CatalogStore", "load_model", "list_models", "DEFAULT_MODEL",
        "CatalensError", "ModelError", "UnknownModelError", "IndexerError", "StoreError", "SearchError", "QueryError",
    }  # fmt: skip
    assert expected <= set(catalens.__all__)
    for name in catalens.__all__:
        assert getattr(catalens, name) is not None, name
    # One base class catches every error catalens raises on purpose, from every layer.
    for error in (catalens.ModelError, catalens.IndexerError, catalens.SearchError):
        assert issubclass(error, catalens.CatalensError)
    assert issubclass(catalens.UnknownModelError, ValueError) and issubclass(catalens.QueryError, ValueError)


def test_importing_catalens_does_not_import_torch() -> None:
    code = (
        "import sys, catalens, catalens.indexer.store, catalens.search.engine\n"
        "heavy = [m for m in ('torch', 'open_clip', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_works_in_a_folder_with_its_own_models_and_search_packages(tmp_path: Path) -> None:
    """A shop's project often has ``models/`` and ``search/`` of its own; neither may shadow catalens."""
    for name in ("models", "search", "indexer", "web"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"OWNER = 'user {name}'\n")
    code = (
        "import models, search, catalens\n"
        "from catalens.models import list_models\n"
        "from catalens.search.engine import SearchEngine\n"
        "assert models.OWNER == 'user models' and search.OWNER == 'user search'\n"
        "assert any(info.arch == 'catalens-mini' for info in list_models())\n"
        "assert catalens.SearchEngine is SearchEngine\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def _package_files() -> set[str]:
    """Every file the wheel must carry, named as it is inside the wheel."""
    wanted: set[str] = set()
    for folder, package in MAPPED.items():
        root = REPO / folder
        for path in root.rglob("*.py"):
            if "__pycache__" not in path.parts:
                wanted.add(package.replace(".", "/") + "/" + path.relative_to(root).as_posix())
    wanted |= {f"catalens/web/{p.name}" for p in (REPO / "web").iterdir() if p.suffix in {".html", ".js", ".css"}}
    wanted.add("catalens/models/weights/catalens-mini/" + next((REPO / "models/weights/catalens-mini").iterdir()).name)
    return wanted


def _source_copy(target: Path) -> Path:
    """The files git would ship (tracked or new, not ignored), copied: no stale ``build/`` leaks into the wheel."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # deleted in the working tree but still in the index: skip
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.mark.slow
def test_the_wheel_installs_only_catalens(tmp_path: Path) -> None:
    """The built wheel holds one top-level package (plus its dist-info) and every module of every folder.

    This also catches a new subpackage forgotten in pyproject's explicit ``packages`` list.
    """
    source = _source_copy(tmp_path / "src")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path, source],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("catalens-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    top_level = {name.split("/")[0] for name in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"catalens"}
    missing = _package_files() - names
    assert not missing, f"pyproject.toml's packages list misses: {sorted(missing)[:10]}"
