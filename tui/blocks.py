"""Transcript blocks: one widget per block, streaming bodies split into static segments.

Streaming text is buffered by the block and painted at most once per frame (the app calls
``flush``). A streaming body keeps only its last segment live; older segments are frozen
``Static``s that are never re-rendered, so the cost of a frame does not grow with the length of
the transcript or of the block.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from rich.console import Group, RenderableType
from rich.markdown import Markdown as RichMarkdown
from rich.text import Text
from textual import events
from textual.containers import Vertical
from textual.widgets import Static

from ..agent import SubagentRun, ToolCall, ToolResult
from ..events import DroppedItem, Event, HistoryCompacted, PlanItem
from .config import ThinkingDisplay
from .format import (
    FileBefore,
    estimate_tokens,
    first_line,
    fmt_duration,
    fmt_tokens,
    format_arguments,
    one_line_arguments,
    result_preview,
    result_text,
    tool_diff,
)
from .subagents import OPEN, ChildCall, ChildRun, ToolStatus, parent_path, short_name

SEGMENT_CHARS = 1000  # a live segment is frozen at the next safe break past this size
CODE_THEME = "monokai"


def render_markdown(text: str) -> RenderableType:
    return RichMarkdown(text, code_theme=CODE_THEME, hyperlinks=False)


def render_plain(text: str) -> RenderableType:
    return Text(text)


def _markdown_break(text: str) -> int:
    """Offset just after the last blank line outside a code fence (0: no safe break)."""
    fence: str | None = None
    offset = 0
    best = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if fence is None and stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
        elif fence is not None and stripped.startswith(fence):
            fence = None
        offset += len(line)
        if fence is None and not stripped and line.endswith("\n"):
            best = offset
    return best


def _line_break(text: str) -> int:
    return text.rfind("\n") + 1


class StreamBody(Vertical):
    """Text that grows: frozen segments plus one live segment repainted per frame."""

    DEFAULT_CSS = """
    StreamBody { height: auto; }
    StreamBody > Static { height: auto; }
    """

    def __init__(self, *, markdown: bool, classes: str = "") -> None:
        super().__init__(classes=classes)
        self._renderable: Callable[[str], RenderableType] = (
            render_markdown if markdown else render_plain
        )
        self._break: Callable[[str], int] = _markdown_break if markdown else _line_break
        self._pending: list[str] = []
        self._frozen: list[str] = []
        self._live_text = ""
        self._live: Static | None = None

    @property
    def text(self) -> str:
        return "".join(self._frozen) + self._live_text + "".join(self._pending)

    def write(self, text: str) -> None:
        self._pending.append(text)

    @property
    def dirty(self) -> bool:
        return bool(self._pending)

    def set_text(self, text: str) -> None:
        """Replace everything (used for finished blocks, e.g. a resumed session)."""
        self._pending = [text]
        self._frozen.clear()
        self._live_text = ""
        if self.is_mounted:
            self.remove_children()
        self._live = None
        self.flush()

    def view(self) -> RenderableType:
        return self._renderable(self.text.rstrip("\n"))

    def views(self) -> list[RenderableType]:
        """One renderable per segment (the archive renders them separately)."""
        if self._pending:
            self._live_text += "".join(self._pending)
            self._pending.clear()
        texts = [*self._frozen, self._live_text]
        return [self._renderable(t.rstrip("\n")) for t in texts if t.strip()]

    def on_mount(self) -> None:
        self.flush()

    def flush(self) -> None:
        if not self._pending or not self.is_mounted:
            return  # painted on mount
        self._live_text += "".join(self._pending)
        self._pending.clear()
        if self._live is None:
            self._live = Static(classes="segment")
            self.mount(self._live)
        if len(self._live_text) > SEGMENT_CHARS:
            cut = self._break(self._live_text)
            if cut:
                done, rest = self._live_text[:cut], self._live_text[cut:]
                self._live.update(self._renderable(done.rstrip("\n")))
                self._frozen.append(done)
                self._live_text = rest
                self._live = Static(classes="segment")
                self.mount(self._live)
        self._live.update(self._renderable(self._live_text.rstrip("\n")))


class UserBlock(Static):
    DEFAULT_CSS = """
    UserBlock { height: auto; margin: 1 0 0 0; padding: 0 1; background: $boost; color: $text; }
    """

    def __init__(self, text: str, *, attachments: tuple[str, ...] = ()) -> None:
        body = Text("› ", style="bold $accent")
        body.append(text)
        for name in attachments:
            body.append(f"\n  📎 {name}", style="dim")
        super().__init__(body)
        self.text = text
        self._view = body

    def view(self) -> RenderableType:
        return self._view


THINKING_TAIL_LINES = 12  # while streaming, only the tail is shown (bounded cost per frame)


class ThinkingBlock(Static, can_focus=True):
    """Reasoning: streams live (its tail), then folds to one line (first line · tokens · time).

    One widget; the app calls ``flush`` once per frame while it streams.
    """

    DEFAULT_CSS = """
    ThinkingBlock { height: auto; margin: 1 0 0 0; padding: 0 1; color: $text-muted; }
    ThinkingBlock:focus { background: $boost; }
    """

    def __init__(self, *, display_mode: ThinkingDisplay, started: float, step: int) -> None:
        super().__init__()
        self.display_mode: ThinkingDisplay = display_mode
        self.expanded = False
        self.started = started
        self.step = step
        self.seconds: float | None = None
        self.tokens: int | None = None
        self._parts: list[str] = []
        self._text = ""
        self._lines = 0  # newlines in _text

    def on_mount(self) -> None:
        self._apply()

    @property
    def finished(self) -> bool:
        return self.seconds is not None

    @property
    def text(self) -> str:
        if self._parts:
            self._join()
        return self._text

    def _join(self) -> None:
        added = "".join(self._parts)
        self._parts.clear()
        self._text += added
        self._lines += added.count("\n")

    def write(self, text: str) -> None:
        self._parts.append(text)

    @property
    def dirty(self) -> bool:
        return bool(self._parts)

    def flush(self) -> None:
        if self._parts:
            self._join()
            self._apply()

    def finish(self, now: float) -> None:
        if self.seconds is None:
            if self._parts:
                self._join()
            self.seconds = max(0.0, now - self.started)
            self._apply()

    def set_tokens(self, tokens: int) -> None:
        self.tokens = tokens
        self._apply()

    def set_text(self, text: str) -> None:
        self._parts.clear()
        self._text = text
        self._lines = text.count("\n")
        self._apply()

    def set_display_mode(self, mode: ThinkingDisplay) -> None:
        self.display_mode = mode
        self._apply()

    def toggle(self) -> None:
        if self.finished:
            self.expanded = not self.expanded
            self._apply()

    def summary(self) -> str:
        tokens = self.tokens if self.tokens is not None else estimate_tokens(self.text)
        duration = fmt_duration(self.seconds or 0.0)
        head = first_line(self.text) or "(empty)"
        return f"{head} · {fmt_tokens(tokens)} tokens · {duration}"

    def _tail(self) -> Text:
        text = self._text.rstrip("\n")
        if self._lines < THINKING_TAIL_LINES:
            return Text(text, style="italic")
        # Find the start of the last lines without splitting the whole text.
        cut = len(text)
        for _ in range(THINKING_TAIL_LINES):
            cut = text.rfind("\n", 0, cut)
            if cut < 0:
                return Text(text, style="italic")
        hidden = text.count("\n", 0, cut) + 1
        out = Text(f"… {hidden} earlier lines\n", style="dim")
        out.append(text[cut + 1 :], style="italic")
        return out

    def view(self) -> Text:
        if not self.finished:
            view = Text("✻ Thinking…\n", style="bold")
            view.append_text(self._tail())
            return view
        open_ = self.expanded or self.display_mode == "full"
        view = Text(f"{'▾' if open_ else '▸'} ✻ {self.summary()}")
        if open_:
            view.append("\n")
            view.append(self._text.rstrip("\n"), style="italic")
        return view

    def _apply(self) -> None:
        self.display = self.display_mode != "hidden"
        if self.display:
            self.update(self.view())

    def on_click(self, event: events.Click) -> None:
        self.toggle()

    def key_enter(self) -> None:
        self.toggle()


class AnswerBlock(StreamBody):
    """The model's text as Markdown (code highlighted), streamed in frozen segments."""

    DEFAULT_CSS = """
    AnswerBlock { height: auto; margin: 1 0 0 0; padding: 0 1; }
    """

    def __init__(self, step: int) -> None:
        super().__init__(markdown=True)
        self.step = step
        self.closed = False  # no more text will come


_ICON: dict[str, tuple[str, str]] = {
    "queued": ("○", "dim"),
    "approval": ("?", "bold yellow"),
    "running": ("◐", "bold cyan"),
    "done": ("✓", "bold green"),
    "failed": ("✗", "bold red"),
    "denied": ("⊘", "bold red"),
    "cancelled": ("⊘", "yellow"),
}
_STATUS_TEXT = {
    "queued": "queued",
    "approval": "waiting for approval",
    "running": "running",
    "done": "done",
    "failed": "failed",
    "denied": "denied",
    "cancelled": "cancelled",
}
MAX_EXPANDED_CHARS = 20_000
CHILD_ITEMS_SHOWN = 3  # a folded card shows a sub-agent's last calls (and every open one)
_CHILD_ICON: dict[str, tuple[str, str]] = {
    "running": _ICON["running"],
    "done": _ICON["done"],
    "failed": _ICON["failed"],
    "cancelled": _ICON["cancelled"],
}


def diff_text(diff: str) -> Text:
    out = Text()
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        else:
            style = "dim"
        out.append(line + "\n", style=style)
    out.rstrip()
    return out


class ToolCard(Static, can_focus=True):
    """One tool call: name, arguments, live status, result preview (Enter/click expands).

    A call that runs sub-agents (``task``) shows each one inside it, live (see tui/subagents.py):
    folded, a child's last calls; expanded, all of them and the answers. One widget rendering a
    group of texts, so a finished card costs one node in the layout.
    """

    DEFAULT_CSS = """
    ToolCard { height: auto; margin: 1 0 0 0; padding: 0 1; border-left: outer $secondary; }
    ToolCard.-failed { border-left: outer $error; }
    ToolCard.-done { border-left: outer $success; }
    ToolCard.-approval { border-left: outer $warning; }
    ToolCard:focus { background: $boost; }
    """

    def __init__(
        self,
        call: ToolCall,
        *,
        step: int,
        workspace: Path | None,
        now: float,
        before: FileBefore | None = None,
    ) -> None:
        super().__init__()
        self.call = call
        self.step = step
        self.expanded = False
        self.status: ToolStatus = "queued"
        self.started = now
        self.seconds: float | None = None
        self.elapsed = 0.0
        self.result: ToolResult | None = None
        # The file as it was before the call ran (the backend reads it then): in auto mode the
        # tool may have written it before this card exists.
        self.diff = tool_diff(call.name, call.arguments, workspace, before=before)
        self._body: list[Text] = []
        self._args_lines = 0  # _body[:this] is arguments and diff, the rest the result
        # Sub-agents this call runs (a `task` call), grandchildren too, by path; `now` is
        # the clock of the last event or tick, for their elapsed times.
        self.subagents: dict[str, ChildRun] = {}
        self.now = now
        self._dirty = False
        self._paint_body()

    def on_mount(self) -> None:
        self._paint()

    def set_status(self, status: ToolStatus, now: float) -> None:
        if status == "running" and self.status != "running":
            self.started = now
        self.status = status
        if status == "cancelled":
            for child in self.subagents.values():
                child.cancel()
        self._paint()

    def tick(self, now: float) -> None:
        if self.status == "running":
            self.elapsed = max(0.0, now - self.started)
            self.now = now
            self._paint()

    # -- sub-agents ----------------------------------------------------------------------------

    def subagent_event(self, path: str, call_id: str, event: Event, now: float) -> None:
        """One event of a sub-agent this call runs (or of one of its descendants). The card is
        repainted by `flush`, once per frame."""
        child = self.subagents.get(path)
        if child is None:
            child = ChildRun(path, call_id, now, self._description(path, call_id))
            self.subagents[path] = child
        child.apply(event, now)
        self.now = now
        self._dirty = True

    def child_call_status(self, path: str, call: ToolCall, status: ToolStatus) -> bool:
        """Mark a sub-agent's call (waiting for approval, running again, denied); False when
        no child of this card has that path."""
        child = self.subagents.get(path)
        if child is None:
            return False
        child.call_status(call, status)
        self._paint()
        return True

    def add_saved_child(self, run: SubagentRun) -> None:
        """A sub-agent of a resumed session, from its log."""
        self.subagents[run.agent] = ChildRun.from_saved(
            run, self._description(run.agent, run.call_id)
        )

    def _description(self, path: str, call_id: str) -> str:
        parent = self.subagents.get(parent_path(path))
        entry = parent.calls.get(call_id) if parent is not None else None
        call = self.call if parent is None else entry.call if entry is not None else None
        value = call.arguments.get("description") if call is not None else None
        return value if isinstance(value, str) else ""

    @property
    def dirty(self) -> bool:
        return self._dirty

    def flush(self) -> None:
        if self._dirty:
            self._dirty = False
            self._paint()

    def finish(self, result: ToolResult, seconds: float) -> None:
        self.result = result
        self.seconds = seconds
        content = result.content
        if (
            self.call.name == "edit_file"
            and not result.is_error
            and isinstance(content, str)
            and "\n@@" in content
        ):
            # edit_file answers with the diff it applied: the authoritative one.
            self.diff = content[content.find("---") :] if "---" in content else content
        if self.status != "denied":
            self.status = "failed" if result.is_error else "done"
        for child in self.subagents.values():
            child.cancel()  # one still running here lost its run: it cannot go on
        self._paint_body()
        self._paint()

    def toggle(self) -> None:
        self.expanded = not self.expanded
        self._paint_body()
        self._paint()

    def on_click(self) -> None:
        self.toggle()

    def key_enter(self) -> None:
        self.toggle()

    def _paint_body(self) -> None:
        """Arguments, diff and result: they change only on finish/expand, not per tick."""
        body: list[Text] = []
        args = dict(self.call.arguments)
        if self.diff is not None:
            # The diff shows the content; keep only the path.
            args = {k: v for k, v in args.items() if k in ("path", "file", "file_path")}
        if self.call.name == "run_shell" and isinstance(args.get("command"), str):
            rest = {k: v for k, v in args.items() if k != "command"}
            text = "$ " + args["command"]
            if rest:
                text += "\n" + format_arguments(rest, folded=not self.expanded)
        else:
            text = format_arguments(args, folded=not self.expanded)
        if text:
            body.append(Text(text, style="dim"))
        if self.diff is not None:
            lines = self.diff.splitlines()
            shown = self.diff if self.expanded or len(lines) <= 40 else "\n".join(lines[:40])
            view = diff_text(shown)
            if shown is not self.diff:
                view.append(f"\n… +{len(lines) - 40} diff lines (Enter to expand)", style="dim")
            body.append(view)
        self._args_lines = len(body)
        if self.result is not None:
            if self.expanded:
                rtext = result_text(self.result.content)
                if len(rtext) > MAX_EXPANDED_CHARS:
                    extra = len(rtext) - MAX_EXPANDED_CHARS
                    rtext = rtext[:MAX_EXPANDED_CHARS] + f"\n… (+{extra} chars)"
                more = False
            else:
                rtext, more = result_preview(self.result.content)
            view = Text("→ ", style="dim")
            view.append(rtext, style="red" if self.result.is_error else "")
            if self.result.spill_id:
                view.append(f"\n(full output: {self.result.spill_id})", style="dim")
            if more:
                view.append("\n(Enter or click to expand)", style="dim italic")
            body.append(view)
        self._body = body

    def _header(self) -> Text:
        icon, style = _ICON[self.status]
        head = Text()
        head.append(f"{icon} ", style=style)
        head.append(self.call.name, style="bold")
        summary = one_line_arguments(self.call.arguments, 50)
        if summary:
            head.append(f"  {summary}", style="dim")
        status = _STATUS_TEXT[self.status]
        if self.status == "running":
            status += f" {fmt_duration(self.elapsed)}"
        elif self.seconds is not None and self.status in ("done", "failed"):
            status += f" in {fmt_duration(self.seconds)}"
        head.append(f"  · {status}", style=style if self.status != "done" else "green")
        return head

    def _paint(self) -> None:
        if self.parent is None:
            return  # painted on mount; a card built for the archive is never mounted
        asking = any(  # a sub-agent's call waits for approval: the card says so too
            c.status == "approval"
            for child in self.subagents.values()
            for c in child.calls.values()
        )
        for name in ("failed", "done", "approval"):
            on = self.status == name or (name == "failed" and self.status == "denied")
            self.set_class(on or (name == "approval" and asking), f"-{name}")
        self.update(self.view())

    def view(self) -> RenderableType:
        cut = self._args_lines
        return Group(self._header(), *self._body[:cut], *self.child_lines(), *self._body[cut:])

    def child_lines(self, full: bool | None = None) -> list[Text]:
        """The sub-agents' sections, each nested under the call of its parent that runs it;
        ``full`` (default: as the card is expanded) shows every call and the answers."""
        out: list[Text] = []
        full = self.expanded if full is None else full
        for child in self.subagents.values():
            if parent_path(child.path) not in self.subagents:
                self._draw_child(child, "", out, full)
        return out

    def _draw_child(self, child: ChildRun, pad: str, out: list[Text], full: bool) -> None:
        icon, style = _CHILD_ICON[child.status]
        head = _line(pad)
        head.append(f"{icon} ", style=style)
        head.append(short_name(child.path), style="bold")
        facts = [child.description] if child.description else []
        if child.running:
            if child.step:
                facts.append(f"step {child.step}")
            if child.started is not None:
                facts.append(fmt_duration(max(0.0, self.now - child.started)))
        else:
            facts.append(f"{child.step} step{'s' if child.step != 1 else ''}")
            if child.seconds is not None:
                facts.append(fmt_duration(child.seconds))
        if child.tokens:
            facts.append(f"{fmt_tokens(child.tokens)} tokens")
        if child.status != "running" and child.status != "done":
            facts.append(child.status if child.error in (None, child.status) else child.error)
        for fact in facts:
            head.append(f" · {fact}", style="dim")
        out.append(head)
        inner = pad + "  "
        if child.running and (latest := child.latest_line()):
            line = _line(inner)
            line.append(("✻ " if child.tail_thinking else "✎ ") + latest, style="dim italic")
            out.append(line)
        items: list[ChildCall | str] = list(child.calls.values())
        for at, note in reversed(child.notes):
            items.insert(min(at, len(items)), note)
        shown = items
        if not full and len(items) > CHILD_ITEMS_SHOWN:
            keep = len(items) - CHILD_ITEMS_SHOWN
            shown = [
                it
                for i, it in enumerate(items)
                if i >= keep or (isinstance(it, ChildCall) and it.status in OPEN)
            ]
            hidden = len(items) - len(shown)
            out.append(_line(inner, f"… {hidden} earlier (Enter expands)", "dim italic"))
        for item in shown:
            if isinstance(item, str):
                out.append(_line(inner, f"⚠ {item}", "yellow"))
                continue
            self._draw_call(item, child, inner, out, full)
        if full and child.answer and (pad or self.result is None):
            preview, _ = result_preview(child.answer)
            for i, text in enumerate(preview.splitlines()):
                out.append(_line(inner, ("→ " if i == 0 else "  ") + text, "dim"))

    def _draw_call(
        self, item: ChildCall, child: ChildRun, pad: str, out: list[Text], full: bool
    ) -> None:
        icon, style = _ICON[item.status]
        line = _line(pad)
        line.append(f"{icon} ", style=style)
        line.append(item.call.name)
        summary = one_line_arguments(item.call.arguments, 40)
        if summary:
            line.append(f"  {summary}", style="dim")
        line.append(
            f" · {_STATUS_TEXT[item.status]}", style="dim" if item.status == "done" else style
        )
        out.append(line)
        if full and item.result is not None:
            said = first_line(result_text(item.result.content), 90)
            if said:
                out.append(_line(pad + "  ", f"→ {said}", "red" if item.result.is_error else "dim"))
        for grandchild in self.subagents.values():
            if grandchild.call_id == item.call.id and parent_path(grandchild.path) == child.path:
                self._draw_child(grandchild, pad + "  ", out, full)


def _line(pad: str, text: str = "", style: str = "") -> Text:
    """One line of a sub-agent's section: cut at the card's width, never wrapped."""
    line = Text(pad, no_wrap=True, overflow="ellipsis")
    if text:
        line.append(text, style=style)
    return line


class CompactionMarker(Static, can_focus=True):
    """A compaction in the transcript; Enter/click shows what was dropped or summarized."""

    DEFAULT_CSS = """
    CompactionMarker { height: auto; margin: 1 0 0 0; padding: 0 1; color: $text-warning; }
    CompactionMarker:focus { background: $boost; }
    CompactionMarker.-undone { color: $text-muted; text-style: strike; }
    """

    def __init__(self, event: HistoryCompacted) -> None:
        super().__init__()
        self.event = event
        self.expanded = False
        self.undone = False
        self._view: RenderableType = Text()

    def on_mount(self) -> None:
        self._paint()

    def toggle(self) -> None:
        self.expanded = not self.expanded
        self._paint()

    def mark_undone(self) -> None:
        self.undone = True
        self.add_class("-undone")
        self._paint()

    def on_click(self) -> None:
        self.toggle()

    def key_enter(self) -> None:
        self.toggle()

    def _paint(self) -> None:
        e = self.event
        arrow = "▾" if self.expanded else "▸"
        head = (
            f"{arrow} ⇲ compacted ({e.tier}): {fmt_tokens(e.tokens_before)} → "
            f"{fmt_tokens(e.tokens_after)} tokens"
        )
        if e.dropped:
            head += f" · {len(e.dropped)} items"
        if e.summary:
            head += " · summarized"
        if self.undone:
            head += " · undone"
        text = Text(head)
        if self.expanded:
            text.append(_dropped_text(e.dropped), style="dim")
            if e.summary:
                text.append("\n  summary:\n", style="bold")
                text.append("\n".join("    " + ln for ln in e.summary.splitlines()))
        self._view = text
        self.update(text)

    def view(self) -> RenderableType:
        return self._view


def _dropped_text(dropped: tuple[DroppedItem, ...]) -> str:
    if not dropped:
        return "\n  (nothing dropped)"
    return "".join(f"\n  - {item.description}" for item in dropped)


NoticeLevel = Literal["info", "warning", "error"]


class NoticeBlock(Static):
    """A notice from the agent or the app (info/warning), or a readable error card."""

    DEFAULT_CSS = """
    NoticeBlock { height: auto; margin: 1 0 0 0; padding: 0 1; color: $text-muted; }
    NoticeBlock.-warning { color: $text-warning; }
    NoticeBlock.-error { color: $text-error; border: round $error; padding: 0 1; }
    NoticeBlock.-banner { color: $text-warning; border: heavy $warning; text-style: bold; }
    NoticeBlock.-markdown { color: $text; }
    """

    def __init__(
        self,
        message: str,
        *,
        level: NoticeLevel = "info",
        title: str | None = None,
        markdown: bool = False,
        banner: bool = False,
    ) -> None:
        body: RenderableType
        if markdown:
            body = render_markdown(message)
        else:
            text = Text()
            if title:
                text.append(title + "\n", style="bold")
            text.append(message)
            body = text
        super().__init__(body)
        self._view = body
        self.message = message
        self.level = level
        self.add_class(f"-{level}")
        if markdown:
            self.add_class("-markdown")
        if banner:
            self.add_class("-banner")

    def view(self) -> RenderableType:
        return self._view


_PLAN_ICON = {"pending": "☐", "in_progress": "◐", "done": "☑", "cancelled": "☒"}


class PlanPanel(Static):
    DEFAULT_CSS = """
    PlanPanel {
        width: 36; height: auto; max-height: 100%;
        border: round $secondary; padding: 0 1; margin: 0 0 0 1;
    }
    """

    def __init__(self) -> None:
        super().__init__(id="plan")
        self.items: tuple[PlanItem, ...] = ()
        self.border_title = "Plan"
        self.display = False

    def set_items(self, items: tuple[PlanItem, ...]) -> None:
        self.items = items
        text = Text()
        for i, item in enumerate(items):
            style = {"done": "green", "in_progress": "bold cyan", "cancelled": "dim strike"}.get(
                item.status, ""
            )
            text.append(("\n" if i else "") + f"{_PLAN_ICON[item.status]} {item.text}", style=style)
        done = sum(1 for it in items if it.status == "done")
        self.border_subtitle = f"{done}/{len(items)}"
        self.update(text if items else Text("(no plan)", style="dim"))
