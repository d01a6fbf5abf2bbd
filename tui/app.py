"""The Textual app: a transcript of per-block widgets fed by the agent's event stream."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, assert_never

from rich.console import Console
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.worker import Worker

from ..agent import (
    CommandPrompt,
    CustomCommand,
    Message,
    ModelTurn,
    SummaryMessage,
    ToolCall,
    UserMessage,
)
from ..errors import ConfigError
from ..events import (
    ApprovalDecision,
    ApprovalRequested,
    Event,
    HistoryCompacted,
    HookRan,
    Notice,
    PlanUpdated,
    RunFinished,
    RunStarted,
    SubagentEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
    Usage,
    agent_label,
)
from .archive import Archive, archived_view
from .attachments import chip, pasted_path
from .backend import Backend
from .blocks import (
    AnswerBlock,
    CompactionMarker,
    NoticeBlock,
    NoticeLevel,
    PlanPanel,
    ThinkingBlock,
    ToolCard,
    UserBlock,
)
from .chrome import CommandMenu, EngineProgress, PromptInput, StatusBar
from .commands import BY_NAME, Choice, EngineFlags, help_text, parse_command
from .config import APPROVAL_MODES, THINKING_DISPLAYS, ThinkingDisplay, TuiSettings
from .custom import listing, load, menu_entries, startup_notices
from .export import transcript_markdown
from .format import error_text, tool_diff
from .heap import HeapPolicy
from .model_switch import TINY_BANNER, EngineFactory, ModelSwitch, ModelSwitcher, same_model
from .rewind import RewindConfirm, RewindPicker, command_rewind
from .screens import ApprovalScreen, HookTrustScreen, SessionPicker
from .subagents import ToolStatus, parent_path

INIT_TASK = (
    "Study this repository (its layout, build and test commands, code style and conventions) "
    "and write an AGENTS.md file at its root for coding agents: short, concrete, in Markdown "
    "sections (Layout, Commands, Conventions). Keep what is already in AGENTS.md if it exists."
)
FRAME_SECONDS = 1 / 20  # deltas are painted at most once per frame
TICK_SECONDS = 0.2  # elapsed times and the engine spinner
QUIT_WINDOW = 2.0  # Ctrl+C twice within this many seconds quits
REVEAL_LINES = 2  # scrolling up this close to the top shows older archived blocks
SETTLE_SECONDS = 0.5  # after a run, the full garbage collection waits this long

BackendFactory = Callable[[], Awaitable[Backend]]

STOP_TEXT = {
    "max_steps": "Stopped: the step limit was reached.",
    "token_budget": "Stopped: the token budget was used up.",
    "time_limit": "Stopped: the time limit was reached.",
    "cancelled": "Interrupted.",
    "too_many_errors": "Stopped: too many errors in a row.",
    "loop_detected": "Stopped: the model was repeating itself.",
    "engine_error": "The engine failed.",
    "context_overflow": "Stopped: the context is full (try /compact).",
}


class MainScreen(Screen[None]):
    """The default screen; the archive scrolls to its selected block itself when focused
    (Textual would centre the whole, very tall, widget and jump to its top)."""

    def set_focus(
        self, widget: Widget | None, scroll_visible: bool = True, from_app_focus: bool = False
    ) -> None:
        if isinstance(widget, Archive):
            scroll_visible = False
        super().set_focus(widget, scroll_visible, from_app_focus)


@dataclass
class StepState:
    """Blocks and timings of one model step (one engine request)."""

    step: int
    thinking: ThinkingBlock | None = None
    answer: AnswerBlock | None = None
    thinking_start: float | None = None
    thinking_end: float | None = None
    answer_start: float | None = None
    answer_end: float | None = None
    cards: dict[str, ToolCard] = field(default_factory=dict)


class GemmaApp(App[int]):
    """The interactive agent. Give it a ready `Backend` or a factory that starts one."""

    TITLE = "gemma-agent"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False
    hook_question = False  # the project's hooks wait for the user's trust (a queued task too)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "ctrl_c", "Quit", priority=True, show=False),
        Binding("escape", "interrupt", "Interrupt", priority=True, show=False),
        Binding("shift+tab", "cycle_approval", "Approval mode", priority=True, show=False),
        Binding("ctrl+t", "cycle_thinking_display", "Thinking display", show=False),
    ]

    def __init__(
        self,
        *,
        backend: Backend | None = None,
        backend_factory: BackendFactory | None = None,
        settings: TuiSettings | None = None,
        workspace: Path | None = None,
        banner: str | None = None,
        resume: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        starting_text: str = "Starting the engine",
        attachments: Sequence[Any] = (),
        engine_factory: EngineFactory | None = None,
        engine_settings: dict[str, Any] | None = None,
        engine_flags: EngineFlags | None = None,
        sandbox_off: str | None = None,
    ) -> None:
        super().__init__()
        if (backend is None) == (backend_factory is None):
            raise ValueError("give exactly one of backend= or backend_factory=")
        self.backend = backend
        self.backend_factory = backend_factory
        self.settings = settings or TuiSettings()
        self.workspace = workspace
        self.banner = banner
        self.resume_id = resume
        self.clock = clock
        self.starting_text = starting_text
        self.thinking_display: ThinkingDisplay = self.settings.thinking_display
        self.queue: list[str | CommandPrompt] = []
        self.custom_commands: list[CustomCommand] = []  # .gemma-agent/commands/*.md
        self.run_worker_: Worker[None] | None = None
        self.steps: dict[int, StepState] = {}
        self.cards: dict[str, ToolCard] = {}
        # Each sub-agent's path -> the top-level card it shows in (grandchildren too).
        self.agent_cards: dict[str, ToolCard] = {}
        self.dirty: set[ThinkingBlock | AnswerBlock | ToolCard] = set()
        self.approvals: list[tuple[ApprovalRequested, ToolCard]] = []
        self.approval_open = False
        self.markers: list[CompactionMarker] = []
        self.last_ctrl_c = -1e9
        self.last_escape = -1e9  # Esc Esc on an empty prompt opens /rewind
        self.engine_started_at = 0.0
        self.engine_error: str | None = None
        self.interrupted = False
        self.archive_pending = False
        self.attachments = list(attachments)  # sent with the first task (--image/--audio)
        self.heap = HeapPolicy()
        # `/model`: engine_factory starts an engine from settings, engine_settings start the
        # current model again (a failed `/model --replace` does), engine_flags parse its flags.
        self.switcher = ModelSwitcher(
            self,
            engine_factory=engine_factory,
            engine_settings=engine_settings,
            engine_flags=engine_flags,
        )
        self.run_ended = asyncio.Event()  # set between runs (a switch waits for it)
        self.run_ended.set()
        self.sandbox_off = sandbox_off  # why run_shell is not sandboxed (None: it is)
        # Plan mode (Shift+Tab past the approval modes): runs may only read and plan; the
        # approval mode to return to when the plan is accepted.
        self.plan_mode = False
        self.approval_before_plan: str = self.settings.approval

    # ---------------------------------------------------------------- layout

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            # Not focusable itself: Tab goes to the blocks (the archive, live cards).
            with VerticalScroll(id="transcript", can_focus=False):
                yield Archive()
            yield PlanPanel()
        yield EngineProgress()
        yield CommandMenu()
        yield PromptInput()
        yield StatusBar()

    @property
    def transcript(self) -> VerticalScroll:
        return self.query_one("#transcript", VerticalScroll)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def plan(self) -> PlanPanel:
        return self.query_one(PlanPanel)

    @property
    def running(self) -> bool:
        return self.run_worker_ is not None and not self.run_worker_.is_finished

    def on_mount(self) -> None:
        with contextlib.suppress(Exception):
            self.theme = self.settings.theme
        self.transcript.anchor()
        self.watch(self.transcript, "scroll_y", self.on_transcript_scroll, init=False)
        self.set_interval(FRAME_SECONDS, self.flush_frame)
        self.set_interval(TICK_SECONDS, self.tick)
        self.prompt.focus()
        if self.banner:
            self.add_block(NoticeBlock(self.banner, level="warning", banner=True))
        for note in self.reload_commands():  # a file a built-in hides, a malformed one
            self.add_block(NoticeBlock(note, level="warning"))
        progress = self.query_one(EngineProgress)
        if self.backend is None:
            self.engine_started_at = self.clock()
            progress.show(self.starting_text, 0.0)
            self.run_worker(self.start_backend(), group="engine", exit_on_error=False)
        else:
            progress.display = False
            self.backend_ready()

    async def start_backend(self) -> None:
        assert self.backend_factory is not None
        try:
            backend = await self.backend_factory()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.engine_error = error_text(e)
            self.query_one(EngineProgress).display = False
            self.add_block(
                NoticeBlock(
                    self.engine_error + "\n\nFix the engine flags (see `gemma-agent --help`) and "
                    "restart; /quit leaves.",
                    level="error",
                    title="The engine did not start",
                )
            )
            return
        self.backend = backend
        self.query_one(EngineProgress).display = False
        self.backend_ready()

    def backend_ready(self) -> None:
        b = self.backend
        assert b is not None
        if b.variant == "tiny" and not self.banner:
            self.add_block(NoticeBlock(TINY_BANNER, level="warning", banner=True))
        self.status.set(
            model=b.model,
            variant=b.variant,
            thinking=b.thinking,
            thinking_budget=b.thinking_budget,
            approval="plan" if self.plan_mode else b.approval,
            max_steps=b.max_steps,
            sandbox_off=self.sandbox_off is not None,
        )
        if self.sandbox_off:
            note = f"Shell commands are not sandboxed: {self.sandbox_off}. Each one asks first."
            self.add_block(NoticeBlock(note, level="warning"))
        for note in b.take_notices():  # MCP servers that did not start, untrusted ones
            self.add_block(NoticeBlock(note, level="warning"))
        self.ask_hook_trust(b)
        if self.resume_id:
            session_id, self.resume_id = self.resume_id, None
            self.resume_session(session_id)
        else:  # the engine's and libraries' objects, once (resume_session does it otherwise)
            self.set_timer(SETTLE_SECONDS, lambda: self.settle_heap(full=True))
        if self.queue and not self.switch_ready and not self.hook_question:
            self.start_run(self.queue.pop(0))

    # ---------------------------------------------------------------- frames

    def flush_frame(self) -> None:
        """Paint buffered deltas: one repaint per streaming block per frame."""
        if self.archive_pending and self.query(Archive):  # gone while the app tears down
            self.archive_pending = self.archive_settled(limit=1) > 0
        if not self.dirty:
            return
        dirty, self.dirty = self.dirty, set()
        with self.batch_update():
            for block in dirty:
                block.flush()

    def tick(self) -> None:
        # query, not query_one: the interval can fire once more while the app tears its
        # screen down, and then the widgets are already gone
        now = self.clock()
        for progress in self.query(EngineProgress):
            if self.backend is None and self.engine_error is None:
                progress.show(self.starting_text, now - self.engine_started_at)
            elif self.switch is not None:
                progress.show(self.switch.text, now - self.switch.started)
        for card in self.cards.values():
            if card.status == "running":
                card.tick(now)
        if self.backend is not None:  # background processes (run_shell background: true)
            running = sum(p.status == "running" for p in self.backend.processes())
            for bar in self.query(StatusBar):
                bar.set(processes=running)

    def ask_hook_trust(self, backend: Backend) -> None:
        """The project's hook set, once per change of it: run its commands or not (remembered)."""
        commands = backend.hook_trust_request()
        if not commands:
            return

        def answered(trust: bool | None) -> None:
            self.hook_question = False
            backend.answer_hook_trust(bool(trust))
            if trust:
                self.say(f"The project's hooks are trusted: {len(commands)} command(s) will run.")
            else:
                self.say(
                    "The project's hooks are not run (remembered until they change; "
                    "--trust-hooks trusts them).",
                    level="warning",
                )
            if self.queue and not self.running and not self.switch_ready:
                self.start_run(self.queue.pop(0))  # the task given at start waited for this

        self.hook_question = True
        self.push_screen(HookTrustScreen(commands), answered)

    def on_transcript_scroll(self, old: float, new: float) -> None:
        """Reaching the top of a long resumed history shows older blocks."""
        if new < old and new <= REVEAL_LINES and self.archive.hidden:
            self.archive.reveal()

    def settle_heap(self, full: bool = False) -> None:
        if not self.running:
            self.heap.settle(full=full)

    def add_block(self, widget: Widget) -> None:
        self.transcript.mount(widget)

    @property
    def archive(self) -> Archive:
        return self.query_one(Archive)

    def blocks(self) -> list[Widget]:
        """The transcript's blocks, oldest first (settled ones live in the archive)."""
        archive = self.archive
        live = [
            c
            for c in self.transcript.children
            if not isinstance(c, Archive) and not archive.holds(c)
        ]
        return [*archive.entries, *live]

    def clear_transcript(self) -> None:
        self.archive.clear()
        for child in list(self.transcript.children):
            if not isinstance(child, Archive) and not self.archive.holds(child):
                child.remove()
        self.steps.clear()
        self.cards.clear()
        self.agent_cards.clear()
        self.markers.clear()
        self.dirty.clear()
        self.set_timer(SETTLE_SECONDS, lambda: self.settle_heap(full=True))  # dropped blocks

    def archive_settled(self, limit: int | None = None) -> int:
        """Move finished blocks at the head of the live area into the archive (at most
        ``limit``); returns how many moved."""
        settled: list[Widget] = []
        archive = self.archive
        for child in self.transcript.children:
            if isinstance(child, Archive) or archive.holds(child):
                continue  # removal of archived widgets completes later
            if not _settled(child) or (limit is not None and len(settled) >= limit):
                break
            settled.append(child)
        if not settled:
            return 0
        for block in settled:
            self.dirty.discard(block)  # type: ignore[arg-type]
        with self.batch_update():
            self.archive.add(settled)
            for block in settled:
                block.remove()
        return len(settled)

    def refresh_block(self, block: Widget) -> None:
        """Repaint a block after a change of state, wherever it lives."""
        if self.archive.holds(block):
            self.archive.rerender(block)

    def open_block(self, block: Widget) -> None:
        """Expand a thinking block, tool card or compaction marker (as Enter/click does)."""
        if isinstance(block, ThinkingBlock | ToolCard | CompactionMarker):
            block.toggle()
            self.refresh_block(block)

    def rendered_text(self, width: int = 100) -> str:
        """The whole transcript as plain text, as shown (hidden blocks left out)."""
        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        for block in self.blocks():
            for view in archived_view(block):
                console.print(view)
        return console.export_text()

    # ---------------------------------------------------------------- input

    @on(PromptInput.Submitted)
    def on_submitted(self, event: PromptInput.Submitted) -> None:
        self.query_one(CommandMenu).display = False
        self.prompt.menu_open = False
        text = event.text.strip()
        if self.attach_pasted(text):
            return
        command = parse_command(text)
        if command is not None and command.name not in BY_NAME and self.send_custom(text):
            return
        if command is not None:
            self.run_command(command.name, command.arg)
            return
        if text.startswith("//"):
            text = text[1:]
        if self.backend is None or self.running or self.switch_ready:
            self.queue.append(text)
            why = "a run is in progress" if self.running else "the model is switching"
            if self.backend is None:
                why = "the engine is starting"
            self.add_block(NoticeBlock(f"Queued: {why}; it will be sent next.", level="info"))
            return
        self.start_run(text)

    @on(PromptInput.Changed)
    def on_prompt_changed(self, event: PromptInput.Changed) -> None:
        menu = self.query_one(CommandMenu)
        self.prompt.menu_open = menu.show_for(self.prompt.text)

    @on(PromptInput.Navigate)
    def on_prompt_navigate(self, event: PromptInput.Navigate) -> None:
        menu = self.query_one(CommandMenu)
        if event.key == "up":
            menu.move(-1)
        elif event.key == "down":
            menu.move(+1)
        else:
            chosen = menu.chosen()
            if chosen is None:
                return
            if isinstance(chosen, Choice):
                self.complete_choice(chosen, event.key)
                return
            typed = self.prompt.text.strip()
            if typed == f"/{chosen.name}" and (event.key == "enter" or not chosen.usage):
                # Already complete: Enter sends it as typed.
                menu.display = False
                self.prompt.menu_open = False
                self.prompt.submit()
                return
            self.prompt.load_text(f"/{chosen.name}" + (" " if chosen.usage else ""))
            self.prompt.move_cursor(self.prompt.document.end)
            menu.display = False
            self.prompt.menu_open = False
            if not chosen.usage:
                self.prompt.submit()

    def complete_choice(self, chosen: Choice, key: str) -> None:
        """An argument completion (a model name after ``/model ``): Tab, or Enter on a name
        being typed or picked with the arrows, fills it in; Enter on a complete line, or on
        ``/model `` with nothing picked, sends what was typed."""
        menu = self.query_one(CommandMenu)
        typed = self.prompt.text.strip()
        menu.display = False
        self.prompt.menu_open = False
        if key == "enter" and (typed == chosen.text or (" " not in typed and not menu.moved)):
            self.prompt.submit()
            return
        self.prompt.load_text(chosen.text)
        self.prompt.move_cursor(self.prompt.document.end)

    # ---------------------------------------------------------------- runs

    def reload_commands(self) -> list[str]:
        """Read the custom command files again (completion offers them); the notices about
        files a built-in hides or that are malformed."""
        self.custom_commands = load(self.workspace)
        self.query_one(CommandMenu).custom = menu_entries(self.custom_commands)
        return startup_notices(self.custom_commands)

    def send_custom(self, text: str) -> bool:
        """``/name args`` of a custom command: its text is sent (queued while a run goes on);
        False when no command file has that name (read again first: one may be new)."""
        self.reload_commands()
        name, _, arguments = text.strip()[1:].partition(" ")
        command = next((c for c in self.custom_commands if c.usable and c.name == name), None)
        if command is None:
            return False
        prompt = command.expand(arguments)
        if self.backend is None or self.running or self.switch_ready:
            self.queue.append(prompt)
            self.say(f"Queued: /{prompt.command}; it will be sent next.")
        else:
            self.start_run(prompt)
        return True

    def start_run(self, task: str | CommandPrompt) -> None:
        assert self.backend is not None
        names = tuple(chip(a) for a in self.attachments)
        shown = task.typed if isinstance(task, CommandPrompt) else task
        self.add_block(UserBlock(shown, attachments=names))
        self.interrupted = False
        self.run_ended.clear()
        self.status.set(running=True, step=0)
        self.run_worker_ = self.run_worker(
            self.drive(task), group="agent", exit_on_error=False, name="agent-run"
        )

    async def drive(self, task: str | CommandPrompt) -> None:
        """Consume one run's events. Never raises except on cancellation (Esc)."""
        assert self.backend is not None
        backend = self.backend
        parts, self.attachments = self.attachments, []
        mode = "plan" if self.plan_mode else "default"
        allowed, thinking = None, backend.thinking
        if isinstance(task, CommandPrompt):  # a custom command: its tools, its thinking
            allowed = task.allowed_tools
            if task.thinking is not None and task.thinking != thinking:
                backend.set_thinking(task.thinking, backend.thinking_budget)
            task = task.text
        stream = backend.stream([task, *parts] if parts else task, mode=mode, allowed_tools=allowed)
        try:
            async with contextlib.aclosing(stream):  # type: ignore[type-var]
                async for event in stream:
                    self.handle_event(event)
        except asyncio.CancelledError:
            self.on_interrupted()
            raise
        except Exception as e:
            self.finish_open_blocks(cancel_cards=True)
            self.add_block(NoticeBlock(error_text(e), level="error", title="The run failed"))
        finally:
            if backend.thinking != thinking:  # the command's setting was for its message only
                backend.set_thinking(thinking, backend.thinking_budget)
            self.flush_frame()
            self.status.set(running=False)
            self.run_ended.set()  # the agent's session is free again (the stream is closed)
            self.call_later(self.after_run)

    def after_run(self) -> None:
        self.archive_settled()
        self.set_timer(SETTLE_SECONDS, self.settle_heap)
        self.next_queued()

    def next_queued(self) -> None:
        """Send the next queued task, unless a new engine is about to take over (the switch
        sends it once the new engine is in place)."""
        if self.queue and not self.running and self.backend is not None and not self.switch_ready:
            self.start_run(self.queue.pop(0))

    def on_interrupted(self) -> None:
        self.interrupted = True
        self.finish_open_blocks(cancel_cards=True)
        for request, _card in self.approvals:
            request.respond("deny")
        self.approvals.clear()
        self.add_block(NoticeBlock("Interrupted: the partial turn is kept.", level="warning"))

    def finish_open_blocks(self, *, cancel_cards: bool = False) -> None:
        now = self.clock()
        for state in self.steps.values():
            if state.thinking is not None:
                state.thinking.finish(now)
            if state.answer is not None:
                self.dirty.discard(state.answer)
                state.answer.flush()
                state.answer.closed = True
        if cancel_cards:
            for card in self.cards.values():
                if card.status in ("queued", "approval", "running"):
                    card.set_status("cancelled", now)

    def step_state(self, step: int) -> StepState:
        state = self.steps.get(step)
        if state is None:
            state = self.steps[step] = StepState(step)
            self.status.set(step=step)
        return state

    def end_thinking(self, state: StepState) -> None:
        if state.thinking is not None and not state.thinking.finished:
            self.dirty.discard(state.thinking)
            now = self.clock()
            state.thinking.finish(now)
            state.thinking_end = now

    def end_answer(self, state: StepState) -> None:
        if state.answer is not None:
            self.dirty.discard(state.answer)
            state.answer.flush()
            state.answer.closed = True
            if state.answer_end is None:
                state.answer_end = self.clock()

    def card_for(self, call: ToolCall, step: int) -> ToolCard:
        card = self.cards.get(call.id)
        if card is None:
            before = self.backend.file_before(call.id) if self.backend is not None else None
            card = ToolCard(
                call, step=step, workspace=self.workspace, now=self.clock(), before=before
            )
            self.cards[call.id] = card
            self.step_state(step).cards[call.id] = card
            self.add_block(card)
        return card

    def handle_event(self, event: Event) -> None:
        match event:
            case RunStarted():
                self.steps.clear()
                self.cards.clear()
                self.agent_cards.clear()
            case ThinkingDelta():
                state = self.step_state(event.step)
                if state.thinking is None:
                    now = self.clock()
                    state.thinking_start = now
                    state.thinking = ThinkingBlock(
                        display_mode=self.thinking_display, started=now, step=event.step
                    )
                    self.add_block(state.thinking)
                state.thinking.write(event.text)
                self.dirty.add(state.thinking)
            case TextDelta():
                state = self.step_state(event.step)
                self.end_thinking(state)
                if state.answer is None:
                    state.answer_start = self.clock()
                    state.answer = AnswerBlock(event.step)
                    self.add_block(state.answer)
                state.answer.write(event.text)
                self.dirty.add(state.answer)
            case ToolCallStarted():
                state = self.step_state(event.step)
                self.end_thinking(state)
                self.end_answer(state)
                card = self.card_for(event.call, event.step)
                if card.status == "queued":
                    card.set_status("running", self.clock())
            case ApprovalRequested() if event.agent and event.agent in self.agent_cards:
                # A sub-agent asks: its call is a line of the card that runs it.
                card = self.agent_cards[event.agent]
                card.child_call_status(event.agent, event.call, "approval")
                self.approvals.append((event, card))
                self.show_next_approval()
            case ApprovalRequested():
                state = self.step_state(event.step)
                self.end_thinking(state)
                self.end_answer(state)
                card = self.card_for(event.call, event.step)
                card.set_status("approval", self.clock())
                self.approvals.append((event, card))
                self.show_next_approval()
            case ToolCallFinished():
                card = self.card_for(event.call, event.step)
                seconds = max(0.0, self.clock() - card.started)
                card.finish(event.result, seconds)
                if event.call.name == "skill" and not event.result.is_error:
                    name = event.call.arguments.get("name", "?")
                    self.say(f"📘 Skill loaded: {name} (its instructions are in the conversation)")
            case PlanUpdated():
                self.plan.set_items(event.items)
                self.plan.display = bool(event.items)
            case HistoryCompacted():
                marker = CompactionMarker(event)
                self.markers.append(marker)
                self.add_block(marker)
            case Usage():
                self.on_usage(event)
            case Notice():
                self.add_block(NoticeBlock(event.message, level=event.level))
            case SubagentEvent():
                self.on_subagent(event)
            case HookRan():
                if event.outcome != "allowed" or event.message:  # silent when it just agreed
                    said = f": {event.message}" if event.message else ""
                    hook_level: NoticeLevel = "info" if event.outcome == "allowed" else "warning"
                    text = f"{event.event} hook {event.command} {event.outcome}{said}"
                    self.add_block(NoticeBlock(text, level=hook_level))
            case TurnFinished():
                state = self.step_state(event.step)
                self.end_thinking(state)
                self.end_answer(state)
                self.on_turn_finished(state, event.turn)
                self.archive_pending = True  # moved a block per frame (bounded frame cost)
                self.heap.freeze()  # no full collection walks this turn's objects while streaming
            case RunFinished():
                self.finish_open_blocks()
                self.status.set(step=event.steps or self.status.info.step)
                if event.reason == "final_answer" and self.plan_mode:
                    self.plan_ready()
                if event.reason != "final_answer":
                    level: NoticeLevel = "error" if event.error else "warning"
                    text = STOP_TEXT.get(event.reason, f"Stopped: {event.reason}.")
                    if event.error:
                        self.add_block(NoticeBlock(event.error, level=level, title=text))
                    else:
                        self.add_block(NoticeBlock(text, level=level))
            case _:
                assert_never(event)

    def on_subagent(self, event: SubagentEvent) -> None:
        """A sub-agent's event goes to the card of the call that runs it: a child's to the
        parent's task card, a grandchild's to the card its parent child is shown in."""
        card = self.agent_cards.get(event.agent)
        if card is None:
            card = self.agent_cards.get(parent_path(event.agent)) or self.cards.get(event.call_id)
            if card is None:
                return  # a call the transcript does not show (cleared meanwhile)
            self.agent_cards[event.agent] = card
        card.subagent_event(event.agent, event.call_id, event.event, self.clock())
        self.dirty.add(card)

    def on_turn_finished(self, state: StepState, turn: ModelTurn) -> None:
        """The finished turn is authoritative: reconcile what the deltas showed with it."""
        now = self.clock()
        anchor = state.answer or next(iter(state.cards.values()), None)
        if turn.reasoning and state.thinking is None:
            state.thinking = ThinkingBlock(
                display_mode=self.thinking_display, started=now, step=state.step
            )
            state.thinking.write(turn.reasoning)
            state.thinking.finish(now)
            self.transcript.mount(state.thinking, before=anchor)
        elif (
            state.thinking is not None
            and turn.reasoning is not None
            and state.thinking.text.strip() != turn.reasoning.strip()
        ):
            state.thinking.set_text(turn.reasoning)
        if turn.text.strip() and state.answer is None:
            state.answer = AnswerBlock(state.step)
            state.answer.set_text(turn.text)
            self.transcript.mount(state.answer, before=next(iter(state.cards.values()), None))
        elif state.answer is not None and state.answer.text.strip() != turn.text.strip():
            if turn.text.strip():
                state.answer.set_text(turn.text)
            else:
                state.answer.remove()
                state.answer = None
        if state.thinking is not None and turn.usage.thinking_tokens:
            state.thinking.set_tokens(turn.usage.thinking_tokens)
        for result in turn.tool_results:
            card = self.cards.get(result.call_id)
            if card is not None and card.result is None:
                card.finish(result, max(0.0, now - card.started))

    def on_usage(self, event: Usage) -> None:
        state = self.step_state(event.step)
        if state.thinking is not None and event.thinking_tokens:
            state.thinking.set_tokens(event.thinking_tokens)
        think_tps = answer_tps = None
        if state.thinking_start is not None and state.thinking_end is not None:
            seconds = state.thinking_end - state.thinking_start
            if seconds > 0 and event.thinking_tokens:
                think_tps = event.thinking_tokens / seconds
        if state.answer_start is not None:
            end = state.answer_end if state.answer_end is not None else self.clock()
            seconds = end - state.answer_start
            answer_tokens = event.generated_tokens - event.thinking_tokens
            if seconds > 0 and answer_tokens > 0:
                answer_tps = answer_tokens / seconds
        cache = event.cached_prompt_tokens / event.prompt_tokens if event.prompt_tokens else None
        self.status.set(
            context_tokens=event.context_tokens,
            context_limit=event.context_limit,
            context_window=event.context_window,
            cache_hit=cache,
            thinking_tps=think_tps,
            answer_tps=answer_tps,
            step=event.step,
        )

    # ---------------------------------------------------------------- approvals

    def show_next_approval(self) -> None:
        if self.approval_open or not self.approvals:
            return
        request, card = self.approvals[0]
        self.approval_open = True

        def decided(decision: ApprovalDecision | None) -> None:
            self.approval_open = False
            if self.approvals and self.approvals[0][0] is request:
                self.approvals.pop(0)
            choice: ApprovalDecision = decision or "deny"
            request.respond(choice)
            status: ToolStatus = "denied" if choice == "deny" else "running"
            if not (request.agent and card.child_call_status(request.agent, request.call, status)):
                card.set_status(status, self.clock())
            self.prompt.focus()
            self.show_next_approval()

        diff, who = card.diff, ""
        if request.agent and request.agent in card.subagents:
            # The call has not run yet, so the file as it is now is the one it changes.
            diff = tool_diff(request.call.name, request.call.arguments, self.workspace)
            who = agent_label(request.agent)
        self.push_screen(ApprovalScreen(request.call, request.reason, diff, agent=who), decided)

    # ---------------------------------------------------------------- actions

    def action_ctrl_c(self) -> None:
        now = self.clock() if self.clock is time.monotonic else time.monotonic()
        if now - self.last_ctrl_c <= QUIT_WINDOW:
            self.exit(0)
            return
        self.last_ctrl_c = now
        self.notify("Press Ctrl+C again to quit.", timeout=QUIT_WINDOW)

    def action_interrupt(self) -> None:
        if len(self.screen_stack) > 1:
            # A modal is open: Esc belongs to it (deny / close).
            screen = self.screen
            if isinstance(screen, ApprovalScreen):
                screen.action_decide("deny")
            elif isinstance(screen, SessionPicker | RewindPicker | RewindConfirm):
                screen.action_cancel()
            return
        menu = self.query_one(CommandMenu)
        if menu.display:
            menu.display = False
            self.prompt.menu_open = False
            return
        if self.running and self.run_worker_ is not None:
            self.run_worker_.cancel()
            return
        if not self.prompt.text.strip():
            now = time.monotonic()
            if now - self.last_escape <= QUIT_WINDOW:
                self.last_escape = -1e9
                self.run_command("rewind", "")
            else:
                self.last_escape = now

    def action_cycle_approval(self) -> None:
        """Shift+Tab: the approval modes, then plan mode, then the first approval mode."""
        if self.plan_mode:
            self.set_plan_mode(False, approval=APPROVAL_MODES[0])
            return
        current = self.status.info.approval
        index = APPROVAL_MODES.index(current) if current in APPROVAL_MODES else -1
        if index == len(APPROVAL_MODES) - 1:
            self.set_plan_mode(True)
        else:
            self.set_approval(APPROVAL_MODES[index + 1])

    def set_plan_mode(self, on: bool, *, approval: str | None = None) -> None:
        """Enter plan mode (only read-only tools and update_plan; the grammar enforces it), or
        leave it for ``approval`` (default: the approval mode it was entered from)."""
        if on == self.plan_mode:
            return
        if on:
            self.approval_before_plan = self.status.info.approval
            self.plan_mode = True
            self.status.set(approval="plan")
            self.notify("Plan mode: the agent reads and plans, it changes nothing", timeout=2)
        else:
            self.plan_mode = False
            self.set_approval(approval or self.approval_before_plan)

    def plan_ready(self) -> None:
        items = self.plan.items
        lines = [f"- {'[x]' if i.status == 'done' else '[ ]'} {i.text}" for i in items]
        body = "\n".join(lines) if lines else "(the plan is the answer above)"
        self.add_block(
            NoticeBlock(
                f"{body}\n\n/accept carries it out (back to {self.approval_before_plan} mode); "
                "or write what to change and the agent plans again.",
                title="Plan ready",
            )
        )

    def command_context(self, backend: Backend, name: str, arg: str) -> None:
        """/memory [edit], /skills, /init: the project context (AGENTS.md, skills)."""
        if name == "init":
            if self.running:
                self.queue.append(INIT_TASK)
            else:
                self.start_run(INIT_TASK)
            return
        if name == "memory" and arg == "edit":
            self.edit_memory()
            return
        context = backend.project_context()
        if name == "memory":
            lines = [
                f"- `{m.path}` ({m.scope}, {m.size} characters{', cut' if m.cut else ''})"
                for m in context.memory
            ]
            text = "\n".join(lines) or "No AGENTS.md memory is loaded. /init writes one."
            self.say("**Memory**\n\n" + text, markdown=True)
            return
        lines = [
            f"- **{s.name}** — {s.description}" if s.error is None else f"- ⚠ {s.error}"
            for s in context.skills
        ]
        text = "\n".join(lines) or "No skills (folders with a SKILL.md in .gemma-agent/skills/)."
        self.say("**Skills**\n\n" + text, markdown=True)

    def command_agents(self, backend: Backend) -> None:
        """/agents: the agent types the task tool can start, and where each comes from."""
        found = backend.agent_types()
        if found is None:
            self.say("Sub-agents are off: this agent has no task tool.")
            return
        types, problems = found
        home = Path.home()
        lines = []
        for t in types:
            where = t.source
            if where != "built-in":
                path = Path(where)
                if self.workspace is not None and path.is_relative_to(self.workspace.resolve()):
                    where = str(path.relative_to(self.workspace.resolve()))
                elif path.is_relative_to(home):
                    where = "~/" + str(path.relative_to(home))
                where = f"`{where}`"
            lines.append(f"- **{t.name}** — {t.description} ({where})")
        lines += [f"- ⚠ {p}" for p in problems]
        self.say(
            "**Agent types** (the task tool starts them; add your own as Markdown files in "
            "`.gemma-agent/agents/`)\n\n" + "\n".join(lines),
            markdown=True,
        )

    def edit_memory(self) -> None:
        """Open the workspace's AGENTS.md in $EDITOR (the app is suspended meanwhile)."""
        import os
        import shlex
        import subprocess

        path = (self.workspace or Path.cwd()) / "AGENTS.md"
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if not editor:
            self.say(f"Set $EDITOR to edit {path} from here.", level="warning")
            return
        try:
            with self.suspend():
                subprocess.run([*shlex.split(editor), str(path)], check=False)
        except Exception as e:  # SuspendNotSupported (no terminal), a missing editor
            self.say(f"Could not open {path} in {editor}: {e}", level="warning")
            return
        if self.backend is not None:
            self.backend.project_context()  # read again: the next request sees the change
        self.say(f"{path} saved; the next request uses it.")

    def accept_plan(self, arg: str) -> None:
        if not self.plan_mode:
            self.say("Not in plan mode: Shift+Tab past yolo enters it.", level="warning")
            return
        self.set_plan_mode(False)
        task = arg or "The plan is accepted: carry it out."
        if self.backend is None or self.running or self.switch_ready:
            self.queue.append(task)
        else:
            self.start_run(task)

    def action_cycle_thinking_display(self) -> None:
        index = THINKING_DISPLAYS.index(self.thinking_display)
        self.set_thinking_display(THINKING_DISPLAYS[(index + 1) % len(THINKING_DISPLAYS)])

    def set_approval(self, mode: str) -> None:
        self.plan_mode = False  # an approval mode replaces plan mode
        if self.backend is not None:
            self.backend.set_approval(mode)
        self.status.set(approval=mode)
        self.notify(f"Approval mode: {mode}", timeout=2)

    def set_thinking_display(self, mode: ThinkingDisplay) -> None:
        self.thinking_display = mode
        for block in self.blocks():
            if isinstance(block, ThinkingBlock):
                block.set_display_mode(mode)
        self.archive.rerender()
        self.notify(f"Thinking display: {mode}", timeout=2)

    # ---------------------------------------------------------------- commands

    def attach(self, arg: str) -> bool:
        """``/attach PATH``: an image or audio file goes with the next message."""
        from ..agent import load_media

        if not arg:
            self.say("Usage: /attach PATH (an image or audio file)", level="warning")
            return False
        path = pasted_path(arg, self.workspace)
        if path is None:  # not a media path we recognise: let load_media say why
            path = Path(arg.strip().strip("'\"")).expanduser()
            if not path.is_absolute() and self.workspace is not None:
                path = self.workspace / path
        try:
            media = load_media(path)
        except ConfigError as e:
            self.say(f"Cannot attach: {e}", level="warning")
            return False
        self.attachments.append(media)
        kind = "audio" if getattr(media, "seconds", None) is not None else "image"
        note = ""
        info = getattr(self.backend, "engine_info", None)
        if info is not None and kind not in info.modalities:
            note = f" Note: {info.model} takes no {kind} input; the run will refuse it."
        self.say(f"📎 {media.describe()} — attached to your next message.{note}")
        return True

    def attach_pasted(self, text: str) -> bool:
        """A message that is only the path of an image/audio file (a file dropped on the
        terminal pastes its path) attaches the file instead of being sent."""
        path = pasted_path(text, self.workspace)
        return path is not None and self.attach(str(path))

    def command_processes(self, backend: Backend) -> None:
        """`/processes`: the background commands, their status, runtime and last lines."""
        lines = []
        for p in backend.processes():
            code = f" ({p.exit_code})" if p.exit_code is not None else ""
            lines.append(f"- **{p.id}** · {p.status}{code} · {p.runtime:.0f} s · `{p.command}`")
            lines += [f"    {line}" for line in p.last_lines]
        self.say("\n".join(lines) or "No background process.", markdown=True)

    def command_mcp(self, backend: Backend, arg: str) -> None:
        """`/mcp`: each server's state and tools; `/mcp trust`: trust the project's servers."""
        if arg == "trust":
            if self.running:
                self.say(
                    "/mcp trust waits for the run to end (Esc interrupts it).", level="warning"
                )
            else:
                self.run_worker(self.trust_mcp(backend), group="command")
            return
        if arg:
            self.say("Usage: /mcp [trust]", level="warning")
            return
        lines = []
        for st in backend.mcp_status():
            tools = ", ".join(st.tools) or "no tools"
            detail = f" — {st.detail}" if st.detail else ""
            lines.append(f"- **{st.name}** · {st.state}{detail} · {tools}")
        self.say(
            "\n".join(lines)
            or "No MCP server configured (`.mcp.json`, `[mcp_servers.NAME]` in config.toml).",
            markdown=True,
        )

    async def trust_mcp(self, backend: Backend) -> None:
        names, problems = await backend.trust_mcp()
        if not names:
            self.say("No project MCP server waits for trust.")
            return
        self.say(
            f"Trusted the project's MCP servers ({', '.join(names)}), remembered until the set "
            "changes; their tools are the agent's from the next request (`/mcp` lists them)."
        )
        for problem in problems:
            self.say(problem, level="warning")

    def say(self, message: str, *, level: NoticeLevel = "info", markdown: bool = False) -> None:
        self.add_block(NoticeBlock(message, level=level, markdown=markdown))

    def run_command(self, name: str, arg: str) -> None:
        if name not in BY_NAME:
            self.say(f"Unknown command /{name}. Type /help for the list.", level="warning")
            return
        if name == "help":
            self.say(help_text(menu_entries(self.custom_commands)), markdown=True)
            return
        if name == "quit":
            self.exit(0)
            return
        if name == "plan":
            self.plan.display = not self.plan.display
            if self.plan.display and not self.plan.items:
                self.plan.set_items(())
            return
        if name == "export":
            self.export(arg)
            return
        if name == "attach":
            self.attach(arg)
            return
        if name == "accept":
            self.accept_plan(arg)
            return
        if name == "commands":
            self.reload_commands()
            self.say(listing(self.custom_commands), markdown=True)
            return
        if name in ("memory", "skills", "init") and self.backend is not None:
            self.command_context(self.backend, name, arg)
            return
        if name == "agents" and self.backend is not None:
            self.command_agents(self.backend)
            return
        backend = self.backend
        if backend is None:
            self.say(f"/{name} needs the engine; it is still starting.", level="warning")
            return
        if self.running and name in (
            "compact", "undo-compact", "clear", "resume", "sessions", "rewind"
        ):  # fmt: skip
            self.say(f"/{name} waits for the run to end (Esc interrupts it).", level="warning")
            return
        if self.switch is not None and name == "compact":
            self.say(f"/compact waits for the switch to {self.switch.name}.", level="warning")
            return
        match name:
            case "think":
                self.command_think(backend, arg)
            case "approval":
                if arg not in APPROVAL_MODES:
                    self.say(f"Usage: /approval {'|'.join(APPROVAL_MODES)}", level="warning")
                else:
                    self.set_approval(arg)
            case "model":
                self.switcher.command(backend, arg)
            case "tools":
                lines = [
                    f"- **{n}** — {d.splitlines()[0] if d else ''}" for n, d in backend.tool_list()
                ]
                self.say("\n".join(lines) or "No tools.", markdown=True)
            case "mcp":
                self.command_mcp(backend, arg)
            case "processes":
                self.command_processes(backend)
            case "compact":
                self.run_worker(self.command_compact(backend, arg or None), group="command")
            case "undo-compact":
                self.run_worker(self.command_undo(backend), group="command")
            case "rewind":
                self.run_worker(command_rewind(self, arg), group="command")
            case "clear":
                backend.new_session()
                self.clear_transcript()
                self.plan.set_items(())
                self.plan.display = False
                self.status.set(context_tokens=0, step=0, cache_hit=None)
                self.say("New session.")
            case "sessions":
                self.pick_session(backend)
            case "resume":
                if not arg:
                    self.pick_session(backend)
                else:
                    self.resume_session(arg)
            case "save":
                path = backend.session_file()
                if backend.session_id is None or path is None:
                    self.say("Nothing to save yet: the session starts with the first task.")
                else:
                    self.say(
                        f"Session {backend.session_id} is saved (after every step) at {path}.\n"
                        f"Resume with: gemma-agent --resume {backend.session_id}"
                    )
            case _:
                raise AssertionError(name)

    # ---------------------------------------------------------------- /model

    @property
    def switch(self) -> ModelSwitch | None:
        """A `/model` switch under way (None: none)."""
        return self.switcher.switch

    @property
    def switch_ready(self) -> bool:
        """Tasks wait: a new engine takes over when the run in flight ends, or (--replace) the
        current engine is being stopped."""
        return self.switcher.holds_tasks

    def command_think(self, backend: Backend, arg: str) -> None:
        words = arg.split()
        if words == ["on"] or words == ["off"]:
            backend.set_thinking(words[0] == "on", backend.thinking_budget)
        elif len(words) == 2 and words[0] == "budget" and words[1].isdigit():
            backend.set_thinking(True, int(words[1]))
        elif len(words) == 2 and words[0] == "budget" and words[1] in ("none", "off"):
            backend.set_thinking(backend.thinking, None)
        elif len(words) == 1 and words[0] in THINKING_DISPLAYS:
            self.set_thinking_display(words[0])  # type: ignore[arg-type]
            return
        else:
            self.say(
                "Usage: /think on | off | budget N | budget none | full | collapsed | hidden",
                level="warning",
            )
            return
        self.status.set(thinking=backend.thinking, thinking_budget=backend.thinking_budget)
        budget = (
            f", budget {backend.thinking_budget}" if backend.thinking_budget is not None else ""
        )
        self.say(f"Thinking {'on' if backend.thinking else 'off'}{budget}.")

    async def command_compact(self, backend: Backend, focus: str | None) -> None:
        try:
            event = await backend.compact(focus)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.add_block(NoticeBlock(error_text(e), level="error", title="Compaction failed"))
            return
        if event is None:
            self.say("Nothing to compact.")
            return
        marker = CompactionMarker(event)
        self.markers.append(marker)
        self.add_block(marker)
        self.status.set(context_tokens=event.tokens_after)

    async def command_undo(self, backend: Backend) -> None:
        try:
            undone = await backend.undo_compaction()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.add_block(NoticeBlock(error_text(e), level="error", title="Undo failed"))
            return
        if not undone:
            self.say("No compaction to undo.")
            return
        live = [m for m in self.markers if not m.undone]
        if live:
            live[-1].mark_undone()
            self.refresh_block(live[-1])
            self.status.set(context_tokens=live[-1].event.tokens_before)
        self.say("The last compaction was undone.")

    def pick_session(self, backend: Backend) -> None:
        sessions = backend.sessions()
        if not sessions:
            self.say("No saved sessions in this workspace yet.")
            return

        def chosen(session_id: str | None) -> None:
            self.prompt.focus()
            if session_id:
                self.resume_session(session_id)

        self.push_screen(SessionPicker(sessions), chosen)

    def resume_session(self, session_id: str) -> None:
        assert self.backend is not None
        try:
            history = self.backend.resume(session_id)
        except Exception as e:
            self.add_block(NoticeBlock(error_text(e), level="error", title="Cannot resume"))
            return
        self.clear_transcript()
        self.render_history(history)
        self.say(f"Resumed session {session_id} ({len(history)} messages).")
        last = self.backend.session_model()
        if last is not None and not same_model(last[0], self.backend.model):
            self.say(
                f"This session last ran on {last[0]}; it continues on {self.backend.model} "
                f"(/model {last[0]} switches back, the conversation is kept)."
            )

    def render_history(self, history: list[Message]) -> None:
        """Show a saved conversation: settled blocks, straight into the archive."""
        now = self.clock()
        blocks: list[Widget] = []
        for message in history:
            if isinstance(message, UserMessage):
                names = tuple(chip(a) for a in message.attachments)
                blocks.append(UserBlock(message.content, attachments=names))
            elif isinstance(message, SummaryMessage):
                blocks.append(NoticeBlock(message.content, title="Summary of earlier turns"))
            else:
                if message.reasoning:
                    think = ThinkingBlock(display_mode=self.thinking_display, started=now, step=0)
                    think.write(message.reasoning)
                    think.finish(now)
                    if message.usage.thinking_tokens:
                        think.set_tokens(message.usage.thinking_tokens)
                    blocks.append(think)
                if message.text:
                    answer = AnswerBlock(0)
                    answer.write(message.text)
                    answer.closed = True
                    blocks.append(answer)
                results = {r.call_id: r for r in message.tool_results}
                for call in message.tool_calls:
                    card = ToolCard(call, step=0, workspace=None, now=now)
                    result = results.get(call.id)
                    if result is not None:
                        card.finish(result, 0.0)
                        card.seconds = None
                    else:
                        card.status = "cancelled"
                    blocks.append(card)
        self.add_saved_subagents([b for b in blocks if isinstance(b, ToolCard)])
        self.archive.add(blocks, show_last=Archive.SHOW_LAST)

    def add_saved_subagents(self, cards: list[ToolCard]) -> None:
        """Fill the resumed session's task cards with the sub-agents they ran (from the
        children's logs): parents before their children, each under the call that ran it."""
        backend = self.backend
        if not cards or backend is None or backend.session_id is None:
            return
        runs = backend.subagent_runs(backend.session_id)
        by_call = {card.call.id: card for card in cards}
        by_path: dict[str, ToolCard] = {}
        for run in sorted(runs, key=lambda r: r.agent.count("/")):
            card = by_path.get(parent_path(run.agent)) or by_call.get(run.call_id)
            if card is not None:
                card.add_saved_child(run)
                by_path[run.agent] = card

    def export(self, arg: str) -> None:
        text = transcript_markdown(self.blocks())
        if arg:
            path = Path(arg).expanduser()
        else:
            sid = self.backend.session_id if self.backend is not None else None
            path = Path(f"gemma-agent-{sid or 'transcript'}.md")
        if not path.is_absolute() and self.workspace is not None:
            path = self.workspace / path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            self.say(f"Could not write {path}: {e}", level="error")
            return
        self.say(f"Transcript written to {path}.")

    async def on_unmount(self) -> None:
        self.heap.release()
        await self.switcher.aclose()  # a switch cut short by leaving: no engine left running
        if self.backend is not None:
            with contextlib.suppress(Exception):
                await self.backend.aclose()


def _settled(block: Widget) -> bool:
    """A block that will not change any more (it can move to the archive)."""
    if isinstance(block, ThinkingBlock):
        return block.finished
    if isinstance(block, AnswerBlock):
        return block.closed
    if isinstance(block, ToolCard):
        return block.status in ("done", "failed", "denied", "cancelled")
    return True
