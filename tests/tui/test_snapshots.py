"""SVG snapshots of the main states at a fixed size (deterministic: a frozen clock).

Regenerate after a deliberate change of look:
    .venv/bin/pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.tui.app import GemmaApp
from gemma_agent.tui.backend import AgentBackend
from gemma_agent.tui.config import TuiSettings
from gemma_agent.tui.screens import ApprovalScreen

from .harness import (
    THINK_ANSWER,
    THINK_TWO_CALLS,
    fixed_clock,
    make_agent,
    make_app,
    send,
    type_text,
    wait_for,
    wait_idle,
)

SIZE = (100, 34)


async def _steady(pilot: Any) -> None:
    pilot.app.prompt.cursor_blink = False
    await pilot.pause()


def test_snapshot_full_turn(snap_compare: Any, tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, [THINK_TWO_CALLS, THINK_ANSWER])

    async def run_before(pilot: Any) -> None:
        await _steady(pilot)
        await send(pilot, "What is in this folder?")
        await wait_idle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_thinking_full_and_plan(snap_compare: Any, tmp_path: Path) -> None:
    plan = (
        "<|channel>thought\nPlan first.<channel|><|tool_call>call:update_plan{items:["
        '{text:<|"|>Read the notes<|"|>,status:<|"|>done<|"|>},'
        '{text:<|"|>Answer the question<|"|>,status:<|"|>in_progress<|"|>}]}<tool_call|>'
    )
    settings = TuiSettings(thinking=True, thinking_display="full")
    app, _ = make_app(tmp_path, [plan, THINK_ANSWER], settings=settings)

    async def run_before(pilot: Any) -> None:
        await _steady(pilot)
        await send(pilot, "Plan, then answer.")
        await wait_idle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_approval_modal_with_diff(snap_compare: Any, tmp_path: Path) -> None:
    (tmp_path / "greet.py").write_text('def greet():\n    return "hi"\n')
    edit = (
        '<|tool_call>call:edit_file{path:<|"|>greet.py<|"|>,edits:[{old_text:<|"|>return "hi"<|"|>,'
        'new_text:<|"|>return "hello"<|"|>}]}<tool_call|>'
    )
    app, _ = make_app(tmp_path, [edit, "Done."], approval="ask", thinking=False)

    async def run_before(pilot: Any) -> None:
        await _steady(pilot)
        await send(pilot, "Say hello instead.")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ApprovalScreen))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_command_menu(snap_compare: Any, tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, [])

    async def run_before(pilot: Any) -> None:
        await _steady(pilot)
        await type_text(pilot, "/")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_engine_starting(snap_compare: Any, tmp_path: Path) -> None:
    """While the engine starts: the progress line; the input already accepts a task."""
    gate = asyncio.Event()

    async def start() -> AgentBackend:
        await gate.wait()
        agent, _ = make_agent(tmp_path, [], engine=ScriptedEngine([], variant="tiny"))
        return AgentBackend(agent)

    app = GemmaApp(
        backend_factory=start, settings=TuiSettings(), workspace=tmp_path, clock=fixed_clock
    )

    async def run_before(pilot: Any) -> None:
        await _steady(pilot)
        await type_text(pilot, "a task typed while loading")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
