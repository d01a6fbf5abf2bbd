"""run_shell in the editor's terminals (ACP terminal/*), through `gemma-agent acp` in a real
subprocess and the real client library; the test client runs each command for real, in a
pseudo-terminal of its own (as an editor's terminal does), with a secret in its environment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("acp")

from acp import text_block
from acp.schema import (
    AgentMessageChunk,
    CreateTerminalResponse,
    KillTerminalResponse,
    ReleaseTerminalResponse,
    TerminalExitStatus,
    TerminalOutputResponse,
    TerminalToolCallContent,
    ToolCallProgress,
    WaitForTerminalExitResponse,
)
from gemma_agent.tools.builtin import sandbox_status

from .acp_scripted import SHOWN
from .test_acp import Editor, acp_agent

pytestmark = pytest.mark.timeout(120)


class _Terminal:
    def __init__(self, proc: asyncio.subprocess.Process, master: int) -> None:
        self.proc = proc
        self.output = bytearray()
        self.limit: int | None = None
        self.released = False
        self.killed = False
        self.reader = threading.Thread(target=self._read, args=(master,), daemon=True)
        self.reader.start()

    def _read(self, master: int) -> None:
        try:
            while chunk := os.read(master, 65536):
                self.output += chunk
        except OSError:  # EIO: every process holding the terminal has gone
            pass
        finally:
            os.close(master)

    def status(self) -> TerminalExitStatus | None:
        code = self.proc.returncode
        if code is None:
            return None
        if code < 0:
            return TerminalExitStatus(signal=signal.Signals(-code).name)
        return TerminalExitStatus(exit_code=code)


class TerminalEditor(Editor):
    """An editor with terminals: each command runs in a pseudo-terminal (stdin included)."""

    def __init__(self, answers: list[str] | None = None) -> None:
        super().__init__(answers)
        self.terminals: dict[str, _Terminal] = {}
        self.commands: list[list[str]] = []
        self.log: list[tuple[str, str]] = []
        self.running = asyncio.Event()

    async def create_terminal(
        self, session_id: str, command: str, args: list[str] | None = None,
        env: list[Any] | None = None, cwd: str | None = None,
        output_byte_limit: int | None = None, **kwargs: Any,
    ) -> CreateTerminalResponse:  # fmt: skip
        master, slave = pty.openpty()
        environment = {**os.environ, "GEMMA_TEST_SECRET": "the editor's secret"}
        environment.update({v.name: v.value for v in env or []})
        proc = await asyncio.create_subprocess_exec(
            command, *(args or []), cwd=cwd, env=environment,
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        terminal_id = f"term-{len(self.terminals) + 1}"
        self.terminals[terminal_id] = _Terminal(proc, master)
        self.terminals[terminal_id].limit = output_byte_limit
        self.commands.append([command, *(args or [])])
        self.log.append(("create", terminal_id))
        self.running.set()
        return CreateTerminalResponse(terminal_id=terminal_id)

    async def terminal_output(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> TerminalOutputResponse:
        terminal = self.terminals[terminal_id]
        assert not terminal.released
        if terminal.proc.returncode is not None:
            await asyncio.to_thread(terminal.reader.join, 5)
        text = terminal.output.decode(errors="replace").replace("\r\n", "\n")
        self.log.append(("output", terminal_id))
        return TerminalOutputResponse(output=text, truncated=False, exit_status=terminal.status())

    async def wait_for_terminal_exit(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> WaitForTerminalExitResponse:
        terminal = self.terminals[terminal_id]
        await terminal.proc.wait()
        status = terminal.status()
        assert status is not None
        self.log.append(("exited", terminal_id))
        return WaitForTerminalExitResponse(exit_code=status.exit_code, signal=status.signal)

    async def kill_terminal(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> KillTerminalResponse:
        terminal = self.terminals[terminal_id]
        terminal.killed = True
        self.log.append(("kill", terminal_id))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(terminal.proc.pid, signal.SIGKILL)
        return KillTerminalResponse()

    async def release_terminal(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> ReleaseTerminalResponse:
        terminal = self.terminals[terminal_id]
        if terminal.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(terminal.proc.pid, signal.SIGKILL)
        terminal.released = True
        self.log.append(("release", terminal_id))
        return ReleaseTerminalResponse()

    def results(self) -> dict[str, ToolCallProgress]:
        return {u.tool_call_id: u for u in self.of(ToolCallProgress) if u.status}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


async def test_commands_run_in_the_editors_terminal_after_approval(workspace: Path) -> None:
    editor = TerminalEditor(answers=["allow", "deny", "allow"])
    async with acp_agent(editor, "terminal", workspace, "--approval", "ask", terminal=True) as c:
        session = await c.new_session(cwd=str(workspace), mcp_servers=[])
        async with asyncio.timeout(60):
            for task in ("show", "never", "time out"):
                done = await c.prompt(session_id=session.session_id, prompt=[text_block(task)])
                assert done.stop_reason == "end_turn"
    # asked three times; the denied command never reached a terminal
    assert len(editor.asked) == 3
    assert len(editor.terminals) == 2
    assert all(t.released for t in editor.terminals.values())
    shown, _, timed = editor.calls("Run")
    results = editor.results()

    # the first: the editor's terminal shows it, live and after; the model reads its output
    live = [
        u for u in editor.of(ToolCallProgress)
        if u.tool_call_id == shown.tool_call_id and u.status == "in_progress" and u.content
    ]  # fmt: skip
    assert live and live[-1].content == [
        TerminalToolCallContent(type="terminal", terminal_id="term-1")
    ]
    first = results[shown.tool_call_id]
    assert first.status == "completed"
    assert first.content == [TerminalToolCallContent(type="terminal", terminal_id="term-1")]
    output = first.raw_output["output"]
    assert first.raw_output["exit_code"] == 3
    assert f"pwd:{workspace}" in output
    assert "secret:[]" in output  # the editor's environment is not the command's
    assert "term:dumb" in output  # run_shell's own environment is
    assert "stdin:1" in output  # stdin is closed, not the terminal's keyboard
    command = editor.commands[0]
    assert command[:3] == ["/bin/bash", "-c", 'exec /usr/bin/env -i "$@" </dev/null']
    assert command[3] == SHOWN  # the model's command comes first (what editors show)
    if sandbox_status().available:  # the same sandbox as run_shell's: a write outside stays in
        assert any(word.endswith("bwrap") for word in command)
        assert not (workspace.parent / "outside.txt").exists()

    # the denied one failed without running
    assert len([u for u in results.values() if u.status == "failed"]) == 1
    # the last: killed at its timeout, its output kept
    last = results[timed.tool_call_id]
    assert last.raw_output["timed_out"] is True
    assert "started" in last.raw_output["output"]
    assert editor.terminals["term-2"].killed
    killed = editor.log.index(("kill", "term-2"))
    assert ("output", "term-2") in editor.log[killed:] and editor.log[-1] == ("release", "term-2")
    assert editor.log[:4] == [(e, "term-1") for e in ("create", "exited", "output", "release")]
    assert "timed out" in editor.text(AgentMessageChunk)


async def test_cancel_kills_the_command_in_the_editors_terminal(workspace: Path) -> None:
    editor = TerminalEditor()
    async with acp_agent(editor, "cancel", workspace, "--approval", "yolo", terminal=True) as c:
        session = await c.new_session(cwd=str(workspace), mcp_servers=[])
        sid = session.session_id
        prompt = asyncio.create_task(c.prompt(session_id=sid, prompt=[text_block("wait")]))
        async with asyncio.timeout(30):
            await editor.running.wait()
            await asyncio.sleep(0.5)  # the command is running
            await c.cancel(session_id=sid)
            done = await prompt
        assert done.stop_reason == "cancelled"
        (terminal,) = editor.terminals.values()
        async with asyncio.timeout(10):
            await terminal.proc.wait()
        assert terminal.killed and terminal.released
        assert terminal.proc.returncode == -signal.SIGKILL
        async with asyncio.timeout(30):
            again = await c.prompt(session_id=sid, prompt=[text_block("still there?")])
        assert again.stop_reason == "end_turn"
    assert "still here" in editor.text(AgentMessageChunk)


async def test_a_sub_agents_command_shows_its_terminal_in_its_own_tool_call(
    workspace: Path,
) -> None:
    editor = TerminalEditor()
    flags = ("--approval", "yolo")
    async with acp_agent(editor, "subagent-terminal", workspace, *flags, terminal=True) as c:
        session = await c.new_session(cwd=str(workspace), mcp_servers=[])
        async with asyncio.timeout(60):
            done = await c.prompt(session_id=session.session_id, prompt=[text_block("go")])
    assert done.stop_reason == "end_turn"
    (run,) = editor.calls("Run")
    assert run.title.startswith("general#1 › ") and run.tool_call_id.startswith("main/general#1/")
    terminal = [TerminalToolCallContent(type="terminal", terminal_id="term-1")]
    shown = [u for u in editor.of(ToolCallProgress) if u.content == terminal]
    assert {u.tool_call_id for u in shown} == {run.tool_call_id}
    assert editor.results()[run.tool_call_id].raw_output["output"] == "from-the-child\n"
