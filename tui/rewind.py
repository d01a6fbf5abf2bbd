"""`/rewind` (and Esc Esc on an empty prompt): pick an earlier message, see what would change,
then restore code and conversation, code only, or conversation only. `/rewind undo` takes the
last rewind back. On the SDK's public surface only (`Agent.checkpoints`, `Agent.rewind`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from ..agent import Checkpoint, RewindResult
from .blocks import diff_text

if TYPE_CHECKING:
    from .app import GemmaApp

RewindChoice = Literal["both", "code", "conversation"]


def summary(point: Checkpoint) -> str:
    if not point.changes:
        return "no file changes since"
    added = sum(c.added for c in point.changes)
    removed = sum(c.removed for c in point.changes)
    return f"{len(point.changes)} file(s) +{added} −{removed} since"


class RewindPicker(ModalScreen[int | None]):
    """The earlier user messages, newest last, with what changed since each."""

    DEFAULT_CSS = """
    RewindPicker { align: center middle; }
    RewindPicker > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 80%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    RewindPicker OptionList { height: auto; max-height: 20; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Close", show=False)]

    def __init__(self, points: list[Checkpoint]) -> None:
        super().__init__()
        self.points = points

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Rewind to before which message? (Enter) · Esc closes", classes="title")
            options = [
                Option(
                    Text.assemble(p.title or "(empty)", "  ", (summary(p), "dim")), id=str(p.index)
                )
                for p in self.points
            ]
            yield OptionList(*options, id="rewind-list")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        options.highlighted = len(self.points) - 1

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(int(str(event.option.id)))

    def action_cancel(self) -> None:
        self.dismiss(None)


class RewindConfirm(ModalScreen[RewindChoice | None]):
    """The diff a rewind makes, files changed outside the agent, and the three choices."""

    DEFAULT_CSS = """
    RewindConfirm { align: center middle; }
    RewindConfirm > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    RewindConfirm .title { text-style: bold; }
    RewindConfirm .conflicts { color: $text-error; margin: 0 0 1 0; }
    RewindConfirm VerticalScroll { height: auto; max-height: 20; background: $panel; padding: 0 1; }
    RewindConfirm Horizontal { height: auto; margin: 1 0 0 0; }
    RewindConfirm Button { margin: 0 1 0 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "choose('both')", "Code and conversation", show=False),
        Binding("c", "choose('code')", "Code only", show=False),
        Binding("v", "choose('conversation')", "Conversation only", show=False),
        Binding("escape,n", "cancel", "Cancel", show=False),
    ]

    def __init__(self, plan: RewindResult) -> None:
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        plan = self.plan
        files = ", ".join(f"{c.path} ({c.status})" for c in plan.changes) or "no files"
        with Vertical():
            yield Static(f"Rewind to before: {plan.checkpoint.title}", classes="title")
            yield Static(
                f"Code: {files}. Conversation: {plan.messages_dropped} message(s) cut "
                "(kept in the session log; /rewind undo takes it back)."
            )
            if plan.conflicts:
                yield Static(
                    "Changed outside the agent since, and overwritten by a code rewind: "
                    + ", ".join(plan.conflicts),
                    classes="conflicts",
                )
            with VerticalScroll():
                yield Static(diff_text(plan.diff) if plan.diff else Text("(no file changes)"))
            with Horizontal():
                yield Button("Code and conversation (b)", id="both", variant="warning")
                yield Button("Code only (c)", id="code", variant="primary")
                yield Button("Conversation only (v)", id="conversation", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#both", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self.action_choose(str(event.button.id))

    def action_choose(self, choice: str) -> None:
        assert choice in ("both", "code", "conversation")
        self.dismiss(choice)  # type: ignore[arg-type]

    def action_cancel(self) -> None:
        self.dismiss(None)


async def command_rewind(app: GemmaApp, arg: str) -> None:
    """The /rewind flow on the app: pick, preview, choose, apply, re-render."""
    backend = app.backend
    assert backend is not None
    if backend.session_id is None:
        app.say("Nothing to rewind yet: the session starts with the first task.")
        return
    try:
        if arg.strip() == "undo":
            await backend.undo_rewind()
            _rerender(app, "The last rewind was undone.")
            return
        points = await backend.checkpoints()
    except Exception as e:
        app.say(f"/rewind: {e}", level="error")
        return
    messages = [p for p in points if p.kind == "message"]
    if not messages:
        app.say("No earlier message to rewind to.")
        return
    index = await app.push_screen_wait(RewindPicker(messages))
    if index is None:
        app.prompt.focus()
        return
    try:
        plan = await backend.rewind(index, dry_run=True)
    except Exception as e:
        app.say(f"/rewind: {e}", level="error")
        return
    choice = await app.push_screen_wait(RewindConfirm(plan))
    app.prompt.focus()
    if choice is None:
        return
    try:
        done = await backend.rewind(
            index,
            code=choice != "conversation",
            conversation=choice != "code",
            force=True,  # the conflicts were shown; the undo keeps them
        )
    except Exception as e:
        app.say(f"/rewind: {e}", level="error")
        return
    what = {"both": "code and conversation", "code": "code", "conversation": "conversation"}
    _rerender(
        app,
        f"Rewound {what[choice]} to before “{done.checkpoint.title}” "
        f"({len(done.changes)} file(s) restored). /rewind undo takes it back.",
    )
    if done.conversation and done.prompt and not app.prompt.text:
        app.prompt.insert(done.prompt)  # the message again, to edit and resend


def _rerender(app: GemmaApp, message: str) -> None:
    backend = app.backend
    assert backend is not None and backend.session_id is not None
    history = backend.resume(backend.session_id)
    app.clear_transcript()
    app.render_history(history)
    app.say(message)
