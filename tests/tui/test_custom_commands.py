"""Custom slash commands in the TUI (Pilot, the real Agent on ScriptedEngine): completion with
descriptions, arguments filled in, per-message thinking and tools, /commands with the hidden and
malformed files; and the notice when a skill is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from gemma_agent.agent.agent import Agent
from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.tools.builtin import coding_tools
from gemma_agent.tui.app import GemmaApp
from gemma_agent.tui.backend import AgentBackend
from gemma_agent.tui.blocks import NoticeBlock, UserBlock
from gemma_agent.tui.chrome import CommandMenu
from gemma_agent.tui.config import TuiSettings

from .harness import fixed_clock, send, type_text, wait_idle

SIZE = (120, 40)
LOAD_LINT = '<|tool_call>call:skill{name:<|"|>lint<|"|>}<tool_call|>'  # `name` clashes in call()


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def app_for(
    tmp_path: Path, outputs: list[str], grammar: bool = False
) -> tuple[GemmaApp, ScriptedEngine]:
    engine = ScriptedEngine(outputs, supports_grammar=grammar)
    agent = Agent(
        engine=engine,
        tools=coding_tools(sandbox="none"),
        workspace=tmp_path,
        approval="yolo",
        thinking=True,
        sessions_dir=tmp_path / ".sessions",
        fsync=False,
        memory=True,
        skills=True,
    )
    app = GemmaApp(
        backend=AgentBackend(agent),
        settings=TuiSettings(thinking=True),
        workspace=tmp_path,
        clock=fixed_clock,
    )
    return app, engine


def notices(app: GemmaApp) -> list[str]:
    return [b.message for b in app.blocks() if isinstance(b, NoticeBlock)]


@pytest.fixture
def commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    project = tmp_path / ".gemma-agent" / "commands"
    write(
        project / "review.md",
        "---\ndescription: Review a file for bugs\nargument-hint: FILE [focus]\n"
        "thinking: off\nallowed-tools: [read_file, grep]\n---\nReview $1 with a focus on $2.\n",
    )
    write(
        project / "frontend" / "build.md", "---\ndescription: Build the UI\n---\nBuild $ARGUMENTS"
    )
    write(project / "help.md", "My own help.")  # a built-in name: the built-in wins, said so
    write(project / "bad.md", "---\ndescription: [unclosed\n")
    write(config / "gemma-agent" / "commands" / "review.md", "User review of $ARGUMENTS.")
    return project


async def test_completion_and_sending_a_command(tmp_path: Path, commands: Path) -> None:
    app, engine = app_for(tmp_path, ["Reviewed.", "Built.", "plain"], grammar=True)
    async with app.run_test(size=SIZE) as pilot:
        said = notices(app)
        assert any("help.md is not used: /help is the built-in /help" in n for n in said)
        assert any("bad.md" in n and "cannot be used" in n for n in said)

        await type_text(pilot, "/rev")
        menu = app.query_one(CommandMenu)
        assert menu.display and [c.name for c in menu.matches] == ["review"]
        entry = menu.matches[0]
        assert entry.usage == "FILE [focus]"
        assert (
            "Review a file for bugs" in entry.help and "overrides the user's /review" in entry.help
        )
        await pilot.press("tab")  # completes the name, waits for the arguments
        assert app.prompt.text == "/review "
        await type_text(pilot, "app.py speed")
        await pilot.press("enter")
        await wait_idle(pilot)
        request = engine.requests[0]
        assert "Review app.py with a focus on speed." in request.prompt_text
        assert "$1" not in request.prompt_text
        users = [b for b in app.blocks() if isinstance(b, UserBlock)]
        assert users[-1].text == "/review app.py speed"  # shown as typed
        grammar = request.request.grammar
        assert grammar is not None and "read_file" in grammar and "write_file" not in grammar
        assert "<|think|>" not in request.prompt_text  # thinking: off for this message
        assert app.backend is not None and app.backend.thinking  # and back on after it

        await send(pilot, "/frontend:build --prod now")
        await wait_idle(pilot)
        assert "Build --prod now" in engine.requests[1].prompt_text
        assert engine.requests[1].request.grammar is None  # no restriction here

        await send(pilot, "/commands")
        listing = notices(app)[-1]
        assert "`/review FILE [focus]` — Review a file for bugs (project, overrides" in listing
        assert "hidden by the project command /review" in listing
        assert "hidden by the built-in /help" in listing
        assert "⚠ `/bad`" in listing
        assert "`/frontend:build` — Build the UI" in listing

        await send(pilot, "/nosuch thing")
        assert "Unknown command /nosuch" in notices(app)[-1]
        assert len(engine.requests) == 2

        await send(pilot, "/help")
        custom = notices(app)[-1].split("**Custom commands**")[1]
        assert "`/review FILE [focus]` — Review a file for bugs" in custom
        assert "`/frontend:build [arguments]` — Build the UI" in custom and "/bad" not in custom


async def test_a_command_file_added_later_is_found(tmp_path: Path, commands: Path) -> None:
    app, engine = app_for(tmp_path, ["Done."])
    async with app.run_test(size=SIZE) as pilot:
        write(commands / "later.md", "Later: $ARGUMENTS")
        await send(pilot, "/later one")
        await wait_idle(pilot)
        assert "Later: one" in engine.requests[0].prompt_text


async def test_a_loaded_skill_is_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    write(
        tmp_path / ".gemma-agent" / "skills" / "lint" / "SKILL.md",
        "---\nname: lint\ndescription: Run the linters.\n---\nRun ruff check.\n",
    )
    app, _engine = app_for(tmp_path, [LOAD_LINT, "Linted."])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "lint it")
        await wait_idle(pilot)
        assert any(n.startswith("📘 Skill loaded: lint") for n in notices(app))
