"""The settled part of the transcript as one line-API widget.

Textual re-lays out every widget of the screen when any widget changes size, so a transcript of
thousands of block widgets makes each streamed frame slower. Blocks that can no longer change
are moved here: each is rendered once to strips (again only on resize or when opened), and the
compositor sees a single widget whatever the length of the conversation. Clicks open/close the
block under the pointer, as on live blocks.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from .blocks import (
    AnswerBlock,
    CompactionMarker,
    NoticeBlock,
    ThinkingBlock,
    ToolCard,
    UserBlock,
)

_BAR = {"done": "green", "failed": "red", "denied": "red", "approval": "yellow"}


class _LeftBar:
    """A coloured bar left of a renderable (the tool card's border)."""

    def __init__(self, inner: RenderableType, style: str) -> None:
        self.inner = inner
        self.style = Style.parse(style)

    def __rich_console__(self, console, options):  # type: ignore[no-untyped-def]
        width = max(1, options.max_width - 1)
        lines = console.render_lines(self.inner, options.update_width(width), pad=True)
        bar = Segment("▌", self.style)
        for line in lines:
            yield bar
            yield from line
            yield Segment.line()


def archived_view(block: Widget) -> list[RenderableType]:
    """How a settled block looks (the same as its live widget: margin, padding, colours)."""
    if isinstance(block, ThinkingBlock):
        if block.display_mode == "hidden":
            return []
        return [Padding(Text.assemble(block.view(), style="dim"), (1, 1, 0, 1))]
    if isinstance(block, AnswerBlock):
        views = block.views()
        return [Padding(v, (1 if i == 0 else 0, 1, 0, 1)) for i, v in enumerate(views)]
    if isinstance(block, ToolCard):
        bar = _BAR.get(block.status, "blue")
        return [Padding(_LeftBar(Padding(block.view(), (0, 1)), bar), (1, 0, 0, 0))]
    if isinstance(block, UserBlock):
        return [Padding(Padding(block.view(), (0, 1), style="on grey15"), (1, 0, 0, 0))]
    if isinstance(block, CompactionMarker):
        marker = block.view()
        if isinstance(marker, Text):
            marker = Text.assemble(marker, style="yellow")
        return [Padding(marker, (1, 1, 0, 1))]
    if isinstance(block, NoticeBlock):
        style = {"warning": "yellow", "error": "red"}.get(block.level, "dim")
        view = block.view()
        if block.has_class("-markdown"):
            return [Padding(view, (1, 1, 0, 1))]
        if isinstance(view, Text):
            return [Padding(Text.assemble(view, style=style), (1, 1, 0, 1))]
        return [Padding(view, (1, 1, 0, 1))]
    make = getattr(block, "view", None)
    return [Padding(make(), (1, 1, 0, 1))] if make is not None else []


class Archive(Widget):
    DEFAULT_CSS = """
    Archive { height: auto; }
    """

    def __init__(self) -> None:
        super().__init__(id="archive")
        self.entries: list[Widget] = []
        self._ids: set[int] = set()
        self._strips: list[list[Strip]] = []
        self._starts: list[int] = []  # first line of each entry
        self._total = 0
        self._width = 0

    def holds(self, block: Widget) -> bool:
        return id(block) in self._ids

    def add(self, blocks: Iterable[Widget]) -> None:
        for block in blocks:
            self.entries.append(block)
            self._ids.add(id(block))
            self._strips.append(self._render_block(block, self._width) if self._width else [])
        self._reindex()
        self.refresh(layout=True)

    def clear(self) -> None:
        self.entries.clear()
        self._ids.clear()
        self._strips.clear()
        self._reindex()
        self.refresh(layout=True)

    def rerender(self, block: Widget | None = None) -> None:
        """Render one entry again (or all), after it was opened or its display changed."""
        for i, entry in enumerate(self.entries):
            if block is None or entry is block:
                self._strips[i] = self._render_block(entry, self._width) if self._width else []
        self._reindex()
        self.refresh(layout=True)

    def entry_at(self, y: int) -> Widget | None:
        if not self.entries or y < 0 or y >= self._total:
            return None
        return self.entries[bisect.bisect_right(self._starts, y) - 1]

    # -- line API ----------------------------------------------------------------------------

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._ensure(width)
        return self._total

    def render_line(self, y: int) -> Strip:
        self._ensure(self.size.width)
        if y >= self._total or not self.entries:
            return Strip.blank(self.size.width)
        i = bisect.bisect_right(self._starts, y) - 1
        return self._strips[i][y - self._starts[i]]

    def on_click(self, event: events.Click) -> None:
        block = self.entry_at(event.y)
        toggle = getattr(block, "toggle", None)
        if block is not None and toggle is not None:
            event.stop()
            toggle()
            self.rerender(block)

    def _ensure(self, width: int) -> None:
        if width and width != self._width:
            self._width = width
            self._strips = [self._render_block(b, width) for b in self.entries]
            self._reindex()

    def _reindex(self) -> None:
        starts, total = [], 0
        for strips in self._strips:
            starts.append(total)
            total += len(strips)
        self._starts, self._total = starts, total

    def _render_block(self, block: Widget, width: int) -> list[Strip]:
        views = archived_view(block)
        if not views:
            return []
        console = self.app.console
        options = console.options.update(width=width, height=None, highlight=False)
        lines = console.render_lines(Group(*views), options, pad=True)
        return [Strip(line, width) for line in lines]
