"""Pilot tests on the real Agent + ScriptedEngine: a full turn, approvals, interrupt."""

from __future__ import annotations

from pathlib import Path

from gemma_agent.tui.blocks import AnswerBlock, NoticeBlock, ThinkingBlock, ToolCard, UserBlock
from gemma_agent.tui.screens import ApprovalScreen

from .harness import THINK_ANSWER, THINK_TWO_CALLS, call, make_app, send, wait_for, wait_idle

SIZE = (110, 40)


async def test_full_turn_thinking_two_parallel_calls_answer(tmp_path: Path) -> None:
    app, engine = make_app(tmp_path, [THINK_TWO_CALLS, THINK_ANSWER])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What is in this folder?")
        await wait_idle(pilot)
        blocks = app.blocks()
        kinds = [type(b).__name__ for b in blocks]
        assert kinds == [
            "UserBlock",
            "ThinkingBlock",
            "ToolCard",
            "ToolCard",
            "ThinkingBlock",
            "AnswerBlock",
        ], kinds
        user, think1, card1, card2, think2, answer = blocks
        assert isinstance(user, UserBlock) and user.text == "What is in this folder?"
        assert isinstance(think1, ThinkingBlock) and think1.finished
        assert think1.text.startswith("I will list the folder")
        # Collapsed to one line: first line, token count, duration.
        assert think1.summary() == (
            f"I will list the folder and read the notes. · {think1.tokens} tokens · 0.0s"
        )
        assert think1.tokens and think1.tokens > 0
        assert isinstance(card1, ToolCard) and isinstance(card2, ToolCard)
        assert (card1.call.name, card1.status) == ("list_dir", "done")
        assert (card2.call.name, card2.status) == ("read_file", "done")
        assert card2.result is not None and "hello" in str(card2.result.content)
        assert isinstance(think2, ThinkingBlock) and think2.text.startswith("The notes say hello")
        assert isinstance(answer, AnswerBlock)
        assert answer.text.startswith("The folder holds **one** file")
        # Status bar: context gauge and cache figures from the Usage events.
        info = app.status.info
        assert info.context_tokens > 0 and info.context_limit > 0
        assert info.cache_hit is not None and info.cache_hit > 0  # step 2 appends to step 1
        assert info.step == 2
    engine.assert_complete()


async def test_thinking_block_expands_on_enter_and_display_modes(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, [THINK_TWO_CALLS, THINK_ANSWER])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "go")
        await wait_idle(pilot)
        think = next(b for b in app.blocks() if isinstance(b, ThinkingBlock))
        assert not think.expanded
        assert "Both calls can run together" not in app.rendered_text()
        app.open_block(think)
        await pilot.pause()
        assert "Both calls can run together" in app.rendered_text()
        await send(pilot, "/think hidden")
        assert "I will list the folder" not in app.rendered_text()
        await send(pilot, "/think full")
        assert "Both calls can run together" in app.rendered_text()


async def test_approval_allow_runs_the_call(tmp_path: Path) -> None:
    write = call("write_file", path="out.txt", content="new text\n")
    app, engine = make_app(tmp_path, [write, "Written."], approval="ask", thinking=False)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "write the file")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        screen = app.screen
        assert isinstance(screen, ApprovalScreen)
        assert screen.call.name == "write_file"
        assert screen.diff is not None and "+new text" in screen.diff
        card = next(b for b in app.blocks() if isinstance(b, ToolCard))
        assert card.status == "approval"
        await pilot.press("y")
        await wait_idle(pilot)
        assert card.status == "done"
        assert (tmp_path / "out.txt").read_text() == "new text\n"
    engine.assert_complete()


async def test_approval_deny_keeps_the_file_untouched(tmp_path: Path) -> None:
    write = call("write_file", path="out.txt", content="new text\n")
    app, engine = make_app(tmp_path, [write, "Understood."], approval="ask", thinking=False)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "write the file")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("n")
        await wait_idle(pilot)
        card = next(b for b in app.blocks() if isinstance(b, ToolCard))
        assert card.status == "denied"
        assert card.result is not None and card.result.is_error
        assert not (tmp_path / "out.txt").exists()
        answer = next(b for b in app.blocks() if isinstance(b, AnswerBlock))
        assert answer.text == "Understood."
    # The model was told about the denial.
    assert "denied" in engine.requests[1].prompt_text


async def test_escape_interrupts_and_keeps_the_partial_turn(tmp_path: Path) -> None:
    long_thought = "<|channel>thought\n" + "step by step " * 400
    app, engine = make_app(tmp_path, [long_thought, "Second answer."], token_delay=0.005)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "think hard")
        await wait_for(pilot, lambda: any(isinstance(b, ThinkingBlock) for b in app.blocks()))
        await pilot.pause(0.2)
        await pilot.press("escape")
        await wait_idle(pilot)
        assert not app.running
        notices = [b for b in app.blocks() if isinstance(b, NoticeBlock)]
        assert any("Interrupted" in n.message for n in notices)
        think = next(b for b in app.blocks() if isinstance(b, ThinkingBlock))
        assert think.finished and 0 < len(think.text) < len("step by step " * 400)
        # The partial turn is in the history; the next task continues the session.
        backend = app.backend
        assert backend is not None and backend.session_id is not None
        history = backend.agent.history(backend.session_id)  # type: ignore[attr-defined]
        assert history[-1].role == "model" and history[-1].reasoning
        engine.token_delay = 0.0
        await send(pilot, "answer now")
        await wait_idle(pilot)
        answers = [b for b in app.blocks() if isinstance(b, AnswerBlock)]
        assert answers[-1].text == "Second answer."
        assert "think hard" in engine.requests[-1].prompt_text


async def test_engine_error_shows_a_card_not_a_traceback(tmp_path: Path) -> None:
    from gemma_agent.errors import EngineRequestFailed

    app, _ = make_app(tmp_path, [EngineRequestFailed("the GPU fell off the bus")], thinking=False)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hi")
        await wait_idle(pilot)
        errors = [b for b in app.blocks() if isinstance(b, NoticeBlock) and b.level == "error"]
        assert errors and "GPU fell off the bus" in errors[-1].message
        assert "Traceback" not in app.rendered_text()
        assert app.is_running


async def test_engine_starts_in_the_background_and_tiny_model_banner(tmp_path: Path) -> None:
    """The app is usable while the engine loads; a task typed meanwhile runs once it is up;
    the tiny random-weight model gets its "outputs are noise" banner."""
    import asyncio

    from gemma_agent.agent.engines.scripted import ScriptedEngine
    from gemma_agent.tui.app import GemmaApp
    from gemma_agent.tui.backend import AgentBackend
    from gemma_agent.tui.chrome import EngineProgress

    from .harness import make_agent

    gate = asyncio.Event()
    engine = ScriptedEngine(["noise noise"], variant="tiny")

    async def start() -> AgentBackend:
        await gate.wait()
        agent, _ = make_agent(tmp_path, [], engine=engine, thinking=False)
        return AgentBackend(agent)

    app = GemmaApp(backend_factory=start, workspace=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        progress = app.query_one(EngineProgress)
        assert progress.display and "Starting the engine" in progress.what
        await send(pilot, "hello")
        assert app.queue == ["hello"]
        gate.set()
        await wait_for(pilot, lambda: app.backend is not None)
        await wait_idle(pilot)
        assert not progress.display
        banner = next(
            b for b in app.blocks() if isinstance(b, NoticeBlock) and b.has_class("-banner")
        )
        assert "outputs are noise" in banner.message
        answer = next(b for b in app.blocks() if isinstance(b, AnswerBlock))
        assert answer.text == "noise noise"
    engine.assert_complete()


async def test_engine_start_failure_is_a_readable_card(tmp_path: Path) -> None:
    from gemma_agent.errors import EngineUnavailable
    from gemma_agent.tui.app import GemmaApp

    async def start() -> object:
        raise EngineUnavailable("vLLM is not installed: pip install 'gemma-agent[vllm]'")

    app = GemmaApp(backend_factory=start, workspace=tmp_path)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine_error is not None)
        card = next(b for b in app.blocks() if isinstance(b, NoticeBlock) and b.level == "error")
        assert "vLLM is not installed" in card.message
        assert app.is_running
