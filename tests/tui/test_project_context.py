"""/memory, /skills and /init in the TUI on the real Agent (ScriptedEngine)."""

from __future__ import annotations

from pathlib import Path

from gemma_agent.agent.agent import Agent
from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.tools.builtin import coding_tools
from gemma_agent.tui.app import INIT_TASK, GemmaApp
from gemma_agent.tui.backend import AgentBackend
from gemma_agent.tui.blocks import NoticeBlock
from gemma_agent.tui.config import TuiSettings

from .harness import call, fixed_clock, send, wait_idle

SIZE = (110, 40)


def app_for(tmp_path: Path, outputs: list[str]) -> tuple[GemmaApp, ScriptedEngine]:
    engine = ScriptedEngine(outputs)
    agent = Agent(
        engine=engine,
        tools=coding_tools(sandbox="none"),
        workspace=tmp_path,
        approval="yolo",
        sessions_dir=tmp_path / ".sessions",
        fsync=False,
        memory=True,
        skills=True,
    )
    app = GemmaApp(
        backend=AgentBackend(agent), settings=TuiSettings(), workspace=tmp_path, clock=fixed_clock
    )
    return app, engine


def last_notice(app: GemmaApp) -> str:
    return [b.message for b in app.blocks() if isinstance(b, NoticeBlock)][-1]


async def test_memory_skills_and_init(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / ".gemma-agent" / "skills" / "lint").mkdir(parents=True)
    (tmp_path / ".gemma-agent" / "skills" / "lint" / "SKILL.md").write_text(
        "---\nname: lint\ndescription: Run the linters.\n---\nRun ruff.\n"
    )
    (tmp_path / ".gemma-agent" / "skills" / "bad").mkdir()
    (tmp_path / ".gemma-agent" / "skills" / "bad" / "SKILL.md").write_text("---\nname: [\n")
    written = call("write_file", path="AGENTS.md", content="# Conventions\nUse tabs.\n")
    app, engine = app_for(tmp_path, [written, "Wrote AGENTS.md.", "ok"])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/memory")
        assert "No AGENTS.md memory" in last_notice(app)
        await send(pilot, "/skills")
        text = last_notice(app)
        assert "**lint** — Run the linters." in text and "⚠" in text and "bad" in text
        await send(pilot, "/init")
        await wait_idle(pilot)
        assert engine.requests[0].prompt_text.count(INIT_TASK) == 1
        assert (tmp_path / "AGENTS.md").read_text().startswith("# Conventions")
        await send(pilot, "/memory")  # read again: the new file is loaded
        assert "AGENTS.md` (project" in last_notice(app)
        await send(pilot, "/clear")
        await send(pilot, "hello")
        await wait_idle(pilot)
        assert "Use tabs." in engine.requests[-1].prompt_text.split("<turn|>")[0]
