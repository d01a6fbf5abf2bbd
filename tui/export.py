"""The transcript as Markdown (/export)."""

from __future__ import annotations

from collections.abc import Iterable

from textual.widget import Widget

from .blocks import AnswerBlock, CompactionMarker, NoticeBlock, ThinkingBlock, ToolCard, UserBlock
from .format import format_arguments, result_text


def _fence(text: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text}\n{ticks}"


def transcript_markdown(blocks: Iterable[Widget]) -> str:
    out: list[str] = ["# gemma-agent transcript", ""]
    for block in blocks:
        if isinstance(block, UserBlock):
            out += ["## User", "", block.text, ""]
        elif isinstance(block, ThinkingBlock):
            out += ["<details><summary>Thinking</summary>", "", block.text, "", "</details>", ""]
        elif isinstance(block, AnswerBlock):
            out += [block.text, ""]
        elif isinstance(block, ToolCard):
            out += [f"**Tool `{block.call.name}`** ({block.status})", ""]
            args = format_arguments(block.call.arguments, folded=False)
            if args:
                out += [_fence(args), ""]
            if block.diff:
                out += [_fence(block.diff, "diff"), ""]
            if block.subagents:
                lines = "\n".join(line.plain for line in block.child_lines(full=True))
                out += ["Sub-agents:", "", _fence(lines), ""]
            if block.result is not None:
                out += ["Result:", "", _fence(result_text(block.result.content)), ""]
        elif isinstance(block, CompactionMarker):
            e = block.event
            out += [
                f"---\n*History compacted ({e.tier}): {e.tokens_before} → {e.tokens_after} tokens*",
                "",
            ]
            out += [f"- dropped: {d.description}" for d in e.dropped]
            if e.summary:
                out += ["", "> " + e.summary.replace("\n", "\n> ")]
            out.append("")
        elif isinstance(block, NoticeBlock):
            out += [f"> *{block.level}*: " + block.message.replace("\n", "\n> "), ""]
    return "\n".join(out).rstrip() + "\n"
