"""Sub-agents in the TUI on the real Agent (ScriptedEngine): each child lives inside its task
card (thinking tail, calls, elapsed time, tokens), a child's approval is asked through the modal
and marked on its line, a grandchild nests under its parent child, Esc cancels what runs, a
resumed session shows its children again, and /agents lists the agent types."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from gemma_agent.agent import ToolCall
from gemma_agent.agent.agent import Agent
from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.events import Notice, RunFinished, RunUsage, SubagentEvent, ToolCallStarted
from gemma_agent.tools import ApprovalPolicy, tool
from gemma_agent.tools.builtin import coding_tools
from gemma_agent.tui.app import GemmaApp
from gemma_agent.tui.backend import AgentBackend
from gemma_agent.tui.blocks import NoticeBlock, ToolCard
from gemma_agent.tui.config import TuiSettings
from gemma_agent.tui.export import transcript_markdown
from gemma_agent.tui.screens import ApprovalScreen
from rich.console import Console

from ..subagent_scripts import Router, task
from .harness import call, send, wait_for, wait_idle

pytestmark = pytest.mark.timeout(120)

PARENT = "You are the parent."
SIZE = (120, 50)


def thought(text: str) -> str:
    return f"<|channel>thought\n{text}<channel|>"


class Clock:
    """A clock the test moves (elapsed times are deterministic)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gated_probe() -> tuple[Any, list[str], asyncio.Event]:
    """A read-only tool that waits for the test to open the gate."""
    arrived: list[str] = []
    gate = asyncio.Event()

    @tool(read_only=True)
    async def probe(tag: str) -> str:
        """Probe a place."""
        arrived.append(tag)
        await gate.wait()
        return f"probed {tag}"

    return probe, arrived, gate


def make_agent(
    tmp_path: Path, engine: ScriptedEngine, extra: Sequence[Any] = (), **kw: Any
) -> Agent:
    options: dict[str, Any] = {"subagents": True, "approval": "auto", **kw}
    approval = options.pop("approval")
    return Agent(
        engine=engine,
        tools=[*coding_tools(sandbox="none"), *extra],
        instructions=PARENT,
        workspace=tmp_path,
        thinking=True,
        approval=ApprovalPolicy(approval, store=tmp_path / "approvals.json", workspace=tmp_path),
        sessions_dir=tmp_path / ".sessions",
        compactor=None,
        fsync=False,
        **options,
    )


def make_app(
    agent: Agent, tmp_path: Path, clock: Any = None, resume: str | None = None
) -> GemmaApp:
    return GemmaApp(
        backend=AgentBackend(agent),
        settings=TuiSettings(thinking=True),
        workspace=tmp_path,
        clock=clock or Clock(),
        resume=resume,
    )


def text_of(card: ToolCard, width: int = 110) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(card.view())
    return console.export_text()


def cards(app: GemmaApp) -> list[ToolCard]:
    return [b for b in app.blocks() if isinstance(b, ToolCard)]


def line_with(text: str, needle: str) -> str:
    found = [line for line in text.splitlines() if needle in line]
    assert found, f"{needle!r} not in:\n{text}"
    return found[0]


async def test_two_explorers_live_in_their_task_cards(tmp_path: Path) -> None:
    probe, arrived, gate = gated_probe()
    router = Router({
        "parent": [
            task("TASK-a find the config", what="find the config")
            + task("TASK-b find the tests", what="find the tests"),
            "Both reported.<channel|>The config is in a.toml; the tests in tests/.",
        ],
        "a": [thought("Where is the config?\nProbing a first.") + call("probe", tag="a"),
              "Found it.<channel|>Config is in a.toml"],
        "b": [thought("Tests live somewhere.\nProbing b.") + call("probe", tag="b"),
              "Found them.<channel|>Tests are in tests/"],
    })  # fmt: skip
    clock = Clock()
    app = make_app(make_agent(tmp_path, router.engine(), [probe]), tmp_path, clock)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "map the project")
        await wait_for(pilot, lambda: len(arrived) == 2)
        clock.now += 3.0
        app.tick()  # the tick repaints running cards: the children's elapsed time moves
        app.flush_frame()
        await pilot.pause()

        live = cards(app)
        assert [c.call.name for c in live] == ["task", "task"]  # no card of a child's call
        texts = {c.call.arguments["description"]: text_of(c) for c in live}
        a, b = texts["find the config"], texts["find the tests"]
        assert {line_with(a, "explore#").split()[1], line_with(b, "explore#").split()[1]} == {
            "explore#1",
            "explore#2",
        }
        head = line_with(a, "explore#")
        assert head.lstrip().startswith("◐") and "· find the config" in head
        assert "step 1" in head and "3.0s" in head
        assert "✻ Probing a first." in a and "Where is the config?" not in a  # the latest line
        assert "◐ probe  tag=a · running" in a
        assert "✻ Probing b." in b and "◐ probe  tag=b · running" in b
        assert "explore#" in app.rendered_text(width=110)  # what the screen shows

        gate.set()
        await wait_idle(pilot)
        for card in live:
            text = text_of(card)
            head = line_with(text, "explore#")
            assert card.status == "done"
            assert head.lstrip().startswith("✓") and "2 steps" in head and "tokens" in head
            assert "✻" not in text  # the thinking line goes once the child is done
        a = text_of(live[0])
        assert "✓ probe  tag=a · done" in a and "→ Config is in a.toml" in a


async def test_a_folded_card_shows_the_last_calls_and_enter_shows_all(tmp_path: Path) -> None:
    probe, _, gate = gated_probe()
    gate.set()
    steps = [call("probe", tag=f"p{i}") for i in range(5)]
    router = Router({
        "parent": [task("TASK-a look", what="look five times"), "Done.<channel|>Done."],
        "a": [thought("Start.") + steps[0], *["Next.<channel|>" + s for s in steps[1:]],
              "Enough.<channel|>Five probes, all fine."],
    })  # fmt: skip
    app = make_app(make_agent(tmp_path, router.engine(), [probe]), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "look")
        await wait_idle(pilot)
        (card,) = cards(app)
        folded = text_of(card)
        assert "… 2 earlier (Enter expands)" in folded
        assert "tag=p0" not in folded and "tag=p2" in folded and "tag=p4" in folded
        app.open_block(card)  # as Enter/click on the card
        full = text_of(card)
        assert "earlier" not in full and all(f"tag=p{i}" in full for i in range(5))
        assert "→ probed p0" in full  # each call's result line
        assert "6 steps" in line_with(full, "explore#1")


async def test_a_childs_approval_is_asked_in_the_modal_and_marked_on_its_line(
    tmp_path: Path,
) -> None:
    router = Router({
        "parent": [task("TASK-g write the note", "general", "write a note"),
                   "It wrote.<channel|>The note is written."],
        "g": [call("write_file", path="note.txt", content="hi\n"),
              "Written.<channel|>I wrote note.txt."],
    })  # fmt: skip
    app = make_app(make_agent(tmp_path, router.engine(), approval="ask"), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "write a note")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        screen = app.screen
        assert isinstance(screen, ApprovalScreen)
        assert screen.title_text == "general#1 wants to run write_file. Allow it?"
        assert screen.diff is not None and "+hi" in screen.diff  # the child's change, shown
        (card,) = cards(app)  # the child's call has no card of its own
        assert card.call.name == "task" and len(app.cards) == 1
        assert "? write_file  note.txt · waiting for approval" in text_of(card)
        assert card.has_class("-approval")  # the card's bar says someone waits, too
        assert not (tmp_path / "note.txt").exists()

        await pilot.press("y")
        await wait_idle(pilot)
        assert (tmp_path / "note.txt").read_text() == "hi\n"
        text = text_of(card)
        assert "✓ write_file  note.txt · done" in text and card.status == "done"
        assert "→ I wrote note.txt." in text
        exported = transcript_markdown(app.blocks())  # /export keeps the child's section
        assert "Sub-agents:" in exported and "general#1 · write a note" in exported


async def test_a_denied_child_call_is_marked_denied(tmp_path: Path) -> None:
    router = Router({
        "parent": [task("TASK-g write the note", "general", "write a note"),
                   "Denied.<channel|>It was denied."],
        "g": [call("write_file", path="note.txt", content="hi\n"),
              "No.<channel|>I could not write it."],
    })  # fmt: skip
    app = make_app(make_agent(tmp_path, router.engine(), approval="ask"), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "write a note")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("n")
        await wait_idle(pilot)
        assert not (tmp_path / "note.txt").exists()
        assert "⊘ write_file  note.txt · denied" in text_of(cards(app)[0])


async def test_a_grandchild_nests_under_its_parent_child(tmp_path: Path) -> None:
    probe, _, gate = gated_probe()
    gate.set()
    router = Router({
        "parent": [task("TASK-g survey", "general", "survey the code"),
                   "Surveyed.<channel|>All surveyed."],
        "g": [task("TASK-e dig deeper", "explore", "dig deeper"),
              "It dug.<channel|>The explorer found it."],
        "e": [call("probe", tag="deep"), "Deep.<channel|>Deep down there."],
    })  # fmt: skip
    agent = make_agent(tmp_path, router.engine(), [probe], subagent_depth=2)
    app = make_app(agent, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "survey")
        await wait_idle(pilot)
        (card,) = cards(app)  # one top-level card holds the child and the grandchild
        assert set(card.subagents) == {"main/general#1", "main/general#1/explore#1"}
        lines = text_of(card).splitlines()
        at = {name: next(i for i, ln in enumerate(lines) if name in ln)
              for name in ("general#1", "task  agent_type=explore", "explore#1", "probe")}  # fmt: skip
        assert at["general#1"] < at["task  agent_type=explore"] < at["explore#1"] < at["probe"]

        def indent(key: str) -> int:
            line = lines[at[key]]
            return len(line) - len(line.lstrip())

        assert indent("general#1") < indent("task  agent_type=explore") < indent("explore#1")
        assert indent("explore#1") < indent("probe")
        assert "· dig deeper" in lines[at["explore#1"]] and "✓" in lines[at["explore#1"]]
        app.open_block(card)
        assert "→ Deep down there." in text_of(card)  # the grandchild's answer, expanded


async def test_esc_cancels_the_run_and_its_children(tmp_path: Path) -> None:
    probe, arrived, _gate = gated_probe()  # never opened: the children wait until Esc
    router = Router({
        "parent": [task("TASK-a one", what="first") + task("TASK-b two", what="second")],
        "a": [thought("Probing a.") + call("probe", tag="a")],
        "b": [thought("Probing b.") + call("probe", tag="b")],
    })  # fmt: skip
    app = make_app(make_agent(tmp_path, router.engine(), [probe]), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "go")
        await wait_for(pilot, lambda: len(arrived) == 2)
        await pilot.press("escape")
        await wait_idle(pilot)
        assert app.interrupted
        for card in cards(app):
            text = text_of(card)
            assert card.status == "cancelled"
            assert line_with(text, "explore#").lstrip().startswith("⊘")
            assert "cancelled" in line_with(text, "explore#")
            assert "⊘ probe" in text and "· cancelled" in line_with(text, "probe")
            assert "✻" not in text and "◐" not in text  # nothing is shown running any more


async def test_a_resumed_session_shows_each_task_cards_children(tmp_path: Path) -> None:
    probe, _, gate = gated_probe()
    gate.set()
    router = Router({
        "parent": [task("TASK-a find the config", what="find the config")
                   + task("TASK-b find the tests", what="find the tests"),
                   "Both.<channel|>Found both."],
        "a": [call("probe", tag="a"), "A.<channel|>Config is in a.toml"],
        "b": [call("probe", tag="b"), "B.<channel|>Tests are in tests/"],
    })  # fmt: skip
    first = make_agent(tmp_path, router.engine(), [probe])
    result = await first.run("map the project")
    assert result.output == "Found both."
    await first.aclose()

    again = make_agent(tmp_path, ScriptedEngine([]), [probe])
    app = make_app(again, tmp_path, resume=result.session_id)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(cards(app)) == 2)
        by_description = {c.call.arguments["description"]: c for c in cards(app)}
        a = text_of(by_description["find the config"])
        b = text_of(by_description["find the tests"])
        for text, tag in ((a, "a"), (b, "b")):
            head = line_with(text, "explore#")
            assert head.lstrip().startswith("✓") and "2 steps" in head and "tokens" in head
            assert f"✓ probe  tag={tag} · done" in text
        assert "· find the config" in line_with(a, "explore#")
        assert "→ Config is in a.toml" in a
        assert "explore#" in app.rendered_text(width=110)  # the archive draws them


async def test_agents_lists_the_agent_types(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    folder = tmp_path / ".gemma-agent" / "agents"
    folder.mkdir(parents=True)
    (folder / "reviewer.md").write_text(
        "---\nname: reviewer\ndescription: Reviews a diff for bugs.\n---\nReview it.\n"
    )
    (folder / "broken.md").write_text("---\nname: broken\n---\nNo description.\n")
    app = make_app(make_agent(tmp_path, ScriptedEngine([])), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/agents")
        text = [b.message for b in app.blocks() if isinstance(b, NoticeBlock)][-1]
        assert "**explore** — Read-only" in text and "(built-in)" in text
        assert "**general**" in text
        assert "**reviewer** — Reviews a diff for bugs. (`.gemma-agent/agents/reviewer.md`)" in text
        assert "⚠ agent file" in text and "broken.md" in text


async def test_agents_says_when_sub_agents_are_off(tmp_path: Path) -> None:
    app = make_app(make_agent(tmp_path, ScriptedEngine([]), subagents=False), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/agents")
        text = [b.message for b in app.blocks() if isinstance(b, NoticeBlock)][-1]
        assert text == "Sub-agents are off: this agent has no task tool."


def test_a_child_that_stops_early_shows_why_and_its_warnings() -> None:
    """Without an app: a card fed a child's events (a warning, a limit) draws them."""
    task_call = ToolCall(name="task", arguments={"description": "dig", "agent_type": "explore"})
    card = ToolCard(task_call, step=1, workspace=None, now=10.0)
    card.set_status("running", 10.0)
    probe = ToolCall(name="probe", arguments={"tag": "x"})
    for now, event in (
        (10.0, ToolCallStarted(probe, 1)),
        (11.0, Notice("The engine was slow; retrying.", "warning", 1)),
        (11.0, Notice("just info", "info", 1)),
        (12.5, RunFinished("max_steps", steps=3, usage=RunUsage(generated_tokens=1500))),
    ):
        wrapped = SubagentEvent("main/explore#1", task_call.id, event)
        card.subagent_event(wrapped.agent, wrapped.call_id, wrapped.event, now)
    text = text_of(card)
    head = line_with(text, "explore#1")
    assert head.lstrip().startswith("✗")
    assert "· dig · 3 steps · 2.5s · 1.5k tokens · max_steps" in head
    assert "⚠ The engine was slow; retrying." in text and "just info" not in text
    assert "⊘ probe  tag=x · cancelled" in text  # its open call cannot finish any more
