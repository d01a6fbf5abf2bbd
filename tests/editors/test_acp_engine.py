"""The real `gemma-agent acp` console script on the real tiny CPU vLLM engine, driven by the
ACP client library: initialize, session/new, prompts, streamed updates, stop reasons, and a
switch of the model (tiny to tiny-mm: the engine stopped, another started, the session goes on).

The tiny model has random weights (its output is noise); --thinking and --tool-choice required
still make it think and call tools. Noise may end a run without either, so a few prompts are
sent until both were seen. The engine starts inside the command's process (as an editor starts
it), with its engine-core subprocess: the protocol on stdout must survive their prints.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("acp")

from acp import PROTOCOL_VERSION, spawn_agent_process, text_block
from acp.schema import (
    AgentMessageChunk,
    AgentThoughtChunk,
    AllowedOutcome,
    ClientCapabilities,
    FileSystemCapabilities,
    RequestPermissionResponse,
    ToolCallProgress,
    ToolCallStart,
)

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

SCRIPT = Path(sys.executable).parent / "gemma-agent"
STOPS = {"end_turn", "max_turn_requests", "max_tokens"}


class Editor:
    """Records the updates; rejects every permission request (noise may ask to write)."""

    def __init__(self) -> None:
        self.updates: list[Any] = []
        self.asked: list[Any] = []

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append(update)

    async def request_permission(
        self, session_id: str, tool_call: Any, options: list[Any], **kwargs: Any
    ) -> RequestPermissionResponse:
        self.asked.append(tool_call)
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id="deny")
        )

    def on_connect(self, conn: Any) -> None:
        pass

    def calls(self) -> list[ToolCallStart]:
        return [u for u in self.updates if isinstance(u, ToolCallStart)]

    def thinking(self) -> str:
        """The model's own thought chunks (not our warnings, which are thoughts too)."""
        return "".join(
            u.content.text
            for u in self.updates
            if isinstance(u, AgentThoughtChunk) and not u.content.text.startswith("\n[")
        )


async def test_acp_on_the_tiny_engine_streams_thinking_and_tool_calls(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    from gemma_agent.agent.engines.vllm import vllm_installed

    if not vllm_installed():
        if os.environ.get("CI"):
            pytest.fail("vLLM is not installed: `make install`")
        pytest.skip("vLLM is not installed: `make install`")
    assert SCRIPT.exists(), f"{SCRIPT} missing: pip install -e ."
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "README.md").write_text("# demo\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    flags = [
        *("--thinking", "--tool-choice", "required", "--approval", "ask", "--no-subagents"),
        *("--max-steps", "2", "--max-model-len", "4096"),
    ]
    editor = Editor()
    stops = []
    async with spawn_agent_process(editor, str(SCRIPT), "acp", *flags, env=env, cwd=workspace) as (
        conn,
        process,
    ):
        caps = ClientCapabilities(fs=FileSystemCapabilities())
        async with asyncio.timeout(60):
            init = await conn.initialize(
                protocol_version=PROTOCOL_VERSION, client_capabilities=caps
            )
        assert init.agent_info.name == "gemma-agent"
        async with asyncio.timeout(300):  # the first session waits for the engine
            session = await conn.new_session(cwd=str(workspace), mcp_servers=[])
        for _ in range(4):
            async with asyncio.timeout(300):
                done = await conn.prompt(
                    session_id=session.session_id, prompt=[text_block("list the files here")]
                )
            stops.append(done.stop_reason)
            if editor.thinking() and editor.calls():
                break
        # the model picker: the session goes on with another model (a real engine switch)
        model = session.config_options[0]
        assert (model.id, model.current_value) == ("model", "tiny")
        async with asyncio.timeout(300):
            switched = await conn.set_config_option(
                config_id="model", session_id=session.session_id, value="tiny-mm"
            )
            assert switched.config_options[0].current_value == "tiny-mm"
            done = await conn.prompt(session_id=session.session_id, prompt=[text_block("again")])
        stops.append(done.stop_reason)
    assert process.returncode is not None
    assert set(stops) <= STOPS, stops
    assert editor.thinking(), "no thinking streamed"
    starts = editor.calls()
    assert starts, "no tool call streamed"
    assert all(s.status == "pending" and s.title for s in starts)
    ends = {
        u.tool_call_id: u.status
        for u in editor.updates
        if isinstance(u, ToolCallProgress) and u.status is not None
    }
    assert set(ends) == {s.tool_call_id for s in starts}  # every call got its result
    assert set(ends.values()) <= {"completed", "failed"}
    for call in editor.asked:  # a write or command the noise asked for: rejected, shown failed
        assert ends[call.tool_call_id] == "failed"
    answer = [u for u in editor.updates if isinstance(u, AgentMessageChunk)]
    assert all(isinstance(u.content.text, str) for u in answer)
    saved = workspace / ".gemma-agent" / "sessions" / f"{session.session_id}.jsonl"
    assert saved.is_file()
