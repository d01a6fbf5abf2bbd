"""The MCP client against a real MCP server subprocess (tests/tools/mcp_server_app.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from gemma_agent.errors import ConfigError
from gemma_agent.tools import MCPServer, ToolContext, ToolRegistry

APP = str(Path(__file__).with_name("mcp_server_app.py"))


async def test_mcp_tools_listed_validated_and_called(tmp_path: Path) -> None:
    async with MCPServer(sys.executable, [APP], prefix="t_", timeout=2) as server:
        assert server.server_name == "tiny-test-server"
        tools = {t.name: t for t in server.tools()}
        assert set(tools) == {"t_add", "t_shout", "t_fail", "t_slow"}
        add = tools["t_add"]
        assert add.description == "Add two integers."
        assert add.read_only and not tools["t_shout"].read_only
        assert add.parameters["required"] == ["a", "b"]
        assert add.parameters["properties"]["a"]["type"] == "integer"
        decl = add.declaration()["function"]
        assert decl["name"] == "t_add" and decl["parameters"]["type"] == "object"

        registry = ToolRegistry(server.tools())
        ctx = ToolContext(workspace=tmp_path)
        ok = await registry.call("t_add", {"a": 2, "b": 40}, ctx)
        assert not ok.is_error and ok.content == {"result": 42}
        text = await registry.call("t_shout", {"text": "hi", "times": 2}, ctx)
        assert text.content in ("HI HI", {"result": "HI HI"})
        bad = await registry.call("t_add", {"a": "two"}, ctx)
        assert (
            bad.is_error
            and "- a: expected integer" in bad.content
            and "- b: required" in bad.content
        )
        failed = await registry.call("t_fail", {"reason": "nope"}, ctx)
        assert failed.is_error and not failed.crashed and "cannot do it: nope" in failed.content
        slow = await registry.call("t_slow", {"seconds": 30}, ctx)
        assert slow.timed_out and slow.is_error
        # The session still works after a cancelled call.
        again = await registry.call("t_add", {"a": 1, "b": 1}, ctx)
        assert again.content == {"result": 2}
    after = await registry.call("t_add", {"a": 1, "b": 1}, ctx)
    assert after.is_error and "not running" in after.content


async def test_mcp_server_that_does_not_start(tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("import sys\nprint('boom: missing config', file=sys.stderr)\nsys.exit(3)\n")
    with pytest.raises(ConfigError, match="did not start") as info:
        async with MCPServer(sys.executable, [str(script)], startup_timeout=20):
            pass
    assert "boom: missing config" in str(info.value)
    with pytest.raises(ConfigError, match="did not start"):
        async with MCPServer("/nonexistent/mcp-server-binary"):
            pass
