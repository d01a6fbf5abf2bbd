"""update_plan: the agent's todo list. The agent loop turns PlanChanged into events.PlanUpdated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..base import ToolContext, ToolError, tool

PlanStatus = Literal["pending", "in_progress", "done", "cancelled"]
_MARK = {"pending": "[ ]", "in_progress": "[>]", "done": "[x]", "cancelled": "[-]"}


@dataclass(frozen=True, slots=True)
class PlanChanged:
    """Emitted through ``ctx.emit`` each time the plan is replaced."""

    items: tuple[tuple[str, str], ...]  # (text, status)
    explanation: str | None = None


class PlanItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="One step, short and concrete.")
    status: PlanStatus = Field(default="pending", description="Where the step stands.")


@tool(read_only=True, sequential=True)
async def update_plan(
    ctx: ToolContext,
    items: Annotated[list[PlanItem], Field(max_length=50)],
    explanation: str | None = None,
) -> str:
    """Replace your plan (todo list) for the task; use it for work with several steps.

    Send the whole list each time. Keep exactly one step in_progress while working; mark steps
    done as soon as they are finished.

    Args:
        items: The complete list of steps in order.
        explanation: Optional note on why the plan changed.
    """
    active = [item.text for item in items if item.status == "in_progress"]
    if len(active) > 1:
        raise ToolError(
            f"{len(active)} steps are in_progress ({'; '.join(active)}); keep at most one "
            "in_progress and mark the others pending or done"
        )
    ctx.emit(PlanChanged(tuple((i.text, i.status) for i in items), explanation))
    if not items:
        return "Plan cleared."
    done = sum(1 for i in items if i.status == "done")
    lines = [f"Plan updated ({done}/{len(items)} done):"]
    lines += [f"{_MARK[i.status]} {i.text}" for i in items]
    return "\n".join(lines)


__all__ = ["PlanChanged", "PlanItem", "PlanStatus", "update_plan"]
