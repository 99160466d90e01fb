"""The model layer's shape: no import cycle between its modules, and no module importing torch at import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(MODELS).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["catalens", "models", *parts])


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The catalens.models modules ``path`` imports anywhere (at import or lazily), except for type checking."""
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
    return found & modules


def test_the_model_layer_has_no_import_cycle() -> None:
    paths = {_module_name(path): path for path in MODELS.rglob("*.py")}
    graph = {name: _imports(path, set(paths)) for name, path in paths.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            assert state.get(target) != "open", " -> ".join([*trail, name, target])
            if target not in state:
                visit(target, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_importing_every_family_and_parsing_specs_needs_no_torch() -> None:
    code = (
        "import sys, catalens.models as m\n"
        "from catalens.models import captioning, ocr, text_encoders\n"
        "captioning.parse_captioner_spec('blip'); captioning.list_captioners()\n"
        "text_encoders.parse_text_encoder_spec('clip-ViT-B-32-multilingual-v1'); text_encoders.list_pairings()\n"
        "ocr.parse_ocr_spec('tesseract'); ocr.list_ocr_engines()\n"
        "heavy = [n for n in ('torch', 'transformers', 'open_clip') if n in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
