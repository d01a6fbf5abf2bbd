"""Slash commands, completion, keys, config, resume and export on the real Agent."""

from __future__ import annotations

from pathlib import Path

import pytest
from gemma_agent.agent.compaction import ClearOldToolResults
from gemma_agent.errors import ConfigError
from gemma_agent.tui.blocks import AnswerBlock, CompactionMarker, NoticeBlock, ToolCard, UserBlock
from gemma_agent.tui.chrome import CommandMenu
from gemma_agent.tui.commands import complete, parse_command
from gemma_agent.tui.config import TuiSettings, load_settings
from gemma_agent.tui.screens import SessionPicker

from .harness import (
    THINK_ANSWER,
    THINK_TWO_CALLS,
    call,
    make_app,
    send,
    type_text,
    wait_for,
    wait_idle,
)

SIZE = (110, 40)


def notices(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.message for b in app.blocks() if isinstance(b, NoticeBlock)]


async def test_help_think_approval_plan_tools_model(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, [])
    async with app.run_test(size=SIZE) as pilot:
        backend = app.backend
        assert backend is not None
        await send(pilot, "/help")
        assert "/undo-compact" in notices(app)[-1]
        await send(pilot, "/think off")
        assert backend.thinking is False and app.status.info.thinking is False
        await send(pilot, "/think budget 256")
        assert backend.thinking is True and backend.thinking_budget == 256
        assert app.status.info.thinking_budget == 256
        assert backend.agent.thinking_budget.routine == 256  # type: ignore[attr-defined]
        await send(pilot, "/approval yolo")
        assert backend.agent.policy.mode == "yolo"  # type: ignore[attr-defined]
        assert app.status.info.approval == "yolo"
        await send(pilot, "/approval sometimes")
        assert "Usage: /approval" in notices(app)[-1]
        await pilot.press("shift+tab")  # yolo -> plan
        assert app.plan_mode and app.status.info.approval == "plan"
        await pilot.press("shift+tab")  # plan -> read-only
        assert not app.plan_mode
        assert backend.agent.policy.mode == "read-only"  # type: ignore[attr-defined]
        await send(pilot, "/plan")
        assert app.plan.display
        await send(pilot, "/plan")
        assert not app.plan.display
        await send(pilot, "/tools")
        assert "edit_file" in notices(app)[-1] and "run_shell" in notices(app)[-1]
        await send(pilot, "/model")
        assert "scripted" in notices(app)[-1] and "E4B" in notices(app)[-1]
        await send(pilot, "/frobnicate")
        assert "Unknown command /frobnicate" in notices(app)[-1]


async def test_completion_menu_and_tab(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, [])
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "/he")
        menu = app.query_one(CommandMenu)
        assert menu.display and [c.name for c in menu.matches] == ["help"]
        await pilot.press("tab")  # completes and runs a command without arguments
        await pilot.pause()
        assert "/undo-compact" in notices(app)[-1]
        assert not menu.display
        await type_text(pilot, "/th")
        await pilot.press("tab")  # takes arguments: completes to "/think "
        assert app.prompt.text == "/think "
    assert [c.name for c in complete("/u")] == ["undo-compact"]
    assert parse_command("/compact keep the API") is not None
    assert parse_command("//not a command") is None


async def test_input_history_and_multiline(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, ["One.", "Two."], thinking=False)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "line one")
        await pilot.press("ctrl+j")
        await type_text(pilot, "line two")
        assert app.prompt.text == "line one\nline two"
        await pilot.press("enter")
        await wait_idle(pilot)
        user = next(b for b in app.blocks() if isinstance(b, UserBlock))
        assert user.text == "line one\nline two"
        await send(pilot, "second")
        await wait_idle(pilot)
        await pilot.press("up")
        assert app.prompt.text == "second"
        await pilot.press("up")
        assert app.prompt.text == "line one\nline two"


async def test_compact_and_undo_compact(tmp_path: Path) -> None:
    compactor = ClearOldToolResults(keep_turns=0, min_tokens=0)
    app, _ = make_app(tmp_path, [THINK_TWO_CALLS, THINK_ANSWER], compactor=compactor)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/compact")
        await wait_for(pilot, lambda: notices(app))
        assert "Nothing to compact yet" in notices(app)[-1]
        (tmp_path / "notes.txt").write_text("hello there\n" * 200)  # worth clearing
        await send(pilot, "look")
        await wait_idle(pilot)
        await send(pilot, "/compact")
        await wait_for(pilot, lambda: any(isinstance(b, CompactionMarker) for b in app.blocks()))
        marker = next(b for b in app.blocks() if isinstance(b, CompactionMarker))
        assert marker.event.tier == "clear_tool_results"
        card_ids = {b.call.id for b in app.blocks() if isinstance(b, ToolCard)}
        assert marker.event.dropped and {d.id for d in marker.event.dropped} <= card_ids
        assert marker.event.tokens_after < marker.event.tokens_before
        app.open_block(marker)
        await pilot.pause()
        assert marker.event.dropped[0].description in app.rendered_text()
        await send(pilot, "/undo-compact")
        await wait_for(pilot, lambda: marker.undone and "undone" in notices(app)[-1])
        await send(pilot, "/undo-compact")
        await wait_for(pilot, lambda: "No compaction to undo." in notices(app))


async def test_resume_flag_and_session_picker(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, [THINK_TWO_CALLS, THINK_ANSWER])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What is in this folder?")
        await wait_idle(pilot)
        assert app.backend is not None
        session_id = app.backend.session_id
        await send(pilot, "/save")
        assert f"gemma-agent --resume {session_id}" in notices(app)[-1]
    assert session_id is not None

    # --resume ID: the saved conversation is shown and the next task continues it.
    app2, engine2 = make_app(tmp_path, ["Still one file."], resume=session_id, thinking=False)
    async with app2.run_test(size=SIZE) as pilot:
        await pilot.pause()
        kinds = [type(b).__name__ for b in app2.blocks()]
        assert kinds[:6] == [
            "UserBlock",
            "ThinkingBlock",
            "ToolCard",
            "ToolCard",
            "ThinkingBlock",
            "AnswerBlock",
        ]
        cards = [b for b in app2.blocks() if isinstance(b, ToolCard)]
        assert all(c.status == "done" for c in cards)
        await send(pilot, "and now?")
        await wait_idle(pilot)
        assert "What is in this folder?" in engine2.requests[0].prompt_text
        assert [b for b in app2.blocks() if isinstance(b, AnswerBlock)][
            -1
        ].text == "Still one file."

    # The picker lists the session; Enter resumes it.
    app3, _ = make_app(tmp_path, [], thinking=False)
    async with app3.run_test(size=SIZE) as pilot:
        await send(pilot, "/sessions")
        await wait_for(pilot, lambda: isinstance(app3.screen, SessionPicker))
        assert any(s.session_id == session_id for s in app3.screen.sessions)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(isinstance(b, UserBlock) for b in app3.blocks()))
        assert app3.backend is not None and app3.backend.session_id == session_id
        assert f"Resumed session {session_id}" in notices(app3)[-1]
        await send(pilot, "/resume no-such-session")
        assert "No session log" in notices(app3)[-1]


async def test_clear_and_export(tmp_path: Path) -> None:
    write = call("write_file", path="a.txt", content="x\n")
    app, _ = make_app(tmp_path, [write, "Wrote it."], thinking=False)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "write a.txt")
        await wait_idle(pilot)
        await send(pilot, "/export out/transcript.md")
        text = (tmp_path / "out" / "transcript.md").read_text()
        assert "## User\n\nwrite a.txt" in text
        assert "**Tool `write_file`** (done)" in text and "Wrote it." in text
        assert "Created a.txt" in text
        first = app.backend.session_id if app.backend else None
        await send(pilot, "/clear")
        assert [type(b).__name__ for b in app.blocks()] == ["NoticeBlock"]
        assert app.backend is not None and app.backend.session_id is None and first


def test_config_files_and_flags(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text(
        'model = "gemma-4-31B"\napproval = "auto"\ntheme = "nord"\n[thinking]\nenabled = true\ndisplay = "full"\n'
    )
    project = tmp_path / "ws" / ".gemma-agent" / "config.toml"
    project.parent.mkdir(parents=True)
    project.write_text('approval = "read-only"\nthinking_budget = 512\n')
    settings = load_settings(
        tmp_path / "ws", user_path=user, overrides={"approval": "yolo", "model": None}
    )
    assert settings == TuiSettings(
        model="gemma-4-31B",
        thinking=True,
        thinking_budget=512,
        thinking_display="full",
        approval="yolo",
        theme="nord",
    )
    project.write_text('approval = "sometimes"\n')
    with pytest.raises(ConfigError, match="approval"):
        load_settings(tmp_path / "ws", user_path=user)
    project.write_text("colour = 1\n")
    with pytest.raises(ConfigError, match="unknown key `colour`"):
        load_settings(tmp_path / "ws", user_path=user)
    project.write_text("not toml [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path / "ws", user_path=user)
