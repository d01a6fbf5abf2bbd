"""Modal screens: tool approval, the session picker, trusting a project's hooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from ..agent import ToolCall
from ..events import ApprovalDecision
from .blocks import diff_text
from .format import format_arguments


class ApprovalScreen(ModalScreen[ApprovalDecision]):
    """Allow once / always / deny, with the command or the diff shown."""

    DEFAULT_CSS = """
    ApprovalScreen { align: center middle; }
    ApprovalScreen > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    ApprovalScreen .title { text-style: bold; color: $text-warning; }
    ApprovalScreen .reason { color: $text-muted; margin: 0 0 1 0; }
    ApprovalScreen VerticalScroll { height: auto; max-height: 24; background: $panel; padding: 0 1; }
    ApprovalScreen Horizontal { height: auto; margin: 1 0 0 0; }
    ApprovalScreen Button { margin: 0 1 0 0; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,a", "decide('allow')", "Allow once", show=False),
        Binding("l", "decide('allow_always')", "Always", show=False),
        Binding("n,d,escape", "decide('deny')", "Deny", show=False),
    ]

    def __init__(self, call: ToolCall, reason: str, diff: str | None, *, agent: str = "") -> None:
        super().__init__()
        self.call = call
        self.reason = reason
        self.diff = diff
        self.agent = agent  # a sub-agent's path below the run ("explore#1"); "" for the run's

    @property
    def title_text(self) -> str:
        if self.agent:
            return f"{self.agent} wants to run {self.call.name}. Allow it?"
        return f"Allow {self.call.name}?"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, classes="title")
            if self.reason:
                yield Static(self.reason, classes="reason")
            with VerticalScroll():
                yield Static(self._body(), id="approval-body")
            with Horizontal():
                yield Button("Allow once (y)", id="allow", variant="success")
                yield Button("Always (l)", id="allow_always", variant="primary")
                yield Button("Deny (n)", id="deny", variant="error")

    def _body(self) -> Text:
        args = self.call.arguments
        if self.call.name == "run_shell" and isinstance(args.get("command"), str):
            text = Text("$ ", style="bold")
            text.append(args["command"])
            rest = {k: v for k, v in args.items() if k != "command"}
            if rest:
                text.append("\n" + format_arguments(rest), style="dim")
            return text
        if self.diff is not None:
            return diff_text(self.diff)
        return Text(format_arguments(args, folded=False) or "(no arguments)")

    def on_mount(self) -> None:
        self.query_one("#allow", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_decide(str(event.button.id))

    def action_decide(self, decision: str) -> None:
        assert decision in ("allow", "allow_always", "deny")
        self.dismiss(decision)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class SessionEntry:
    session_id: str
    title: str  # first user message, one line
    when: str


class SessionPicker(ModalScreen[str | None]):
    DEFAULT_CSS = """
    SessionPicker { align: center middle; }
    SessionPicker > Vertical {
        width: 90%; max-width: 100; height: auto; max-height: 80%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    SessionPicker OptionList { height: auto; max-height: 20; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Close", show=False)]

    def __init__(self, sessions: list[SessionEntry]) -> None:
        super().__init__()
        self.sessions = sessions

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Resume a session (Enter) · Esc closes", classes="title")
            options = [
                Option(Text.assemble((s.when, "dim"), "  ", s.title or "(empty)"), id=s.session_id)
                for s in self.sessions
            ]
            yield OptionList(*options, id="session-list")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HookTrustScreen(ModalScreen[bool]):
    """Run the project's hooks? The commands listed; the answer is remembered per project until
    the set changes."""

    DEFAULT_CSS = """
    HookTrustScreen { align: center middle; }
    HookTrustScreen > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    HookTrustScreen .title { text-style: bold; color: $text-warning; }
    HookTrustScreen .reason { color: $text-muted; margin: 0 0 1 0; }
    HookTrustScreen VerticalScroll { height: auto; max-height: 24; background: $panel; padding: 0 1; }
    HookTrustScreen Horizontal { height: auto; margin: 1 0 0 0; }
    HookTrustScreen Button { margin: 0 1 0 0; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Trust", show=False),
        Binding("n,escape", "answer(False)", "Do not run", show=False),
    ]

    def __init__(self, commands: list[str]) -> None:
        super().__init__()
        self.commands = commands

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Run this project's hooks?", classes="title")
            yield Static(
                "They come with the workspace (.gemma-agent/settings.json) and run these "
                "commands on this machine. Your answer is remembered until the set changes.",
                classes="reason",
            )
            with VerticalScroll():
                yield Static(Text("\n".join(self.commands)), id="hook-commands")
            with Horizontal():
                yield Button("Trust and run them (y)", id="trust", variant="warning")
                yield Button("Do not run them (n)", id="decline", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#decline", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_answer(event.button.id == "trust")

    def action_answer(self, trust: bool) -> None:
        self.dismiss(trust)
