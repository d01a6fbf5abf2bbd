"""The package's promises: a clean import, a wheel with its data files, a working console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import gemma_agent
import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def test_import_does_not_pull_heavy_modules() -> None:
    code = (
        "import sys, json, gemma_agent\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'vllm', 'textual', 'transformers', 'opentelemetry'})\n"
        "print(json.dumps(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_public_names_resolve() -> None:
    from gemma_agent import Agent, ConfigError, ScriptedEngine, Tool, ToolError, tool

    assert callable(tool) and isinstance(Agent, type) and isinstance(Tool, type)
    assert issubclass(ConfigError, gemma_agent.AgentError)
    assert issubclass(ToolError, Exception) and isinstance(ScriptedEngine, type)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = gemma_agent.Nope  # type: ignore[attr-defined]


def test_error_tree_matches_docstring() -> None:
    from gemma_agent import errors

    for name in errors.__all__:
        assert name in (errors.__doc__ or ""), f"{name} missing from the drawn tree"
    assert issubclass(errors.EngineUnavailable, errors.EngineError)
    assert issubclass(errors.EngineRequestFailed, errors.EngineError)
    assert issubclass(errors.RenderError, errors.ConfigError)


def _console_script() -> str:
    path = VENV_BIN / "gemma-agent"
    if not path.exists():
        pytest.skip("console script not installed in this interpreter's environment")
    return str(path)


def test_console_script_version_and_help() -> None:
    exe = _console_script()
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"gemma-agent {gemma_agent.__version__}"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
    for command in ("run", "eval", "eval-merge", "models", "tiny-model"):
        assert command in out.stdout
    assert "Traceback" not in out.stderr


def test_python_dash_m_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gemma_agent", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert gemma_agent.__version__ in out.stdout


def test_wheel_contains_package_and_data(tmp_path: Path) -> None:
    env = {**os.environ, "PIP_NO_INDEX": "1"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    (wheel,) = tmp_path.glob("gemma_agent-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "gemma_agent/__init__.py",
        "gemma_agent/cli.py",
        "gemma_agent/errors.py",
        "gemma_agent/agent/loop.py",
        "gemma_agent/prompts/__init__.py",
        "gemma_agent/tools/registry.py",
        "gemma_agent/tui/app.py",
        "gemma_agent/headless/app.py",
        "gemma_agent/evals/__init__.py",
    ):
        assert required in names, required
    assert any(
        n.startswith("gemma_agent/prompts/templates/") and n.endswith(".jinja") for n in names
    )
    assert any(n.startswith("gemma_agent/evals/suites/") for n in names)
    # Nothing outside the package (tests, benches, the venv) leaks into the wheel.
    assert not any(
        n.startswith(("tests/", "bench/", ".venv/", "gemma_agent/tests/")) for n in names
    )
