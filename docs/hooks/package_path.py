"""mkdocs hook: let mkdocstrings find ``gemma_agent`` by reading files, without importing it.

The repository root is the package (``package-dir = {"gemma_agent" = "."}``), so no folder is
named ``gemma_agent`` and griffe would fall back to importing the package (slow, and a broken
import anywhere breaks the docs). Before the build this hook lays out ``build/docs-src/gemma_agent``:
one folder per package of ``pyproject.toml``'s ``packages`` list, holding links to that
package's ``*.py`` files, i.e. the modules a wheel installs (no tests, benches or eval task
data). ``mkdocs.yml`` points the python handler's ``paths`` at ``build/docs-src``.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "docs-src"


def lay_out_package(root: Path = ROOT, out: Path = OUT) -> Path:
    """Build the link tree under ``out`` and return it."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    packages: list[str] = config["tool"]["setuptools"]["packages"]
    shutil.rmtree(out, ignore_errors=True)
    for package in packages:
        parts = package.split(".")  # gemma_agent, gemma_agent.agent, ...
        source = root.joinpath(*parts[1:])
        target = out.joinpath(*parts)
        target.mkdir(parents=True, exist_ok=True)
        for module in source.glob("*.py"):
            (target / module.name).symlink_to(module)
    return out


def on_pre_build(**_: Any) -> None:  # every build (`mkdocs serve` too): picks up new modules
    lay_out_package()
