"""The archive of settled blocks: lazy rendering of a long resumed history, keyboard access."""

from __future__ import annotations

from pathlib import Path

from gemma_agent.agent.messages import Message, ModelTurn, ToolCall, ToolResult, UserMessage
from gemma_agent.tui.archive import Archive
from gemma_agent.tui.blocks import ThinkingBlock, ToolCard
from gemma_agent.tui.chrome import PromptInput

from .harness import THINK_ANSWER, THINK_TWO_CALLS, make_app, send, wait_idle

SIZE = (100, 30)


def long_history(turns: int) -> list[Message]:
    out: list[Message] = []
    for i in range(turns):
        out.append(UserMessage(content=f"question {i}"))
        call = ToolCall(id=f"c{i}", name="read_file", arguments={"path": f"m{i}.py"})
        result = ToolResult(call_id=call.id, name="read_file", content=f"x = {i}\n")
        out.append(
            ModelTurn(
                reasoning=f"thinking about {i}\nsecond line {i}",
                text=f"Answer **{i}**.",
                tool_calls=(call,),
                tool_results=(result,),
            )
        )
    return out


async def test_long_history_renders_only_its_last_blocks(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, [])
    async with app.run_test(size=SIZE) as pilot:
        app.render_history(long_history(100))  # 400 blocks
        await pilot.pause()
        archive = app.archive
        assert len(archive.entries) == 400
        assert archive.hidden == 400 - Archive.SHOW_LAST
        # Only the shown blocks were rendered, and nothing twice (the width is stable).
        assert archive.rendered_count == Archive.SHOW_LAST
        # The newest turn is on screen, anchored at the bottom.
        transcript = app.transcript
        assert transcript.scroll_y == transcript.max_scroll_y > 0
        assert "Answer 99." in app.rendered_text()  # every block still counts for export
        top = archive.entry_at(1)

        # Scrolling up to the top brings older blocks out, and the view stays where it was.
        transcript.scroll_to(y=0, animate=False)
        await pilot.pause()
        await pilot.pause()
        assert archive.hidden == 400 - Archive.SHOW_LAST - Archive.SHOW_MORE
        assert archive.rendered_count >= Archive.SHOW_LAST + Archive.SHOW_MORE
        assert transcript.scroll_y > 0
        assert archive.entry_at(int(transcript.scroll_y) + 1) is top


async def test_header_click_and_enter_show_more(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, [])
    async with app.run_test(size=SIZE) as pilot:
        app.render_history(long_history(30))  # 120 blocks
        await pilot.pause()
        archive = app.archive
        hidden = archive.hidden
        assert hidden == 120 - Archive.SHOW_LAST
        archive.reveal()  # what a click on the header line does
        await pilot.pause()
        assert archive.hidden == max(0, hidden - Archive.SHOW_MORE)
        # Keyboard: Tab into the archive; Enter on the header line shows more.
        app.prompt.focus()
        await pilot.press("tab")
        assert app.focused is archive
        hidden = archive.hidden
        archive.selected = -1
        await pilot.press("enter")
        await pilot.pause()
        assert archive.hidden == max(0, hidden - Archive.SHOW_MORE)
        # ↑ walks up block by block; reaching the top shows what is left.
        for _ in range(300):
            if archive.selected == 1:
                break
            await pilot.press("up")
        assert archive.hidden == 0 and archive.selected == 1
        assert isinstance(archive.entries[1], ThinkingBlock)  # the oldest block that opens


async def test_tab_and_enter_open_finished_blocks(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, [THINK_TWO_CALLS, THINK_ANSWER])
    async with app.run_test(size=(110, 40)) as pilot:
        await send(pilot, "What is in this folder?")
        await wait_idle(pilot)
        archive = app.archive
        assert all(archive.holds(b) for b in app.blocks())  # every block is settled
        think1, _card1, card2, think2 = (
            b for b in app.blocks() if isinstance(b, ThinkingBlock | ToolCard)
        )
        assert isinstance(think2, ThinkingBlock) and not think2.expanded
        assert "The notes say hello" in app.rendered_text()
        # Tab from the prompt focuses the archive on the newest block that opens.
        await pilot.press("tab")
        assert app.focused is archive
        assert archive.entries[archive.selected or 0] is think2
        await pilot.press("enter")
        assert think2.expanded
        await pilot.press("enter")
        assert not think2.expanded
        # ↑ moves to the older cards; Enter expands a card's result.
        await pilot.press("up")
        assert archive.entries[archive.selected or 0] is card2
        await pilot.press("space")
        assert isinstance(card2, ToolCard) and card2.expanded
        await pilot.press("up", "up")
        assert archive.entries[archive.selected or 0] is think1
        await pilot.press("enter")
        assert isinstance(think1, ThinkingBlock) and think1.expanded
        assert "Both calls can run together" in app.rendered_text()
        # Tab past the newest block leaves the archive (back to the prompt).
        await pilot.press("tab", "tab", "tab", "tab")
        assert isinstance(app.focused, PromptInput)


async def test_click_opens_the_block_under_the_pointer(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, [THINK_TWO_CALLS, THINK_ANSWER])
    async with app.run_test(size=(110, 40)) as pilot:
        await send(pilot, "What is in this folder?")
        await wait_idle(pilot)
        archive = app.archive
        think1 = next(b for b in app.blocks() if isinstance(b, ThinkingBlock))
        index = archive.entries.index(think1)
        line = archive._starts[index - archive.hidden] + 1  # below the margin line
        # The first click also focuses the archive (which alone would select the newest block);
        # the block under the pointer is the one selected and opened.
        await pilot.click(Archive, offset=(4, line))  # the whole archive is on screen
        assert app.focused is archive and archive.selected == index
        assert isinstance(think1, ThinkingBlock) and think1.expanded
