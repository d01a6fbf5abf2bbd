"""ToolRegistry: validate, call with a timeout, cap the output, never crash the run.

Every problem becomes a ``ToolOutcome`` the model can read:

- unknown tool          -> error listing the available tools (and the closest name)
- invalid arguments     -> error naming the field, what was expected and what was given;
                           the tool is not called
- ``ToolError``         -> error with the tool's message
- timeout               -> error; async tools are cancelled (and kill their subprocesses)
- any other exception   -> error with ``crashed=True``; the traceback is logged
- long output           -> head + tail with a marker; the full text goes to the spill store
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

from ..errors import ConfigError
from .base import InvalidArguments, Tool, ToolContext, ToolError, ToolMedia, ToolOutput, as_tool
from .recall import recall_output
from .spill import cap_text

logger = logging.getLogger("gemma_agent.tools")

DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_OUTPUT_CHARS = 16_000


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    content: Any  # a JSON value; a dict renders as a native mapping in the tool response
    is_error: bool = False
    crashed: bool = False  # an unexpected exception (not ToolError); the loop counts these
    spill_id: str | None = None  # the full output when `content` was cut
    timed_out: bool = False
    media: tuple[ToolMedia, ...] = ()  # images/audio shown to the model after the response

    def __post_init__(self) -> None:
        object.__setattr__(self, "content", _unicode_text(self.content))


class ToolRegistry:
    """The tools of one agent, by name.

    ``recall=True`` adds the ``recall_output`` tool, which the cut-output markers refer to
    (`Agent` adds it when compaction is on; a registry is otherwise just the tools given).
    """

    def __init__(
        self,
        tools: Iterable[Tool | Any] = (),
        *,
        default_timeout: float = DEFAULT_TIMEOUT,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
        recall: bool = False,
    ) -> None:
        if default_timeout <= 0 or max_output_chars < 200:
            raise ConfigError(
                "ToolRegistry: default_timeout must be > 0 and max_output_chars at least 200"
            )
        self.default_timeout = default_timeout
        self.max_output_chars = max_output_chars
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.add(item)
        if recall and recall_output.name not in self._tools:
            self._tools[recall_output.name] = recall_output

    def add(self, item: Tool | Any) -> Tool:
        tool = as_tool(item)
        if tool.name in self._tools:
            raise ConfigError(f"two tools are named {tool.name!r}; tool names must be unique")
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def declarations(self) -> list[dict[str, Any]]:
        return [t.declaration() for t in self._tools.values()]

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def check(self, name: str, arguments: Mapping[str, Any] | None) -> tuple[Tool, Any] | str:
        """The tool and its validated arguments, or the error the model reads (unknown tool,
        invalid arguments)."""
        tool = self._tools.get(name)
        if tool is None:
            return self._unknown(name)
        try:
            return tool, tool.validate({} if arguments is None else arguments)
        except InvalidArguments as exc:
            return str(exc)
        except Exception as exc:  # a validator choking on odd input is still the model's input
            logger.warning("validating arguments of %s failed", name, exc_info=True)
            return f"Invalid arguments for {name}: {exc}"

    async def call(
        self, name: str, arguments: Mapping[str, Any] | None, ctx: ToolContext[Any] | None = None
    ) -> ToolOutcome:
        """Validate and run one call. Only cancellation of the caller propagates."""
        checked = self.check(name, arguments)
        if isinstance(checked, str):
            return ToolOutcome(checked, is_error=True)
        return await self.run(*checked, ctx)

    async def run(self, tool: Tool, args: Any, ctx: ToolContext[Any] | None = None) -> ToolOutcome:
        """Run one call whose arguments `check` validated (timeout, output cap, errors)."""
        if ctx is None:
            ctx = ToolContext(workspace=Path.cwd())
        name = tool.name
        timeout = tool.timeout if tool.timeout is not None else self.default_timeout
        limit = tool.max_output_chars or self.max_output_chars
        try:
            async with asyncio.timeout(timeout) as scope:
                result = await tool.execute(args, ctx)
        except ToolError as exc:
            return self._capped(str(exc) or type(exc).__name__, limit, ctx, name, is_error=True)
        except TimeoutError:
            if not scope.expired():
                return self._crash(tool, ctx)
            where = "" if _is_async(tool) else " (it may still finish in the background)"
            return ToolOutcome(
                f"{name} timed out after {timeout:g} s and was stopped{where}. Try a smaller "
                "task, or a longer timeout if the tool has one.",
                is_error=True,
                timed_out=True,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            return self._crash(tool, ctx)
        spill_id = None
        media: tuple[ToolMedia, ...] = ()
        if (single := ToolMedia.of(result)) is not None:  # the tool returned just an image
            result, media = f"{single.kind} {single.name} attached", (single,)
        elif isinstance(result, ToolOutput):
            media = tuple(m for m in map(ToolMedia.of, result.media) if m is not None)
            if len(media) != len(result.media):
                logger.error("tool %s returned media that are not images or audio", name)
                return ToolOutcome(
                    f"{name} returned an attachment that is neither an image nor audio",
                    is_error=True,
                    crashed=True,
                )
            result, spill_id = result.content, result.spill_id
        outcome = self._capped(_jsonable(result), limit, ctx, name, is_error=False)
        if spill_id is not None and outcome.spill_id is None:
            outcome = ToolOutcome(outcome.content, spill_id=spill_id)
        if media:
            outcome = dataclasses.replace(outcome, media=media)
        return outcome

    # internals

    def _unknown(self, name: str) -> str:
        available = ", ".join(self._tools) or "(none)"
        close = difflib.get_close_matches(str(name), list(self._tools), n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]}?" if close else ""
        return f"Unknown tool {name!r}.{hint} Available tools: {available}."

    def _crash(self, tool: Tool, ctx: ToolContext[Any]) -> ToolOutcome:
        import sys

        exc = sys.exc_info()[1]
        logger.error("tool %s crashed (call %s)", tool.name, ctx.call_id, exc_info=True)
        text = f"{tool.name} failed with an unexpected error: {type(exc).__name__}: {exc}"
        return ToolOutcome(text[:2000], is_error=True, crashed=True)

    def _capped(
        self, content: Any, limit: int, ctx: ToolContext[Any], name: str, *, is_error: bool
    ) -> ToolOutcome:
        if isinstance(content, str):
            if len(content) <= limit:
                return ToolOutcome(content, is_error=is_error)
            spill_id = _spill(ctx, content, f"{name} output")
            return ToolOutcome(
                cap_text(content, limit, spill_id), is_error=is_error, spill_id=spill_id
            )
        if isinstance(content, dict | list):
            return self._cap_structured(content, limit, ctx, name, is_error)
        return ToolOutcome(content, is_error=is_error)

    def _cap_structured(
        self,
        content: dict[str, Any] | list[Any],
        limit: int,
        ctx: ToolContext[Any],
        name: str,
        is_error: bool,
    ) -> ToolOutcome:
        # Cut long strings inside the value first (e.g. the `output` of run_shell), each spilled
        # on its own so the marker points at readable text; then, if the whole is still too
        # big (many small items), spill the JSON and show it cut.
        spills: list[str] = []
        size = _json_size(content)
        if size <= limit:
            return ToolOutcome(content, is_error=is_error)
        leaf_limit = max(200, limit // 2)

        def shrink(node: Any, label: str) -> Any:
            if isinstance(node, str) and len(node) > leaf_limit:
                spill_id = _spill(ctx, node, label)
                if spill_id:
                    spills.append(spill_id)
                return cap_text(node, leaf_limit, spill_id)
            if isinstance(node, dict):
                return {k: shrink(v, f"{label} {k}") for k, v in node.items()}
            if isinstance(node, list):
                return [shrink(v, label) for v in node]
            return node

        content = shrink(content, f"{name} output")
        if _json_size(content) > limit:
            text = json.dumps(content, ensure_ascii=False, indent=1)
            spill_id = _spill(ctx, text, f"{name} output (JSON)")
            return ToolOutcome(
                cap_text(text, limit, spill_id), is_error=is_error, spill_id=spill_id
            )
        return ToolOutcome(content, is_error=is_error, spill_id=spills[0] if spills else None)


def _spill(ctx: ToolContext[Any], text: str, label: str) -> str | None:
    """Keep the full text; when that fails (disk full) the output is still cut, just not kept."""
    try:
        return ctx.spill.put(text, label=label)
    except OSError:
        logger.warning("could not spill %s", label, exc_info=True)
        return None


def _json_size(value: Any) -> int:
    """About the JSON length of a value, without serializing it (it may hold 50 MB strings)."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, dict):
        return 2 + sum(len(str(k)) + 4 + _json_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 2 + sum(1 + _json_size(v) for v in value)
    return len(str(value))


def _jsonable(value: Any) -> Any:
    if value is None:
        return "(no output)"
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return to_jsonable_python(_unicode_text(value), fallback=str)  # (keys with surrogates fail)


def _unicode_text(value: Any) -> Any:
    """``value`` with lone surrogates written as ``\\udcff`` escapes: they come from file
    names that are not UTF-8 (listed by a tool) or from odd input echoed in an error, and no
    prompt, session file or screen can encode them."""
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_unicode_text(k): _unicode_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unicode_text(v) for v in value]
    return value


def _is_async(tool: Tool) -> bool:
    return getattr(tool, "_is_async", True)


__all__ = ["DEFAULT_MAX_OUTPUT_CHARS", "DEFAULT_TIMEOUT", "ToolOutcome", "ToolRegistry"]
