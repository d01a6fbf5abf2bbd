"""The faces sit on the SDK's public surface: an AST scan of what `tui/`, `headless/` and
`editors/` import.

A face may import its own modules and the public packages below, and from those only the names
their ``__all__`` lists; never a module inside them (`gemma_agent.agent.session`,
`gemma_agent.prompts.render`, `gemma_agent.tools.builtin`, ...). If a face needs more, the SDK
grows a public name.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = ("gemma_agent", "gemma_agent.agent", "gemma_agent.events", "gemma_agent.errors")
PUBLIC_FOR = {
    "tui": (*PUBLIC, "gemma_agent.tools"),
    "headless": (*PUBLIC, "gemma_agent.tools"),
    "editors": (*PUBLIC, "gemma_agent.tools"),
}


def imports_of(source: str, package: str) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, names imported from it) of every gemma_agent import in a module
    of ``package``."""
    found = []
    parts = package.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = parts[: len(parts) - node.level + 1]
                module = ".".join([*base, *([module] if module else [])])
            found.append((node.lineno, module, [a.name for a in node.names]))
    return [f for f in found if f[1].split(".")[0] == "gemma_agent"]


def imports(face: str) -> list[tuple[str, int, str, list[str]]]:
    """(file, line, module, names) for every gemma_agent import of a face's modules."""
    found = []
    for path in sorted((ROOT / face).rglob("*.py")):
        package = ".".join(["gemma_agent", *path.relative_to(ROOT).parent.parts])
        for line, module, names in imports_of(path.read_text(encoding="utf-8"), package):
            found.append((str(path.relative_to(ROOT)), line, module, names))
    return found


@pytest.mark.parametrize("face", sorted(PUBLIC_FOR))
def test_faces_import_only_the_public_surface(face: str) -> None:
    own = f"gemma_agent.{face}"
    allowed = PUBLIC_FOR[face]
    wrong = []
    for file, line, module, names in imports(face):
        if module == own or module.startswith(own + "."):
            continue
        if module not in allowed:
            wrong.append(f"{file}:{line} imports {module}")
            continue
        public = set(importlib.import_module(module).__all__)
        wrong += [
            f"{file}:{line} imports {module}.{name} (not in its __all__)"
            for name in names
            if name not in public
        ]
    assert not wrong, "\n".join(wrong)


def test_the_scan_resolves_relative_and_absolute_imports() -> None:
    source = (
        "from ..agent.session import load_session\n"
        "from .. import Agent\n"
        "from . import blocks\n"
        "from .format import error_text\n"
        "import gemma_agent.prompts.render\n"
        "import json\n"
    )
    assert imports_of(source, "gemma_agent.tui") == [
        (1, "gemma_agent.agent.session", ["load_session"]),
        (2, "gemma_agent", ["Agent"]),
        (3, "gemma_agent.tui", ["blocks"]),
        (4, "gemma_agent.tui.format", ["error_text"]),
        (5, "gemma_agent.prompts.render", []),
    ]
