"""Builds the TUI on the real Agent with a ScriptedEngine, and helpers to drive it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gemma_agent.agent.agent import Agent
from gemma_agent.agent.engines.scripted import ScriptedEngine, ScriptedOutput, tool_call
from gemma_agent.tools import ApprovalPolicy
from gemma_agent.tools.builtin import coding_tools
from gemma_agent.tui.app import GemmaApp
from gemma_agent.tui.backend import AgentBackend
from gemma_agent.tui.config import TuiSettings

call = tool_call


# Step 1 (thinking on): reasoning, then two calls in one turn (they run in parallel).
THINK_TWO_CALLS = (
    "<|channel>thought\nI will list the folder and read the notes.\n"
    "Both calls can run together.<channel|>"
    + call("list_dir", path=".")
    + call("read_file", path="notes.txt")
)
# Step 2: the prompt ends with an open thought channel after the tool responses.
THINK_ANSWER = (
    "The notes say hello.<channel|>The folder holds **one** file, `notes.txt`:\n\n"
    '```python\nprint("hello")\n```\n\nDone.'
)


def fixed_clock() -> float:
    return 1000.0


def make_agent(
    tmp_path: Path,
    outputs: Sequence[ScriptedOutput],
    *,
    approval: str = "auto",
    thinking: bool = True,
    token_delay: float = 0.0,
    compactor: Any = None,
    engine: ScriptedEngine | None = None,
) -> tuple[Agent, ScriptedEngine]:
    engine = engine or ScriptedEngine(outputs, token_delay=token_delay)
    policy = ApprovalPolicy(approval, store=tmp_path / "approvals.json", workspace=tmp_path)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    if compactor is not None:
        kwargs["compactor"] = compactor
    agent = Agent(
        engine=engine,
        tools=coding_tools(sandbox="none"),
        workspace=tmp_path,
        thinking=thinking,
        approval=policy,
        sessions_dir=tmp_path / ".sessions",
        fsync=False,
        **kwargs,
    )
    return agent, engine


def make_app(
    tmp_path: Path,
    outputs: Sequence[ScriptedOutput] = (),
    *,
    resume: str | None = None,
    settings: TuiSettings | None = None,
    **kwargs: Any,
) -> tuple[GemmaApp, ScriptedEngine]:
    (tmp_path / "notes.txt").write_text("hello\n")
    agent, engine = make_agent(tmp_path, outputs, **kwargs)
    backend = AgentBackend(agent)
    app = GemmaApp(
        backend=backend,
        settings=settings or TuiSettings(thinking=True),
        workspace=tmp_path,
        resume=resume,
        clock=fixed_clock,
    )
    return app, engine


async def type_text(pilot: Any, text: str) -> None:
    """Put text in the prompt (as if typed) without sending it."""
    pilot.app.prompt.insert(text)
    await pilot.pause()


async def send(pilot: Any, text: str) -> None:
    await type_text(pilot, text)
    await pilot.press("enter")
    await pilot.pause()


async def wait_idle(pilot: Any, limit: float = 20.0) -> None:
    """Until the run (and the queue) are done and the last frame is painted."""
    app: GemmaApp = pilot.app
    async with asyncio.timeout(limit):
        while app.running or app.queue:  # noqa: ASYNC110 - polls app state
            await asyncio.sleep(0.02)
    await pilot.pause()
    app.flush_frame()
    await pilot.pause()


async def wait_for(pilot: Any, predicate: Any, limit: float = 20.0) -> None:
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110 - polls app state
            await asyncio.sleep(0.02)
    await pilot.pause()
