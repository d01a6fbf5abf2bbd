"""The shape of the package: largest files, import cycles, public names.

    python bench/structure.py

Import cycles are counted on the graph of every import between our modules, function-local
ones included (a cycle hidden in a function is still a cycle a reader has to untangle), those
under ``if TYPE_CHECKING:`` left out (annotations only). Each cycle is one strongly connected
component of more than one module.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "gemma_agent"
SKIP = {"tests", "bench", "build", "examples", "docs", ".venv"}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in SKIP or rel.parts[0].startswith("."):
            continue
        parts = [PACKAGE, *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only, no runtime edge)."""
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rpartition(".")[0]
            mod = f"{base}.{node.module}" if node.level and node.module else base
            if not node.level:
                mod = node.module or ""
            targets = [mod, *(f"{mod}.{a.name}" for a in node.names)]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name and not name.startswith(t + "."):  # not our own package
                found.add(t)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def public_names(mods: dict[str, Path]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, path in mods.items():
        root_module = name.count(".") == 1 and path.stem not in ("__main__", "cli")
        if path.name == "__init__.py" or root_module:
            module = importlib.import_module(name)
            if hasattr(module, "__all__") or path.name == "__init__.py":
                counts[name] = len(module.__all__) if hasattr(module, "__all__") else 0
    return counts


def main() -> None:
    mods = modules()
    sizes = sorted(
        ((len(p.read_text(encoding="utf-8").splitlines()), n) for n, p in mods.items()),
        reverse=True,
    )
    print("largest modules (lines):")
    for lines, name in sizes[:6]:
        print(f"  {lines:6d}  {name}")
    graph = {n: imports(n, p, set(mods)) for n, p in mods.items()}
    found = cycles(graph)
    print(f"import cycles: {len(found)}")
    for comp in found:
        print("  " + " <-> ".join(c.removeprefix(PACKAGE + ".") for c in comp))
    names = public_names(mods)
    print(f"public names: {sum(names.values())} in {len(names)} packages")
    for name, count in sorted(names.items()):
        print(f"  {count:4d}  {name}")


if __name__ == "__main__":
    main()
