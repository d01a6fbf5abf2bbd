"""Custom slash commands (agent/commands.py) on real folder trees; a run's ``allowed_tools``
(the grammar and the refusal); nested AGENTS.md given once per folder after a tool result."""

from __future__ import annotations

from pathlib import Path

import pytest
from gemma_agent import Agent, ScriptedEngine
from gemma_agent.agent import discover_commands, expand_command
from gemma_agent.agent.commands import expand_arguments
from gemma_agent.agent.context import NestedMemory
from gemma_agent.agent.events import Notice, ToolCallFinished
from gemma_agent.tools.builtin import coding_tools

from .helpers import call
from .test_plan_mode import _rule_names


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home / "gemma-agent"


def test_discovery_names_scopes_shadowing_and_errors(tmp_path: Path, config: Path) -> None:
    ws = tmp_path / "ws"
    project = ws / ".gemma-agent" / "commands"
    write(
        project / "review.md",
        "---\ndescription: Review a file\nargument-hint: FILE [focus]\nthinking: off\n"
        "allowed-tools: Read, Grep, Bash(git diff:*)\n---\nReview $1, focus on $2.\n",
    )
    write(project / "frontend" / "build.md", "# Build the frontend\nRun the build for $ARGUMENTS")
    write(project / "help.md", "---\ndescription: mine\n---\nHelp me.")
    write(project / "broken.md", "---\ndescription: x\n")  # front matter never closed
    write(project / "empty.md", "---\ndescription: nothing\n---\n")
    write(config / "commands" / "review.md", "---\ndescription: the user's\n---\nUser review.")
    write(config / "commands" / "standup.md", "Write my standup notes.")

    found = {(c.name, c.scope): c for c in discover_commands(ws, reserved=["help", "clear"])}
    review = found["review", "project"]
    assert review.usable and review.description == "Review a file"
    assert review.argument_hint == "FILE [focus]" and review.thinking is False
    assert review.allowed_tools == ("read_file", "grep", "run_shell")  # Claude Code's names
    assert found["review", "user"].hidden_by == "the project command /review"
    build = found["frontend:build", "project"]
    assert build.usable and build.description == "Build the frontend" and build.takes_arguments
    assert found["standup", "user"].usable and not found["standup", "user"].takes_arguments
    assert found["help", "project"].hidden_by == "the built-in /help"
    assert "not closed" in (found["broken", "project"].error or "")
    assert "no text" in (found["empty", "project"].error or "")
    usable = [c.name for c in discover_commands(ws, reserved=["help"]) if c.usable]
    assert usable == ["frontend:build", "review", "standup"]  # usable first, sorted

    prompt = expand_command('/review "src/a b.py" speed', ws)
    assert prompt is not None
    assert prompt.text == "Review src/a b.py, focus on speed."
    assert prompt.thinking is False and prompt.allowed_tools == ("read_file", "grep", "run_shell")
    assert prompt.typed == '/review "src/a b.py" speed'
    assert expand_command("/nothing here", ws) is None
    assert expand_command("//review", ws) is None
    assert expand_command("/standup", ws) is not None


def test_expand_arguments() -> None:
    assert expand_arguments("Fix $ARGUMENTS now", "issue 12") == "Fix issue 12 now"
    assert expand_arguments("$1-$2-$3", "a 'b c'") == "a-b c-"
    assert expand_arguments("No placeholder.", "extra words") == "No placeholder.\n\nextra words"
    assert expand_arguments("No placeholder.", "") == "No placeholder."
    assert expand_arguments("$1", "'unclosed") == "'unclosed"


def agent_for(tmp_path: Path, outputs: list[str], **kw: object) -> tuple[Agent, ScriptedEngine]:
    engine = ScriptedEngine(outputs, supports_grammar=bool(kw.pop("grammar", False)))
    agent = Agent(
        engine=engine,
        tools=coding_tools(sandbox="none"),
        workspace=tmp_path,
        approval="yolo",
        persist=False,
        **kw,  # type: ignore[arg-type]
    )
    return agent, engine


async def test_allowed_tools_constrain_the_grammar_for_that_run_only(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a\n")
    agent, engine = agent_for(
        tmp_path, [call("read_file", path="a.txt"), "ok", "second"], grammar=True
    )
    events = [e async for e in agent.stream("review", allowed_tools=["read_file", "grep", "Nope"])]
    grammar = engine.requests[0].request.grammar
    assert grammar is not None and _rule_names(grammar) == {"read_file", "grep"}
    assert any(isinstance(e, Notice) and "Nope" in e.message for e in events)
    # The declarations (system turn) are those of every tool: the prefix cache stays hot.
    assert "declaration:write_file" in engine.requests[0].prompt_text
    await agent.run("next", session_id=agent.session_id)
    assert engine.requests[-1].request.grammar is None  # the next run is not restricted


async def test_a_call_outside_allowed_tools_is_refused_without_a_grammar(tmp_path: Path) -> None:
    outputs = [call("write_file", path="x.txt", content="no"), "I may only read."]
    agent, engine = agent_for(tmp_path, outputs)
    events = [e async for e in agent.stream("write x", allowed_tools=["read_file"])]
    engine.assert_complete()
    assert not (tmp_path / "x.txt").exists()
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert finished.result.is_error and "allows only read_file" in str(finished.result.content)


async def test_nested_agents_md_is_given_once_after_the_first_call_there(
    tmp_path: Path, config: Path
) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "AGENTS.md", "Root rule.")
    write(tmp_path / "pkg" / "AGENTS.md", "Package rule: use tabs.")
    write(tmp_path / "pkg" / "deep" / "AGENTS.md", "Deep rule.")
    write(tmp_path / "pkg" / "deep" / "m.py", "x = 1\n")
    write(tmp_path / "pkg" / "n.py", "y = 2\n")
    write(tmp_path / "other" / "o.py", "z = 3\n")
    outputs = [
        call("read_file", path="other/o.py"),  # a folder without AGENTS.md
        call("read_file", path="pkg/deep/m.py"),  # pkg/ and pkg/deep/ both
        call("read_file", path="pkg/n.py"),  # already given: nothing more
        call("run_shell", command="cd pkg/deep && ls"),
        "done",
    ]
    agent, engine = agent_for(tmp_path, outputs, memory=True)
    events = [e async for e in agent.stream("look around")]
    engine.assert_complete()
    system = engine.requests[0].prompt_text.split("<turn|>")[0]
    assert "Root rule." in system and "Package rule" not in system
    for request in engine.requests[1:]:  # the system turn never changes: a hot prefix
        assert request.prompt_text.startswith(system)
    assert "Package rule" not in engine.requests[1].prompt_text
    last = engine.requests[-1].prompt_text
    assert last.count("Package rule: use tabs.") == 1 and last.count("Deep rule.") == 1
    assert last.index("Package rule") < last.index("Deep rule.")
    notes = [e.message for e in events if isinstance(e, Notice)]
    assert notes == [
        f"loaded {Path('pkg/AGENTS.md')} (23 characters)",
        f"loaded {Path('pkg/deep/AGENTS.md')} (10 characters)",
    ]
    # Each request after a tool round is an exact append of the one before.
    for before, after in zip(engine.requests[1:], engine.requests[2:], strict=False):
        assert after.prompt_text.startswith(before.prompt_text.rsplit("<|tool_response>", 1)[0])


async def test_nested_memory_off_without_memory_and_capped(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "AGENTS.md", "Package rule.")
    agent, engine = agent_for(tmp_path, [call("list_dir", path="pkg"), "done"])
    events = [e async for e in agent.stream("look")]  # memory=False (the SDK default)
    assert "Package rule" not in engine.requests[-1].prompt_text
    assert not [e for e in events if isinstance(e, Notice)]

    write(tmp_path / "a" / "AGENTS.md", "A" * 30)
    write(tmp_path / "b" / "AGENTS.md", "B" * 30)
    nested = NestedMemory(tmp_path, cap=40)
    text, notes = nested.for_call({"path": "a"}) or ("", [])
    assert "A" * 30 in text and notes == [f"loaded {Path('a/AGENTS.md')} (30 characters)"]
    text, notes = nested.for_call({"path": "b/x.py"}) or ("", [])
    assert "B" * 10 + "\n[… cut: 20 more characters not loaded]" in text
    assert "cut to the memory cap" in notes[0]
    write(tmp_path / "c" / "AGENTS.md", "C")
    text, notes = nested.for_call({"path": "c"}) or ("", [])
    assert "was not loaded" in text and "cap is used" in notes[0]
    assert nested.for_call({"path": "c"}) is None  # once per folder
    assert nested.for_call({"path": "../elsewhere"}) is None  # outside the workspace
