"""ToolRegistry: errors the model reads, timeouts, output caps and the spill store."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import tracemalloc
from pathlib import Path

import pytest
from gemma_agent.errors import ConfigError
from gemma_agent.tools import SpillStore, ToolContext, ToolError, ToolOutcome, ToolRegistry, tool


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path, spill=SpillStore(tmp_path / "spill"), call_id="c1")


@tool(read_only=True)
def add(a: int, b: int = 0) -> int:
    """Add two numbers."""
    return a + b


async def test_registry_basics(ctx: ToolContext) -> None:
    assert ToolRegistry([add]).names() == ["add"]  # recall_output only when asked for
    registry = ToolRegistry([add], recall=True)
    assert registry.names() == ["add", "recall_output"]
    assert "add" in registry and len(registry) == 2
    assert [d["function"]["name"] for d in registry.declarations()] == ["add", "recall_output"]
    assert await registry.call("add", {"a": 2, "b": "3"}, ctx) == ToolOutcome(5)
    with pytest.raises(ConfigError, match="unique"):
        ToolRegistry([add, add])


async def test_unknown_tool_lists_available(ctx: ToolContext) -> None:
    out = await ToolRegistry([add], recall=True).call("ad", {}, ctx)
    assert out.is_error and not out.crashed
    assert (
        out.content == "Unknown tool 'ad'. Did you mean add? Available tools: add, recall_output."
    )


async def test_invalid_arguments_not_called(ctx: ToolContext) -> None:
    calls: list[int] = []

    @tool
    def record(n: int) -> int:
        calls.append(n)
        return n

    registry = ToolRegistry([record])
    out = await registry.call("record", {"n": "many", "m": 1}, ctx)
    assert out.is_error and not calls
    assert "- n: Input should be a valid integer" in out.content and 'got "many"' in out.content
    assert "- m: unknown argument (allowed: n)" in out.content
    assert "Expected arguments: n (integer, required)." in out.content
    missing = await registry.call("record", None, ctx)
    assert "- n: required but missing" in missing.content
    not_object = await registry.call("record", ["x"], ctx)  # type: ignore[arg-type]
    assert (
        not_object.is_error
        and "expected an object of named arguments, got list" in not_object.content
    )


async def test_tool_error_and_crash(ctx: ToolContext, caplog: pytest.LogCaptureFixture) -> None:
    @tool
    def picky() -> str:
        raise ToolError("file is locked; try again later")

    @tool
    async def broken() -> str:
        return {}["missing"]  # type: ignore[no-any-return]

    registry = ToolRegistry([picky, broken])
    out = await registry.call("picky", {}, ctx)
    assert out == ToolOutcome("file is locked; try again later", is_error=True)
    with caplog.at_level(logging.ERROR, logger="gemma_agent.tools"):
        crash = await registry.call("broken", {}, ctx)
    assert crash.is_error and crash.crashed
    assert crash.content == "broken failed with an unexpected error: KeyError: 'missing'"
    assert "Traceback" in caplog.text and "broken crashed (call c1)" in caplog.text


async def test_async_timeout_cancels_the_tool(ctx: ToolContext) -> None:
    cleaned: list[str] = []

    @tool(timeout=0.2)
    async def hang() -> str:
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.append("finally ran")
        return "never"

    start = time.monotonic()
    out = await ToolRegistry([hang]).call("hang", {}, ctx)
    assert time.monotonic() - start < 5
    assert out.is_error and out.timed_out and not out.crashed
    assert out.content.startswith("hang timed out after 0.2 s and was stopped.")
    assert cleaned == ["finally ran"]


async def test_default_timeout_and_sync_tool(ctx: ToolContext) -> None:
    @tool
    def slow_sync() -> str:
        time.sleep(0.6)
        return "late"

    out = await ToolRegistry([slow_sync], default_timeout=0.1).call("slow_sync", {}, ctx)
    assert out.timed_out and "may still finish in the background" in out.content


async def test_own_timeout_error_is_a_crash(ctx: ToolContext) -> None:
    @tool
    async def raises_timeout() -> str:
        raise TimeoutError("upstream")

    out = await ToolRegistry([raises_timeout]).call("raises_timeout", {}, ctx)
    assert out.crashed and not out.timed_out


async def test_caller_cancellation_propagates(ctx: ToolContext) -> None:
    @tool
    async def forever() -> str:
        await asyncio.sleep(30)
        return ""

    task = asyncio.create_task(ToolRegistry([forever]).call("forever", {}, ctx))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_long_output_capped_and_spilled(ctx: ToolContext) -> None:
    text = "".join(f"line {i}\n" for i in range(20_000))

    @tool
    def noisy() -> str:
        return text

    registry = ToolRegistry([noisy], max_output_chars=2_000, recall=True)
    out = await registry.call("noisy", {}, ctx)
    assert out.spill_id is not None and not out.is_error
    assert len(out.content) < 2_200
    assert out.content.startswith("line 0\nline 1\n")
    assert out.content.rstrip().endswith("line 19999")
    assert f'recall_output(spill_id="{out.spill_id}")' in out.content
    assert "lines) cut" in out.content
    assert ctx.spill.get(out.spill_id) == text
    # The model pages through the full text with recall_output.
    page = await registry.call(
        "recall_output", {"spill_id": out.spill_id, "start_line": 10_001, "max_lines": 3}, ctx
    )
    assert page.content.splitlines()[1:4] == [
        " 10001\tline 10000",
        " 10002\tline 10001",
        " 10003\tline 10002",
    ]
    assert "[more: call again with start_line=10004]" in page.content
    grep = await registry.call(
        "recall_output", {"spill_id": out.spill_id, "pattern": "^line 1234$"}, ctx
    )
    assert grep.content.splitlines()[1:] == ["  1235\tline 1234"]
    missing = await registry.call("recall_output", {"spill_id": "sp_000000000000"}, ctx)
    assert missing.is_error and "no spilled output" in missing.content
    traversal = await registry.call("recall_output", {"spill_id": "../../etc/passwd"}, ctx)
    assert traversal.is_error and "not a spill id" in traversal.content


async def test_structured_output_capped_per_field(ctx: ToolContext) -> None:
    @tool
    def report() -> dict[str, object]:
        return {"exit_code": 0, "output": "x" * 50_000}

    out = await ToolRegistry([report], max_output_chars=4_000).call("report", {}, ctx)
    assert out.content["exit_code"] == 0
    assert len(out.content["output"]) < 4_000
    assert out.spill_id and ctx.spill.get(out.spill_id) == "x" * 50_000

    @tool
    def many() -> list[int]:
        return list(range(10_000))

    listed = await ToolRegistry([many], max_output_chars=1_000).call("many", {}, ctx)
    assert isinstance(listed.content, str) and len(listed.content) < 1_200
    assert listed.spill_id and ctx.spill.get(listed.spill_id).startswith("[\n 0,\n 1,")


async def test_fifty_megabytes_of_output_stays_bounded(ctx: ToolContext) -> None:
    size = 50 * 1024 * 1024

    @tool
    def huge() -> str:
        return ("0123456789abcdef" * 4 + "\n") * (size // 65)

    registry = ToolRegistry([huge])
    gc.collect()
    tracemalloc.start()
    try:
        out = await registry.call("huge", {}, ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.spill_id is not None
    assert len(out.content) <= registry.max_output_chars + 200
    # The 50 MB string itself plus bounded overhead (1 MB write chunks), not several copies.
    assert peak < size + 12 * 1024 * 1024, peak
    spilled = ctx.spill.info(out.spill_id)
    assert spilled.chars == (size // 65) * 65 and spilled.lines == size // 65


async def test_return_values_become_json(ctx: ToolContext) -> None:
    @tool
    def path_value() -> Path:
        return Path("a/b")

    @tool
    def nothing() -> None:
        return None

    registry = ToolRegistry([path_value, nothing])
    assert (await registry.call("path_value", {}, ctx)).content == "a/b"
    assert (await registry.call("nothing", {}, ctx)).content == "(no output)"


def test_spill_store_without_root_is_temporary() -> None:
    store = SpillStore()
    spill_id = store.put("hello\nworld", label="t")
    root = store.root
    assert store.get(spill_id) == "hello\nworld"
    assert store.info(spill_id).lines == 2 and store.ids() == [spill_id]
    store.close()
    assert not root.exists()


async def test_output_cut_even_when_spilling_fails(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    spill = SpillStore(tmp_path / "taken" / "spill")  # nowhere to write the full text
    ctx = ToolContext(workspace=tmp_path, spill=spill)

    @tool
    def noisy() -> str:
        return "y" * 10_000

    out = await ToolRegistry([noisy], max_output_chars=1_000).call("noisy", {}, ctx)
    assert not out.is_error and out.spill_id is None
    assert len(out.content) < 1_200 and "full output not kept" in out.content


def test_declarations_render_in_the_gemma_prompt() -> None:
    from gemma_agent.agent.messages import UserMessage
    from gemma_agent.prompts import render_chat
    from gemma_agent.tools.builtin import coding_tools

    registry = ToolRegistry(coding_tools(sandbox="none"))
    prompt = render_chat([UserMessage(content="hi")], tools=registry.declarations())
    for name in registry.names():
        assert f"declaration:{name}{{" in prompt
