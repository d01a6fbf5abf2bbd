"""The app's fixed parts: status bar, engine progress line, prompt input, command menu."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widgets import OptionList, Static, TextArea
from textual.widgets.option_list import Option

from .commands import Choice, Command, complete, complete_argument
from .format import fmt_tokens

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@dataclass(frozen=True, slots=True)
class StatusInfo:
    model: str = "…"
    variant: str = ""
    thinking: bool = False
    thinking_budget: int | None = None
    context_tokens: int = 0
    context_limit: int = 0  # usable: the window minus the output reserve
    context_window: int = 0  # the model's whole context (0: unknown, the limit stands in)
    cache_hit: float | None = None  # 0..1 of the last request's prompt
    thinking_tps: float | None = None
    answer_tps: float | None = None
    step: int = 0
    max_steps: int = 0
    approval: str = "ask"
    running: bool = False
    sandbox_off: bool = False  # run_shell wanted bubblewrap but it cannot run here
    processes: int = 0  # background processes running (run_shell background: true)


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__(id="status")
        self.info = StatusInfo()

    def on_mount(self) -> None:
        self._paint()

    def set(self, **changes: object) -> None:
        new = replace(self.info, **changes)  # type: ignore[arg-type]
        if new != self.info:
            self.info = new
            self._paint()

    def _paint(self) -> None:
        self.update(status_text(self.info))


def status_text(i: StatusInfo) -> Text:
    """The status line of ``i``."""
    t = Text()
    t.append(f"{i.model}", style="bold")
    if i.variant:
        t.append(f" ({i.variant})")
    t.append(" │ ")
    if i.thinking:
        budget = f" ≤{fmt_tokens(i.thinking_budget)}" if i.thinking_budget is not None else ""
        t.append(f"think on{budget}", style="cyan")
    else:
        t.append("think off")
    t.append(" │ ")
    if i.context_limit:
        # Against the whole window, so it reads at most 100%; the cells past the usable
        # limit are the output reserve (░), which compaction keeps free.
        window = max(i.context_window, i.context_limit)
        pct = 100 * i.context_tokens / window
        used = i.context_tokens / i.context_limit
        style = "red" if used >= 0.85 else "yellow" if used >= 0.6 else "green"
        reserve = (
            0 if window == i.context_limit else max(1, round(8 * (1 - i.context_limit / window)))
        )
        filled = min(8, round(pct / 12.5))
        free = max(0, 8 - reserve - filled)
        t.append("▰" * filled + "▱" * free, style=style)
        t.append("░" * (8 - filled - free), style="dim")
        t.append(f" {fmt_tokens(i.context_tokens)}/{fmt_tokens(window)} {pct:.0f}%")
    else:
        t.append("ctx –")
    t.append(" │ ")
    t.append("cache " + (f"{100 * i.cache_hit:.0f}%" if i.cache_hit is not None else "–"))
    t.append(" │ ")
    if i.thinking_tps is not None or i.answer_tps is not None:
        parts = []
        if i.thinking_tps is not None:
            parts.append(f"think {i.thinking_tps:.0f}")
        if i.answer_tps is not None:
            parts.append(f"out {i.answer_tps:.0f}")
        t.append(" / ".join(parts) + " tok/s")
    else:
        t.append("– tok/s")
    t.append(" │ ")
    t.append(f"step {i.step}" + (f"/{i.max_steps}" if i.max_steps else ""))
    t.append(" │ ")
    t.append(i.approval, style="bold yellow" if i.approval == "yolo" else "bold")
    if i.processes:
        t.append(" │ ")
        t.append(f"⚙ {i.processes} bg", style="bold cyan")
    if i.sandbox_off:
        t.append(" │ ")
        t.append("no sandbox", style="bold red")
    return t


class EngineProgress(Static):
    """A one-line progress indicator while the engine starts (model loading takes minutes)."""

    DEFAULT_CSS = """
    EngineProgress { height: 1; color: $text-warning; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__(id="engine-progress")
        self.what = ""
        self.elapsed = 0.0

    def show(self, what: str, elapsed: float) -> None:
        self.what = what
        self.elapsed = elapsed
        spin = SPINNER[int(elapsed * 5) % len(SPINNER)]
        self.update(f"{spin} {what} ({elapsed:.0f}s)")


class PromptInput(TextArea):
    """Multi-line prompt: Enter sends, Shift+Enter / Ctrl+J insert a newline, ↑/↓ history."""

    DEFAULT_CSS = """
    PromptInput { height: auto; max-height: 10; min-height: 3; border: round $primary; }
    PromptInput:focus { border: round $accent; }
    """

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Navigate(Message):
        """Up/down/tab while the command menu is open."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self) -> None:
        super().__init__(id="prompt", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        self.past: list[str] = []
        self._history_index: int | None = None
        self._draft = ""
        self.menu_open = False

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if key == "enter":
            self._stop(event)
            if self.menu_open:
                self.post_message(self.Navigate("enter"))
                return
            self.submit()
            return
        if key in ("shift+enter", "ctrl+j", "alt+enter"):
            self._stop(event)
            self.insert("\n")
            return
        if self.menu_open and key in ("up", "down", "tab"):
            self._stop(event)
            self.post_message(self.Navigate(key))
            return
        if key == "up" and self.cursor_location[0] == 0 and self.past:
            self._stop(event)
            self._history_step(-1)
            return
        last_row = self.cursor_location[0] == self.document.line_count - 1
        if key == "down" and last_row and self._history_index is not None:
            self._stop(event)
            self._history_step(+1)
            return
        await super()._on_key(event)

    @staticmethod
    def _stop(event: events.Key) -> None:
        event.stop()
        event.prevent_default()

    def submit(self) -> None:
        text = self.text
        if not text.strip():
            return
        if not self.past or self.past[-1] != text:
            self.past.append(text)
        self._history_index = None
        self._draft = ""
        self.clear()
        self.post_message(self.Submitted(text))

    def _history_step(self, delta: int) -> None:
        if self._history_index is None:
            if delta > 0:
                return
            self._draft = self.text
            index = len(self.past) - 1
        else:
            index = self._history_index + delta
        if index < 0:
            index = 0
        if index >= len(self.past):
            self._history_index = None
            self.load_text(self._draft)
        else:
            self._history_index = index
            self.load_text(self.past[index])
        self.move_cursor(self.document.end)


class CommandMenu(OptionList):
    """Slash-command completion shown above the prompt; after ``/model `` the model names."""

    DEFAULT_CSS = """
    CommandMenu { height: auto; max-height: 10; border: round $secondary; display: none; }
    """

    def __init__(self) -> None:
        super().__init__(id="command-menu")
        self.can_focus = False
        self.matches: list[Command] = []
        self.custom: list[Command] = []  # the custom commands (command files), offered too
        self.choices: list[Choice] = []  # argument completions (matches is then empty)
        self.moved = False  # the highlight was moved with the arrows since the menu opened

    def show_for(self, text: str) -> bool:
        matches = complete(text, self.custom)
        choices = [] if matches else complete_argument(text)
        shown = bool(matches or choices)
        if matches == self.matches and choices == self.choices and self.display == shown:
            return shown
        self.matches, self.choices, self.moved = matches, choices, False
        self.clear_options()
        for c in matches:
            label = Text(f"/{c.name}", style="bold")
            if c.usage:
                label.append(f" {c.usage}", style="dim")
            label.append(f"  {c.help}", style="dim italic")
            self.add_option(Option(label, id=c.name))
        for choice in choices:
            label = Text(choice.label, style="bold")
            label.append(f"  {choice.help}", style="dim italic")
            self.add_option(Option(label))
        self.display = shown
        if shown:
            self.highlighted = 0
        return shown

    def _count(self) -> int:
        return len(self.matches) or len(self.choices)

    def move(self, delta: int) -> None:
        if not self._count():
            return
        current = self.highlighted or 0
        self.highlighted = (current + delta) % self._count()
        self.moved = True

    def chosen(self) -> Command | Choice | None:
        if self.matches:
            return self.matches[self.highlighted or 0]
        if self.choices:
            return self.choices[self.highlighted or 0]
        return None
