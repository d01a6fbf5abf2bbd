"""AGENTS.md memory and skills on real folder trees: discovery, precedence, the cap, the
system turn, and a skill's body absent from the prompt until the skill tool loads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from gemma_agent import Agent, ScriptedEngine
from gemma_agent.agent.context import (
    load_memory,
    memory_paths,
    project_context,
    repository_root,
)
from gemma_agent.agent.events import Notice, ToolCallFinished
from gemma_agent.errors import ConfigError
from gemma_agent.tools.builtin.skills import parse_front_matter

BODY = "Step 1: run `make release-notes`. Step 2: paste the output under CHANGES."


def tree(tmp_path: Path) -> tuple[Path, Path]:
    """~/.config (XDG) and a repository with a nested workspace, each with an AGENTS.md."""
    config = tmp_path / "config" / "gemma-agent"
    config.mkdir(parents=True)
    (config / "AGENTS.md").write_text("USER: answer in English.\n")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "AGENTS.md").write_text("ROOT: tests live in tests/.\n")
    ws = repo / "pkg" / "sub"
    ws.mkdir(parents=True)
    (repo / "pkg" / "AGENTS.md").write_text("PKG: use ruff.\n")
    (ws / "AGENTS.md").write_text("SUB: no prints.\n")
    (ws / "deeper").mkdir()
    (ws / "deeper" / "AGENTS.md").write_text("DEEPER: not read up front.\n")
    return config, ws


def skill(folder: Path, name: str, text: str) -> None:
    (folder / name).mkdir(parents=True)
    (folder / name / "SKILL.md").write_text(text)
    (folder / name / "helper.sh").write_text("echo hi\n")


def test_memory_is_hierarchical_general_first(tmp_path: Path) -> None:
    config, ws = tree(tmp_path)
    assert repository_root(ws) == tmp_path / "repo"
    files, notices = load_memory(memory_paths(ws, config.parent / "gemma-agent"))
    assert [f.text.split(":")[0] for f in files] == ["USER", "ROOT", "PKG", "SUB"]
    assert [f.scope for f in files] == ["user", "project", "project", "project"]
    assert notices == []


def test_without_a_repository_only_the_workspace_is_read(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("ABOVE\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "AGENTS.md").write_text("HERE\n")
    ctx = project_context(ws, skills=False, config_dir=tmp_path / "nocfg")
    assert [m.text for m in ctx.memory] == ["HERE\n"]


def test_the_cap_cuts_the_general_files_first_and_says_so(tmp_path: Path) -> None:
    config, ws = tree(tmp_path)
    (config / "AGENTS.md").write_text("U" * 500)
    ctx = project_context(ws, skills=False, config_dir=config, memory_cap=100)
    assert [m.cut for m in ctx.memory] == [True, False, False, False]
    assert "[… cut:" in ctx.memory[0].text and ctx.memory[0].size == 500
    assert any("was cut to" in n for n in ctx.notices)
    assert "SUB: no prints." in (ctx.system_text(None) or "")


async def test_memory_goes_into_the_system_turn(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    config, ws = tree(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config.parent))
    engine = ScriptedEngine(["ok"])
    agent = Agent(engine=engine, workspace=ws, memory=True, instructions="Be brief.", persist=False)
    await agent.run("hi")
    prompt = engine.requests[0].prompt_text
    system = prompt.split("<turn|>")[0]
    order = [system.index(k) for k in ("Be brief.", "USER:", "ROOT:", "PKG:", "SUB:")]
    assert order == sorted(order)
    assert "DEEPER" not in prompt
    # memory=False (the SDK's default) and a list of paths
    engine2 = ScriptedEngine(["ok"])
    await Agent(engine=engine2, workspace=ws, persist=False).run("hi")
    assert "SUB:" not in engine2.requests[0].prompt_text
    engine3 = ScriptedEngine(["ok"])
    await Agent(engine=engine3, workspace=ws, memory=["deeper/AGENTS.md"], persist=False).run("hi")
    assert (
        "DEEPER" in engine3.requests[0].prompt_text
        and "SUB:" not in engine3.requests[0].prompt_text
    )
    with pytest.raises(ConfigError, match="no such file"):
        Agent(engine=ScriptedEngine(), workspace=ws, memory=["missing.md"])


def test_front_matter() -> None:
    meta, body = parse_front_matter(
        "---\nname: release\ndescription: >\n  Write the\n  release notes.\n"
        "allowed-tools: [read_file, grep]\nthinking: true\n---\nBody\n"
    )
    assert meta == {
        "name": "release",
        "description": "Write the release notes.",
        "allowed-tools": ["read_file", "grep"],
        "thinking": True,
    }
    assert body.strip() == "Body"
    with pytest.raises(ValueError, match="not closed"):
        parse_front_matter("---\nname: x\n")


async def test_a_skill_body_is_absent_until_loaded(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    ws = tmp_path / "ws"
    skills = ws / ".gemma-agent" / "skills"
    skill(
        skills, "release", f"---\nname: release\ndescription: Write release notes.\n---\n{BODY}\n"
    )
    skill(skills, "broken", "---\nname: broken\n---\n")  # no description, no body
    user_skills = tmp_path / "config" / "gemma-agent" / "skills"
    skill(user_skills, "release", "---\nname: release\ndescription: USER VERSION\n---\nuser body\n")
    load = '<|tool_call>call:skill{name:<|"|>release<|"|>}<tool_call|>'  # `name` clashes
    engine = ScriptedEngine([load, "Done."])
    agent = Agent(engine=engine, workspace=ws, skills=True, persist=False)
    events = [e async for e in agent.stream("write the release notes")]
    first, second = engine.requests[0].prompt_text, engine.requests[1].prompt_text
    assert "- release: Write release notes." in first and "USER VERSION" not in first
    assert BODY not in first and "broken" not in first.split("<|tool>")[0]
    assert BODY in second  # loaded by the skill tool
    result = next(e for e in events if isinstance(e, ToolCallFinished)).result
    assert not result.is_error and "helper.sh" in str(result.content)
    assert any(isinstance(e, Notice) and "broken" in e.message for e in events)
    ctx = agent.project_context
    assert [s.name for s in ctx.skills] == ["release", "broken"]
    assert ctx.skills[1].error is not None and "description" in ctx.skills[1].error
    # The skill tool is read-only: plan mode may load skills.
    assert agent.registry.get("skill").read_only  # type: ignore[union-attr]
