"""`gemma-agent replay PATH`: a saved session or an eval trajectory in the TUI, read-only.

The log is read once with `gemma_agent.agent.read_session` (which never writes to it) and
shown with the live TUI's blocks: reasoning, answers, tool cards with their diffs, compaction
markers, notices. No engine starts and nothing can be sent. It opens with everything shown;
← and → (or p and n) step back and forward one step (a user message, one model turn with its
tool calls, a compaction, a notice), ``s`` goes to the first step and ``a`` shows all again.
The footer says where the replay stands.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Input, Static

from ..agent import (
    ModelTurn,
    SavedSession,
    SummaryMessage,
    UserMessage,
    read_session,
)
from ..events import (
    HistoryCompacted,
    Notice,
    PlanUpdated,
    RunFinished,
    RunStarted,
    Usage,
)
from .attachments import chip
from .blocks import (
    AnswerBlock,
    CompactionMarker,
    NoticeBlock,
    ThinkingBlock,
    ToolCard,
    UserBlock,
)
from .config import ThinkingDisplay, TuiSettings
from .format import FileBefore, call_path, estimate_tokens, first_line, fmt_tokens

READ_ONLY = (
    "Read-only replay: nothing is sent from here. To continue this session: "
    "gemma-agent --resume {id}"
)
KEYS = "←/→ step · s first · a all · t thinking · q quit"
STOPPED = {
    "max_steps": "Stopped: the step limit was reached.",
    "token_budget": "Stopped: the token budget was used up.",
    "time_limit": "Stopped: the time limit was reached.",
    "cancelled": "Interrupted.",
    "too_many_errors": "Stopped: too many errors in a row.",
    "loop_detected": "Stopped: the model was repeating itself.",
    "engine_error": "The engine failed.",
    "context_overflow": "Stopped: the context was full.",
}


@dataclass
class ReplayStep:
    """What one step of the replay shows, and the context size the log had reached by then."""

    label: str
    blocks: list[Widget] = field(default_factory=list)
    context_tokens: int | None = None


class StepView(Vertical):
    """One step's blocks; shown or hidden as a whole (a thinking block hides itself)."""

    DEFAULT_CSS = "StepView { height: auto; }"


class ReplayThinking(ThinkingBlock):
    """Reasoning read from a log: its tokens are known, its duration is not."""

    def summary(self) -> str:
        tokens = self.tokens if self.tokens is not None else estimate_tokens(self.text)
        return f"{first_line(self.text) or '(empty)'} · {fmt_tokens(tokens)} tokens"


def build_steps(saved: SavedSession, thinking: ThinkingDisplay = "full") -> list[ReplayStep]:
    """The replay's steps from a saved session's entries, in log order."""
    steps: list[ReplayStep] = []
    files: dict[str, str] = {}  # path -> text as the replay's write_file calls left it
    turns = 0
    context: int | None = None
    for entry in saved.entries:
        step: ReplayStep | None = None
        match entry:
            case UserMessage():
                names = tuple(chip(a) for a in entry.attachments)
                step = ReplayStep("task", [UserBlock(entry.content, attachments=names)])
            case SummaryMessage():
                step = ReplayStep(
                    "summary", [NoticeBlock(entry.content, title="Summary of earlier turns")]
                )
            case ModelTurn():
                turns += 1
                step = ReplayStep(_turn_label(turns, entry), _turn_blocks(entry, turns, thinking))
                _track_files(entry, files, step.blocks)
            case HistoryCompacted():
                step = ReplayStep(f"compaction ({entry.tier})", [CompactionMarker(entry)])
                context = entry.tokens_after
            case Notice():
                step = ReplayStep("notice", [NoticeBlock(entry.message, level=entry.level)])
            case PlanUpdated():
                lines = [f"- [{'x' if i.status == 'done' else ' '}] {i.text}" for i in entry.items]
                body = "**Plan**\n\n" + ("\n".join(lines) or "(empty)")
                step = ReplayStep("plan", [NoticeBlock(body, markdown=True)])
            case RunFinished():
                step = ReplayStep("run finished", [_finished_block(entry)])
            case Usage():
                context = entry.context_tokens
            case RunStarted():
                pass  # the task's user message opens the run
            case _:
                pass  # deltas and approvals are never logged as such
        if step is not None:
            step.context_tokens = context
            steps.append(step)
    return steps


def _turn_label(number: int, turn: ModelTurn) -> str:
    names = ", ".join(c.name for c in turn.tool_calls)
    return f"model turn {number}" + (f": {names}" if names else "")


def _turn_blocks(turn: ModelTurn, number: int, thinking: ThinkingDisplay) -> list[Widget]:
    blocks: list[Widget] = []
    if turn.reasoning:
        think = ReplayThinking(display_mode=thinking, started=0.0, step=number)
        think.write(turn.reasoning)
        think.finish(0.0)
        if turn.usage.thinking_tokens:
            think.set_tokens(turn.usage.thinking_tokens)
        blocks.append(think)
    if turn.text.strip():
        answer = AnswerBlock(number)
        answer.set_text(turn.text)
        answer.closed = True
        blocks.append(answer)
    return blocks


def _track_files(turn: ModelTurn, files: dict[str, str], blocks: list[Widget]) -> None:
    """The turn's tool cards. A write_file diff is taken against the text an earlier
    write_file of the replay left (else the file counts as new): the replay never reads the
    workspace, which has moved on since."""
    results = {r.call_id: r for r in turn.tool_results}
    for call in turn.tool_calls:
        path = call_path(call.arguments)
        before = FileBefore(path, files.get(path)) if path is not None else None
        card = ToolCard(call, step=0, workspace=None, now=0.0, before=before)
        result = results.get(call.id)
        if result is None:
            card.status = "cancelled"
        else:
            card.finish(result, 0.0)
            card.seconds = None  # the log keeps no durations
            if path is not None and not result.is_error:
                content = call.arguments.get("content")
                if call.name == "write_file" and isinstance(content, str):
                    files[path] = content
                elif call.name == "edit_file":
                    files.pop(path, None)  # the edit's own diff is in its result
        blocks.append(card)


def _finished_block(event: RunFinished) -> NoticeBlock:
    if event.reason == "final_answer":
        text = f"■ Finished with a final answer after {event.steps} steps"
        if event.usage is not None:
            u = event.usage
            text += (
                f" · {fmt_tokens(u.prompt_tokens)} prompt tokens "
                f"({u.cache_hit_rate:.0%} cached), {fmt_tokens(u.generated_tokens)} generated "
                f"({fmt_tokens(u.thinking_tokens)} thinking), {u.tool_calls} tool calls"
            )
        return NoticeBlock(text)
    title = STOPPED.get(event.reason, f"Stopped: {event.reason}.")
    if event.error:
        return NoticeBlock(event.error, level="error", title=title)
    return NoticeBlock(title, level="warning")


class ReplayApp(App[int]):
    """A saved session, read-only, all at once or step by step."""

    TITLE = "gemma-agent replay"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { layout: vertical; }
    #replay-head { height: auto; padding: 0 1; background: $boost; }
    #transcript { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
    #replay-prompt { margin: 0 0; }
    #replay-footer { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right,n", "step(1)", "Next step", priority=True),
        Binding("left,p", "step(-1)", "Previous step", priority=True),
        Binding("s,home", "first", "First step", priority=True),
        Binding("a,end", "all", "Show all", priority=True),
        Binding("t", "toggle_thinking", "Thinking display", priority=True),
        Binding("q,escape,ctrl+c", "quit_replay", "Quit", priority=True),
    ]

    def __init__(self, saved: SavedSession, *, settings: TuiSettings | None = None) -> None:
        super().__init__()
        self.saved = saved
        self.settings = settings or TuiSettings()
        self.thinking_display: ThinkingDisplay = "full"  # the point of a replay: the reasoning
        self.steps: list[ReplayStep] = []  # built in compose: blocks need the running app
        self.views: list[StepView] = []
        self.position = 0  # how many steps are shown: all of them at first

    def compose(self) -> ComposeResult:
        self.steps = build_steps(self.saved, self.thinking_display)
        self.position = len(self.steps)
        yield Static(self._head(), id="replay-head")
        with VerticalScroll(id="transcript"):
            for step in self.steps:
                view = StepView(*step.blocks)
                self.views.append(view)
                yield view
        yield Input(
            placeholder=READ_ONLY.format(id=self.saved.session_id),
            disabled=True,
            id="replay-prompt",
        )
        yield Static(id="replay-footer")

    def on_mount(self) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            self.theme = self.settings.theme
        self.show(self.position)

    def _head(self) -> Text:
        s = self.saved
        head = Text("▶ Replay ", style="bold")
        head.append(f"of session {s.session_id}", style="bold")
        model = s.model
        head.append(f" · {model}" if model else "", style="")
        head.append(f" · {len(self.steps)} steps · read-only\n", style="")
        head.append(str(s.path), style="dim")
        for warning in s.warnings:
            head.append(f"\n⚠ {warning}", style="yellow")
        return head

    @property
    def footer(self) -> Static:
        return self.query_one("#replay-footer", Static)

    def footer_text(self) -> str:
        total = len(self.steps)
        if not total:
            return f"replay · the log holds no steps · {KEYS}"
        step = self.steps[self.position - 1] if self.position else None
        where = "all" if self.position == total else f"{self.position}/{total}"
        text = f"replay · step {where}"
        if self.position == total:
            text = f"replay · all {total} steps"
        if step is not None:
            text += f" · {step.label}"
            if step.context_tokens is not None:
                text += f" · context {fmt_tokens(step.context_tokens)} tokens"
        return f"{text} · {KEYS}"

    def show(self, position: int) -> None:
        """Show the first ``position`` steps (at least one)."""
        total = len(self.steps)
        position = max(min(position, total), 1 if total else 0)
        previous, self.position = self.position, position
        with self.batch_update():
            for i, view in enumerate(self.views):
                view.display = i < position
        self.footer.update(self.footer_text())
        if position and position != previous and position < total:
            self.call_after_refresh(self.views[position - 1].scroll_visible, animate=False)

    def action_step(self, delta: int) -> None:
        self.show(self.position + delta)

    def action_first(self) -> None:
        self.show(1)

    def action_all(self) -> None:
        self.show(len(self.steps))

    def action_toggle_thinking(self) -> None:
        self.thinking_display = "collapsed" if self.thinking_display == "full" else "full"
        for step in self.steps:
            for block in step.blocks:
                if isinstance(block, ThinkingBlock):
                    block.set_display_mode(self.thinking_display)

    def action_quit_replay(self) -> None:
        self.exit(0)

    def visible_blocks(self) -> list[Widget]:
        """The blocks shown now, oldest first."""
        return [b for step in self.steps[: self.position] for b in step.blocks]

    def rendered_text(self) -> str:
        """The blocks shown now as plain text (what the transcript reads)."""
        import io

        from rich.console import Console

        console = Console(width=100, record=True, file=io.StringIO(), color_system=None)
        for block in self.visible_blocks():
            if isinstance(block, ThinkingBlock) and block.display_mode == "hidden":
                continue
            console.print(block.view())  # type: ignore[attr-defined]
        return console.export_text()


def run_replay(args: argparse.Namespace) -> int:
    """`gemma-agent replay PATH|ID`: read the log (a ConfigError if it is missing or corrupt),
    then show it."""
    from .config import load_settings

    workspace = Path(getattr(args, "workspace", None) or ".").expanduser()
    saved = read_session(args.path, workspace=workspace)
    settings = load_settings(workspace) if workspace.is_dir() else TuiSettings()
    return ReplayApp(saved, settings=settings).run() or 0
