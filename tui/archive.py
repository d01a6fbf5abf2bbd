"""The settled part of the transcript as one line-API widget.

Textual re-lays out every widget of the screen when any widget changes size, so a transcript of
thousands of block widgets makes each streamed frame slower. Blocks that can no longer change
are moved here, and the compositor sees a single widget whatever the length of the
conversation. The archive keeps only each block's height; lines are rendered when they are on
screen and kept for a bounded number of blocks, so memory (and the garbage collector's work)
does not grow with the transcript either. A long resumed history shows its last blocks; older
ones stay unrendered behind a header line until the reader scrolls up to them.

Keyboard: the archive takes focus (Tab); ↑/↓ and Tab move between blocks that open (thinking,
tool cards, compaction markers, the header), Enter/Space opens or closes one. Clicks do the same
on the block under the pointer.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterable
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
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
    """Settled blocks, drawn through the line API (see the module docstring)."""

    DEFAULT_CSS = """
    Archive { height: auto; }
    Archive > .archive--cursor { background: $boost; }
    Archive > .archive--header { color: $text-muted; text-style: italic; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"archive--cursor", "archive--header"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "select(-1)", "Previous block", show=False),
        Binding("down", "select(1)", "Next block", show=False),
        Binding("tab", "next_or_leave", "Next block", show=False),
        Binding("enter,space", "open", "Open/close", show=False),
        Binding("pageup", "scroll_transcript('page_up')", "Page up", show=False),
        Binding("pagedown", "scroll_transcript('page_down')", "Page down", show=False),
        Binding("home", "scroll_transcript('home')", "Top", show=False),
        Binding("end", "scroll_transcript('end')", "Bottom", show=False),
    ]

    SHOW_LAST = 60  # blocks rendered when a long history is loaded
    SHOW_MORE = 40  # blocks shown each time the reader reaches the header
    KEEP_RENDERED = 64  # blocks whose rendered lines are kept
    SHOW_ON_RESIZE = 200  # blocks kept shown when the width changes

    def __init__(self) -> None:
        super().__init__(id="archive")
        self.entries: list[Widget] = []
        self._ids: set[int] = set()
        self._heights: list[int | None] = []  # at self._width; None: not measured yet
        self._lines: OrderedDict[int, list[Strip]] = OrderedDict()  # entry index -> lines (LRU)
        self._hidden = 0  # entries[:_hidden] sit behind the header, not rendered
        self._starts: list[int] = []  # first line of each shown entry
        self._total = 0
        self._width = 0
        self.selected: int | None = None  # entry index under the keyboard cursor; -1: header
        self.rendered_count = 0  # blocks rendered so far (for tests and the benchmark)

    # -- contents ----------------------------------------------------------------------------

    @property
    def hidden(self) -> int:
        """How many of the oldest blocks are behind the header (not rendered yet)."""
        return self._hidden

    def holds(self, block: Widget) -> bool:
        return id(block) in self._ids

    def add(self, blocks: Iterable[Widget], *, show_last: int | None = None) -> None:
        """Append settled blocks. With ``show_last``, only that many of the newest blocks are
        shown; older ones go behind the header until the reader scrolls up."""
        for block in blocks:
            self.entries.append(block)
            self._ids.add(id(block))
            self._heights.append(None)
        if show_last is not None:
            self._hidden = max(self._hidden, len(self.entries) - show_last)
        self._relayout()

    def clear(self) -> None:
        self.entries.clear()
        self._ids.clear()
        self._heights.clear()
        self._lines.clear()
        self._hidden = 0
        self.selected = None
        self._relayout()

    def rerender(self, block: Widget | None = None) -> None:
        """Render one entry again (or all), after it was opened or its display changed."""
        for i, entry in enumerate(self.entries):
            if block is None or entry is block:
                self._heights[i] = None
                self._lines.pop(i, None)
        self._relayout()

    def show_more(self, count: int | None = None) -> int:
        """Bring older blocks out from behind the header; returns how many lines were added
        above the previous first block (the caller keeps the view where it was)."""
        if not self._hidden:
            return 0
        before, first = self._total, self._hidden
        self._hidden = max(0, self._hidden - (count or self.SHOW_MORE))
        if self.selected == -1:  # the cursor moves to the newest block just shown
            self.selected = self._first_selectable(first - 1, -1)
        self._relayout()
        return self._total - before

    def entry_at(self, y: int) -> Widget | None:
        i = self._index_at(y)
        return self.entries[i] if i is not None and i >= 0 else None

    # -- keyboard ----------------------------------------------------------------------------

    def allow_focus(self) -> bool:
        # In the Tab order only when there is something to open.
        return self._first_selectable(len(self.entries) - 1, -1) is not None

    def _selectable(self, i: int) -> bool:
        if i == -1:
            return self._hidden > 0
        if i < self._hidden:
            return False
        block = self.entries[i]
        if isinstance(block, ThinkingBlock):
            return block.display_mode != "hidden"
        return isinstance(block, ToolCard | CompactionMarker)

    def _first_selectable(self, start: int, step: int) -> int | None:
        i = start
        while -1 <= i < len(self.entries):
            if self._selectable(i):
                return i
            i += step
        return None

    def on_focus(self) -> None:
        # No scrolling here: a click focuses too, and must not move what is under the pointer.
        if (
            self.selected is None
            or not self._selectable(self.selected)
            or not self._on_screen(self.selected)
        ):
            last = self._last_line_on_screen()
            start = len(self.entries) - 1 if last is None else self._index_at(last)
            found = self._first_selectable(len(self.entries) - 1 if start is None else start, -1)
            self.selected = found
        self.refresh()

    def _last_line_on_screen(self) -> int | None:
        parent = self.parent
        if not isinstance(parent, Widget) or not self._total:
            return None
        bottom = parent.scroll_y + parent.scrollable_content_region.height - 1
        return max(0, min(self._total - 1, int(bottom) - self.virtual_region.y))

    def _on_screen(self, i: int) -> bool:
        parent = self.parent
        if not isinstance(parent, Widget) or 0 <= i < self._hidden:
            return False
        top = int(parent.scroll_y) - self.virtual_region.y
        bottom = top + parent.scrollable_content_region.height
        start = 0 if i == -1 else self._starts[i - self._hidden]
        return top <= start < bottom

    def on_blur(self) -> None:
        self.refresh()

    def action_select(self, step: int) -> None:
        start = len(self.entries) - 1 if self.selected is None else self.selected + step
        found = self._first_selectable(start, step)
        if found is not None:
            self.selected = found
            self._show_selected()

    def action_next_or_leave(self) -> None:
        found = None if self.selected is None else self._first_selectable(self.selected + 1, 1)
        if found is None:
            self.screen.focus_next()
            return
        self.selected = found
        self._show_selected()

    def action_scroll_transcript(self, where: str) -> None:
        parent = self.parent
        if isinstance(parent, Widget):
            getattr(parent, f"scroll_{where}")(animate=False)

    def action_open(self) -> None:
        if self.selected == -1:
            self.reveal()
        elif self.selected is not None:
            self._toggle(self.entries[self.selected])

    def _show_selected(self) -> None:
        self.refresh()
        parent = self.parent
        if self.selected is None or not isinstance(parent, Widget):
            return
        self._ensure(self._width)
        if self.selected == -1:
            top, height = 0, 1
        else:
            row = self.selected - self._hidden
            top = self._starts[row]
            end = self._starts[row + 1] if row + 1 < len(self._starts) else self._total
            height = max(1, end - top)
        region = Region(0, self.virtual_region.y + top, max(1, self._width), height)
        parent.scroll_to_region(region, animate=False, immediate=True)

    # -- mouse -------------------------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        i = self._index_at(event.y)
        if i is None:
            return
        event.stop()
        self.selected = i
        if i == -1:
            self.reveal()
        else:
            self._toggle(self.entries[i])

    def _toggle(self, block: Widget) -> None:
        toggle = getattr(block, "toggle", None)
        if toggle is not None:
            toggle()
            self.rerender(block)

    def reveal(self) -> None:
        """Show older blocks, keeping the lines on screen where they are."""
        added = self.show_more()
        parent = self.parent
        if added and isinstance(parent, Widget):
            y = parent.scroll_y + added
            self.call_after_refresh(parent.scroll_to, y=y, animate=False, immediate=True)
            if self.has_focus:
                self.call_after_refresh(self._show_selected)

    # -- line API ----------------------------------------------------------------------------

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._ensure(width)
        return self._total

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        self._ensure(width)
        i = self._index_at(y)
        if i is None:
            return Strip.blank(width)
        cursor = self.has_focus and i == self.selected
        if i == -1:
            strip = self._header(width)
        else:
            lines = self._rendered(i)
            offset = y - self._starts[i - self._hidden]
            if offset >= len(lines):
                return Strip.blank(width)
            strip = lines[offset]
            cursor = cursor and offset > 0  # not on the margin line above the block
        if cursor:
            strip = strip.apply_style(self.get_component_rich_style("archive--cursor"))
        return strip

    def _header(self, width: int) -> Strip:
        text = Text(
            f" ▲ {self._hidden} earlier blocks · scroll up, click or Enter to show them",
            style=self.get_component_rich_style("archive--header"),
        )
        text.truncate(width)
        return Strip(text.render(self.app.console), width).extend_cell_length(width)

    def _index_at(self, y: int) -> int | None:
        """The entry index at line y; -1 for the header; None past the end."""
        if y < 0 or y >= self._total or not self.entries:
            return None
        if self._hidden and y == 0:
            return -1
        row = bisect.bisect_right(self._starts, y) - 1
        return self._hidden + max(0, row)

    def _relayout(self) -> None:
        self._reindex()
        self.refresh(layout=True)

    def _ensure(self, width: int) -> None:
        if width and width != self._width:
            # A new width renders every shown block again: keep that bounded in a long session
            # (older blocks go behind the header, shown again on scroll).
            self._hidden = max(self._hidden, len(self.entries) - self.SHOW_ON_RESIZE)
            self._width = width
            self._heights = [None] * len(self.entries)
            self._lines.clear()
            self._reindex()

    def _reindex(self) -> None:
        """Measure shown entries not measured yet (at the known width) and place them."""
        total = 1 if self._hidden else 0
        starts = []
        for i in range(self._hidden, len(self.entries)):
            height = self._heights[i]
            if height is None:
                height = len(self._render_entry(i)) if self._width else 0
            starts.append(total)
            total += height
        self._starts, self._total = starts, total

    def _rendered(self, i: int) -> list[Strip]:
        lines = self._lines.get(i)
        if lines is None:
            return self._render_entry(i)
        self._lines.move_to_end(i)
        return lines

    def _render_entry(self, i: int) -> list[Strip]:
        lines = self._render_block(self.entries[i], self._width)
        self._heights[i] = len(lines)
        self._lines[i] = lines
        self._lines.move_to_end(i)
        while len(self._lines) > self.KEEP_RENDERED:
            self._lines.popitem(last=False)
        return lines

    def _render_block(self, block: Widget, width: int) -> list[Strip]:
        self.rendered_count += 1
        views = archived_view(block)
        if not views:
            return []
        console = self.app.console
        options = console.options.update(width=width, height=None, highlight=False)
        lines = console.render_lines(Group(*views), options, pad=True)
        return [Strip(line, width) for line in lines]
