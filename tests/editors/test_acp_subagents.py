"""Sub-agents through `gemma-agent acp` (the real client library, a real subprocess): a child's
tool calls as the session's tool calls, titled with its path, with unique ids and diffs; its
thinking and text kept out of the answer; its approval requests naming it; a saved session's
children replayed by session/load; and no empty log left by a session/new without a prompt."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("acp")

from acp import text_block
from acp.schema import (
    AgentMessageChunk,
    AgentThoughtChunk,
    FileEditToolCallContent,
    ToolCallProgress,
    ToolCallStart,
)

from .test_acp import Editor, acp_agent

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("the config is here\n")
    return ws


def sessions(workspace: Path) -> list[str]:
    return sorted(p.stem for p in (workspace / ".gemma-agent" / "sessions").glob("*.jsonl"))


@pytest.mark.parametrize("fs", [False, True], ids=["disk", "editor-fs"])
async def test_childrens_calls_are_tool_calls_titled_with_their_path(
    workspace: Path, fs: bool
) -> None:
    notes, out = str(workspace / "notes.txt"), str(workspace / "out.txt")
    editor = Editor(buffers={notes: "the config is here\n"} if fs else None)
    flags = ("--approval", "auto", "--thinking")
    async with acp_agent(editor, "subagents", workspace, *flags, fs=fs) as c:
        session = await c.new_session(cwd=str(workspace), mcp_servers=[])
        async with asyncio.timeout(60):
            done = await c.prompt(session_id=session.session_id, prompt=[text_block("go")])
    assert done.stop_reason == "end_turn"
    # the answer is the parent's; the children's thinking and text are theirs
    assert editor.text(AgentMessageChunk) == "All done."
    thoughts = editor.text(AgentThoughtChunk)
    assert "Two helpers." in thoughts and "CHILD" not in thoughts

    starts = editor.of(ToolCallStart)
    ids = [u.tool_call_id for u in starts]
    assert len(ids) == len(set(ids)) == 4
    titles = {u.title: u for u in starts}
    assert {"Sub-agent explore: look around", "Sub-agent general: look around"} <= set(titles)
    assert titles["Sub-agent explore: look around"].kind == "think"
    read = titles["explore#1 › Read notes.txt"]
    write = titles["general#1 › Write out.txt"]
    assert read.tool_call_id.startswith("main/explore#1/")
    assert write.tool_call_id.startswith("main/general#1/")
    assert read.kind == "read" and write.kind == "edit"
    assert write.locations[0].path == str(workspace / "out.txt")

    finished = {u.tool_call_id: u for u in editor.of(ToolCallProgress) if u.status}
    assert set(finished) == set(ids) and all(u.status == "completed" for u in finished.values())
    assert "the config is here" in finished[read.tool_call_id].content[0].content.text
    diff = finished[write.tool_call_id].content[0]
    if fs:  # the child's write went through the editor, which made the diff
        assert isinstance(diff, FileEditToolCallContent)
        assert (diff.path, diff.old_text, diff.new_text) == (out, None, "from a child\n")
        assert editor.buffers == {notes: "the config is here\n", out: "from a child\n"}
        assert not (workspace / "out.txt").exists()
    else:  # a diff read from the disk, where the child's event came in time; never a wrong one
        if isinstance(diff, FileEditToolCallContent):
            assert (diff.old_text, diff.new_text) == (None, "from a child\n")
        assert (workspace / "out.txt").read_text() == "from a child\n"
    task = titles["Sub-agent explore: look around"].tool_call_id
    assert "CHILD-TEXT in notes.txt" in finished[task].content[0].content.text  # its report
    # a task call is at work while its child is, and ends after the child's calls
    progress = [(u.tool_call_id, u.status) for u in editor.of(ToolCallProgress)]
    assert progress.index((task, "in_progress")) < progress.index((read.tool_call_id, "completed"))
    assert progress.index((read.tool_call_id, "completed")) < progress.index((task, "completed"))

    if fs:
        return
    # session/load replays the children's calls inside their task calls
    second = Editor()
    async with acp_agent(second, "load", workspace, "--approval", "auto") as c:
        async with asyncio.timeout(60):
            await c.load_session(cwd=str(workspace), session_id=session.session_id, mcp_servers=[])
    replayed = [u.title for u in second.of(ToolCallStart)]
    assert "explore#1 › Read notes.txt" in replayed and "general#1 › Write out.txt" in replayed
    finished = {u.tool_call_id: u for u in second.of(ToolCallProgress) if u.status}
    assert set(finished) == {u.tool_call_id for u in second.of(ToolCallStart)}
    assert "CHILD" not in second.text(AgentMessageChunk)


async def test_a_childs_permission_request_names_the_child(workspace: Path) -> None:
    editor = Editor(answers=["allow"])
    async with acp_agent(editor, "subagent-ask", workspace, "--approval", "ask") as c:
        session = await c.new_session(cwd=str(workspace), mcp_servers=[])
        async with asyncio.timeout(60):
            done = await c.prompt(session_id=session.session_id, prompt=[text_block("go")])
    assert done.stop_reason == "end_turn"
    assert len(editor.asked) == 1
    call, _ = editor.asked[0]
    assert call.title == "general#1 › Write out.txt" and call.kind == "edit"
    (write,) = editor.calls("general#1 › Write out.txt")
    assert call.tool_call_id == write.tool_call_id  # the request is about the call shown
    statuses = [
        u.status for u in editor.of(ToolCallProgress) if u.tool_call_id == write.tool_call_id
    ]
    assert statuses == ["in_progress", "completed"]
    assert (workspace / "out.txt").read_text() == "x\n"
    assert editor.text(AgentMessageChunk) == "Noted."


async def test_a_new_session_without_a_prompt_leaves_no_log(workspace: Path) -> None:
    editor = Editor()
    async with acp_agent(editor, "load", workspace) as c:
        await c.new_session(cwd=str(workspace), mcp_servers=[])
        used = await c.new_session(cwd=str(workspace), mcp_servers=[])
        assert sessions(workspace) == []  # written with the first prompt
        async with asyncio.timeout(60):
            await c.prompt(session_id=used.session_id, prompt=[text_block("hi")])
        assert sessions(workspace) == [used.session_id]
    assert sessions(workspace) == [used.session_id]
