"""The package's layers, checked: arrows only downward, no circles (imports
inside functions count; those under ``if TYPE_CHECKING:`` do not), short
modules, a thin plugin, and a start-up that imports nothing heavy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_llmjudge"

#: Top to bottom. A module may import its own layer's modules (without a
#: circle) and any lower layer's, never a higher one's.
LAYERS: list[tuple[str, ...]] = [
    ("plugin",),
    ("assertion", "canary", "testing", "reporting", "calibration",
     "trajectory", "conversation", "claims"),
    ("judging",),
    ("runtime",),
    ("storage",),
    ("verdict", "rubric", "settings", "constants", "exceptions", "types", "text",
     "guidance", "marks", "callables", "messages", "claim_results"),
]
HEAVY = ("litellm", "pydantic", "diskcache", "rich", "yaml")


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(path: Path, known: set[str]) -> set[str]:
    """The package modules ``path`` imports, anywhere in it."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for n in node.orelse:
                visit(n)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; write it absolute"
            base = node.module or ""
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        for name in names:
            if name.startswith("pytest_llmjudge."):
                rel = name.removeprefix("pytest_llmjudge.")
                while rel and rel not in known:
                    rel = rel.rpartition(".")[0]
                if rel:
                    found.add(rel)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _layer(module: str) -> int:
    top = module.split(".")[0]
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"module {module} is in no layer: add it to LAYERS")


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(f, known) - {m, ""} for m, f in mods.items() if m}


def test_every_arrow_points_down_or_sideways() -> None:
    wrong = [f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
             for m, deps in _graph().items() for d in deps if _layer(d) < _layer(m)]
    assert wrong == []


def test_no_import_circle() -> None:
    graph = _graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                circles.append([*stack[stack.index(d):], d])
            elif d not in state:
                walk(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m)
    assert circles == []


def test_nothing_imports_the_plugin_module() -> None:
    assert [m for m, deps in _graph().items() if "plugin" in deps] == []


def test_the_checker_sees_function_level_imports(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("from typing import TYPE_CHECKING\n"
                 "if TYPE_CHECKING:\n    from pytest_llmjudge.plugin import x\n"
                 "def f():\n    from pytest_llmjudge.judging.judge import Judge\n")
    assert _imports(f, {"plugin", "judging.judge", "judging"}) == {"judging.judge"}


def test_modules_stay_short() -> None:
    sizes = {m: len(f.read_text(encoding="utf-8").splitlines())
             for m, f in _modules().items()}
    assert {m: n for m, n in sizes.items() if n > 500} == {}
    assert sizes["plugin"] <= 250


def test_no_private_module_names() -> None:
    """The privacy rule: the public API is what ``pytest_llmjudge`` exports;
    no module name starts with an underscore."""
    assert [m for m in _modules() if any(p.startswith("_") for p in m.split("."))] \
        == []


@pytest.mark.parametrize("code", [
    "import pytest_llmjudge.plugin",
    "import pytest_llmjudge",
])
def test_loading_the_plugin_imports_nothing_heavy(code: str) -> None:
    probe = (f"{code}\nimport sys\n"
             f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "[]"
