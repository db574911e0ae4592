"""The shape of the code, checked on its AST: no import circle, imports only flow the allowed way between
packages, trm_core never imports sweeper (or Ray/Optuna/MLflow/typer), and no source file is over 300 lines.

Allowed (docs/DESIGN.md): util <- spec, results <- sweep <- commands; hooks and util are shared; tracking
sits beside sweep (it may import results, hooks and util, never sweep or spec); nothing imports commands
but the CLI.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 300
ALLOWED = {
    "sweeper.util": {"sweeper.errors"},
    "sweeper.spec": {"sweeper.errors", "sweeper.util"},
    "sweeper.results": {"sweeper.errors", "sweeper.util"},
    "sweeper.sweep": {"sweeper.errors", "sweeper.util", "sweeper.spec", "sweeper.results", "sweeper.hooks",
                      "sweeper.faults"},
    "sweeper.tracking": {"sweeper.errors", "sweeper.util", "sweeper.results", "sweeper.hooks", "sweeper.faults"},
    "sweeper.hooks": set(),
    "sweeper.faults": {"sweeper.util"},
    "sweeper.errors": set(),
}
"""Package -> the sweeper packages it may import (trm_core is open to all of sweeper)."""


def modules(package: str) -> dict[str, Path]:
    base = ROOT / package
    out = {}
    for path in sorted(base.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules `name` imports (at any depth in the file, lazy imports included)."""
    tree = ast.parse(path.read_text())
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", getattr(block.test, "attr", "")) == "TYPE_CHECKING"
                   for n in ast.walk(block)}  # annotations only: not a dependency at run time
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m in known and m not in ("sweeper", "trm_core")}  # the roots hold only a version


GRAPH = {}
for pkg in ("sweeper", "trm_core"):
    mods = modules(pkg)
    known = set(mods) | set(modules("sweeper" if pkg == "trm_core" else "trm_core"))
    for name, path in mods.items():
        GRAPH[name] = imports(name, path, known)


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(GRAPH.get(n, ())):
            # A package face importing its own submodules is not a cycle of concepts.
            if m.startswith(n + "."):
                continue
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if state.get(m) is None and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(GRAPH):
        if state.get(n) is None and (found := visit(n)):
            return found
    return None


def test_no_import_circle():
    assert _cycle() is None, " -> ".join(_cycle())


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "sweeper" and len(parts) > 1 else parts[0]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_only_the_allowed_way(package):
    bad = []
    for name, deps in GRAPH.items():
        if _package(name) != package:
            continue
        for dep in deps:
            target = _package(dep)
            if dep.startswith("sweeper") and target != package and target not in ALLOWED[package]:
                bad.append(f"{name} -> {dep}")
    assert not bad, bad


def test_trm_core_never_imports_sweeper():
    bad = [f"{n} -> {d}" for n, deps in GRAPH.items() if n.startswith("trm_core") for d in deps if d.startswith("sweeper")]
    assert not bad, bad


def test_nothing_but_the_cli_imports_the_commands():
    bad = [f"{n} -> {d}" for n, deps in GRAPH.items() if not n.startswith(("sweeper.commands", "sweeper.cli"))
           for d in deps if d.startswith("sweeper.commands")]
    assert not bad, bad


def test_the_worker_side_of_a_trial_imports_nothing_from_the_spec_layer():
    seen, todo = set(), ["sweeper.sweep.trainable"]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += [d for d in GRAPH.get(n, ()) if d.startswith("sweeper")]
    assert not [m for m in seen if m.startswith("sweeper.spec")], sorted(seen)


def test_no_source_file_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for pkg in ("sweeper", "trm_core") for p in (ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long
