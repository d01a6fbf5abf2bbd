"""`gemma-agent mcp-serve` on a ScriptedEngine, as a real process for the tests."""

from __future__ import annotations

import sys

from gemma_agent import ScriptedEngine
from gemma_agent.cli import build_parser
from gemma_agent.editors.mcp_server import run_mcp_serve

C = ScriptedEngine.tool_call

if __name__ == "__main__":
    args = build_parser().parse_args(["mcp-serve", *sys.argv[1:]])
    engine = ScriptedEngine([C("write_file", path="x.txt", content="x\n"), "Wrote x.txt."])
    raise SystemExit(run_mcp_serve(args, engine=engine))
