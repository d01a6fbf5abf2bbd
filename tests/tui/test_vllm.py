"""The TUI on the real embedded vLLM engine with the tiny random-weight model (CPU).

The noise model with thinking on and a forced tool still streams a thinking block and makes
a tool call: both must appear, and the run must end without a traceback on the screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gemma_agent.agent.agent import Agent
from gemma_agent.tools import ApprovalPolicy, tool
from gemma_agent.tui.app import GemmaApp
from gemma_agent.tui.backend import AgentBackend
from gemma_agent.tui.blocks import NoticeBlock, ThinkingBlock, ToolCard

from .harness import send, wait_idle

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


@tool(read_only=True)
def pick(n: int, loud: bool = False) -> str:
    """Pick a number.

    Args:
        n: The number.
        loud: Shout it.
    """
    return str(n)


async def test_tiny_model_thinking_and_tool_card(vllm_engine: Any, tmp_path: Path) -> None:
    agent = Agent(
        engine=vllm_engine,
        # Short arguments only: a noise model's free-text strings rarely end within max tokens.
        tools=[pick],
        workspace=tmp_path,
        thinking=True,
        thinking_budget=32,
        tool_choice="pick",  # the grammar forces this short call
        approval=ApprovalPolicy("read-only", store=tmp_path / "a.json", workspace=tmp_path),
        sessions_dir=tmp_path / ".sessions",
        max_steps=2,
        max_output_tokens=96,
        fsync=False,
    )
    app = GemmaApp(backend=AgentBackend(agent), workspace=tmp_path)
    async with app.run_test(size=(110, 40)) as pilot:
        banner = [b for b in app.blocks() if isinstance(b, NoticeBlock) and b.has_class("-banner")]
        assert banner and "outputs are noise" in banner[0].message
        await send(pilot, "list the files")
        await wait_idle(pilot, limit=300)
        blocks = app.blocks()
        assert any(isinstance(b, ThinkingBlock) and b.text for b in blocks)
        cards = [b for b in blocks if isinstance(b, ToolCard)]
        assert cards and all(c.status in ("done", "failed", "denied") for c in cards), (
            app.rendered_text()[-1500:]
        )
        assert "Traceback" not in app.rendered_text()
