"""The ``recall_output`` tool: the model pages through or greps a tool output that was cut short
and kept in the run's spill store (``tools/spill.py``); the cut markers name its id."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .base import ToolContext, tool
from .errors import ToolError
from .regex import compile_regex
from .workspace import clip

_RECALL_BUDGET = 12_000


@tool(read_only=True, max_output_chars=20_000)
def recall_output(
    ctx: ToolContext,
    spill_id: str,
    start_line: Annotated[int, Field(ge=1)] = 1,
    max_lines: Annotated[int, Field(ge=1, le=1000)] = 200,
    pattern: str | None = None,
) -> str:
    """Read back a tool output that was cut short (its id appears in the cut marker).

    Args:
        spill_id: The id from the marker, e.g. "sp_0123456789ab".
        start_line: First line to show (1-based).
        max_lines: How many lines to show at most.
        pattern: Show only lines matching this regular expression (with line numbers).
    """
    try:
        info = ctx.spill.info(spill_id)
        lines = ctx.spill.iter_lines(spill_id, max_line=1000)
    except KeyError as exc:
        raise ToolError(str(exc.args[0])) from None
    regex = None
    if pattern:
        regex = compile_regex(pattern, what=f"regular expression {clip(pattern)!r}")
    shown: list[str] = []
    used = 0
    next_line = None
    try:
        for number, line in enumerate(lines, start=1):
            if number < start_line or (regex is not None and not regex.search(line)):
                continue
            if len(shown) >= max_lines or used + len(line) > _RECALL_BUDGET:
                next_line = number
                break
            shown.append(f"{number:>6}\t{line}")
            used += len(line) + 8
    except OSError as exc:  # the spill folder was removed or the disk failed meanwhile
        raise ToolError(
            f"the output {spill_id} can no longer be read ({exc.strerror or exc}); run the "
            "tool that produced it again"
        ) from exc
    head = (
        f"[{spill_id}: {info.label or 'output'}, {info.lines:,} lines, {info.chars:,} characters]"
    )
    if not shown:
        return head + "\n(no lines" + (" match" if regex else " in this range") + ")"
    tail = f"\n[more: call again with start_line={next_line}]" if next_line else ""
    return head + "\n" + "\n".join(shown) + tail


__all__ = ["recall_output"]
