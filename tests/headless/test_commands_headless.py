"""`gemma-agent run "/name args"` expands a custom command file (ScriptedEngine)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from gemma_agent import ScriptedEngine
from gemma_agent.cli import build_parser
from gemma_agent.headless import run_headless
from gemma_agent.tools.builtin import coding_tools

from ..agent.helpers import call


def test_run_expands_a_custom_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    folder = tmp_path / ".gemma-agent" / "commands" / "git"
    folder.mkdir(parents=True)
    (folder / "explain.md").write_text(
        "---\nthinking: on\nallowed-tools: Read\n---\nExplain $1 in $2 words.\n"
    )
    (tmp_path / "a.py").write_text("x = 1\n")
    engine = ScriptedEngine([call("write_file", path="b.py", content="no"), "It sets x."])
    out = io.StringIO()
    args = build_parser().parse_args(
        ["run", "/git:explain a.py 10", "--json", "--workspace", str(tmp_path)]
    )
    code = run_headless(args, engine=engine, tools=coding_tools(sandbox="none"), out=out)
    assert code == 0
    prompt = engine.requests[0].prompt_text
    assert "Explain a.py in 10 words." in prompt and "/git:explain" not in prompt
    assert "<|think|>" in prompt  # thinking: on for this command
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    refused = next(x for x in lines if x["kind"] == "tool_call_finished")
    assert refused["result"]["is_error"] and "allows only read_file" in refused["result"]["content"]
    assert not (tmp_path / "b.py").exists()
