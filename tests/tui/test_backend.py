"""AgentBackend over the Agent's public API: file snapshots for diffs, thinking, engine info."""

from __future__ import annotations

import contextlib
from pathlib import Path

from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.agent.events import ToolCallFinished, ToolCallStarted
from gemma_agent.tui.backend import AgentBackend
from gemma_agent.tui.blocks import ToolCard

from .harness import call, make_agent, make_app, send, wait_idle

SIZE = (110, 40)
OVERWRITE = call("write_file", path="notes.txt", content="brand new\n")


async def test_write_file_diff_in_auto_mode_is_against_the_file_before_the_call(
    tmp_path: Path,
) -> None:
    """In auto mode the tool can run before the UI handles ToolCallStarted; the diff must still
    show what the call replaced, not a no-op against the already written file."""
    app, _ = make_app(tmp_path, [OVERWRITE, "Done."], approval="auto", thinking=False)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "overwrite the notes")
        await wait_idle(pilot)
        card = next(b for b in app.blocks() if isinstance(b, ToolCard))
        assert card.status == "done"
        assert (tmp_path / "notes.txt").read_text() == "brand new\n"
        assert card.diff is not None
        assert "-hello" in card.diff and "+brand new" in card.diff


async def test_snapshot_is_taken_before_the_tool_runs(tmp_path: Path) -> None:
    """Consume the whole run first (every tool has run): the snapshot still holds the old text."""
    (tmp_path / "notes.txt").write_text("hello\n")
    agent, _ = make_agent(tmp_path, [OVERWRITE, "Done."], approval="auto", thinking=False)
    backend = AgentBackend(agent)
    stream = backend.stream("overwrite the notes")
    async with contextlib.aclosing(stream):  # type: ignore[type-var]
        events = [e async for e in stream]
    started = next(e for e in events if isinstance(e, ToolCallStarted))
    assert any(isinstance(e, ToolCallFinished) for e in events)
    assert (tmp_path / "notes.txt").read_text() == "brand new\n"
    before = backend.file_before(started.call.id)
    assert before is not None and before.path == "notes.txt" and before.text == "hello\n"
    assert backend.file_before(started.call.id) is None  # handed over once
    await backend.aclose()


async def test_thinking_toggle_and_engine_info_through_public_agent_api(tmp_path: Path) -> None:
    app, engine = make_app(tmp_path, ["One.", "Two."], thinking=True)
    async with app.run_test(size=SIZE) as pilot:
        backend = app.backend
        assert isinstance(backend, AgentBackend)
        info = backend.agent.engine_info
        assert info is engine.info
        assert (backend.model, backend.variant) == (info.model, info.variant)
        await send(pilot, "first")
        await wait_idle(pilot)
        assert "<|think|>" in engine.requests[0].prompt_text
        await send(pilot, "/think off")
        assert backend.agent.thinking is False
        await send(pilot, "second")
        await wait_idle(pilot)
        # The session's prompt was re-rendered with thinking off.
        assert "<|think|>" not in engine.requests[1].prompt_text
        assert "first" in engine.requests[1].prompt_text
        await send(pilot, "/model")
        assert f"context {info.max_model_len} tokens" in app.rendered_text()


async def test_close_engine_hands_the_engine_to_the_agent(tmp_path: Path) -> None:
    engine = ScriptedEngine([])
    agent, _ = make_agent(tmp_path, [], engine=engine)
    await agent.aclose()
    assert not engine.closed  # given engines stay open by default
    from gemma_agent.agent.agent import Agent

    owned = Agent(engine=engine, workspace=tmp_path, persist=False, close_engine=True)
    await owned.aclose()
    assert engine.closed
