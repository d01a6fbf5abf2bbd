"""`gemma-agent mcp-serve` on a ScriptedEngine, as a real process for the tests:

python mcp_scripted.py [subagents | mcp] [gemma-agent mcp-serve flags...]
"""

from __future__ import annotations

import sys

from gemma_agent import ScriptedEngine
from gemma_agent.cli import build_parser
from gemma_agent.editors.mcp_server import run_mcp_serve

C = ScriptedEngine.tool_call

if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv[:1] == ["subagents"]:  # a child that writes the file (acp_scripted's Router)
        from acp_scripted import routed, task

        script = routed({
            "parent": [task("TASK-g write x", "general"), "A helper wrote x.txt."],
            "g": [C("write_file", path="x.txt", content="x\n"), "wrote x.txt"],
        })  # fmt: skip
        argv = argv[1:]
    elif argv[:1] == ["mcp"]:  # the configured MCP servers' tools
        script = [C("time__get_current_time", timezone="UTC"), C("tiny__shout", text="hi"), "Done."]
        argv = argv[1:]
    else:
        script = [C("write_file", path="x.txt", content="x\n"), "Wrote x.txt."]
    args = build_parser().parse_args(["mcp-serve", *argv])
    raise SystemExit(run_mcp_serve(args, engine=ScriptedEngine(script)))
