"""Garbage arguments at every built-in tool, through the real registry, in a real workspace
(hypothesis): never a crash.

Each call ends as a normal result or an error result the model can read: ``crashed`` is false
and the content is JSON that encodes as UTF-8 (a lone surrogate in a result would break the
tokenizer later). The garbage: long and control-character strings, unicode with surrogates,
path pieces that hit the workspace's traps (a symlink loop, a path through a file, names over
255 bytes, NUL bytes), huge and negative numbers and floats, wrong types, missing and extra keys,
arguments that are not an object at all.

run_shell is fuzzed without running garbage: its ``command`` is either taken from a small
harmless set or is garbage wrapped as ``: '<garbage>'`` (bash's no-op builtin with one
single-quoted argument, inside which bash interprets nothing; quotes are removed from the
garbage). Garbage of another type (numbers, lists, None) cannot become a command: validation
refuses it. Its other arguments get any garbage.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from gemma_agent.tools import SpillStore, Tool, ToolContext, ToolOutcome, ToolRegistry
from gemma_agent.tools.builtin import coding_tools, media_tools
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# A 1×1 PNG, so view_image has a real image to find.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005ff02fe0d0a2db40000000049454e44ae426082"
)


def build_registry() -> ToolRegistry:
    tools: list[Any] = [*coding_tools(sandbox="none"), *media_tools()]
    return ToolRegistry(tools, default_timeout=20, recall=True)


TOOL_NAMES = build_registry().names()  # every built-in, recall_output included


def make_workspace(root: Path) -> None:
    root.mkdir()
    (root / "a.txt").write_text("hello\nworld\n")
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "sub" / "b.py").write_text("def f():\n    return 1\n")
    (root / "sub" / "deep" / "c.md").write_text("# title\n")
    (root / "empty").mkdir()
    (root / "bin.dat").write_bytes(b"\x00\x01\x02\xff" * 64)
    (root / "latin1.txt").write_bytes(b"caf\xe9 cr\xe8me\n")
    (root / "img.png").write_bytes(PNG)
    (root / ".gitignore").write_text("*.log\n[z-a]\n")
    (root / "x.log").write_text("ignored\n")
    os.symlink("loop", root / "loop")  # a symlink loop
    os.symlink("a.txt", root / "link")
    os.symlink("missing", root / "dangling")
    # A file name that is not valid UTF-8: listing it must not put raw surrogates in the result.
    fd = os.open(os.path.join(os.fsencode(root), b"bad\xffname.txt"), os.O_CREAT | os.O_WRONLY)
    os.write(fd, b"bytes\n")
    os.close(fd)


# --- garbage -----------------------------------------------------------------------------------

ANY_CHAR = st.characters(codec=None, categories=None, exclude_categories=())  # surrogates too
SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"])
CONTROL = st.one_of(
    st.characters(max_codepoint=0x1F), st.sampled_from("\x7f\x85\u2028\u2029\ufeff\u202e")
)
PIECES = [
    "a.txt", "sub", "sub/b.py", "sub/deep", "empty", "bin.dat", "latin1.txt", "img.png", "link",
    "loop", "dangling", "a.txt/b", "..", ".", "", "/", "~", "*", "**", "?", "[z-a]",
    "[[:alpha:]]", "(", "\\", "x" * 256, "é" * 130, "\x00", "\n", "/etc/passwd", "/proc/self",
    "sp_000000000000", "bad\udcffname.txt", "\ud800", "a{99999999999}", "(?P<", ")", "[", "]",
]  # fmt: skip
long_strings = st.builds(
    lambda piece, n: piece * n,
    st.sampled_from(["x", "é", "/", "a/", "\x00", "\n", "🙂", "../", "\udcff", "("]),
    st.integers(min_value=100, max_value=4000),
)
strings = st.one_of(
    st.sampled_from(PIECES),
    st.text(max_size=30),
    st.text(ANY_CHAR, max_size=30),
    st.text(st.one_of(CONTROL, SURROGATE), max_size=10),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(ANY_CHAR, max_size=3)), max_size=5).map(
        "/".join
    ),
    long_strings,
)
numbers = st.one_of(
    st.integers(min_value=-10, max_value=10),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 600, 601, 2**31, 2**63, -(2**63), 10**30]),
    st.floats(),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, strings, st.binary(max_size=8))
garbage = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(strings, inner, max_size=3)
    ),
    max_leaves=8,
)

SAFE_COMMANDS = st.one_of(
    st.sampled_from(["true", "echo ok", "pwd", "ls -a", "exit 3", "echo err >&2", "cat a.txt"]),
    strings.map(lambda s: ": '" + s.replace("'", "") + "'"),
)


def typed(key: str, prop: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Garbage of the right type for one field (so the call gets past validation)."""
    if key == "edits":
        edit = st.fixed_dictionaries(
            {
                "old_text": st.one_of(st.sampled_from(["hello", "world\n", "return 1"]), strings),
                "new_text": strings,
            },
            optional={"replace_all": st.booleans()},
        )
        return st.lists(edit, max_size=3)
    if key == "items":
        status = st.one_of(st.sampled_from(["pending", "in_progress", "done"]), strings)
        item = st.fixed_dictionaries({"text": strings}, optional={"status": status})
        return st.lists(item, max_size=4)
    kinds = [prop.get("type")] + [alt.get("type") for alt in prop.get("anyOf", [])]
    if "integer" in kinds:
        return numbers
    if "boolean" in kinds:
        return st.booleans()
    return strings


@st.composite
def arguments(draw: st.DrawFn, tool: Tool, spill_id: str) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(garbage)  # not even an object
    props: dict[str, Any] = tool.parameters.get("properties", {})
    required = set(tool.parameters.get("required", []))
    args: dict[str, Any] = {}
    for key, prop in props.items():
        if draw(st.integers(0, 9)) >= (9 if key in required else 5):
            continue  # missing
        if draw(st.integers(0, 4)) == 0:
            args[key] = draw(garbage)  # any type
        elif key == "spill_id":
            args[key] = draw(st.one_of(st.just(spill_id), strings))
        else:
            args[key] = draw(typed(key, prop))
    if draw(st.integers(0, 5)) == 0:
        args.update(draw(st.dictionaries(strings, garbage, min_size=1, max_size=2)))  # extra
    if tool.shell_argument is not None:
        command = args.get(tool.shell_argument)
        if isinstance(command, str | bytes):  # never run garbage: see the module docstring
            args[tool.shell_argument] = draw(SAFE_COMMANDS)
    return args


def readable(outcome: ToolOutcome) -> None:
    """The model can read it: JSON that encodes as UTF-8."""
    json.dumps(outcome.content, ensure_ascii=False, allow_nan=True).encode("utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("name", TOOL_NAMES)
def test_garbage_arguments_never_crash(name: str, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    make_workspace(ws)
    registry = build_registry()
    tool = registry.get(name)
    assert tool is not None
    spill = SpillStore(tmp_path / "spill")
    spill_id = spill.put("line one\nline two\n" * 50, label="earlier output")
    ctx = ToolContext(workspace=ws, spill=spill)

    with asyncio.Runner() as runner:

        @settings(
            max_examples=100,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(args=arguments(tool, spill_id))
        def call_once(args: Any) -> None:
            outcome = runner.run(registry.call(name, args, ctx))
            assert isinstance(outcome, ToolOutcome)
            assert not outcome.crashed, f"{name}({args!r}) crashed: {outcome.content}"
            readable(outcome)

        call_once()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["spill", "ws"]  # nothing written beside
