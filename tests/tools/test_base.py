"""@tool, Tool subclasses, schemas from type hints and docstrings, ToolContext."""

from __future__ import annotations

import asyncio
import threading
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from gemma_agent.tools import (
    InvalidArguments,
    Tool,
    ToolContext,
    ToolError,
    ToolRegistry,
    tool,
)
from gemma_agent.tools.base import parse_docstring
from pydantic import BaseModel, Field


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Point(BaseModel):
    x: int
    y: int = 0


class Shape(BaseModel):
    name: str = Field(description="Shape name.")
    points: list[Point]


@tool
def draw(
    shape: Shape,
    color: Color = Color.RED,
    style: Literal["solid", "dashed"] = "solid",
    width: Annotated[int, Field(description="Stroke width in px.", ge=1, le=10)] = 1,
    label: str | None = None,
) -> str:
    """Draw a shape on the canvas.

    The canvas is cleared first.

    Args:
        shape: What to draw.
        color: Stroke colour.
        style: Line style,
            solid or dashed.
        width: Ignored: Annotated description wins.

    Returns:
        A description of what was drawn.
    """
    return f"{shape.name} {len(shape.points)} {color.value} {style} {width} {label}"


def test_schema_from_hints_and_docstring() -> None:
    params = draw.parameters  # the JSON Schema pydantic built
    props = params["properties"]
    assert params["required"] == ["shape"]
    assert params["type"] == "object"
    assert props["shape"]["description"] == "What to draw."
    assert props["style"]["enum"] == ["solid", "dashed"]
    assert props["style"]["description"] == "Line style, solid or dashed."
    assert props["width"]["description"] == "Stroke width in px."
    assert props["width"]["minimum"] == 1 and props["width"]["maximum"] == 10
    assert props["color"]["description"] == "Stroke colour."
    assert params["$defs"]["Color"]["enum"] == ["red", "blue"]
    assert params["$defs"]["Shape"]["properties"]["name"]["description"] == "Shape name."
    assert "Point" in params["$defs"]
    # Optional -> anyOf with null; pydantic titles are stripped.
    assert {"type": "null"} in props["label"]["anyOf"]
    assert "title" not in props["width"] and "title" not in params


def test_declaration_is_normalized_for_gemma() -> None:
    decl = draw.declaration()
    assert decl["type"] == "function"
    fn = decl["function"]
    assert fn["name"] == "draw"
    assert fn["description"].startswith(
        "Draw a shape on the canvas.\n\nThe canvas is cleared first."
    )
    assert "Args:" not in fn["description"]
    props = fn["parameters"]["properties"]
    # prompts.tool_declaration inlines $defs and folds constraints into descriptions.
    assert props["color"]["enum"] == ["red", "blue"]
    assert props["shape"]["properties"]["points"]["items"]["required"] == ["x"]
    assert props["width"]["description"].startswith("Stroke width in px. Range 1")
    assert props["label"]["nullable"] is True


async def test_function_tool_validates_and_runs(tmp_path: Path) -> None:
    ctx = ToolContext(workspace=tmp_path)
    out = await draw.run(
        {"shape": {"name": "tri", "points": [{"x": 1}, {"x": "2", "y": 3}]}, "color": "blue"}, ctx
    )
    assert out == "tri 2 blue solid 1 None"
    with pytest.raises(InvalidArguments) as info:
        await draw.run({"shape": {"name": "tri", "points": [{"y": 1}]}, "style": "wavy"}, ctx)
    text = str(info.value)
    assert "shape.points.0.x: required but missing" in text
    assert "style:" in text and '"wavy"' in text
    # The decorated function is still callable directly.
    assert draw(Shape(name="s", points=[]), Color.BLUE).startswith("s 0 blue")


def test_parameter_named_like_basemodel_attribute() -> None:
    @tool
    def fetch(json: str, schema: int = 1, model_name: str = "m") -> str:
        """Fetch."""
        return f"{json}-{schema}-{model_name}"

    props = fetch.parameters["properties"]
    assert set(props) == {"json", "schema", "model_name"}
    args = fetch.validate({"json": "j", "schema": 2, "model_name": "x"})
    assert asyncio.run(fetch.execute(args, ToolContext(workspace=Path.cwd()))) == "j-2-x"


def test_context_parameter_is_not_in_schema() -> None:
    @tool
    async def a(ctx: ToolContext, x: int) -> int:
        return x

    @tool
    def b(x: int, context: ToolContext[dict[str, int]]) -> int:
        return x + context.deps["k"]

    assert list(a.parameters["properties"]) == ["x"]
    assert list(b.parameters["properties"]) == ["x"]
    ctx: ToolContext[dict[str, int]] = ToolContext(workspace=Path.cwd(), deps={"k": 5})
    assert asyncio.run(b.run({"x": 1}, ctx)) == 6


def test_bad_tool_definitions() -> None:
    def star(*args: int) -> None:
        return None

    with pytest.raises(TypeError, match=r"\*args"):
        tool(star)
    with pytest.raises(ValueError, match="invalid tool name"):
        tool(name="has space")(lambda: None)


async def test_sync_tool_runs_in_thread_and_emits_on_loop(tmp_path: Path) -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[object, int]] = []

    @tool
    def work(ctx: ToolContext) -> int:
        ctx.emit("progress")
        return threading.get_ident()

    ctx = ToolContext(workspace=tmp_path, emit=lambda e: seen.append((e, threading.get_ident())))
    worker_thread = await ToolRegistry([work]).call("work", {}, ctx)
    await asyncio.sleep(0)
    assert worker_thread.content != loop_thread
    assert seen == [("progress", loop_thread)]


class Counter(Tool):
    """Count calls; state lives on the instance."""

    name = "count"
    read_only = True

    class Args(BaseModel):
        step: int = Field(default=1, description="How much to add.")

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    async def execute(self, args: Any, ctx: ToolContext[Any]) -> dict[str, int]:
        if args.step < 0:
            raise ToolError("step must not be negative")
        self.total += args.step
        return {"total": self.total}


async def test_tool_subclass_with_state(tmp_path: Path) -> None:
    counter = Counter()
    assert counter.description == "Count calls; state lives on the instance."
    assert counter.parameters["properties"]["step"]["description"] == "How much to add."
    registry = ToolRegistry([counter])
    ctx = ToolContext(workspace=tmp_path)
    assert (await registry.call("count", {"step": 2}, ctx)).content == {"total": 2}
    assert (await registry.call("count", {}, ctx)).content == {"total": 3}
    bad = await registry.call("count", {"step": -1}, ctx)
    assert bad.is_error and not bad.crashed and bad.content == "step must not be negative"


async def test_schema_only_tool_validation(tmp_path: Path) -> None:
    class Remote(Tool):
        async def execute(self, args: Any, ctx: ToolContext[Any]) -> Any:
            return args

    schema = {
        "type": "object",
        "properties": {
            "q": {"type": "string", "minLength": 2},
            "n": {"type": "integer", "minimum": 1},
            "mode": {"enum": ["fast", "slow"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "ref": {"$ref": "#/$defs/R"},
        },
        "required": ["q"],
        "additionalProperties": False,
        "$defs": {
            "R": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}
        },
    }
    remote = Remote(name="remote", description="r", parameters=schema)
    assert remote.validate({"q": "ok", "n": 2, "tags": ["a"], "ref": {"id": 1}})["n"] == 2
    with pytest.raises(InvalidArguments) as info:
        remote.validate(
            {"q": "x", "n": 0, "mode": "medium", "tags": ["a", 3], "ref": {}, "extra": 1}
        )
    text = str(info.value)
    for needle in (
        "q: must have at least 2 characters",
        "n: must be at least 1",
        'mode: expected one of "fast", "slow"; got "medium"',
        "tags.1: expected string; got 3",
        "ref.id: required but missing",
        "extra: unknown argument",
    ):
        assert needle in text, (needle, text)


def test_parse_docstring_variants() -> None:
    desc, args = parse_docstring(
        """Summary line.

        Arguments:
            alpha (int): First one.
            beta: Second
                continued here.
            *rest: Ignored-ish.

        Raises:
            ValueError: never shown.
        """
    )
    assert desc == "Summary line."
    assert args == {"alpha": "First one.", "beta": "Second continued here.", "rest": "Ignored-ish."}


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, gemma_agent.tools; "
        "print(sorted(m for m in ('mcp', 'jinja2', 'torch', 'vllm', 'gemma_agent.agent') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
