"""The layout's rules: layers import only downward, no cycles, a small top level, short modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NERWIN = Path(__file__).resolve().parent.parent / "nerwin"
SHARED = {"nerwin.config", "nerwin.errors", "nerwin.metrics"}  # pieces every layer may use
FACE = {"nerwin.api", "nerwin.cli", "nerwin.render", "nerwin.__main__", "nerwin"}
LAYER = {"engine": 0, "files": 0, "data": 1, "model": 2, "training": 3, "tag": 3}
MAX_LINES = 400
MAX_TOP_MODULES = 8


def _module(path: Path) -> str:
    parts = path.relative_to(NERWIN.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every nerwin module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nerwin"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("nerwin"))
    modules = {_module(p) for p in NERWIN.rglob("*.py")}
    return {name for name in found if name in modules}


MODULES = {_module(p): p for p in sorted(NERWIN.rglob("*.py"))}


def _layer(module: str) -> tuple[str, int]:
    parts = module.split(".")
    if module in FACE:
        return "face", 9
    if module in SHARED:
        return "shared", 5
    return parts[1], LAYER[parts[1]]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_layers_import_only_downward(module: str) -> None:
    kind, level = _layer(module)
    for target in _imports(MODULES[module]):
        if target == "nerwin":  # __version__ only
            continue
        other, other_level = _layer(target)
        if kind == "engine":
            assert other == "engine", f"{module} imports {target}: the engine imports no nerwin"
        elif kind in ("face",) or other == "shared":
            continue
        elif kind == "shared":
            assert other_level <= 1 or other == "shared", f"{module} (shared) imports {target}"
        else:
            assert other == kind or other_level < level, f"{module} imports upward: {target}"


def test_layers_have_no_import_cycle() -> None:
    graph = {m: {t for t in _imports(p) if t != m and t != "nerwin"} for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError(
                    "import cycle: " + " -> ".join([*trail[trail.index(nxt) :], nxt])
                )
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in graph:
        if start not in state:
            visit(start, [start])


def test_layers_top_level_is_small_and_modules_are_short() -> None:
    top = sorted(p.name for p in NERWIN.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_layers_every_subpackage_says_what_it_holds() -> None:
    for init in NERWIN.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "import" in doc, f"{init}: the docstring should say what the package may import"
