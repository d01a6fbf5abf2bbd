"""`gemma-agent acp` driven by the real client side of the `agent-client-protocol` package, in a
real subprocess (tests/editors/acp_scripted.py: the CLI's agent on a ScriptedEngine)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

acp = pytest.importorskip("acp")

from acp import PROTOCOL_VERSION, spawn_agent_process, text_block  # noqa: E402
from acp.schema import (  # noqa: E402
    AgentMessageChunk,
    AgentPlanUpdate,
    AgentThoughtChunk,
    AllowedOutcome,
    ClientCapabilities,
    ConfigOptionUpdate,
    FileEditToolCallContent,
    FileSystemCapabilities,
    ReadTextFileResponse,
    RequestPermissionResponse,
    SessionInfoUpdate,
    ToolCallProgress,
    ToolCallStart,
    UserMessageChunk,
    WriteTextFileResponse,
)

SCRIPT = Path(__file__).with_name("acp_scripted.py")


class Editor:
    """The client: records every update, answers permission requests from a list, and (when
    it offers its file system) serves files from memory, as an editor's open buffers."""

    def __init__(self, answers: list[str] | None = None, buffers: dict[str, str] | None = None):
        self.updates: list[Any] = []
        self.answers = list(answers or [])
        self.asked: list[Any] = []
        self.buffers = buffers
        self.reads: list[str] = []
        self.writes: list[tuple[str, str]] = []
        self.call_started = asyncio.Event()

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append(update)
        if isinstance(update, ToolCallStart):
            self.call_started.set()

    async def request_permission(
        self, session_id: str, tool_call: Any, options: list[Any], **kwargs: Any
    ) -> RequestPermissionResponse:
        self.asked.append((tool_call, options))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=self.answers.pop(0))
        )

    async def read_text_file(
        self, session_id: str, path: str, line: int | None = None, limit: int | None = None,
        **kwargs: Any,
    ) -> ReadTextFileResponse:  # fmt: skip
        assert self.buffers is not None
        self.reads.append(path)
        return ReadTextFileResponse(content=self.buffers[path])

    async def write_text_file(
        self, session_id: str, path: str, content: str, **kwargs: Any
    ) -> WriteTextFileResponse:
        assert self.buffers is not None
        self.writes.append((path, content))
        self.buffers[path] = content
        return WriteTextFileResponse()

    def on_connect(self, conn: Any) -> None:
        pass

    def of(self, kind: type) -> list[Any]:
        return [u for u in self.updates if isinstance(u, kind)]

    def text(self, kind: type) -> str:
        return "".join(u.content.text for u in self.of(kind))

    def calls(self, name: str) -> list[ToolCallStart]:
        return [u for u in self.of(ToolCallStart) if u.raw_input is not None and name in u.title]


@contextlib.asynccontextmanager
async def acp_agent(
    editor: Any, scenario: str, workspace: Path, *flags: str, fs: bool = False,
    terminal: bool = False,
) -> AsyncIterator[Any]:  # fmt: skip
    env = {**os.environ, "XDG_CONFIG_HOME": str(workspace.parent / "config")}
    async with spawn_agent_process(
        editor, sys.executable, str(SCRIPT), scenario, *flags, env=env, cwd=workspace
    ) as (conn, process):
        caps = ClientCapabilities(
            fs=FileSystemCapabilities(read_text_file=fs, write_text_file=fs), terminal=terminal
        )
        init = await conn.initialize(protocol_version=PROTOCOL_VERSION, client_capabilities=caps)
        assert init.protocol_version == PROTOCOL_VERSION
        assert init.agent_capabilities.load_session
        assert init.agent_capabilities.session_capabilities.list is not None  # session/list
        assert init.agent_capabilities.mcp_capabilities.http  # and stdio, always
        assert init.agent_info.name == "gemma-agent"
        yield conn
    assert process.returncode is not None


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


async def test_prompt_streams_thinking_plan_tool_calls_and_diffs(workspace: Path) -> None:
    editor = Editor()
    async with acp_agent(editor, "plan", workspace, "--approval", "auto", "--thinking") as conn:
        session = await conn.new_session(cwd=str(workspace), mcp_servers=[])
        assert session.modes.current_mode_id == "auto"
        assert {m.id for m in session.modes.available_modes} >= {"ask", "auto", "plan"}
        async with asyncio.timeout(60):
            done = await conn.prompt(session_id=session.session_id, prompt=[text_block("go")])
    assert done.stop_reason == "end_turn"
    assert "First a plan." in editor.text(AgentThoughtChunk)
    assert "All done." in editor.text(AgentThoughtChunk)
    assert editor.text(AgentMessageChunk) == "I wrote hello.txt."
    plan = editor.of(AgentPlanUpdate)[0]
    assert [(e.content, e.status) for e in plan.entries] == [
        ("write hello.txt", "in_progress"),
        ("say so", "pending"),
    ]
    (write,) = editor.calls("Write hello.txt")
    assert write.kind == "edit" and write.status == "pending"
    assert write.locations[0].path == str(workspace / "hello.txt")
    (edit,) = editor.calls("Edit hello.txt")
    assert edit.kind == "edit"
    (think,) = editor.calls("Update the plan")
    assert think.kind == "think"
    finished = {u.tool_call_id: u for u in editor.of(ToolCallProgress) if u.status}
    assert all(u.status == "completed" for u in finished.values())
    diff = finished[write.tool_call_id].content[0]
    assert isinstance(diff, FileEditToolCallContent)
    assert (diff.old_text, diff.new_text) == (None, "hello\n")
    diff = finished[edit.tool_call_id].content[0]
    assert (diff.old_text, diff.new_text) == ("hello\n", "hello world\n")
    assert (workspace / "hello.txt").read_text() == "hello world\n"
    saved = workspace / ".gemma-agent" / "sessions" / f"{session.session_id}.jsonl"
    assert saved.is_file()


async def test_permission_requests_allow_once_reject_and_always(workspace: Path) -> None:
    editor = Editor(answers=["allow", "deny", "allow_always"])
    async with acp_agent(editor, "permission", workspace, "--approval", "ask") as conn:
        session = await conn.new_session(cwd=str(workspace), mcp_servers=[])
        assert session.modes.current_mode_id == "ask"
        sid = session.session_id
        async with asyncio.timeout(60):
            for task in ("a", "b", "c", "d"):
                done = await conn.prompt(session_id=sid, prompt=[text_block(f"write {task}")])
                assert done.stop_reason == "end_turn"
    assert len(editor.asked) == 3  # d.txt: "always allow" write_file covers it
    call, options = editor.asked[0]
    assert call.title == "Write a.txt" and call.kind == "edit"
    assert [o.kind for o in options] == ["allow_once", "allow_always", "reject_once"]
    assert (workspace / "a.txt").read_text() == "A\n"
    assert not (workspace / "b.txt").exists()
    assert (workspace / "c.txt").read_text() == "C\n"
    assert (workspace / "d.txt").read_text() == "D\n"
    statuses = [u.status for u in editor.of(ToolCallProgress) if u.status]
    assert statuses.count("failed") == 1  # the rejected call
    assert "first done" in editor.text(AgentMessageChunk)
    # results are objects (Toad drops an update whose rawOutput is not one)
    ends = [u for u in editor.of(ToolCallProgress) if u.status in ("completed", "failed")]
    assert all(isinstance(u.raw_output, dict) for u in ends)
    assert {
        "error": "The user denied this call. Do not retry it; choose another approach or ask."
    } in [u.raw_output for u in ends]
    assert {"output": "Created a.txt (1 lines, 2 bytes)"} in [u.raw_output for u in ends]


async def test_cancel_mid_step_stops_the_tool_and_the_session_goes_on(workspace: Path) -> None:
    editor = Editor()
    async with acp_agent(editor, "cancel", workspace, "--approval", "yolo") as conn:
        session = await conn.new_session(cwd=str(workspace), mcp_servers=[])
        sid = session.session_id
        prompt = asyncio.create_task(conn.prompt(session_id=sid, prompt=[text_block("wait")]))
        async with asyncio.timeout(30):
            await editor.call_started.wait()
            assert editor.calls("sleep 60")
            await asyncio.sleep(0.3)  # the command is running
            await conn.cancel(session_id=sid)
            done = await prompt
        assert done.stop_reason == "cancelled"
        async with asyncio.timeout(30):
            again = await conn.prompt(session_id=sid, prompt=[text_block("still there?")])
        assert again.stop_reason == "end_turn"
    assert "still here" in editor.text(AgentMessageChunk)


async def test_load_replays_a_saved_session_and_continues_it(workspace: Path) -> None:
    first = Editor()
    async with acp_agent(first, "plan", workspace, "--approval", "auto", "--thinking") as conn:
        session = await conn.new_session(cwd=str(workspace), mcp_servers=[])
        async with asyncio.timeout(60):
            await conn.prompt(session_id=session.session_id, prompt=[text_block("make hello")])
    sid = session.session_id

    second = Editor()
    async with acp_agent(second, "load", workspace, "--approval", "auto", "--thinking") as conn:
        async with asyncio.timeout(60):
            await conn.load_session(cwd=str(workspace), session_id=sid, mcp_servers=[])
            replayed = list(second.updates)
            done = await conn.prompt(session_id=sid, prompt=[text_block("and now?")])
    assert done.stop_reason == "end_turn"
    assert second.text(UserMessageChunk) == "make hello"
    kinds = [type(u).__name__ for u in replayed]
    assert kinds[0] == "UserMessageChunk"
    assert "First a plan." in "".join(
        u.content.text for u in replayed if isinstance(u, AgentThoughtChunk)
    )
    assert [e.content for e in second.of(AgentPlanUpdate)[0].entries] == [
        "write hello.txt",
        "say so",
    ]
    assert second.calls("Write hello.txt") and second.calls("Edit hello.txt")
    assert "I wrote hello.txt." in second.text(AgentMessageChunk)
    assert second.text(AgentMessageChunk).endswith("Continued.")
    log = (workspace / ".gemma-agent" / "sessions" / f"{sid}.jsonl").read_text()
    assert "and now?" in log and json.loads(log.splitlines()[0])["session_id"] == sid


async def test_unknown_session_is_an_error(workspace: Path) -> None:
    editor = Editor()
    async with acp_agent(editor, "load", workspace) as conn:
        with pytest.raises(acp.RequestError):
            await conn.load_session(cwd=str(workspace), session_id="nope", mcp_servers=[])


async def test_file_tools_go_through_the_editor_when_it_offers_its_file_system(
    workspace: Path,
) -> None:
    notes = str(workspace / "notes.txt")
    editor = Editor(buffers={notes: "an unsaved buffer\n"})  # not on disk: only the editor has it
    async with acp_agent(editor, "fs", workspace, "--approval", "yolo", fs=True) as conn:
        session = await conn.new_session(cwd=str(workspace), mcp_servers=[])
        async with asyncio.timeout(60):
            done = await conn.prompt(session_id=session.session_id, prompt=[text_block("go")])
    assert done.stop_reason == "end_turn"
    out = str(workspace / "out.txt")
    assert editor.buffers == {notes: "an edited buffer\n", out: "from the agent\n"}
    assert (out, "from the agent\n") in editor.writes and notes in editor.reads
    assert not (workspace / "notes.txt").exists() and not (workspace / "out.txt").exists()
    finished = {u.tool_call_id: u for u in editor.of(ToolCallProgress) if u.status}
    (read,) = editor.calls("Read notes.txt")
    assert "an unsaved buffer" in finished[read.tool_call_id].content[0].content.text
    (edit,) = editor.calls("Edit notes.txt")
    diff = finished[edit.tool_call_id].content[0]
    assert (diff.path, diff.old_text, diff.new_text) == (
        notes,
        "an unsaved buffer\n",
        "an edited buffer\n",
    )


async def test_an_answer_given_through_final_answer_is_the_answer(workspace: Path) -> None:
    """With --tool-choice required the model answers by calling final_answer: the editor shows
    its answer as the answer (now and when the session is loaded), not as a tool call."""
    editor = Editor()
    flags = ("--approval", "auto", "--thinking", "--tool-choice", "required")
    async with acp_agent(editor, "final", workspace, *flags) as conn:
        session = await conn.new_session(cwd=str(workspace), mcp_servers=[])
        async with asyncio.timeout(60):
            done = await conn.prompt(session_id=session.session_id, prompt=[text_block("?")])
    assert done.stop_reason == "end_turn"
    assert editor.text(AgentThoughtChunk) == "Nothing to run."
    assert editor.text(AgentMessageChunk) == "The answer is 42."
    assert not editor.of(ToolCallStart) and not editor.of(ToolCallProgress)

    again = Editor()
    async with acp_agent(again, "load", workspace, *flags) as conn:
        async with asyncio.timeout(60):
            await conn.load_session(cwd=str(workspace), session_id=session.session_id)
    assert again.text(AgentMessageChunk) == "The answer is 42."
    assert not again.of(ToolCallStart)


async def test_session_list_gives_the_saved_sessions_with_their_titles(
    workspace: Path, tmp_path: Path
) -> None:
    editor = Editor()
    async with acp_agent(editor, "permission", workspace, "--approval", "yolo") as conn:
        first = await conn.new_session(cwd=str(workspace), mcp_servers=[])
        second = await conn.new_session(cwd=str(workspace), mcp_servers=[])
        await conn.new_session(cwd=str(workspace), mcp_servers=[])  # never prompted: no log
        async with asyncio.timeout(60):
            for sid, task in [(first, "write a"), (second, "write b"), (first, "write c")]:
                await conn.prompt(session_id=sid.session_id, prompt=[text_block(task)])
        listed = await conn.list_sessions(cwd=str(workspace))
        anywhere = await conn.list_sessions()
        (tmp_path / "other").mkdir()
        elsewhere = await conn.list_sessions(cwd=str(tmp_path / "other"))
    assert [(s.session_id, s.title) for s in listed.sessions] == [
        (first.session_id, "write a"),  # the newest: written last
        (second.session_id, "write b"),
    ]
    folder = str(workspace.resolve())  # noqa: ASYNC240
    assert all(s.cwd == folder and s.updated_at for s in listed.sessions)
    assert listed.next_cursor is None
    assert anywhere.sessions == listed.sessions  # this connection's folders (and ours)
    assert elsewhere.sessions == []
    assert not (tmp_path / "other" / ".gemma-agent").exists()  # listing wrote nothing
    titles = [(u.title, u.updated_at is not None) for u in editor.of(SessionInfoUpdate)]
    assert titles == [("write a", True), ("write b", True)]  # named by their first prompts


async def test_the_model_picker_switches_every_sessions_engine(workspace: Path) -> None:
    editor = Editor()
    async with acp_agent(editor, "load", workspace, "--approval", "auto") as conn:
        session = await conn.new_session(cwd=str(workspace), mcp_servers=[])
        other = await conn.new_session(cwd=str(workspace), mcp_servers=[])
        sid = session.session_id
        model, thinking = session.config_options
        assert (model.id, model.category, model.current_value) == ("model", "model", "scripted")
        names = [o.value for o in model.options]
        assert names[0] == "scripted" and {"E4B", "31B", "tiny"} <= set(names)
        assert (thinking.id, thinking.current_value) == ("thinking", False)

        async def ask(text: str) -> str:
            before = len(editor.of(AgentMessageChunk))
            async with asyncio.timeout(30):
                await conn.prompt(session_id=sid, prompt=[text_block(text)])
            return "".join(u.content.text for u in editor.of(AgentMessageChunk)[before:])

        assert await ask("one") == "Continued."
        switched = await conn.set_config_option(config_id="model", session_id=sid, value="E4B")
        assert switched.config_options[0].current_value == "E4B"
        (told,) = editor.of(ConfigOptionUpdate)  # the other session's picker
        assert told.config_options[0].current_value == "E4B"
        assert await ask("two") == "on E4B (start 1)"
        with pytest.raises(acp.RequestError) as refused:
            await conn.set_config_option(config_id="model", session_id=sid, value="nope")
        assert "Unknown model 'nope'" in refused.value.data["details"]
        with pytest.raises(acp.RequestError) as failed:
            await conn.set_config_option(config_id="model", session_id=sid, value="E2B")
        assert "E2B did not start" in failed.value.data["details"]
        assert "E4B is started again" in failed.value.data["details"]
        assert await ask("three") == "on E4B (start 3)"  # E2B failed; E4B started again
        async with asyncio.timeout(30):
            await conn.prompt(session_id=other.session_id, prompt=[text_block("four")])
        assert editor.text(AgentMessageChunk).endswith("on E4B (start 3)")
