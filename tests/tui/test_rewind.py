"""`/rewind` in the TUI under Pilot on the real Agent: Esc Esc on an empty prompt opens the
picker, the preview shows the diff, the choice restores files and conversation, undo works."""

from __future__ import annotations

from pathlib import Path

from gemma_agent.tui.blocks import NoticeBlock, UserBlock
from gemma_agent.tui.rewind import RewindConfirm, RewindPicker

from .harness import call, make_app, send, wait_for, wait_idle

SIZE = (110, 40)


def text(path: Path) -> str | None:
    """The file's text; None while it is missing (git replaces files it restores)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


async def test_esc_esc_rewinds_code_and_conversation_and_undo(tmp_path: Path) -> None:
    outputs = [call("write_file", path="made.txt", content="by the agent\n"), "Written."]
    app, _ = make_app(tmp_path, outputs, thinking=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.backend is not None)
        await send(pilot, "make the file")
        await wait_idle(pilot)
        assert (tmp_path / "made.txt").exists()
        await pilot.press("escape")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RewindPicker))
        assert [p.title for p in app.screen.points] == ["make the file"]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RewindConfirm))
        plan = app.screen.plan
        assert [(c.path, c.status) for c in plan.changes] == [("made.txt", "remove")]
        assert "-by the agent" in plan.diff
        await pilot.press("b")
        await wait_for(pilot, lambda: not (tmp_path / "made.txt").exists())
        await wait_for(pilot, lambda: app.prompt.text == "make the file")
        assert not [b for b in app.blocks() if isinstance(b, UserBlock)]  # conversation cut
        assert app.backend is not None and app.backend.session_id is not None
        app.prompt.clear()
        await send(pilot, "/rewind undo")
        await wait_for(pilot, lambda: (tmp_path / "made.txt").exists())
        await wait_for(pilot, lambda: any(isinstance(b, UserBlock) for b in app.blocks()))
        messages = [b.message for b in app.blocks() if isinstance(b, NoticeBlock)]
        assert "The last rewind was undone." in messages


async def test_rewind_code_only_keeps_the_transcript(tmp_path: Path) -> None:
    outputs = [call("write_file", path="notes.txt", content="changed\n"), "Changed."]
    app, _ = make_app(tmp_path, outputs, thinking=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.backend is not None)
        await send(pilot, "change the notes")
        await wait_idle(pilot)
        assert (tmp_path / "notes.txt").read_text() == "changed\n"
        await send(pilot, "/rewind")
        await wait_for(pilot, lambda: isinstance(app.screen, RewindPicker))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RewindConfirm))
        await pilot.press("c")
        await wait_for(pilot, lambda: text(tmp_path / "notes.txt") == "hello\n")
        await wait_for(pilot, lambda: any(isinstance(b, UserBlock) for b in app.blocks()))
        assert app.prompt.text == ""
