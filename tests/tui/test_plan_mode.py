"""Plan mode in the TUI: Shift+Tab cycles into it, the plan shows, /accept carries it out."""

from __future__ import annotations

from pathlib import Path

from gemma_agent.agent.messages import UserMessage
from gemma_agent.tui.blocks import NoticeBlock

from .harness import call, make_app, send, wait_idle

SIZE = (110, 40)
PLAN = call("update_plan", items=[{"text": "rewrite notes.txt"}])


async def test_shift_tab_into_plan_mode_then_accept_the_plan(tmp_path: Path) -> None:
    outputs = [
        call("write_file", path="notes.txt", content="bye\n"),  # refused: plan mode
        PLAN,
        "The plan: rewrite notes.txt.",
        call("write_file", path="notes.txt", content="bye\n"),  # after /accept: runs
        "Done.",
    ]
    app, engine = make_app(tmp_path, outputs, approval="auto", thinking=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("shift+tab")  # auto -> yolo
        await pilot.press("shift+tab")  # yolo -> plan
        assert app.plan_mode and app.status.info.approval == "plan"
        await send(pilot, "change notes.txt")
        await wait_idle(pilot)
        assert (tmp_path / "notes.txt").read_text() == "hello\n"  # nothing written
        assert "[agent] Plan mode" in engine.requests[0].prompt_text
        assert "Plan mode: write_file is not available" in engine.requests[1].prompt_text
        text = app.rendered_text()
        assert "Plan ready" in text and "[ ] rewrite notes.txt" in text and "/accept" in text
        assert app.plan.display  # the plan panel shows it too
        await send(pilot, "/accept")
        await wait_idle(pilot)
        assert not app.plan_mode and app.status.info.approval == "yolo"  # back where it was
        assert (tmp_path / "notes.txt").read_text() == "bye\n"
        pinned = [m for m in app.backend.agent.history() if isinstance(m, UserMessage)]  # type: ignore[union-attr]
        assert any(
            "Plan mode is over" in m.content and "rewrite notes.txt" in m.content for m in pinned
        )
        engine.assert_complete()


async def test_accept_outside_plan_mode_says_so(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, [])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/accept")
        last = [b for b in app.blocks() if isinstance(b, NoticeBlock)][-1]
        assert "Not in plan mode" in last.message
