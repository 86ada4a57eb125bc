"""Layers run one way (CONTRIBUTING.md): checked on the source, imports inside functions included."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "aerith"

# package -> packages it must never import
FORBIDDEN = {
    "models": ("data", "train", "eval", "infer", "rl", "serve", "geo", "ui", "quickstart", "cli"),
    "infer": ("eval", "train", "rl", "quickstart", "cli"),
    "eval": ("train", "rl", "quickstart", "cli"),
    "data": ("models", "train", "eval", "infer", "rl", "quickstart", "cli"),
    "parsing": ("models", "data", "train", "eval", "infer", "rl", "quickstart", "cli"),
}
NEUTRAL = ("tasks", "boxes", "errors", "imageio", "atomic", "runs")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name == "aerith" or name.startswith("aerith.")]


def _files(package: str) -> list[Path]:
    root = PACKAGE / package
    return sorted(root.rglob("*.py")) if root.is_dir() else [PACKAGE / f"{package}.py"]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_its_layer_allows(package):
    wrong = []
    for path in _files(package):
        for line, name in _imports(path):
            top = name.split(".")[1] if "." in name else ""
            if top in FORBIDDEN[package]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", NEUTRAL)
def test_neutral_modules_import_only_neutral_ones(module):
    for line, name in _imports(PACKAGE / f"{module}.py"):
        assert name.split(".")[1] in NEUTRAL, f"aerith/{module}.py:{line} imports {name}"


def test_no_import_cycle_inside_train():
    """Module-level imports among aerith.train's modules form no cycle."""
    graph = {}
    for path in _files("train"):
        mod = "aerith.train." + path.stem if path.stem != "__init__" else "aerith.train"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        deps = set()
        for node in tree.body:  # module level only: imports inside functions run later
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aerith.train."):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("aerith.train.")}
        graph[mod] = deps
    state: dict[str, int] = {}

    def visit(node, trail):
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join([*trail, node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in graph.get(node, ()):
            visit(dep, [*trail, node])
        state[node] = 2

    for mod in graph:
        visit(mod, [])
