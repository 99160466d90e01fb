"""One import package: catalens installs exactly ``catalens`` and works beside a user's own packages."""

from __future__ import annotations

import ast
import importlib.metadata
import json
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


def _package_modules() -> dict[str, Path]:
    """Every module of the package by its import name (``catalens.search.cli.app`` -> search/cli/app.py)."""
    modules: dict[str, Path] = {}
    for folder, package in MAPPED.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The names ``path`` imports anywhere (at import or lazily inside functions), except for type checking.

    ``from a.b import c`` counts as importing module ``a.b.c`` when that is a module, else ``a.b``.
    """
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom) and child.module:
                for alias in child.names:
                    name = f"{child.module}.{alias.name}"
                    found.add(name if name in modules else child.module)
            elif isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def test_no_import_cycle_anywhere_in_the_package() -> None:
    modules = _package_modules()
    graph = {name: _imports(path, set(modules)) & set(modules) for name, path in modules.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            assert state.get(target) != "open", "import cycle: " + " -> ".join([*trail, name, target])
            if target not in state:
                visit(target, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("catalens.models", ("catalens.indexer", "catalens.search", "catalens.web")),
        ("catalens.indexer", ("catalens.search", "catalens.web", "torch", "open_clip", "transformers")),
        ("catalens.search", ("torch", "open_clip", "transformers", "faiss")),
    ],
)
def test_imports_go_one_way(layer: str, forbidden: tuple[str, ...]) -> None:
    """models -> indexer -> search: no layer imports one above it, only models imports torch and friends, and the
    query side reaches FAISS only through the indexer's VectorIndex."""
    wrong = {
        f"{name} imports {target}"
        for name, path in _package_modules().items()
        if name == layer or name.startswith(layer + ".")
        for target in _imports(path, set())
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    }
    assert not wrong, sorted(wrong)


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


def test_the_installed_distribution_adds_only_catalens(tmp_path: Path) -> None:
    """What this environment's install (editable here and in CI) put in site-packages: ``catalens`` only.

    Besides the package, its dist-info and the console script, an editable install adds setuptools' own hook
    (a ``.pth`` file and its finder module), whose mapping may only name ``catalens`` packages.
    """
    code = (
        "import importlib.metadata as m, json, sys\n"
        "dist = m.distribution('catalens')\n"
        "names = sorted({str(f).split('/')[0] for f in dist.files or []})\n"
        "hooks = [n[:-3] for n in names if n.startswith('__editable__') and n.endswith('_finder.py')]\n"
        "mapped = [k for h in hooks for k in __import__(h).MAPPING]\n"
        "print(json.dumps({'names': names, 'top_level': dist.read_text('top_level.txt'), 'mapped': mapped}))\n"
    )
    # Run outside the repository, so that nothing but the installed distribution is found.
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert (found["top_level"] or "").split() == ["catalens"]
    importable = {
        name.removesuffix(".py")
        for name in found["names"]
        if not name.endswith((".dist-info", ".pth")) and name not in {"..", "__pycache__"}
    }
    assert importable <= {"catalens"} | {n for n in importable if n.startswith("__editable___catalens_")}
    assert all(key == "catalens" or key.startswith("catalens.") for key in found["mapped"]), found["mapped"]


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
